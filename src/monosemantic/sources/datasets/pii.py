"""Synthetic sentences with personally identifiable information, and the exact character span of every entity.

Härle et al. (2025), "Measuring and Guiding Monosemanticity" (arXiv 2506.19382), steer a language model on PII;
this offline analogue fills fixed templates (letters, forms, chat messages, log lines) with a seeded Faker's
names, e-mails, phones, addresses, dates and IPs, so every entity's class and span is known exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import numpy as np

from monosemantic.errors import UserError
from monosemantic.extras import require
from monosemantic.sources.datasets.dataset import Dataset, text_dataset

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
    fake = require("faker", "the pii-synth dataset").Faker("en_US")
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
    data = text_dataset("pii-synth", texts, labels, list(PII_CLASSES),
                        f"synthetic PII sentences: {n} from {len(PII_TEMPLATES) + len(NO_PII_TEMPLATES)} templates, "
                        f"Faker en_US seed {seed}")
    data.token_spans = lambda i: list(spans[i])
    return data


PII_HELDOUT = {"n": 1000, "seed": 1}
"""The held-out draw of pii-synth: synthetic data has no natural split, so it is a fresh draw with another seed."""
