"""Routing data: per-prompt quality and cost of several models, and the loaders that read it.

A :class:`RoutingDataset` is the ex-post table that Eq. 4 of the paper is learned from and
judged against: ``n`` prompts × ``m`` models with realized quality ``Q[k, m]`` (1 = correct)
and realized cost ``C[k, m]`` in USD, optionally latency, a per-row task value ``V`` and a
risk class.

Formats read here
-----------------
* **RouterBench** (arXiv 2403.12031; data withmartian/routerbench, rows as in the RouterDC
  copy): ``sample_id, prompt, eval_name``, then per model a 0/1 quality column named after
  the model, ``<model>|model_response`` and ``<model>|total_cost`` (USD). Rows with a
  missing or unreadable quality are dropped and counted (:attr:`LoadReport.dropped`).
* **Generic** (this library's documented format), a CSV with a header::

      sample_id,prompt,task,value,risk_class,<model>|quality,<model>|cost,<model>|latency,...

  ``prompt`` and, per model, ``|quality`` and ``|cost`` are required; ``sample_id``
  (default: the line number), ``task``, ``value`` (USD), ``risk_class`` and
  ``<model>|latency`` (seconds) are optional. A RouterBench table may also carry the
  optional ``value`` and ``risk_class`` columns.
* **RouteLLM** (arXiv 2406.18665) MMLU and GSM8K correctness tables of two models; cost is
  computed from token counts and a price table (:data:`ROUTELLM_PRICES`).
* **RouteLLM MT-Bench**: GPT-4 judge scores (1–10) of both models for the 80 questions × 2
  turns; quality = score/10, cost from the answers' estimated token counts.
* **RouterArena** cached results (one JSONL per model, joined on ``global_index``).
"""

from __future__ import annotations

import ast
import csv
import json
import math
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from margin.core.prices import InputError

