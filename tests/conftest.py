"""Every test runs offline: hub variables set, HF_HOME empty, and any non-loopback connection raises."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile

import pytest

os.environ.update(
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    HF_HOME=tempfile.mkdtemp(prefix="hf_empty_"),
    TOKENIZERS_PARALLELISM="false",
)


def _is_local(host: object) -> bool:
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return host in ("localhost",)


_real_connect, _real_getaddrinfo = socket.socket.connect, socket.getaddrinfo


def _guarded_connect(sock: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not _is_local(host) and sock.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError(f"network disabled in tests: {address!r}")
    return _real_connect(sock, address)


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
    if host is not None and not _is_local(str(host)):
        raise OSError(f"DNS disabled in tests: {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def _seed() -> None:
    import torch

    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: kernel results do not depend on how work is split between threads."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
