"""The economy's KV cache: agent calls share prefixes, the serving simulator's prefix
cache evicts LRU (siloed) or by capital's priced rule (shared), cached tokens are billed
at the cache-read price and the reuse decisions are on the ledger."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings, strategies as st

from margin.capital.cache import PricedPrefixEviction
from margin.diagnose import diagnose
from margin.economy import REGIMES, EconomyConfig, draw_stream, run_regime
from margin.economy.engine import _agent_contexts
from margin.serving.schedulers import FCFS
from margin.serving.simulator import ServingConfig, Simulator
from margin.serving.traces import Trace


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=5))
def test_call_k_shares_its_prefix_with_call_k_minus_1(calls: list[int]) -> None:
    cfg = EconomyConfig()
    ct = np.repeat(np.arange(len(calls)), calls)
    prompts, hashes, _ = _agent_contexts(ct, cfg, 1)
    H = cfg.hash_block_tokens
    repo = round(cfg.repo_context_tokens) // H
    start = 0
    seen: set[int] = set()
    for n in calls:
        task = hashes[start : start + n]
        p = prompts[start : start + n]
        assert p.max() + cfg.call_output_tokens <= cfg.context_window_tokens
        for k in range(1, n):
            full_prev = int(p[k - 1]) // H
            if p[k] > p[k - 1]:  # same epoch: all of call k−1's full blocks are reused
                assert task[k][:full_prev] == task[k - 1][:full_prev]
            else:  # compaction: the repository context stays shared
                assert task[k][:repo] == task[k - 1][:repo]
        ids = {b for h in task for b in h}
        assert not ids & seen  # tasks share nothing with each other
        seen |= ids
        start += n


def _pressure_trace() -> tuple[Trace, np.ndarray]:
    """Eight interleaved agent tasks (V = 100 or 1, 12 calls each, 6 s apart) on the
    economy's context model, plus unshared chat traffic (V = 0.05); a task's calls are
    20 s apart, so each finds its predecessor finished."""
    cfg = EconomyConfig()
    ct = np.repeat(np.arange(8), 12)
    prompts, hashes, nxt = _agent_contexts(ct, cfg, 1)
    v_task = np.where(np.arange(8) % 2 == 0, 100.0, 1.0)
    arr = ct * 2.0 + np.tile(np.arange(12) * 20.0, 8)
    rng = np.random.default_rng(0)
    n_chat = 120
    chat_arr = np.sort(rng.uniform(0, 240, n_chat))
    chat_prompt = rng.integers(500, 3000, n_chat)
    for p in chat_prompt.tolist():
        nb = -(-p // cfg.hash_block_tokens)
        hashes.append(list(range(nxt, nxt + nb)))
        nxt += nb
    arrival = np.concatenate([arr, chat_arr])
    prompt = np.concatenate([prompts, chat_prompt])
    value = np.concatenate([v_task[ct], np.full(n_chat, 0.05)])
    order = np.argsort(arrival, kind="stable")
    lens = np.array([len(hashes[i]) for i in order])
    trace = Trace(
        arrival=arrival[order],
        prompt=prompt[order],
        output=np.full(order.size, 200),
        value=value[order],
        hash_offsets=np.concatenate([[0], np.cumsum(lens)]),
        hash_ids=np.array([b for i in order for b in hashes[i]]),
        hash_block_tokens=cfg.hash_block_tokens,
    )
    return trace, value[order]


def test_priced_eviction_keeps_the_high_value_tasks_blocks_under_pressure() -> None:
    """Same trace, same FCFS order, one replica with 56k tokens of KV: LRU treats all
    blocks alike; the priced policy gives up the V = 1 and chat blocks first, so the
    V = 100 tasks' later calls hit more often than under LRU and than the V = 1 tasks."""
    trace, value = _pressure_trace()
    cfg = ServingConfig(replicas=1, kv_blocks=3500)
    econ = EconomyConfig()

    def priced() -> PricedPrefixEviction:
        return PricedPrefixEviction(
            depreciation=econ.cache_depreciation_per_s,
            discount=econ.cache_discount_per_s,
            block_tokens=econ.hash_block_tokens,
        )

    rate = {}
    for name, factory in (("lru", None), ("priced", priced)):
        res = Simulator(cfg, eviction=factory).run(trace, FCFS())
        assert res.completed.all() and res.prefix_evictions > 0
        hit = res.cached_tokens / trace.prompt
        rate[name] = {v: float(hit[value == v].mean()) for v in (100.0, 1.0)}
    assert rate["priced"][100.0] > rate["lru"][100.0] + 0.05
    assert rate["priced"][100.0] > rate["priced"][1.0]


def test_economy_cache_hits_are_billed_and_recorded(economy_run) -> None:  # type: ignore[no-untyped-def]
    r, siloed, shared = economy_run
    cfg = r.config
    for res, recs, policy in ((r.siloed, siloed, "lru"), (r.shared, shared, "priced")):
        c = res.cache
        assert c["policy"] == policy
        assert c["evictions"] > 0
        # later calls of a task reuse its earlier calls' context
        assert 0.3 < c["coding_hit_rate"] < 1.0
        # background requests have unshared blocks
        assert c["hit_rate_by_value"]["V<1"] == 0.0
        assert c["saved_usd"] > 0
        routing = {x.request_id: x for x in recs if x.layer == "routing"}
        reuse = [x for x in recs if x.attributes.get("kind") == "cache_reuse"]
        assert reuse and {x.attributes["policy"] for x in reuse} == {policy}
        assert sum(x.usage.cached_input for x in routing.values()) == sum(
            x.attributes["reused_tokens"] for x in reuse
        )
        for x in reuse:
            # Eq. 1's two options at the task's V; the saving sits on the routing record
            assert {o.name for o in x.options} == {"reuse", "recompute"}
            assert x.outcome is not None and x.outcome.cost_nanos == 0 and x.usage.total == 0
            rec = routing[x.request_id]
            if x.choice == "reuse":
                assert math.isclose(x.options[1].cost, x.attributes["saved_usd"], rel_tol=1e-12)
                assert x.options[1].cost > 0
                assert rec.usage.cached_input == x.attributes["reused_tokens"]
        # the spend on routing records is the ex-ante model spend less the cache saving
        assert math.isclose(
            sum(x.cost_nanos for x in routing.values()) / 1e9,
            res.layers["routing"].cost,
            rel_tol=1e-6,
        )
        assert not [f for f in diagnose(recs, ["cache-misuse"]) if f.count]
    assert cfg.cache_read_discount == 0.9


def test_priced_cache_switches_with_the_capital_layer(small_config) -> None:  # type: ignore[no-untyped-def]
    """The KV cache is capital's inventory (Sec. 3.4): siloed with only capital on shared
    prices evicts priced; siloed with only serving on shared prices keeps LRU."""
    cfg = small_config(0)
    stream = draw_stream(cfg)
    for layer, policy in (("capital", "priced"), ("serving", "lru")):
        res = run_regime(cfg, stream, REGIMES["siloed"].swap(layer), regret=False)
        assert res.cache["policy"] == policy, layer
