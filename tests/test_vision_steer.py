"""Steering through a vision encoder on a tiny randomly initialised LLaVA (real transformers architecture code: a
CLIP vision tower, a projector and a Llama LM, with a real LlavaProcessor), on a tiny CNN, and the command's bad
input: an image that cannot be read, a model without a vision tower, a model missing from the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf

from monosemantic.cli import main
from monosemantic.errors import UserError
from monosemantic.sae import SAE, SAEConfig
from monosemantic.sources.vlm import VisionLM, load_vlm, processor_vlm
from monosemantic.steer.interventions import Edit, SteeringRecord, edit_latents, steering
from monosemantic.steer.vision import answer, steer_vlm

D = 32
HOOK = "vision_tower.encoder.layers.1"  # a unique suffix: the full path differs across transformers versions
N_TOKENS = 17  # CLS + 16 patches of a 32 px image with 8 px patches
WORDS = "user assistant what is shown in this image ? use exactly one word ! write me a short love poem : . , hello"


def _processor() -> tf.LlavaProcessor:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<pad>": 0, "</s>": 1, "<s>": 2, "<unk>": 3}
    for w in WORDS.split():
        vocab.setdefault(w, len(vocab))
    vocab["<image>"] = 150
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = tf.PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                     unk_token="<unk>", extra_special_tokens={"image_token": "<image>"})
    images = tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return tf.LlavaProcessor(image_processor=images, tokenizer=tok, patch_size=8, image_token="<image>",
                             vision_feature_select_strategy="default", num_additional_image_tokens=1)


def _tiny_llava() -> tf.LlavaForConditionalGeneration:
    torch.manual_seed(0)
    vision = tf.CLIPVisionConfig(hidden_size=D, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                                 image_size=32, patch_size=8)
    text = tf.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=4, vocab_size=160, max_position_embeddings=64)
    return tf.LlavaForConditionalGeneration(tf.LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=150, vision_feature_layer=-2,
        vision_feature_select_strategy="default")).eval()


@pytest.fixture(scope="module")
def vlm() -> VisionLM:
    return processor_vlm("tiny-llava", _tiny_llava(), _processor())


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-llava")
    _tiny_llava().save_pretrained(folder)
    _processor().save_pretrained(folder)
    return folder


def _orthonormal_sae(active: int, d_sae: int = 8, shift: float = 50.0) -> SAE:
    """A ReLU SAE with orthonormal decoder rows and W_enc = W_decᵀ, b_enc = 0, so encode(decode(f)) = f for f ≥ 0;
    b_dec = −shift·W_dec[active] keeps latent ``active`` positive on every token, so a clamp of it is exact there."""
    sae = SAE.create(SAEConfig(d_in=D, d_sae=d_sae, architecture="relu", metadata={"hook_name": HOOK}))
    q, _ = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(1)))
    w = q[:, :d_sae].T.contiguous()
    with torch.no_grad():
        sae.W_dec.copy_(w)
        sae.W_enc.copy_(w.T)
        sae.b_enc.zero_()
        sae.b_dec.copy_(-shift * w[active])
    return sae


def _images(n: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (40 + 8 * i, 48, 3), dtype=np.uint8) for i in range(n)]


def _logits(vlm: VisionLM, img: np.ndarray, prompt: str = "what is shown in this image ?") -> torch.Tensor:
    with torch.inference_mode():
        return vlm.module(**vlm.prepare([img], [prompt])).logits


def _hooked_outputs(vlm: VisionLM, sae: SAE, edits: list[Edit], img: np.ndarray,
                    **kw) -> tuple[torch.Tensor, SteeringRecord]:
    """The hooked block's output as the rest of the tower sees it (a hook registered after the steering one)."""
    seen: list[torch.Tensor] = []
    block = dict(vlm.module.named_modules())[f"model.{HOOK}"]
    with steering(vlm.module, sae, edits, hook=HOOK, **kw) as record:
        handle = block.register_forward_hook(lambda _m, _i, out: seen.append(out[0] if isinstance(out, tuple)
                                                                             else out))
        try:
            _logits(vlm, img)
        finally:
            handle.remove()
    return seen[0], record


