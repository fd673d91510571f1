"""The running-example simulator: policy ordering and the verifier-budget prediction."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from margin.agent.controller import EpisodeModel
from margin.agent.simulator import (
    POLICIES,
    compare_policies,
    policy_grid,
    sample_tasks,
    simulate,
    verifier_sweep,
)
from margin.core.prices import InputError


def test_marginal_controller_wins_everywhere_on_the_grid() -> None:
    """Target: highest mean utility at every (V, ρ); never more irreversible losses than the cap."""
    rows = policy_grid([5.0, 30.0, 300.0], [0.0, 1.0, 10.0], n=200, seed=7)
    for row in rows:
        res = row["policies"]
        assert isinstance(res, dict)
        best = max(res, key=lambda k: res[k]["utility"])
        assert best == "marginal", row
        assert (
            res["marginal"]["irreversible_loss_rate"] <= res["fixed_cap"]["irreversible_loss_rate"]
        )


def test_policy_signatures() -> None:
    tasks = sample_tasks(300, value=50.0, risk_price=1.0, seed=1)
    out = compare_policies(tasks)
    assert set(out) == set(POLICIES)
    assert (
        out["min_tokens"]["cost_usd"]
        < out["fixed_cap"]["cost_usd"]
        < out["max_success"]["cost_usd"]
    )
    assert out["min_tokens"]["verify_steps"] == 0.0
    assert out["min_tokens"]["wrong_patch_rate"] > 0.4  # skip-the-tests ships wrong patches
    assert out["fixed_cap"]["cost_usd"] <= 1.55 + 1e-9
    assert out["max_success"]["success_rate"] >= out["fixed_cap"]["success_rate"]
    for r in out.values():
        assert 0.0 <= r["irreversible_loss_rate"] <= r["wrong_patch_rate"] <= 1.0


def test_common_random_numbers_make_runs_reproducible() -> None:
    m = EpisodeModel()
    a = simulate(POLICIES["marginal"](m), sample_tasks(100, seed=4), m)
    b = simulate(POLICIES["marginal"](m), sample_tasks(100, seed=4), m)
    assert np.array_equal(a.utility, b.utility)


def test_verifier_budget_lowers_realized_risk_monotonically() -> None:
    """Sec. 4, first prediction: risk falls in T_v; utility peaks at an interior T_v."""
    tasks = sample_tasks(300, value=50.0, risk_price=2.0, risk_class="high", seed=3)
    sweep = verifier_sweep(tasks, verify_steps=range(0, 61, 6))
    assert [r["verify_budget"] for r in sweep] == list(range(0, 61, 6))
    assert all(r["verify_steps"] <= r["verify_budget"] for r in sweep)  # realized, ≤ asked
    risk = [r["wrong_patch_rate"] for r in sweep]
    util = [r["utility"] for r in sweep]
    assert all(b <= a for a, b in itertools.pairwise(risk))
    assert risk[0] > 0.5 and risk[-1] < 0.02
    k = int(np.argmax(util))
    assert 0 < k < len(util) - 1  # marginal product of T_v meets its marginal cost inside


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="unknown 'nope'"):
        compare_policies(sample_tasks(10), ["nope"])
    with pytest.raises(InputError, match="risk_class"):
        sample_tasks(10, risk_class="extreme")
    with pytest.raises(InputError):
        sample_tasks(0)
