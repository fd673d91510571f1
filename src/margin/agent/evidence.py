"""Evidence from real coding-agent data for the action layer (Sec. 3.2 and Sec. 4).

* :func:`swe_pro_evidence` — SWE-Bench Pro with SWE-agent (GPT-5 and Claude Sonnet 4.5, 730
  tasks each; nilenso/swe-bench-pro-cost-token-time-analysis): resolve rate by cost
  quintile, the "expensive failures" pattern (failures cost more than successes and the
  costliest quintile resolves least), and what a hard per-task cost cap at a percentile
  would have cut (SWE-agent's ``per_instance_cost_limit``).
* :func:`swe_effi_evidence` — SWE-Effi (5 scaffolds × 3 LLMs × 50 SWE-bench Verified tasks):
  tokens of resolved against failed tasks per scaffold.
* :func:`aider_retry_evidence` — Aider leaderboards: pass rate on the first try and after
  one retry with the test output, i.e. the marginal value of one verification round.

Every function reads the CSV with the standard library and raises
:class:`~margin.core.prices.InputError` naming the file and line on a malformed row.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from margin.core.prices import InputError

__all__ = ["aider_retry_evidence", "swe_effi_evidence", "swe_pro_evidence"]


def _rows(path: str | os.PathLike[str], need: set[str]) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not need <= set(reader.fieldnames):
                missing = sorted(need - set(reader.fieldnames or ()))
                raise InputError(f"{path}: line 1: missing columns {missing}")
            rows = list(enumerate(reader, start=2))
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    yield from rows


def _float(path: str | os.PathLike[str], line: int, row: dict[str, str], key: str) -> float:
    try:
        return float(row[key])
    except (TypeError, ValueError):
        raise InputError(
            f"{path}: line {line}: field '{key}' is not a number: {row[key]!r}"
        ) from None


def swe_pro_evidence(
    path: str | os.PathLike[str], cap_percentiles: tuple[float, ...] = (50.0, 75.0, 90.0)
) -> dict[str, dict[str, Any]]:
    """Per model: resolve rate vs cost, expensive failures, and hard-cap cuts.

    A hard cap at cost percentile q stops every task costing more than the cap: those
    tasks' resolutions are lost (``resolved_lost``) and the spend above the cap is saved.
    """
    data: dict[str, list[tuple[float, bool]]] = {}
    for line, row in _rows(path, {"model", "resolved", "instance_cost_usd"}):
        if row["resolved"] not in ("True", "False"):
            continue  # one task in the source has no verdict
        data.setdefault(row["model"], []).append(
            (_float(path, line, row, "instance_cost_usd"), row["resolved"] == "True")
        )
    if not data:
        raise InputError(f"{path}: no rows with a resolved verdict")
    out: dict[str, dict[str, Any]] = {}
    for model, pairs in sorted(data.items()):
        cost = np.array([c for c, _ in pairs])
        ok = np.array([r for _, r in pairs])
        order = np.argsort(cost, kind="stable")
        quint = np.array_split(order, 5)
        caps = {}
        for q in cap_percentiles:
            cap = float(np.percentile(cost, q))
            over = cost > cap
            caps[f"p{q:g}"] = {
                "cap_usd": cap,
                "tasks_cut": float(over.mean()),
                "resolved_lost": float((over & ok).sum() / max(ok.sum(), 1)),
                "spend_saved": float(np.sum(cost[over] - cap) / cost.sum()),
            }
        out[model] = {
            "tasks": int(cost.size),
            "resolve_rate": float(ok.mean()),
            "median_cost_usd": float(np.median(cost)),
            "cost_resolved_usd": float(cost[ok].mean()),
            "cost_failed_usd": float(cost[~ok].mean()),
            "spend_on_failures": float(cost[~ok].sum() / cost.sum()),
            "resolve_by_cost_quintile": [float(ok[q].mean()) for q in quint],
            "quintile_upper_usd": [float(cost[q].max()) for q in quint],
            "hard_caps": caps,
        }
    return out


def swe_effi_evidence(path: str | os.PathLike[str]) -> dict[str, dict[str, float]]:
    """Per scaffold (all LLMs pooled): resolve rate and mean tokens of resolved vs failed."""
    acc: dict[str, list[tuple[float, bool]]] = {}
    need = {"scaffold", "resolved", "input_tokens", "output_tokens"}
    for line, row in _rows(path, need):
        if not row["input_tokens"] or not row["output_tokens"]:
            continue
        tokens = _float(path, line, row, "input_tokens") + _float(path, line, row, "output_tokens")
        acc.setdefault(row["scaffold"], []).append((tokens, row["resolved"] == "True"))
    out = {}
    for scaffold, pairs in sorted(acc.items()):
        t = np.array([x for x, _ in pairs])
        ok = np.array([r for _, r in pairs])
        out[scaffold] = {
            "tasks": float(t.size),
            "resolve_rate": float(ok.mean()),
            "tokens_resolved": float(t[ok].mean()) if ok.any() else float("nan"),
            "tokens_failed": float(t[~ok].mean()) if (~ok).any() else float("nan"),
        }
    return out


def aider_retry_evidence(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Marginal value of one retry with test feedback: pass_rate_2 − pass_rate_1 per model."""
    gains = []
    firsts = []
    per_model = []
    for line, row in _rows(path, {"model", "pass_rate_1", "pass_rate_2"}):
        if not row["pass_rate_1"] or not row["pass_rate_2"]:
            continue
        p1 = _float(path, line, row, "pass_rate_1")
        p2 = _float(path, line, row, "pass_rate_2")
        gains.append(p2 - p1)
        firsts.append(p1)
        per_model.append({"model": row["model"], "pass_rate_1": p1, "pass_rate_2": p2})
    if not gains:
        raise InputError(f"{path}: no rows with both pass rates")
    g = np.array(gains)
    f = np.array(firsts)
    return {
        "models": len(gains),
        "mean_pass_rate_1": float(f.mean()),
        "mean_gain_points": float(g.mean()),
        "median_gain_points": float(np.median(g)),
        "relative_gain": float(g.sum() / f.sum()),
        "share_gain_over_5_points": float((g > 5.0).mean()),
        "per_model": per_model,
    }