__all__ = [
    "DATA_FORMATS",
    "ROUTELLM_PRICES",
    "LoadReport",
    "RoutingDataset",
    "concat_datasets",
    "detect_format",
    "estimate_tokens",
    "load_any",
    "load_generic",
    "load_routellm_gsm8k",
    "load_routellm_mmlu",
    "load_routellm_mt_bench",
    "load_routerarena",
    "load_routerbench",
    "load_table",
    "train_test_split",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

#: USD per million (input, output) tokens for the two RouteLLM models, as published in
#: RouterArena's price table (RouteWorks/RouterArena ``model_cost/cost.json``:
#: ``gpt-4-1106-preview`` 10/30, ``mistralai/mixtral-8x7b-instruct`` 0.6/0.6). They match
#: the per-prompt costs of the same two models in RouterBench (≈ 4 chars per token).
ROUTELLM_PRICES: Mapping[str, tuple[float, float]] = {
    "gpt-4-1106-preview": (10.0, 30.0),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": (0.6, 0.6),
}


def estimate_tokens(text: str) -> int:
    """Token count of ``text`` without a tokenizer: ⌈len/4⌉ (OpenAI's rule of thumb), ≥ 1.

    Examples
    --------
    >>> estimate_tokens("abcdefgh"), estimate_tokens("")
    (2, 1)
    """
    return max(1, math.ceil(len(text) / 4))


def _frozen(a: npt.ArrayLike, dtype: type = np.float64) -> Any:
    out: npt.NDArray[Any] = np.array(a, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class LoadReport:
    """What a loader read: usable rows, dropped rows and why.

    Examples
    --------
    >>> LoadReport("x.csv", rows=3, dropped=1, reasons={"missing quality": 1}).summary()
    'x.csv: 3 rows kept, 1 dropped (missing quality: 1)'
    """

    source: str
    rows: int
    dropped: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        why = ", ".join(f"{k}: {v}" for k, v in sorted(self.reasons.items()))
        tail = f" ({why})" if why else ""
        return f"{self.source}: {self.rows} rows kept, {self.dropped} dropped{tail}"


@dataclass(frozen=True, eq=False)
class RoutingDataset:
    """n prompts × m models: realized quality and cost (and optionally latency, V, risk class).

    Parameters
    ----------
    sample_ids, prompts, tasks : tuple of str, length n
    models : tuple of str, length m
    quality : ndarray, shape (n, m)
        Realized ΔQ per prompt and model (1 = correct; NaN when unknown, e.g. an unlabeled
        table to route).
    cost : ndarray, shape (n, m)
        Realized ΔC in USD (NaN when unknown).
    latency : ndarray, shape (n, m), optional
        Realized ΔL in seconds.
    value : ndarray, shape (n,), optional
        Per-row task value V in USD; NaN where a row leaves it to the caller
        (see :meth:`values`).
    risk_class : tuple of str, optional
        Per-row risk class (consequence looked up by the router).
    responses : tuple of tuple of str, optional
        Each model's answer text per row (used by cascade scorers, FrugalGPT).
    reports : tuple of LoadReport

    Examples
    --------
    >>> d = RoutingDataset.from_arrays(["a", "b"], ["m1", "m2"], [[1, 0], [0, 1]],
    ...                                [[1.0, 2.0], [1.0, 2.0]])
    >>> d.n, d.m, d.quality.tolist()
    (2, 2, [[1.0, 0.0], [0.0, 1.0]])
    """

    sample_ids: tuple[str, ...]
    prompts: tuple[str, ...]
    tasks: tuple[str, ...]
    models: tuple[str, ...]
    quality: FloatArray
    cost: FloatArray
    latency: FloatArray | None = None
    value: FloatArray | None = None
    risk_class: tuple[str, ...] | None = None
    responses: tuple[tuple[str, ...], ...] | None = None
    reports: tuple[LoadReport, ...] = ()

    def __post_init__(self) -> None:
        n, m = len(self.prompts), len(self.models)
        if len(set(self.models)) != m:
            raise InputError(f"RoutingDataset: duplicate model names in {list(self.models)}")
        if len(self.sample_ids) != n or len(self.tasks) != n:
            raise InputError("RoutingDataset: sample_ids, prompts and tasks differ in length")
        for name in ("quality", "cost", "latency"):
            a = getattr(self, name)
            if a is None:
                continue
            a = _frozen(a)
            if a.shape != (n, m):
                raise InputError(f"RoutingDataset: field '{name}' must have shape {(n, m)}")
            object.__setattr__(self, name, a)
        if self.value is not None:
            v = _frozen(self.value)
            if v.shape != (n,):
                raise InputError(f"RoutingDataset: field 'value' must have shape ({n},)")
            if np.any(np.isinf(v)) or np.any(v < 0):
                raise InputError("RoutingDataset: field 'value' must be finite and >= 0")
            object.__setattr__(self, "value", v)
        if self.risk_class is not None and len(self.risk_class) != n:
            raise InputError(f"RoutingDataset: field 'risk_class' must have length {n}")
        if self.responses is not None and (
            len(self.responses) != n or any(len(r) != m for r in self.responses)
        ):
            raise InputError(f"RoutingDataset: field 'responses' must be {n} rows of {m}")

    @classmethod
    def from_arrays(
        cls,
        prompts: Sequence[str],
        models: Sequence[str],
        quality: npt.ArrayLike,
        cost: npt.ArrayLike,
        *,
        tasks: Sequence[str] | None = None,
        sample_ids: Sequence[str] | None = None,
        latency: npt.ArrayLike | None = None,
        value: npt.ArrayLike | None = None,
        risk_class: Sequence[str] | None = None,
    ) -> RoutingDataset:
        """Build from plain sequences (sample ids default to ``"0", "1", ...``)."""
        n = len(prompts)
        return cls(
            sample_ids=tuple(sample_ids) if sample_ids is not None else tuple(map(str, range(n))),
            prompts=tuple(prompts),
            tasks=tuple(tasks) if tasks is not None else ("",) * n,
            models=tuple(models),
            quality=np.asarray(quality, dtype=np.float64),
            cost=np.asarray(cost, dtype=np.float64),
            latency=None if latency is None else np.asarray(latency, dtype=np.float64),
            value=None if value is None else np.asarray(value, dtype=np.float64),
            risk_class=tuple(risk_class) if risk_class is not None else None,
        )

    @property
    def n(self) -> int:
        return len(self.prompts)

    @property
    def m(self) -> int:
        return len(self.models)

    @property
    def labeled(self) -> bool:
        """True when every quality and cost cell is known."""
        return bool(np.all(np.isfinite(self.quality)) and np.all(np.isfinite(self.cost)))

    def values(self, default: float) -> FloatArray:
        """Per-row V: the row's own ``value`` where given, ``default`` elsewhere."""
        if self.value is None:
            return np.full(self.n, float(default))
        out: FloatArray = np.where(np.isnan(self.value), float(default), self.value)
        return out

    @property
    def dropped(self) -> int:
        return sum(r.dropped for r in self.reports)

    def subset(self, rows: npt.ArrayLike) -> RoutingDataset:
        """The rows ``rows`` (indices or a boolean mask), in that order."""
        idx = np.arange(self.n)[np.asarray(rows)]
        take = [int(i) for i in idx]
        return RoutingDataset(
            sample_ids=tuple(self.sample_ids[i] for i in take),
            prompts=tuple(self.prompts[i] for i in take),
            tasks=tuple(self.tasks[i] for i in take),
            models=self.models,
            quality=self.quality[idx],
            cost=self.cost[idx],
            latency=None if self.latency is None else self.latency[idx],
            value=None if self.value is None else self.value[idx],
            risk_class=None if self.risk_class is None else tuple(self.risk_class[i] for i in take),
            responses=None if self.responses is None else tuple(self.responses[i] for i in take),
            reports=self.reports,
        )

    def select_models(self, names: Sequence[str]) -> RoutingDataset:
        """The same rows restricted to (and reordered as) ``names``."""
        missing = [x for x in names if x not in self.models]
        if missing:
            raise InputError(f"RoutingDataset: unknown model(s) {missing}")
        cols = [self.models.index(x) for x in names]
        return RoutingDataset(
            sample_ids=self.sample_ids,
            prompts=self.prompts,
            tasks=self.tasks,
            models=tuple(names),
            quality=self.quality[:, cols],
            cost=self.cost[:, cols],
            latency=None if self.latency is None else self.latency[:, cols],
            value=self.value,
            risk_class=self.risk_class,
            responses=None
            if self.responses is None
            else tuple(tuple(r[j] for j in cols) for r in self.responses),
            reports=self.reports,
        )


def concat_datasets(parts: Sequence[RoutingDataset]) -> RoutingDataset:
    """Stack datasets row-wise; they must list the same models (any order).

    Examples
    --------
    >>> a = RoutingDataset.from_arrays(["x"], ["m1", "m2"], [[1, 0]], [[1, 2]])
    >>> b = RoutingDataset.from_arrays(["y"], ["m2", "m1"], [[1, 0]], [[2, 1]])
    >>> concat_datasets([a, b]).quality.tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    if not parts:
        raise InputError("concat_datasets: no dataset given")
    models = parts[0].models
    fixed = []
    for p in parts:
        if set(p.models) != set(models):
            raise InputError(
                f"concat_datasets: model sets differ: {sorted(models)} vs {sorted(p.models)}"
            )
        fixed.append(p.select_models(models) if p.models != models else p)

    def cat(name: str) -> FloatArray | None:
        arrs = [getattr(p, name) for p in fixed]
        if any(a is None for a in arrs):
            return None
        return np.concatenate(arrs)

    risk: tuple[str, ...] | None = None
    if any(p.risk_class is not None for p in fixed):
        risk = tuple(r for p in fixed for r in (p.risk_class or ("default",) * p.n))
    return RoutingDataset(
        sample_ids=tuple(s for p in fixed for s in p.sample_ids),
        prompts=tuple(s for p in fixed for s in p.prompts),
        tasks=tuple(s for p in fixed for s in p.tasks),
        models=models,
        quality=np.concatenate([p.quality for p in fixed]),
        cost=np.concatenate([p.cost for p in fixed]),
        latency=cat("latency"),
        value=cat("value"),
        risk_class=risk,
        responses=tuple(r for p in fixed for r in (p.responses or ()))
        if all(p.responses is not None for p in fixed)
        else None,
        reports=tuple(r for p in fixed for r in p.reports),
    )


def train_test_split(
    data: RoutingDataset, test_size: float = 0.3, seed: int = 0
) -> tuple[RoutingDataset, RoutingDataset]:
    """A stratified (by task) random split: ``round(test_size·n_task)`` rows of each task
    go to test, drawn with ``numpy.random.default_rng(seed)``.

    Examples
    --------
    >>> d = RoutingDataset.from_arrays(list("abcdefghij"), ["m"], [[1]] * 10, [[1]] * 10,
    ...                                tasks=["t"] * 5 + ["u"] * 5)
    >>> tr, te = train_test_split(d, 0.4, seed=1)
    >>> tr.n, te.n, sorted(te.tasks)
    (6, 4, ['t', 't', 'u', 'u'])
    """
    if not 0.0 < test_size < 1.0:
        raise InputError(f"train_test_split: 'test_size' must be in (0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    tasks = np.asarray(data.tasks, dtype=object)
    test = np.zeros(data.n, dtype=bool)
    for t in sorted(set(data.tasks)):
        idx = np.flatnonzero(tasks == t)
        k = round(test_size * idx.size)
        test[rng.permutation(idx)[:k]] = True
    return data.subset(np.flatnonzero(~test)), data.subset(np.flatnonzero(test))


# --------------------------------------------------------------------------- CSV loaders


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            try:
                header = next(reader)
            except StopIteration:
                raise InputError(f"{path}:1: empty file, expected a header row") from None
            rows = []
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                rows.append((reader.line_num, row))
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason})") from None
    except csv.Error as e:
        raise InputError(f"{path}: malformed CSV ({e})") from None
    return header, rows


def _cell_float(path: Path, line: int, col: str, text: str) -> float:
    """A number, NaN for an empty cell, an InputError naming file, line and column otherwise."""
    s = text.strip()
    if s == "":
        return math.nan
    low = s.lower()
    if low == "true":
        return 1.0
    if low == "false":
        return 0.0
    try:
        x = float(s)
    except ValueError:
        raise InputError(f"{path}:{line}: column '{col}' is not a number: {s[:40]!r}") from None
    if math.isinf(x):
        raise InputError(f"{path}:{line}: column '{col}' is infinite")
    return x


def _table(
    path: Path,
    header: list[str],
    rows: list[tuple[int, list[str]]],
    models: list[str],
    qcol: Mapping[str, str | None],
    ccol: Mapping[str, str | None],
    lcol: Mapping[str, str | None],
    task_col: str | None,
    rcol: Mapping[str, str | None] | None = None,
) -> RoutingDataset:
    pos = {h: i for i, h in enumerate(header)}
    if "prompt" not in pos:
        raise InputError(f"{path}:1: missing column 'prompt'")
    id_col = "sample_id" if "sample_id" in pos else None
    ids, prompts, tasks, risk = [], [], [], []
    q_rows, c_rows, l_rows, v_rows = [], [], [], []
    resp_rows: list[tuple[str, ...]] = []
    has_resp = rcol is not None and all(rcol[mo] is not None for mo in models)
    reasons: dict[str, int] = {}
    has_lat = any(lcol[mo] is not None for mo in models)
    has_q = any(qcol[mo] is not None for mo in models)
    has_c = any(ccol[mo] is not None for mo in models)
    for line, row in rows:
        if len(row) != len(header):
            raise InputError(
                f"{path}:{line}: expected {len(header)} fields as in the header, got {len(row)}"
            )

        def get(col: str | None, row: list[str] = row) -> str:
            return row[pos[col]] if col is not None else ""

        q = [
            _cell_float(path, line, c, get(c)) if c else math.nan for c in (qcol[x] for x in models)
        ]
        c_ = [
            _cell_float(path, line, c, get(c)) if c else math.nan for c in (ccol[x] for x in models)
        ]
        lat = [
            _cell_float(path, line, c, get(c)) if c else math.nan for c in (lcol[x] for x in models)
        ]
        prompt = get("prompt")
        if not prompt.strip():
            reasons["empty prompt"] = reasons.get("empty prompt", 0) + 1
            continue
        if has_q and any(math.isnan(x) for x in q):
            reasons["missing quality"] = reasons.get("missing quality", 0) + 1
            continue
        if has_c and any(math.isnan(x) for x in c_):
            reasons["missing cost"] = reasons.get("missing cost", 0) + 1
            continue
        for name, vals in (("cost", c_), ("latency", lat)):
            if any(x < 0 for x in vals if not math.isnan(x)):
                raise InputError(f"{path}:{line}: a '{name}' value is negative")
        value = math.nan
        if "value" in pos and get("value").strip():
            value = _cell_float(path, line, "value", get("value"))
            if value < 0:
                raise InputError(f"{path}:{line}: column 'value' must be >= 0, got {value}")
        ids.append(get(id_col).strip() if id_col else str(line))
        prompts.append(prompt)
        tasks.append(get(task_col).strip() if task_col else "")
        risk.append(get("risk_class").strip() or "default" if "risk_class" in pos else "default")
        q_rows.append(q)
        c_rows.append(c_)
        l_rows.append(lat)
        v_rows.append(value)
        if has_resp and rcol is not None:
            resp_rows.append(tuple(get(rcol[mo]) for mo in models))
    dropped = sum(reasons.values())
    report = LoadReport(str(path), rows=len(prompts), dropped=dropped, reasons=reasons)
    n, m = len(prompts), len(models)
    return RoutingDataset(
        sample_ids=tuple(ids),
        prompts=tuple(prompts),
        tasks=tuple(tasks),
        models=tuple(models),
        quality=np.asarray(q_rows, dtype=np.float64).reshape(n, m),
        cost=np.asarray(c_rows, dtype=np.float64).reshape(n, m),
        latency=np.asarray(l_rows, dtype=np.float64).reshape(n, m) if has_lat else None,
        value=np.asarray(v_rows, dtype=np.float64) if "value" in pos else None,
        risk_class=tuple(risk) if "risk_class" in pos else None,
        responses=tuple(resp_rows) if has_resp else None,
        reports=(report,),
    )


_RB_META = {
    "",
    "sample_id",
    "prompt",
    "eval_name",
    "oracle_model_to_route_to",
    "value",
    "risk_class",
    "task",
}


def load_routerbench(path: str | Path, *, require_models: bool = True) -> RoutingDataset:
    """Read a RouterBench-format CSV (see the module docstring).

    Models are the columns ``<model>|total_cost`` or, in a table without costs, the bare
    quality columns. Rows whose quality (or cost) is missing for some model are dropped and
    counted in ``dataset.reports[0]``; a cell that is not a number is an :class:`InputError`
    naming the file, line and column. With ``require_models=False`` a table of prompts only
    (no model columns) is accepted, e.g. to route new prompts.

    Examples
    --------
    >>> import tempfile, os
    >>> text = "sample_id,prompt,eval_name,a,a|total_cost,b,b|total_cost\\n" \\
    ...        "1,hi,t,1.0,0.1,0.0,0.2\\n2,yo,t,,0.1,1.0,0.2\\n"
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = os.path.join(tmp, "x.csv")
    ...     _ = open(p, "w").write(text)
    ...     d = load_routerbench(p)
    >>> d.models, d.n, d.reports[0].reasons
    (('a', 'b'), 1, {'missing quality': 1})
    """
    p = Path(path)
    header, rows = _read_csv(p)
    cost_models = [h[: -len("|total_cost")] for h in header if h.endswith("|total_cost")]
    bare = [h for h in header if "|" not in h and h not in _RB_META and not h.startswith("Unnamed")]
    models = cost_models or bare
    if not models and require_models:
        raise InputError(f"{p}:1: no model columns ('<model>|total_cost' or '<model>')")
    qcol = {mo: (mo if mo in header else None) for mo in models}
    if (
        cost_models
        and any(qcol[mo] is None for mo in models)
        and any(qcol[mo] is not None for mo in models)
    ):
        lacking = [mo for mo in models if qcol[mo] is None]
        raise InputError(f"{p}:1: missing quality column for model(s) {lacking}")
    ccol = {mo: (f"{mo}|total_cost" if f"{mo}|total_cost" in header else None) for mo in models}
    lcol = {mo: (f"{mo}|latency" if f"{mo}|latency" in header else None) for mo in models}
    task = "eval_name" if "eval_name" in header else ("task" if "task" in header else None)
    rcol = {
        mo: (f"{mo}|model_response" if f"{mo}|model_response" in header else None) for mo in models
    }
    return _table(p, header, rows, models, qcol, ccol, lcol, task, rcol)


def load_generic(path: str | Path) -> RoutingDataset:
    """Read the generic format: ``prompt`` and per model ``<model>|quality``,
    ``<model>|cost`` (optional ``sample_id``, ``task``, ``value``, ``risk_class``,
    ``<model>|latency``).

    Examples
    --------
    >>> import tempfile, os
    >>> text = "prompt,value,a|quality,a|cost,b|quality,b|cost\\nhi,2.5,1,0.1,0,0.3\\n"
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = os.path.join(tmp, "g.csv")
    ...     _ = open(p, "w").write(text)
    ...     d = load_generic(p)
    >>> d.models, d.value.tolist(), d.cost.tolist()
    (('a', 'b'), [2.5], [[0.1, 0.3]])
    """
    p = Path(path)
    header, rows = _read_csv(p)
    models = [h[: -len("|quality")] for h in header if h.endswith("|quality")]
    if not models:
        raise InputError(f"{p}:1: no '<model>|quality' columns")
    lacking = [mo for mo in models if f"{mo}|cost" not in header]
    if lacking:
        raise InputError(f"{p}:1: missing column '{lacking[0]}|cost'")
    qcol = {mo: f"{mo}|quality" for mo in models}
    ccol = {mo: f"{mo}|cost" for mo in models}
    lcol = {mo: (f"{mo}|latency" if f"{mo}|latency" in header else None) for mo in models}
    return _table(
        p, header, rows, models, dict(qcol), dict(ccol), lcol, "task" if "task" in header else None
    )


def load_table(path: str | Path, *, require_models: bool = True) -> RoutingDataset:
    """Read a RouterBench-format or generic CSV, whichever its header is.

    A header with ``<model>|quality`` columns is the generic format; anything else is read
    as RouterBench.
    """
    p = Path(path)
    header, _ = _read_csv(p)
    if any(h.endswith("|quality") for h in header):
        return load_generic(p)
    return load_routerbench(p, require_models=require_models)


# --------------------------------------------------------------------------- RouteLLM


def _token_cost(prices: tuple[float, float], tokens_in: int, tokens_out: int) -> float:
    return (prices[0] * tokens_in + prices[1] * tokens_out) / 1e6


def _contaminated(path: Path | None) -> set[str]:
    if path is None:
        return set()
    out: set[str] = set()
    for line_no, rec in _jsonl(path):
        if not isinstance(rec, dict) or "eval_prompt" not in rec:
            raise InputError(f"{path}:{line_no}: missing field 'eval_prompt'")
        out.add(str(rec["eval_prompt"]).strip())
    return out


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed JSON)`` for each non-blank line; bad JSON names the line."""
    for line_no, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{path}:{line_no}: not valid JSON") from None


def _lines(path: Path) -> Iterable[str]:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    with path.open(encoding="utf-8") as fh:
        yield from fh


def _from_rows(
    ids: Sequence[str],
    prompts: Sequence[str],
    tasks: Sequence[str],
    models: Sequence[str],
    q_rows: Sequence[Sequence[float]],
    c_rows: Sequence[Sequence[float]],
    reports: Sequence[LoadReport],
) -> RoutingDataset:
    n = len(ids)
    return RoutingDataset(
        sample_ids=tuple(ids),
        prompts=tuple(prompts),
        tasks=tuple(tasks),
        models=tuple(models),
        quality=np.asarray(q_rows, dtype=np.float64).reshape(n, len(models)),
        cost=np.asarray(c_rows, dtype=np.float64).reshape(n, len(models)),
        reports=tuple(reports),
    )


def _routellm_table(
    files: Sequence[Path],
    prices: Mapping[str, tuple[float, float]],
    contaminated: set[str],
    output_tokens: Mapping[str, str | int],
) -> RoutingDataset:
    models: list[str] | None = None
    ids, prompts, tasks, q_rows, c_rows = [], [], [], [], []
    reports = []
    for f in files:
        header, rows = _read_csv(f)
        these = [h for h in header if h != "prompt" and not h.endswith("_response")]
        if models is None:
            models = these
            for mo in models:
                if mo not in prices:
                    raise InputError(f"{f}:1: no price for model '{mo}' in the price table")
        elif these != models:
            raise InputError(f"{f}:1: models {these} differ from {models}")
        pos = {h: i for i, h in enumerate(header)}
        if "prompt" not in pos:
            raise InputError(f"{f}:1: missing column 'prompt'")
        task = f.stem.removeprefix("mmlu_") if f.stem.startswith("mmlu_") else f.stem
        kept = 0
        reasons: dict[str, int] = {}
        for line, row in rows:
            if len(row) != len(header):
                raise InputError(f"{f}:{line}: expected {len(header)} fields, got {len(row)}")
            prompt = row[pos["prompt"]]
            if prompt.strip() in contaminated:
                reasons["contaminated"] = reasons.get("contaminated", 0) + 1
                continue
            q = [_cell_float(f, line, mo, row[pos[mo]]) for mo in models]
            if any(math.isnan(x) for x in q):
                reasons["missing quality"] = reasons.get("missing quality", 0) + 1
                continue
            t_in = estimate_tokens(prompt)
            costs = []
            for mo in models:
                out = output_tokens[mo]
                t_out = estimate_tokens(row[pos[out]]) if isinstance(out, str) else int(out)
                costs.append(_token_cost(prices[mo], t_in, t_out))
            ids.append(f"{task}:{line}")
            prompts.append(prompt)
            tasks.append(task)
            q_rows.append(q)
            c_rows.append(costs)
            kept += 1
        reports.append(LoadReport(str(f), kept, sum(reasons.values()), reasons))
    assert models is not None
    return _from_rows(ids, prompts, tasks, models, q_rows, c_rows, reports)


def load_routellm_mmlu(
    directory: str | Path,
    *,
    contaminated: str | Path | None = None,
    prices: Mapping[str, tuple[float, float]] = ROUTELLM_PRICES,
) -> RoutingDataset:
    """RouteLLM's MMLU correctness tables (``mmlu_responses/mmlu_*.csv``) as one dataset.

    Cost per prompt = (p_in·tokens_in + p_out·tokens_out)/10⁶ with tokens_in from
    :func:`estimate_tokens` of the prompt and one output token (the answer letter); prices
    from :data:`ROUTELLM_PRICES`. Prompts listed in ``contaminated`` (RouteLLM's
    ``mmlu_contaminated_prompts.jsonl``, field ``eval_prompt``) are dropped and counted.
    """
    d = Path(directory)
    files = sorted(d.glob("mmlu_*.csv")) if d.is_dir() else [d]
    if not files:
        raise InputError(f"{d}: no mmlu_*.csv files")
    header, _ = _read_csv(files[0])
    models = [h for h in header if h != "prompt"]
    return _routellm_table(
        files,
        prices,
        _contaminated(Path(contaminated) if contaminated else None),
        {mo: 1 for mo in models},
    )


def load_routellm_gsm8k(
    path: str | Path,
    *,
    contaminated: str | Path | None = None,
    prices: Mapping[str, tuple[float, float]] = ROUTELLM_PRICES,
) -> RoutingDataset:
    """RouteLLM's GSM8K table (``gsm8k_responses.csv``): correctness of both models and their
    responses; output tokens are estimated from each model's own response."""
    p = Path(path)
    header, _ = _read_csv(p)
    models = [h for h in header if h != "prompt" and not h.endswith("_response")]
    for mo in models:
        if f"{mo}_response" not in header:
            raise InputError(f"{p}:1: missing column '{mo}_response'")
    return _routellm_table(
        [p],
        prices,
        _contaminated(Path(contaminated) if contaminated else None),
        {mo: f"{mo}_response" for mo in models},
    )


def _mt_bench_answers(judge_prompt: str, turn: int) -> tuple[str, str]:
    """(conversation before the answer, the answer of ``turn``) from a judge prompt.

    Single-turn judge prompts hold ``[The Start of Assistant's Answer]…[The End …]``;
    multi-turn ones hold the conversation as ``### User:`` / ``### Assistant A:`` blocks.
    """
    if turn == 1 and "[The Start of Assistant's Answer]" in judge_prompt:
        answer = judge_prompt.split("[The Start of Assistant's Answer]", 1)[1]
        return "", answer.split("[The End of Assistant's Answer]", 1)[0].strip()
    parts = judge_prompt.split("### Assistant A:")
    answers = [p.split("### User:", 1)[0].split("<|The End of", 1)[0].strip() for p in parts[1:]]
    if len(answers) < turn:
        return "", ""
    return "\n\n".join(answers[: turn - 1]), answers[turn - 1]


def load_routellm_mt_bench(
    directory: str | Path,
    *,
    contaminated: str | Path | None = None,
    prices: Mapping[str, tuple[float, float]] = ROUTELLM_PRICES,
) -> RoutingDataset:
    """RouteLLM's MT-Bench judgements (``mt_bench/question.jsonl`` and ``judgements.jsonl``).

    One row per (question, turn) judged for every model: quality = GPT-4 judge score / 10
    (in [0.1, 1]); the prompt is the user's turns so far; cost per model =
    (p_in·tokens_in + p_out·tokens_out)/10⁶ with tokens_in the estimated tokens of the
    question turns plus that model's earlier answers, tokens_out those of its answer
    (:func:`estimate_tokens`), prices from :data:`ROUTELLM_PRICES`; the task is the question's
    category. Questions whose first turn is listed in ``contaminated`` (``eval_prompt``) and
    (question, turn) pairs not judged for every model are dropped and counted.
    """
    d = Path(directory)
    qpath, jpath = d / "question.jsonl", d / "judgements.jsonl"
    questions: dict[int, tuple[str, list[str]]] = {}
    for line_no, rec in _jsonl(qpath):
        if not isinstance(rec, dict) or not {"question_id", "turns"} <= set(rec):
            raise InputError(f"{qpath}:{line_no}: missing field 'question_id' or 'turns'")
        questions[int(rec["question_id"])] = (
            str(rec.get("category", "mt_bench")),
            [str(t) for t in rec["turns"]],
        )
    judged: dict[tuple[int, int], dict[str, tuple[float, str, str]]] = {}
    models: list[str] = []
    for line_no, rec in _jsonl(jpath):
        for key in ("question_id", "model", "turn", "score", "user_prompt"):
            if not isinstance(rec, dict) or key not in rec:
                raise InputError(f"{jpath}:{line_no}: missing field '{key}'")
        model = str(rec["model"])
        if model not in prices:
            raise InputError(f"{jpath}:{line_no}: no price for model '{model}' in the price table")
        score = rec["score"]
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 10:
            raise InputError(f"{jpath}:{line_no}: field 'score' must be a number in [0, 10]")
        if model not in models:
            models.append(model)
        turn = int(rec["turn"])
        before, answer = _mt_bench_answers(str(rec["user_prompt"]), turn)
        judged.setdefault((int(rec["question_id"]), turn), {})[model] = (
            float(score) / 10.0,
            before,
            answer,
        )
    bad = _contaminated(Path(contaminated) if contaminated else None)
    ids, prompts, tasks, q_rows, c_rows = [], [], [], [], []
    reasons: dict[str, int] = {}
    for (qid, turn), per_model in sorted(judged.items()):
        if qid not in questions:
            raise InputError(f"{jpath}: question_id {qid} is not in {qpath}")
        category, turns = questions[qid]
        if turns and turns[0].strip() in bad:
            reasons["contaminated"] = reasons.get("contaminated", 0) + 1
            continue
        if any(mo not in per_model for mo in models):
            reasons["missing quality"] = reasons.get("missing quality", 0) + 1
            continue
        user = "\n\n".join(turns[:turn])
        costs = []
        for mo in models:
            _, before, answer = per_model[mo]
            t_in = estimate_tokens(user) + (estimate_tokens(before) if before else 0)
            costs.append(_token_cost(prices[mo], t_in, estimate_tokens(answer)))
        ids.append(f"mt_bench:{qid}:{turn}")
        prompts.append(user)
        tasks.append(category)
        q_rows.append([per_model[mo][0] for mo in models])
        c_rows.append(costs)
    report = LoadReport(str(jpath), len(ids), sum(reasons.values()), reasons)
    return _from_rows(ids, prompts, tasks, models, q_rows, c_rows, [report])


# --------------------------------------------------------------------------- RouterArena


def load_routerarena(files: Sequence[str | Path]) -> RoutingDataset:
    """RouterArena cached results: one JSONL per model (``llm_selected``), joined on
    ``global_index``. Quality = ``evaluation_result.score`` (in [0, 1]), cost =
    ``evaluation_result.inference_cost`` (USD). Queries missing for some model or without a
    score are dropped and counted.
    """
    if len(files) < 2:
        raise InputError("load_routerarena: give one JSONL file per model (at least two)")
    per_model: dict[str, dict[str, tuple[str, float, float]]] = {}
    order: list[str] = []
    total_rows = 0
    for f in files:
        p = Path(f)
        model: str | None = None
        table: dict[str, tuple[str, float, float]] = {}
        for line_no, rec in _jsonl(p):
            total_rows += 1
            for key in ("global_index", "question", "llm_selected", "evaluation_result"):
                if key not in rec:
                    raise InputError(f"{p}:{line_no}: missing field '{key}'")
            ev = rec["evaluation_result"]
            if isinstance(ev, str):
                try:
                    ev = ast.literal_eval(ev)
                except (ValueError, SyntaxError):
                    raise InputError(f"{p}:{line_no}: unreadable 'evaluation_result'") from None
            if not isinstance(ev, dict):
                raise InputError(f"{p}:{line_no}: field 'evaluation_result' is not an object")
            model = model or str(rec["llm_selected"])
            score, cost = ev.get("score"), ev.get("inference_cost")
            if not isinstance(score, int | float) or not isinstance(cost, int | float):
                continue
            table[str(rec["global_index"])] = (str(rec["question"]), float(score), float(cost))
        if model is None:
            raise InputError(f"{p}: no records")
        if model in per_model:
            raise InputError(f"{p}: model '{model}' given twice")
        per_model[model] = table
        order.append(model)
    common = set.intersection(*(set(t) for t in per_model.values()))
    keys = sorted(common)
    first = per_model[order[0]]
    q = np.array([[per_model[mo][k][1] for mo in order] for k in keys]).reshape(len(keys), -1)
    c = np.array([[per_model[mo][k][2] for mo in order] for k in keys]).reshape(len(keys), -1)
    union = set().union(*(set(t) for t in per_model.values()))
    dropped = len(union) - len(keys)
    return RoutingDataset(
        sample_ids=tuple(keys),
        prompts=tuple(first[k][0] for k in keys),
        tasks=tuple(k.rsplit("_", 1)[0] for k in keys),
        models=tuple(order),
        quality=q,
        cost=c,
        reports=(
            LoadReport(
                ",".join(str(f) for f in files),
                len(keys),
                dropped,
                {"missing for some model or unscored": dropped} if dropped else {},
            ),
        ),
    )


# --------------------------------------------------------------------------- any format

#: Data formats read by :func:`load_any` (and the CLI's ``--format``); ``auto`` detects one.
DATA_FORMATS: tuple[str, ...] = (
    "auto",
    "routerbench",
    "generic",
    "routellm-mmlu",
    "routellm-gsm8k",
    "routellm-mt-bench",
    "routerarena",
)

_ROUTELLM_FORMATS = ("routellm-mmlu", "routellm-gsm8k", "routellm-mt-bench")


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return next(csv.reader(fh), [])
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason})") from None
    except csv.Error as e:
        raise InputError(f"{path}: malformed CSV ({e})") from None


