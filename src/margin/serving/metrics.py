"""Serving metrics: latency percentiles, SLO attainment and goodput, delay cost, the
externality fingerprint, and the M/G/1-style analytic FCFS estimate used to check the
simulator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from margin.core.prices import InputError
from margin.serving.costmodel import CostModel
from margin.serving.pricing import pk_wait
from margin.serving.simulator import ServingConfig, SimulationResult
from margin.serving.traces import Trace

__all__ = [
    "analytic_fcfs",
    "distserve_goodput",
    "externality_fingerprint",
    "latency_stats",
    "saturation_rate",
    "summarize",
]

FloatArray = npt.NDArray[np.float64]


def latency_stats(x: npt.ArrayLike) -> dict[str, float]:
    """Mean, p50, p90 and p99 of the finite entries (NaN when there are none).

    Examples
    --------
    >>> latency_stats([1.0, 2.0, 3.0, float("nan")])["mean"]
    2.0
    """
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return {"mean": math.nan, "p50": math.nan, "p90": math.nan, "p99": math.nan}
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"mean": float(a.mean()), "p50": float(p50), "p90": float(p90), "p99": float(p99)}


def _slo_ok(res: SimulationResult) -> npt.NDArray[np.bool_]:
    cfg = res.config
    tpot_ok = np.where(np.isfinite(res.tpot), res.tpot <= cfg.slo_tpot, True)
    return res.completed & (res.ttft <= cfg.slo_ttft) & tpot_ok


def summarize(res: SimulationResult) -> dict[str, Any]:
    """The ``serve simulate --json`` figures plus delay cost, queueing and cache figures.

    * ``slo_attainment``: share of *all* requests (rejected count as misses) that completed
      with TTFT ≤ ``slo_ttft`` and TPOT ≤ ``slo_tpot`` (DistServe's attainment);
    * ``goodput_req_s``: such requests per second of simulated time;
    * ``delay_cost``: value-weighted delay cost per request,
      ``(Σ_completed λ_i·e2e_i + Σ_rejected V_i) / n`` (USD; a rejected request loses V);
    * ``throughput_tok_s``: output tokens per second of simulated time.
    """
    t = res.trace
    n = len(t)
    c = res.completed
    span = res.sim_time if res.sim_time > 0 else math.nan
    ok = _slo_ok(res)
    delay_cost = (
        float(np.sum(t.latency_price[c] * res.e2e[c])) + float(np.sum(t.value[res.rejected]))
    ) / max(n, 1)
    prompt_total = int(t.prompt[c].sum()) if c.any() else 0
    return {
        "requests": n,
        "completed": int(c.sum()),
        "rejected": int(res.rejected.sum()),
        "ttft": latency_stats(res.ttft[c]),
        "tpot": latency_stats(res.tpot[c]),
        "e2e": latency_stats(res.e2e[c]),
        "throughput_tok_s": float(res.decode_tokens[c].sum() / span) if c.any() else 0.0,
        "slo_attainment": float(ok.sum() / max(n, 1)),
        "goodput_req_s": float(ok.sum() / span) if c.any() else 0.0,
        "queue_delay": latency_stats(res.queue_delay[c]),
        "delay_cost": delay_cost,
        "prefix_hit_rate": float(res.cached_tokens[c].sum() / prompt_total)
        if prompt_total
        else 0.0,
        "preemptions": res.preemptions,
        "events": res.events,
        "wall_s": res.wall_s,
    }


def distserve_goodput(
    run: Callable[[float], SimulationResult],
    base_rate: float,
    target: float = 0.9,
    lo: float = 0.05,
    hi: float = 8.0,
    steps: int = 8,
) -> float:
    """DistServe's goodput: the highest request rate (req/s) whose SLO attainment is at least
    ``target``, found by bisection on the rate scale. ``run(scale)`` simulates the trace at
    ``scale`` times its rate (``base_rate``)."""
    if not 0 < target <= 1:
        raise InputError(f"goodput: field 'target' must be in (0, 1], got {target}")

    def ok(scale: float) -> bool:
        return bool(summarize(run(scale))["slo_attainment"] >= target)

    if not ok(lo):
        return 0.0
    if ok(hi):
        return hi * base_rate
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo * base_rate


def externality_fingerprint(
    res: SimulationResult,
    window_s: float = 60.0,
    short: str = "short-context",
    long: str = "long-context",
) -> dict[str, float]:
    """The paper's third prediction (Sec. 3.3): under flat pricing the latency of
    short-context tenants rises with the volume of *other* tenants' long-context traffic.

    Time is cut into windows of ``window_s`` seconds (by arrival); per window we take the
    long-context tenant's prompt-token volume and the short-context tenant's mean TTFT.
    Returns the Pearson correlation between them, the least-squares slope (seconds of
    short-tenant TTFT per million long-context tokens) and the short tenant's mean TTFT.
    """
    t = res.trace
    if short not in t.tenants or long not in t.tenants:
        raise InputError(f"fingerprint: trace needs tenants {short!r} and {long!r}")
    s_id, l_id = t.tenants.index(short), t.tenants.index(long)
    win = np.floor(t.arrival / window_s).astype(np.int64)
    nw = int(win.max()) + 1 if len(t) else 0
    is_long = t.tenant == l_id
    vol = np.bincount(win[is_long], weights=t.prompt[is_long], minlength=nw) / 1e6
    sm = (t.tenant == s_id) & res.completed
    cnt = np.bincount(win[sm], minlength=nw)
    tt = np.bincount(win[sm], weights=res.ttft[sm], minlength=nw)
    keep = cnt > 0
    x, y = vol[keep], tt[keep] / cnt[keep]
    if x.size < 3 or np.std(x) == 0 or np.std(y) == 0:
        corr, slope = 0.0, 0.0
    else:
        corr = float(np.corrcoef(x, y)[0, 1])
        slope = float(np.polyfit(x, y, 1)[0])
    return {
        "corr": corr,
        "slope_s_per_mtok": slope,
        "short_ttft_mean": float(np.mean(res.ttft[sm])) if sm.any() else math.nan,
        "windows": int(keep.sum()),
    }


def analytic_fcfs(trace: Trace, model: CostModel, config: ServingConfig) -> dict[str, float]:
    """M/G/1-style mean TTFT and TPOT of FCFS continuous batching at low load.

    Per replica the arrival rate is ``λ_r = λ/R``. With ``S_p`` the prefill time of a prompt
    alone (chunked at the token budget, each chunk one iteration):

    * ``TPOT = T_d / (1 − λ_r·E[S_p − a])``: the decode step a tagged request sees,
      ``T_d = α(1 + B̄) + β·(c_own + Σctx̄)`` (itself plus the ``B̄`` others decoding, its own
      token-weighted context ``c_own = E[(o−1)(p+o/2)]/E[o−1]`` plus theirs), stretched by
      the prefills of later arrivals that share its iterations (each adds its prefill time
      less the shared overhead ``a``); ``B̄ = λ_r E[o − 1]·TPOT`` and
      ``Σctx̄ = λ_r·TPOT·E[(o − 1)(p + o/2)]`` by Little's law, solved by fixed-point
      iteration;
    * ``TTFT = W + E[S_p] + E[D_extra]``: the Pollaczek–Khinchine wait of the prefill work
      ``W = λ_r E[S_p²] / (2(1 − ρ_p))``, plus the residual of the decode iteration in
      progress (``P(B > 0)·T_d/2``), plus the decode work carried by the prefill iteration.
    """
    if len(trace) < 2:
        raise InputError("analytic: need a trace of at least 2 requests")
    lam = trace.rate / (config.replicas if not config.disaggregated else config.prefill_replicas)
    p = trace.prompt.astype(np.float64)
    o = trace.output.astype(np.float64)
    budget = config.token_budget
    uniq, inv = np.unique(trace.prompt, return_inverse=True)
    sp_u = np.empty(uniq.size)
    for i, pp in enumerate(uniq.tolist()):
        done, tot = 0, 0.0
        while done < pp:
            x = min(budget, pp - done)
            tot += model.iteration_time(x, x * (done + x), 0.0, 0)
            done += x
        sp_u[i] = tot
    sp = sp_u[inv]
    a_shared = (
        model.iteration_time(1, 1, 0, 0)
        + model.iteration_time(0, 0, 1, 1)
        - (model.iteration_time(1, 1, 1, 1))
    )
    c_own = float(np.sum((o - 1) * (p + o / 2)) / max(float(np.sum(o - 1)), 1.0))
    stretch = 1.0 - lam * float(np.mean(sp - a_shared))
    if stretch <= 0:
        return {"ttft": math.inf, "tpot": math.inf, "batch": math.inf}
    tpot = model.iteration_time(0, 0, c_own, 1)
    bbar = 0.0
    ctx = 0.0
    for _ in range(200):
        bbar = lam * float(np.mean(o - 1)) * tpot
        ctx = lam * tpot * float(np.mean((o - 1) * (p + o / 2)))
        alpha, beta = model.decode_coefficients(max(1, round(1 + bbar)))
        new = (alpha + beta * (c_own + ctx)) / stretch
        if abs(new - tpot) < 1e-12:
            tpot = new
            break
        tpot = new
    b = max(1, round(bbar))
    alpha, beta = model.decode_coefficients(b)
    t_iter = alpha + beta * ctx
    p_busy = 1.0 - math.exp(-bbar)  # Poisson occupancy: P(at least one decoding)
    w = pk_wait(lam, float(np.mean(sp)), float(np.mean(sp * sp)))
    decode_extra = p_busy * (t_iter - a_shared)
    ttft = w + float(np.mean(sp)) + p_busy * t_iter / 2 + decode_extra
    return {"ttft": ttft, "tpot": tpot, "batch": bbar}


def saturation_rate(trace: Trace, config: ServingConfig) -> float:
    """Requests per second the cluster completes under FCFS when every request of ``trace``
    is queued at once: the capacity against which utilization (load) is measured.
    """
    from margin.serving.schedulers import FCFS
    from margin.serving.simulator import Simulator

    res = Simulator(config).run(trace.scaled(1e9), FCFS())
    return len(trace) / res.sim_time if res.sim_time > 0 else math.inf
