"""The names of edits, γ variants and error-term modes (torch-free, so the CLI can build its options quickly)."""

from __future__ import annotations

from typing import Literal

EditKind = Literal["clamp", "add", "scale", "ablate", "direction"]
Gamma = Literal["const", "act", "balanced"]
ErrorTerm = Literal["keep_error", "reconstruction"]
EDIT_KINDS: tuple[str, ...] = ("clamp", "add", "scale", "ablate", "direction")
