"""SHA-256 of the weights of seven SAEs, one per architecture, trained from one fixed synthetic store.

    python tools/sae_digests.py [--out DIR]

A refactor that leaves the training arithmetic alone leaves every digest unchanged; compare the printout of two
commits run on the same machine.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

import numpy as np
import torch

from monosemantic.sae import train, train_config
from monosemantic.store import write_store

CONFIGS = {
    "topk": {"arch": "topk", "k": [4]},
    "batchtopk": {"arch": "batchtopk", "k": [4]},
    "matryoshka": {"arch": "matryoshka", "k": [4], "group_fraction": [0.25, 0.75]},
    "jumprelu": {"arch": "jumprelu"},
    "relu": {"arch": "relu"},
    "tied": {"arch": "tied"},
    "gsae": {"arch": "gsae", "k": [4]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = args.out or Path(tempfile.mkdtemp(prefix="sae-digests-"))
    rng = np.random.default_rng(0)
    n, d = 6000, 16
    acts = rng.standard_normal((n, d)).astype(np.float32) @ rng.standard_normal((d, d)).astype(np.float32)
    labels = (acts[:, :2] > 0).astype(np.int64)
    store = root / "store"
    write_store(store, {"h": acts}, item_index=np.arange(n), labels=labels, label_names=["a", "b"])
    for name, extra in CONFIGS.items():
        tc = train_config(dict(acts=store, out=root / name, d_sae=[32], tokens="12K", batch_size=256, seed=0,
                               progress=False, checkpoint_every=0, device="cpu", threads=1, **extra))
        folders = train(tc)
        weights = sorted(Path(folders[0]).glob("*.safetensors"))
        digest = hashlib.sha256(b"".join(w.read_bytes() for w in weights)).hexdigest()[:16]
        print(f"{name:<11} {digest}  ({', '.join(w.name for w in weights)})", flush=True)


if __name__ == "__main__":
    main()
