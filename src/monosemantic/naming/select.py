"""Which latents get named, and which inputs the namer and the judges see (Renzulli et al., "MedSAE",
arXiv 2510.26411, Sec. 3, naming and its evaluation).

The namer sees strong and moderate activations: of the items a latent fires on, sorted by activation, the top two
thirds, from which the first and the last ``n_shown / 2`` are taken, then shuffled. Unlike the paper, whose judged
activating images are the top 30 and so overlap what the namer saw, the activating items are split by rank
(even ranks to the namer's pool, odd ranks held out), so the judge is always tested on inputs the name was not
written from. Non-activating items are sampled from those where the latent is ≤ 1e-7.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from monosemantic.compare.align import surfaces
from monosemantic.naming.base import Example
from monosemantic.sources import image_ref, load_image
from monosemantic.store import ActivationStore

FIRING_EPS = 1e-7
_SPECIAL = re.compile(r"^\s*(\[[A-Z]+\]|<\|[^|]*\|>|</?s>|<pad>|<unk>|<bos>|<eos>)\s*$")


@dataclass
class LatentPlan:
    """The item ids one latent's naming and judging use; examples are filled in later."""

    set_id: str
    latent: int
    shown: list[int]
    judged_pos: list[int]
    judged_neg: list[int]
    calib_neg: list[int]
    values: dict[int, float] = field(default_factory=dict)


@dataclass
class LatentExamples:
    """One latent's examples: those shown to the namer, the held-out ones judged, and calibration ones."""

    set_id: str
    latent: int
    shown: list[Example]
    judged: list[Example]
    truth: list[int]
    calib: list[Example]
    calib_truth: list[int]


def candidates(acts: torch.Tensor, min_active: int) -> np.ndarray:
    """Latents that fire on at least ``min_active`` items and stay silent on at least one."""
    active = (acts > FIRING_EPS).sum(0).numpy()
    return np.nonzero((active >= min_active) & (active < acts.shape[0]))[0]


def choose_latents(acts: torch.Tensor, ms: dict[int, float | None], n: int, min_active: int, how: str,
                   seed: int) -> list[int]:
    """``top-ms``: the n candidates of highest MS (the report's cards show these); ``random``: n at random."""
    cand = candidates(acts, min_active)
    if how == "random":
        rng = np.random.default_rng(seed)
        return sorted(int(j) for j in rng.choice(cand, size=min(n, len(cand)), replace=False))
    scored = [int(j) for j in cand if ms.get(int(j)) is not None]
    return sorted(scored, key=lambda j: (-float(ms[j] or 0.0), j))[:n]


