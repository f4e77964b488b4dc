"""steer stage: interventions through SAE latents, generation, and the offline evaluation of steering.

``with steering(model, sae, [Edit((j,), "direction", 0.1)]): generate(model, prompts)`` steers any Hugging Face
causal LM at the SAE's hook; ``alpha_sweep`` scores methods over an α grid (success, perplexity, repetition);
``TASKS`` holds the three bundled tasks of the FMS paper's experiment.
"""

from __future__ import annotations

from monosemantic.steer.evaluate import Method, alpha_sweep, headline
from monosemantic.steer.generate import Generation, continuation_perplexity, generate
from monosemantic.steer.interventions import Edit, apply_edits, edit_latents, steering
from monosemantic.steer.run import SteerConfig, run_steer
from monosemantic.steer.tasks import TASKS, Task, get_task

__all__ = [
    "TASKS", "Edit", "Generation", "Method", "SteerConfig", "Task", "alpha_sweep", "apply_edits",
    "continuation_perplexity", "edit_latents", "generate", "get_task", "headline", "run_steer", "steering",
]
