"""Speculative decoding inside the simulator (issue item 6, Sec. 3.3 make-or-buy)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from margin.core.prices import InputError
from margin.serving.costmodel import DistServeCostModel
from margin.serving.schedulers import FCFS, make_scheduler
from margin.serving.simulator import ServingConfig, Simulator
from margin.serving.speculative import SpeculationPolicy
from margin.serving.traces import Trace, synthetic_trace


def burst(n: int, prompt: int, output: int) -> Trace:
    """``n`` identical requests arriving together (batch size ``n`` while they decode)."""
    return Trace(
        arrival=np.zeros(n),
        prompt=np.full(n, prompt),
        output=np.full(n, output),
    )


def test_speculation_improves_tpot_at_low_load_high_alpha() -> None:
    t = synthetic_trace(150, rate=0.3, seed=3)
    off = Simulator(ServingConfig(replicas=1)).run(t, FCFS())
    on = Simulator(ServingConfig(replicas=1, spec_gamma=4, spec_alpha=0.8)).run(t, FCFS())
    assert on.spec_iterations > 0 and on.spec_extra_tokens > 0
    # E[τ] = 3.36 tokens per step at a step cost of γc + v ≈ 1.2 decode steps
    assert np.nanmean(on.tpot) < 0.6 * np.nanmean(off.tpot)
    assert np.nanmean(on.e2e) < np.nanmean(off.e2e)
    assert np.array_equal(on.decode_tokens, t.output)
    assert off.spec_iterations == 0


def test_low_alpha_never_speculates_and_changes_nothing() -> None:
    t = synthetic_trace(120, rate=0.5, seed=4)
    off = Simulator(ServingConfig(replicas=1)).run(t, FCFS())
    # α = 0.1: E[τ] = 1.11 < γc + v(1) = 1.2 + (v − 1): speedup < 1 at every batch
    low = Simulator(ServingConfig(replicas=1, spec_gamma=4, spec_alpha=0.1)).run(t, FCFS())
    assert low.spec_iterations == 0
    np.testing.assert_array_equal(low.e2e, off.e2e)


def test_speculation_turns_off_above_the_crossover_batch() -> None:
    alpha, prompt, output = 0.45, 1000, 24
    pol = SpeculationPolicy(DistServeCostModel.default(), gamma=4, draft_cost=0.05)
    crossover = pol.turn_off_batch(alpha, prompt)
    assert crossover is not None and 20 < crossover < 150
    cfg = ServingConfig(
        replicas=1, kv_blocks=20_000, spec_gamma=4, spec_draft_cost=0.05, spec_alpha=alpha
    )
    res = Simulator(cfg).run(burst(2 * crossover, prompt, output), FCFS())
    assert np.array_equal(res.decode_tokens, res.trace.output)
    # the batch reaches 2× the crossover, yet nobody speculates at or above it ...
    assert res.spec_max_batch < crossover
    # ... while the draining tail (batch below it) does
    assert res.spec_iterations > 0
    for ctx in (prompt, prompt + output):
        assert pol.speedup(alpha, res.spec_max_batch, ctx) > 1.0


def test_speculation_share_falls_as_load_rises() -> None:
    cfg = ServingConfig(replicas=1, kv_blocks=20_000, spec_gamma=4, spec_alpha=0.45)
    base = synthetic_trace(
        300,
        rate=1.0,
        seed=5,
        prompt_mean=500.0,
        prompt_sigma=0.1,
        output_mean=200.0,
        output_sigma=0.1,
    )
    shares = []
    for scale in (0.2, 5.0, 20.0):
        res = Simulator(cfg).run(base.scaled(scale), FCFS())
        assert np.array_equal(res.decode_tokens, base.output)
        shares.append(res.spec_extra_tokens / int(base.output.sum()))
    # share of output tokens that came from accepted draft tokens
    assert shares[0] > 0.3
    assert shares[0] > shares[1] > shares[2]
    assert shares[2] < 0.1


def test_trace_accept_rate_overrides_config_and_beta_draws() -> None:
    t = synthetic_trace(80, rate=0.5, seed=6)
    cfg = ServingConfig(replicas=1, spec_gamma=4, spec_alpha=0.9)
    none = Simulator(cfg).run(t.with_accept_rate(0.0), FCFS())
    assert none.spec_iterations == 0
    beta = ServingConfig(
        replicas=1, spec_gamma=4, spec_alpha=0.7, spec_alpha_concentration=5.0, spec_seed=2
    )
    r1 = Simulator(beta).run(t, FCFS())
    r2 = Simulator(beta).run(t, FCFS())
    assert r1.spec_extra_tokens > 0
    np.testing.assert_array_equal(r1.e2e, r2.e2e)  # seeded
    assert t.take(np.arange(10)).accept_rate is None
    assert t.with_accept_rate(0.5).take([1, 3]).accept_rate.tolist() == [0.5, 0.5]


@pytest.mark.parametrize(
    ("field", "value"),
    [("spec_alpha", 1.5), ("spec_gamma", -1), ("spec_draft_cost", -0.1), ("spec_seed", 1.5)],
)
def test_bad_speculation_config(field: str, value: float) -> None:
    with pytest.raises(InputError, match=field):
        ServingConfig.from_dict({field: value})


def test_bad_trace_accept_rate() -> None:
    t = synthetic_trace(5, rate=1.0)
    with pytest.raises(InputError, match="accept_rate"):
        t.with_accept_rate(1.2)


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 1000),
    rate=st.floats(0.5, 30.0),
    gamma=st.integers(1, 6),
    alpha=st.floats(0.0, 1.0),
    sched=st.sampled_from(["fcfs", "srpt", "priced"]),
)
def test_speculation_conserves_tokens_and_kv(
    seed: int, rate: float, gamma: int, alpha: float, sched: str
) -> None:
    cfg = ServingConfig(
        replicas=2,
        kv_blocks=300,
        max_batch=16,
        token_budget=512,
        spec_gamma=gamma,
        spec_alpha=alpha,
        spec_seed=seed,
    )
    t = synthetic_trace(
        60, rate=rate, seed=seed, prompt_mean=200.0, output_mean=60.0, max_tokens=1500
    )
    res = Simulator(cfg).run(t, make_scheduler(sched))
    done = res.completed
    assert np.all(done ^ res.rejected)
    assert np.array_equal(res.decode_tokens[done], t.output[done])
    assert np.all(res.max_kv_used <= cfg.kv_blocks)
    assert np.all(res.e2e[done] >= res.ttft[done] - 1e-12)
    assert res.spec_extra_tokens <= int(t.output[done].sum())


def test_alpha_one_step_time_and_tokens_follow_the_formula() -> None:
    # one request, α = 1: every speculative step yields γ + 1 tokens and costs
    # γc·T_d(1) + t(γ verify tokens over the context, with the batch of one)
    gamma, c, prompt, steps = 4, 0.05, 100, 6
    out = 1 + (gamma + 1) * steps
    t = Trace(arrival=np.zeros(1), prompt=np.array([prompt]), output=np.array([out]))
    cfg = ServingConfig(replicas=1, spec_gamma=gamma, spec_draft_cost=c, spec_alpha=1.0)
    sim = Simulator(cfg)
    res = sim.run(t, FCFS())
    m = sim.model
    expect = 0.0
    for j in range(steps):
        ctx = prompt + 1 + (gamma + 1) * j
        expect += gamma * c * m.iteration_time(0, 0, ctx, 1)
        expect += m.iteration_time(gamma, gamma * ctx, ctx, 1)
    assert res.spec_iterations == steps
    assert res.spec_extra_tokens == gamma * steps
    assert res.e2e[0] - res.ttft[0] == pytest.approx(expect, rel=1e-9)
