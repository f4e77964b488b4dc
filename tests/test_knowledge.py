"""The knowledge stage on a tiny LLaMA built here: localisation and ablation of the unit that writes the answer,
FeatureEdit patches that revert exactly, the metrics against brute-force formulas, and the fact tables."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

import knowledge_tiny as tiny
from monosemantic.errors import UserError
from monosemantic.knowledge import metrics as M
from monosemantic.knowledge.ablate import Condition, ablated_logprobs, unit_choices
from monosemantic.knowledge.edit import WeightPatch, feature_edit, neuron_edit, probe_columns
from monosemantic.knowledge.lm import answer_logprobs, encode
from monosemantic.knowledge.localise import profile
from monosemantic.knowledge.monotest import related_tests
from monosemantic.sources.datasets.facts import RELATIONS, builtin_facts, fill, matches, read_facts_jsonl


@pytest.fixture(scope="module")
def lm():
    tok = tiny.tokenizer()
    return tiny.model(tok), tok


def _prompts(n: int = 4):
    with tempfile.TemporaryDirectory() as tmp:
        facts = read_facts_jsonl(tiny.write_facts(Path(tmp) / "facts.jsonl"))
    rows = [(f, p) for f in facts for p in f.prompts][:n * 3]
    return [p for _, p in rows], [f.answers[0] for f, _ in rows]


@pytest.mark.usefixtures("one_thread")
def test_padded_batch_gives_the_same_answer_probability_as_one_prompt_alone(lm):
    module, tok = lm
    prompts, answers = _prompts()
    batch = answer_logprobs(module, encode(tok, prompts, answers))[:, 0]
    alone = torch.stack([answer_logprobs(module, encode(tok, [p], [a]))[0, 0]
                         for p, a in zip(prompts, answers, strict=True)])
    torch.testing.assert_close(batch, alone, atol=1e-5, rtol=1e-5)


def test_subject_and_last_positions_are_the_sites(lm):
    _, tok = lm
    prompts, answers = _prompts(2)
    enc = encode(tok, prompts[:1], answers[:1])  # "The capital of Xland is"
    assert enc.sites[0].nonzero().squeeze(-1).tolist() == [3, 4]
    assert enc.ids[0, 3] == tok.convert_tokens_to_ids("Xland")


@pytest.mark.usefixtures("one_thread")
def test_ablating_the_feature_that_writes_the_answer_lowers_its_probability(lm):
    module, tok = lm
    prompts, answers = _prompts()
    saes = [("residual:" + tiny.RESID, tiny.RESID, tiny.resid_sae())]
    prof = profile(module, tok, prompts, answers, saes, tiny.MLP, attribute=True)
    assert (prof.features["residual:" + tiny.RESID].argmax(-1) == 0).all()  # latent 0 is every prompt's top unit
    assert prof.logp.exp().min() > 0.9
    choices = unit_choices(prof, ["residual:" + tiny.RESID], [1], seed=0)
    assert (choices[Condition("residual:" + tiny.RESID, False, 1)] == 0).all()
    abl = ablated_logprobs(module, tok, prompts, answers, choices, {s: (h, sae) for s, h, sae in saes}, tiny.MLP)
    dp = M.delta_prob(prof.logp, abl[Condition("residual:" + tiny.RESID, False, 1)])
    assert dp.min() > 0.9
    control = M.delta_prob(prof.logp, abl[Condition("residual:" + tiny.RESID, True, 1)])
    assert control.abs().max() < 0.05
    assert set(abl) == {Condition(u, c, 1) for u in ("residual:" + tiny.RESID, "neurons") for c in (False, True)}


@pytest.mark.usefixtures("one_thread")
def test_neuron_attribution_is_activation_times_gradient(lm):
    module, tok = lm
    prompts, answers = _prompts(1)
    prof = profile(module, tok, prompts[:1], answers[:1], [], tiny.MLP, attribute=True)
    assert all(p.grad is None and p.requires_grad for p in module.parameters())  # the model is left as it was
    enc = encode(tok, prompts[:1], answers[:1])
    store = {}

    def grab(_m, args):
        a = args[0].detach().requires_grad_(True)
        store["a"] = a
        return (a,)

    h = module.model.layers[1].mlp.down_proj.register_forward_pre_hook(grab)
    try:
        with torch.enable_grad():
            answer_logprobs(module, enc).sum().backward()
    finally:
        h.remove()
    a, g = store["a"][0], store["a"].grad[0]
    sites = enc.sites[0]
    torch.testing.assert_close(prof.attribution[0], (a[sites] * g[sites]).sum(0), atol=1e-6, rtol=1e-4)


@pytest.mark.usefixtures("one_thread")
def test_feature_edit_changes_outputs_and_a_reverted_patch_restores_them_exactly(lm, tmp_path):
    module, tok = lm
    prompts, answers = _prompts(2)
    enc = encode(tok, prompts, answers)
    before = module(input_ids=enc.ids, attention_mask=enc.mask).logits.clone()
    weights = {k: v.clone() for k, v in module.state_dict().items()}
    sae = tiny.mlp_sae()
    for mode in ("columns", "block"):
        patch = feature_edit(module, sae, tiny.MLP, [0, 3], mode=mode, tau2=0.3, tau3=0.3)
        assert patch.n_entries > 0
        patch.apply(module)
        changed = module(input_ids=enc.ids, attention_mask=enc.mask).logits
        assert not torch.equal(changed, before)
        patch.revert(module)
        assert torch.equal(module(input_ids=enc.ids, attention_mask=enc.mask).logits, before)
        assert all(torch.equal(v, weights[k]) for k, v in module.state_dict().items())
    patch.save(tmp_path / "p")
    again = WeightPatch.load(tmp_path / "p")
    assert torch.equal(again.masks[patch.meta["parameter"]], patch.masks[patch.meta["parameter"]])
    assert again.meta["method"] == "FeatureEdit (block)"
    with again.on(module):
        assert not torch.equal(module(input_ids=enc.ids, attention_mask=enc.mask).logits, before)
    assert torch.equal(module(input_ids=enc.ids, attention_mask=enc.mask).logits, before)


def test_feature_edit_zeroes_the_probe_columns_and_the_block(lm):
    module, _ = lm
    sae = tiny.mlp_sae()
    w = module.model.layers[1].mlp.down_proj.weight.detach()
    h = sae.W_dec[2].detach()
    cols = h.abs() > 0.4 * h.abs().max()
    assert torch.equal(probe_columns(h, 0.4), cols)
    name = "model.layers.1.mlp.down_proj.weight"
    col = feature_edit(module, sae, tiny.MLP, [2], mode="columns", tau2=0.4).masks[name]
    assert torch.equal(col, cols.expand_as(w))
    out = (w @ h).abs()
    rows = out > 0.5 * out.max()
    blk = feature_edit(module, sae, tiny.MLP, [2], mode="block", tau2=0.4, tau3=0.5).masks[name]
    assert torch.equal(blk, rows[:, None] & cols[None, :])
    neu = neuron_edit(module, tiny.MLP, [5, 7]).masks[name]
    assert neu.sum() == 2 * w.shape[0] and neu[:, 5].all() and neu[:, 7].all()


def test_patch_refuses_another_model_and_double_apply(lm):
    module, _ = lm
    bad = WeightPatch({"model.layers.9.mlp.down_proj.weight": torch.zeros(2, 2, dtype=torch.bool)})
    with pytest.raises(UserError, match="does not have"):
        bad.apply(module)
    p = neuron_edit(module, tiny.MLP, [1])
    with p.on(module), pytest.raises(UserError, match="already applied"):
        p.apply(module)
    with pytest.raises(UserError, match="not applied"):
        p.revert(module)


# ------------------------------------------------------------------------------------------------ metrics


def test_delta_prob_is_the_relative_drop():
    p = torch.tensor([0.5, 0.2, 0.9])
    q = torch.tensor([0.1, 0.3, 0.9])
    torch.testing.assert_close(M.delta_prob(p.log(), q.log()), (p - q) / p)


def test_welch_t_and_cohens_d_match_brute_force():
    from scipy import stats

    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, 37), rng.normal(0.2, 2.0, 55)
    t, p = M.welch_t(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert math.isclose(t, ref.statistic, rel_tol=1e-10) and math.isclose(p, ref.pvalue, rel_tol=1e-8)
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    sa = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    sb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    pooled = math.sqrt(((len(a) - 1) * sa + (len(b) - 1) * sb) / (len(a) + len(b) - 2))
    assert math.isclose(M.cohens_d(a, b), (ma - mb) / pooled, rel_tol=1e-10)
    assert M.passes(a + 5, b) and not M.passes(b, a + 5)
    assert M.welch_t(np.ones(4), np.ones(5)) == (0.0, 1.0) and M.cohens_d(np.ones(4), np.ones(5)) == 0.0


def test_edit_metrics():
    ans = torch.tensor([3, 4, 5, 6])
    assert M.reliability(torch.tensor([3, 0, 0, 6]), ans) == 0.5
    assert M.locality(ans, torch.tensor([3, 4, 0, 6])) == 0.75
    assert math.isclose(M.delta_ppl(10.0, 11.0), 0.1)
    assert math.isclose(M.perplexity(2.0 * 4, 4), math.exp(2.0))


def test_related_test_separates_a_unit_that_fires_on_related_prompts_only():
    rng = np.random.default_rng(1)
    acts = torch.tensor(np.concatenate([rng.normal(5, 0.5, (30, 2)), rng.normal(0, 0.5, (30, 2))]))
    acts[:, 1] = torch.tensor(rng.normal(1, 1, 60))  # unit 1 does not care
    tests = related_tests("f", acts, None, torch.tensor([[0, 1]]), [0], [np.arange(1, 30)], np.arange(30, 60))
    assert [t.passed for t in tests] == [True, False]
    assert tests[0].d > 5


# ------------------------------------------------------------------------------------------------ facts


def test_bundled_relations_load_with_three_templates_and_both_spellings():
    for rel in RELATIONS.values():
        assert len(rel.templates) >= 3
    caps = {f.subject: f for f in builtin_facts("capitals", max_facts=40)}
    assert "Beijing" in caps["China"].answers and "Tokyo" not in {a for f in caps.values() for a in f.answers}
    assert any(len(f.answers) > 1 for f in builtin_facts("capitals"))  # the two tables disagree somewhere
    syms = {f.subject: f.answers for f in builtin_facts("symbols")}
    assert syms["iron"] == ("Fe",) and "oxygen" not in syms  # oxygen is a few-shot example
    cur = {f.subject: f.answers for f in builtin_facts("currencies", max_facts=30)}
    assert "rupee" in cur["India"]
    f = builtin_facts("symbols", "zero-shot", max_facts=3)[0]
    assert f.prompts[0].text == "The chemical symbol of hydrogen is"
    for p in f.prompts:
        assert p.text[slice(*p.subject_span)].lower() == "hydrogen"
    few = builtin_facts("capitals", "few-shot", max_facts=1)[0].prompts[1]
    assert few.text.count("\n") == 2 and few.text.endswith("China's capital city is")


def test_fill_capitalises_a_subject_that_starts_a_sentence():
    p = fill("{subject} is a metal", "iron")
    assert p.text == "Iron is a metal" and p.subject_span == (0, 4)


def test_matches_whole_words_only():
    assert matches(" Fe.", ("Fe",)) == "Fe"
    assert matches(" Fe", ("F",)) is None
    assert matches("Buenos Aires, the", ("Buenos Aires",)) == "Buenos Aires"
    assert matches("new delhi", ("New Delhi",)) == "New Delhi"


@pytest.mark.parametrize("row, needle", [
    ({"relation": "capitals", "template": "The capital of {subject} is", "answer": "x"}, "lacks subject"),
    ({"subject": "A", "relation": "capitals", "prompt": "The capital of A is"}, "lacks answer"),
    ({"subject": "A", "relation": "knows", "answer": "x"}, "unknown relation 'knows'"),
    ({"subject": "A", "relation": "r", "template": "no placeholder", "answer": "x"}, "no {subject} placeholder"),
    ({"subject": "A", "relation": "r", "prompt": "p", "answer": 3}, "answer must be"),
])
def test_bad_fact_rows_are_one_line_errors(tmp_path, row, needle):
    path = tiny.write_facts(tmp_path / "f.jsonl", [row])
    with pytest.raises(UserError) as exc:
        read_facts_jsonl(path)
    assert needle in str(exc.value) and "\n" not in str(exc.value) and "line 1" in str(exc.value)


def test_a_bundled_relation_fills_its_templates_for_user_facts(tmp_path):
    row = {"subject": "Atlantis", "relation": "capitals", "answer": "Poseidonia"}
    path = tiny.write_facts(tmp_path / "f.jsonl", [row])
    (f,) = read_facts_jsonl(path, "zero-shot")
    assert f.prompts[0].text == "The capital of Atlantis is" and len(f.prompts) == 3


@pytest.mark.usefixtures("one_thread")
def test_ablations_from_the_first_hooked_block_match_whole_forwards(lm):
    module, tok = lm
    prompts, answers = _prompts()
    saes = [("residual:" + tiny.RESID, tiny.RESID, tiny.resid_sae()), ("mlp:" + tiny.MLP, tiny.MLP, tiny.mlp_sae())]
    prof = profile(module, tok, prompts, answers, saes, tiny.MLP, attribute=True)
    choices = unit_choices(prof, [s for s, _, _ in saes], [1, 3], seed=0)
    kw = {"saes": {s: (h, sae) for s, h, sae in saes}, "neuron_hook": tiny.MLP, "batch_size": 5}
    fast = ablated_logprobs(module, tok, prompts, answers, choices, shortcut=True, **kw)
    slow = ablated_logprobs(module, tok, prompts, answers, choices, shortcut=False, **kw)
    assert len(module.model.layers) == 2  # the layers are put back
    for cond in choices:
        torch.testing.assert_close(fast[cond], slow[cond], atol=1e-5, rtol=1e-5)


@pytest.mark.usefixtures("one_thread")
def test_full_answer_scores_every_answer_token_under_teacher_forcing(lm):
    module, tok = lm
    prompts, _ = _prompts(2)
    answers = ["Paris Rome", "Rome"]
    with torch.no_grad():
        got = answer_logprobs(module, encode(tok, prompts[:2], answers, full=True))
    assert got.shape == (2, 2) and got[1, 1] == 0

    @torch.no_grad()
    def logp(text: str, nxt: str) -> float:
        ids = torch.tensor([tok(text)["input_ids"]])
        return float(torch.log_softmax(module(input_ids=ids).logits[0, -1], -1)[tok.convert_tokens_to_ids(nxt)])

    want0 = logp(prompts[0].text, "Paris") + logp(prompts[0].text + " Paris", "Rome")
    assert math.isclose(float(got[0].sum()), want0, rel_tol=1e-4, abs_tol=1e-5)
    assert math.isclose(float(got[1].sum()), logp(prompts[1].text, "Rome"), rel_tol=1e-4, abs_tol=1e-5)


@pytest.mark.usefixtures("one_thread")
def test_the_mlp_activation_is_a_hook_point(lm):
    from monosemantic.sources.hooks import capture, list_hooks, resolve_hook

    module, _ = lm
    assert resolve_hook(module, "layers.1.mlp.down_proj:input") == tiny.MLP
    infos = {i.path: i for i in list_hooks(module, lambda ids: module(input_ids=ids), torch.tensor([[3, 4, 5]]))}
    assert infos[tiny.MLP].width == tiny.D_MLP
    ids = torch.tensor([[3, 4, 5, 6]])
    with capture(module, [tiny.MLP, "model.layers.1.post_attention_layernorm"], stop=False) as got:
        module(input_ids=ids)
    mlp = module.model.layers[1].mlp
    x = got["model.layers.1.post_attention_layernorm"]
    torch.testing.assert_close(got[tiny.MLP], mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x))