def _first_json(path: Path) -> Any:
    for _, rec in _jsonl(path):
        return rec
    return None


def _is_routerarena(path: Path) -> bool:
    try:
        rec = _first_json(path)
    except InputError:
        return False
    return isinstance(rec, dict) and {"global_index", "llm_selected"} <= set(rec)


def detect_format(path: str | Path) -> str:
    """The data format of ``path`` (a name of :data:`DATA_FORMATS` other than ``auto``).

    Rules, first match wins:

    * a CSV whose header has ``<model>|quality`` columns → ``generic``;
    * a CSV with ``<model>|total_cost`` columns → ``routerbench``;
    * a CSV of ``prompt`` and bare model columns that are all priced in
      :data:`ROUTELLM_PRICES` (and nothing else) → ``routellm-gsm8k`` when every model
      also has a ``<model>_response`` column, else ``routellm-mmlu``;
    * any other CSV → ``routerbench`` (a table of prompts, maybe with bare 0/1 columns);
    * a folder holding ``question.jsonl`` and ``judgements.jsonl`` → ``routellm-mt-bench``;
      one holding ``mmlu_*.csv`` → ``routellm-mmlu``; one holding
      ``gsm8k_responses.csv`` → ``routellm-gsm8k``; one holding two or more JSONL files of
      RouterArena records (``global_index``, ``llm_selected``) → ``routerarena``.

    Anything else is an :class:`InputError` naming the path.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = os.path.join(tmp, "x.csv")
    ...     _ = open(p, "w").write("prompt,gpt-4-1106-preview\\nhi,1\\n")
    ...     detect_format(p)
    'routellm-mmlu'
    """
    p = Path(path)
    if p.is_dir():
        if (p / "question.jsonl").is_file() and (p / "judgements.jsonl").is_file():
            return "routellm-mt-bench"
        if any(p.glob("mmlu_*.csv")):
            return "routellm-mmlu"
        if (p / "gsm8k_responses.csv").is_file():
            return "routellm-gsm8k"
        if sum(_is_routerarena(f) for f in sorted(p.glob("*.jsonl"))) >= 2:
            return "routerarena"
        raise InputError(
            f"{p}: unknown routing data folder (expected RouteLLM MMLU, GSM8K or MT-Bench "
            "files, or RouterArena JSONL files); pass --format"
        )
    if not p.is_file():
        raise InputError(f"{p}: file not found")
    if p.suffix.lower() != ".csv":
        raise InputError(
            f"{p}: unknown routing data format (known: {', '.join(DATA_FORMATS[1:])}); "
            "pass --format"
        )
    header = _csv_header(p)
    if any(h.endswith("|quality") for h in header):
        return "generic"
    if any(h.endswith("|total_cost") for h in header):
        return "routerbench"
    rest = [h for h in header if h != "prompt"]
    bare = [h for h in rest if not h.endswith("_response")]
    if (
        "prompt" in header
        and bare
        and all(h in ROUTELLM_PRICES for h in bare)
        and all(h[: -len("_response")] in bare for h in rest if h.endswith("_response"))
    ):
        responses = all(f"{mo}_response" in header for mo in bare)
        return "routellm-gsm8k" if responses else "routellm-mmlu"
    return "routerbench"


