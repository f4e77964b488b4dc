"""Two torchrun processes (gloo, CPU) train the same SAE as one process: each rank reads half of every batch."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import torch

from monosemantic.sae import SAE, TrainConfig, train
from monosemantic.store import write_store


def test_two_process_ddp_matches_single_process(tmp_path):
    rng = np.random.default_rng(0)
    dic = rng.standard_normal((40, 12))
    x = ((rng.random((6000, 40)) < 0.08) * rng.exponential(1.0, (6000, 40)) @ dic).astype(np.float32)
    store = tmp_path / "store"
    write_store(store, {"h": x}, item_index=np.arange(6000) // 6)
    common = ["--acts", str(store), "--arch", "topk", "--d-sae", "48", "--k", "4", "--tokens", "8K", "--batch-size",
              "512", "--lr", "3e-3", "--no-progress", "--threads", "1", "--checkpoint-every", "5", "--no-bf16"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "monosemantic", "train", *common, "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    tc = TrainConfig(acts=store, out=tmp_path / "single", arch="topk", d_sae=[48], k=[4], tokens="8K",
                     batch_size=512, lr=3e-3, progress=False, threads=1, bf16=False)
    (single,) = train(tc)
    a, b = SAE.load(tmp_path / "ddp"), SAE.load(single)
    for n in ("W_enc", "W_dec", "b_enc", "b_dec"):
        # same rows per step, gradients averaged over ranks: equal up to float summation order (fp32 matmul:
        # with --bf16 the encoder matmul blocking depends on the local batch size, which can flip near-ties)
        torch.testing.assert_close(getattr(a, n), getattr(b, n), rtol=1e-5, atol=1e-6, msg=n)
