"""Price discovery: the prices of Eq. 1 as the Lagrange multipliers of Eq. 3.

Sec. 2 of the paper ("Prices as Lagrange multipliers") says the prices of Eq. 1 are not
chosen by fiat: they are the dual variables of the budget constraints of the primal
problem of token allocation (Eq. 3), a compute budget C̄, a latency SLA L̄ and a risk
envelope R̄. This module computes them two ways:

* offline, :func:`discover_prices` solves the relaxed primal (each task splits a unit of
  probability over its options or is not served) as a linear programme with HiGHS and
  reads the duals (µC, µL, µR) of the budget rows;
* online, :class:`PriceController` adjusts (µC, µL, µR) interval by interval from the
  observed spend, latency and risk against per-interval targets (projected stochastic
  dual ascent or a multiplicative update, with Polyak averaging), and on a stationary
  stream its averaged prices settle near the LP prices.

Normalization. The relaxed primal maximizes the welfare
``W = Σ_{x,i} (V_x·ΔQ_{x,i} − ΔC_{x,i})·y_{x,i}``: money spent is a cost in the objective
*and* it is rationed by C̄. A dollar released by the budget is therefore worth
``1 + µC`` (the dollar itself plus its shadow value µC). KKT stationarity of Eq. 3 for a
served option reads ``V·ΔQ = (1 + µC)·ΔC + µL·ΔL + µR·ΔR``; dividing by ``1 + µC``,

    V/(1 + µC)·ΔQ = ΔC + λ·ΔL + ρ·ΔR,   λ = µL/(1 + µC),   ρ = µR/(1 + µC),

which is Eq. 1 with money as the numéraire. The paper writes (1, λ, ρ) = (µC, µL/µC, µR/µC)
for a primal whose objective has no money term, so that its µC *is* the total value of a
dollar; that µC is our ``1 + µC``. Note that Eq. 1 then holds at the task value deflated
by the value of a dollar, ``V/(1 + µC)``: a binding compute budget acts like a markup
(1 + µC) on ΔC, or equivalently a tax on V. :meth:`PriceDiscovery.price_vector` returns
exactly that :class:`~margin.core.prices.PriceVector`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import linprog

from margin.core.allocation import NOT_SERVED, allocate_batch
from margin.core.prices import InputError, Option, PriceVector, check_number

__all__ = [
    "RESOURCES",
    "UPDATE_RULES",
    "Budgets",
    "ControllerState",
    "DualAscent",
    "MultiplicativeUpdate",
    "PriceController",
    "PriceDiscovery",
    "PriceUpdateRule",
    "StreamDecision",
    "Task",
    "TaskBatch",
    "discover_prices",
    "load_discovery_problem",
    "make_update_rule",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

#: The three budgeted resources of Eq. 3, in the order used by every array here.
RESOURCES: tuple[str, str, str] = ("cost", "latency", "risk")

# Shares below this are solver noise and reported as 0.
_ZERO_SHARE = 1e-12


# --------------------------------------------------------------------------- value objects


@dataclass(frozen=True, slots=True)
class Task:
    """A task x of Eq. 3: its value V(x) and the token uses (options) it can buy.

    Parameters
    ----------
    id : str
        Unique identifier of the task.
    value : float
        V(x) in USD, >= 0.
    options : tuple of Option
        At least one option; names must be unique within the task. Not serving the task
        is always possible and need not be listed.

    Examples
    --------
    >>> t = Task.from_dict({"id": "t1", "value": 10, "options": [
    ...     {"name": "cheap", "quality": 0.7, "cost": 1.0}]}, where="tasks[0]")
    >>> t.options[0].name, t.value
    ('cheap', 10.0)
    >>> Task.from_dict({"id": "t1", "value": 10, "options": [{"name": "cheap", "quality": 0.7}]},
    ...                where="tasks[3]")
    Traceback (most recent call last):
    ...
    margin.core.prices.InputError: tasks[3].options[0]: missing field 'cost'
    """

    id: str
    value: float
    options: tuple[Option, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InputError(f"Task: field 'id' must be a non-empty string, got {self.id!r}")
        where = f"task '{self.id}'"
        object.__setattr__(
            self, "value", check_number(where, "value", self.value, nonnegative=True)
        )
        opts = tuple(self.options) if isinstance(self.options, Sequence) else None
        if opts is None:
            raise InputError(f"{where}: field 'options' must be a list of options")
        if not opts:
            raise InputError(f"{where}: field 'options' must hold at least one option")
        for k, o in enumerate(opts):
            if not isinstance(o, Option):
                raise InputError(f"{where}: options[{k}] is not an Option, got {o!r}")
        names = [o.name for o in opts]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise InputError(f"{where}: duplicate option names {dup}")
        object.__setattr__(self, "options", opts)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "task") -> Task:
        """Build from ``{"id", "value", "options": [{"name", "quality", "cost", ...}]}``;
        errors name the field as ``{where}.options[k]: ...``."""
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: expected an object for a task, got {type(data).__name__}")
        for key in ("id", "value", "options"):
            if key not in data:
                raise InputError(f"{where}: missing field '{key}'")
        tid = data["id"]
        if not isinstance(tid, str) or not tid:
            raise InputError(f"{where}: field 'id' must be a non-empty string, got {tid!r}")
        value = check_number(where, "value", data["value"], nonnegative=True)
        raw = data["options"]
        if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
            raise InputError(f"{where}: field 'options' must be a list, got {type(raw).__name__}")
        if not raw:
            raise InputError(f"{where}: field 'options' must hold at least one option")
        options = tuple(
            Option.from_dict(o, where=f"{where}.options[{k}]") for k, o in enumerate(raw)
        )
        try:
            return cls(id=tid, value=value, options=options)
        except InputError as e:
            raise InputError(f"{where}: {e}") from None


@dataclass(frozen=True, slots=True)
class Budgets:
    """The budgets C̄ (USD), L̄ (s) and R̄ (risk units) of Eq. 3; ``None`` = unconstrained.

    Examples
    --------
    >>> Budgets.from_dict({"cost": 5})
    Budgets(cost=5.0, latency=None, risk=None)
    >>> Budgets(cost=-1.0)
    Traceback (most recent call last):
    ...
    margin.core.prices.InputError: budgets: field 'cost' must be >= 0, got -1.0
    """

    cost: float | None = None
    latency: float | None = None
    risk: float | None = None

    def __post_init__(self) -> None:
        for key in RESOURCES:
            x = getattr(self, key)
            if x is not None:
                object.__setattr__(self, key, check_number("budgets", key, x, nonnegative=True))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "budgets") -> Budgets:
        """Build from ``{"cost"?, "latency"?, "risk"?}``; an absent key (or null) is
        unconstrained, an unknown key is an error (a misspelt budget must not silently
        become unconstrained)."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: expected an object, got {type(data).__name__}")
        unknown = sorted(set(map(str, data)) - set(RESOURCES))
        if unknown:
            raise InputError(
                f"{where}: unknown field '{unknown[0]}' (expected cost, latency, risk)"
            )
        kw: dict[str, float | None] = {}
        for key in RESOURCES:
            x = data.get(key)
            kw[key] = None if x is None else check_number(where, key, x, nonnegative=True)
        return cls(**kw)

    def as_tuple(self) -> tuple[float | None, float | None, float | None]:
        """(cost, latency, risk) in :data:`RESOURCES` order."""
        return (self.cost, self.latency, self.risk)

    def scaled(self, factor: float) -> Budgets:
        """Every given budget multiplied by ``factor`` >= 0 (e.g. per-task to per-interval)."""
        f = check_number("scaled", "factor", factor, nonnegative=True)
        return Budgets(*(None if b is None else b * f for b in self.as_tuple()))


