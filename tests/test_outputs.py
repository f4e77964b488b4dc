"""The shared output-folder rules: what --out may replace, and how a finished result is swapped in."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from monosemantic.errors import UserError
from monosemantic.files import check_out, make_readable, staged
from monosemantic.sae.checkpoint import RunPaths, check_start


def test_a_sweep_may_sit_beside_its_store_but_a_single_sae_may_not_replace_it(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    (exp / "store").mkdir(parents=True)
    (exp / "store" / "manifest.json").write_text("{}")
    check_start(RunPaths.for_names(exp, ["topk-64", "topk-128"]), resume=False, overwrite=False, acts=exp / "store")
    with pytest.raises(UserError, match="would overwrite the input"):
        check_start(RunPaths.for_names(exp, ["topk-64"]), resume=False, overwrite=True, acts=exp / "store")


def test_out_below_a_file_fails_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(UserError, match="is a file, so no folder can be made there"):
        check_out(tmp_path / "f.txt" / "sub", what="a score folder", marker="scores.json", overwrite=False)


def test_staged_into_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "scores"
    here.mkdir()
    monkeypatch.chdir(here)
    check_out(".", what="a score folder", marker="scores.json", overwrite=False)
    with staged(".") as tmp:
        (tmp / "scores.json").write_text("{}")
    assert (here / "scores.json").read_text() == "{}"


def test_a_symlinked_out_is_replaced_at_its_target(tmp_path: Path) -> None:
    target = tmp_path / "scratch" / "result"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("old")
    link = tmp_path / "result"
    link.symlink_to(target)
    with staged(link) as tmp:
        (tmp / "new.txt").write_text("new")
    assert link.is_symlink() and (target / "new.txt").read_text() == "new" and not (target / "old.txt").exists()
    assert not [p for p in (tmp_path / "scratch").iterdir() if p.name.startswith(".")]  # no backup left behind


def test_an_error_keeps_the_earlier_result(tmp_path: Path) -> None:
    final = tmp_path / "r"
    final.mkdir()
    (final / "a.txt").write_text("earlier")
    with pytest.raises(RuntimeError), staged(final) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("killed")
    assert (final / "a.txt").read_text() == "earlier" and os.listdir(tmp_path) == ["r"]


def test_make_readable_follows_the_umask_and_keeps_setgid(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "w.bin").write_bytes(b"1")
    os.chmod(root / "sub" / "w.bin", 0o600)
    os.chmod(root, 0o2700)
    special = stat.S_IMODE(root.stat().st_mode) & 0o7000  # the OS may refuse setgid for a group we are not in
    old = os.umask(0o022)
    try:
        make_readable(root)
    finally:
        os.umask(old)
    assert stat.S_IMODE(root.stat().st_mode) == special | 0o755
    assert stat.S_IMODE((root / "sub").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "sub" / "w.bin").stat().st_mode) == 0o644


def test_fingerprint_skips_dangling_links_and_hidden_files(tmp_path: Path) -> None:
    from monosemantic.sources.datasets import fingerprint

    data = tmp_path / "imgs"
    (data / "cat").mkdir(parents=True)
    (data / "cat" / "a.png").write_bytes(b"123")
    (data / "cat" / "broken.png").symlink_to(tmp_path / "nowhere.png")
    (data / ".cache").mkdir()
    (data / ".cache" / "x").write_bytes(b"0" * 10)
    assert fingerprint(str(data))["files"] == 1 and fingerprint(str(data))["size"] == 3


def test_hidden_folders_in_a_sweep_are_not_scored(tmp_path: Path) -> None:
    from monosemantic.sae.paths import expand_sae_paths

    for name in ("topk-8", ".topk-8.old-abc"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cfg.json").write_text("{}")
    assert expand_sae_paths([tmp_path]) == [tmp_path / "topk-8"]
