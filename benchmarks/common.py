"""What every benchmark prints first: the machine and the exact command."""

from __future__ import annotations

import os
import platform
import shlex
import sys


def machine() -> str:
    import torch

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"Python {platform.python_version()}, {platform.system()}"
    )


def header(title: str) -> None:
    print(f"# {title}")
    print(f"machine: {machine()}")
    print(f"command: python {shlex.join(sys.argv)}")
    try:
        load = os.getloadavg()
        print(f"load average at start: {load[0]:.2f} (other work on the machine skews timings)")
    except OSError:
        pass
