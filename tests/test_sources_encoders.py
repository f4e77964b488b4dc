"""The text encoder for MS that shares nothing with the analysed models: WordLlama's static embeddings, offline."""

from __future__ import annotations

import pytest
import torch

from monosemantic.errors import UserError
from monosemantic.metrics.monosemanticity import default_encoder
from monosemantic.sources import load_model


def test_wordllama_embeds_offline_and_is_the_default_text_encoder() -> None:
    model = load_model("wordllama")
    emb = model.embed_items(["the cat sat on the mat", "a small kitten", "stock markets fell sharply"] * 30,
                            batch_size=32)
    assert emb.shape == (90, 256) and torch.isfinite(emb).all()
    e = torch.nn.functional.normalize(emb[:3], dim=1)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2  # related words are closer than unrelated ones
    torch.testing.assert_close(emb[:3], emb[3:6])  # batching does not change an item's embedding
    assert default_encoder("text") == "wordllama" and len(model.fingerprint) == 64
    from monosemantic.sources.hooks import resolve_hook

    with pytest.raises(UserError, match="no layers to hook"):
        resolve_hook(model.module, "encoder.layer.3")
