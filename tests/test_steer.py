"""Steering through SAE latents: the edit rules against independent computations, the hook's error terms, bad input,
the headline rule of an α sweep, continuation perplexity, and identity edits on the bundled SmolLM2."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import transformers as tf

from monosemantic.errors import UserError
from monosemantic.sae import SAE, SAEConfig
from monosemantic.steer.evaluate import Headline, SweepRow, headline
from monosemantic.steer.generate import continuation_perplexity, generate
from monosemantic.steer.interventions import Edit, apply_edits, check_sae_fits, edit_latents, steering

D = 32  # width of the tiny Llama's residual stream
HOOK = "model.layers.0"


def _tiny_llama() -> torch.nn.Module:
    cfg = tf.LlamaConfig(vocab_size=64, hidden_size=D, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4)
    torch.manual_seed(0)
    return tf.LlamaForCausalLM(cfg).eval()


def _random_sae(arch: str = "relu", d_in: int = D, d_sae: int = 48, seed: int = 0, **kw) -> SAE:
    """An SAE with random weights (random biases too), so that nothing cancels by accident."""
    sae = SAE.create(SAEConfig(d_in=d_in, d_sae=d_sae, architecture=arch, metadata={"hook_name": HOOK}, **kw))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.W_dec.copy_(torch.randn(d_sae, d_in, generator=g))
        sae.W_enc.copy_(torch.randn(d_in, d_sae, generator=g) / d_in**0.5)
        sae.b_enc.copy_(torch.randn(d_sae, generator=g) * 0.3)
        sae.b_dec.copy_(torch.randn(d_in, generator=g) * 0.3)
    return sae


def _orthonormal_sae(d_sae: int = 8, active: int | None = None, shift: float = 5.0) -> SAE:
    """A ReLU SAE whose decoder rows are orthonormal and W_enc = W_decᵀ, b_enc = 0: encode(decode(f)) = f for f >= 0
    (b_dec cancels). With ``active`` = j, b_dec = −shift·W_dec[j] puts latent j's pre-activation at h·w_j + shift,
    so it is positive on every position of the tiny model (whose activations have norm ~0.1)."""
    sae = SAE.create(SAEConfig(d_in=D, d_sae=d_sae, architecture="relu", metadata={"hook_name": HOOK}))
    q, _ = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(1)))
    w = q[:, :d_sae].T.contiguous()  # [d_sae, D], orthonormal rows
    with torch.no_grad():
        sae.W_dec.copy_(w)
        sae.W_enc.copy_(w.T)
        sae.b_enc.zero_()
        sae.b_dec.copy_(-shift * w[active] if active is not None else torch.zeros(D))
    return sae


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def _relu_latents(sae: SAE, x: np.ndarray) -> np.ndarray:
    """ReLU SAE latents computed in float64 with numpy."""
    return np.maximum((x - _np(sae.b_dec)) @ _np(sae.W_enc) + _np(sae.b_enc), 0.0)


@pytest.fixture
def ids() -> torch.Tensor:
    return torch.randint(0, 64, (3, 7), generator=torch.Generator().manual_seed(3))


def _capture(module: torch.nn.Module, into: list[torch.Tensor]):
    return module.register_forward_hook(lambda _m, _i, out: into.append(out[0] if isinstance(out, tuple) else out))


def _steered_io(model, sae, edits, ids, error_term="keep_error"):
    """One steered forward: (hook output before the steering hook, after it, the steering record, the logits)."""
    layer = dict(model.named_modules())[HOOK]
    raw: list[torch.Tensor] = []
    edited: list[torch.Tensor] = []
    before = _capture(layer, raw)  # registered before the steering hook: sees the unedited output
    try:
        with torch.no_grad(), steering(model, sae, edits, error_term=error_term) as rec:
            after = _capture(layer, edited)  # registered after: sees what the steering hook returned
            try:
                logits = model(ids).logits
            finally:
                after.remove()
    finally:
        before.remove()
    return raw[0], edited[0], rec, logits


# ---------------------------------------------------------------------------------------------------------------
# the hook on a tiny model: clamp, error terms


@pytest.mark.parametrize("error_term", ["keep_error", "reconstruction"])
def test_clamp_sets_the_latent_at_every_position(one_thread, ids, error_term):
    model, j, alpha = _tiny_llama(), 2, 1.75
    sae = _orthonormal_sae(active=j)
    raw, edited, rec, _ = _steered_io(model, sae, [Edit((j,), "clamp", alpha)], ids, error_term)
    assert rec.hook == HOOK and rec.calls == 1 and rec.error_term == error_term
    h, out = raw.reshape(-1, D), edited.reshape(-1, D)
    assert not torch.equal(h, out)
    f_before, f_after = sae.encode(h), sae.encode(out)
    assert (f_before[:, j] > 1.0).all()  # the latent was active everywhere, at another value than α
    torch.testing.assert_close(f_after[:, j], torch.full_like(f_after[:, j], alpha), rtol=0, atol=1e-4)
    others = [i for i in range(sae.cfg.d_sae) if i != j]
    # the other latents keep their values (keep_error moves h along W_dec[j] only; reconstruction decodes f')
    torch.testing.assert_close(f_after[:, others], f_before[:, others], rtol=0, atol=1e-4)
    if error_term == "keep_error":  # and the part of h the SAE does not see is untouched
        w = sae.W_dec.detach()
        torch.testing.assert_close(out - (out @ w.T) @ w, h - (h @ w.T) @ w, rtol=0, atol=1e-5)

    f = torch.rand(5, sae.cfg.d_sae, generator=torch.Generator().manual_seed(4))
    g = edit_latents(f, [Edit((j,), "clamp", alpha)])
    assert torch.equal(g[:, j], torch.full((5,), alpha)) and torch.equal(g[:, others], f[:, others])
    assert torch.equal(edit_latents(f, [Edit((j,), "direction", 3.0)]), f)  # direction edits leave latents alone


def test_identity_edit_with_keep_error_leaves_the_output_bitwise(one_thread, ids):
    model, sae = _tiny_llama(), _random_sae()
    with torch.no_grad():
        plain = model(ids).logits
    for edit in (Edit((1, 4), "add", 0.0), Edit((2,), "scale", 1.0), Edit((0, 3), "direction", 0.0, "balanced")):
        raw, edited, rec, logits = _steered_io(model, sae, [edit], ids)
        assert rec.calls == 1, edit  # the hook ran ...
        assert torch.equal(edited, raw), edit  # ... and changed nothing
        assert torch.equal(logits, plain), edit


def test_reconstruction_with_a_no_op_edit_writes_the_reconstruction(one_thread, ids):
    model, sae = _tiny_llama(), _random_sae(d_sae=64)
    raw, edited, _, _ = _steered_io(model, sae, [Edit((5,), "add", 0.0)], ids, "reconstruction")
    h = raw.reshape(-1, D)
    want = _relu_latents(sae, _np(h)) @ _np(sae.W_dec) + _np(sae.b_dec)  # decode(encode(h)), independently
    got = edited.reshape(-1, D)
    np.testing.assert_allclose(_np(got), want, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(got, sae.decode(sae.encode(h)))
    assert not torch.allclose(got, h, atol=1e-3)  # the SAE's error really was injected


def test_steering_removes_its_hook_after_the_block(one_thread, ids):
    model, sae = _tiny_llama(), _random_sae()
    with torch.no_grad():
        plain = model(ids).logits
        with steering(model, sae, [Edit((0,), "direction", 2.0)]):
            steered = model(ids).logits
        again = model(ids).logits
    assert not torch.allclose(steered, plain)
    assert torch.equal(again, plain)


# ---------------------------------------------------------------------------------------------------------------
# apply_edits against independent computations


@pytest.mark.parametrize("error_term", ["keep_error", "reconstruction"])
@pytest.mark.parametrize("gamma", ["const", "act", "balanced"])
@pytest.mark.parametrize("alpha", [0.7, -0.4])
def test_direction_rule(gamma, alpha, error_term):
    sae = _random_sae(d_sae=24)
    x = torch.randn(40, D, generator=torch.Generator().manual_seed(5)) * 2.0
    latents = (1, 6, 17)
    xs, w = _np(x), _np(sae.W_dec)
    f = _relu_latents(sae, xs)
    assert ((f[:, latents] > 0) & (f[:, latents] < 1)).any() and (f[:, latents] == 0).any()  # γ modes differ
    base = xs if error_term == "keep_error" else f @ w + _np(sae.b_dec)
    want = base.copy()
    for n in range(len(xs)):
        for j in latents:
            beta = np.linalg.norm(xs[n]) / np.linalg.norm(w[j])
            g = {"const": 1.0, "act": f[n, j], "balanced": (1 - f[n, j]) if alpha > 0 else f[n, j]}[gamma]
            want[n] += alpha * beta * g * w[j]
    with torch.no_grad():
        got = apply_edits(sae, x, [Edit(latents, "direction", alpha, gamma)], error_term)
    np.testing.assert_allclose(_np(got), want, rtol=1e-4, atol=1e-4)
    assert torch.equal(x, torch.randn(40, D, generator=torch.Generator().manual_seed(5)) * 2.0)  # input untouched


def test_balanced_gamma_at_alpha_zero_and_below_uses_the_activation():
    sae = _random_sae(d_sae=24)
    x = torch.randn(10, D, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        for alpha in (-0.3, -1.2):
            torch.testing.assert_close(apply_edits(sae, x, [Edit((2, 3), "direction", alpha, "balanced")]),
                                       apply_edits(sae, x, [Edit((2, 3), "direction", alpha, "act")]))
        assert apply_edits(sae, x, [Edit((2, 3), "direction", 0.0, "balanced")]) is x


def test_add_scale_ablate_clamp_change_h_by_the_latent_change():
    sae = _random_sae(d_sae=24)
    x = torch.randn(30, D, generator=torch.Generator().manual_seed(7))
    xs, w = _np(x), _np(sae.W_dec)
    f = _relu_latents(sae, xs)
    on = [j for j in range(24) if (f[:, j] > 0).mean() > 0.3]
    a, b, c = on[:3]
    assert len(on) >= 3
    cases = [
        ([Edit((a,), "add", 1.5)], {a: f[:, a] + 1.5}),
        ([Edit((a, b), "scale", 3.0)], {a: 3 * f[:, a], b: 3 * f[:, b]}),
        ([Edit((c,), "ablate")], {c: 0 * f[:, c]}),
        ([Edit((b,), "clamp", 2.5)], {b: np.full(len(xs), 2.5)}),
        # in order, each edit starting from the previous one's latents
        ([Edit((a,), "add", 1.5), Edit((a, b), "scale", 3.0), Edit((c,), "ablate")],
         {a: 3 * (f[:, a] + 1.5), b: 3 * f[:, b], c: 0 * f[:, c]}),
    ]
    for edits, new in cases:
        want = xs + sum((new[j] - f[:, j])[:, None] * w[j] for j in new)
        with torch.no_grad():
            got = apply_edits(sae, x, edits)
        np.testing.assert_allclose(_np(got), want, rtol=1e-4, atol=1e-4, err_msg=str(edits))
        # with reconstruction the base is decode(f) and the same change is added
        f_new = f.copy()
        for j, v in new.items():
            f_new[:, j] = v
        with torch.no_grad():
            rec = apply_edits(sae, x, edits, "reconstruction")
        np.testing.assert_allclose(_np(rec), f_new @ w + _np(sae.b_dec), rtol=1e-4, atol=1e-4, err_msg=str(edits))


def _gsae(d_in: int = 16, d_sae: int = 24, k: int = 6) -> SAE:
    meta = {"hook_name": HOOK, "monosemantic": {"gsae": {"concepts": ["a", "b"]}}}
    sae = SAE.create(SAEConfig(d_in=d_in, d_sae=d_sae, architecture="gsae", k=k, metadata=meta))
    g = torch.Generator().manual_seed(8)
    with torch.no_grad():
        for p in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec):
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return sae


def test_gsae_edits_are_scaled_by_each_rows_norm():
    sae = _gsae()
    x = torch.randn(20, 16, generator=torch.Generator().manual_seed(9)) * torch.linspace(0.1, 30, 20)[:, None] + 4.0
    xs, w = _np(x), _np(sae.W_dec)
    mu = xs.mean(1, keepdims=True)
    sd = xs.std(1, ddof=1, keepdims=True) + 1e-5  # the layer norm of gsae.py: (x − μ) / (σ + ε), σ unbiased
    pre = ((xs - mu) / sd - _np(sae.b_dec)) @ _np(sae.W_enc) + _np(sae.b_enc)
    kth = np.sort(pre, axis=1)[:, -6][:, None]
    f = np.where(pre >= kth, 1 / (1 + np.exp(-pre)), 0.0)  # topk-sigmoid
    assert ((f > 0).sum(1) == 6).all()
    j, m = 3, 11
    with torch.no_grad():
        np.testing.assert_allclose(_np(sae.encode(x)), f, rtol=1e-4, atol=1e-5)
        got = apply_edits(sae, x, [Edit((j,), "add", 0.8), Edit((m,), "clamp", 0.9)])
    want = xs + 0.8 * sd * w[j] + (0.9 - f[:, m : m + 1]) * sd * w[m]
    np.testing.assert_allclose(_np(got), want, rtol=1e-4, atol=1e-4)
    # reconstruction maps back to x's scale: (f' W_dec + b_dec)(σ + ε) + μ
    f_new = f.copy()
    f_new[:, j] += 0.8
    f_new[:, m] = 0.9
    with torch.no_grad():
        rec = apply_edits(sae, x, [Edit((j,), "add", 0.8), Edit((m,), "clamp", 0.9)], "reconstruction")
    np.testing.assert_allclose(_np(rec), (f_new @ w + _np(sae.b_dec)) * sd + mu, rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------------------------------------------------------
# bad input


def _one_line(exc: pytest.ExceptionInfo[UserError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (Edit((48,), "add", 1.0), "latent 48 is out of range; this SAE has latents 0 to 47"),
        (Edit((3, -1), "clamp", 1.0), "latent -1 is out of range"),
        (Edit((3,), "add", float("nan")), "alpha must be a finite number"),
        (Edit((3,), "direction", float("inf")), "alpha must be a finite number"),
        (Edit((), "add", 1.0), "at least one latent"),
        (Edit((3,), "shift", 1.0), "unknown edit 'shift'"),  # type: ignore[arg-type]
        (Edit((3,), "direction", 1.0, "half"), "unknown gamma 'half'"),  # type: ignore[arg-type]
    ],
)
def test_bad_edits_are_refused_before_any_forward(edit, needle):
    model, sae = _tiny_llama(), _random_sae()
    with pytest.raises(UserError) as exc, steering(model, sae, [edit]):
        pytest.fail("entered the block")
    assert needle in _one_line(exc)
    assert not any(m._forward_hooks for m in model.modules())  # nothing left behind


def test_unknown_error_term_is_refused():
    with pytest.raises(UserError) as exc, steering(_tiny_llama(), _random_sae(), [Edit((0,), "add", 1.0)],
                                                   error_term="residual"):  # type: ignore[arg-type]
        pytest.fail("entered the block")
    assert "unknown error term 'residual'; choose keep_error or reconstruction" in _one_line(exc)


def test_sae_of_another_width_is_refused_during_the_forward(one_thread, ids):
    model = _tiny_llama()
    sae = _random_sae(d_in=D + 8)
    with pytest.raises(UserError) as exc, torch.no_grad(), steering(model, sae, [Edit((0,), "add", 1.0)]):
        model(ids)
    msg = _one_line(exc)
    assert f"the SAE reads width {D + 8}" in msg and f"gives width {D}" in msg and HOOK in msg
    with torch.no_grad():  # the hook is gone after the failed block
        model(ids)
    assert not any(m._forward_hooks for m in model.modules())


def test_sae_without_a_hook_or_with_an_unknown_one_is_refused():
    model, sae = _tiny_llama(), _random_sae()
    sae.cfg.metadata = {}
    with pytest.raises(UserError) as exc, steering(model, sae, [Edit((0,), "add", 1.0)]):
        pytest.fail("entered the block")
    assert "does not record the hook" in _one_line(exc)
    with pytest.raises(UserError) as exc, steering(model, sae, [Edit((0,), "add", 1.0)], hook="model.layers.9"):
        pytest.fail("entered the block")
    _one_line(exc)


# ---------------------------------------------------------------------------------------------------------------
# the headline of an α sweep


def _row(method: str, alpha: float, success: float | None, ratio: float | None, repetition: float = 0.1
         ) -> SweepRow:
    return SweepRow(method=method, alpha=alpha, error_term="keep_error", success_rate=success,
                    ppl_median=None if ratio is None else 10 * ratio, ppl_ratio=ratio, repetition=repetition)


def test_headline_best_success_within_the_perplexity_bound():
    rows = [
        _row("A", 0.0, 0.10, 1.0), _row("A", 1.0, 0.50, 1.2), _row("A", 2.0, 0.95, 1.6),  # 1.6: too disfluent
        _row("A", 3.0, 0.70, 1.5),  # the bound itself is allowed
        _row("B", 0.0, 0.30, 1.0), _row("B", 5.0, 0.99, 3.0), _row("B", 6.0, 0.80, None),  # no ratio: not allowed
        _row("C", 0.0, 0.20, 7.0),  # α = 0 always qualifies, whatever its ratio
        _row("C", 1.0, None, 1.0),  # no counted prompt: skipped
        _row("D", 4.0, 0.60, 2.0),  # nothing qualifies: no headline
    ]
    got = headline(rows)
    assert set(got) == {"A", "B", "C"}
    assert got["A"].alpha == 3.0 and got["A"].success_rate == 0.70 and got["A"].ppl_ratio == 1.5
    assert got["B"].alpha == 0.0 and got["B"].success_rate == 0.30
    assert got["C"].alpha == 0.0 and got["C"].success_rate == 0.20 and got["C"].ppl_ratio == 7.0
    assert got["A"] == Headline(alpha=3.0, success_rate=0.70, ppl_median=15.0, ppl_ratio=1.5, repetition=0.1)
    loose = headline(rows, max_ppl_ratio=2.0)
    assert loose["A"].alpha == 2.0 and loose["D"].alpha == 4.0 and loose["B"].alpha == 0.0


def test_headline_keeps_the_first_of_equal_successes():
    got = headline([_row("A", 0.0, 0.5, 1.0), _row("A", 1.0, 0.5, 1.1)])
    assert got["A"].alpha == 0.0


# ---------------------------------------------------------------------------------------------------------------
# SmolLM2: perplexity, identity edits, width check


@pytest.fixture(scope="module")
def smollm2():
    from monosemantic.sources import load_model

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield load_model("smollm2")
    finally:
        torch.set_num_threads(old)


@pytest.mark.slow
def test_continuation_perplexity_matches_a_plain_forward(one_thread, smollm2):
    tok, module = smollm2.tokenizer, smollm2.module
    prompts = ["The weather today is", "Once upon a time, in a small village by the sea, there lived"]
    conts = [tok(" sunny and warm, with a light breeze")["input_ids"], tok(" an old fisherman")["input_ids"]]
    assert len(tok(prompts[0])["input_ids"]) != len(tok(prompts[1])["input_ids"]) and len(conts[0]) != len(conts[1])
    got = continuation_perplexity(smollm2, [*prompts, "Hello"], [*conts, []])
    for p, c, g in zip(prompts, conts, got, strict=False):
        seq = list(tok(p)["input_ids"]) + list(c)
        start = len(seq) - len(c)
        with torch.no_grad():
            logp = torch.log_softmax(module(input_ids=torch.tensor([seq])).logits[0].double(), -1)
        nll = [-float(logp[t - 1, seq[t]]) for t in range(start, len(seq))]
        # float32 cross-entropy over a 49k vocabulary is good to ~2e-4 in the NLL; an off-by-one token is not
        assert g == pytest.approx(math.exp(sum(nll) / len(nll)), rel=1e-3)
    assert math.isnan(got[2])  # an empty continuation has no perplexity
    # batching (and padding) does not change the result
    alone = continuation_perplexity(smollm2, prompts[1:], conts[1:], batch_size=1)
    assert alone[0] == pytest.approx(got[1], rel=1e-4)


@pytest.mark.slow
def test_identity_edits_generate_exactly_the_unsteered_tokens(one_thread, smollm2):
    sae = SAE.create(SAEConfig(d_in=576, d_sae=1152, architecture="topk", k=16,
                               metadata={"hook_name": "model.layers.15"}))
    sae.init_weights(torch.Generator().manual_seed(0))
    prompts = ["The capital of France is", "My favourite food is", "In 1492, Columbus"]
    base = generate(smollm2, prompts, max_new_tokens=12)
    assert [g.prompt for g in base] == prompts
    assert all(len(g.tokens) == 12 or g.tokens[-1] == smollm2.tokenizer.eos_token_id for g in base)
    for edit in (Edit((3,), "add", 0.0), Edit((3,), "direction", 0.0)):
        with steering(smollm2, sae, [edit]) as rec:
            steered = generate(smollm2, prompts, max_new_tokens=12)
        assert rec.hook == "model.layers.15" and rec.calls >= 12  # the hook ran on every forward pass
        assert [g.tokens for g in steered] == [g.tokens for g in base], edit
        assert [g.text for g in steered] == [g.text for g in base]
    with steering(smollm2, sae, [Edit((3,), "direction", 0.5)]):
        strong = generate(smollm2, prompts, max_new_tokens=12)
    assert any(s.tokens != b.tokens for s, b in zip(strong, base, strict=True))


@pytest.mark.slow
def test_check_sae_fits_refuses_another_width(smollm2):
    narrow = _random_sae(d_in=64)
    narrow.cfg.metadata = {"hook_name": "model.layers.15"}
    with pytest.raises(UserError) as exc:
        check_sae_fits(smollm2, narrow, None)
    msg = _one_line(exc)
    assert "the SAE reads width 64" in msg and "width 576" in msg and "model.layers.15" in msg
    fits = _random_sae(d_in=576)
    assert check_sae_fits(smollm2, fits, "model.layers.3") == "model.layers.3"


def test_headline_can_bound_repetition_too() -> None:
    # a degenerate loop (high repetition, low perplexity) wins on perplexity alone, not once repetition is bounded
    rows = [_row("m", 0.0, 0.1, 1.0, 0.1), _row("m", 0.1, 0.4, 1.1, 0.15), _row("m", 0.3, 1.0, 1.2, 0.8)]
    assert headline(rows)["m"].alpha == 0.3
    assert headline(rows, max_repetition=0.2)["m"].alpha == 0.1


def test_public_api_names_are_the_functions() -> None:
    # `generate` is also a submodule's name: the package must hand out the function, as the README uses it
    import monosemantic.steer as steer_pkg
    from monosemantic.steer import generate as gen_fn

    assert callable(gen_fn) and gen_fn.__name__ == "generate"
    assert all(hasattr(steer_pkg, name) for name in steer_pkg.__all__)


def test_the_commands_configs_are_checked_when_made(tmp_path) -> None:
    from monosemantic.experiments.steer import SteerConfig
    from monosemantic.experiments.steer_measure import SteerMeasureConfig

    for kw, needle in (({"latent": []}, "give at least one --latent"),
                       ({"batch_size": 0}, "--batch-size must be at least 1, got 0"),
                       ({"image": ["a.png"]}, "--image needs --vision-hook"),
                       ({"vision_hook": "features.13", "image": ["a.png"], "top": 0}, "--top must be at least 1"),
                       ({"mode": "shift"}, "unknown --mode 'shift'")):
        with pytest.raises(UserError) as exc:
            SteerConfig(**{"sae": tmp_path, "latent": [1], **kw})
        assert needle in _one_line(exc)
    assert SteerConfig(sae=tmp_path, latent=[1], top=0).top == 0  # --top only counts through a vision encoder
    for kw, needle in (({"alpha": [2.0, float("nan")]}, "--alpha must be a finite number, got nan"),
                       ({"alpha": []}, "give finite --alpha multiples"),
                       ({"top_images": 0}, "--top-images must be at least 1, got 0")):
        with pytest.raises(UserError) as exc:
            SteerMeasureConfig(**{"sae": tmp_path, "out": tmp_path / "out", **kw})
        assert needle in _one_line(exc)
