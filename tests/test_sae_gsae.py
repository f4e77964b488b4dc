"""The Guided SAE (G-SAE): training on planted labelled concepts, refusals, per-token normalisation, its files, and
the per-row concept labels it trains on (per-token labels from character spans included)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from monosemantic.errors import UserError
from monosemantic.sae import SAE, SAEConfig, train
from monosemantic.sae.architectures.gsae import GuidedSAE
from monosemantic.sae.trainconfig import train_config
from monosemantic.store import ActivationStore, write_store
from monosemantic.store.tokens import token_concepts

D, N, CONCEPTS = 16, 4000, ["alpha", "beta"]


def _planted(n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian rows (with an offset) plus 3·u_c for each concept c the row carries (u_c unit, zero mean, so the
    per-token layer norm keeps it)."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((len(CONCEPTS), D))
    u -= u.mean(1, keepdims=True)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    y = (rng.random((n, len(CONCEPTS))) < 0.3).astype(np.int64)
    x = rng.standard_normal((n, D)) + 3.0 * y @ u + 0.5
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    x, y = _planted()
    path = tmp_path_factory.mktemp("gsae") / "store"
    write_store(path, {"h": x}, labels=y, label_names=CONCEPTS)
    return path, x, y


def _cfg(store: Path, out: Path, **kw):
    base = dict(acts=store, out=out, arch="gsae", d_sae=[32], k=[4], tokens="40K", batch_size=256, progress=False,
                threads=1, checkpoint_every=0, device="cpu", bf16=False, holdout=0.2)
    base.update(kw)
    return train_config(base)


@pytest.fixture(scope="module")
def trained(labelled, tmp_path_factory: pytest.TempPathFactory) -> Path:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (folder,) = train(_cfg(labelled[0], tmp_path_factory.mktemp("gsae-out") / "sae"))
    finally:
        torch.set_num_threads(old)
    return folder


# ---------------------------------------------------------------------------------------------------------------
# training


def test_trained_gsae_detects_its_concepts(labelled, trained):
    _, x, y = labelled
    ev = json.loads((trained / "eval.json").read_text())
    assert set(ev["concept_auroc"]) == set(CONCEPTS)
    assert all(ev["concept_auroc"][c] > 0.9 for c in CONCEPTS), ev["concept_auroc"]

    sae = SAE.load(trained)
    assert isinstance(sae, GuidedSAE) and sae.concepts == CONCEPTS and sae.cfg.k == 4
    xt = torch.from_numpy(x)
    with torch.no_grad():
        f = sae.encode(xt)
        logits = sae.concept_logits(xt)
    assert ((f >= 0) & (f < 1)).all()  # topk-sigmoid
    assert ((f > 0).sum(1) == 4).all()  # exactly k latents kept on every row
    # the concept logits are the reserved latents' pre-TopK logits: computed here from the weights
    xs = x.astype(np.float64)
    xn = (xs - xs.mean(1, keepdims=True)) / (xs.std(1, ddof=1, keepdims=True) + 1e-5)
    w_enc, b_enc, b_dec = (p.detach().double().numpy() for p in (sae.W_enc, sae.b_enc, sae.b_dec))
    pre = (xn - b_dec) @ w_enc + b_enc
    np.testing.assert_allclose(logits.double().numpy(), pre[:, :2], rtol=1e-4, atol=1e-4)
    # a kept reserved latent carries the sigmoid of its logit
    kept = f[:, :2] > 0
    np.testing.assert_allclose(f[:, :2][kept].numpy(), torch.sigmoid(logits[kept]).numpy(), rtol=1e-5, atol=1e-6)
    for c in range(2):
        assert roc_auc_score(y[:, c], logits[:, c].numpy()) > 0.9
        assert logits[y[:, c] == 1, c].median() > logits[y[:, c] == 0, c].median()
        # the unguided latents do not happen to detect the concept as well as the reserved one
        assert roc_auc_score(y[:, c], logits[:, c].numpy()) > max(
            roc_auc_score(y[:, c], pre[:, j]) for j in range(2, 32))


def test_saved_gsae_declares_layer_norm_and_loads_back_identically(trained, tmp_path):
    cfg = json.loads((trained / "cfg.json").read_text())
    assert cfg["normalize_activations"] == "layer_norm" and cfg["architecture"] == "topk" and cfg["k"] == 4
    assert cfg["metadata"]["monosemantic"]["architecture"] == "gsae"
    assert cfg["metadata"]["monosemantic"]["gsae"]["concepts"] == CONCEPTS

    sae = _gsae()
    again = SAE.load(sae.save(tmp_path / "g"))
    assert isinstance(again, GuidedSAE) and again.concepts == sae.concepts and again.cfg.k == sae.cfg.k
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.equal(getattr(again, name), getattr(sae, name)), name
    x = torch.randn(8, D)
    with torch.no_grad():
        assert torch.equal(again.encode(x), sae.encode(x))

    plain = SAE.create(SAEConfig(d_in=D, d_sae=32, architecture="topk", k=4))
    plain.init_weights(torch.Generator().manual_seed(0))
    assert json.loads((plain.save(tmp_path / "t") / "cfg.json").read_text())["normalize_activations"] == "none"


def test_a_layer_norm_folder_of_another_architecture_is_refused(tmp_path):
    plain = SAE.create(SAEConfig(d_in=D, d_sae=32, architecture="topk", k=4))
    plain.init_weights(torch.Generator().manual_seed(0))
    folder = plain.save(tmp_path / "t")
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["normalize_activations"] = "layer_norm"
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="normalize_activations='layer_norm' is not supported"):
        SAE.load(folder)


def _refused(tc, needle: str) -> None:
    with pytest.raises(UserError) as exc:
        train(tc)
    msg = str(exc.value)
    assert "\n" not in msg and needle in msg, msg


def test_impossible_gsae_configs_are_refused(labelled, tmp_path):
    store = labelled[0]
    _refused(_cfg(store, tmp_path / "a", k=[1]), "needs k >= the number of concepts (2)")
    _refused(_cfg(store, tmp_path / "b", d_sae=[2], k=[2]), "needs more latents than concepts (2); got d_sae=2")
    _refused(_cfg(store, tmp_path / "c", k=[2.5]), "needs an integer k")
    unlabelled = write_store(tmp_path / "plain", {"h": labelled[1][:600]})
    _refused(_cfg(unlabelled.root, tmp_path / "d"), "--arch gsae trains on concept labels, but the store")
    with pytest.raises(UserError) as exc:
        _cfg(store, tmp_path / "e", auxk_alpha=0.1)
    assert "\n" not in str(exc.value) and "--auxk-alpha does not apply to gsae" in str(exc.value)
    assert not any((tmp_path / n / "cfg.json").exists() for n in "abcde")


def test_gsae_options_are_refused_for_other_architectures(labelled, tmp_path):
    with pytest.raises(UserError, match="--concept-weight does not apply to topk; it is for gsae"):
        _cfg(labelled[0], tmp_path / "x", arch="topk", concept_weight=2.0)
    with pytest.raises(UserError, match="--concept-weight must be at least 0"):
        train(_cfg(labelled[0], tmp_path / "y", concept_weight=-1.0))


# ---------------------------------------------------------------------------------------------------------------
# per-token normalisation


def _gsae(seed: int = 0, activation: str = "topk-sigmoid") -> GuidedSAE:
    meta = {"monosemantic": {"gsae": {"concepts": ["a", "b", "c"], "activation": activation}}}
    sae = SAE.create(SAEConfig(d_in=D, d_sae=40, architecture="gsae", k=5, metadata=meta))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec):
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    assert isinstance(sae, GuidedSAE)
    return sae


@pytest.mark.parametrize("activation", ["topk-sigmoid", "topk"])
def test_encode_is_scale_invariant_and_decode_restores_the_scale(activation):
    sae = _gsae(activation=activation)
    x = torch.randn(64, D, generator=torch.Generator().manual_seed(1)) * 3 + 1.0
    with torch.no_grad():
        f = sae.encode(x)
        rec = sae.decode(f)
        assert ((f != 0).sum(1) == 5).all() if activation == "topk-sigmoid" else ((f != 0).sum(1) <= 5).all()
        for s in (0.5, 3.0, 250.0):
            fs = sae.encode(s * x)
            torch.testing.assert_close(fs, f, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(sae.decode(fs), s * rec, rtol=1e-4, atol=1e-4 * s)
        # and a shift of every coordinate moves the reconstruction by the same shift
        torch.testing.assert_close(sae.encode(x + 7.0), f, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(sae.decode(sae.encode(x + 7.0)), rec + 7.0, rtol=1e-4, atol=1e-4)
    # decode reconstructs in x's own scale: (f W_dec + b_dec)(σ + ε) + μ, independently in float64
    xs = x.double().numpy()
    sd = xs.std(1, ddof=1, keepdims=True) + 1e-5
    want = (f.double().numpy() @ sae.W_dec.detach().double().numpy() + sae.b_dec.detach().double().numpy()) * sd
    np.testing.assert_allclose(rec.double().numpy(), want + xs.mean(1, keepdims=True), rtol=1e-4, atol=1e-4)


def test_decode_without_a_matching_encode_is_refused():
    sae = _gsae()
    with torch.no_grad(), pytest.raises(UserError, match="call encode on the same rows first"):
        sae.decode(torch.zeros(3, 40))
    with torch.no_grad():
        sae.encode(torch.randn(4, D))
        with pytest.raises(UserError, match="call encode on the same rows first"):
            sae.decode(torch.zeros(3, 40))


# ---------------------------------------------------------------------------------------------------------------
# per-row labels


def test_row_labels_per_token_and_per_item(tmp_path):
    names = ["email", "phone", "name"]
    item_index = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 3])
    x = np.arange(len(item_index) * 4, dtype=np.float32).reshape(-1, 4)
    items = [
        {"kind": "text", "token_labels": [-1, 0, 0, 2]},
        {"kind": "text", "token_labels": [1, -1]},  # shorter than the item's rows: the last row has no concept
        {"kind": "text"},  # no per-token labels: its rows inherit the item's labels
        {"kind": "text", "token_labels": []},
    ]
    item_labels = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1], [0, 0, 1]])
    store = write_store(tmp_path / "s", {"h": x}, item_index=item_index, labels=item_labels, label_names=names,
                        items=items, shard_rows=3)
    store = ActivationStore.open(store.root)
    assert store.positions.tolist() == [0, 1, 2, 3, 0, 1, 2, 0, 1, 0]
    want = np.array([
        [0, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1],  # item 0: its tokens' own concepts
        [0, 1, 0], [0, 0, 0], [0, 0, 0],  # item 1
        [1, 0, 1], [1, 0, 1],  # item 2: the item's labels
        [0, 0, 0],  # item 3: tagged, with no token carrying a concept
    ])
    assert store.row_labels.dtype == np.uint8
    np.testing.assert_array_equal(store.row_labels, want)
    np.testing.assert_array_equal(store.labels, item_labels)
    assert store.label_names == names


def test_row_labels_from_class_ids_are_one_hot(tmp_path):
    item_index = np.array([0, 0, 1, 2, 2, 2])
    store = write_store(tmp_path / "s", {"h": np.ones((6, 4), np.float32)}, item_index=item_index,
                        labels=np.array([2, 0, 1]), label_names=["a", "b", "c"])
    want = np.array([[0, 0, 1], [0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(store.row_labels, want)
    unlabelled = write_store(tmp_path / "u", {"h": np.ones((6, 4), np.float32)}, item_index=item_index)
    assert unlabelled.row_labels is None and unlabelled.labels is None


def test_gsae_trains_on_per_token_labels(tmp_path):
    """Rows of one item with different per-token concepts: the reserved latent learns the token's, not the item's."""
    x, y = _planted(n=3000, seed=1)
    item_index = np.arange(len(x)) // 10
    tags = np.where(y[:, 0] == 1, 0, -1)  # concept "alpha" per token; "beta" is never tagged
    items = [{"kind": "text", "token_labels": tags[i * 10 : (i + 1) * 10].tolist()} for i in range(300)]
    item_labels = np.ones((300, 2), dtype=np.int64)  # every item claims both concepts
    store = write_store(tmp_path / "s", {"h": x}, item_index=item_index, labels=item_labels, label_names=CONCEPTS,
                        items=items)
    np.testing.assert_array_equal(store.row_labels[:, 0], y[:, 0])
    assert store.row_labels[:, 1].sum() == 0
    (folder,) = train(_cfg(store.root, tmp_path / "sae", tokens="30K"))
    ev = json.loads((folder / "eval.json").read_text())
    assert ev["concept_auroc"]["alpha"] > 0.9
    assert ev["concept_auroc"]["beta"] is None  # one class only among the held-out rows: no AUROC


# ---------------------------------------------------------------------------------------------------------------
# per-token labels from character spans


@pytest.mark.slow
def test_token_concepts_mark_exactly_the_tokens_overlapping_a_span():
    from monosemantic.sources import load_model

    tok = load_model("smollm2").tokenizer
    text = "Please write to john.doe@example.com before Friday, or call Ann."
    email = "john.doe@example.com"
    s = text.index(email)
    spans = [(s, s + len(email), 0), (text.index("Ann"), text.index("Ann") + 3, 1)]
    got = token_concepts(tok, text, spans, max_length=64)
    ids = tok(text)["input_ids"]
    pieces = [tok.decode([i]) for i in ids]
    assert "".join(pieces) == text and len(got) == len(ids)
    want, at = [], 0  # each token's character range, by walking the decoded pieces along the text
    for piece in pieces:
        a, b = at, at + len(piece)
        want.append(next((c for lo, hi, c in spans if a < hi and b > lo), -1))
        at = b
    assert got == want
    marked = "".join(p for p, c in zip(pieces, got, strict=True) if c == 0)
    assert marked.strip() == email and got.count(0) >= 3
    assert got[0] == -1 and got[-1] == -1 and got.count(1) == 1
    # a span inside the e-mail marks the tokens it touches only
    inner = (text.index("doe"), text.index("doe") + len("doe@ex"), 0)
    part = token_concepts(tok, text, [inner], max_length=64)
    assert "".join(p for p, c in zip(pieces, part, strict=True) if c == 0).strip() in email
    assert 0 < part.count(0) < got.count(0)
    # the first span a token overlaps wins; truncation keeps the model's max_length
    both = token_concepts(tok, text, [(s, s + 4, 2), *spans], max_length=64)
    assert both[got.index(0)] == 2 and both.count(0) == got.count(0) - 1
    assert token_concepts(tok, text, spans, max_length=5) == got[:5]


def test_token_concepts_need_a_fast_tokenizer():
    class Slow:
        is_fast = False

    with pytest.raises(UserError, match="fast"):
        token_concepts(Slow(), "text", [], 8)