@pytest.mark.parametrize("pooling", ["tokens", "pooled"])
@pytest.mark.parametrize("error_term", ["keep_error", "reconstruction"])
def test_alpha_zero_add_reproduces_the_unsteered_logits_and_answers(one_thread, vlm, pooling, error_term):
    sae = _orthonormal_sae(active=3)
    img = _images(1)[0]
    base = _logits(vlm, img)
    base_answer = answer(vlm, [img], ["what is shown in this image ?"], max_new_tokens=6)
    edit = [Edit((3,), "add", 0.0)]
    with steering(vlm.module, sae, edit, hook=HOOK, error_term="keep_error", pooling=pooling) as record:
        steered = _logits(vlm, img)
        steered_answer = answer(vlm, [img], ["what is shown in this image ?"], max_new_tokens=6)
    assert record.calls >= 2
    assert torch.equal(base, steered)
    assert base_answer == steered_answer
    if error_term == "reconstruction":  # a no-op edit with the reconstruction still changes h (the SAE's error)
        with steering(vlm.module, sae, edit, hook=HOOK, error_term=error_term, pooling=pooling):
            assert not torch.equal(base, _logits(vlm, img))


@pytest.mark.parametrize("kind", ["clamp", "clamp_zero_others"])
@pytest.mark.parametrize("error_term", ["keep_error", "reconstruction"])
def test_clamp_sets_the_latent_at_every_image_token(one_thread, vlm, kind, error_term):
    sae = _orthonormal_sae(active=3)
    img = _images(1)[0]
    raw, _ = _hooked_outputs(vlm, sae, [Edit((3,), "add", 0.0)], img)
    edited, record = _hooked_outputs(vlm, sae, [Edit((3,), kind, 7.5)], img, error_term=error_term)
    assert raw.shape == edited.shape == (1, N_TOKENS, D)
    assert record.positions == N_TOKENS
    f = sae.encode(edited.reshape(-1, D)).detach().double()
    torch.testing.assert_close(f[:, 3], torch.full((N_TOKENS,), 7.5, dtype=torch.float64), atol=1e-4, rtol=1e-4)
    want = edit_latents(sae.encode(raw.reshape(-1, D)), [Edit((3,), kind, 7.5)]).double()
    if error_term == "reconstruction" or kind == "clamp":
        # other latents: kept (clamp) or zero (clamp_zero_others, exact once the error term is dropped)
        torch.testing.assert_close(f, want, atol=1e-4, rtol=1e-4)
    assert not torch.equal(_logits(vlm, img), _with(vlm, sae, [Edit((3,), kind, 7.5)], img, error_term))


def _with(vlm: VisionLM, sae: SAE, edits: list[Edit], img: np.ndarray, error_term: str) -> torch.Tensor:
    with steering(vlm.module, sae, edits, hook=HOOK, error_term=error_term):
        return _logits(vlm, img)


def test_pooled_clamp_sets_the_latent_of_each_images_mean(one_thread, vlm):
    sae = _orthonormal_sae(active=5)
    img = _images(1)[0]
    raw, _ = _hooked_outputs(vlm, sae, [Edit((5,), "add", 0.0)], img)
    edited, _ = _hooked_outputs(vlm, sae, [Edit((5,), "clamp", 4.0)], img, pooling="pooled")
    f = sae.encode(edited.mean(dim=1)).detach().double()
    assert abs(float(f[0, 5]) - 4.0) < 1e-4
    shift = edited - raw  # the same shift at every token
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift), atol=1e-5, rtol=0)


def test_steer_vlm_records_baseline_and_each_alpha(one_thread, vlm):
    sae = _orthonormal_sae(active=3)
    edits = {0.0: [Edit((3,), "add", 0.0)], 30.0: [Edit((3,), "clamp", 30.0)]}
    records = steer_vlm(vlm, sae, edits, _images(2), ["what is shown in this image ?"], hook="encoder.layers.1",
                        max_new_tokens=4)
    assert len(records) == 4 and {r.alpha for r in records} == {0.0, 30.0}
    assert all(r.hook == f"model.{HOOK}" for r in records)
    assert all(r.steered == r.baseline for r in records if r.alpha == 0.0)


