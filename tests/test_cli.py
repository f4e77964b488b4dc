"""The command line: help, one-line errors with exit code 2, and refusing to overwrite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monosemantic.cli import main
from monosemantic.store import write_store


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monosemantic", *args], capture_output=True, text=True, timeout=300)


def _one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]


def test_help_lists_commands_and_options() -> None:
    proc = _run("--help")
    assert proc.returncode == 0 and "extract" in proc.stdout and "hooks" in proc.stdout
    proc = _run("extract", "--help")
    assert "Rows kept per item" in proc.stdout and "--layer" in proc.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["extract", "--model", "gpt9", "--layer", "x", "--data", "bbc-news", "--out", "OUT"], "unknown model 'gpt9'"),
        (
            ["extract", "--model", "minilm", "--layer", "x", "--data", "imagenet", "--out", "OUT"],
            "unknown dataset 'imagenet'; choose one of: bbc-news, digits",
        ),
        (
            ["extract", "--model", "minilm", "--layer", "encoder.layer.9", "--data", "bbc-news", "--out", "OUT"],
            "unknown hook 'encoder.layer.9'",
        ),
        (
            ["extract", "--model", "minilm", "--layer", "encoder.layer.1", "--data", "mnist-5k", "--out", "OUT"],
            "reads text but dataset 'mnist-5k' holds image",
        ),
        (["extract", "--model", "minilm", "--data", "bbc-news", "--out", "OUT"], "required: --layer"),
        (
            [
                "extract",
                "--model",
                "minilm",
                "--layer",
                "encoder.layer.1",
                "--data",
                "bbc-news",
                "--out",
                "OUT",
                "--tokens",
                "every",
            ],
            "unknown token selection 'every'",
        ),
        (["inspect", "NOSTORE"], "no activation store"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    args = [a.replace("OUT", str(tmp_path / "out")).replace("NOSTORE", str(tmp_path / "none")) for a in args]
    _one_line_error(_run(*args), needle)


def test_extract_refuses_to_overwrite_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = np.ones((4, 3), np.float32)
    write_store(tmp_path / "s", {"h": x})
    rc = main(
        [
            "extract",
            "--model",
            "minilm",
            "--layer",
            "encoder.layer.0",
            "--data",
            "bbc-news",
            "--out",
            str(tmp_path / "s"),
            "--max-items",
            "2",
        ]
    )
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "s" / "manifest.json").is_file()


def test_corrupt_store_named_by_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = write_store(tmp_path / "s", {"h": np.ones((4, 3), np.float32)})
    shard = store.root / store.manifest.shards[0].file
    shard.write_bytes(b"\x00" * 4)
    assert main(["inspect", str(tmp_path / "s")]) == 2
    assert str(shard) in capsys.readouterr().err
