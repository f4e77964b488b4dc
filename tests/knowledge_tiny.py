"""A tiny randomly initialised LLaMA that "knows" one answer, a word-level tokenizer, and SAEs built to order,
for the knowledge tests.

Every token embedding carries a large component along the first residual coordinate e₀ and the LM head reads
e₀ into the logit of ``Paris``, so the model answers Paris to everything. The residual SAE's latent 0 reads and
writes e₀: ablating it (error-preserving) takes away what writes the answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers as tf

from monosemantic.sae import SAE, SAEConfig

D, D_MLP = 32, 64
RESID, MLP = "model.layers.1", "model.layers.1.mlp.down_proj:input"
WORDS = ["The", "capital", "of", "is", "has", "the", "city", "called", "Xland", "Yland", "Zland", "Wland", "Paris",
         "Rome", ".", ":", "?", ",", "chemical", "symbol", "element", "In", "periodic", "table", "written", "as",
         "currency", "people", "pay", "with", "official", "used"]
ANSWER = "Paris"


def tokenizer() -> tf.PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[EOS]", *dict.fromkeys(WORDS)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    from tokenizers import decoders

    tok.decoder = decoders.WordPiece(prefix="##")
    return tf.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                      eos_token="[EOS]")


def model(tok: tf.PreTrainedTokenizerFast) -> tf.LlamaForCausalLM:
    cfg = tf.LlamaConfig(vocab_size=len(tok), hidden_size=D, intermediate_size=D_MLP, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None,
                         tie_word_embeddings=False)
    torch.manual_seed(0)
    lm = tf.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        lm.model.embed_tokens.weight[:, 0] += 10.0
        lm.lm_head.weight[:, 0] = 0.0
        lm.lm_head.weight[tok.convert_tokens_to_ids(ANSWER), 0] = 5.0
    return lm


def resid_sae(d_in: int = D, hook: str = RESID, model_name: str | None = None) -> SAE:
    """Latent 0 reads and writes e₀; the others are small random directions that rarely fire."""
    meta = {"hook_name": hook, **({"model_name": model_name} if model_name else {})}
    sae = SAE.create(SAEConfig(d_in=d_in, d_sae=8, architecture="relu", metadata=meta))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        w = torch.randn(8, d_in, generator=g)
        w /= w.norm(dim=1, keepdim=True)
        w[0] = 0
        w[0, 0] = 1.0
        sae.W_dec.copy_(w)
        sae.W_enc.copy_(w.T)
        sae.b_enc.copy_(torch.full((8,), -0.5))
        sae.b_enc[0] = 0.0
        sae.b_dec.zero_()
    return sae


def mlp_sae(d_in: int = D_MLP, hook: str = MLP) -> SAE:
    sae = SAE.create(SAEConfig(d_in=d_in, d_sae=16, architecture="relu", metadata={"hook_name": hook}))
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        w = torch.randn(16, d_in, generator=g)
        w /= w.norm(dim=1, keepdim=True)
        sae.W_dec.copy_(w)
        sae.W_enc.copy_(w.T)
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def save_model(folder: Path) -> Path:
    tok = tokenizer()
    lm = model(tok)
    lm.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


FACTS = [
    {"subject": "Xland", "relation": "capitals", "template": "The capital of {subject} is", "answer": "Paris",
     "paraphrases": ["{subject} has the capital", "The capital city of {subject} is called"]},
    {"subject": "Yland", "relation": "capitals", "template": "The capital of {subject} is", "answer": ["Paris"],
     "paraphrases": ["{subject} has the capital", "The capital city of {subject} is called"]},
    {"subject": "Zland", "relation": "capitals", "template": "The capital of {subject} is", "answer": "Paris",
     "paraphrases": ["{subject} has the capital"]},
    {"subject": "Wland", "relation": "capitals", "prompt": "The capital of Wland is", "answer": "Paris"},
]


def write_facts(path: Path, rows: list[dict] | None = None) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in (FACTS if rows is None else rows)), encoding="utf-8")
    return path