def load_discovery_problem(
    data: Mapping[str, Any], where: str = "file"
) -> tuple[list[Task], Budgets]:
    """Parse the ``margin prices discover`` file shape.

    ``{"tasks": [{"id", "value", "options": [{"name", "quality", "cost", "latency"?,
    "risk"?}]}], "budgets": {"cost"?: C̄, "latency"?: L̄, "risk"?: R̄}}``; an absent
    ``budgets`` object or key means unconstrained.

    Raises
    ------
    InputError
        Naming the field, e.g. ``file: tasks[3].options[1]: missing field 'cost'``; also
        for an empty task list, a task without options and duplicate task ids.

    Examples
    --------
    >>> tasks, budgets = load_discovery_problem({"tasks": [{"id": "a", "value": 10,
    ...     "options": [{"name": "cheap", "quality": 0.7, "cost": 1}]}], "budgets": {"cost": 1}})
    >>> [t.id for t in tasks], budgets
    (['a'], Budgets(cost=1.0, latency=None, risk=None))
    >>> load_discovery_problem({"tasks": [{"id": "a", "value": 1, "options": []}]}, "p.json")
    Traceback (most recent call last):
    ...
    margin.core.prices.InputError: p.json: tasks[0]: field 'options' must hold at least one option
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(data, Mapping):
        raise InputError(f"{prefix}expected a JSON object at the top level")
    if "tasks" not in data:
        raise InputError(f"{prefix}missing field 'tasks'")
    raw = data["tasks"]
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise InputError(f"{prefix}field 'tasks' must be a list, got {type(raw).__name__}")
    if not raw:
        raise InputError(f"{prefix}field 'tasks' must hold at least one task")
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for k, item in enumerate(raw):
        try:
            task = Task.from_dict(item, where=f"tasks[{k}]")
        except InputError as e:
            raise InputError(f"{prefix}{e}") from None
        if task.id in seen:
            raise InputError(
                f"{prefix}tasks[{k}]: duplicate task id '{task.id}'"
                f" (first at tasks[{seen[task.id]}])"
            )
        seen[task.id] = k
        tasks.append(task)
    try:
        budgets = Budgets.from_dict(data.get("budgets"), where="budgets")
    except InputError as e:
        raise InputError(f"{prefix}{e}") from None
    return tasks, budgets


# --------------------------------------------------------------------------- array form


def _matrix(
    name: str, x: npt.ArrayLike | None, shape: tuple[int, int], *, nonneg: bool
) -> FloatArray:
    if x is None:
        return np.zeros(shape)
    a = np.asarray(x, dtype=np.float64)
    if a.shape != shape:
        raise InputError(f"'{name}' must have shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"'{name}' has NaN or infinite entries")
    if nonneg and np.any(a < 0):
        raise InputError(f"'{name}' must be >= 0")
    return a


@dataclass(frozen=True, slots=True, eq=False)
class TaskBatch:
    """Tasks as padded ``n × m`` arrays, the form the LP and the controller work on.

    A task with fewer than ``m`` options is padded with copies of its first option and
    ``mask`` is False there: the LP creates no variable for a padded slot, and Eq. 1
    (argmax, ties to the lowest index) never picks a copy over the original.

    Attributes
    ----------
    value : ndarray, shape (n,)
        V per task.
    quality, cost, latency, risk : ndarray, shape (n, m)
        ΔQ, ΔC, ΔL, ΔR per task and option.
    mask : ndarray of bool, shape (n, m)
        True where the option exists.
    task_ids : tuple of str
    option_names : tuple of tuple of str
        The real options of each task (length ``mask[k].sum()``).
    """

    value: FloatArray
    quality: FloatArray
    cost: FloatArray
    latency: FloatArray
    risk: FloatArray
    mask: BoolArray
    task_ids: tuple[str, ...]
    option_names: tuple[tuple[str, ...], ...]

    @property
    def n(self) -> int:
        return int(self.value.shape[0])

    @property
    def m(self) -> int:
        return int(self.quality.shape[1])

    def __len__(self) -> int:
        return self.n

    def subset(self, rows: npt.ArrayLike) -> TaskBatch:
        """The tasks at ``rows`` (distinct indices), e.g. one interval of a stream.

        Examples
        --------
        >>> b = TaskBatch.from_arrays([1.0, 2.0, 3.0], np.ones((3, 1)), np.ones((3, 1)))
        >>> b.subset([2, 0]).value.tolist(), b.subset([2, 0]).task_ids
        ([3.0, 1.0], ('2', '0'))
        """
        idx = np.asarray(rows, dtype=np.intp)
        if idx.ndim != 1 or np.unique(idx).size != idx.size:
            raise InputError("subset: 'rows' must be distinct task indices")
        return TaskBatch(
            value=self.value[idx],
            quality=self.quality[idx],
            cost=self.cost[idx],
            latency=self.latency[idx],
            risk=self.risk[idx],
            mask=self.mask[idx],
            task_ids=tuple(self.task_ids[i] for i in idx),
            option_names=tuple(self.option_names[i] for i in idx),
        )

    @classmethod
    def from_tasks(cls, tasks: Sequence[Task]) -> TaskBatch:
        """Pack :class:`Task` objects; duplicate ids or a non-Task raise InputError."""
        if not tasks:
            raise InputError("tasks: at least one task is required")
        seen: set[str] = set()
        for k, t in enumerate(tasks):
            if not isinstance(t, Task):
                raise InputError(f"tasks[{k}]: expected a Task, got {type(t).__name__}")
            if t.id in seen:
                raise InputError(f"tasks[{k}]: duplicate task id '{t.id}'")
            seen.add(t.id)
        n, m = len(tasks), max(len(t.options) for t in tasks)
        arrs = np.empty((4, n, m))
        mask = np.zeros((n, m), dtype=bool)
        for k, t in enumerate(tasks):
            rows = [(o.quality, o.cost, o.latency, o.risk) for o in t.options]
            rows += [rows[0]] * (m - len(rows))
            arrs[:, k, :] = np.asarray(rows).T
            mask[k, : len(t.options)] = True
        return cls(
            value=np.fromiter((t.value for t in tasks), np.float64, n),
            quality=arrs[0],
            cost=arrs[1],
            latency=arrs[2],
            risk=arrs[3],
            mask=mask,
            task_ids=tuple(t.id for t in tasks),
            option_names=tuple(tuple(o.name for o in t.options) for t in tasks),
        )

    @classmethod
    def from_arrays(
        cls,
        value: npt.ArrayLike,
        quality: npt.ArrayLike,
        cost: npt.ArrayLike,
        latency: npt.ArrayLike | None = None,
        risk: npt.ArrayLike | None = None,
        *,
        task_ids: Sequence[str] | None = None,
        option_names: Sequence[str] | None = None,
    ) -> TaskBatch:
        """A batch where every task has the same ``m`` options (validated arrays).

        ``task_ids`` default to ``"0", "1", ...`` and ``option_names`` to ``"0", ...``.
        """
        v = np.asarray(value, dtype=np.float64)
        if v.ndim != 1 or v.size == 0:
            raise InputError(f"'value' must be a non-empty 1-d array, got shape {v.shape}")
        if not np.all(np.isfinite(v)) or np.any(v < 0):
            raise InputError("'value' must be finite and >= 0")
        q = np.asarray(quality, dtype=np.float64)
        if q.ndim != 2 or q.shape[0] != v.size or q.shape[1] == 0:
            raise InputError(f"'quality' must have shape ({v.size}, m) with m >= 1, got {q.shape}")
        shape = (int(q.shape[0]), int(q.shape[1]))
        q = _matrix("quality", q, shape, nonneg=False)
        ids = tuple(str(k) for k in range(shape[0])) if task_ids is None else tuple(task_ids)
        if len(ids) != shape[0] or len(set(ids)) != len(ids):
            raise InputError(f"'task_ids' must be {shape[0]} distinct names")
        names = (
            tuple(str(i) for i in range(shape[1])) if option_names is None else tuple(option_names)
        )
        if len(names) != shape[1] or len(set(names)) != len(names):
            raise InputError(f"'option_names' must be {shape[1]} distinct names")
        return cls(
            value=v,
            quality=q,
            cost=_matrix("cost", cost, shape, nonneg=True),
            latency=_matrix("latency", latency, shape, nonneg=True),
            risk=_matrix("risk", risk, shape, nonneg=True),
            mask=np.ones(shape, dtype=bool),
            task_ids=ids,
            option_names=(names,) * shape[0],
        )


def _as_batch(tasks: Sequence[Task] | TaskBatch) -> TaskBatch:
    return tasks if isinstance(tasks, TaskBatch) else TaskBatch.from_tasks(tasks)


# --------------------------------------------------------------------------- LP (Eq. 3)


class _DualPrices:
    """λ, ρ and the Eq. 1 price vector from budget duals (µC, µL, µR)."""

    __slots__ = ()
    mu_cost: float
    mu_latency: float
    mu_risk: float

    @property
    def mu(self) -> tuple[float, float, float]:
        """(µC, µL, µR)."""
        return (self.mu_cost, self.mu_latency, self.mu_risk)

    @property
    def lambda_(self) -> float:
        """λ = µL/(1 + µC), the latency price of Eq. 1 in USD per second."""
        return self.mu_latency / (1.0 + self.mu_cost)

    @property
    def rho(self) -> float:
        """ρ = µR/(1 + µC), the risk price of Eq. 1 in USD per unit of risk."""
        return self.mu_risk / (1.0 + self.mu_cost)

    def price_vector(self, value: float) -> PriceVector:
        """The Eq. 1 price vector for a task of value V at these prices.

        ``PriceVector(value=V/(1 + µC), latency_price=λ, risk_price=ρ)``: Eq. 1 at it
        ranks options (and the outside option 0) exactly as the KKT condition
        ``V·ΔQ − (1 + µC)·ΔC − µL·ΔL − µR·ΔR`` does, since it is that expression
        divided by 1 + µC > 0.
        """
        v = check_number("price_vector", "value", value, nonnegative=True)
        return PriceVector(
            value=v / (1.0 + self.mu_cost), latency_price=self.lambda_, risk_price=self.rho
        )


@dataclass(frozen=True, slots=True, eq=False)
class PriceDiscovery(_DualPrices):
    """Solution of the relaxed primal of Eq. 3 and its dual prices.

    Attributes
    ----------
    allocation : ndarray, shape (n, m)
        y_{x,i}, the share of task x given to option i (0 on padded slots); the task is
        not served with probability ``1 − allocation[x].sum()``.
    welfare : float
        W = Σ (V·ΔQ − ΔC)·y at the optimum.
    mu_cost, mu_latency, mu_risk : float
        Duals µC, µL, µR >= 0 of the budget rows (0 for an unconstrained budget): the
        welfare gained per unit of extra budget, ∂W/∂B̄.
    usage, slack : dict
        Per resource (``"cost"``, ``"latency"``, ``"risk"``): Σ Δ·y, and budget − usage
        (``inf`` when unconstrained).
    task_duals : ndarray, shape (n,)
        π_x >= 0, the duals of the unit rows Σ_i y_{x,i} <= 1: each task's surplus rent
        ``max(0, max_i V·ΔQ − (1 + µC)·ΔC − µL·ΔL − µR·ΔR)``.
    budgets : Budgets
    task_ids : tuple of str
    option_names : tuple of tuple of str
    """

    allocation: FloatArray
    welfare: float
    mu_cost: float
    mu_latency: float
    mu_risk: float
    usage: dict[str, float]
    slack: dict[str, float]
    task_duals: FloatArray
    budgets: Budgets
    task_ids: tuple[str, ...]
    option_names: tuple[tuple[str, ...], ...]

    @property
    def dual_objective(self) -> float:
        """Σ_x π_x + µC·C̄ + µL·L̄ + µR·R̄ over the given budgets; equals ``welfare``
        at the optimum (strong duality)."""
        total = float(self.task_duals.sum())
        for mu, b in zip(self.mu, self.budgets.as_tuple(), strict=True):
            if b is not None:
                total += mu * b
        return total

    def allocation_dict(self) -> dict[str, dict[str, float]]:
        """``{task_id: {option: share}}`` over each task's real options."""
        out: dict[str, dict[str, float]] = {}
        for k, (tid, names) in enumerate(zip(self.task_ids, self.option_names, strict=True)):
            row = self.allocation[k]
            out[tid] = {name: float(row[i]) for i, name in enumerate(names)}
        return out

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready document printed by ``margin prices discover --json``:
        ``{"prices": {"cost": µC, "latency": µL, "risk": µR}, "lambda": λ, "rho": ρ,
        "welfare": W, "allocation": {TASK_ID: {OPTION: share}}}``."""
        return {
            "prices": {"cost": self.mu_cost, "latency": self.mu_latency, "risk": self.mu_risk},
            "lambda": self.lambda_,
            "rho": self.rho,
            "welfare": self.welfare,
            "allocation": self.allocation_dict(),
        }


_LP_METHODS = frozenset({"highs", "highs-ds", "highs-ipm"})

_LP_STATUS = {
    1: "the iteration limit was reached",
    2: "the budgets are infeasible",
    3: "the problem is unbounded",
    4: "the solver hit numerical difficulties",
}


def discover_prices(
    tasks: Sequence[Task] | TaskBatch,
    budgets: Budgets | None = None,
    *,
    method: str = "highs-ipm",
) -> PriceDiscovery:
    """Solve the relaxed primal of Eq. 3 with HiGHS and read the budget prices.

    The linear programme, over shares y_{x,i} >= 0 of task x given to option i::

        max  W = Σ_{x,i} (V_x·ΔQ_{x,i} − ΔC_{x,i})·y_{x,i}
        s.t. Σ_i y_{x,i} <= 1            for every task x   (dual π_x: the task's rent)
             Σ_{x,i} ΔC_{x,i}·y_{x,i} <= C̄                    (dual µC)
             Σ_{x,i} ΔL_{x,i}·y_{x,i} <= L̄                    (dual µL)
             Σ_{x,i} ΔR_{x,i}·y_{x,i} <= R̄                    (dual µR)

    (y <= 1 is implied by the unit rows; the slack of a unit row is the probability
    that the task is not served; a budget row exists only for a given budget.) The
    duals come from HiGHS (``res.ineqlin.marginals``, sign-flipped since linprog
    minimizes −W). KKT stationarity of a served option is
    ``V·ΔQ = (1 + µC)·ΔC + µL·ΔL + µR·ΔR + π_x``: the prices of Eq. 1 are
    λ = µL/(1 + µC) and ρ = µR/(1 + µC), and 1 + µC is the full value of a dollar
    (the paper's µC, Eq. 3, whose objective carries no money term); see the module
    docstring. ΔR_irr is not budgeted by Eq. 3 and is ignored here.

    Parameters
    ----------
    tasks : sequence of Task, or TaskBatch
    budgets : Budgets, optional
        None, or a budget left as None, is unconstrained.
    method : {"highs-ipm", "highs", "highs-ds"}
        The HiGHS solver passed to ``scipy.optimize.linprog``. The default, interior
        point with crossover to a vertex (so the duals are those of an optimal basis),
        solves 10^4 tasks × 8 options about 15× faster than the dual simplex that
        ``"highs"`` picks, which pivots once per task.

    Returns
    -------
    PriceDiscovery

    Raises
    ------
    InputError
        Empty or invalid tasks, or the solver failing (infeasible, unbounded,
        numerical trouble); with budgets >= 0 and the option not to serve, the LP is
        always feasible and bounded.

    Examples
    --------
    The worked example of Sec. 2 for two tasks (V = 10 and V = 100) and a compute budget
    of $5. Unconstrained, the V = 10 task takes the cheap model and the V = 100 task the
    frontier one (W = 6 + 85). With C̄ = 5, the budget binds: the last dollar upgrades the
    V = 100 task from cheap to frontier, which earns 85 − 69 = 16 for 4 dollars, so
    µC = 4 and a dollar is worth 1 + µC = 5. The V = 100 task then sits exactly on the
    crossover of Sec. 2: its deflated value V/(1 + µC) is 20 = V*.

    >>> cheap, frontier = Option("cheap", 0.7, 1.0), Option("frontier", 0.9, 5.0)
    >>> tasks = [Task("low", 10.0, (cheap, frontier)), Task("high", 100.0, (cheap, frontier))]
    >>> free = discover_prices(tasks)
    >>> free.allocation.round(6).tolist(), round(free.welfare, 6), free.mu_cost
    ([[1.0, 0.0], [0.0, 1.0]], 91.0, 0.0)
    >>> d = discover_prices(tasks, Budgets(cost=5.0))
    >>> d.allocation.round(6).tolist(), round(d.welfare, 6), round(d.mu_cost, 6)
    ([[1.0, 0.0], [0.25, 0.75]], 87.0, 4.0)
    >>> d.task_duals.round(6).tolist(), round(d.dual_objective, 6)
    ([2.0, 65.0], 87.0)
    >>> round(d.price_vector(100.0).value, 6)
    20.0
    """
    batch = _as_batch(tasks)
    if method not in _LP_METHODS:
        raise InputError(f"method: unknown LP method {method!r} (known: {sorted(_LP_METHODS)})")
    b = budgets if budgets is not None else Budgets()
    if not isinstance(b, Budgets):
        raise InputError(f"budgets: expected Budgets, got {type(b).__name__}")
    n = batch.n
    rows_k, cols_k = np.nonzero(batch.mask)  # row-major: variables grouped by task
    nvar = rows_k.size
    surplus = batch.value[rows_k] * batch.quality[rows_k, cols_k] - batch.cost[rows_k, cols_k]
    resource = {
        "cost": batch.cost[rows_k, cols_k],
        "latency": batch.latency[rows_k, cols_k],
        "risk": batch.risk[rows_k, cols_k],
    }
    given = [
        (name, lim) for name, lim in zip(RESOURCES, b.as_tuple(), strict=True) if lim is not None
    ]
    var = np.arange(nvar)
    data_parts = [np.ones(nvar)]
    row_parts = [rows_k.astype(np.int64)]
    col_parts = [var]
    for j, (name, _) in enumerate(given):
        coeff = resource[name]
        nz = np.flatnonzero(coeff)
        data_parts.append(coeff[nz])
        row_parts.append(np.full(nz.size, n + j, dtype=np.int64))
        col_parts.append(nz)
    a_ub = sp.csr_matrix(
        (np.concatenate(data_parts), (np.concatenate(row_parts), np.concatenate(col_parts))),
        shape=(n + len(given), nvar),
    )
    b_ub = np.concatenate([np.ones(n), np.asarray([lim for _, lim in given], dtype=np.float64)])
    res = linprog(-surplus, A_ub=a_ub, b_ub=b_ub, bounds=(0.0, None), method=method)
    if res.status != 0:
        why = _LP_STATUS.get(int(res.status), f"status {res.status}")
        raise InputError(f"price discovery: {why} (HiGHS: {res.message})")
    y = np.clip(np.asarray(res.x, dtype=np.float64), 0.0, 1.0)
    y[y < _ZERO_SHARE] = 0.0
    # linprog minimizes −W: its marginals are ∂(−W)/∂b <= 0; "+ 0.0" turns −0.0 into 0.0.
    duals = np.maximum(-np.asarray(res.ineqlin.marginals, dtype=np.float64), 0.0) + 0.0
    allocation = np.zeros(batch.mask.shape)
    allocation[rows_k, cols_k] = y
    mu = dict.fromkeys(RESOURCES, 0.0)
    usage: dict[str, float] = {}
    slack: dict[str, float] = {}
    for name, lim in zip(RESOURCES, b.as_tuple(), strict=True):
        usage[name] = float(resource[name] @ y)
        slack[name] = math.inf if lim is None else lim - usage[name]
    for j, (name, _) in enumerate(given):
        mu[name] = float(duals[n + j])
    return PriceDiscovery(
        allocation=allocation,
        welfare=float(-res.fun),
        mu_cost=mu["cost"],
        mu_latency=mu["latency"],
        mu_risk=mu["risk"],
        usage=usage,
        slack=slack,
        task_duals=duals[:n].copy(),
        budgets=b,
        task_ids=batch.task_ids,
        option_names=batch.option_names,
    )


# --------------------------------------------------------------------------- online control


@runtime_checkable
class PriceUpdateRule(Protocol):
    """One step of an online price controller.

    ``step(mu, gradient, eta, scale) -> mu'`` with ``gradient = (observed − target)/target``
    per resource (positive when a budget is overspent), ``eta`` the step size η_k of this
    interval and ``scale`` the price scale s_j of each resource (the unit µ_j moves in).
    """

    def step(
        self, mu: FloatArray, gradient: FloatArray, eta: float, scale: FloatArray
    ) -> FloatArray: ...


@dataclass(frozen=True, slots=True)
class DualAscent:
    """Projected dual (sub)gradient step: ``µ ← max(0, µ + η·s·g)``.

    The Lagrange dual of Eq. 3 has gradient budget − usage in µ_j, so raising the price
    of an overspent resource is a (stochastic) subgradient step on the dual, projected
    on µ >= 0; with η_k = η0/√k and averaged iterates it converges to the dual optimum
    on a stationary stream (Nemirovski et al., "Robust stochastic approximation approach
    to stochastic programming", SIAM J. Optim. 2009).

    Examples
    --------
    >>> DualAscent().step(np.array([0.5, 0.0]), np.array([1.0, -1.0]), 0.1, np.ones(2))
    array([0.6, 0. ])
    """

    def step(
        self, mu: FloatArray, gradient: FloatArray, eta: float, scale: FloatArray
    ) -> FloatArray:
        out: FloatArray = np.maximum(0.0, mu + eta * scale * gradient)
        return out


@dataclass(frozen=True, slots=True)
class MultiplicativeUpdate:
    """Shifted multiplicative (exponentiated-gradient) step.

    ``µ ← max(0, (µ + a)·exp(η·g) − a)`` with ``a = shift·s``. Far above ``a`` the price
    moves by the factor exp(η·g) (proportional control, free of the price's unit, in
    the spirit of multiplicative weights, Arora, Hazan and Kale, Theory of Computing
    2012); near 0 the step is ``≈ shift·s·η·g``, the dual-ascent step, so a price can
    leave and return to 0 (complementary slackness), which ``µ·exp(η·g)`` cannot.

    Examples
    --------
    >>> r = MultiplicativeUpdate(shift=1.0)
    >>> r.step(np.array([1.0, 0.0]), np.array([0.5, -2.0]), 0.2, np.ones(2)).round(4)
    array([1.2103, 0.    ])
    """

    shift: float = 1.0

    def __post_init__(self) -> None:
        s = check_number("MultiplicativeUpdate", "shift", self.shift, nonnegative=True)
        if s == 0.0:
            raise InputError("MultiplicativeUpdate: field 'shift' must be > 0")
        object.__setattr__(self, "shift", s)

    def step(
        self, mu: FloatArray, gradient: FloatArray, eta: float, scale: FloatArray
    ) -> FloatArray:
        a = self.shift * scale
        out: FloatArray = np.maximum(0.0, (mu + a) * np.exp(eta * gradient) - a)
        return out


#: Update rules by name, for configuration files and the CLI.
UPDATE_RULES: dict[str, Callable[[], PriceUpdateRule]] = {
    "dual_ascent": DualAscent,
    "multiplicative": MultiplicativeUpdate,
}


def make_update_rule(name: str) -> PriceUpdateRule:
    """The update rule registered under ``name`` in :data:`UPDATE_RULES`.

    >>> make_update_rule("dual_ascent")
    DualAscent()
    """
    try:
        return UPDATE_RULES[name]()
    except KeyError:
        raise InputError(
            f"rule: unknown price update rule {name!r} (known: {sorted(UPDATE_RULES)})"
        ) from None


@dataclass(frozen=True, slots=True)
class ControllerState(_DualPrices):
    """Prices (µC, µL, µR) held by a :class:`PriceController` after ``step`` updates.

    ``lambda_``, ``rho`` and :meth:`price_vector` use the normalization of
    :class:`PriceDiscovery`: λ = µL/(1 + µC), ρ = µR/(1 + µC), value V/(1 + µC).
    """

    mu_cost: float
    mu_latency: float
    mu_risk: float
    step: int


@dataclass(frozen=True, slots=True, eq=False)
class StreamDecision:
    """Eq. 1 decisions for one interval's batch and what they used.

    Attributes
    ----------
    choice : ndarray of int, shape (n,)
        Chosen option index per task, ``NOT_SERVED`` (-1) when no option has positive
        surplus ``V·ΔQ − (1 + µC)·ΔC − µL·ΔL − µR·ΔR``.
    cost, latency, risk : float
        Σ over served tasks of the chosen option's ΔC, ΔL, ΔR.
    welfare : float
        Σ over served tasks of V·ΔQ − ΔC (the primal objective of Eq. 3).
    """

    choice: IntArray
    cost: float
    latency: float
    risk: float
    welfare: float

    @property
    def served(self) -> int:
        return int(np.count_nonzero(self.choice != NOT_SERVED))


class PriceController:
    """Online price discovery: adjust (µC, µL, µR) from observed usage against targets.

    After each interval with observed spend, latency and risk ``o_j`` against the
    per-interval target ``b_j`` (a budget of Eq. 3 per interval), the price of each
    budgeted resource moves along the normalized dual gradient ``g_j = (o_j − b_j)/b_j``
    (optionally clipped to ``[−g_max, g_max]``, ``gradient_clip``), with step ``η_k·s_j``,
    ``η_k = η0/√k`` (k = 1, 2, ...) and ``s_j`` the price scale of
    resource j (a typical value of µ_j, e.g. value per unit of the resource). The rule
    is :class:`DualAscent` (``µ ← max(0, µ + η·g)``) or :class:`MultiplicativeUpdate`,
    by name in :data:`UPDATE_RULES`. Polyak averaging: ``prices_avg`` is the mean of the
    iterates after the first ``burn_in`` updates; on a stationary stream it settles near
    the LP prices of :func:`discover_prices` (the dual optimum of the expected problem).
    An unconstrained target (None) keeps its price at 0.

    Parameters
    ----------
    targets : Budgets
        Per-interval targets; a given target must be > 0.
    rule : str or PriceUpdateRule
    eta0 : float
        Initial step size η0 > 0.
    scale : (float, float, float)
        Price scales (s_C, s_L, s_R) > 0.
    initial : (float, float, float)
        Starting prices (µC, µL, µR) >= 0.
    burn_in : int
        Updates excluded from the Polyak average.
    gradient_clip : float or None
        g_max > 0, or None (default) for the raw gradient. The normalized gradient is ≥ −1
        but unbounded above, so one heavy interval moves a price by many steps; clipping
        bounds it, as the O(1/√k) guarantee of online gradient methods assumes, at a
        price: overshoots are corrected more slowly (on the built-in economy, g_max = 1
        let spend run to 2.6× the cost budget, unclipped stays within it).

    Examples
    --------
    A hundred tasks per interval worth V = 1, ..., 100, one option (ΔQ = 1, ΔC = $1) and
    a target of $50 per interval: the LP price is any µC in [49, 50] (half the tasks
    served), and the controller finds it.

    >>> batch = TaskBatch.from_arrays(np.arange(1.0, 101.0), np.ones((100, 1)), np.ones((100, 1)))
    >>> 49.0 <= discover_prices(batch, Budgets(cost=50.0)).mu_cost <= 50.0
    True
    >>> ctl = PriceController(Budgets(cost=50.0), eta0=1.0, scale=(50.0, 1.0, 1.0), burn_in=50)
    >>> for _ in range(200):
    ...     decision, state = ctl.step(batch)
    >>> decision.served, 49.0 <= ctl.prices_avg.mu_cost <= 50.0
    (50, True)
    """

    def __init__(
        self,
        targets: Budgets,
        *,
        rule: str | PriceUpdateRule = "dual_ascent",
        eta0: float = 0.5,
        scale: tuple[float, float, float] = (1.0, 1.0, 1.0),
        initial: tuple[float, float, float] = (0.0, 0.0, 0.0),
        burn_in: int = 0,
        gradient_clip: float | None = None,
    ) -> None:
        if not isinstance(targets, Budgets):
            raise InputError(f"targets: expected Budgets, got {type(targets).__name__}")
        for name, t in zip(RESOURCES, targets.as_tuple(), strict=True):
            if t is not None and t <= 0:
                raise InputError(
                    f"targets: field '{name}' must be > 0 (use None for unconstrained), got {t}"
                )
        self.targets = targets
        self.rule: PriceUpdateRule = make_update_rule(rule) if isinstance(rule, str) else rule
        if not isinstance(self.rule, PriceUpdateRule):
            raise InputError(f"rule: {rule!r} has no step(mu, gradient, eta, scale) method")
        eta = check_number("PriceController", "eta0", eta0, nonnegative=True)
        if eta == 0.0:
            raise InputError("PriceController: field 'eta0' must be > 0")
        self.eta0 = eta
        if len(scale) != 3 or len(initial) != 3:
            raise InputError("PriceController: 'scale' and 'initial' need 3 entries")
        sc = [
            check_number("scale", r, s, nonnegative=True)
            for r, s in zip(RESOURCES, scale, strict=True)
        ]
        if min(sc) <= 0:
            raise InputError("scale: every price scale must be > 0")
        self.scale = np.asarray(sc)
        self._active = np.asarray([t is not None for t in targets.as_tuple()])
        self._target = np.asarray([1.0 if t is None else t for t in targets.as_tuple()])
        init = [
            check_number("initial", r, x, nonnegative=True)
            for r, x in zip(RESOURCES, initial, strict=True)
        ]
        self._mu = np.where(self._active, np.asarray(init), 0.0)
        if isinstance(burn_in, bool) or not isinstance(burn_in, int) or burn_in < 0:
            raise InputError(
                f"PriceController: field 'burn_in' must be an int >= 0, got {burn_in!r}"
            )
        self.burn_in = burn_in
        if gradient_clip is not None:
            gradient_clip = check_number(
                "PriceController", "gradient_clip", gradient_clip, nonnegative=True
            )
            if gradient_clip == 0.0:
                raise InputError("PriceController: field 'gradient_clip' must be > 0")
        self.gradient_clip = gradient_clip
        self._k = 0
        self._sum = np.zeros(3)
        self._n_avg = 0

    def _state(self, mu: FloatArray) -> ControllerState:
        return ControllerState(
            mu_cost=float(mu[0]), mu_latency=float(mu[1]), mu_risk=float(mu[2]), step=self._k
        )

    @property
    def prices(self) -> ControllerState:
        """The current iterate µ_k."""
        return self._state(self._mu)

    @property
    def prices_avg(self) -> ControllerState:
        """Polyak average of the iterates after ``burn_in`` (the current iterate before)."""
        if self._n_avg == 0:
            return self.prices
        avg = self._sum / self._n_avg
        return self._state(avg)

    def update(
        self, observed_cost: float, observed_latency: float, observed_risk: float
    ) -> ControllerState:
        """One interval: ``µ ← rule(µ, clip((o − b)/b), η0/√k · s)``; returns the new prices."""
        obs = np.asarray(
            [
                check_number("observed", name, x, nonnegative=True)
                for name, x in zip(
                    RESOURCES, (observed_cost, observed_latency, observed_risk), strict=True
                )
            ]
        )
        self._k += 1
        eta = self.eta0 / math.sqrt(self._k)
        g = (obs - self._target) / self._target
        if self.gradient_clip is not None:
            g = np.clip(g, -self.gradient_clip, self.gradient_clip)
        mu = self.rule.step(self._mu.copy(), g, eta, self.scale)
        self._mu = np.where(self._active, mu, 0.0)
        if self._k > self.burn_in:
            self._sum += self._mu
            self._n_avg += 1
        return self.prices

    def decide(self, tasks_batch: Sequence[Task] | TaskBatch) -> StreamDecision:
        """Eq. 1 at the current prices for a batch, with outside option 0 (not served).

        Chooses ``argmax_i V·ΔQ_i − (1 + µC)·ΔC_i − µL·ΔL_i − µR·ΔR_i`` (via
        :func:`~margin.core.allocation.allocate_batch` with cost multiplied by 1 + µC),
        and sums the chosen options' cost, latency and risk.
        """
        batch = _as_batch(tasks_batch)
        mu_c, mu_l, mu_r = (float(x) for x in self._mu)
        alloc = allocate_batch(
            batch.value,
            batch.quality,
            (1.0 + mu_c) * batch.cost,
            batch.latency,
            batch.risk,
            latency_price=mu_l,
            risk_price=mu_r,
            outside_option=0.0,
        )
        choice = alloc.choice
        served = choice != NOT_SERVED
        rows = np.flatnonzero(served)
        cols = choice[served]
        c = batch.cost[rows, cols]
        return StreamDecision(
            choice=choice,
            cost=float(c.sum()),
            latency=float(batch.latency[rows, cols].sum()),
            risk=float(batch.risk[rows, cols].sum()),
            welfare=float((batch.value[rows] * batch.quality[rows, cols] - c).sum()),
        )

    @staticmethod
    def usage(decision: StreamDecision) -> tuple[float, float, float]:
        """(cost, latency, risk) of a decision, ready for :meth:`update`."""
        return (decision.cost, decision.latency, decision.risk)

    def step(
        self, tasks_batch: Sequence[Task] | TaskBatch
    ) -> tuple[StreamDecision, ControllerState]:
        """Decide a batch at the current prices, then update them from its usage."""
        decision = self.decide(tasks_batch)
        return decision, self.update(*self.usage(decision))
