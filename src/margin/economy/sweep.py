"""Scale-out: a grid of economies (price vectors × policies × seeds) in parallel.

A sweep spec (JSON or YAML) holds a partial :class:`~margin.economy.config.EconomyConfig`
(``base``), grid axes (``grid``: any scalar config field given as a list of values, e.g.
the delay prices λ, the risk price ρ, the budgets of Eq. 3 that set the duals µ, loads
and seeds) and the regimes (``regimes``: policies per layer, names of
:data:`~margin.economy.engine.REGIMES` or a one-layer swap ``"siloed+<layer>"``)::

    base: {n_coding: 12, horizon_s: 240.0, interval_s: 60.0}
    grid:
      seed: [0, 1, 2]
      cost_budget_per_task: [0.5, 1.0, 2.0]
    regimes: [siloed, shared, siloed+serving]   # default: [siloed, shared]
    regret: true        # agent-layer counterfactual regret (slower); default true
    max_jobs: 1000      # guard against an accidental huge grid; default 10000

The grid is the Cartesian product of the axes in file order; a job is one grid point
run in one regime (:func:`~margin.economy.engine.run_regime` on the point's stream, so
every regime of a point sees the same random stream). :func:`run_sweep` runs the jobs
on a backend of :data:`BACKENDS` and gathers one row per job into a
:class:`pyarrow.Table`:

``job, point, <axis columns...>, seed, regime``, then for ``L`` in ``total`` and each
layer of :data:`~margin.economy.engine.LAYER_NAMES` the columns ``L_welfare, L_cost,
L_latency, L_risk, L_regret``, then ``success_rate, calls, rejected_background,
wall_s``. ``total_welfare`` is the economy's welfare at social prices — Eq. (1)'s
objective ``V·ΔQ − ΔC − λ·ΔL − ρ·ΔR`` summed over every decision of every layer (the
engine's ``W``) — and its per-layer split sums to it.

Every backend runs the same module-level worker on plain dicts, so a spec gives the same
numbers (bit for bit, ``wall_s`` aside) serially, in a process pool and on Ray.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from margin._io import parse_structured
from margin.core.prices import InputError
from margin.economy.config import EconomyConfig

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "BACKENDS",
    "METRICS",
    "ProcessBackend",
    "RayBackend",
    "SerialBackend",
    "SweepBackend",
    "SweepJob",
    "SweepSpec",
    "load_sweep",
    "parse_regime",
    "run_sweep",
    "summarize_sweep",
]

#: Per-layer (and total) metrics reported for each job, as in
#: :class:`~margin.economy.engine.LayerReport`.
METRICS: tuple[str, ...] = ("welfare", "cost", "latency", "risk", "regret")

#: Fields that cannot be a grid axis (not scalars).
_NOT_AXES = ("tiers", "data_dir")
_SPEC_KEYS = ("base", "grid", "regimes", "regret", "max_jobs")
_DEFAULT_MAX_JOBS = 10_000
_LAYERS: tuple[str, ...] = ("routing", "agent", "serving", "capital")

Progress = Callable[[int, int], None]


def parse_regime(name: str, where: str = "sweep") -> Any:
    """The :class:`~margin.economy.engine.Regime` named ``name``.

    ``"siloed"`` and ``"shared"`` (:data:`~margin.economy.engine.REGIMES`) or
    ``"siloed+<layer>"``: the siloed stack with one layer on shared prices (the engine's
    attribution swap).

    Examples
    --------
    >>> parse_regime("siloed+serving").serving
    'shared'
    >>> parse_regime("shared+routing")
    Traceback (most recent call last):
    ...
    margin.core.prices.InputError: sweep: field 'regimes': unknown regime 'shared+routing' ...
    """
    from margin.economy.engine import REGIMES

    if isinstance(name, str):
        if name in REGIMES:
            return REGIMES[name]
        base, plus, layer = name.partition("+")
        if base == "siloed" and plus and layer in _LAYERS:
            return REGIMES["siloed"].swap(layer)
    choices = ", ".join([*REGIMES, *(f"siloed+{x}" for x in _LAYERS)])
    raise InputError(f"{where}: field 'regimes': unknown regime {name!r} (choose from {choices})")


@dataclass(frozen=True, slots=True)
class SweepJob:
    """One grid point in one regime; ``payload()`` is what a worker receives."""

    job: int
    point: int
    params: tuple[tuple[str, Any], ...]
    config: EconomyConfig
    regime: str
    regret: bool

    def payload(self) -> dict[str, Any]:
        """Plain, picklable dict for :func:`_run_job` (spawn- and Ray-safe)."""
        return {
            "job": self.job,
            "point": self.point,
            "params": dict(self.params),
            "config": self.config.as_dict(),
            "regime": self.regime,
            "regret": self.regret,
        }


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """A grid of economies: ``base`` fields, ``axes`` (field, values) and ``regimes``.

    The grid is the Cartesian product of the axes (first axis slowest); jobs are the grid
    points times the regimes, at most ``max_jobs``. Construction validates everything,
    including every grid point's :class:`EconomyConfig`, so a bad spec fails before any
    job runs; errors name ``source`` (the file) and the field.

    Examples
    --------
    >>> spec = SweepSpec.from_dict({"base": {"n_coding": 6}, "grid": {"seed": [0, 1],
    ...     "latency_price_coding": [0.005, 0.01]}, "regimes": ["siloed", "shared"]})
    >>> spec.n_points, spec.n_jobs
    (4, 8)
    >>> [j.params for j in spec.jobs()[:3]]  # doctest: +NORMALIZE_WHITESPACE
    [(('seed', 0), ('latency_price_coding', 0.005)),
     (('seed', 0), ('latency_price_coding', 0.005)),
     (('seed', 0), ('latency_price_coding', 0.01))]
    >>> SweepSpec.from_dict({"grid": {"horizon_s": [30.0]}}, source="s.yaml")
    Traceback (most recent call last):
    ...
    margin.core.prices.InputError: s.yaml: grid point 0 (horizon_s=30.0): field 'interval_s' ...
    """

    base: tuple[tuple[str, Any], ...] = ()
    axes: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    regimes: tuple[str, ...] = ("siloed", "shared")
    regret: bool = True
    max_jobs: int = _DEFAULT_MAX_JOBS
    source: str = "sweep"

    def __post_init__(self) -> None:
        where = self.source
        known = {f.name for f in fields(EconomyConfig)}
        base_keys = {k for k, _ in self.base}
        for k in base_keys:
            if k not in known:
                raise InputError(f"{where}: base: unknown field '{k}'")
        seen: set[str] = set()
        for name, values in self.axes:
            if name not in known:
                raise InputError(f"{where}: grid: unknown field '{name}'")
            if name in _NOT_AXES:
                raise InputError(f"{where}: grid: field '{name}' cannot be a grid axis")
            if name in base_keys:
                raise InputError(f"{where}: field '{name}' is both in base and grid")
            if name in seen:
                raise InputError(f"{where}: grid: field '{name}' given twice")
            seen.add(name)
            if not values:
                raise InputError(f"{where}: grid: field '{name}' must be a non-empty list")
        if not self.regimes:
            raise InputError(f"{where}: field 'regimes' must be a non-empty list")
        if len(set(self.regimes)) != len(self.regimes):
            raise InputError(f"{where}: field 'regimes' has duplicates")
        for r in self.regimes:
            parse_regime(r, where)
        if not isinstance(self.regret, bool):
            raise InputError(f"{where}: field 'regret' must be true or false")
        if isinstance(self.max_jobs, bool) or not isinstance(self.max_jobs, int):
            raise InputError(f"{where}: field 'max_jobs' must be an integer")
        if self.max_jobs < 1:
            raise InputError(f"{where}: field 'max_jobs' must be >= 1, got {self.max_jobs}")
        if self.n_jobs > self.max_jobs:
            raise InputError(
                f"{where}: field 'max_jobs': the grid has {self.n_points} points × "
                f"{len(self.regimes)} regimes = {self.n_jobs} jobs, more than "
                f"max_jobs={self.max_jobs}"
            )
        # validate every grid point now (cheap) and reject duplicate values per axis
        configs = self._configs()
        for name, values in self.axes:
            if len(values) > 1:
                validated = {getattr(c, name) for c in configs}
                if len(validated) != len(values):
                    raise InputError(f"{where}: grid: field '{name}' has duplicate values")

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.axes)

    @property
    def n_points(self) -> int:
        return math.prod(len(v) for _, v in self.axes)

    @property
    def n_jobs(self) -> int:
        return self.n_points * len(self.regimes)

    def points(self) -> list[tuple[tuple[str, Any], ...]]:
        """The grid points in order: tuples of (field, raw value)."""
        names = self.axis_names
        return [
            tuple(zip(names, combo, strict=True))
            for combo in itertools.product(*(v for _, v in self.axes))
        ]

    def _configs(self) -> list[EconomyConfig]:
        base = dict(self.base)
        out = []
        for i, point in enumerate(self.points()):
            label = ", ".join(f"{k}={v!r}" for k, v in point) or "base"
            try:
                out.append(EconomyConfig.from_dict({**base, **dict(point)}, "economy config"))
            except InputError as e:
                msg = str(e).removeprefix("economy config: ")
                raise InputError(f"{self.source}: grid point {i} ({label}): {msg}") from None
        return out

    def jobs(self) -> list[SweepJob]:
        """Every (grid point × regime), point-major; params hold the validated values."""
        out: list[SweepJob] = []
        for p, cfg in enumerate(self._configs()):
            params = tuple((n, getattr(cfg, n)) for n in self.axis_names)
            for r in self.regimes:
                out.append(SweepJob(len(out), p, params, cfg, r, self.regret))
        return out

    def as_dict(self) -> dict[str, Any]:
        """The spec as a JSON-able mapping (``from_dict`` round-trips it)."""
        return {
            "base": dict(self.base),
            "grid": {n: list(v) for n, v in self.axes},
            "regimes": list(self.regimes),
            "regret": self.regret,
            "max_jobs": self.max_jobs,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "sweep") -> SweepSpec:
        """Build from ``{"base", "grid", "regimes", "regret", "max_jobs"}`` (all optional)."""
        if not isinstance(data, Mapping):
            raise InputError(f"{source}: expected an object, got {type(data).__name__}")
        for key in data:
            if key not in _SPEC_KEYS:
                raise InputError(
                    f"{source}: unknown field '{key}' (expected {', '.join(_SPEC_KEYS)})"
                )
        base = data.get("base", {}) or {}
        if not isinstance(base, Mapping):
            raise InputError(f"{source}: field 'base' must be an object of config fields")
        grid = data.get("grid", {}) or {}
        if not isinstance(grid, Mapping):
            raise InputError(f"{source}: field 'grid' must be an object of field: [values]")
        axes = []
        for name, values in grid.items():
            if not isinstance(values, list):
                raise InputError(f"{source}: grid: field '{name}' must be a list of values")
            axes.append((str(name), tuple(values)))
        regimes = data.get("regimes", ["siloed", "shared"])
        if isinstance(regimes, str) or not isinstance(regimes, list):
            raise InputError(f"{source}: field 'regimes' must be a list of regime names")
        return cls(
            base=tuple((str(k), v) for k, v in base.items()),
            axes=tuple(axes),
            regimes=tuple(regimes),
            regret=data.get("regret", True),
            max_jobs=data.get("max_jobs", _DEFAULT_MAX_JOBS),
            source=source,
        )


def load_sweep(path: str | Path) -> SweepSpec:
    """Read a :class:`SweepSpec` from a JSON or YAML file (YAML by ``.yaml``/``.yml``).

    Errors name the file (and the line of a syntax error).

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "s.json")
    >>> _ = open(p, "w").write('{"grid": {"seed": [0, 1, 2]}, "regimes": ["shared"]}')
    >>> load_sweep(p).n_jobs
    3
    >>> _ = open(p, "w").write('{"grid": {"seeds": [0, 1]}}')
    >>> load_sweep(p)
    Traceback (most recent call last):
    ...
    margin.core.prices.InputError: ...s.json: grid: unknown field 'seeds'
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: sweep config file not found")
    data: Any = parse_structured(p.read_text(encoding="utf-8"), p)
    return SweepSpec.from_dict({} if data is None else data, str(p))


