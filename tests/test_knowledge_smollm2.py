"""`monosemantic knowledge` on the bundled SmolLM2 with a small untrained SAE: the few-shot capitals it knows, and
its top attributed MLP neurons matter more than random ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from monosemantic import log
from monosemantic.experiments.knowledge import KnowledgeConfig, run
from monosemantic.sae import SAE, SAEConfig

pytestmark = pytest.mark.slow


@pytest.mark.usefixtures("one_thread")
def test_knowledge_on_smollm2_capitals(tmp_path: Path) -> None:
    sae = SAE.create(SAEConfig(d_in=576, d_sae=1152, architecture="topk", k=16,
                               metadata={"hook_name": "model.layers.15", "model_name": "smollm2"}))
    sae.init_weights(torch.Generator().manual_seed(0))
    sae.save(tmp_path / "sae")
    cfg = KnowledgeConfig(sae=[tmp_path / "sae"], out=tmp_path / "run", facts="capitals", max_facts=5, templates=1,
                          n=[10], edit_facts=0, unrelated=16, test_units=2, cards=2, device="cpu")
    with log.quiet():
        result = run(cfg)
    assert result.n_facts >= 3  # China -> Beijing and the like, with two solved lines first
    assert {c.subject for c in result.cards} <= {"China", "India", "the United States", "Indonesia",
                                                 "Pakistan", "Brazil", "Nigeria"}
    dp = {(r.units, r.control, r.n): r.delta_prob for r in result.ablation}
    assert dp[("neurons", False, 10)] > dp[("neurons", True, 10)]
    saved = json.loads((tmp_path / "run" / "knowledge.json").read_text())
    assert saved["edit"] == {"skipped": "--edit-facts 0"} and saved["neuron_hook"].endswith("down_proj:input")
