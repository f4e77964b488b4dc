"""SAE folders: write the SAELens layout; read it, and sparsify / dictionary_learning folders.

A folder holds ``cfg.json`` and ``sae_weights.safetensors`` (SAELens names and shapes, strict key set) and, when
trained here, ``eval.json``, ``train_log.jsonl`` and ``sparsity.safetensors``. Our own fields live under
``metadata.monosemantic`` so SAELens ignores them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

from monosemantic.errors import UserError
from monosemantic.files import check_out, staged
from monosemantic.sae.registry import get_architecture
from monosemantic.sae.types import SAEConfig

if TYPE_CHECKING:
    from monosemantic.sae.core import SAE

FORMAT_VERSION = 1
SAELENS_VERSION = "6.0.0"  # >= 6 so SAELens skips its legacy conversion
_FROM_SAELENS = {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu"}


def _tensors(sae: SAE) -> dict[str, torch.Tensor]:
    out = {
        "W_enc": sae.W_enc.detach(),
        "b_enc": sae.b_enc.detach(),
        "W_dec": sae.W_dec.detach(),
        "b_dec": sae.b_dec.detach(),
    }
    threshold = sae.saved_threshold()
    if threshold is not None:
        out["threshold"] = threshold.detach().expand(sae.cfg.d_sae)
    return {k: v.float().contiguous().clone() for k, v in out.items()}


def _saelens_config(sae: SAE) -> dict[str, Any]:
    """The JSON of ``cfg.json``: SAELens' fields, ours under ``metadata.monosemantic``."""
    cfg = sae.cfg
    meta = dict(cfg.metadata)
    ours = dict(meta.pop("monosemantic", {}))
    ours.update({"format_version": FORMAT_VERSION, "architecture": sae.name, "k": cfg.k,
                 "group_sizes": cfg.group_sizes})
    d: dict[str, Any] = {
        "architecture": sae.saelens_architecture,
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": cfg.apply_b_dec_to_input,
        "normalize_activations": sae.saelens_normalize,
        "reshape_activations": "none",
    }
    if sae.saelens_architecture == "topk":
        d["k"] = cfg.kept
        d["rescale_acts_by_decoder_norm"] = False
    meta.setdefault("sae_lens_version", SAELENS_VERSION)
    meta.setdefault("sae_lens_training_version", SAELENS_VERSION)
    if sae.name in ("batchtopk", "matryoshka"):
        meta["training_architecture"] = sae.name
        meta["training_architecture_details"] = {"k": cfg.k, "group_sizes": cfg.group_sizes}
    meta["monosemantic"] = ours
    d["metadata"] = meta
    return d


ExtraFile = Path | str | dict[str, torch.Tensor] | dict[str, Any]
"""A file saved beside the weights: a file to copy, text, tensors (``*.safetensors``), or JSON."""


def write_folder(sae: SAE, folder: Path, extra: Mapping[str, ExtraFile] | None = None) -> None:
    """Write the files of ``sae`` into an existing (temporary) folder; ``extra`` maps file names to content."""
    save_file(_tensors(sae), str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps(_saelens_config(sae), indent=2, default=str))
    for name, content in (extra or {}).items():
        target = folder / name
        if isinstance(content, dict) and name.endswith(".safetensors"):
            save_file(content, str(target))
        elif isinstance(content, Path):
            shutil.copyfile(content, target)
        elif isinstance(content, str):
            target.write_text(content)
        else:
            target.write_text(json.dumps(content, indent=2))


def save_sae(sae: SAE, path: Path, *, overwrite: bool = False, extra: Mapping[str, ExtraFile] | None = None) -> Path:
    """Write ``path`` as a whole: build a temporary sibling folder, then rename it into place."""
    path = Path(path)
    check_out(path, what="an SAE folder", marker="cfg.json", overwrite=overwrite)
    with staged(path) as tmp:
        write_folder(sae, tmp, extra)
    return path


# ------------------------------------------------------------------------------------------------ loading


def _read_json(p: Path) -> dict[str, Any]:
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{p}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{p}: expected a JSON object")
    return data


def _read_tensors(p: Path) -> dict[str, torch.Tensor]:
    try:
        if p.suffix == ".pt":
            state: dict[str, torch.Tensor] = torch.load(p, map_location="cpu", weights_only=True)
            return state
        return load_file(str(p))
    except Exception as exc:  # corrupt or truncated files raise several exception types
        raise UserError(f"{p}: cannot read the SAE weights ({type(exc).__name__}: {exc})") from None


def _build(arch: str, d_in: int, d_sae: int, state: dict[str, torch.Tensor], **cfg_kw: Any) -> SAE:
    cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture=arch, **cfg_kw)
    cls = get_architecture(arch)
    cls.validate(cfg)
    sae = cls(cfg)
    with torch.no_grad():
        for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
            t = state[name].float()
            if tuple(t.shape) != tuple(getattr(sae, name).shape):
                raise UserError(f"tensor {name} has shape {tuple(t.shape)}, expected {tuple(getattr(sae, name).shape)}")
            getattr(sae, name).copy_(t)
        if "threshold" in state and sae.has_threshold:
            sae.load_threshold(state["threshold"].float().expand(d_sae))
    return sae


