"""The end-to-end economy: router → agent steps (served by the serving simulator) → trainer/cache.

Two regimes run on the same :class:`~margin.economy.stream.TaskStream` (Sec. 1, 4 of the
paper: locally competent layers misallocate globally when the prices sit apart):

``siloed``
    cost-minimizing router (the cheapest tier whose benchmark quality meets a fixed bar,
    blind to V and ρ); success-maximizing agent (:class:`margin.agent.simulator.MaxSuccess`);
    FCFS serving with a flat token price and an LRU prefix cache; a trainer that keeps
    every trace.
``shared``
    one price vector discovered online by :class:`margin.core.discovery.PriceController`
    (duals µ = (µC, µL, µR) of a cost budget, a latency SLA and a risk envelope, Eq. 3)
    and published every ``interval_s`` to all four layers, with the serving layer's
    congestion quote (Mendelson–Whang price and expected wait of
    :class:`margin.serving.pricing.PriorityQueueModel`, fitted on the previous interval's
    calls) fed back into the router's and the agent's per-call ΔC and ΔL. Router: Eq. 4
    over the model tiers (:func:`margin.core.allocation.allocate_batch`); agent: the
    marginal step controller (:class:`margin.agent.controller.MarginalController`);
    serving: :class:`margin.serving.schedulers.PricedScheduler`; capital: marginal
    admission of traces (:func:`margin.capital.rl.admit_rollouts`) and the prefix cache
    evicted by expected discounted reuse value
    (:class:`margin.capital.cache.PricedPrefixEviction`).

Published prices for a task of value V and delay price λ_x (KKT of Eq. 3 divided by
1 + µC, as :meth:`margin.core.discovery.ControllerState.price_vector`)::

    PriceVector(V/(1+µC), (λ_x + µL)/(1+µC), (ρ + µR)/(1+µC), ρ_irr/(1+µC))

Welfare (the economy's objective, at social prices; congestion charges are transfers)::

    W = Σ_coding [V·1[success] − ΔC − λ_x·latency − ρ·loss − ρ_irr·φ·loss]
        + Σ_background,served [V − ΔC − λ·e2e] + Σ_traces,admitted (±v·e^{−ωk} − c)

and its per-layer split: routing = −(model-call spend); agent = V·success − human review
spend − ρ·loss − λ·(tool + review time); serving = −λ·(model-call latency) of the coding
tasks + the background tenants' welfare; capital = the trainer's net investment value.

Modelling choices (stated, not hidden):

* model calls are open-loop: step k of a task is issued at ``arrival + k·(tool time +
  quoted call latency)``; the serving simulation of the whole stream runs once after all
  decisions, and its realized end-to-end latency of each call replaces the quote in the
  task's realized latency (a rejected agent call costs ``max_defer_s`` plus its service);
* the controller observes, per interval, the realized spend and the ex-ante latency and
  risk of the decided tasks (realized losses are too rare to steer on);
* serving externality per call: the Mendelson–Whang marginal external delay of the
  quote model in force (one class under FCFS, four under priced scheduling); a serving
  record's λ is the request's own delay price and ``external_delay_s`` the price divided
  by it, so that λ·ΔL_ext equals the price (``external_delay_unit_s`` is the price at unit
  delay cost, ``others_latency_price`` the delay-cost-weighted λ of the others);
* ledger accounting: every dollar, token and value is recorded once — the routing record
  carries the task's model-call tokens and spend, the agent record V·1[success], the
  review spend, its own (tool + review) time and the realized loss, each serving record
  a call's latency (and a background request's V, tokens and flat-price spend), the
  capital record the trainer's V·ΔQ − ΔC; so Σ over a siloed ledger's records of
  V·ΔQ − ΔC − λ·ΔL − ρ·ΔR − ρ_irr·(irreversible loss) is the regime's welfare; every
  record with a regret names its ``ex_post_optimal``;
* regret: routing, the realized welfare of the ex-post best tier (same agent policy, same
  random numbers) minus the chosen one's; agent, the ex-post best of the agent layer's
  policies (:data:`margin.agent.simulator.POLICIES`) on the chosen tier; serving, the
  delay cost of queueing Σλ·queue delay (an upper bound of what any order could save);
  capital, realized ``max(0, value) − value of the decision``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from margin.agent.controller import PHASES, EpisodeModel, MarginalController
from margin.agent.simulator import (
    POLICIES,
    MarginalPolicy,
    MaxSuccess,
    Policy,
    PolicyResult,
    TaskBatch as AgentTasks,
    simulate,
)
from margin.capital.cache import PricedPrefixEviction, ReuseRule
from margin.capital.rl import admit_rollouts
from margin.core.allocation import allocate_batch
from margin.core.discovery import Budgets, ControllerState, PriceController
from margin.core.prices import InputError, Option, PriceVector
from margin.economy.config import EconomyConfig, calibrate_from_data
from margin.economy.stream import BACKGROUND_TENANTS, TaskStream, draw_stream
from margin.ledger.records import LedgerRecord, Outcome, RecordSink, TokenUsage, usd_to_nanos
from margin.serving.costmodel import CostModel, load_cost_model
from margin.serving.prefix import PrefixEvictionFactory
from margin.serving.pricing import PriorityQueueModel, request_work
from margin.serving.schedulers import FCFS, PricedScheduler, Scheduler
from margin.serving.simulator import ServingConfig, SimulationResult, Simulator
from margin.serving.traces import Trace

__all__ = [
    "LAYER_NAMES",
    "REGIMES",
    "EconomyResult",
    "LayerReport",
    "Regime",
    "RegimeResult",
    "run_economy",
    "run_regime",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

#: The four layers, in the order of the paper's Table 1.
LAYER_NAMES: tuple[str, str, str, str] = ("routing", "agent", "serving", "capital")

#: Agent-layer calibration of the frontier tier (SWE-Bench Pro, GPT-5 + SWE-agent).
_FRONTIER_STEP_USD = EpisodeModel().step_cost
_FRONTIER_P_SAT = EpisodeModel().p_sat

#: A quote model saturates at this utilisation (the M/G/1 wait is infinite at 1).
_MAX_LOAD = 0.95


@dataclass(frozen=True, slots=True)
class Regime:
    """Which policy each layer runs: ``siloed`` or ``shared`` per layer."""

    routing: str = "siloed"
    agent: str = "siloed"
    serving: str = "siloed"
    capital: str = "siloed"
    name: str = "siloed"

    def __post_init__(self) -> None:
        for layer in LAYER_NAMES:
            if getattr(self, layer) not in ("siloed", "shared"):
                raise InputError(
                    f"regime: field '{layer}' must be 'siloed' or 'shared', "
                    f"got {getattr(self, layer)!r}"
                )

    def shared(self, layer: str) -> bool:
        return bool(getattr(self, layer) == "shared")

    def swap(self, layer: str) -> Regime:
        """This regime with ``layer`` switched to shared prices."""
        if layer not in LAYER_NAMES:
            raise InputError(f"regime: unknown layer {layer!r}")
        return replace(self, **{layer: "shared"}, name=f"siloed+{layer}")


#: The two regimes of the comparison.
REGIMES: dict[str, Regime] = {
    "siloed": Regime(),
    "shared": Regime("shared", "shared", "shared", "shared", name="shared"),
}


@dataclass(frozen=True, slots=True)
class LayerReport:
    """One layer's share of a regime's outcome (USD; latency in seconds per request)."""

    welfare: float
    cost: float
    latency: float
    risk: float
    regret: float
    decisions: int

    def as_dict(self) -> dict[str, float]:
        return {
            "welfare": self.welfare,
            "cost": self.cost,
            "latency": self.latency,
            "risk": self.risk,
            "regret": self.regret,
            "decisions": float(self.decisions),
        }


@dataclass(frozen=True, eq=False)
class RegimeResult:
    """Outcome of one regime on one stream.

    ``layers`` maps each of :data:`LAYER_NAMES` to its :class:`LayerReport`; ``total`` is
    their sum (welfare, cost, regret, risk) with latency the mean coding-task latency.
    ``prices`` lists the published (µC, λ, ρ) per interval; ``tier_choice`` the tier index
    per coding task; ``task_welfare`` the realized welfare per coding task. ``cache``
    summarizes the serving prefix cache: eviction ``policy``, ``evictions``, token
    ``hit_rate`` over all prompts and ``coding_hit_rate`` over the agent calls,
    ``hit_rate_by_value`` (prompt tokens read from the cache over prompt tokens, by the
    request's V tier), ``cached_tokens`` and the model spend it saved (``saved_usd``).
    """

    regime: Regime
    layers: dict[str, LayerReport]
    total: LayerReport
    success_rate: float
    prices: tuple[tuple[float, float, float], ...]
    tier_choice: IntArray
    task_welfare: FloatArray
    calls: int
    rejected_background: int
    cache: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "regime": self.regime.name,
            "cache": dict(self.cache),
            "layers": {k: v.as_dict() for k, v in self.layers.items()},
            "total": self.total.as_dict(),
            "success_rate": self.success_rate,
            "calls": self.calls,
            "rejected_background": self.rejected_background,
            "prices": [list(p) for p in self.prices],
        }


@dataclass(frozen=True, eq=False)
class EconomyResult:
    """Siloed vs shared on one stream, with the welfare difference attributed to layers.

    ``attribution[layer]`` = W(siloed with only ``layer`` shared) − W(siloed);
    ``attribution["interaction"]`` = the rest of W(shared) − W(siloed) (complementarity
    between layers: prices pay most when every layer reads them).
    """

    config: EconomyConfig
    siloed: RegimeResult
    shared: RegimeResult
    attribution: dict[str, float]
    swaps: dict[str, RegimeResult] = field(default_factory=dict)

    @property
    def welfare_gain(self) -> float:
        return self.shared.total.welfare - self.siloed.total.welfare

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.config.seed,
            "siloed": self.siloed.as_dict(),
            "shared": self.shared.as_dict(),
            "welfare_gain": self.welfare_gain,
            "attribution": dict(self.attribution),
        }


# --------------------------------------------------------------------------- helpers


def _published(
    value: FloatArray, lam: float, state: ControllerState, config: EconomyConfig
) -> tuple[FloatArray, float, float, float]:
    """(V', λ', ρ', ρ_irr') of the published price vector for tasks of value ``value``."""
    d = 1.0 + state.mu_cost
    return (
        value / d,
        (lam + state.mu_latency) / d,
        (config.risk_price + state.mu_risk) / d,
        config.irreversible_risk_price / d,
    )


def _quote_model(
    work: FloatArray, lam: FloatArray, span: float, replicas: int, classes: int
) -> PriorityQueueModel:
    """M/G/1 model of one replica fitted to calls of work ``work`` over ``span`` seconds."""
    if work.size == 0:
        work = np.array([1e-3])
        lam = np.array([0.0])
    rate = work.size / max(span, 1e-9) / replicas
    load = rate * float(work.mean())
    if load > _MAX_LOAD:
        rate *= _MAX_LOAD / load
    return PriorityQueueModel.fit(work, rate, delay_cost=lam, n_classes=classes)


def _externality(model: PriorityQueueModel, work: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per call: (external delay in seconds at unit delay cost, its delay-cost price)."""
    k = model.classify(work)
    unit = PriorityQueueModel(
        model.edges,
        model.rates,
        model.mean_service,
        model.second_moment,
        np.ones_like(model.delay_cost),
    ).prices()
    priced = model.prices()
    return np.asarray(unit[k], dtype=np.float64), np.asarray(priced[k], dtype=np.float64)


def _agent_tasks(
    stream: TaskStream, idx: IntArray, prices: tuple[FloatArray, float, float, float]
) -> AgentTasks:
    v, lam, rho, rho_irr = prices
    n = idx.size
    return AgentTasks(
        depth=stream.depth[idx],
        value=np.asarray(v, dtype=np.float64),
        loss=stream.loss[idx],
        irreversible_share=stream.irreversible_share[idx],
        deadline_steps=stream.deadline_steps[idx],
        latency_price=np.full(n, lam),
        risk_price=np.full(n, rho),
        irreversible_risk_price=np.full(n, rho_irr),
        u_success=stream.u_success[idx],
        u_detect=stream.u_detect[idx],
        u_review=stream.u_review[idx],
    )


@dataclass(frozen=True, eq=False)
class _Plan:
    """One agent policy run on one tier for a batch of tasks: ex-ante and realized."""

    result: PolicyResult
    model: EpisodeModel
    quality: FloatArray  # ex-ante P(success)
    cost: FloatArray  # ex-ante ΔC incl. congestion charge and review
    latency: FloatArray  # ex-ante ΔL
    risk: FloatArray  # ex-ante expected loss
    escape: FloatArray  # P(wrong patch submitted)
    submitted_plan: BoolArray
    charge: float


def _plan(
    policy: Policy, tasks: AgentTasks, model: EpisodeModel, charge: float, marginal: bool
) -> _Plan:
    res = simulate(policy, tasks, model)
    steps = res.steps
    n_steps = steps.sum(axis=1)
    asked = res.human_seconds > 0
    p = model.expected_success(steps)
    det = model.detection(steps[:, 3])
    escape = (1.0 - p) * (1.0 - det) * (1.0 - model.catch_rate * asked)
    edited = steps[:, 2] > 0
    if marginal:
        sv = model.submit_value(steps, asked, tasks.value, tasks.priced_loss)
        submitted = edited & (sv > 0)
    else:
        submitted = edited
    return _Plan(
        result=res,
        model=model,
        quality=np.where(submitted, p, 0.0),
        cost=n_steps * model.step_cost + asked * model.review_usd,
        latency=n_steps * model.step_seconds + asked * model.review_seconds,
        risk=np.where(submitted, escape * tasks.loss, 0.0),
        escape=np.where(submitted, escape, 0.0),
        submitted_plan=submitted,
        charge=charge,
    )


@dataclass(frozen=True, slots=True)
class _ImperfectTests(EpisodeModel):
    """:class:`~margin.agent.controller.EpisodeModel` whose tests miss a share ε of wrong
    patches however much verification runs: ``det(T_v) = (1 − ε)·(1 − e^{−T_v/k_v})``.

    Both the agent's plans (ex ante) and the simulator (ex post, on the common uniform
    ``u_detect``) read it, so a wrong merge and its loss L stay possible.

    Examples
    --------
    >>> m = _ImperfectTests(blind_share=0.1)
    >>> round(float(m.detection(1000.0)), 6)
    0.9
    """

    blind_share: float = 0.0

    def detection(self, verify_steps: npt.ArrayLike) -> FloatArray:
        return np.asarray((1.0 - self.blind_share) * EpisodeModel.detection(self, verify_steps))


def _tier_model(
    config: EconomyConfig, j: int, step_seconds: float, charge: float = 0.0
) -> EpisodeModel:
    """The agent's episode model on tier ``j``: resolve ceiling and step price scaled from
    the frontier calibration, step price plus the serving layer's congestion ``charge``,
    tests blind to ``config.test_blind_share`` of wrong patches."""
    top = max(config.tiers, key=lambda t: t.quality)
    t = config.tiers[j]
    return _ImperfectTests(
        p_sat=_FRONTIER_P_SAT * t.quality / top.quality,
        step_cost=_FRONTIER_STEP_USD * t.cost / top.cost + charge,
        step_seconds=step_seconds,
        blind_share=config.test_blind_share,
    )


def _realized_welfare(
    res: PolicyResult,
    stream: TaskStream,
    idx: IntArray,
    config: EconomyConfig,
    step_seconds: float,
    model: EpisodeModel,
    charge: float,
) -> FloatArray:
    """Realized welfare of coding tasks at social prices with the quoted step time
    (the congestion ``charge`` per step inside ``res.cost`` is a transfer: added back)."""
    n_steps = res.steps.sum(axis=1)
    asked = res.human_seconds > 0
    lat = n_steps * step_seconds + asked * model.review_seconds
    loss = np.where(res.wrong_submitted, stream.loss[idx], 0.0)
    return np.asarray(
        stream.value[idx] * res.success
        - (res.cost - charge * n_steps)
        - asked * model.review_usd
        - config.latency_price_coding * lat
        - (config.risk_price + config.irreversible_risk_price * stream.irreversible_share[idx])
        * loss
    )


#: V tiers of the cache's hit-rate breakdown (USD): background, then coding-task quartiles
#: of the default lognormal (median $20).
_V_TIERS: tuple[tuple[str, float, float], ...] = (
    ("V<1", 0.0, 1.0),
    ("1<=V<10", 1.0, 10.0),
    ("10<=V<40", 10.0, 40.0),
    ("V>=40", 40.0, math.inf),
)


def _agent_contexts(
    ct: IntArray, config: EconomyConfig, first_id: int
) -> tuple[IntArray, list[list[int]], int]:
    """Prompt tokens and prefix-block hashes of every agent call (calls of a task are
    contiguous in ``ct``, in step order).

    Call k of a task sends ``R + g + e·(g + o)`` tokens, ``e`` the steps since the last
    compaction (R the repository context, g new prompt and o output tokens per step); when
    that would pass the context window, the history is compacted and ``e`` restarts at 0.
    A full hash block's id depends only on (task, epoch, block index), the blocks inside R
    on (task, block index), so call k's full blocks repeat call k−1's; a partial last block
    is unique to its call. Returns (prompts, hashes per call, next free id).

    Examples
    --------
    >>> cfg = EconomyConfig(repo_context_tokens=1024, context_window_tokens=4096,
    ...                     call_prompt_tokens=1000, call_output_tokens=200)
    >>> p, h, _ = _agent_contexts(np.array([0, 0, 0, 0, 1]), cfg, 1)
    >>> p.tolist()
    [2024, 3224, 2024, 3224, 2024]
    >>> h[0], h[1], h[2]
    ([1, 2, 5, 12], [1, 2, 5, 6, 7, 8, 13], [1, 2, 16, 23])
    """
    R = round(config.repo_context_tokens)
    g = round(config.call_prompt_tokens)
    o = round(config.call_output_tokens)
    C = round(config.context_window_tokens)
    H = config.hash_block_tokens
    n = ct.size
    prompts = np.zeros(n, dtype=np.int64)
    hashes: list[list[int]] = []
    nxt = first_id
    n_repo = R // H
    per_epoch = C // H + 1
    prev = -1
    repo: list[int] = []
    epoch_base = 0
    e = 0
    for i, x in enumerate(ct.tolist()):
        if x != prev:
            prev = x
            repo = list(range(nxt, nxt + n_repo))
            nxt += n_repo
            e = 0
        P = R + g + e * (g + o)
        if e > 0 and P + o > C:
            e = 0
            P = R + g
        if e == 0:
            epoch_base = nxt
            nxt += per_epoch
        full = P // H
        h = repo[: min(full, n_repo)] + list(range(epoch_base + n_repo, epoch_base + full))
        if P % H:
            h.append(nxt)
            nxt += 1
        prompts[i] = P
        hashes.append(h)
        e += 1
    return prompts, hashes, nxt


def _hit_rate_by_value(
    value: FloatArray, cached: FloatArray, prompt: FloatArray
) -> dict[str, float]:
    """Prompt tokens read from the cache over prompt tokens, per :data:`_V_TIERS`."""
    out: dict[str, float] = {}
    for name, lo, hi in _V_TIERS:
        sel = (value >= lo) & (value < hi)
        if sel.any():
            out[name] = float(cached[sel].sum() / max(prompt[sel].sum(), 1.0))
    return out


# --------------------------------------------------------------------------- one regime


@dataclass
class _Acc:
    """Per-task accumulators of a run."""

    n: int
    tier: IntArray = field(init=False)
    success: BoolArray = field(init=False)
    wrong: BoolArray = field(init=False)
    model_cost: FloatArray = field(init=False)
    human_cost: FloatArray = field(init=False)
    own_time: FloatArray = field(init=False)
    steps: FloatArray = field(init=False)
    escape: FloatArray = field(init=False)
    submitted: BoolArray = field(init=False)
    route_regret: FloatArray = field(init=False)
    route_best: IntArray = field(init=False)
    agent_regret: FloatArray = field(init=False)
    agent_best: list[str] = field(init=False)
    n_calls: IntArray = field(init=False)
    interval: IntArray = field(init=False)

    def __post_init__(self) -> None:
        n = self.n
        self.tier = np.zeros(n, dtype=np.intp)
        self.success = np.zeros(n, dtype=bool)
        self.wrong = np.zeros(n, dtype=bool)
        self.model_cost = np.zeros(n)
        self.human_cost = np.zeros(n)
        self.own_time = np.zeros(n)
        self.steps = np.zeros((n, len(PHASES)))
        self.escape = np.zeros(n)
        self.submitted = np.zeros(n, dtype=bool)
        self.route_regret = np.zeros(n)
        self.route_best = np.zeros(n, dtype=np.intp)
        self.agent_regret = np.zeros(n)
        self.agent_best = [""] * n
        self.n_calls = np.zeros(n, dtype=np.intp)
        self.interval = np.zeros(n, dtype=np.intp)


def run_regime(
    config: EconomyConfig,
    stream: TaskStream,
    regime: Regime,
    *,
    sink: RecordSink | None = None,
    regret: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> RegimeResult:
    """Run one regime on ``stream``; with ``sink``, one record per decision at every layer.

    ``regret=False`` skips the agent layer's counterfactual policies (used for the
    attribution runs). ``progress(done, total)`` is called after each interval.
    """
    n = stream.n
    acc = _Acc(n)
    cost_model: CostModel = load_cost_model({})
    serving_cfg = ServingConfig(replicas=config.replicas, prefix_routing=True)
    eviction: PrefixEvictionFactory | None = None
    if regime.shared("capital"):
        # the KV cache is the capital layer's inventory (Sec. 3.4): its priced policy
        # decides the serving prefix cache's evictions; each block carries its writer's V

        def eviction() -> PricedPrefixEviction:
            return PricedPrefixEviction(
                depreciation=config.cache_depreciation_per_s,
                discount=config.cache_discount_per_s,
                block_tokens=config.hash_block_tokens,
            )

    call_work = float(
        request_work(
            [round(config.call_prompt_tokens)], [round(config.call_output_tokens)], cost_model
        )[0]
    )
    bg = stream.background
    bg_work = request_work(bg.prompt, bg.output, cost_model) if len(bg) else np.zeros(0)
    per_interval = config.n_coding * config.interval_s / config.horizon_s
    ctl = PriceController(
        Budgets(
            cost=config.cost_budget_per_task * per_interval,
            latency=config.latency_sla_per_task * per_interval,
            risk=config.risk_envelope_per_task * per_interval,
        ),
        eta0=config.eta0,
        scale=(1.0, config.latency_price_coding, config.risk_price),
    )
    classes = 4 if regime.shared("serving") else 1
    # the first quote is fitted on the first interval's background traffic alone
    first = bg.arrival < config.interval_s
    qmodel = _quote_model(
        bg_work[first], bg.latency_price[first], config.interval_s, config.replicas, classes
    )
    quote_of_interval: list[PriorityQueueModel] = []
    published: list[tuple[float, float, float]] = []
    call_task: list[IntArray] = []
    call_time: list[FloatArray] = []
    step_seconds_of = np.zeros(n)
    charge_of = np.zeros(n)
    plans_rec: dict[int, tuple[_Plan, ...]] = {}
    prices_rec: dict[int, tuple[FloatArray, float, float, float]] = {}
    idx_rec: dict[int, IntArray] = {}
    n_int = config.n_intervals
    siloed_tier = min(
        (j for j, t in enumerate(config.tiers) if t.quality >= config.quality_bar),
        key=lambda j: config.tiers[j].cost,
    )
    for it in range(n_int):
        lo, hi = it * config.interval_s, (it + 1) * config.interval_s
        idx = np.flatnonzero((stream.arrival >= lo) & (stream.arrival < hi))
        state = ctl.prices
        quote_of_interval.append(qmodel)
        q = qmodel.quote(call_work)
        charge = q.price if regime.shared("serving") else 0.0
        step_s = config.tool_seconds + q.latency
        published.append((state.mu_cost, state.lambda_, state.rho))
        if idx.size == 0:
            ctl.update(0.0, 0.0, 0.0)
            if progress is not None:
                progress(it + 1, n_int)
            continue
        acc.interval[idx] = it
        pv = _published(stream.value[idx], config.latency_price_coding, state, config)
        tasks = _agent_tasks(stream, idx, pv)
        plans: list[_Plan] = []
        for j in range(len(config.tiers)):
            em = _tier_model(config, j, step_s, charge)
            pol: Policy = (
                MarginalPolicy(MarginalController(model=em))
                if regime.shared("agent")
                else MaxSuccess(model=em)
            )
            plans.append(_plan(pol, tasks, em, charge, regime.shared("agent")))
        qual = np.column_stack([p.quality for p in plans])
        cost = np.column_stack([p.cost for p in plans])
        lat = np.column_stack([p.latency for p in plans])
        risk = np.column_stack([p.risk for p in plans])
        if regime.shared("routing"):
            phi = stream.irreversible_share[idx]
            alloc = allocate_batch(
                pv[0],
                qual,
                cost,
                lat,
                risk,
                risk * phi[:, None],
                latency_price=pv[1],
                risk_price=pv[2],
                irreversible_risk_price=pv[3],
            )
            choice = np.asarray(alloc.choice, dtype=np.intp)
        else:
            choice = np.full(idx.size, siloed_tier, dtype=np.intp)
        # realized per tier (common random numbers) for the routing regret
        w_tier = np.column_stack(
            [
                _realized_welfare(p.result, stream, idx, config, step_s, p.model, charge)
                for p in plans
            ]
        )
        rows = np.arange(idx.size)
        acc.route_regret[idx] = w_tier.max(axis=1) - w_tier[rows, choice]
        acc.route_best[idx] = np.where(
            acc.route_regret[idx] > 0, w_tier.argmax(axis=1), choice
        ).astype(np.intp)
        acc.tier[idx] = choice
        for r, x in enumerate(idx.tolist()):
            p = plans[int(choice[r])]
            res = p.result
            acc.success[x] = bool(res.success[r])
            acc.wrong[x] = bool(res.wrong_submitted[r])
            ns = float(res.steps[r].sum())
            acc.model_cost[x] = float(res.cost[r]) - charge * ns
            asked = bool(res.human_seconds[r] > 0)
            acc.human_cost[x] = p.model.review_usd if asked else 0.0
            acc.own_time[x] = ns * config.tool_seconds + (p.model.review_seconds if asked else 0)
            acc.steps[x] = res.steps[r]
            acc.escape[x] = float(p.escape[r])
            acc.submitted[x] = bool(res.success[r] or res.wrong_submitted[r])
            acc.n_calls[x] = int(ns)
            step_seconds_of[x] = step_s
            charge_of[x] = charge
            call_task.append(np.full(int(ns), x, dtype=np.intp))
            call_time.append(stream.arrival[x] + step_s * np.arange(int(ns), dtype=np.float64))
        if regret:
            acc.agent_regret[idx], best_names = _agent_regret(
                config, stream, idx, plans, choice, pv, step_s, charge, regime
            )
            for x, name in zip(idx.tolist(), best_names, strict=True):
                acc.agent_best[x] = name
        plans_rec[it], prices_rec[it], idx_rec[it] = tuple(plans), pv, idx
        # feedback: spend realized, latency and risk ex ante
        obs_cost = float(
            sum(
                plans[int(c)].cost[r] - plans[int(c)].charge * plans[int(c)].result.steps[r].sum()
                for r, c in enumerate(choice)
            )
        )
        obs_lat = float(lat[rows, choice].sum())
        obs_risk = float(risk[rows, choice].sum())
        ctl.update(max(obs_cost, 0.0), obs_lat, obs_risk)
        # the serving layer's next quote: this interval's calls and background traffic
        in_bg = (bg.arrival >= lo) & (bg.arrival < hi)
        k_calls = int(acc.n_calls[idx].sum())
        work = np.concatenate([np.full(k_calls, call_work), bg_work[in_bg]])
        lam_w = np.concatenate(
            [np.full(k_calls, config.latency_price_coding), bg.latency_price[in_bg]]
        )
        span = max(config.interval_s, float(step_s * acc.n_calls[idx].max()))
        qmodel = _quote_model(work, lam_w, span, config.replicas, classes)
        if progress is not None:
            progress(it + 1, n_int)

    # ---- serving: one simulation of every call
    ct = np.concatenate(call_task) if call_task else np.zeros(0, dtype=np.intp)
    tt = np.concatenate(call_time) if call_time else np.zeros(0)
    n_agent = ct.size
    arrival = np.concatenate([tt, bg.arrival])
    agent_prompt, hashes, nxt = _agent_contexts(ct, config, 1)
    H = config.hash_block_tokens
    for p_bg in bg.prompt.tolist():
        nb = -(-int(p_bg) // H)
        hashes.append(list(range(nxt, nxt + nb)))
        nxt += nb
    prompt = np.concatenate([agent_prompt, bg.prompt])
    output = np.concatenate(
        [np.full(n_agent, round(config.call_output_tokens), dtype=np.int64), bg.output]
    )
    tenant = np.concatenate([np.zeros(n_agent, dtype=np.int64), bg.tenant + 1])
    value = np.concatenate([stream.value[ct], bg.value])
    lam_call = np.concatenate([np.full(n_agent, config.latency_price_coding), bg.latency_price])

    sched: Scheduler = PricedScheduler() if regime.shared("serving") else FCFS()

    def serve(arrival: FloatArray) -> tuple[IntArray, SimulationResult]:
        """Replay every call arriving at ``arrival`` under ``sched``; (arrival order, result)."""
        order = np.argsort(arrival, kind="stable")
        lens = np.array([len(hashes[i]) for i in order.tolist()], dtype=np.int64)
        ids = [b for i in order.tolist() for b in hashes[i]]
        trace = Trace(
            arrival=arrival[order],
            prompt=prompt[order],
            output=output[order],
            tenant=tenant[order],
            tenants=("coding", *BACKGROUND_TENANTS),
            value=value[order],
            latency_price=lam_call[order],
            hash_offsets=np.concatenate([[0], np.cumsum(lens)]),
            hash_ids=np.asarray(ids, dtype=np.int64),
            hash_block_tokens=H,
            source="economy",
        )
        sim = Simulator(serving_cfg, model=cost_model, eviction=eviction)
        return order, sim.run(trace, sched)

    order, sim = serve(arrival)
    # closed loop: a task's next call is issued after its previous call returned
    for _ in range(config.closed_loop_passes):
        inv0 = np.empty_like(order)
        inv0[order] = np.arange(order.size)
        lat0 = np.nan_to_num(
            np.asarray(sim.e2e, dtype=np.float64)[inv0][:n_agent],
            nan=float(PricedScheduler().max_defer_s),
        )
        gap = config.tool_seconds + lat0
        start = np.concatenate([[0], np.flatnonzero(np.diff(ct) != 0) + 1]) if n_agent else ct
        first_of = np.repeat(start, np.diff(np.concatenate([start, [n_agent]])))
        cum = np.cumsum(gap) - gap
        tt = stream.arrival[ct] + cum - cum[first_of]
        order, sim = serve(np.concatenate([tt, bg.arrival]))
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    e2e = np.asarray(sim.e2e, dtype=np.float64)[inv]
    qdelay = np.nan_to_num(np.asarray(sim.queue_delay, dtype=np.float64)[inv])
    done = np.asarray(sim.completed, dtype=bool)[inv]
    all_work = np.concatenate([np.full(n_agent, call_work), bg_work])
    max_defer = sched.max_defer_s if isinstance(sched, PricedScheduler) else 0.0
    e2e = np.where(done, e2e, max_defer + all_work)
    # ---- prefix cache: cached prompt tokens are billed at the cache-read price
    cached = np.asarray(sim.cached_tokens, dtype=np.float64)[inv]
    out_tok = round(config.call_output_tokens)
    per_call = np.where(acc.n_calls > 0, acc.model_cost / np.maximum(acc.n_calls, 1), 0.0)
    saved_call = (
        per_call[ct]
        * config.cache_read_discount
        * cached[:n_agent]
        / (agent_prompt + config.output_input_price_ratio * out_tok)
        if n_agent
        else np.zeros(0)
    )
    saved = np.bincount(ct, weights=saved_call, minlength=n) if n_agent else np.zeros(n)
    cached_task = np.bincount(ct, weights=cached[:n_agent], minlength=n) if n_agent else np.zeros(n)
    prompt_task = (
        np.bincount(ct, weights=agent_prompt.astype(np.float64), minlength=n)
        if n_agent
        else np.zeros(n)
    )
    acc.model_cost = acc.model_cost - saved
    all_prompt = prompt.astype(np.float64)
    cache_summary: dict[str, Any] = {
        "policy": sim.prefix_policy,
        "evictions": sim.prefix_evictions,
        "hit_rate": float(cached.sum() / max(all_prompt.sum(), 1.0)),
        "coding_hit_rate": float(cached[:n_agent].sum() / max(all_prompt[:n_agent].sum(), 1.0)),
        "hit_rate_by_value": _hit_rate_by_value(value, cached, all_prompt),
        "cached_tokens": int(cached.sum()),
        "saved_usd": float(saved.sum()),
    }
    # ---- realized coding outcomes
    call_lat = np.bincount(ct, weights=e2e[:n_agent], minlength=n) if n_agent else np.zeros(n)
    latency = acc.own_time + call_lat
    loss = np.where(acc.wrong, stream.loss, 0.0)
    priced_loss = (
        config.risk_price + config.irreversible_risk_price * stream.irreversible_share
    ) * loss
    w_agent = (
        stream.value * acc.success
        - acc.human_cost
        - config.latency_price_coding * acc.own_time
        - priced_loss
    )
    w_route = -acc.model_cost
    w_serve_coding = -config.latency_price_coding * call_lat
    bg_done = done[n_agent:]
    bg_cost = (bg.prompt + bg.output) * config.flat_usd_per_mtok / 1e6
    w_bg = np.where(bg_done, bg.value - bg_cost - bg.latency_price * e2e[n_agent:], 0.0)
    # ---- trainer
    fresh = config.trace_value * (
        1.0
        - 2.0
        * np.where(
            acc.submitted, acc.escape / np.maximum(_p_submit(acc, plans_rec, idx_rec), 1e-12), 0.5
        )
    )
    lag = np.floor(latency / config.version_s).astype(np.intp) + stream.async_lag
    decay = np.exp(-config.omega * lag)
    realized_trace = (
        np.where(acc.success, 1.0, -1.0) * config.trace_value * decay - config.update_cost
    )
    candidate = acc.submitted
    if regime.shared("capital"):
        admit = np.zeros(n, dtype=bool)
        for x in np.flatnonzero(candidate & (fresh > 0)).tolist():
            if config.update_cost > 0:
                admit[x] = bool(
                    admit_rollouts(
                        [float(lag[x])], config.omega, float(fresh[x]), config.update_cost
                    )[0]
                )
            else:
                admit[x] = True
    else:
        admit = candidate.copy()
    w_cap = np.where(admit, realized_trace, 0.0)
    cap_regret = np.where(candidate, np.maximum(realized_trace, 0.0) - w_cap, 0.0)
    # ---- serving regret and externalities
    lam_unsorted = np.concatenate([np.full(n_agent, config.latency_price_coding), bg.latency_price])
    srv_regret = lam_unsorted * qdelay
    task_welfare = w_agent + w_route + w_serve_coding + w_cap
    layers = {
        "routing": LayerReport(
            welfare=float(w_route.sum()),
            cost=float(acc.model_cost.sum()),
            latency=0.0,
            risk=0.0,
            regret=float(acc.route_regret.sum()),
            decisions=n,
        ),
        "agent": LayerReport(
            welfare=float(w_agent.sum()),
            cost=float(acc.human_cost.sum()),
            latency=float(acc.own_time.mean()) if n else 0.0,
            risk=float(loss.sum()),
            regret=float(acc.agent_regret.sum()),
            decisions=n,
        ),
        "serving": LayerReport(
            welfare=float(w_serve_coding.sum() + w_bg.sum()),
            cost=float(np.where(bg_done, bg_cost, 0.0).sum()),
            latency=float(e2e.mean()) if e2e.size else 0.0,
            risk=0.0,
            regret=float(srv_regret.sum()),
            decisions=int(e2e.size),
        ),
        "capital": LayerReport(
            welfare=float(w_cap.sum()),
            cost=float(admit.sum() * config.update_cost),
            latency=0.0,
            risk=float((admit & acc.wrong).sum()),
            regret=float(cap_regret.sum()),
            # rollout admissions and the prefix cache's reuse decisions (tasks with a
            # second call)
            decisions=int(candidate.sum()) + int((acc.n_calls > 1).sum()),
        ),
    }
    total = LayerReport(
        welfare=sum(r.welfare for r in layers.values()),
        cost=sum(r.cost for r in layers.values()),
        latency=float(latency.mean()) if n else 0.0,
        risk=float(loss.sum()),
        regret=sum(r.regret for r in layers.values()),
        decisions=sum(r.decisions for r in layers.values()),
    )
    if sink is not None:
        _write_records(
            sink,
            config,
            stream,
            regime,
            acc,
            plans_rec,
            prices_rec,
            idx_rec,
            latency,
            loss,
            fresh,
            lag,
            admit,
            realized_trace,
            candidate,
            quote_of_interval,
            all_work,
            lam_unsorted,
            e2e,
            qdelay,
            done,
            ct,
            n_agent,
            charge_of,
            (
                np.asarray(cached_task, dtype=np.float64),
                np.asarray(prompt_task, dtype=np.float64),
                np.asarray(saved, dtype=np.float64),
                str(cache_summary["policy"]),
            ),
        )
    return RegimeResult(
        regime=regime,
        layers=layers,
        total=total,
        success_rate=float(acc.success.mean()) if n else 0.0,
        prices=tuple(published),
        tier_choice=acc.tier.copy(),
        task_welfare=task_welfare,
        calls=int(e2e.size),
        rejected_background=int((~bg_done).sum()),
        cache=cache_summary,
    )


def _p_submit(
    acc: _Acc, plans: dict[int, tuple[_Plan, ...]], idxs: dict[int, IntArray]
) -> FloatArray:
    """Ex-ante P(submitted) of each task's plan: P(success) + P(wrong patch submitted)."""
    out = np.ones(acc.n)
    for it, idx in idxs.items():
        for r, x in enumerate(idx.tolist()):
            p = plans[it][int(acc.tier[x])]
            out[x] = float(p.quality[r] + p.escape[r])
    return out


def _take_result(res: PolicyResult, rows: IntArray) -> PolicyResult:
    return PolicyResult(
        policy=res.policy,
        utility=res.utility[rows],
        cost=res.cost[rows],
        success=res.success[rows],
        wrong_submitted=res.wrong_submitted[rows],
        irreversible_loss=res.irreversible_loss[rows],
        human_seconds=res.human_seconds[rows],
        steps=res.steps[rows],
    )


def _agent_regret(
    config: EconomyConfig,
    stream: TaskStream,
    idx: IntArray,
    plans: Sequence[_Plan],
    choice: IntArray,
    pv: tuple[FloatArray, float, float, float],
    step_s: float,
    charge: float,
    regime: Regime,
) -> tuple[FloatArray, list[str]]:
    """Realized welfare of the ex-post best agent policy on the chosen tier minus the
    chosen policy's (common random numbers), and that policy's name per task (``""``
    where none beats the chosen one)."""
    out = np.zeros(idx.size)
    names = [""] * idx.size
    social = (
        stream.value[idx],
        config.latency_price_coding,
        config.risk_price,
        config.irreversible_risk_price,
    )
    for j in np.unique(choice).tolist():
        rows = np.flatnonzero(choice == j)
        sub = idx[rows]
        em = plans[j].model
        mine = _realized_welfare(
            _take_result(plans[j].result, rows), stream, sub, config, step_s, em, charge
        )
        best = mine.copy()
        best_name = np.full(rows.size, "", dtype=object)
        tasks = _agent_tasks(stream, sub, (social[0][rows], *social[1:]))
        for name, factory in POLICIES.items():
            res = simulate(factory(em), tasks, em)
            w = _realized_welfare(res, stream, sub, config, step_s, em, charge)
            better = w > best + 1e-9
            best_name[better] = name
            best = np.where(better, w, best)
        out[rows] = best - mine
        for r, name in zip(rows.tolist(), best_name.tolist(), strict=True):
            names[r] = str(name)
    return out, names


# --------------------------------------------------------------------------- ledger


def _write_records(
    sink: RecordSink,
    config: EconomyConfig,
    stream: TaskStream,
    regime: Regime,
    acc: _Acc,
    plans: dict[int, tuple[_Plan, ...]],
    prices: dict[int, tuple[FloatArray, float, float, float]],
    idxs: dict[int, IntArray],
    latency: FloatArray,
    loss: FloatArray,
    fresh: FloatArray,
    lag: IntArray,
    admit: BoolArray,
    realized_trace: FloatArray,
    candidate: BoolArray,
    quotes: list[PriorityQueueModel],
    all_work: FloatArray,
    lam_call: FloatArray,
    e2e: FloatArray,
    qdelay: FloatArray,
    done: BoolArray,
    ct: IntArray,
    n_agent: int,
    charge_of: FloatArray,
    cache: tuple[FloatArray, FloatArray, FloatArray, str],
) -> None:
    """One LedgerRecord per decision, following :mod:`margin.diagnose.detectors`.

    Shared-regime records carry the published price vector the decision was made at;
    a siloed layer reads no prices, so its records carry the social prices
    (V, λ_x, ρ, ρ_irr) at which its choice is judged.
    """
    tag = regime.name
    tiers = config.tiers
    cached_task, prompt_task, saved_task, cache_policy = cache
    tok = TokenUsage(
        input=round(config.call_prompt_tokens), output=round(config.call_output_tokens)
    )
    for it, idx in idxs.items():
        pv = prices[it]
        for r, x in enumerate(idx.tolist()):
            rid = f"{tag}-task-{x}"
            if regime.shared("routing"):
                pr = PriceVector(float(pv[0][r]), pv[1], pv[2], pv[3])
            else:
                pr = PriceVector(
                    float(stream.value[x]),
                    config.latency_price_coding,
                    config.risk_price,
                    config.irreversible_risk_price,
                )
            phi = float(stream.irreversible_share[x])
            opts = tuple(
                Option(
                    t.name,
                    float(p.quality[r]),
                    float(p.cost[r]),
                    float(p.latency[r]),
                    float(p.risk[r]),
                    float(p.risk[r] * phi),
                )
                for t, p in zip(tiers, plans[it], strict=True)
            )
            j = int(acc.tier[x])
            n_calls = int(acc.n_calls[x])
            spend = usd_to_nanos(round(float(acc.model_cost[x]), 9))
            sink.append(
                LedgerRecord(
                    request_id=rid,
                    layer="routing",
                    choice=tiers[j].name,
                    options=opts,
                    prices=pr,
                    tenant="coding",
                    # the model calls' tokens and money, recorded once: here (prompt
                    # tokens read from the prefix cache billed at the cache-read price)
                    usage=TokenUsage(
                        input=round(prompt_task[x] - cached_task[x]),
                        cached_input=round(cached_task[x]),
                        output=tok.output * n_calls,
                    ),
                    cost_nanos=spend,
                    # realized: the spend only; V·1[success], the loss and the latency are
                    # recorded on the agent and serving records (no double counting)
                    outcome=Outcome(quality=0.0, cost_nanos=spend, latency=0.0, risk=0.0),
                    ex_post_optimal=tiers[int(acc.route_best[x])].name,
                    regret=float(max(acc.route_regret[x], 0.0)),
                    attributes={
                        "regime": tag,
                        "router": "eq4" if regime.shared("routing") else "cost_min",
                        "risk_class": stream.risk_class[x],
                        "interval": it,
                        "calls": n_calls,
                        "task_success": bool(acc.success[x]),
                        "task_latency_s": float(latency[x]),
                        "task_loss": float(loss[x]),
                    },
                )
            )
            # capital: the prefix cache's reuse of the task's earlier calls (Eq. 1's reuse
            # vs recompute at the task's V; its blocks were written by the task itself,
            # so V_w = V_r). Its saving is already in the routing record's spend.
            if n_calls > 1:
                reused = round(cached_task[x])
                kappa = float(saved_task[x]) / reused if reused else 0.0
                v_task = float(pr.value)
                rule = ReuseRule(prefill_price_per_token=kappa)
                sink.append(
                    LedgerRecord(
                        request_id=rid,
                        layer="capital",
                        choice="reuse" if reused else "recompute",
                        options=rule.options(v_task, v_task, max(reused, 1)),
                        prices=PriceVector(v_task),
                        tenant="coding",
                        outcome=Outcome(quality=0.0, cost_nanos=0),
                        attributes={
                            "regime": tag,
                            "kind": "cache_reuse",
                            "policy": cache_policy,
                            "cache_misuse": False,
                            "reused_tokens": reused,
                            "prompt_tokens": round(prompt_task[x]),
                            "hit_rate": float(cached_task[x] / max(prompt_task[x], 1.0)),
                            "saved_usd": float(saved_task[x]),
                            "value_reader": v_task,
                            "value_writer": v_task,
                            "value_mismatch_log": 0.0,
                        },
                    )
                )
            # agent: the episode's final decision (act / ask / abstain) and its options
            p = plans[it][j]
            em = p.model
            steps = acc.steps[x]
            if regime.shared("agent"):
                apr = PriceVector(float(pv[0][r]), pv[1], pv[2], pv[3])
            else:
                apr = PriceVector(
                    float(stream.value[x]),
                    config.latency_price_coding,
                    config.risk_price,
                    config.irreversible_risk_price,
                )
            asked = bool(p.result.human_seconds[r] > 0)
            pbar = float(em.expected_success(steps))
            L = float(stream.loss[x])

            def esc(t: FloatArray, ask: bool, em: EpisodeModel = em) -> float:
                e = (1.0 - float(em.expected_success(t))) * (1.0 - float(em.detection(t[3])))
                return e * (1.0 - em.catch_rate * float(ask))

            h = float(config.verify_lookahead)
            tv = steps + np.array([0.0, 0.0, 0.0, h])
            step_price_c = em.step_cost  # includes the congestion charge
            base_ask = asked
            agent_opts = (
                Option(
                    "act", pbar, 0.0, 0.0, esc(steps, base_ask) * L, esc(steps, base_ask) * L * phi
                ),
                Option(
                    "verify",
                    float(em.expected_success(tv)),
                    h * step_price_c,
                    h * em.step_seconds,
                    esc(tv, base_ask) * L,
                    esc(tv, base_ask) * L * phi,
                ),
                Option(
                    "ask",
                    pbar,
                    em.review_usd,
                    em.review_seconds,
                    esc(steps, True) * L,
                    esc(steps, True) * L * phi,
                ),
                Option("abstain", 0.0, 0.0, 0.0, 0.0, 0.0),
            )
            submitted = bool(p.submitted_plan[r])
            agent_choice = ("ask" if asked else "act") if submitted else "abstain"
            if asked and submitted:
                # the review already happened: judge the submit against asking again
                agent_opts = (
                    Option("act", pbar, 0.0, 0.0, esc(steps, True) * L, esc(steps, True) * L * phi),
                    *agent_opts[1:],
                )
                agent_choice = "act"
            sink.append(
                LedgerRecord(
                    request_id=rid,
                    layer="agent",
                    choice=agent_choice,
                    options=agent_opts,
                    prices=apr,
                    tenant="coding",
                    # the steps' tokens and model spend are on the routing record; the
                    # agent pays the human review and the own (tool + review) time
                    cost_nanos=usd_to_nanos(round(float(acc.human_cost[x]), 9)),
                    outcome=Outcome(
                        quality=float(acc.success[x]),
                        cost_nanos=usd_to_nanos(round(float(acc.human_cost[x]), 9)),
                        latency=float(acc.own_time[x]),
                        risk=float(loss[x]),
                        irreversible_loss=float(loss[x] * phi),
                    ),
                    ex_post_optimal=(
                        f"policy:{acc.agent_best[x]}" if acc.agent_best[x] else agent_choice
                    ),
                    regret=float(max(acc.agent_regret[x], 0.0)),
                    attributes={
                        "regime": tag,
                        "policy": "marginal" if regime.shared("agent") else "max_success",
                        "model": tiers[j].name,
                        "steps": {ph: float(s) for ph, s in zip(PHASES, steps, strict=True)},
                        "verify_tokens": int(steps[3]) * (tok.input + tok.output),
                        "step_tokens": TokenUsage(
                            input=tok.input * int(steps.sum()),
                            output=tok.output * int(steps.sum()),
                        ).as_dict(),
                        "asked": asked,
                    },
                )
            )
            # capital: keep the trace for training or not
            if candidate[x]:
                dep = float(fresh[x] * (1.0 - math.exp(-config.omega * float(lag[x]))))
                gain = float(fresh[x] - config.update_cost)
                decay = math.exp(-config.omega * float(lag[x]))
                upd = usd_to_nanos(config.update_cost) if admit[x] else 0
                tv = config.trace_value
                sink.append(
                    LedgerRecord(
                        request_id=rid,
                        layer="capital",
                        choice="admit" if admit[x] else "skip",
                        options=(
                            Option(
                                "admit",
                                float(fresh[x]) / tv * decay if tv > 0 else 0.0,
                                config.update_cost,
                            ),
                            Option("skip", 0.0, 0.0),
                        ),
                        # V = a clean trace's capability value; realized ΔQ = ±e^{−ωk}, so
                        # V·ΔQ − ΔC is the trainer's realized net value of the decision
                        prices=PriceVector(tv),
                        tenant="coding",
                        cost_nanos=upd,
                        outcome=Outcome(
                            quality=(1.0 if acc.success[x] else -1.0) * decay if admit[x] else 0.0,
                            cost_nanos=upd,
                        ),
                        ex_post_optimal="admit" if realized_trace[x] > 0 else "skip",
                        regret=float(
                            max(realized_trace[x], 0.0) - (realized_trace[x] if admit[x] else 0.0)
                        ),
                        attributes={
                            "regime": tag,
                            "kind": "rollout_admission",
                            "trainer": "marginal" if regime.shared("capital") else "keep_all",
                            "lag": int(lag[x]),
                            "depreciation": dep,
                            "gain": gain,
                            "label_noise": float((1.0 - fresh[x] / config.trace_value) / 2),
                        },
                    )
                )
    # serving: one record per call, with the externality of the quote model in force
    n_calls = e2e.size
    interval_of_call = np.empty(n_calls, dtype=np.intp)
    interval_of_call[:n_agent] = acc.interval[ct]
    bg = stream.background
    interval_of_call[n_agent:] = np.minimum(
        (bg.arrival // config.interval_s).astype(np.intp), len(quotes) - 1
    )
    ext = np.zeros(n_calls)
    priced = np.zeros(n_calls)
    for it, qm in enumerate(quotes):
        sel = np.flatnonzero(interval_of_call == it)
        if sel.size:
            ext[sel], priced[sel] = _externality(qm, all_work[sel])
    lam_eff = np.where(ext > 0, priced / np.maximum(ext, 1e-300), 0.0)
    charged = regime.shared("serving")
    usd_per_s = ServingConfig().usd_per_replica_second
    tenants = ("coding", *BACKGROUND_TENANTS)
    bg_tenant = bg.tenant
    for i in range(n_calls):
        served = bool(done[i])
        own_lam = float(lam_call[i])
        if i < n_agent:
            rid, ten, v = f"{tag}-task-{int(ct[i])}-call-{i}", "coding", float(stream.value[ct[i]])
            # tokens and money of a coding call are on its task's routing record
            usage, paid = TokenUsage(), 0
        else:
            k = i - n_agent
            rid, ten, v = (
                f"{tag}-{tenants[int(bg_tenant[k]) + 1]}-{k}",
                tenants[int(bg_tenant[k]) + 1],
                float(bg.value[k]),
            )
            usage = TokenUsage(input=int(bg.prompt[k]), output=int(bg.output[k]))
            paid = (
                usd_to_nanos(round(float(usage.total * config.flat_usd_per_mtok / 1e6), 9))
                if served
                else 0
            )
        charge = float(priced[i]) if charged else 0.0
        # λ is the request's own delay price, so that λ·ΔL is its own delay cost; the
        # externality is stated in seconds at that λ (λ·external_delay_s = the price)
        lam, ext_s = (
            (own_lam, float(priced[i]) / own_lam) if own_lam > 0 else (float(lam_eff[i]), ext[i])
        )
        sink.append(
            LedgerRecord(
                request_id=rid,
                layer="serving",
                choice="serve" if served else None,
                options=(
                    # A coding task's value is realized (and recorded) by the agent layer;
                    # its calls add no quality of their own. A background request is
                    # worth its V once served.
                    Option(
                        "serve",
                        0.0 if i < n_agent else 1.0,
                        float(all_work[i] * usd_per_s),
                        float(all_work[i]),
                    ),
                ),
                prices=PriceVector(v, lam),
                tenant=ten,
                usage=usage,
                cost_nanos=paid,
                outcome=Outcome(
                    quality=(0.0 if i < n_agent else float(served)),
                    cost_nanos=paid,
                    # an unserved background request costs nothing (it left the system)
                    latency=float(e2e[i]) if (served or i < n_agent) else 0.0,
                ),
                ex_post_optimal="serve",
                regret=float(lam_call[i] * qdelay[i]),
                attributes={
                    "regime": tag,
                    "scheduler": "priced" if charged else "fcfs",
                    "external_delay_s": float(ext_s),
                    "external_delay_unit_s": float(ext[i]),
                    "others_latency_price": float(lam_eff[i]),
                    "congestion_charge": charge,
                    "queue_delay_s": float(qdelay[i]),
                    "e2e_s": float(e2e[i]),
                    "own_latency_price": own_lam,
                },
            )
        )


# --------------------------------------------------------------------------- comparison


def run_economy(
    config: EconomyConfig | None = None,
    *,
    sink_siloed: RecordSink | None = None,
    sink_shared: RecordSink | None = None,
    attribute: bool = True,
    regret: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> EconomyResult:
    """Run siloed and shared on one stream; attribute the welfare gap to layers.

    ``regret=False`` skips the agent layer's counterfactual policies (its regret is then 0).
    Attribution (one layer at a time): ``Δ_layer = W(siloed with only that layer on
    shared prices) − W(siloed)``; ``interaction = W(shared) − W(siloed) − Σ Δ_layer``.

    Examples
    --------
    >>> cfg = EconomyConfig(n_coding=6, horizon_s=120.0, interval_s=60.0, chat_rate=0.2,
    ...                     long_rate=0.02, seed=2)
    >>> r = run_economy(cfg, attribute=False)
    >>> sorted(r.shared.layers) == sorted(LAYER_NAMES)
    True
    """
    cfg = config if config is not None else EconomyConfig()
    if cfg.data_dir is not None:
        cfg = calibrate_from_data(cfg, cfg.data_dir)
    stream = draw_stream(cfg)

    def cb(name: str) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, total: progress(name, done, total)

    siloed = run_regime(
        cfg, stream, REGIMES["siloed"], sink=sink_siloed, regret=regret, progress=cb("siloed")
    )
    shared = run_regime(
        cfg, stream, REGIMES["shared"], sink=sink_shared, regret=regret, progress=cb("shared")
    )
    attribution: dict[str, float] = {}
    swaps: dict[str, RegimeResult] = {}
    if attribute:
        for layer in LAYER_NAMES:
            r = run_regime(
                cfg,
                stream,
                REGIMES["siloed"].swap(layer),
                regret=False,
                progress=cb(f"siloed+{layer}"),
            )
            swaps[layer] = r
            attribution[layer] = r.total.welfare - siloed.total.welfare
        attribution["interaction"] = (
            shared.total.welfare - siloed.total.welfare - sum(attribution.values())
        )
    return EconomyResult(cfg, siloed, shared, attribution, swaps)
