"""A synthetic multi-layer ledger with planted failures and a hostile tenant name."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from margin.core.prices import Option, PriceVector
from margin.ledger.records import LedgerRecord, Outcome, TokenUsage, usd_to_nanos

HOSTILE = '<script>alert("pwned")</script>'
TENANTS = ("coding-team", "chat-app", "long-context", HOSTILE)

ROUTES = (
    Option("cheap", 0.70, 0.002, latency=1.0, risk=0.05),
    Option("frontier", 0.92, 0.030, latency=2.5, risk=0.01),
)
AGENT = (
    Option("act", 0.85, 0.004, latency=4.0, risk=0.04, irreversible_risk=0.01),
    Option("ask", 0.85, 0.050, latency=30.0),
    Option("verify", 0.20, 0.010, latency=3.0),
)
SERVE = (Option("fcfs", 0.0, 0.001, latency=1.5),)
ROLLOUT = (Option("admit", 0.05, 0.02), Option("skip", 0.0, 0.0))


def _decide(
    request_id: str,
    tenant: str,
    layer: str,
    options: tuple[Option, ...],
    prices: PriceVector,
    choice: str,
    tokens: TokenUsage,
    ts: float,
    **attributes: float | str,
) -> LedgerRecord:
    surplus = {o.name: o.surplus(prices) for o in options}
    best = max(surplus, key=lambda k: surplus[k])
    chosen = next(o for o in options if o.name == choice)
    return LedgerRecord(
        request_id=request_id,
        layer=layer,
        choice=choice,
        options=options,
        prices=prices,
        tenant=tenant,
        usage=tokens,
        cost_nanos=usd_to_nanos(round(chosen.cost, 9)),
        outcome=Outcome(quality=chosen.quality, latency=chosen.latency, risk=chosen.risk),
        ex_post_optimal=best,
        regret=surplus[best] - surplus[choice],
        timestamp=ts,
        record_id=f"{request_id}-{layer}",
        attributes=dict(attributes),
    )


def synthetic_ledger(n_requests: int = 40, seed: int = 0) -> list[LedgerRecord]:
    """Requests through routing → agent → serving (→ capital for coding tasks).

    The router is cost-minimizing (always ``cheap``) for the chat and hostile tenants
    and frontier-default for the long-context tenant; the agent never verifies; serving
    charges nothing for congestion; some rollouts are admitted although stale.
    """
    rng = np.random.default_rng(seed)
    out: list[LedgerRecord] = []
    for i in range(n_requests):
        tenant = TENANTS[i % len(TENANTS)]
        rid = f"req-{i:04d}"
        value = float(rng.lognormal(math.log(0.5), 1.2))
        p = PriceVector(value, latency_price=0.002, risk_price=2.0, irreversible_risk_price=5.0)
        ts = 1_700_000_000.0 + i
        route = "frontier" if tenant in ("long-context", "coding-team") and i % 3 else "cheap"
        tok = TokenUsage(
            input=int(rng.integers(200, 4000)),
            cached_input=int(rng.integers(0, 2000)),
            output=int(rng.integers(50, 800)),
            reasoning=int(rng.integers(0, 400)) if route == "frontier" else 0,
        )
        out.append(_decide(rid, tenant, "routing", ROUTES, p, route, tok, ts))
        step = "act" if i % 5 else "ask"
        out.append(
            _decide(
                rid, tenant, "agent", AGENT, p, step, TokenUsage(output=120), ts, verify_tokens=0
            )
        )
        out.append(
            _decide(
                rid,
                tenant,
                "serving",
                SERVE,
                p,
                "fcfs",
                TokenUsage(input=tok.input, output=tok.output),
                ts,
                external_delay_s=float(rng.exponential(20.0)),
                congestion_charge=0.0,
            )
        )
        if tenant == "coding-team":
            out.append(
                _decide(
                    rid,
                    tenant,
                    "capital",
                    ROLLOUT,
                    p,
                    "admit",
                    TokenUsage(cache_write=int(rng.integers(100, 1000))),
                    ts,
                    depreciation=float(rng.uniform(0.0, 0.1)),
                    gain=0.05,
                )
            )
    return out


#: A comparison shaped like ``EconomyResult.as_dict()``.
COMPARISON = {
    "seed": 3,
    "siloed": {
        "regime": "siloed",
        "layers": {
            "routing": {"welfare": 10.5, "cost": 2.25, "regret": 1.5},
            "serving": {"welfare": -3.0, "cost": 0.5, "regret": 0.25},
        },
        "total": {"welfare": 7.5, "cost": 2.75, "latency": 12.0, "risk": 0.4, "regret": 1.75},
        "success_rate": 0.61,
        "prices": [[1.0, 0.0, 0.0]],
    },
    "shared": {
        "regime": "shared",
        "layers": {
            "routing": {"welfare": 12.25, "cost": 2.0, "regret": 0.5},
            "serving": {"welfare": -1.0, "cost": 0.5, "regret": 0.0},
        },
        "total": {"welfare": 11.25, "cost": 2.5, "latency": 8.0, "risk": 0.2, "regret": 0.5},
        "success_rate": 0.74,
        "prices": [[1.2, 0.002, 2.0]],
    },
    "welfare_gain": 3.75,
    "attribution": {"routing": 1.75, "serving": 2.0, "interaction": 0.0},
}


@pytest.fixture
def records() -> list[LedgerRecord]:
    """40 requests, 130 decisions, four tenants (one with a hostile name)."""
    return synthetic_ledger()


@pytest.fixture
def make_ledger() -> Callable[..., list[LedgerRecord]]:
    """``make_ledger(n_requests, seed)`` -> records (see :func:`synthetic_ledger`)."""
    return synthetic_ledger


@pytest.fixture
def comparison() -> dict[str, Any]:
    """A comparison shaped like ``EconomyResult.as_dict()`` (a fresh deep copy)."""
    return copy.deepcopy(COMPARISON)


@pytest.fixture
def hostile() -> str:
    """The hostile tenant name of the synthetic ledger."""
    return HOSTILE
