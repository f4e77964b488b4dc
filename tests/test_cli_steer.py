"""`monosemantic steer` on the bundled SmolLM2 with a tiny SAE: the side-by-side output, --out, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import monosemantic.experiments.steer as steer_experiment
import monosemantic.sources as sources
from monosemantic.cli import main
from monosemantic.sae import SAE, SAEConfig

pytestmark = pytest.mark.slow

HOOK = "model.layers.15"
PROMPTS = ["The best thing about summer is", "My name is"]


def _sae(path: Path, d_in: int = 576) -> Path:
    sae = SAE.create(SAEConfig(d_in=d_in, d_sae=64, architecture="topk", k=8, metadata={"hook_name": HOOK}))
    sae.init_weights(torch.Generator().manual_seed(0))
    return sae.save(path)


@pytest.fixture(scope="module")
def sae_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sae(tmp_path_factory.mktemp("steer") / "sae")


_MODELS: dict[tuple, object] = {}


@pytest.fixture(autouse=True)
def _load_each_model_once(monkeypatch: pytest.MonkeyPatch, one_thread) -> None:
    """The real loader, remembered across this module's tests (the steer command loads a model every call)."""
    real = sources.load_model

    def cached(name: str, **kw):  # type: ignore[no-untyped-def]
        key = (name, *sorted(kw.items()))
        if key not in _MODELS:
            _MODELS[key] = real(name, **kw)
        return _MODELS[key]

    monkeypatch.setattr(steer_experiment, "load_model", cached)


def _steer(*args: str) -> list[str]:
    return ["steer", "--device", "cpu", "--max-new-tokens", "5", *args]


def test_prints_baseline_and_each_alpha_and_writes_jsonl(sae_dir, tmp_path, capsys):
    out = tmp_path / "res" / "steer.jsonl"
    args = _steer("--sae", str(sae_dir), "--latent", "3", "--latent", "7", "--mode", "direction", "--gamma", "act",
                  "--alpha", "0", "--alpha", "0.6", "--error-term", "keep_error", "--out", str(out),
                  "--prompt", PROMPTS[0], "--prompt", PROMPTS[1])
    assert main(args) == 0
    text = capsys.readouterr().out
    assert f"hook {HOOK}; edit: direction latent(s) 3, 7, gamma act; error term: keep_error" in text
    lines = text.splitlines()
    for p in PROMPTS:
        start = lines.index(f"> {p}")
        block = lines[start + 1 : start + 4]
        assert block[0].lstrip().startswith("baseline")
        assert block[1].lstrip().startswith("α = 0 ") and block[2].lstrip().startswith("α = 0.6 ")
    assert sum(ln.lstrip().startswith("baseline ") for ln in lines) == 2 and text.count("α = ") == 4
    assert lines[-1] == str(out)

    records = [json.loads(ln) for ln in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 4
    assert sorted((r["prompt"], r["alpha"]) for r in records) == sorted((p, a) for p in PROMPTS for a in (0.0, 0.6))
    for r in records:
        assert r["latents"] == [3, 7] and r["mode"] == "direction" and r["gamma"] == "act"
        assert r["error_term"] == "keep_error" and r["hook"] == HOOK
        assert f"baseline     | {r['baseline']!r}" in text and f"| {r['steered']!r}" in text
        if r["alpha"] == 0:
            assert r["steered"] == r["baseline"]  # an identity edit continues exactly as the unsteered model
    assert any(r["steered"] != r["baseline"] for r in records if r["alpha"] == 0.6)
    assert not list(out.parent.glob(".*tmp"))  # written atomically, no leftovers

    # an existing --out is refused and left as it was; --overwrite replaces it
    before = out.read_bytes()
    again = _steer("--sae", str(sae_dir), "--latent", "3", "--prompt", PROMPTS[1], "--out", str(out))
    assert main(again) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == before
    assert main([*again, "--max-new-tokens", "2", "--mode", "clamp", "--alpha", "9", "--error-term",
                 "reconstruction", "--overwrite"]) == 0
    shown = capsys.readouterr().out
    assert "edit: clamp latent(s) 3; error term: reconstruction" in shown
    (rec,) = [json.loads(ln) for ln in out.read_text(encoding="utf-8").splitlines()]
    assert rec["mode"] == "clamp" and rec["alpha"] == 9 and rec["gamma"] is None and rec["prompt"] == PROMPTS[1]


def test_prompts_file_adds_to_the_prompts(sae_dir, tmp_path, capsys):
    f = tmp_path / "prompts.txt"
    f.write_text("\nOnce upon a time\n   \nThe sky is\n", encoding="utf-8")
    assert main(_steer("--sae", str(sae_dir), "--latent", "0", "--alpha", "0", "--prompts", str(f),
                       "--prompt", "Hello", "--max-new-tokens", "2")) == 0
    text = capsys.readouterr().out
    assert [ln for ln in text.splitlines() if ln.startswith("> ")] == ["> Hello", "> Once upon a time", "> The sky is"]


def _fails(capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("monosemantic steer: error:") and needle in lines[0], lines[0]
    assert captured.out == ""


def test_latent_out_of_range(sae_dir, capsys):
    _fails(capsys, _steer("--sae", str(sae_dir), "--latent", "64", "--prompt", "Hi"),
           "latent 64 is out of range; this SAE has latents 0 to 63")


def test_alpha_nan(sae_dir, capsys):
    _fails(capsys, _steer("--sae", str(sae_dir), "--latent", "1", "--alpha", "nan", "--prompt", "Hi"),
           "finite number")


def test_empty_prompts_file(sae_dir, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    _fails(capsys, _steer("--sae", str(sae_dir), "--latent", "1", "--prompts", str(empty)), "holds no prompt")


def test_missing_prompts_file(sae_dir, tmp_path, capsys):
    _fails(capsys, _steer("--sae", str(sae_dir), "--latent", "1", "--prompts", str(tmp_path / "nope.txt")),
           "cannot read --prompts")


def test_no_prompt(sae_dir, capsys):
    _fails(capsys, _steer("--sae", str(sae_dir), "--latent", "1"), "give a prompt with --prompt")


def test_sae_of_the_wrong_width(tmp_path, capsys):
    narrow = _sae(tmp_path / "narrow", d_in=64)
    _fails(capsys, _steer("--sae", str(narrow), "--latent", "1", "--prompt", "Hi"),
           f"the SAE reads width 64 but '{HOOK}' of this model gives width 576")


def test_non_causal_model(sae_dir, capsys):
    _fails(capsys, _steer("--sae", str(sae_dir), "--model", "minilm", "--latent", "1", "--prompt", "Hi"),
           "model 'minilm' is not a causal language model")


def test_bad_numbers_and_missing_latent(sae_dir, capsys):
    _fails(capsys, _steer("--sae", str(sae_dir), "--latent", "1", "--prompt", "Hi", "--max-new-tokens", "0"),
           "--max-new-tokens must be at least 1")
    with pytest.raises(SystemExit) as exc:  # argparse: --latent is required
        main(["steer", "--sae", str(sae_dir), "--prompt", "Hi"])
    assert exc.value.code == 2
    assert "--latent" in capsys.readouterr().err
