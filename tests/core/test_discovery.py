"""Price discovery (Eq. 3): the LP, its duals and the input parsing."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from margin.core import discovery
from margin.core.allocation import allocate
from margin.core.discovery import (
    RESOURCES,
    Budgets,
    Task,
    TaskBatch,
    discover_prices,
    load_discovery_problem,
)
from margin.core.prices import InputError, Option

# --------------------------------------------------------------------------- helpers


def random_batch(rng: np.random.Generator, n: int, m: int = 8) -> TaskBatch:
    """Tiered options: better quality costs more money and latency, carries less risk."""
    v = rng.lognormal(np.log(20.0), 0.8, n)
    tier = np.linspace(0.0, 1.0, m)[None, :]
    q = 0.4 + 0.5 * tier + rng.normal(0, 0.05, (n, m))
    c = (0.2 + 4.0 * tier**2) * rng.lognormal(0, 0.2, (n, m))
    lat = (0.5 + 3.0 * tier) * rng.lognormal(0, 0.2, (n, m))
    r = (0.05 * (1 - tier) + 0.005) * rng.lognormal(0, 0.3, (n, m))
    return TaskBatch.from_arrays(v, q, c, lat, r)


def budgets_from_fractions(free_usage: dict[str, float], fractions: tuple[float, ...]) -> Budgets:
    return Budgets(*(f * free_usage[k] for k, f in zip(RESOURCES, fractions, strict=True)))


def replace_budget(b: Budgets, name: str, value: float) -> Budgets:
    kw: dict[str, Any] = dict(zip(RESOURCES, b.as_tuple(), strict=True))
    kw[name] = value
    return Budgets(**kw)


def kkt_margin(d: discovery.PriceDiscovery, batch: TaskBatch) -> np.ndarray:
    """V·ΔQ − (1 + µC)·ΔC − µL·ΔL − µR·ΔR per task and option (−inf on padded slots)."""
    s = (
        batch.value[:, None] * batch.quality
        - (1.0 + d.mu_cost) * batch.cost
        - d.mu_latency * batch.latency
        - d.mu_risk * batch.risk
    )
    return np.where(batch.mask, s, -np.inf)


@st.composite
def small_problems(draw: st.DrawFn) -> tuple[TaskBatch, tuple[float, float, float]]:
    n = draw(st.integers(1, 6))
    m = draw(st.integers(1, 4))
    fl = st.floats
    value = draw(st.lists(fl(0.0, 50.0), min_size=n, max_size=n))

    def mat(lo: float, hi: float) -> list[list[float]]:
        row = st.lists(fl(lo, hi), min_size=m, max_size=m)
        return draw(st.lists(row, min_size=n, max_size=n))

    batch = TaskBatch.from_arrays(
        value, mat(0.0, 1.0), mat(0.01, 5.0), mat(0.0, 3.0), mat(0.0, 0.2)
    )
    fractions = draw(st.tuples(fl(0.05, 1.3), fl(0.05, 1.3), fl(0.05, 1.3)))
    return batch, fractions


LP_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- LP properties


@LP_SETTINGS
@given(small_problems())
def test_duals_nonnegative_and_complementary_slackness(
    problem: tuple[TaskBatch, tuple[float, float, float]],
) -> None:
    batch, fractions = problem
    free = discover_prices(batch)
    d = discover_prices(batch, budgets_from_fractions(free.usage, fractions))
    assert min(d.mu) >= 0.0
    assert np.all(d.task_duals >= 0.0)
    scale = 1.0 + abs(d.welfare)
    for name, mu in zip(RESOURCES, d.mu, strict=True):
        assert d.slack[name] >= -1e-7 * (1.0 + d.usage[name])  # feasible
        assert mu * d.slack[name] <= 1e-6 * scale  # complementary slackness
    unserved = 1.0 - d.allocation.sum(axis=1)
    assert np.all(unserved >= -1e-9)
    assert np.all(d.task_duals * unserved <= 1e-6 * scale)


@LP_SETTINGS
@given(small_problems())
def test_strong_duality_and_dual_feasibility(
    problem: tuple[TaskBatch, tuple[float, float, float]],
) -> None:
    batch, fractions = problem
    free = discover_prices(batch)
    d = discover_prices(batch, budgets_from_fractions(free.usage, fractions))
    tol = 1e-6 * (1.0 + abs(d.welfare))
    assert d.dual_objective == pytest.approx(d.welfare, abs=tol)
    margin = kkt_margin(d, batch)
    # π_x >= V·ΔQ − (1+µC)ΔC − µL ΔL − µR ΔR for every option, with equality where y > 0.
    assert np.all(d.task_duals[:, None] >= margin - tol)
    used = d.allocation > 1e-7
    rows, cols = np.nonzero(used)
    assert np.allclose(d.task_duals[rows], margin[rows, cols], atol=tol)


@LP_SETTINGS
@given(small_problems(), st.sampled_from(RESOURCES), st.floats(0.01, 0.5))
def test_dual_price_lies_between_one_sided_welfare_derivatives(
    problem: tuple[TaskBatch, tuple[float, float, float]], name: str, rel_eps: float
) -> None:
    """W(B) is concave and piecewise linear; µ is a supergradient, so the one-sided
    difference quotients bracket it: (W(B+ε)−W(B))/ε <= µ <= (W(B)−W(B−ε))/ε."""
    batch, fractions = problem
    free = discover_prices(batch)
    b = budgets_from_fractions(free.usage, fractions)
    base = getattr(b, name)
    assert base is not None
    assume(base > 1e-3)
    eps = rel_eps * base
    d = discover_prices(batch, b)
    w_up = discover_prices(batch, replace_budget(b, name, base + eps)).welfare
    w_down = discover_prices(batch, replace_budget(b, name, base - eps)).welfare
    right, left = (w_up - d.welfare) / eps, (d.welfare - w_down) / eps
    mu = dict(zip(RESOURCES, d.mu, strict=True))[name]
    tol = 1e-6 * (1.0 + abs(d.welfare)) / eps
    assert right + tol >= 0.0
    assert right - tol <= mu <= left + tol


@LP_SETTINGS
@given(small_problems(), st.sampled_from(RESOURCES), st.floats(1.05, 3.0))
def test_more_budget_never_lowers_welfare_nor_raises_its_price(
    problem: tuple[TaskBatch, tuple[float, float, float]], name: str, factor: float
) -> None:
    batch, fractions = problem
    free = discover_prices(batch)
    b = budgets_from_fractions(free.usage, fractions)
    base = getattr(b, name)
    assert base is not None
    lo = discover_prices(batch, b)
    hi = discover_prices(batch, replace_budget(b, name, base * factor))
    k = RESOURCES.index(name)
    tol = 1e-6 * (1.0 + abs(lo.welfare))
    assert hi.welfare >= lo.welfare - tol
    assert hi.mu[k] <= lo.mu[k] + 1e-6 * (1.0 + lo.mu[k])


def test_finite_difference_welfare_matches_price_on_a_generic_problem() -> None:
    """Away from a kink the value function is linear: ΔW/ε equals µ for each binding budget."""
    rng = np.random.default_rng(3)
    batch = random_batch(rng, 300)
    free = discover_prices(batch)
    b = budgets_from_fractions(free.usage, (0.7, 0.6, 0.5))
    d = discover_prices(batch, b)
    assert all(mu > 0 for mu in d.mu), d.mu  # all three budgets bind
    for k, name in enumerate(RESOURCES):
        base = getattr(b, name)
        eps = 1e-5 * base
        w_up = discover_prices(batch, replace_budget(b, name, base + eps)).welfare
        assert (w_up - d.welfare) / eps == pytest.approx(d.mu[k], rel=1e-3)


def test_slack_budget_has_zero_price() -> None:
    rng = np.random.default_rng(4)
    batch = random_batch(rng, 200)
    free = discover_prices(batch)
    # Latency budget above what the unconstrained optimum uses: it can never bind.
    b = Budgets(cost=0.5 * free.usage["cost"], latency=2.0 * free.usage["latency"])
    d = discover_prices(batch, b)
    assert d.mu_cost > 0.0 and d.slack["cost"] == pytest.approx(0.0, abs=1e-6)
    assert d.slack["latency"] > 0.0
    assert d.mu_latency == 0.0 and d.lambda_ == 0.0
    assert d.mu_risk == 0.0 and d.slack["risk"] == float("inf")


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda n: st.tuples(
            st.lists(st.floats(0.0, 100.0), min_size=n, max_size=n),
            st.lists(
                st.lists(st.floats(-0.2, 1.0), min_size=3, max_size=3), min_size=n, max_size=n
            ),
            st.lists(
                st.lists(st.floats(0.0, 10.0), min_size=3, max_size=3), min_size=n, max_size=n
            ),
        )
    )
)
def test_without_budgets_each_task_takes_its_eq1_choice(
    data: tuple[list[float], list[list[float]], list[list[float]]],
) -> None:
    value, quality, cost = data
    v, q, c = np.asarray(value), np.asarray(quality), np.asarray(cost)
    surplus = v[:, None] * q - c
    top2 = np.sort(surplus, axis=1)[:, -2:]
    assume(np.all(top2[:, 1] - top2[:, 0] > 1e-6) and np.all(np.abs(top2[:, 1]) > 1e-6))
    d = discover_prices(TaskBatch.from_arrays(v, q, c))
    for k in range(v.size):
        opts = [Option(str(i), q[k, i], c[k, i]) for i in range(3)]
        choice = allocate(d.price_vector(v[k]), opts, outside_option=0.0).choice
        expected = np.zeros(3)
        if surplus[k].max() > 0:
            expected[int(np.argmax(surplus[k]))] = 1.0
            assert choice == str(int(np.argmax(surplus[k])))
        else:
            assert choice is None
        np.testing.assert_allclose(d.allocation[k], expected, atol=1e-7)
    assert d.welfare == pytest.approx(np.maximum(surplus.max(axis=1), 0).sum(), abs=1e-6)
    assert d.mu == (0.0, 0.0, 0.0) and np.allclose(d.task_duals, np.maximum(surplus.max(1), 0))


def test_price_vector_reproduces_the_lp_choice_under_binding_budgets() -> None:
    """Eq. 1 at (V/(1+µC), λ, ρ) picks the option the LP serves each integral task with."""
    rng = np.random.default_rng(5)
    batch = random_batch(rng, 400, m=5)
    free = discover_prices(batch)
    d = discover_prices(batch, budgets_from_fractions(free.usage, (0.7, 0.6, 0.5)))
    assert all(mu > 0 for mu in d.mu)
    checked = 0
    for k in range(batch.n):
        row = d.allocation[k]
        margins = np.sort(kkt_margin(d, batch)[k])
        if np.any((row > 1e-9) & (row < 1 - 1e-9)) or margins[-1] - margins[-2] < 1e-6:
            continue  # a fractional or tied task: Eq. 1 is indifferent there
        opts = [
            Option(
                str(i), batch.quality[k, i], batch.cost[k, i], batch.latency[k, i], batch.risk[k, i]
            )
            for i in range(batch.m)
        ]
        choice = allocate(d.price_vector(batch.value[k]), opts, outside_option=0.0).choice
        lp_choice = str(int(np.argmax(row))) if row.sum() > 0.5 else None
        assert choice == lp_choice
        checked += 1
    assert checked > 0.9 * batch.n
    assert d.lambda_ == pytest.approx(d.mu_latency / (1 + d.mu_cost))
    assert d.rho == pytest.approx(d.mu_risk / (1 + d.mu_cost))


def test_budgets_absent_means_unconstrained() -> None:
    rng = np.random.default_rng(6)
    batch = random_batch(rng, 50, m=3)
    none = discover_prices(batch)
    empty = discover_prices(batch, Budgets())
    huge = discover_prices(batch, Budgets(cost=1e9, latency=1e9, risk=1e9))
    assert none.welfare == pytest.approx(empty.welfare) == pytest.approx(huge.welfare)
    assert none.mu == empty.mu == (0.0, 0.0, 0.0)
    assert huge.mu == pytest.approx((0.0, 0.0, 0.0), abs=1e-9)
    assert all(s == float("inf") for s in none.slack.values())
    # A file without "budgets", or with only some, leaves the others unconstrained.
    _, budgets = load_discovery_problem({"tasks": [_task_json("a")]})
    assert budgets == Budgets()
    _, budgets = load_discovery_problem({"tasks": [_task_json("a")], "budgets": {"risk": 0.1}})
    assert budgets == Budgets(risk=0.1)


def test_zero_budget_serves_nothing_that_uses_the_resource() -> None:
    cheap, free_opt = Option("cheap", 0.7, 1.0), Option("free", 0.2, 0.0)
    d = discover_prices([Task("a", 10.0, (cheap, free_opt))], Budgets(cost=0.0))
    assert d.allocation_dict() == {"a": {"cheap": 0.0, "free": 1.0}}
    assert d.welfare == pytest.approx(2.0)
    # Upgrading to "cheap" is worth 7 − 1 − 2 = 4 per dollar of budget.
    assert d.mu_cost == pytest.approx(4.0)


def test_mixed_option_counts_are_padded_and_reported_per_task() -> None:
    tasks = [
        Task("one", 10.0, (Option("only", 0.5, 1.0),)),
        Task("three", 100.0, (Option("a", 0.5, 1.0), Option("b", 0.9, 5.0), Option("c", 0.1, 0.0))),
    ]
    d = discover_prices(tasks)
    assert d.allocation.shape == (2, 3)
    np.testing.assert_allclose(d.allocation, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], atol=1e-9)
    assert d.allocation_dict() == {
        "one": {"only": 1.0},
        "three": {"a": 0.0, "b": 1.0, "c": 0.0},
    }
    assert d.welfare == pytest.approx(4.0 + 85.0)


def test_to_json_has_exactly_the_documented_shape() -> None:
    problem = {
        "tasks": [
            {
                "id": "low",
                "value": 10,
                "options": [
                    {"name": "cheap", "quality": 0.7, "cost": 1},
                    {"name": "frontier", "quality": 0.9, "cost": 5},
                ],
            },
            {
                "id": "high",
                "value": 100,
                "options": [
                    {"name": "cheap", "quality": 0.7, "cost": 1, "latency": 0.5, "risk": 0.05},
                    {"name": "frontier", "quality": 0.9, "cost": 5, "latency": 2.0, "risk": 0.01},
                ],
            },
        ],
        "budgets": {"cost": 5},
    }
    tasks, budgets = load_discovery_problem(problem)
    out = json.loads(json.dumps(discover_prices(tasks, budgets).to_json()))
    assert set(out) == {"prices", "lambda", "rho", "welfare", "allocation"}
    assert set(out["prices"]) == {"cost", "latency", "risk"}
    assert out["prices"]["cost"] == pytest.approx(4.0)
    assert out["prices"]["latency"] == 0.0 and out["lambda"] == 0.0 and out["rho"] == 0.0
    assert out["welfare"] == pytest.approx(87.0)
    assert out["allocation"] == {
        "low": {"cheap": 1.0, "frontier": 0.0},
        "high": {"cheap": pytest.approx(0.25), "frontier": pytest.approx(0.75)},
    }


# --------------------------------------------------------------------------- failures


def test_solver_failure_statuses_raise_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = [Task("a", 10.0, (Option("x", 0.5, 1.0),))]
    for status, words in [(2, "infeasible"), (3, "unbounded"), (4, "numerical"), (1, "iteration")]:

        def fake(*args: Any, _s: int = status, **kwargs: Any) -> SimpleNamespace:
            return SimpleNamespace(status=_s, message="solver says no")

        monkeypatch.setattr(discovery, "linprog", fake)
        with pytest.raises(InputError, match=f"price discovery: .*{words}.*solver says no"):
            discover_prices(tasks, Budgets(cost=1.0))


def test_unknown_method_and_empty_tasks_raise() -> None:
    tasks = [Task("a", 10.0, (Option("x", 0.5, 1.0),))]
    with pytest.raises(InputError, match="method: unknown LP method 'simplex'"):
        discover_prices(tasks, method="simplex")
    with pytest.raises(InputError, match="tasks: at least one task"):
        discover_prices([])
    with pytest.raises(InputError, match="tasks\\[1\\]: duplicate task id 'a'"):
        discover_prices([tasks[0], tasks[0]])
    with pytest.raises(InputError, match="budgets: expected Budgets"):
        discover_prices(tasks, {"cost": 1.0})  # type: ignore[arg-type]


def test_all_highs_methods_agree() -> None:
    rng = np.random.default_rng(8)
    batch = random_batch(rng, 80, m=4)
    free = discover_prices(batch)
    b = budgets_from_fractions(free.usage, (0.7, 0.6, 0.5))
    sols = [discover_prices(batch, b, method=m) for m in ("highs-ipm", "highs", "highs-ds")]
    for s in sols[1:]:
        assert s.welfare == pytest.approx(sols[0].welfare, rel=1e-9)
        assert s.mu == pytest.approx(sols[0].mu, rel=1e-6)


# --------------------------------------------------------------------------- parsing


def _task_json(tid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": tid,
        "value": 10.0,
        "options": [{"name": "o", "quality": 0.5, "cost": 1.0}],
    } | extra


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {
                "tasks": [_task_json(f"t{k}") for k in range(3)]
                + [
                    {
                        "id": "t3",
                        "value": 1,
                        "options": [
                            {"name": "a", "quality": 1, "cost": 1},
                            {"name": "b", "quality": 1},
                        ],
                    }
                ]
            },
            "file: tasks[3].options[1]: missing field 'cost'",
        ),
        ({"tasks": [_task_json("a"), _task_json("a")]}, "file: tasks[1]: duplicate task id 'a'"),
        (
            {"tasks": [{"id": "a", "value": 1, "options": []}]},
            "file: tasks[0]: field 'options' must hold at least one option",
        ),
        ({"tasks": []}, "file: field 'tasks' must hold at least one task"),
        ({"budgets": {}}, "file: missing field 'tasks'"),
        ({"tasks": "abc"}, "file: field 'tasks' must be a list"),
        (
            {"tasks": [_task_json("a")], "budgets": {"cost": -1}},
            "file: budgets: field 'cost' must be >= 0",
        ),
        (
            {"tasks": [_task_json("a")], "budgets": {"costs": 1}},
            "file: budgets: unknown field 'costs'",
        ),
        ({"tasks": [_task_json("a")], "budgets": [1]}, "file: budgets: expected an object"),
        ({"tasks": [{"value": 1, "options": []}]}, "file: tasks[0]: missing field 'id'"),
        (
            {"tasks": [_task_json("a", value=float("nan"))]},
            "file: tasks[0]: field 'value' is NaN",
        ),
        ({"tasks": [_task_json("a", value=-3)]}, "file: tasks[0]: field 'value' must be >= 0"),
        (
            {"tasks": [_task_json("a", id="")]},
            "file: tasks[0]: field 'id' must be a non-empty string",
        ),
        (
            {
                "tasks": [
                    {
                        "id": "a",
                        "value": 1,
                        "options": [{"name": "x", "quality": 1, "cost": 1}] * 2,
                    }
                ]
            },
            "file: tasks[0]: task 'a': duplicate option names ['x']",
        ),
        (
            {
                "tasks": [
                    {"id": "a", "value": 1, "options": [{"name": "x", "quality": 1, "cost": "1"}]}
                ]
            },
            "file: tasks[0].options[0]: option 'x': field 'cost' must be a number",
        ),
        (
            {"tasks": [_task_json("a", options={"name": "x"})]},
            "file: tasks[0]: field 'options' must be a list",
        ),
        ({"tasks": [7]}, "file: tasks[0]: expected an object for a task"),
    ],
)
def test_invalid_files_name_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as err:
        load_discovery_problem(data)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_where_prefix_is_the_file_name() -> None:
    with pytest.raises(InputError, match=r"^problem\.json: missing field 'tasks'$"):
        load_discovery_problem({}, where="problem.json")
    with pytest.raises(InputError, match=r"^expected a JSON object"):
        load_discovery_problem([], where="")  # type: ignore[arg-type]


def test_value_objects_validate() -> None:
    with pytest.raises(InputError, match="budgets: field 'latency' is NaN"):
        Budgets(latency=float("nan"))
    with pytest.raises(InputError, match="task 'a': field 'options' must hold at least one"):
        Task("a", 1.0, ())
    with pytest.raises(InputError, match="task 'a': options\\[0\\] is not an Option"):
        Task("a", 1.0, ("x",))  # type: ignore[arg-type]
    t = Task("a", 2, [Option("x", 0.5, 1.0)])  # type: ignore[arg-type]
    assert t.options == (Option("x", 0.5, 1.0),) and t.value == 2.0
    assert Budgets(cost=2.0, risk=1.0).scaled(3.0) == Budgets(cost=6.0, risk=3.0)
    with pytest.raises(InputError, match="'cost' must be >= 0"):
        TaskBatch.from_arrays([1.0], [[0.5]], [[-1.0]])
    with pytest.raises(InputError, match="'quality' must have shape"):
        TaskBatch.from_arrays([1.0, 2.0], [[0.5]], [[1.0]])
    with pytest.raises(InputError, match="'task_ids' must be 2 distinct names"):
        TaskBatch.from_arrays([1.0, 2.0], [[0.5], [0.5]], [[1.0], [1.0]], task_ids=["a", "a"])
