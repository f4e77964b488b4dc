"""Finding SAE folders: a folder given on the command line is one SAE or a sweep of them."""

from __future__ import annotations

from pathlib import Path

from monosemantic.errors import UserError


def expand_sae_paths(paths: list[Path]) -> list[Path]:
    """SAE folders, with a sweep folder expanded into its SAE sub-folders (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "cfg.json").is_file():
            out.append(p)
        elif p.is_dir() and (subs := sorted(q for q in p.iterdir()
                                            if (q / "cfg.json").is_file() and not q.name.startswith("."))):
            # hidden folders are temporary copies and backups of a write in progress, never SAEs to score
            out.extend(subs)
        else:
            raise UserError(f"{p} is not an SAE folder (no cfg.json) nor a folder of SAE folders")
    seen: dict[str, Path] = {}
    for p in out:  # results are keyed by folder name, so two SAEs of one name would overwrite each other
        if p.name in seen:
            raise UserError(f"two SAEs share the name {p.name!r} ({seen[p.name]} and {p}); score them separately "
                            "or rename one folder")
        seen[p.name] = p
    return out
