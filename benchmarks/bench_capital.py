"""Capital-layer benchmark: cache policies on the Mooncake conversation trace, RL budgeting.

Prints one JSON object. Data: kvcache-ai/Mooncake FAST25-release conversation trace
(Apache-2.0) and the AReaL/verl staleness ablations (Apache-2.0), read from
../shared/data (or $MARGIN_SHARED_DATA).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from margin.capital.cache import replay
from margin.capital.depreciation import trace_depreciation
from margin.capital.rl import (
    FIXED_RATIOS,
    CapabilityModel,
    calibrate_staleness,
    simulate_capability,
    simulate_staleness,
    tokens_to_reach,
    verifier_cut_effect,
    zero_advantage_filter,
)
from margin.capital.trace import ValueModel, load_mooncake

DATA = Path(
    os.environ.get("MARGIN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
CAPACITIES = (4096, 8192, 16384, 32768, 65536)


def cache_bench() -> dict[str, object]:
    t0 = time.perf_counter()
    trace = load_mooncake(DATA / "serving" / "mooncake_conversation_trace.jsonl")
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    dep = trace_depreciation(trace)
    prov = ValueModel().attach(trace)
    t_fit = time.perf_counter() - t0
    rows = []
    for cap in CAPACITIES:
        row: dict[str, object] = {"capacity_blocks": cap}
        for pol in ("lru", "lfu", "priced"):
            t0 = time.perf_counter()
            r = replay(trace, pol, cap, values=prov, depreciation=dep)
            row[pol] = {
                "hit_rate": round(r.hit_rate, 4),
                "block_hit_rate": round(r.block_hit_rate, 4),
                "value_saved": round(r.value_saved),
                "value_saved_per_gb_hour": round(r.value_saved_per_gb_hour, 1),
                "evictions": r.evictions,
                "misuse_events": r.misuse_events,
                "refused_reuses": r.refused_reuses,
                "replay_s": round(time.perf_counter() - t0, 3),
                "hit_rate_by_tenant": {k: round(v, 4) for k, v in r.hit_rate_by_tenant.items()},
            }
        lru, lfu, pr = row["lru"], row["lfu"], row["priced"]
        assert isinstance(lru, dict) and isinstance(lfu, dict) and isinstance(pr, dict)
        row["priced_value_vs_lru"] = round(pr["value_saved"] / lru["value_saved"], 4)
        row["priced_value_vs_lfu"] = round(pr["value_saved"] / lfu["value_saved"], 4)
        row["priced_hit_minus_lru_pts"] = round(100 * (pr["hit_rate"] - lru["hit_rate"]), 2)
        rows.append(row)
    sweep = []
    for beta in (1.0, 0.999, 0.995, 0.99):
        r = replay(trace, "priced", 16384, values=prov, depreciation=dep, discount=beta)
        sweep.append(
            {
                "discount": beta,
                "hit_rate": round(r.hit_rate, 4),
                "value_saved": round(r.value_saved),
            }
        )
    return {
        "requests": trace.n_requests,
        "blocks": trace.n_blocks,
        "load_s": round(t_load, 3),
        "fit_s": round(t_fit, 3),
        "depreciation": {k: round(v, 6) for k, v in dep.as_dict().items()},
        "capacities": rows,
        "priced_discount_sweep_16k": sweep,
        "targets": {
            "priced_beats_lru_and_lfu_everywhere": all(
                r["priced_value_vs_lru"] > 1 and r["priced_value_vs_lfu"] > 1  # type: ignore[operator]
                for r in rows
            ),
            "priced_hit_within_2pts_of_lru": all(
                r["priced_hit_minus_lru_pts"] >= -2
                for r in rows  # type: ignore[operator]
            ),
        },
    }


def rl_bench() -> dict[str, object]:
    m = CapabilityModel()
    budget, steps = 100.0, 300
    paths = {p: simulate_capability(m, p, budget, steps) for p in ["marginal", *FIXED_RATIOS]}
    target = 0.9 * max(float(a[-1]) for a in paths.values())
    need = {p: tokens_to_reach(a, target, budget) for p, a in paths.items()}
    stale = simulate_staleness([0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6], [0, 1, 2, 4, 8, 16, 32])
    cal = calibrate_staleness(DATA / "rl" / "rl_staleness_ablations.csv")
    zf = {
        f"noise_{eps}": zero_advantage_filter([0.05, 0.2, 0.5, 0.8, 0.95] * 400, 16, eps, 8192.0)
        for eps in (0.0, 0.1)
    }
    return {
        "tokens_to_90pct": {p: (v if v != float("inf") else None) for p, v in need.items()},
        "marginal_fewest_tokens": all(need["marginal"] < need[p] for p in FIXED_RATIOS),
        "staleness": {
            "drifts": stale["drifts"],
            "rule": [round(x, 4) for x in stale["rule"]],
            "best_fixed_eta": stale["best_fixed_eta"],
            "best_fixed": [round(x, 4) for x in stale["fixed"][stale["best_fixed_eta"]]],
            "rule_dominates": stale["rule_dominates"],
        },
        "calibration": cal.as_dict(),
        "zero_advantage_filter": zf,
        "verifier_cut": verifier_cut_effect(),
    }


def main() -> None:
    t0 = time.perf_counter()
    out = {"cache": cache_bench(), "rl": rl_bench()}
    out["wall_s"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