# --------------------------------------------------------------------------- the worker


def _run_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one job (module-level and plain-dict in, plain-dict out: spawn/Ray safe)."""
    from margin.economy.engine import run_regime
    from margin.economy.stream import draw_stream

    t0 = time.perf_counter()
    cfg = EconomyConfig.from_dict(payload["config"])
    regime = parse_regime(payload["regime"])
    res = run_regime(cfg, draw_stream(cfg), regime, regret=bool(payload["regret"]))
    row: dict[str, Any] = {"job": payload["job"], "point": payload["point"]}
    row.update(payload["params"])
    row["seed"] = cfg.seed
    row["regime"] = payload["regime"]
    for layer, rep in (("total", res.total), *res.layers.items()):
        for m in METRICS:
            row[f"{layer}_{m}"] = float(getattr(rep, m))
    row["success_rate"] = float(res.success_rate)
    row["calls"] = int(res.calls)
    row["rejected_background"] = int(res.rejected_background)
    row["wall_s"] = time.perf_counter() - t0
    return row


# --------------------------------------------------------------------------- backends


class SweepBackend(Protocol):
    """Runs the worker on every payload; returns the rows in payload order."""

    def map(
        self, payloads: Sequence[dict[str, Any]], workers: int | None, progress: Progress | None
    ) -> list[dict[str, Any]]: ...


def _default_workers(n_jobs: int, workers: int | None) -> int:
    if workers is None:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            workers = os.cpu_count() or 1
    return max(1, min(workers, n_jobs))


class SerialBackend:
    """All jobs in this process, one after the other (debugging, tiny grids)."""

    def map(
        self, payloads: Sequence[dict[str, Any]], workers: int | None, progress: Progress | None
    ) -> list[dict[str, Any]]:
        rows = []
        for i, p in enumerate(payloads):
            rows.append(_run_job(p))
            if progress is not None:
                progress(i + 1, len(payloads))
        return rows


class ProcessBackend:
    """A local :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start
    method (fresh interpreters: safe beside threads such as a progress bar's)."""

    def map(
        self, payloads: Sequence[dict[str, Any]], workers: int | None, progress: Progress | None
    ) -> list[dict[str, Any]]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        n = len(payloads)
        rows: list[dict[str, Any] | None] = [None] * n
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(_default_workers(n, workers), mp_context=ctx) as pool:
            try:
                futures = {pool.submit(_run_job, p): i for i, p in enumerate(payloads)}
                pending = set(futures)
                done_count = 0
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        rows[futures[f]] = f.result()
                        done_count += 1
                        if progress is not None:
                            progress(done_count, n)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return [r for r in rows if r is not None]


class RayBackend:
    """Ray tasks running the same worker.

    Starts a local Ray instance (``num_cpus=workers``, no dashboard, worker logs kept
    off the driver) unless Ray is already initialized or ``RAY_ADDRESS`` names a
    cluster (``RAY_ADDRESS=ray://head:10001`` or ``auto``; every node then needs
    ``margin`` installed); shuts down only an instance it started itself.
    """

    def map(
        self, payloads: Sequence[dict[str, Any]], workers: int | None, progress: Progress | None
    ) -> list[dict[str, Any]]:
        import logging

        try:
            import ray
        except ImportError:
            raise InputError(
                "backend 'ray': Ray is not installed; install margin[ray] "
                "(pip install 'margin[ray]') or use --backend process"
            ) from None
        n = len(payloads)
        started = False
        if not ray.is_initialized():
            if os.environ.get("RAY_ADDRESS"):
                ray.init(log_to_driver=False, logging_level=logging.WARNING)
            else:
                ray.init(
                    num_cpus=_default_workers(n, workers),
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
            started = True
        try:
            remote = ray.remote(num_cpus=1)(_run_job)
            refs = [remote.remote(p) for p in payloads]
            pending = list(refs)
            while pending:
                _, pending = ray.wait(pending, num_returns=1)
                if progress is not None:
                    progress(n - len(pending), n)
            return [dict(r) for r in ray.get(refs)]
        finally:
            if started:
                ray.shutdown()


#: Sweep backends by name (``--backend``).
BACKENDS: dict[str, SweepBackend] = {
    "serial": SerialBackend(),
    "process": ProcessBackend(),
    "ray": RayBackend(),
}


# --------------------------------------------------------------------------- the sweep


def _calibrated(spec: SweepSpec, jobs: list[SweepJob]) -> list[SweepJob]:
    """Recalibrate each distinct ``data_dir`` once, here, instead of once per job."""
    from dataclasses import replace

    from margin.economy.config import calibrate_from_data

    cache: dict[str, EconomyConfig] = {}
    out = []
    for j in jobs:
        cfg = j.config
        if cfg.data_dir is not None:
            key = json.dumps(cfg.as_dict(), sort_keys=True)
            if key not in cache:
                cache[key] = replace(calibrate_from_data(cfg, cfg.data_dir), data_dir=None)
            cfg = cache[key]
        out.append(replace(j, config=cfg))
    return out


def run_sweep(
    spec: SweepSpec | Mapping[str, Any] | str | Path,
    *,
    backend: str = "process",
    workers: int | None = None,
    progress: Progress | None = None,
) -> pa.Table:
    """Run every (grid point × regime) of ``spec`` on ``backend``; one row per job.

    Parameters
    ----------
    spec : SweepSpec, mapping or path
        The sweep (a mapping goes through :meth:`SweepSpec.from_dict`, a path through
        :func:`load_sweep`).
    backend : {"process", "ray", "serial"}
        See :data:`BACKENDS`.
    workers : int, optional
        Parallel workers (default: the CPUs available, at most one per job).
    progress : callable, optional
        ``progress(done, total)`` after each finished job.

    Returns
    -------
    pyarrow.Table
        Rows in job order with the columns of the module docstring; the spec is kept as
        JSON in the schema metadata under ``b"margin.sweep"``.

    Examples
    --------
    >>> t = run_sweep({"base": {"n_coding": 4, "horizon_s": 60.0, "interval_s": 60.0,
    ...     "chat_rate": 0.1, "long_rate": 0.0}, "grid": {"seed": [0, 1]},
    ...     "regimes": ["siloed"], "regret": False}, backend="serial")
    >>> t.num_rows, t.column_names[:4]
    (2, ['job', 'point', 'seed', 'regime'])
    >>> bool(abs(sum(t[f"{x}_welfare"][0].as_py() for x in ("routing", "agent",
    ...     "serving", "capital")) - t["total_welfare"][0].as_py()) < 1e-6)
    True
    """
    import pyarrow as pa

    if isinstance(spec, str | Path):
        spec = load_sweep(spec)
    elif not isinstance(spec, SweepSpec):
        spec = SweepSpec.from_dict(spec)
    if backend not in BACKENDS:
        raise InputError(f"sweep: unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise InputError(f"sweep: workers must be >= 1, got {workers}")
    jobs = _calibrated(spec, spec.jobs())
    rows = BACKENDS[backend].map([j.payload() for j in jobs], workers, progress)
    rows.sort(key=lambda r: int(r["job"]))
    table = pa.Table.from_pylist(rows)
    meta = {b"margin.sweep": json.dumps(spec.as_dict()).encode()}
    return table.replace_schema_metadata(meta)


def summarize_sweep(table: pa.Table) -> dict[str, Any]:
    """Means of ``total_welfare``: by regime, by the first non-seed axis and regime, and the
    shared − siloed gain per seed (paired on grid points; empty unless both ran).

    Returns ``{"welfare_by_regime": {regime: mean}, "first_axis": name | None,
    "welfare_by_axis": [{"value", "regime", "welfare"}], "gain_by_seed": [{"seed",
    "gain", "points", "shared_wins"}]}``.

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"job": [0, 1, 2, 3], "point": [0, 0, 1, 1], "seed": [0, 0, 1, 1],
    ...     "regime": ["siloed", "shared"] * 2, "total_welfare": [1.0, 3.0, 2.0, 1.5]})
    >>> s = summarize_sweep(t)
    >>> s["welfare_by_regime"], [g["gain"] for g in s["gain_by_seed"]]
    ({'siloed': 1.5, 'shared': 2.25}, [2.0, -0.5])
    """
    meta = table.schema.metadata or {}
    axes: list[str] = []
    if b"margin.sweep" in meta:
        axes = list(json.loads(meta[b"margin.sweep"])["grid"])
    w = table["total_welfare"].to_pylist()
    reg = table["regime"].to_pylist()
    regimes = list(dict.fromkeys(reg))

    def mean(xs: list[float]) -> float:
        return float(sum(xs) / len(xs))

    by_regime = {r: mean([x for x, g in zip(w, reg, strict=True) if g == r]) for r in regimes}
    first = next((a for a in axes if a != "seed"), None)
    by_axis: list[dict[str, Any]] = []
    if first is not None:
        vals = table[first].to_pylist()
        for v in dict.fromkeys(vals):
            for r in regimes:
                sel = [x for x, a, g in zip(w, vals, reg, strict=True) if a == v and g == r]
                by_axis.append({"value": v, "regime": r, "welfare": mean(sel)})
    gains: list[dict[str, Any]] = []
    if "siloed" in regimes and "shared" in regimes:
        pts = table["point"].to_pylist()
        seeds = table["seed"].to_pylist()
        per_point: dict[int, dict[str, float]] = {}
        seed_of: dict[int, int] = {}
        for x, g, p, s in zip(w, reg, pts, seeds, strict=True):
            per_point.setdefault(p, {})[g] = x
            seed_of[p] = s
        by_seed: dict[int, list[float]] = {}
        for p, d in per_point.items():
            by_seed.setdefault(seed_of[p], []).append(d["shared"] - d["siloed"])
        gains = [
            {"seed": s, "gain": mean(g), "points": len(g), "shared_wins": sum(x > 0 for x in g)}
            for s, g in sorted(by_seed.items())
        ]
    return {
        "welfare_by_regime": by_regime,
        "first_axis": first,
        "welfare_by_axis": by_axis,
        "gain_by_seed": gains,
    }
