"""steer stage: interventions through SAE latents, generation, and the offline evaluation of steering.

``with steering(model, sae, [Edit((j,), "direction", 0.1)]): generate(model, prompts)`` steers any Hugging Face
causal LM at the SAE's hook; ``alpha_sweep`` scores methods over an α grid (success, perplexity, repetition);
``TASKS`` holds the three bundled tasks of the FMS paper's experiment. ``monosemantic.steer.concepts`` measures how
monosemantic an SAE's concept latents are on labelled held-out rows (import it on its own: it loads scikit-learn,
which the report, importing this package, does not need). Through a vision encoder: ``steer_vlm`` (a LLaVA-style
model answering about an image), ``steer_classifier`` (an image classifier's top classes) and ``steering_scores`` /
``score_bounds`` (the steering score of Pach et al., arXiv 2504.02821). The commands built on these
(``monosemantic steer``, ``steer-measure``, ``steer-score``) are in ``monosemantic.experiments``.
"""

from __future__ import annotations

from monosemantic.steer.evaluate import AlphaSweep, Method, alpha_sweep, headline
from monosemantic.steer.generate import Generation, continuation_perplexity, generate
from monosemantic.steer.interventions import Edit, apply_edits, edit_latents, edit_output, steering
from monosemantic.steer.tasks import TASKS, Task, get_task
from monosemantic.steer.vision import answer, classify, steer_classifier, steer_vlm
from monosemantic.steer.vision_score import score_bounds, steering_scores

__all__ = [
    "TASKS", "AlphaSweep", "Edit", "Generation", "Method", "Task", "alpha_sweep", "answer", "apply_edits", "classify",
    "continuation_perplexity", "edit_latents", "edit_output", "generate", "get_task", "headline", "score_bounds",
    "steer_classifier", "steer_vlm", "steering", "steering_scores",
]