def _load_saelens(path: Path) -> SAE:
    cfg = _read_json(path / "cfg.json")
    state = _read_tensors(path / "sae_weights.safetensors")
    meta = cfg.get("metadata") or {}
    ours = meta.get("monosemantic") or {}
    sl_arch = cfg.get("architecture", "standard")
    normalize = cfg.get("normalize_activations", "none") or "none"
    if normalize != "none" and normalize != get_architecture(ours.get("architecture") or "topk").saelens_normalize:
        raise UserError(f"{path}: normalize_activations={cfg['normalize_activations']!r} is not supported; "
                        "fold the scaling into the weights first")
    arch = ours.get("architecture")
    if arch is None:
        training = meta.get("training_architecture")
        if sl_arch == "jumprelu" and training in ("batchtopk", "matryoshka_batchtopk", "matryoshka"):
            arch = "batchtopk"
        else:
            arch = _FROM_SAELENS.get(sl_arch)
    if arch is None:
        raise UserError(f"{path}: SAELens architecture {sl_arch!r} is not supported (standard, topk, jumprelu)")
    k = ours.get("k", cfg.get("k"))
    return _build(
        arch, int(cfg["d_in"]), int(cfg["d_sae"]), state, k=k, group_sizes=ours.get("group_sizes"),
        apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)), metadata=meta,
    )


def _load_sparsify(path: Path) -> SAE:
    cfg = _read_json(path / "cfg.json")
    st = _read_tensors(path / "sae.safetensors")
    if cfg.get("transcode") or cfg.get("skip_connection") or cfg.get("activation", "topk") != "topk":
        raise UserError(f"{path}: only plain TopK sparsify SAEs load (no transcoder, skip connection, groupmax)")
    enc = st["encoder.weight"]
    state = {"W_enc": enc.T, "b_enc": st["encoder.bias"], "W_dec": st["W_dec"], "b_dec": st["b_dec"]}
    return _build("topk", enc.shape[1], enc.shape[0], state, k=int(cfg["k"]),
                  metadata={"monosemantic": {"imported_from": "sparsify"}})


def _load_dictionary_learning(path: Path) -> SAE:
    st = _read_tensors(path / "ae.pt")
    conf = _read_json(path / "config.json").get("trainer", {}) if (path / "config.json").exists() else {}
    meta = {"monosemantic": {"imported_from": "dictionary_learning", "trainer": conf.get("trainer_class")}}
    k = int(st["k"]) if "k" in st else conf.get("k")
    if "encoder.weight" in st:
        enc = st["encoder.weight"]
        b_dec = st["b_dec"] if "b_dec" in st else st.get("bias", st.get("decoder.bias"))
        state = {"W_enc": enc.T, "b_enc": st["encoder.bias"], "W_dec": st["decoder.weight"].T, "b_dec": b_dec}
        if "k" in st and "threshold" in st and "BatchTopK" in str(conf.get("dict_class", "")):
            state["threshold"] = st["threshold"].reshape(-1)
            return _build("batchtopk", enc.shape[1], enc.shape[0], state, k=k, metadata=meta)
        if "k" in st:
            return _build("topk", enc.shape[1], enc.shape[0], state, k=k, metadata=meta)
        return _build("relu", enc.shape[1], enc.shape[0], state, metadata=meta)
    W_enc = st["W_enc"]
    state = {n: st[n] for n in ("W_enc", "b_enc", "W_dec", "b_dec")}
    state["threshold"] = st["threshold"].reshape(-1)
    if "group_sizes" in st:
        sizes = [int(s) for s in st["group_sizes"].tolist()]
        return _build("matryoshka", W_enc.shape[0], W_enc.shape[1], state, k=k, group_sizes=sizes, metadata=meta)
    if "k" in st:
        return _build("batchtopk", W_enc.shape[0], W_enc.shape[1], state, k=k, metadata=meta)
    return _build("jumprelu", W_enc.shape[0], W_enc.shape[1], state, metadata=meta)


def load_sae(path: Path) -> SAE:
    """Load any supported SAE folder, picking the format from the files present."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"SAE folder {str(path)!r} does not exist")
    if (path / "sae_weights.safetensors").exists() and (path / "cfg.json").exists():
        loader = _load_saelens
    elif (path / "sae.safetensors").exists() and (path / "cfg.json").exists():
        loader = _load_sparsify
    elif (path / "ae.pt").exists():
        loader = _load_dictionary_learning
    else:
        raise UserError(
            f"{path} is not an SAE folder: expected cfg.json + sae_weights.safetensors (SAELens / monosemantic), "
            "cfg.json + sae.safetensors (sparsify) or ae.pt (dictionary_learning)"
        )
    try:
        sae = loader(path)
    except UserError as exc:
        if str(path) in str(exc):
            raise
        raise UserError(f"{path}: {exc}") from None
    except (KeyError, ValueError, TypeError) as exc:
        # a hand-edited or partly written folder: a field or tensor missing or of the wrong kind
        what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise UserError(f"{path}: the SAE config or weights are incomplete ({what}); re-save or re-train it") from None
    sae.eval()
    return sae