def load_any(
    path: str | Path,
    format: str = "auto",
    *,
    require_models: bool = True,
    contaminated: str | Path | None = None,
) -> RoutingDataset:
    """Read routing data in any format of :data:`DATA_FORMATS` (``auto``:
    :func:`detect_format`). ``contaminated`` (a RouteLLM ``contaminated_prompts.jsonl``)
    drops the listed prompts and applies to the RouteLLM formats only; a RouterArena input
    is a folder of one JSONL file per model.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = os.path.join(tmp, "x.csv")
    ...     _ = open(p, "w").write("prompt,gpt-4-1106-preview\\nhi,1\\n")
    ...     d = load_any(p)
    >>> d.models, d.quality.tolist(), round(float(d.cost[0, 0]), 8)
    (('gpt-4-1106-preview',), [[1.0]], 4e-05)
    """
    if format not in DATA_FORMATS:
        raise InputError(f"--format: unknown format '{format}' (known: {', '.join(DATA_FORMATS)})")
    p = Path(path)
    fmt = detect_format(p) if format == "auto" else format
    if contaminated is not None and fmt not in _ROUTELLM_FORMATS:
        raise InputError(f"{p}: a contaminated-prompts list applies to RouteLLM data only ({fmt})")
    if fmt == "routerbench":
        return load_routerbench(p, require_models=require_models)
    if fmt == "generic":
        return load_generic(p)
    if fmt == "routellm-mmlu":
        return load_routellm_mmlu(p, contaminated=contaminated)
    if fmt == "routellm-gsm8k":
        gsm = p / "gsm8k_responses.csv" if p.is_dir() else p
        return load_routellm_gsm8k(gsm, contaminated=contaminated)
    if fmt == "routellm-mt-bench":
        return load_routellm_mt_bench(p, contaminated=contaminated)
    if not p.is_dir():
        raise InputError(f"{p}: RouterArena data is a folder of one JSONL file per model")
    return load_routerarena([f for f in sorted(p.glob("*.jsonl")) if _is_routerarena(f)])
