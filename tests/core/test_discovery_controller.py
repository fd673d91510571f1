"""The online PriceController: update rules, averaging, Eq. 1 decisions, convergence."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from margin.core.allocation import NOT_SERVED, allocate
from margin.core.discovery import (
    RESOURCES,
    UPDATE_RULES,
    Budgets,
    DualAscent,
    MultiplicativeUpdate,
    PriceController,
    PriceUpdateRule,
    Task,
    TaskBatch,
    discover_prices,
    make_update_rule,
)
from margin.core.prices import InputError, Option


def random_batch(rng: np.random.Generator, n: int, m: int = 8) -> TaskBatch:
    """The stationary task distribution: V lognormal around $20, tiered options where
    quality costs money and latency and buys lower risk."""
    v = rng.lognormal(np.log(20.0), 0.8, n)
    tier = np.linspace(0.0, 1.0, m)[None, :]
    q = 0.4 + 0.5 * tier + rng.normal(0, 0.05, (n, m))
    c = (0.2 + 4.0 * tier**2) * rng.lognormal(0, 0.2, (n, m))
    lat = (0.5 + 3.0 * tier) * rng.lognormal(0, 0.2, (n, m))
    r = (0.05 * (1 - tier) + 0.005) * rng.lognormal(0, 0.3, (n, m))
    return TaskBatch.from_arrays(v, q, c, lat, r)


# LP reference: N i.i.d. tasks, budgets = per-task targets × N. Stream: batches of B tasks
# from independent draws of the same distribution, targets = per-task targets × B.
N_LP, BATCH, STEPS, BURN_IN = 20_000, 300, 1500, 300
SCALE = (1.0, 1.0, 100.0)  # price units: µC per dollar, µL $/s, µR $/unit risk
REL_TOL = 0.10


@pytest.fixture(scope="module")
def population() -> tuple[TaskBatch, dict[str, float]]:
    big = random_batch(np.random.default_rng(2024), N_LP)
    free = discover_prices(big)
    return big, {k: v / N_LP for k, v in free.usage.items()}


def run_stream(ctl: PriceController, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(STEPS):
        ctl.step(random_batch(rng, BATCH))


@pytest.mark.parametrize(("rule", "eta0"), [("dual_ascent", 2.0), ("multiplicative", 1.0)])
def test_averaged_prices_settle_near_lp_prices_all_budgets_binding(
    population: tuple[TaskBatch, dict[str, float]], rule: str, eta0: float
) -> None:
    big, free_per_task = population
    per_task = Budgets(
        cost=0.7 * free_per_task["cost"],
        latency=0.6 * free_per_task["latency"],
        risk=0.5 * free_per_task["risk"],
    )
    lp = discover_prices(big, per_task.scaled(N_LP))
    assert all(mu > 0 for mu in lp.mu), lp.mu  # the test needs all three binding
    ctl = PriceController(
        per_task.scaled(BATCH), rule=rule, eta0=eta0, scale=SCALE, burn_in=BURN_IN
    )
    run_stream(ctl, seed=11)
    avg = np.asarray(ctl.prices_avg.mu)
    np.testing.assert_allclose(avg, lp.mu, rtol=REL_TOL)
    assert ctl.prices_avg.lambda_ == pytest.approx(lp.lambda_, rel=2 * REL_TOL)
    assert ctl.prices_avg.rho == pytest.approx(lp.rho, rel=2 * REL_TOL)
    # At the averaged prices a fresh stream spends about its targets.
    fresh = PriceController(per_task.scaled(BATCH), initial=ctl.prices_avg.mu)
    rng = np.random.default_rng(99)
    used = np.zeros(3)
    for _ in range(40):
        used += fresh.usage(fresh.decide(random_batch(rng, BATCH)))
    target = np.asarray(per_task.scaled(40 * BATCH).as_tuple(), dtype=float)
    np.testing.assert_allclose(used, target, rtol=0.05)


@pytest.mark.parametrize("rule", sorted(UPDATE_RULES))
def test_slack_budget_price_is_driven_to_zero(
    population: tuple[TaskBatch, dict[str, float]], rule: str
) -> None:
    big, free_per_task = population
    per_task = Budgets(
        cost=0.6 * free_per_task["cost"],
        latency=1.2 * free_per_task["latency"],  # never binds
        risk=0.7 * free_per_task["risk"],
    )
    lp = discover_prices(big, per_task.scaled(N_LP))
    assert lp.mu_latency == 0.0 and lp.mu_cost > 0 and lp.mu_risk > 0
    # Start with a wrong, positive latency price: the controller must remove it.
    ctl = PriceController(
        per_task.scaled(BATCH),
        rule=rule,
        eta0=1.0,
        scale=SCALE,
        initial=(1.0, 5.0, 100.0),
        burn_in=BURN_IN,
    )
    run_stream(ctl, seed=12)
    assert ctl.prices.mu_latency == 0.0
    assert ctl.prices_avg.mu_latency <= 1e-9
    assert ctl.prices_avg.mu_cost == pytest.approx(lp.mu_cost, rel=REL_TOL)
    assert ctl.prices_avg.mu_risk == pytest.approx(lp.mu_risk, rel=REL_TOL)


# --------------------------------------------------------------------------- mechanics


def test_dual_ascent_step_size_schedule_and_projection() -> None:
    ctl = PriceController(Budgets(cost=10.0, latency=4.0), eta0=0.5, scale=(2.0, 1.0, 1.0))
    s1 = ctl.update(15.0, 2.0, 123.0)  # g = (+0.5, −0.5); risk is unconstrained
    assert s1.mu == pytest.approx((0.5 * 2.0 * 0.5, 0.0, 0.0))
    assert s1.step == 1
    s2 = ctl.update(30.0, 8.0, 0.0)  # g = (+2, +1), η2 = 0.5/√2
    eta2 = 0.5 / math.sqrt(2)
    assert s2.mu == pytest.approx((0.5 + eta2 * 2.0 * 2.0, eta2 * 1.0, 0.0))
    s3 = ctl.update(0.0, 0.0, 0.0)  # g = (−1, −1)
    eta3 = 0.5 / math.sqrt(3)
    assert s3.mu == pytest.approx((s2.mu_cost - eta3 * 2.0, s2.mu_latency - eta3, 0.0))
    s4 = ctl.update(0.0, 0.0, 0.0)  # µL would go negative: projected to 0
    assert s4.mu == pytest.approx((s3.mu_cost - 0.25 * 2.0, 0.0, 0.0))
    assert s3.mu_latency - 0.25 < 0.0


@given(
    heavy=st.floats(2.0, 1e6),
    clip=st.floats(0.1, 5.0),
    mu0=st.floats(0.0, 10.0),
)
def test_gradient_clip_bounds_each_move(heavy: float, clip: float, mu0: float) -> None:
    """One interval at ``heavy``× its target moves µ by at most η·s·g_max (and exactly that
    when the overshoot exceeds the clip); unclipped, the move grows with the overshoot."""
    clipped = PriceController(Budgets(cost=1.0), eta0=0.5, initial=(mu0, 0, 0), gradient_clip=clip)
    raw = PriceController(Budgets(cost=1.0), eta0=0.5, initial=(mu0, 0, 0))
    up = clipped.update(heavy, 0.0, 0.0).mu_cost - mu0
    assert up == pytest.approx(0.5 * min(heavy - 1.0, clip))
    assert raw.update(heavy, 0.0, 0.0).mu_cost - mu0 == pytest.approx(0.5 * (heavy - 1.0))
    down = PriceController(Budgets(cost=1.0), eta0=0.5, initial=(mu0, 0, 0), gradient_clip=clip)
    assert down.update(0.0, 0.0, 0.0).mu_cost == pytest.approx(max(0.0, mu0 - 0.5 * min(1, clip)))
    with pytest.raises(InputError, match="gradient_clip"):
        PriceController(Budgets(cost=1.0), gradient_clip=0.0)


def test_polyak_average_of_iterates_after_burn_in() -> None:
    ctl = PriceController(Budgets(cost=1.0), eta0=1.0, burn_in=2)
    iterates = [ctl.update(c, 0.0, 0.0).mu_cost for c in (3.0, 2.0, 4.0, 0.5, 2.5)]
    assert ctl.prices_avg.mu_cost == pytest.approx(np.mean(iterates[2:]))
    assert ctl.prices_avg.step == 5
    fresh = PriceController(Budgets(cost=1.0), burn_in=10)
    fresh.update(2.0, 0.0, 0.0)
    assert fresh.prices_avg == fresh.prices  # nothing averaged yet


def test_multiplicative_update_is_proportional_far_from_zero_and_can_reach_zero() -> None:
    rule = MultiplicativeUpdate(shift=1.0)
    mu = np.array([1000.0, 0.0])
    out = rule.step(mu, np.array([0.1, -0.5]), 0.2, np.ones(2))
    assert out[0] == pytest.approx((1001.0) * math.exp(0.02) - 1.0)
    assert out[1] == 0.0
    near_zero = rule.step(np.array([0.0]), np.array([1e-3]), 0.1, np.array([3.0]))
    assert near_zero[0] == pytest.approx(3.0 * 0.1 * 1e-3, rel=1e-3)  # ≈ the additive step


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(sorted(UPDATE_RULES)),
    st.lists(st.floats(0.0, 50.0), min_size=1, max_size=10),
    st.floats(0.0, 50.0),
    st.floats(0.0, 20.0),
)
def test_more_observed_spend_never_lowers_the_price(
    rule: str, history: list[float], observed: float, extra: float
) -> None:
    """Monotone comparative statics of the controller: overspending raises µC (weakly)."""
    a = PriceController(Budgets(cost=10.0, risk=1.0), rule=rule)
    b = PriceController(Budgets(cost=10.0, risk=1.0), rule=rule)
    for c in history:
        a.update(c, 0.0, 0.5)
        b.update(c, 0.0, 0.5)
    lo, hi = a.update(observed, 0.0, 0.5), b.update(observed + extra, 0.0, 0.5)
    assert hi.mu_cost >= lo.mu_cost
    assert hi.mu_risk == lo.mu_risk  # the other prices do not move
    assert min(hi.mu) >= 0.0


def test_unconstrained_target_keeps_its_price_at_zero() -> None:
    ctl = PriceController(Budgets(cost=1.0), initial=(0.5, 7.0, 7.0))
    assert ctl.prices.mu == (0.5, 0.0, 0.0)
    for _ in range(5):
        state = ctl.update(1.0, 1e6, 1e6)
    assert state.mu_latency == 0.0 and state.mu_risk == 0.0


def test_decide_applies_eq1_with_the_cost_markup() -> None:
    rng = np.random.default_rng(3)
    batch = random_batch(rng, 500, m=5)
    ctl = PriceController(Budgets(cost=1.0, latency=1.0, risk=1.0), initial=(0.4, 2.0, 150.0))
    d = ctl.decide(batch)
    mu_c, mu_l, mu_r = ctl.prices.mu
    s = (
        batch.value[:, None] * batch.quality
        - (1 + mu_c) * batch.cost
        - mu_l * batch.latency
        - mu_r * batch.risk
    )
    expected = np.where(s.max(axis=1) >= 0, s.argmax(axis=1), NOT_SERVED)
    np.testing.assert_array_equal(d.choice, expected)
    assert 0 < d.served < batch.n  # the prices bite on some tasks, not all
    rows = np.flatnonzero(expected >= 0)
    cols = expected[rows]
    assert d.cost == pytest.approx(batch.cost[rows, cols].sum())
    assert d.latency == pytest.approx(batch.latency[rows, cols].sum())
    assert d.risk == pytest.approx(batch.risk[rows, cols].sum())
    assert d.welfare == pytest.approx(
        (batch.value[rows] * batch.quality[rows, cols] - batch.cost[rows, cols]).sum()
    )
    # Same decisions through the Eq. 1 price vector (V/(1+µC), λ, ρ) of a single task.
    for k in range(20):
        opts = [
            Option(
                str(i), batch.quality[k, i], batch.cost[k, i], batch.latency[k, i], batch.risk[k, i]
            )
            for i in range(batch.m)
        ]
        choice = allocate(ctl.prices.price_vector(batch.value[k]), opts, outside_option=0.0).choice
        assert choice == (None if expected[k] < 0 else str(expected[k]))


def test_decide_on_task_objects_never_picks_a_padded_slot() -> None:
    tasks = [
        Task("one", 10.0, (Option("only", 0.5, 1.0),)),
        Task("two", 10.0, (Option("a", 0.1, 3.0), Option("b", 0.9, 1.0))),
    ]
    ctl = PriceController(Budgets(cost=100.0))
    d = ctl.decide(tasks)
    assert d.choice.tolist() == [0, 1]
    assert d.cost == 2.0 and d.served == 2


def test_controller_validates_its_configuration() -> None:
    with pytest.raises(InputError, match="targets: field 'cost' must be > 0"):
        PriceController(Budgets(cost=0.0))
    with pytest.raises(InputError, match="unknown price update rule 'adam'"):
        PriceController(Budgets(cost=1.0), rule="adam")
    with pytest.raises(InputError, match="eta0' must be > 0"):
        PriceController(Budgets(cost=1.0), eta0=0.0)
    with pytest.raises(InputError, match="every price scale must be > 0"):
        PriceController(Budgets(cost=1.0), scale=(1.0, 0.0, 1.0))
    with pytest.raises(InputError, match="burn_in"):
        PriceController(Budgets(cost=1.0), burn_in=-1)
    with pytest.raises(InputError, match="observed: field 'latency' must be >= 0"):
        PriceController(Budgets(cost=1.0)).update(1.0, -1.0, 0.0)
    with pytest.raises(InputError, match="MultiplicativeUpdate: field 'shift' must be > 0"):
        MultiplicativeUpdate(shift=0.0)


def test_registry_builds_protocol_instances() -> None:
    for name in UPDATE_RULES:
        assert isinstance(make_update_rule(name), PriceUpdateRule)
    assert isinstance(make_update_rule("dual_ascent"), DualAscent)
    assert RESOURCES == ("cost", "latency", "risk")
