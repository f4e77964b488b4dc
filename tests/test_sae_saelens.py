"""SAELens reads our folders and encodes/decodes as we do (runs where sae_lens is installed, e.g. `make bench`)."""

from __future__ import annotations

import pytest
import torch

from monosemantic.sae import SAE, SAEConfig

sae_lens = pytest.importorskip("sae_lens", reason="sae_lens is not installed (it lives in the benchmark venv)")


@pytest.mark.parametrize("arch", ["relu", "topk", "batchtopk", "matryoshka", "jumprelu"])
def test_saelens_load_from_disk_encodes_identically(arch, tmp_path):
    kw = {"k": 5 if arch in ("topk", "batchtopk", "matryoshka") else None}
    if arch == "matryoshka":
        kw["group_sizes"] = [8, 24]
    sae = SAE.create(SAEConfig(d_in=12, d_sae=32, architecture=arch, **kw))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec):
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        if hasattr(sae, "log_threshold"):
            sae.log_threshold.copy_(torch.rand(32, generator=g).log())
        elif sae.has_threshold:
            sae.threshold.fill_(0.2)
    folder = sae.save(tmp_path / arch)
    theirs = sae_lens.SAE.load_from_disk(str(folder))
    x = torch.randn(64, 12, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(theirs.encode(x), sae.encode(x), rtol=0, atol=1e-6)
        torch.testing.assert_close(theirs.decode(sae.encode(x)), sae.decode(sae.encode(x)))
    back = SAE.load(folder)
    assert back.name == arch
