"""The running example as a simulator: "fix the failing test" under four policies.

Each task has a hidden depth ``d`` (drawn from the controller's lognormal prior), a value
``V``, a risk class (loss ``L`` of a wrong patch that gets merged and its irreversible
share φ) and a deadline. An episode spends agent steps on read/plan/edit/verify
(:class:`~margin.agent.controller.EpisodeModel`), may ask a human to review, and ends by
submitting — unless the final test run catches a wrong patch, in which case nothing is
submitted. Outcomes use common random numbers across policies (one uniform per task for
success, tests, review), so policy differences are not sampling noise.

Policies (:data:`POLICIES`, each a :class:`Policy` with one ``act`` method):

* ``min_tokens``: the cheapest plausible episode — 2 read, 3 edit steps, no plan, no tests;
* ``max_success``: spends until the success estimate is within 1% of its ceiling or the
  deadline, phases in equal turns, never asks;
* ``fixed_cap``: SWE-agent's ``per_instance_cost_limit``: steps in the SWE-agent phase mix
  measured on SWE-Bench Pro until the cost cap, then auto-submit;
* ``marginal``: the Eq. 1 controller (:class:`~margin.agent.controller.MarginalController`).

Calibration (SWE-Bench Pro, SWE-agent + GPT-5, 730 tasks, nilenso/swe-bench-pro-cost-
token-time-analysis): 0.0284 USD and 1.28 s of tool time per step (median), a phase mix of
50% view/search, 16% edit/create, 29% bash; resolve ceiling 0.38 (MLE fit); the fixed cap
is the median per-task cost, 1.55 USD. A step's model time (8 s) is an assumption.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from margin.agent.controller import ABSTAIN, ASK, PHASES, STOP, EpisodeModel, MarginalController
from margin.core.prices import InputError

__all__ = [
    "POLICIES",
    "RISK_CLASSES",
    "FixedCap",
    "MarginalPolicy",
    "MaxSuccess",
    "MinTokens",
    "Policy",
    "PolicyResult",
    "TaskBatch",
    "compare_policies",
    "policy_grid",
    "sample_tasks",
    "simulate",
    "verifier_sweep",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: Risk classes: (loss of a wrong merged patch in USD, irreversible share).
RISK_CLASSES: dict[str, tuple[float, float]] = {
    "low": (5.0, 0.0),
    "medium": (50.0, 0.2),
    "high": (300.0, 0.6),
}

#: SWE-agent phase mix on SWE-Bench Pro (GPT-5): view+search, (plan), edit+create, bash.
SWE_AGENT_MIX = (0.50, 0.05, 0.16, 0.29)


@dataclass(frozen=True)
class TaskBatch:
    """``n`` tasks: hidden depth, value, risk, deadline, prices and common random numbers."""

    depth: FloatArray
    value: FloatArray
    loss: FloatArray
    irreversible_share: FloatArray
    deadline_steps: IntArray
    latency_price: FloatArray
    risk_price: FloatArray
    irreversible_risk_price: FloatArray
    u_success: FloatArray
    u_detect: FloatArray
    u_review: FloatArray

    @property
    def n(self) -> int:
        return int(self.depth.size)

    @property
    def priced_loss(self) -> FloatArray:
        """(ρ + ρ_irr·φ)·L per task."""
        return np.asarray(
            (self.risk_price + self.irreversible_risk_price * self.irreversible_share) * self.loss
        )


def sample_tasks(
    n: int,
    *,
    value: float | Sequence[float] = 20.0,
    risk_price: float = 1.0,
    irreversible_risk_price: float = 2.0,
    latency_price: float = 0.001,
    risk_class: str | None = None,
    model: EpisodeModel | None = None,
    seed: int = 0,
) -> TaskBatch:
    """Draw ``n`` tasks; depth from the model's prior, risk class uniform unless fixed.

    ``value`` is one V for all tasks or a list to draw from; the deadline is lognormal
    around 150 steps (about 23 minutes at 9.3 s a step).
    """
    if n < 1:
        raise InputError(f"tasks: need at least 1, got {n}")
    m = model if model is not None else EpisodeModel()
    rng = np.random.default_rng(seed)
    depth = m.depth_median * np.exp(m.depth_sigma * rng.standard_normal(n))
    vals = np.atleast_1d(np.asarray(value, dtype=np.float64))
    v = rng.choice(vals, size=n) if vals.size > 1 else np.full(n, float(vals[0]))
    if risk_class is not None and risk_class not in RISK_CLASSES:
        raise InputError(f"risk_class: unknown '{risk_class}' (known: {', '.join(RISK_CLASSES)})")
    names = list(RISK_CLASSES)
    k = (
        rng.integers(0, len(names), n)
        if risk_class is None
        else np.full(n, names.index(risk_class))
    )
    loss = np.array([RISK_CLASSES[names[i]][0] for i in k])
    phi = np.array([RISK_CLASSES[names[i]][1] for i in k])
    deadline = np.maximum(10, np.round(150 * np.exp(0.5 * rng.standard_normal(n)))).astype(np.intp)
    return TaskBatch(
        depth=depth,
        value=v,
        loss=loss,
        irreversible_share=phi,
        deadline_steps=deadline,
        latency_price=np.full(n, latency_price),
        risk_price=np.full(n, risk_price),
        irreversible_risk_price=np.full(n, irreversible_risk_price),
        u_success=rng.random(n),
        u_detect=rng.random(n),
        u_review=rng.random(n),
    )


class Policy(Protocol):
    """A step policy for a batch of running episodes (one main method)."""

    @property
    def name(self) -> str:
        """Registry name of the policy."""
        ...

    def act(
        self, steps: FloatArray, asked: npt.NDArray[np.bool_], elapsed: IntArray, tasks: TaskBatch
    ) -> IntArray:
        """Next step index per episode (0-3 phases, 4 ask, 5 stop and submit, 6 abstain)."""
        ...


def _round_robin(steps: FloatArray, mix: Sequence[float]) -> IntArray:
    """The phase furthest below its target share of the steps spent so far."""
    total = steps.sum(axis=1, keepdims=True) + 1.0
    deficit = np.asarray(mix)[None, :] * total - steps
    return np.asarray(np.argmax(deficit, axis=1), dtype=np.intp)


@dataclass(frozen=True)
class MinTokens:
    """Fewest tokens: read 2, edit 3, no plan, no tests, submit."""

    name: str = "min_tokens"
    plan: tuple[int, ...] = (0, 0, 2, 2, 2)

    def act(
        self, steps: FloatArray, asked: npt.NDArray[np.bool_], elapsed: IntArray, tasks: TaskBatch
    ) -> IntArray:
        k = np.minimum(elapsed, len(self.plan))
        script = np.asarray([*self.plan, STOP])
        return np.asarray(script[k], dtype=np.intp)


@dataclass(frozen=True)
class MaxSuccess:
    """Maximize success: equal turns until p̄ is within ``slack`` of its ceiling."""

    model: EpisodeModel = field(default_factory=EpisodeModel)
    slack: float = 0.01
    name: str = "max_success"

    def act(
        self, steps: FloatArray, asked: npt.NDArray[np.bool_], elapsed: IntArray, tasks: TaskBatch
    ) -> IntArray:
        p = self.model.expected_success(steps)
        done = p >= (1.0 - self.slack) * self.model.p_sat
        nxt = _round_robin(steps, (0.25, 0.25, 0.25, 0.25))
        return np.asarray(np.where(done, STOP, nxt), dtype=np.intp)


@dataclass(frozen=True)
class FixedCap:
    """SWE-agent style: its phase mix until ``cap_usd`` is spent, then submit."""

    model: EpisodeModel = field(default_factory=EpisodeModel)
    cap_usd: float = 1.55
    mix: tuple[float, ...] = SWE_AGENT_MIX
    name: str = "fixed_cap"

    def act(
        self, steps: FloatArray, asked: npt.NDArray[np.bool_], elapsed: IntArray, tasks: TaskBatch
    ) -> IntArray:
        spent = steps.sum(axis=1) * self.model.step_cost
        over = spent + self.model.step_cost > self.cap_usd + 1e-12
        return np.asarray(np.where(over, STOP, _round_robin(steps, self.mix)), dtype=np.intp)


@dataclass(frozen=True)
class MarginalPolicy:
    """The Eq. 1 controller over read/plan/edit/verify/ask/stop."""

    controller: MarginalController = field(default_factory=MarginalController)
    name: str = "marginal"

    def act(
        self, steps: FloatArray, asked: npt.NDArray[np.bool_], elapsed: IntArray, tasks: TaskBatch
    ) -> IntArray:
        action = self.controller.choose(
            steps,
            asked,
            tasks.value,
            tasks.priced_loss,
            tasks.latency_price,
            remaining=tasks.deadline_steps - elapsed,
        )
        final = elapsed >= tasks.deadline_steps  # out of time: submit only if it pays
        if final.any():
            sv = self.controller.model.submit_value(steps, asked, tasks.value, tasks.priced_loss)
            action = np.where(final, np.where(sv > 0, STOP, ABSTAIN), action)
        return np.asarray(action, dtype=np.intp)


#: Policy factories by name.
POLICIES: dict[str, Callable[[EpisodeModel], Policy]] = {
    "min_tokens": lambda m: MinTokens(),
    "max_success": lambda m: MaxSuccess(model=m),
    "fixed_cap": lambda m: FixedCap(model=m),
    "marginal": lambda m: MarginalPolicy(MarginalController(model=m)),
}


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """Per-task outcomes of one policy on a batch (arrays of shape (n,))."""

    policy: str
    utility: FloatArray
    cost: FloatArray
    success: npt.NDArray[np.bool_]
    wrong_submitted: npt.NDArray[np.bool_]
    irreversible_loss: FloatArray
    human_seconds: FloatArray
    steps: FloatArray

    def summary(self) -> dict[str, float]:
        """Means over tasks: utility, cost, success, realized risk, human time."""
        return {
            "utility": float(self.utility.mean()),
            "cost_usd": float(self.cost.mean()),
            "success_rate": float(self.success.mean()),
            "wrong_patch_rate": float(self.wrong_submitted.mean()),
            "irreversible_loss_rate": float((self.irreversible_loss > 0).mean()),
            "irreversible_loss_usd": float(self.irreversible_loss.mean()),
            "human_minutes": float(self.human_seconds.mean() / 60.0),
            "steps": float(self.steps.sum(axis=1).mean()),
            "verify_steps": float(self.steps[:, 3].mean()),
        }


def simulate(policy: Policy, tasks: TaskBatch, model: EpisodeModel | None = None) -> PolicyResult:
    """Run every episode of ``tasks`` under ``policy`` (vectorized over tasks).

    Realized utility per task: ``V·1[solved and submitted] − cost − λ·seconds − human cost
    − (ρ + ρ_irr·φ)·L·1[wrong patch merged]``. At its deadline an episode ends; the policy
    is asked once more and abstains if it answers ``abstain`` (any other answer submits).
    """
    m = model if model is not None else EpisodeModel()
    n = tasks.n
    steps = np.zeros((n, len(PHASES)))
    asked = np.zeros(n, dtype=bool)
    elapsed = np.zeros(n, dtype=np.intp)
    running = np.ones(n, dtype=bool)
    abstained = np.zeros(n, dtype=bool)
    horizon = int(tasks.deadline_steps.max())
    for _ in range(horizon + 2):
        if not running.any():
            break
        idx = np.flatnonzero(running)
        sub_steps = steps[idx]
        action = policy.act(sub_steps, asked[idx], elapsed[idx], _take(tasks, idx))
        action = np.where(asked[idx] & (action == ASK), STOP, action)
        phase = action < len(PHASES)
        steps[idx[phase], action[phase]] += 1.0
        asked[idx[action == ASK]] = True
        abstained[idx[action == ABSTAIN]] = True
        halt = (action == STOP) | (action == ABSTAIN)
        elapsed[idx[~halt]] += 1
        stop = halt | (elapsed[idx] >= tasks.deadline_steps[idx])
        running[idx[stop]] = False
        # at the deadline a policy may only submit or abstain: ask it once more
        late = idx[stop & ~halt]
        if late.size:
            last = policy.act(steps[late], asked[late], elapsed[late], _take(tasks, late))
            abstained[late[last == ABSTAIN]] = True
    p = m.success(steps, tasks.depth)
    solved = tasks.u_success < p
    caught_by_tests = ~solved & (tasks.u_detect < m.detection(steps[:, 3]))
    caught_by_human = ~solved & ~caught_by_tests & asked & (tasks.u_review < m.catch_rate)
    edited = steps[:, 2] > 0
    submitted = edited & ~abstained & ~caught_by_tests & ~caught_by_human
    success = solved & submitted
    wrong = submitted & ~solved
    n_steps = steps.sum(axis=1)
    cost = n_steps * m.step_cost
    seconds = n_steps * m.step_seconds + asked * m.review_seconds
    human_seconds = np.where(asked, m.review_seconds, 0.0)
    human_usd = np.where(asked, m.review_usd, 0.0)
    loss_priced = np.where(wrong, tasks.priced_loss, 0.0)
    utility = tasks.value * success - cost - tasks.latency_price * seconds - human_usd - loss_priced
    irr = np.where(wrong, tasks.irreversible_share * tasks.loss, 0.0)
    return PolicyResult(
        policy=policy.name,
        utility=np.asarray(utility),
        cost=np.asarray(cost),
        success=np.asarray(success),
        wrong_submitted=np.asarray(wrong),
        irreversible_loss=np.asarray(irr),
        human_seconds=np.asarray(human_seconds),
        steps=steps,
    )


def _take(tasks: TaskBatch, idx: IntArray) -> TaskBatch:
    return TaskBatch(**{k: getattr(tasks, k)[idx] for k in TaskBatch.__dataclass_fields__})


def compare_policies(
    tasks: TaskBatch,
    policies: Sequence[str] = tuple(POLICIES),
    model: EpisodeModel | None = None,
) -> dict[str, dict[str, float]]:
    """Summary of each named policy on the same tasks (common random numbers)."""
    m = model if model is not None else EpisodeModel()
    out: dict[str, dict[str, float]] = {}
    for name in policies:
        if name not in POLICIES:
            raise InputError(f"policy: unknown '{name}' (known: {', '.join(POLICIES)})")
        out[name] = simulate(POLICIES[name](m), tasks, m).summary()
    return out


def policy_grid(
    values: Sequence[float],
    risk_prices: Sequence[float],
    n: int = 400,
    policies: Sequence[str] = tuple(POLICIES),
    model: EpisodeModel | None = None,
    seed: int = 0,
    irreversible_risk_price: float = 2.0,
) -> list[dict[str, object]]:
    """:func:`compare_policies` at every (V, ρ) on a grid (ρ_irr fixed), tasks drawn per cell."""
    rows: list[dict[str, object]] = []
    for i, v in enumerate(values):
        for j, r in enumerate(risk_prices):
            tasks = sample_tasks(
                n,
                value=v,
                risk_price=r,
                irreversible_risk_price=irreversible_risk_price,
                model=model,
                seed=seed + 1000 * i + j,
            )
            rows.append(
                {"value": v, "risk_price": r, "policies": compare_policies(tasks, policies, model)}
            )
    return rows


@dataclass(frozen=True)
class _FixedVerify:
    """read/plan/edit from an equimarginal split, then exactly ``verify`` test steps."""

    work: tuple[int, int, int]
    verify: int
    name: str = "fixed_verify"

    def act(
        self, steps: FloatArray, asked: npt.NDArray[np.bool_], elapsed: IntArray, tasks: TaskBatch
    ) -> IntArray:
        target = np.asarray([*self.work, self.verify], dtype=np.float64)
        gap = target[None, :] - steps
        k = np.argmax(gap, axis=1)
        return np.asarray(np.where(gap.max(axis=1) > 0, k, STOP), dtype=np.intp)


def verifier_sweep(
    tasks: TaskBatch,
    verify_steps: Sequence[int] = tuple(range(0, 41, 4)),
    work: tuple[int, int, int] = (20, 8, 14),
    model: EpisodeModel | None = None,
) -> list[dict[str, float]]:
    """The paper's first prediction: realized risk against the verifier budget T_v.

    Read/plan/edit are held fixed; for each T_v the wrong-patch rate (realized risk) and
    the mean utility are reported. Realized risk falls monotonically in T_v; utility
    peaks where the marginal product of T_v meets its marginal cost. Each row carries the
    requested budget as ``verify_budget`` and the :meth:`PolicyResult.summary` means,
    whose ``verify_steps`` is the realized mean (below the budget when deadlines cut
    episodes short).

    Examples
    --------
    >>> rows = verifier_sweep(sample_tasks(50, seed=1), verify_steps=[0, 10])
    >>> [r["verify_budget"] for r in rows], rows[0]["verify_steps"]
    ([0.0, 10.0], 0.0)
    """
    m = model if model is not None else EpisodeModel()
    out = []
    for tv in verify_steps:
        r = simulate(_FixedVerify(work, int(tv)), tasks, m).summary()
        out.append({"verify_budget": float(tv), **r})
    return out