def plan_latent(set_id: str, latent: int, acts: torch.Tensor, n_shown: int, n_judged: int, n_calib: int,
                seed: int) -> LatentPlan:
    a = acts[:, latent].numpy()
    active = np.nonzero(a > FIRING_EPS)[0]
    active = active[np.argsort(-a[active], kind="stable")]
    pool, held = active[0::2], active[1::2]
    keep = pool[: len(pool) - len(pool) // 3]
    if len(keep) > n_shown:
        keep = np.concatenate([keep[: n_shown // 2], keep[len(keep) - (n_shown - n_shown // 2):]])
    rng = np.random.default_rng([seed, latent])
    shown = [int(i) for i in rng.permutation(keep)]
    pos = [int(i) for i in held[:n_judged]]
    silent = np.nonzero(a <= FIRING_EPS)[0]
    need = len(pos) + min(n_calib, len(shown))
    neg = rng.choice(silent, size=need, replace=len(silent) < need) if len(silent) else np.empty(0, dtype=np.int64)
    return LatentPlan(set_id, latent, shown, pos, [int(i) for i in neg[: len(pos)]],
                      [int(i) for i in neg[len(pos):]], {int(i): float(a[i]) for i in (*shown, *pos)})


class TextSnippets:
    """Snippets of text items: a window of tokens around the latent's peak (or a random window where it is
    silent), decoded from the store's vocabulary, so no tokenizer is needed."""

    def __init__(self, store: ActivationStore, hook: str, encode: Callable[[torch.Tensor], torch.Tensor],
                 radius: int, seed: int) -> None:
        self.store, self.hook, self.encode, self.radius, self.seed = store, hook, encode, radius, seed
        self.tokenwise = store.token_ids is not None and store.vocab is not None and bool((store.positions >= 0).any())
        if self.tokenwise:
            self.surface = surfaces(store.vocab or [])
            self.starts = np.searchsorted(store.item_index, np.arange(store.n_items + 1))

    @torch.inference_mode()
    def build(self, needs: dict[int, set[int]]) -> dict[tuple[int, int], tuple[str, str]]:
        """(item, latent) -> (plain snippet, snippet with the peak token marked «like this»)."""
        out: dict[tuple[int, int], tuple[str, str]] = {}
        for item, latents in needs.items():
            if not self.tokenwise:
                text = " ".join(str(self.store.items[item].get("text", "")).split()[: 2 * self.radius + 1])
                out.update({(item, j): (text, text) for j in latents})
                continue
            out.update(self._windows(item, latents))
        return out

    def _windows(self, item: int, latents: set[int]) -> dict[tuple[int, int], tuple[str, str]]:
        """The snippets of one text item for each of ``latents``."""
        assert self.store.token_ids is not None
        rows = np.arange(self.starts[item], self.starts[item + 1])
        ids = self.store.token_ids[rows]
        keep = [k for k, t in enumerate(ids) if not _SPECIAL.match(self.surface[t])]
        cols = sorted(latents)
        z = self.encode(self.store.gather(self.hook, rows)).float()[:, cols] if len(rows) else None
        return {(item, j): self._window(item, j, ids, keep, None if z is None else z[:, c])
                for c, j in enumerate(cols)}

    def _window(self, item: int, latent: int, ids: np.ndarray, keep: list[int],
                z: torch.Tensor | None) -> tuple[str, str]:
        if not keep or z is None:
            return "", ""
        vals = z[keep]
        if float(vals.max()) > FIRING_EPS:
            centre = int(vals.argmax())
        else:  # a silent item: any window is as negative as another, so take a seeded one
            centre = int(np.random.default_rng([self.seed, item, latent]).integers(len(keep)))
        a, b = max(0, centre - self.radius), min(len(keep), centre + self.radius + 1)
        toks = [self.surface[ids[keep[k]]] for k in range(a, b)]
        plain = "".join(toks).strip()
        peak = centre - a
        marked = list(toks)
        if float(vals.max()) > FIRING_EPS:
            word = marked[peak]
            marked[peak] = word[: len(word) - len(word.lstrip())] + "«" + word.lstrip() + "»"
        return " ".join(plain.split()), " ".join("".join(marked).strip().split())


def build_examples(plans: list[LatentPlan], store: ActivationStore, label_names: list[str],
                   snippets: TextSnippets | None, images: bool) -> list[LatentExamples]:
    """Examples for every planned latent: marked snippets for the namer, plain ones for the judges."""
    labels = store.labels if store.labels is not None and store.labels.ndim == 1 else None
    texts: dict[tuple[int, int], tuple[str, str]] = {}
    if snippets is not None:
        needs: dict[int, set[int]] = {}
        for p in plans:
            for i in (*p.shown, *p.judged_pos, *p.judged_neg, *p.calib_neg):
                needs.setdefault(i, set()).add(p.latent)
        texts = snippets.build(needs)
    pixels: dict[int, Any] = {}

    def example(p: LatentPlan, item: int, marked: bool) -> Example:
        label = None if labels is None else label_names[int(labels[item])]
        text = None
        if snippets is not None:
            text = texts[(item, p.latent)][1 if marked else 0]
        image = None
        if images:
            if item not in pixels:
                pixels[item] = np.asarray(load_image(image_ref(store.items[item])))
            image = pixels[item]
        return Example(item, text, image, label, p.values.get(item, 0.0))

    out = []
    for p in plans:
        judged = [(i, 1) for i in p.judged_pos] + [(i, 0) for i in p.judged_neg]
        order = np.random.default_rng([0, p.latent]).permutation(len(judged))  # the judge never sees them sorted
        judged = [judged[k] for k in order]
        out.append(LatentExamples(
            p.set_id, p.latent, [example(p, i, True) for i in p.shown],
            [example(p, i, False) for i, _ in judged], [y for _, y in judged],
            [example(p, i, False) for i in (*p.shown[: len(p.calib_neg)], *p.calib_neg)],
            [1] * min(len(p.shown), len(p.calib_neg)) + [0] * len(p.calib_neg),
        ))
    return out
