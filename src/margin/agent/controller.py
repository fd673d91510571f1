"""The marginal step controller: Eq. 1 over read/plan/edit/verify/ask/stop with Eq. 8.

Tokens inside a coding episode are split among reading the repo ``T_r``, planning ``T_p``,
editing ``T_e`` and verifying ``T_v`` (Eq. 8, ``Y = F(T_r, T_p, T_e, T_v, H_review)``). The
team-production function is a Cobb–Douglas index with complementary inputs,

    z(T) = Π_i ((T_i + s_i) / α_i)^{α_i},      Σ α_i = 1,

(in agent steps; the seeds ``s_i`` are what the model knows before spending on phase i)
and a task of hidden depth ``d`` is solved with probability
``p(T, d) = p_sat·(1 − e^{−z/d})``. Verification has a second product: a wrong patch is
caught by the tests before it is submitted with probability ``1 − e^{−T_v/k_v}``; a human
review (``ask``) catches a share κ of what is left, at a price in human time. A submitted
wrong patch loses ``L`` USD, of which the share φ is irreversible.

The value of stopping now is the better of submitting (unless the tests fail) and
abstaining (the outside option, 0):

    W(T, asked) = max(0, V·p̄(T) − (ρ + ρ_irr·φ)·L·(1 − p̄(T))·(1 − det(T_v))·(1 − κ·asked)),

with ``p̄`` the success probability averaged over the depth prior. A plan keeps the review
as an option: its terminal value is ``W⁺(T) = max(W(T, asked), W(T, 1) − H − λ·H_s)``
(H, H_s the review's price and seconds). The controller takes the phase step with the
highest Eq. 1 surplus ``W⁺(next) − W⁺(now) − ΔC − λ·ΔL``, judged over a few repetitions of
the same phase and over bundles along the Cobb–Douglas expansion path (complements pay
together), so "work, then ask for review" is a plan it can find; before a deadline a plan
must fit the steps left (one of them for asking). When no phase step pays, it asks for a
review if that pays (``ask`` buys κ of the remaining risk for the human's time), else stops
— submitting when the submit value is positive, abstaining otherwise. At the stopping point marginal
products per USD are equal across the active phases (Eq. 2/8), and "minimize tokens" or
"skip the tests" are visible misallocations.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from margin.core.prices import InputError, PriceVector
from margin.core.production import cobb_douglas_allocation

__all__ = [
    "ABSTAIN",
    "ASK",
    "PHASES",
    "STEPS",
    "STOP",
    "EpisodeModel",
    "EpisodeState",
    "MarginalController",
    "StepDecision",
    "TeamProduction",
    "equimarginal_split",
    "verifier_budget",
]

FloatArray = npt.NDArray[np.float64]

#: Token-consuming phases of Eq. 8, in column order.
PHASES: tuple[str, ...] = ("read", "plan", "edit", "verify")
#: Every step the controller can take: ``stop`` submits the patch, ``abstain`` stops
#: without submitting (the outside option, worth 0).
STEPS: tuple[str, ...] = (*PHASES, "ask", "stop", "abstain")
ASK = 4
STOP = 5
ABSTAIN = 6


@dataclass(frozen=True, slots=True)
class TeamProduction:
    """Cobb–Douglas team production over (read, plan, edit, verify) steps (Eq. 8).

    Examples
    --------
    >>> f = TeamProduction()
    >>> round(float(f.index(np.array([35.0, 15.0, 25.0, 25.0]) - f.seeds)), 6)
    100.0
    >>> mp = f.marginal_products(np.array([35.0, 15.0, 25.0, 25.0]) - f.seeds)
    >>> bool(np.allclose(mp, 1.0))
    True
    """

    alpha: tuple[float, ...] = (0.35, 0.15, 0.25, 0.25)
    seeds: tuple[float, ...] = (1.0, 1.0, 0.5, 0.5)

    def __post_init__(self) -> None:
        a = np.asarray(self.alpha, dtype=np.float64)
        s = np.asarray(self.seeds, dtype=np.float64)
        if a.shape != (len(PHASES),) or s.shape != a.shape:
            raise InputError(f"TeamProduction: 'alpha' and 'seeds' need {len(PHASES)} entries")
        if np.any(a <= 0) or not np.isclose(a.sum(), 1.0):
            raise InputError("TeamProduction: 'alpha' must be > 0 and sum to 1")
        if np.any(s <= 0):
            raise InputError("TeamProduction: 'seeds' must be > 0")

    def index(self, steps: npt.ArrayLike) -> FloatArray:
        """z(T) for steps of shape (..., 4)."""
        t = np.asarray(steps, dtype=np.float64) + np.asarray(self.seeds)
        a = np.asarray(self.alpha)
        return np.asarray(np.exp(np.sum(a * np.log(t / a), axis=-1)))

    def marginal_products(self, steps: npt.ArrayLike) -> FloatArray:
        """∂z/∂T_i = α_i·z/(T_i + s_i), shape (..., 4)."""
        t = np.asarray(steps, dtype=np.float64) + np.asarray(self.seeds)
        z = self.index(steps)[..., None]
        return np.asarray(np.asarray(self.alpha) * z / t)


def equimarginal_split(
    budget: float, production: TeamProduction | None = None, step_price: npt.ArrayLike = 1.0
) -> FloatArray:
    """Split ``budget`` (USD) across phases so marginal products per USD are equal (Eq. 8).

    With Cobb–Douglas production the split is the closed form of Sec. 2 applied to the
    seeded inputs, ``T_i + s_i = α_i·(B + Σ p_j s_j)/p_i`` (core
    :func:`~margin.core.production.cobb_douglas_allocation`), clipped at zero with the
    remainder re-split among the phases still active.

    Examples
    --------
    >>> equimarginal_split(97.0).round(3).tolist()
    [34.0, 14.0, 24.5, 24.5]
    """
    f = production if production is not None else TeamProduction()
    p = np.broadcast_to(np.asarray(step_price, dtype=np.float64), (len(PHASES),)).copy()
    if not np.isfinite(budget) or budget < 0:
        raise InputError(f"budget: must be finite and >= 0, got {budget}")
    alpha = np.asarray(f.alpha)
    seeds = np.asarray(f.seeds)
    active = np.ones(len(PHASES), dtype=bool)
    t = np.zeros(len(PHASES))
    for _ in range(len(PHASES)):
        eff = budget + float(np.sum(p[active] * seeds[active]))
        x = cobb_douglas_allocation(alpha[active], p[active], eff) - seeds[active]
        t[:] = 0.0
        t[active] = x
        if np.all(x >= 0):
            break
        idx = np.flatnonzero(active)
        active[idx[x < 0]] = False
    return np.maximum(t, 0.0)


@functools.lru_cache(maxsize=64)
def _depth_nodes(nodes: int, median: float, sigma: float) -> tuple[FloatArray, FloatArray]:
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    d = np.asarray(median * np.exp(sigma * x))
    ww = np.asarray(w / w.sum())
    d.setflags(write=False)
    ww.setflags(write=False)
    return d, ww


@dataclass(frozen=True, slots=True)
class EpisodeModel:
    """What the controller knows about an episode (all but the hidden depth).

    Parameters
    ----------
    production : TeamProduction
        z(T) of Eq. 8.
    p_sat : float
        Success probability of a fully worked task (the resolvable share).
    depth_median, depth_sigma : float
        Lognormal prior of the hidden depth d (in steps of the z index).
    detect_scale : float
        k_v: verify steps for the tests to catch 63% of wrong patches.
    step_cost : float
        USD per agent step.
    step_seconds : float
        Wall-clock seconds per step.
    review_usd, review_seconds, catch_rate : float
        Price, latency and catch rate κ of one human review (``ask``).
    nodes : int
        Gauss–Hermite quadrature nodes over the depth prior.
    """

    production: TeamProduction = field(default_factory=TeamProduction)
    p_sat: float = 0.38
    depth_median: float = 25.0
    depth_sigma: float = 0.55
    detect_scale: float = 6.0
    step_cost: float = 0.0284
    step_seconds: float = 9.3
    review_usd: float = 8.0
    review_seconds: float = 600.0
    catch_rate: float = 0.9
    nodes: int = 16

    def __post_init__(self) -> None:
        if not 0.0 < self.p_sat <= 1.0:
            raise InputError(f"EpisodeModel: field 'p_sat' must be in (0, 1], got {self.p_sat}")
        if not 0.0 <= self.catch_rate <= 1.0:
            raise InputError("EpisodeModel: field 'catch_rate' must be in [0, 1]")
        for name in ("depth_median", "detect_scale", "step_seconds"):
            if not getattr(self, name) > 0:
                raise InputError(f"EpisodeModel: field '{name}' must be > 0")
        for name in ("depth_sigma", "step_cost", "review_usd", "review_seconds"):
            if not getattr(self, name) >= 0:
                raise InputError(f"EpisodeModel: field '{name}' must be >= 0")
        if self.nodes < 1:
            raise InputError("EpisodeModel: field 'nodes' must be >= 1")

    def depth_nodes(self) -> tuple[FloatArray, FloatArray]:
        """Gauss–Hermite nodes and weights of the lognormal depth prior (weights sum to 1).

        Cached per prior (read-only arrays): the controller evaluates it at every step.
        """
        return _depth_nodes(self.nodes, self.depth_median, self.depth_sigma)

    def success(self, steps: npt.ArrayLike, depth: npt.ArrayLike) -> FloatArray:
        """p(T, d) = p_sat·(1 − e^{−z(T)/d})."""
        z = self.production.index(steps)
        return np.asarray(self.p_sat * -np.expm1(-z / np.asarray(depth, dtype=np.float64)))

    def expected_success(self, steps: npt.ArrayLike) -> FloatArray:
        """p̄(T): p(T, d) averaged over the depth prior, shape (...)."""
        z = self.production.index(steps)[..., None]
        d, w = self.depth_nodes()
        return np.asarray(self.p_sat * np.sum(-np.expm1(-z / d) * w, axis=-1))

    def detection(self, verify_steps: npt.ArrayLike) -> FloatArray:
        """det(T_v) = 1 − e^{−T_v/k_v}: share of wrong patches the tests catch."""
        return np.asarray(
            -np.expm1(-np.asarray(verify_steps, dtype=np.float64) / self.detect_scale)
        )

    def submit_value(
        self,
        steps: npt.ArrayLike,
        asked: npt.ArrayLike,
        value: npt.ArrayLike,
        priced_loss: npt.ArrayLike,
    ) -> FloatArray:
        """Expected priced value of submitting now (may be negative)."""
        t = np.asarray(steps, dtype=np.float64)
        p = self.expected_success(t)
        escape = (1.0 - p) * (1.0 - self.detection(t[..., 3]))
        escape = escape * (1.0 - self.catch_rate * np.asarray(asked, dtype=np.float64))
        return np.asarray(np.asarray(value) * p - np.asarray(priced_loss) * escape)

    def stop_value(
        self,
        steps: npt.ArrayLike,
        asked: npt.ArrayLike,
        value: npt.ArrayLike,
        priced_loss: npt.ArrayLike,
    ) -> FloatArray:
        """W(T, asked) = max(0, submit value): the agent may always abstain."""
        return np.asarray(np.maximum(self.submit_value(steps, asked, value, priced_loss), 0.0))

    def option_value(
        self,
        steps: npt.ArrayLike,
        asked: npt.ArrayLike,
        value: npt.ArrayLike,
        priced_loss: npt.ArrayLike,
        latency_price: npt.ArrayLike = 0.0,
    ) -> FloatArray:
        """Value of stopping at T with the review still available (the plan's terminal value).

        ``W⁺(T, asked) = max(W(T, asked), W(T, 1) − H − λ·H_s)`` while no review has been
        bought (``H`` = ``review_usd``, ``H_s`` = ``review_seconds``), else ``W(T, 1)``. A
        plan "work h more steps, then decide whether to ask" is worth ``W⁺(T + h)``: the
        controller values continuation with this, so it can plan to work first and buy the
        review at the end, when the review's catch (κ of the escaping risk) is worth most.

        Examples
        --------
        >>> m = EpisodeModel()
        >>> t = np.array([20.0, 8.0, 14.0, 10.0])
        >>> bare = float(m.stop_value(t, 0.0, 40.0, 200.0))
        >>> with_review = float(m.option_value(t, 0.0, 40.0, 200.0))
        >>> bare, with_review > bare
        (0.0, True)
        """
        return self.stop_values(steps, asked, value, priced_loss, latency_price)[1]

    def stop_values(
        self,
        steps: npt.ArrayLike,
        asked: npt.ArrayLike,
        value: npt.ArrayLike,
        priced_loss: npt.ArrayLike,
        latency_price: npt.ArrayLike = 0.0,
    ) -> tuple[FloatArray, FloatArray]:
        """``(W(T, asked), W⁺(T, asked))`` from one evaluation of p̄(T) and det(T_v)."""
        t = np.asarray(steps, dtype=np.float64)
        asked_f = np.asarray(asked, dtype=np.float64)
        p = self.expected_success(t)
        escape = np.asarray(priced_loss) * (1.0 - p) * (1.0 - self.detection(t[..., 3]))
        gain = np.asarray(value) * p
        own = np.maximum(gain - escape * (1.0 - self.catch_rate * asked_f), 0.0)
        price = self.review_usd + np.asarray(latency_price, dtype=np.float64) * self.review_seconds
        reviewed = np.maximum(gain - escape * (1.0 - self.catch_rate), 0.0) - price
        return np.asarray(own), np.asarray(np.where(asked_f > 0, own, np.maximum(own, reviewed)))


@dataclass(frozen=True, slots=True)
class EpisodeState:
    """Where an episode stands: steps spent per phase, whether a human reviewed, tests."""

    steps: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    asked: bool = False

    def spend(self, phase: int, n: float = 1.0) -> EpisodeState:
        s = list(self.steps)
        s[phase] += n
        return EpisodeState((s[0], s[1], s[2], s[3]), self.asked)


@dataclass(frozen=True, slots=True)
class StepDecision:
    """The controller's choice and the Eq. 1 surplus of every step (stop = 0)."""

    step: str
    surplus: dict[str, float]
    success_estimate: float
    test_detection: float


@dataclass(frozen=True)
class MarginalController:
    """Choose the next step by Eq. 1 with marginal products from Eq. 8.

    Examples
    --------
    >>> c = MarginalController()
    >>> prices = PriceVector(value=100.0, latency_price=0.001, risk_price=1.0)
    >>> c.next_step(EpisodeState(), prices, loss=50.0).step in ("read", "plan", "edit")
    True
    >>> c.next_step(EpisodeState(), PriceVector(value=0.01, risk_price=1.0), loss=50.0).step
    'abstain'
    """

    model: EpisodeModel = field(default_factory=EpisodeModel)
    lookahead: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)

    def surplus(
        self,
        steps: npt.ArrayLike,
        asked: npt.ArrayLike,
        value: npt.ArrayLike,
        priced_loss: npt.ArrayLike,
        latency_price: npt.ArrayLike,
        remaining: npt.ArrayLike | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Eq. 1 surplus of each step for a batch of episodes.

        Returns ``(one_step, horizon)``, both of shape (n, 7): the surplus of one more step
        and the best average surplus over the lookahead (same-phase repetitions and bundles
        along the expansion path). ``ask`` is the review's gain net of its price, ``stop``
        and ``abstain`` are 0 in ``horizon`` and their value in ``one_step``.

        ``remaining`` (steps left before the episode's deadline; unlimited by default)
        makes the plan finite: a plan of ``h`` steps needs ``h ≤ remaining`` and keeps the
        review option (W⁺) only if one more step is left for asking, ``h + 1 ≤ remaining``;
        otherwise it ends at W.
        """
        m = self.model
        t = np.atleast_2d(np.asarray(steps, dtype=np.float64))
        n = t.shape[0]
        ask = np.broadcast_to(np.asarray(asked, dtype=np.float64), (n,))
        v = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,))
        pl = np.broadcast_to(np.asarray(priced_loss, dtype=np.float64), (n,))
        lam = np.broadcast_to(np.asarray(latency_price, dtype=np.float64), (n,))
        # continuation is valued with the review still available (W⁺), so "work, then ask"
        # is a plan the lookahead can see; ``ask`` itself is judged against stopping now
        rem = (
            np.full(n, np.inf)
            if remaining is None
            else np.broadcast_to(np.asarray(remaining, dtype=np.float64), (n,))
        )
        stop_now, opt_now = m.stop_values(t, ask, v, pl, lam)
        w0 = np.where(rem >= 1.0, opt_now, stop_now)

        def plan_value(end: FloatArray, h: int) -> FloatArray:
            w_end, w_opt = m.stop_values(end, ask, v, pl, lam)
            return np.asarray(np.where(h + 1 <= rem, w_opt, np.where(h <= rem, w_end, -np.inf)))

        step_price = m.step_cost + lam * m.step_seconds
        one = np.zeros((n, len(STEPS)))
        horizon = np.zeros((n, len(STEPS)))
        eye = np.eye(len(PHASES))
        alpha = np.asarray(m.production.alpha)
        bundles = (alpha, 0.5 * (alpha + eye[3]), 0.25 * (alpha + 3.0 * eye[3]))
        bundle_best = np.full(n, -np.inf)
        for h in self.lookahead:
            for d in bundles:
                w = plan_value(t + h * d, h)
                bundle_best = np.maximum(bundle_best, (w - w0) / h - step_price)
        for i in range(len(PHASES)):
            best = np.full(n, -np.inf)
            for h in self.lookahead:
                w = plan_value(t + h * eye[i], h)
                gain = (w - w0) / h - step_price
                if h == 1:
                    one[:, i] = gain
                best = np.maximum(best, gain)
            horizon[:, i] = np.maximum(best, bundle_best)
        gain_ask = (
            m.stop_value(t, np.ones(n), v, pl) - stop_now - m.review_usd - lam * m.review_seconds
        )
        one[:, ASK] = horizon[:, ASK] = np.where(ask > 0, -np.inf, gain_ask)
        one[:, STOP] = m.submit_value(t, ask, v, pl)
        one[:, ABSTAIN] = 0.0
        return one, horizon

    def _decide(
        self, one: FloatArray, horizon: FloatArray, steps: npt.ArrayLike
    ) -> npt.NDArray[np.intp]:
        phase_h = horizon[:, : len(PHASES)]
        phase_1 = one[:, : len(PHASES)]
        go = phase_h.max(axis=1) > 0
        # among phases worth continuing with, take the best one-step marginal surplus; where
        # no single step pays yet (complements pay only together), take the scarcest input:
        # the highest marginal product of the team-production index (Eq. 8)
        pick = np.argmax(np.where(phase_h > 0, phase_1, -np.inf), axis=1)
        mp = self.model.production.marginal_products(np.atleast_2d(np.asarray(steps)))
        scarce = np.argmax(mp, axis=1)
        pick = np.where(phase_1.max(axis=1) > 0, pick, scarce)
        ask = horizon[:, ASK] > 0
        stop = np.where(one[:, STOP] > 0, STOP, ABSTAIN)
        return np.asarray(np.where(go, pick, np.where(ask, ASK, stop)), dtype=np.intp)

    def next_step(
        self,
        state: EpisodeState,
        prices: PriceVector,
        loss: float,
        irreversible_share: float = 0.0,
    ) -> StepDecision:
        """The Eq. 1 choice for one episode."""
        if not 0.0 <= irreversible_share <= 1.0:
            raise InputError("irreversible_share: must be in [0, 1]")
        priced = (prices.risk_price + prices.irreversible_risk_price * irreversible_share) * loss
        one, horizon = self.surplus(
            np.asarray([state.steps]), state.asked, prices.value, priced, prices.latency_price
        )
        k = int(self._decide(one, horizon, np.asarray([state.steps]))[0])
        return StepDecision(
            step=STEPS[k],
            surplus={name: float(x) for name, x in zip(STEPS, one[0], strict=True)},
            success_estimate=float(self.model.expected_success(np.asarray(state.steps))),
            test_detection=float(self.model.detection(state.steps[3])),
        )

    def choose(
        self,
        steps: npt.ArrayLike,
        asked: npt.ArrayLike,
        value: npt.ArrayLike,
        priced_loss: npt.ArrayLike,
        latency_price: npt.ArrayLike,
        remaining: npt.ArrayLike | None = None,
    ) -> npt.NDArray[np.intp]:
        """Vectorized next step index (phase 0-3, ``ASK``, ``STOP`` or ``ABSTAIN``).

        ``remaining``: steps left before each episode's deadline (see :meth:`surplus`).
        """
        one, horizon = self.surplus(steps, asked, value, priced_loss, latency_price, remaining)
        return self._decide(one, horizon, steps)


def verifier_budget(
    prices: PriceVector,
    loss: float,
    irreversible_share: float = 0.0,
    other_steps: Sequence[float] = (20.0, 8.0, 14.0),
    model: EpisodeModel | None = None,
    max_steps: int = 200,
) -> int:
    """Verifier steps T_v* where the marginal product of verification meets its price.

    Holding read/plan/edit at ``other_steps``, returns the T_v maximizing
    ``W(T) − (ΔC + λ·ΔL)·T_v``: the first-order condition ``∂W/∂T_v = ΔC + λ·ΔL``, the
    verifier-budget prediction of Sec. 4 (raising T_v lowers realized risk up to this point).

    Examples
    --------
    >>> low = verifier_budget(PriceVector(50.0, risk_price=0.1), loss=50.0)
    >>> high = verifier_budget(PriceVector(50.0, risk_price=10.0), loss=50.0)
    >>> high > low
    True
    """
    m = model if model is not None else EpisodeModel()
    if len(other_steps) != 3:
        raise InputError("other_steps: need (read, plan, edit)")
    tv = np.arange(max_steps + 1, dtype=np.float64)
    t = np.column_stack(
        [np.broadcast_to(np.asarray(other_steps, dtype=np.float64), (tv.size, 3)), tv]
    )
    priced = (prices.risk_price + prices.irreversible_risk_price * irreversible_share) * loss
    w = m.stop_value(t, 0.0, prices.value, priced)
    w = w - (m.step_cost + prices.latency_price * m.step_seconds) * tv
    return int(np.argmax(w))
