"""The vision-steering measurement on a tiny random CNN classifier (the real one on MobileNetV2 is in
docs/findings-vision-steering.md), the steering score against a direct computation on a tiny random CLIP, and the
report section built from the measurement's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf

import monosemantic.experiments.steer as steer_experiment
import monosemantic.experiments.steer_measure as measure_experiment
from monosemantic.cli import main
from monosemantic.sae import SAE, SAEConfig
from monosemantic.sources.base import IMAGENET_MEAN, IMAGENET_STD, Batch, Model, to_pixels
from monosemantic.steer.vision_score import clip_embedders, first_word, score_bounds, steering_scores

C = 8  # channels of the hooked block


def _tiny_classifier() -> Model:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, C, 3, stride=2, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(C, C, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(C, 10)).eval()

    def prepare(images):  # type: ignore[no-untyped-def]
        return Batch(inputs={"pixel_values": to_pixels(images, 16, IMAGENET_MEAN, IMAGENET_STD)})

    return Model(name="tiny-cnn", modality="image", module=net, prepare=prepare,
                 forward=lambda b: net(b.inputs["pixel_values"]), embed=lambda b: net(b.inputs["pixel_values"]),
                 has_cls=False, fingerprint="x", image_size=16)


def _sae(path: Path) -> Path:
    sae = SAE.create(SAEConfig(d_in=C, d_sae=24, architecture="relu", metadata={"hook_name": "2"}))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        sae.W_dec.copy_(torch.nn.functional.normalize(torch.randn(24, C, generator=g), dim=-1))
        sae.W_enc.copy_(sae.W_dec.T)
        sae.b_enc.copy_(torch.rand(24, generator=g) * 0.1)
    return sae.save(path)


def test_measurement_runs_and_the_report_shows_it(one_thread, tmp_path, monkeypatch, capsys):
    from monosemantic.report.render import build_html
    from monosemantic.report.sections import section
    from monosemantic.report.sections.steer_measure import KIND

    monkeypatch.setattr(measure_experiment, "load_model", lambda name, **kw: _tiny_classifier())
    out = tmp_path / "run" / "steer_measure"
    args = ["steer-measure", "--sae", str(_sae(tmp_path / "sae")), "--out", str(out), "--model", "tiny",
            "--data", "digits", "--max-items", "48", "--image-size", "16", "--latents", "3", "--random", "2",
            "--alpha", "0", "--alpha", "20", "--top-images", "4", "--device", "cpu", "--mode", "clamp_zero_others"]
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "top-1 → latent's class" in printed
    result = json.loads((out / "steer_measure.json").read_text())
    assert result["format"] == "monosemantic-steer-measure" and result["version"] == 1 and result["hook"] == "2"
    assert [s["group"] for s in result["summary"]] == ["chosen", "random"] * 2
    n_photos = len(result["neutral"])
    assert n_photos >= 3 and result["neutral"][-1]["name"] == "grey"
    for s in result["summary"]:
        assert s["pairs"] == s["latents"] * n_photos and 0 <= s["successes"] <= s["pairs"]
    for lat in result["latents"]:  # the target is the most common top-1 among the latent's top images
        counts = {c: lat["top_classes"].count(c) for c in lat["top_classes"]}
        assert counts[lat["target"]] == max(counts.values()) and lat["purity"] == max(counts.values()) / 4
    # α = 0 with clamp_zero_others still moves predictions (every other latent zeroed); rows hold one per α
    assert len(result["rows"]) == 2 * len(result["latents"])
    found = KIND.find(tmp_path / "run")
    assert found is not None and found == result
    assert printed.splitlines()[-1] == str(out / "steer_measure.json")
    assert (out / "steer_measure.html").read_text().count("<details>") == len(result["latents"])
    page = build_html({"tracks": []}, [(section(KIND), found)])
    assert "Steering through a vision encoder" in page and "random latents (control)" in page
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err  # an earlier result is kept


def _tiny_clip() -> tuple[tf.CLIPModel, object]:
    from tokenizers import Tokenizer, models, pre_tokenizers

    torch.manual_seed(0)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                  patch_size=8)
    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, vocab_size=64,
                max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    model = tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()
    vocab = {"<s>": 0, "</s>": 1, "<unk>": 2}
    for w in ["cat", "dog", "pencil", "car", "tree", "house"]:
        vocab[w] = len(vocab)
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = tf.PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="</s>", unk_token="<unk>")
    images = tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return model, tf.CLIPProcessor(image_processor=images, tokenizer=tok)


def test_steering_score_and_bounds_match_a_direct_computation(one_thread):
    model, proc = _tiny_clip()
    embed_text, embed_images = clip_embedders(model, proc)
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(6)]
    words = {(0, 0): "cat", (0, 1): "pencil", (5, 0): "", (5, 1): "house"}
    tops = {0: imgs[:3], 5: imgs[3:]}
    got = steering_scores(words, tops, embed_text, embed_images)
    t = torch.nn.functional.normalize(embed_text(["cat", "pencil", "house"]).double(), dim=-1)
    im = torch.nn.functional.normalize(embed_images(imgs).double(), dim=-1)
    want = [float(t[0] @ im[:3].mean(0)), float(t[1] @ im[:3].mean(0)), float(t[2] @ im[3:].mean(0))]
    assert got.n == 3 and got.empty_answers == 1
    assert got.mean == pytest.approx(np.mean(want), abs=1e-6) and got.std == pytest.approx(np.std(want), abs=1e-6)
    assert [(p.latent, p.image, p.word) for p in got.pairs] == [(0, 0, "cat"), (0, 1, "pencil"), (5, 0, ""),
                                                               (5, 1, "house")]
    assert got.pairs[2].score is None
    names = ["cat", "dog", "car"]
    b = score_bounds(imgs[:3], [0, 1, 2], names, embed_text, embed_images, seed=0)
    tn = torch.nn.functional.normalize(embed_text(names).double(), dim=-1)
    assert b.upper == pytest.approx(float((im[:3] * tn).sum(-1).mean()), abs=1e-6)
    assert b.lower != b.upper and b.n == 3


def test_first_word() -> None:
    assert first_word(" Pencil.</s>") == "Pencil" and first_word("...") == ""
    assert first_word("ice-cream!") == "ice-cream"


def test_steer_command_prints_top_classes_before_and_after(one_thread, tmp_path, monkeypatch, capsys):
    from PIL import Image

    monkeypatch.setattr(steer_experiment, "load_model", lambda name, **kw: _tiny_classifier())
    img = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(img)
    args = ["steer", "--model", "mobilenet_v2", "--vision-hook", "2", "--sae", str(_sae(tmp_path / "sae")),
            "--latent", "4", "--mode", "clamp", "--alpha", "0", "--alpha", "50", "--image", str(img), "--top", "3",
            "--device", "cpu"]
    assert main(args) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "hook 2; edit: clamp latent(s) 4; error term: keep_error; positions: tokens" in text
    lines = [ln for ln in text.splitlines() if "|" in ln]
    assert [ln.split("|")[0].strip() for ln in lines] == ["before", "α = 0", "α = 50"]
    assert all(ln.count(",") == 2 for ln in lines)  # three classes each


def test_imagenet_names_and_neutral_photos() -> None:
    from monosemantic.sources.samples import imagenet_class_names, neutral_images

    names = imagenet_class_names()
    assert len(set(names)) == 1000 and names[0] == "tench" and names[285] == "Egyptian cat"
    photos = neutral_images(32)
    assert {"chelsea", "china", "grey"} <= set(photos)
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in photos.values())
    assert (photos["grey"] == 128).all() and photos["grey"].shape == (32, 32, 3)
