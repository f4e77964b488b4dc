"""The offline steering scorers, on real text: VADER sentiment, the Folio-spelling classifier, the PII detector and
repetition."""

from __future__ import annotations

import numpy as np
import pytest

from monosemantic.errors import UserError
from monosemantic.sources.datasets import heldout_texts
from monosemantic.sources.datasets.pii import PII_CLASSES, pii_synth
from monosemantic.sources.datasets.shakespeare import shakespeare_style
from monosemantic.steer import scorers as sc

pytestmark = pytest.mark.slow


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a random positive scores above a random negative), ties counting half."""
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


# ---------------------------------------------------------------------------------------------------------------
# Sentiment


def test_sentiment_on_clear_sentences() -> None:
    scorer = sc.SentimentScorer()
    assert scorer.name == "sentiment"
    good = ["I absolutely love this, what a wonderful and happy day!", "Great service, thank you so much."]
    bad = ["This is the worst flight ever, I hate it.", "Terrible, rude staff and an awful delay."]
    scores = scorer.score(good + bad)
    assert scores.shape == (4,) and np.all(np.abs(scores) <= 1)
    assert scorer.positive(good).all() and not scorer.negative(good).any()
    assert scorer.negative(bad).all() and not scorer.positive(bad).any()
    assert not scorer.positive(["The flight leaves at noon."]).any()


def test_sentiment_separates_the_heldout_tweets() -> None:
    texts, labels = heldout_texts("tweets-attitude")
    scores, y = sc.SentimentScorer().score(texts), labels.ravel()
    assert _auc(scores[y == 1], scores[y == 0]) > 0.75


# ---------------------------------------------------------------------------------------------------------------
# Style


@pytest.fixture(scope="module")
def style() -> sc.StyleClassifier:
    return sc.StyleClassifier.default()


def test_style_classifier_is_accurate_and_cached(style: sc.StyleClassifier) -> None:
    assert style.name == "style"
    assert style.heldout_accuracy is not None and style.heldout_accuracy > 0.8
    assert sc.StyleClassifier.default() is style


def test_style_classifier_generalises_to_unseen_plays(style: sc.StyleClassifier) -> None:
    # It was fitted on the held-out plays only, so the train plays are new to it.
    data = shakespeare_style("train")
    texts, y = data.load(0, 3000), data.labels[:3000].ravel()  # type: ignore[index]
    p = style.proba(texts)
    assert p.shape == (3000,) and np.all((p >= 0) & (p <= 1))
    assert ((p > 0.5) == (y == 1)).mean() > 0.8


def test_style_classifier_prefers_folio_spelling(style: sc.StyleClassifier) -> None:
    folio = ["Thou art a Scholler; speake to it Horatio", "He hath not fayl'd to pester vs with Message",
             "I haue seene nothing, and hath he gone by our Watch?", "Looke where it comes againe"]
    modern = ["Thou art a scholar; speak to it, Horatio.", "He hath not fail'd to pester us with message",
              "I have seen nothing, and hath he gone by our watch?", "Look where it comes again"]
    p_folio, p_modern = style.proba(folio), style.proba(modern)
    assert np.all(p_folio > p_modern) and np.all(p_folio > 0.5) and np.all(p_modern < 0.5)


def test_style_classifier_rejects_bad_input() -> None:
    with pytest.raises(UserError, match="not fitted"):
        sc.StyleClassifier().proba(["a line"])
    with pytest.raises(UserError, match="2 texts but 3 labels"):
        sc.StyleClassifier().fit(["a", "b"], [0, 1, 1])
    with pytest.raises(UserError, match=r"labels must be 0 .* and 1"):
        sc.StyleClassifier().fit(["a"] * 10, [1] * 10)


# ---------------------------------------------------------------------------------------------------------------
# PII


PIICase = tuple[sc.PIIDetector, list[str], np.ndarray, list[list[tuple[int, int, int]]], list[list[tuple[str, str]]]]


@pytest.fixture(scope="module")
def pii() -> PIICase:
    data = pii_synth(n=200, seed=5)
    assert data.labels is not None and data.token_spans is not None
    detector, texts = sc.PIIDetector(), data.load(0, data.n)
    spans = [data.token_spans(i) for i in range(data.n)]
    return detector, texts, data.labels, spans, [detector.entities(t) for t in texts]


def test_pii_finds_every_email_phone_and_ip(pii: PIICase) -> None:
    _, texts, _, spans, entities = pii
    want = {"EMAIL": "EMAIL", "TEL": "PHONE", "IP": "IP"}
    checked = 0
    for text, item, found in zip(texts, spans, entities, strict=True):
        for start, end, c in item:
            if PII_CLASSES[c] in want:
                assert (want[PII_CLASSES[c]], text[start:end]) in found, (text, found)
                checked += 1
    assert checked > 70


def test_pii_finds_names_and_counts_like_the_labels(pii: PIICase) -> None:
    detector, texts, labels, spans, entities = pii
    full_names = [found for found, y in zip(entities, labels, strict=True) if y[0] and y[1]]
    assert len(full_names) > 20 and np.mean([any(lab == "PERSON" for lab, _ in f) for f in full_names]) > 0.8
    counts, truth = detector.count(texts), np.array([len(s) for s in spans])
    np.testing.assert_array_equal(counts, [len(f) for f in entities])
    assert counts.dtype == np.int64 and counts.shape == (len(texts),)
    assert np.corrcoef(counts, truth)[0, 1] > 0.7
    assert counts[truth == 0].mean() < 0.2 and counts[truth > 0].mean() > 1.5


def test_pii_counts_none_in_plain_text_and_overlaps_once() -> None:
    detector = sc.PIIDetector()
    assert detector.name == "pii"
    assert detector.count(["The weather was nice today.", "I like long walks and quiet evenings."]).tolist() == [0, 0]
    # spaCy may call part of an address a person or a number a date; each stretch of text still counts once.
    text = "Write to jane.doe@mail.com, call +1-555-201-3344 x12, or ping 10.0.0.254 from 2024-01-05."
    found = detector.entities(text)
    assert ("EMAIL", "jane.doe@mail.com") in found and ("PHONE", "+1-555-201-3344 x12") in found
    assert ("IP", "10.0.0.254") in found and ("DATE", "2024-01-05") in found
    assert detector.count([text])[0] == len(found) == 4


# ---------------------------------------------------------------------------------------------------------------
# Repetition and missing packages


def test_repetition() -> None:
    # "a b c a b c a b c": 7 trigrams, 3 distinct, so 4 of 7 repeat an earlier one.
    assert sc.repetition("a b c a b c a b c") == pytest.approx(4 / 7)
    assert sc.repetition("The quick brown fox jumps over the lazy dog.") == 0.0
    assert sc.repetition("two words") == 0.0 and sc.repetition("") == 0.0
    assert sc.repetition("I am. I am. I am.") == pytest.approx(1 / 2)  # punctuation and case do not count
    texts = ["a b c a b c a b c", "one two three four", "x"]
    np.testing.assert_allclose(sc.repetition_many(texts), [sc.repetition(t) for t in texts])
    assert sc.repetition_many([]).shape == (0,)


def test_missing_package_names_the_install_command() -> None:
    with pytest.raises(UserError, match=r"needs the package 'no-such-pkg'; install it with `pip install no-such-pkg`"):
        sc._require("no_such_pkg_for_monosemantic", "no-such-pkg", "PII detector")
