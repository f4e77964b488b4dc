"""The names of edits, γ variants and error-term modes (torch-free, so the CLI can build its options quickly)."""

from __future__ import annotations

from typing import Literal

EditKind = Literal["clamp", "clamp_zero_others", "add", "scale", "ablate", "direction"]
Gamma = Literal["const", "act", "balanced"]
ErrorTerm = Literal["keep_error", "reconstruction"]
Pooling = Literal["tokens", "pooled"]
EDIT_KINDS: tuple[str, ...] = ("clamp", "clamp_zero_others", "add", "scale", "ablate", "direction")
POOLINGS: tuple[str, ...] = ("tokens", "pooled")
