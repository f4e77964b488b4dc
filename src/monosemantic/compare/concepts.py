"""Semantic subspaces: keyword concept sets and which features belong to them (Lan et al., arXiv 2410.06981, §4).

A feature belongs to concept K when one of its top-5 activating tokens equals a keyword of K (case-insensitive,
spaces stripped) and that keyword appears as a whole word in the token's ±2-token context (with . , ? ! and
newlines removed first). Users can pass their own sets as a TOML or JSON table ``{name = [words]}``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monosemantic.errors import UserError


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_MONTHS = _words("January February March April May June July August September October November December")

# the keyword lists of the reference code, with their duplicates removed
CONCEPTS: dict[str, tuple[str, ...]] = {
    "Time": _words(
        "day night week month year hour minute second now soon later early late morning evening noon midnight "
        "dawn dusk past present future before after yesterday today tomorrow next previous instant era age decade "
        "century millennium moment pause wait begin start end finish stop continue forever constant frequent "
        "occasion season spring summer autumn fall winter anniversary deadline schedule calendar clock duration "
        "interval epoch generation period cycle timespan shift quarter term phase lifetime timeline delay prompt "
        "timely recurrent daily weekly monthly yearly annual biweekly timeframe"),
    "Calendar": _words(
        "day night week month year hour minute second morning evening noon midnight dawn dusk yesterday today "
        "tomorrow decade century millennium season spring summer autumn fall winter calendar clock daily weekly "
        "monthly yearly annual biweekly timeframe"),
    "People/Roles": _words(
        "man girl boy kid dad mom son sis bro chief priest king queen duke lord friend clerk coach nurse doc maid "
        "clown guest peer punk nerd jock"),
    "Nature": _words(
        "tree grass stone rock cliff hill dirt sand mud wind storm rain cloud sun moon leaf branch twig root bark "
        "seed tide lake pond creek sea wood field shore snow ice flame fire fog dew hail sky earth glade cave peak "
        "ridge dust air mist heat"),
    "Emotions": _words(
        "joy glee pride grief fear hope love hate pain shame bliss rage calm shock dread guilt peace trust scorn "
        "doubt hurt wrath laugh cry smile frown gasp blush sigh grin woe spite envy glow thrill mirth bored cheer "
        "charm grace shy brave proud glad mad sad tense free kind"),
    "MonthNames": _MONTHS,
    "Countries": _words(
        "USA Canada Brazil Mexico Germany France Italy Spain UK Australia China Japan India Russia Korea "
        "Argentina Egypt Iran Turkey"),
    "Biology": _words(
        "gene DNA RNA virus bacteria fungus brain lung blood bone skin muscle nerve vein organ evolve enzyme "
        "protein lipid membrane antibody antigen ligand substrate receptor cell chromosome nucleus "
        "cytoplasm"),
}
"""The keyword concept sets of Lan et al. (arXiv 2410.06981): concept name -> keywords."""

_STRIP = re.compile(r"[.,?!\n]")


def load_concepts(path: str | Path | None) -> dict[str, tuple[str, ...]]:
    """The paper's sets, or the user's from a TOML/JSON file mapping each concept name to a list of keywords."""
    if path is None:
        return dict(CONCEPTS)
    path = Path(path)
    if not path.is_file():
        raise UserError(f"concept file {path} does not exist; give a TOML or JSON file of name = [keywords]")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"concept file {path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'} "
                        f"({exc})") from None
    return check_concepts(data, str(path))


def check_concepts(data: object, where: str = "concepts") -> dict[str, tuple[str, ...]]:
    if not isinstance(data, dict) or not data:
        raise UserError(f"{where} holds no concept sets; give a table of name = [keywords]")
    out: dict[str, tuple[str, ...]] = {}
    for name, words in data.items():
        if not isinstance(words, list | tuple) or not all(isinstance(w, str) for w in words):
            raise UserError(f"{where}: concept {name!r} must be a list of keyword strings")
        kept = tuple(dict.fromkeys(w.strip() for w in words if w.strip()))
        if not kept:
            raise UserError(f"{where}: concept {name!r} is empty; give it at least one keyword")
        out[str(name)] = kept
    return out


def members(
    top_tokens: Sequence[Sequence[str]], contexts: Sequence[Sequence[str]], keywords: Sequence[str]
) -> np.ndarray:
    """Indices of the features whose top tokens include a keyword that their context shows as a whole word.

    ``top_tokens[f][r]`` is the text at feature f's r-th top position and ``contexts[f][r]`` the ±2-token text
    around it."""
    keys = {w.strip().lower() for w in keywords}
    patterns = {w: re.compile(rf"(?<!\w){re.escape(w)}(?!\w)") for w in keys}
    out = []
    for f, (toks, ctxs) in enumerate(zip(top_tokens, contexts, strict=True)):
        for tok, ctx in zip(toks, ctxs, strict=True):
            w = tok.replace(" ", "").strip().lower()
            if w in keys and patterns[w].search(_STRIP.sub(" ", ctx).lower()):
                out.append(f)
                break
    return np.array(out, dtype=np.int64)
