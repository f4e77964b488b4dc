"""steer stage: interventions through SAE latents, generation, and the offline evaluation of steering.

``with steering(model, sae, [Edit((j,), "direction", 0.1)]): generate(model, prompts)`` steers any Hugging Face
causal LM at the SAE's hook; ``alpha_sweep`` scores methods over an α grid (success, perplexity, repetition);
``TASKS`` holds the three bundled tasks of the FMS paper's experiment.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Method": "evaluate", "alpha_sweep": "evaluate", "headline": "evaluate",
    "Generation": "generate", "continuation_perplexity": "generate", "generate": "generate",
    "Edit": "interventions", "apply_edits": "interventions", "edit_latents": "interventions",
    "steering": "interventions", "SteerConfig": "run", "run_steer": "run", "TASKS": "tasks", "Task": "tasks",
    "get_task": "tasks",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    # loaded on first use, so `monosemantic steer --help` (which needs only SteerConfig) does not import torch
    if name not in _WHERE:
        raise AttributeError(f"module 'monosemantic.steer' has no attribute {name!r}")
    return getattr(importlib.import_module(f"monosemantic.steer.{_WHERE[name]}"), name)