def test_cnn_maps_are_edited_at_every_spatial_position(one_thread):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, D, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(D, 4, 1)).eval()
    sae = _orthonormal_sae(active=2, shift=5.0)
    x = torch.randn(2, 3, 5, 6)
    seen: list[torch.Tensor] = []
    with torch.inference_mode():
        base = net(x)
        with steering(net, sae, [Edit((2,), "add", 0.0)], hook="1"):
            assert torch.equal(net(x), base)
        with steering(net, sae, [Edit((2,), "clamp", 3.0)], hook="1", error_term="reconstruction") as record:
            handle = net[1].register_forward_hook(lambda _m, _i, out: seen.append(out))
            net(x)
            handle.remove()
    assert record.positions == 2 * 5 * 6
    rows = seen[0].flatten(2).transpose(1, 2).reshape(-1, D)
    torch.testing.assert_close(sae.encode(rows)[:, 2], torch.full((60,), 3.0), atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------ the command


def _sae_dir(path: Path, active: int = 3) -> Path:
    return _orthonormal_sae(active=active).save(path)


def _png(path: Path) -> Path:
    from PIL import Image

    Image.fromarray(_images(1)[0]).save(path)
    return path


def _steer(*args: str) -> list[str]:
    return ["steer", "--device", "cpu", "--max-new-tokens", "4", *args]


def test_command_prints_unsteered_and_steered_answers(one_thread, llava_dir, tmp_path, capsys):
    sae, img = _sae_dir(tmp_path / "sae"), _png(tmp_path / "img.png")
    out = tmp_path / "steer.jsonl"
    code = main(_steer("--model", str(llava_dir), "--vision-hook", "encoder.layers.1", "--sae", str(sae),
                       "--latent", "3", "--mode", "clamp_zero_others", "--alpha", "0", "--alpha", "30",
                       "--image", str(img), "--prompt", "what is shown in this image ?", "--out", str(out)))
    text = capsys.readouterr().out
    assert code == 0, text
    assert f"hook model.{HOOK}; edit: clamp_zero_others latent(s) 3; error term: keep_error" in text
    assert "baseline     |" in text and "α = 30" in text
    assert len(out.read_text().splitlines()) == 2


def test_an_unreadable_image_is_one_line(llava_dir, tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_text("not an image")
    code = main(_steer("--model", str(llava_dir), "--vision-hook", "encoder.layers.1", "--sae",
                       str(_sae_dir(tmp_path / "sae")), "--latent", "3", "--image", str(bad), "--prompt", "hello"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "cannot read image" in err and "broken.png" in err
    code = main(_steer("--model", str(llava_dir), "--vision-hook", "encoder.layers.1", "--sae",
                       str(tmp_path / "sae"), "--latent", "3", "--image", str(tmp_path / "none.png"), "--prompt", "x"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "none.png" in err


def test_a_model_without_a_vision_tower_is_refused(tmp_path, capsys):
    llama = tf.LlamaForCausalLM(tf.LlamaConfig(vocab_size=64, hidden_size=D, intermediate_size=64,
                                               num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4))
    llama.save_pretrained(tmp_path / "llama")
    capsys.readouterr()
    with pytest.raises(UserError, match="has no vision tower"):
        load_vlm(str(tmp_path / "llama"))
    args = ["--vision-hook", "encoder.layer.3", "--sae", str(_sae_dir(tmp_path / "sae")), "--latent", "3",
            "--image", str(_png(tmp_path / "img.png")), "--prompt", "hello"]
    for model in ("minilm", str(tmp_path / "llama")):
        assert main(_steer("--model", model, *args)) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "has no vision tower" in err, err


def test_a_model_missing_from_the_cache_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(UserError, match="not in the Hugging Face cache"):
        load_vlm("llava-hf/llava-1.5-7b-hf")
    code = main(_steer("--model", "llava-hf/llava-1.5-7b-hf", "--vision-hook", "encoder.layers.22", "--sae",
                       str(_sae_dir(tmp_path / "sae")), "--latent", "3", "--image", str(_png(tmp_path / "i.png")),
                       "--prompt", "hello"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "not in the Hugging Face cache" in err, err


def test_a_hook_outside_the_vision_tower_is_refused(one_thread, vlm):
    from monosemantic.steer.vision import check_vlm_hook

    with pytest.raises(UserError, match="not inside the vision tower"):
        check_vlm_hook(vlm, _orthonormal_sae(3), "language_model.layers.0")


def test_steer_score_command_end_to_end(one_thread, llava_dir, tmp_path, capsys):
    import json

    from PIL import Image

    import test_vision_steer_measure as measure_tests

    clip_model, clip_proc = measure_tests._tiny_clip()
    clip_model.save_pretrained(tmp_path / "clip")
    clip_proc.save_pretrained(tmp_path / "clip")
    rng = np.random.default_rng(1)
    for name in ("cat", "dog"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    capsys.readouterr()
    out = tmp_path / "score.json"
    code = main(["steer-score", "--model", str(llava_dir), "--vision-hook", "encoder.layers.1", "--sae",
                 str(_sae_dir(tmp_path / "sae")), "--latent", "3", "--latent", "5", "--data", str(tmp_path / "data"),
                 "--clip", str(tmp_path / "clip"), "--n-images", "2", "--top-images", "3", "--alpha", "30",
                 "--max-new-tokens", "3", "--device", "cpu", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "steering score" in text and "bounds: upper" in text
    result = json.loads(out.read_text())
    score = result["score"]
    assert score["n"] + score["empty_answers"] == 4 and len(score["pairs"]) == 4
    assert result["bounds"]["n"] == 2 and -1 <= result["bounds"]["lower"] <= 1
