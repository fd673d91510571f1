"""Discrete-event, iteration-level simulator of an LLM serving cluster.

Events are engine iterations, not tokens. A replica runs continuous batching: at every
iteration boundary it admits waiting requests (in the scheduler's order) while the batch
size and the paged KV memory allow, then runs either

* one *mixed* iteration carrying chunked prefills (Sarathi-Serve: a token budget per
  iteration, decodes first, the rest to prompt chunks), or
* a *decode segment*: ``k`` identical-membership decode iterations simulated in closed
  form, ``T(k) = k(α + βS) + βB·k(k−1)/2`` for a batch of ``B`` sequences whose contexts
  sum to ``S`` and grow by one token per iteration (α, β from the cost model). A segment
  ends at the next completion, when KV memory could run out, or at the first iteration
  boundary after a new arrival to that replica (the arrival truncates it).

KV memory is paged (``block_size`` tokens per block, ``kv_blocks`` per replica). When a
decode step needs a block and none is free, the lowest-priority running request is
preempted: by recomputation on a prefill-capable replica (vLLM's default: its KV is
dropped and its prompt plus generated tokens are prefilled again) or by swapping on a
decode-only replica. A prefix cache keyed by block hashes (Mooncake ``hash_ids``) keeps
finished requests' prompt blocks, shares them by reference count and, when memory is
needed, evicts unreferenced entries in the order of a pluggable strategy
(:class:`~margin.serving.prefix.PrefixEviction`; default least-recently-used). With
``disaggregated`` prefill and decode pools (Splitwise, DistServe), a prefilled request's
KV crosses a FIFO link of ``link_bandwidth`` bytes/s before joining a decode replica.

Speculative decoding (``spec_gamma > 0``; Sec. 3.3's make-or-buy, Leviathan et al. 2023):
each request carries an acceptance rate α (``Trace.accept_rate``, else the config's constant
or Beta draw). At every decode-only iteration, a request speculates only if its expected
tokens per step ``E[τ] = (1 − α^{γ+1})/(1 − α)`` exceed the step's relative cost
``γc + v(B)``, i.e. its speedup ``(1 − α^{γ+1})/((1 − α)(γc + v(B)))`` at the current batch
``B`` is above 1 (:class:`~margin.serving.speculative.SpeculationPolicy`). Such an iteration
costs ``γc·T_d(B)`` of drafting plus the cost model's time for the batch with ``γ`` verify
tokens per speculating request, and each speculating request gains ``1 + min(G, γ)``
tokens (``P(G ≥ j) = α^j``), capped at the output it still owes. Mixed iterations carrying
prefill chunks decode plainly.

Requests are routed at arrival to the replica with the fewest requests in its system.
Every ``price_every``-th iteration each replica records its shadow prices of prefill
tokens, decode tokens and KV blocks (:meth:`Simulator.shadow_prices`) and, when a ledger
sink is given, a :class:`~margin.ledger.records.LedgerRecord` with ``layer="serving"``.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from margin._io import parse_structured
from margin.core.prices import InputError, Option, PriceVector, check_fields
from margin.ledger.records import LedgerRecord, RecordSink
from margin.serving.costmodel import CostModel, load_cost_model
from margin.serving.prefix import (
    LRUEviction,
    PrefixEviction,
    PrefixEvictionFactory,
    make_prefix_eviction,
)
from margin.serving.pricing import request_work
from margin.serving.schedulers import PricedScheduler, Scheduler
from margin.serving.speculative import SpeculationPolicy
from margin.serving.traces import Trace

__all__ = ["CONFIG_PRESETS", "ServingConfig", "SimulationResult", "Simulator", "simulate"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# request states
_PENDING, _WAIT, _PREFILL, _DECODE, _XFER, _DONE, _REJECTED, _DEFERRED = range(8)


@dataclass(frozen=True, slots=True)
class ServingConfig:
    """Cluster configuration (all per replica unless stated).

    Parameters
    ----------
    replicas : int
        Replicas in total (with ``disaggregated``: prefill + decode).
    prefill_replicas : int
        Replicas of the prefill pool when ``disaggregated`` (the rest decode).
    disaggregated : bool
        Separate prefill and decode pools with KV transfer over a link.
    max_batch : int
        Most sequences in one iteration (vLLM ``max_num_seqs``).
    token_budget : int
        Tokens per iteration for chunked prefill (decodes count one each).
    block_size : int
        Tokens per KV block.
    kv_blocks : int
        KV blocks per replica. Default: OPT-13B fp16 on an 80 GB GPU (26 GB of weights,
        0.8 MB of KV per token → ~60k tokens).
    watermark_blocks : int
        Blocks kept free at admission (vLLM's watermark).
    prefix_cache : bool
        Share prompt blocks by hash (needs a trace with hash ids).
    prefix_eviction : str
        Name of the prefix cache's eviction strategy in
        :data:`~margin.serving.prefix.PREFIX_EVICTIONS` (default ``lru``); a
        ``Simulator(..., eviction=factory)`` argument overrides it.
    prefix_routing : bool
        Route an arrival to the replica caching the longest prefix of its prompt (ties:
        fewest requests), among replicas with at most ``prefix_routing_slack`` more
        requests than the least loaded one (cache-aware routing, as Mooncake's Conductor
        and SGLang's router); False (default): least loaded only.
    prefix_routing_slack : int
        Load slack (requests) that prefix-aware routing may trade for a cache hit.
    kv_bytes_per_token : float
        Bytes of KV per token (transfer size): 2 · layers · hidden · 2 bytes.
    link_bandwidth : float
        Bytes per second of the prefill→decode link.
    link_latency : float
        Seconds of fixed latency per transfer.
    slo_ttft, slo_tpot : float
        Latency objectives (s) for SLO attainment and goodput (DistServe).
    usd_per_replica_second : float
        Compute price of one replica-second (ΔC of a quote).
    price_every : int
        Iterations between shadow-price samples per replica.
    cost_model : mapping
        Spec for :func:`~margin.serving.costmodel.load_cost_model`.
    spec_gamma : int
        Draft tokens per speculative step; 0 (default) turns speculative decoding off.
    spec_draft_cost : float
        c, the draft model's step time relative to the target's decode step.
    spec_alpha : float
        Acceptance rate α of requests whose trace carries none (the mean when
        ``spec_alpha_concentration > 0``).
    spec_alpha_concentration : float
        κ > 0 draws each request's α from Beta(κ·α, κ·(1 − α)); 0 gives every request α.
    spec_seed : int
        Seed of the α draws and of the accepted-token draws.
    """

    replicas: int = 4
    prefill_replicas: int = 1
    disaggregated: bool = False
    max_batch: int = 256
    token_budget: int = 2048
    block_size: int = 16
    kv_blocks: int = 3776
    watermark_blocks: int = 8
    prefix_cache: bool = True
    prefix_eviction: str = "lru"
    prefix_routing: bool = False
    prefix_routing_slack: int = 4
    kv_bytes_per_token: float = 819200.0
    link_bandwidth: float = 25e9
    link_latency: float = 0.0005
    slo_ttft: float = 2.0
    slo_tpot: float = 0.1
    usd_per_replica_second: float = 2.0 / 3600
    price_every: int = 500
    cost_model: Mapping[str, Any] = field(default_factory=dict)
    spec_gamma: int = 0
    spec_draft_cost: float = 0.05
    spec_alpha: float = 0.0
    spec_alpha_concentration: float = 0.0
    spec_seed: int = 0

    def __post_init__(self) -> None:
        ints = (
            "spec_gamma",
            "spec_seed",
            "replicas",
            "prefill_replicas",
            "max_batch",
            "token_budget",
            "block_size",
            "kv_blocks",
            "watermark_blocks",
            "price_every",
            "prefix_routing_slack",
        )
        for name in ints:
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, int)
                or v
                < (
                    0
                    if name
                    in (
                        "watermark_blocks",
                        "prefill_replicas",
                        "spec_gamma",
                        "spec_seed",
                        "prefix_routing_slack",
                    )
                    else 1
                )
            ):
                raise InputError(
                    f"serving config: field '{name}' must be a positive integer, got {v!r}"
                )
        for name in (
            "kv_bytes_per_token",
            "link_bandwidth",
            "link_latency",
            "slo_ttft",
            "slo_tpot",
            "usd_per_replica_second",
            "spec_draft_cost",
            "spec_alpha",
            "spec_alpha_concentration",
        ):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not math.isfinite(v)
                or (v < 0)
            ):
                raise InputError(f"serving config: field '{name}' must be a number >= 0, got {v!r}")
        if self.spec_alpha > 1:
            raise InputError(
                f"serving config: field 'spec_alpha' must be in [0, 1], got {self.spec_alpha!r}"
            )
        if self.link_bandwidth <= 0:
            raise InputError("serving config: field 'link_bandwidth' must be > 0")
        if self.disaggregated and not 1 <= self.prefill_replicas < self.replicas:
            raise InputError(
                "serving config: field 'prefill_replicas' must be in [1, replicas) "
                "when disaggregated"
            )
        if not isinstance(self.cost_model, Mapping):
            raise InputError("serving config: field 'cost_model' must be an object")
        if not isinstance(self.prefix_routing, bool):
            raise InputError("serving config: field 'prefix_routing' must be true or false")
        if not isinstance(self.prefix_eviction, str):
            raise InputError(
                "serving config: field 'prefix_eviction' must be a policy name, "
                f"got {self.prefix_eviction!r}"
            )
        make_prefix_eviction(self.prefix_eviction)  # unknown names: InputError

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "serving config") -> ServingConfig:
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: expected an object")
        check_fields(where, data, (f.name for f in fields(cls)))
        try:
            return cls(**dict(data))
        except InputError as e:
            raise InputError(str(e).replace("serving config", where, 1)) from None

    @classmethod
    def preset(cls, name: str) -> ServingConfig:
        """A named configuration from :data:`CONFIG_PRESETS`.

        Examples
        --------
        >>> ServingConfig.preset("single-engine").replicas
        1
        """
        try:
            return CONFIG_PRESETS[name]
        except KeyError:
            raise InputError(
                f"serving config: unknown preset {name!r}; choose from " + ", ".join(CONFIG_PRESETS)
            ) from None

    @classmethod
    def from_json(cls, path: str | Path, base: ServingConfig | None = None) -> ServingConfig:
        """Read a JSON object of fields (unknown fields are an error); fields it omits
        come from ``base`` (default: the defaults)."""
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p}: config file not found")
        data = parse_structured(p.read_text(encoding="utf-8"), p)
        if base is not None and isinstance(data, dict):
            check_fields(str(p), data, (f.name for f in fields(cls)))
            data = {**base.as_dict(), **data}
        return cls.from_dict(data, str(p))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cost_model"] = dict(self.cost_model)
        return d


#: Named configurations (``margin serve ... --preset NAME``).
#:
#: * ``default``: four OPT-13B replicas (A100-80G, DistServe fit) behind a least-loaded
#:   router, vLLM's default ``max_num_seqs`` = 256, ~60k tokens of KV each.
#: * ``single-engine``: one such replica, the setting in which the learning-to-rank
#:   scheduler was evaluated (Fu et al., arXiv 2408.15792, Sec. 5: one vLLM engine, the
#:   8B model on one GPU and the 70B model on eight GPUs with tensor parallelism; no
#:   router in front). At the same utilization one engine queues far more than a pool of
#:   four (no statistical multiplexing), which is where ordering the queue pays.
CONFIG_PRESETS: dict[str, ServingConfig] = {
    "default": ServingConfig(),
    "single-engine": ServingConfig(replicas=1),
}


@dataclass(frozen=True, slots=True, eq=False)
class SimulationResult:
    """Per-request outcomes of a run (times in seconds; NaN where not applicable).

    ``completed`` and ``rejected`` partition the requests; ``too_long`` of the rejected
    ones could never fit a replica's KV memory (prompt + output > capacity), the rest were
    refused by admission control. ``prefill_tokens`` counts prompt
    tokens computed (recomputation after preemption included), ``cached_tokens`` prompt
    tokens served from the prefix cache, ``decode_tokens`` output tokens generated;
    ``prefix_evictions`` counts prefix-cache entries evicted and ``prefix_policy`` names the
    eviction strategy.
    ``prices`` has columns (time, replica, prefill token, decode token, KV block price, USD).
    With speculative decoding on, ``spec_iterations`` counts the decode iterations in which
    at least one request speculated, ``spec_extra_tokens`` the output tokens gained from
    accepted draft tokens (included in ``decode_tokens``) and ``spec_max_batch`` the largest
    batch in which any request speculated.
    """

    trace: Trace
    scheduler: str
    config: ServingConfig
    ttft: FloatArray
    tpot: FloatArray
    e2e: FloatArray
    queue_delay: FloatArray
    completed: npt.NDArray[np.bool_]
    rejected: npt.NDArray[np.bool_]
    prefill_tokens: IntArray
    cached_tokens: IntArray
    decode_tokens: IntArray
    preemptions: int
    too_long: int
    events: int
    iterations: int
    wall_s: float
    sim_time: float
    max_kv_used: IntArray
    busy_time: FloatArray
    prices: FloatArray
    spec_iterations: int = 0
    spec_extra_tokens: int = 0
    spec_max_batch: int = 0
    prefix_evictions: int = 0
    prefix_policy: str = "lru"


class _Fenwick:
    """Prefix sums over priority ranks (for quotes: λ and work queued ahead/behind)."""

    __slots__ = ("n", "t")

    def __init__(self, n: int) -> None:
        self.n = n
        self.t = [0.0] * (n + 1)

    def add(self, i: int, v: float) -> None:
        i += 1
        t, n = self.t, self.n
        while i <= n:
            t[i] += v
            i += i & -i

    def prefix(self, i: int) -> float:
        """Sum over ranks < i."""
        s = 0.0
        t = self.t
        while i > 0:
            s += t[i]
            i -= i & -i
        return s


class _Replica:
    __slots__ = (
        "busy_time",
        "cache",
        "cache_blocks",
        "chunks",
        "dec",
        "dec_heap",
        "deferred",
        "deferred_lam",
        "fen_lam",
        "fen_work",
        "hb",
        "idx",
        "it",
        "iters",
        "k",
        "lam_in",
        "last_check",
        "lru",
        "max_used",
        "n_in",
        "pf",
        "pf_priv",
        "policy",
        "queued_lam",
        "queued_work",
        "recheck_pending",
        "role",
        "seg_a",
        "seg_d",
        "seg_kind",
        "spec",
        "sum_fbase",
        "t0",
        "t_end",
        "version",
        "waiting",
    )

    def __init__(self, idx: int, role: str, hb: int, policy: PrefixEviction) -> None:
        self.idx = idx
        self.role = role  # "mixed" | "prefill" | "decode"
        self.waiting: list[tuple[float, int]] = []
        self.deferred: list[int] = []
        self.deferred_lam = 0.0
        self.recheck_pending = False
        self.pf: list[int] = []  # admitted, prefilling (admission order)
        self.pf_priv = 0  # private blocks held by prefilling requests
        self.dec: dict[int, int] = {}  # rid -> private-ctx base (private ctx = base + it)
        self.dec_heap: list[tuple[int, int]] = []  # (finish iteration, rid)
        self.sum_fbase = 0  # Σ (full ctx − it) over decode members
        self.it = 0
        self.cache: dict[int, int] = {}
        self.policy = policy  # eviction order of the unreferenced cache entries
        # fast path of the default strategy: its queue, updated inline (same operations)
        self.lru: OrderedDict[int, None] | None = (
            policy.queue if type(policy) is LRUEviction else None
        )
        self.hb = hb
        self.cache_blocks = 0
        self.seg_kind = -1  # -1 idle, 0 mixed, 1 decode segment, 2 speculative step
        self.t0 = 0.0
        self.t_end = 0.0
        self.k = 0
        self.seg_a = 0.0
        self.seg_d = 0.0
        self.chunks: list[tuple[int, int]] = []
        self.spec: list[tuple[int, int]] = []  # (rid, extra tokens) of a speculative step
        self.version = 0
        self.iters = 0
        self.max_used = 0
        self.n_in = 0
        self.lam_in = 0.0
        self.fen_lam: _Fenwick | None = None
        self.fen_work: _Fenwick | None = None
        self.queued_lam = 0.0
        self.queued_work = 0.0
        self.last_check = 0.0
        self.busy_time = 0.0


class Simulator:
    """Run a trace through a serving cluster under one scheduler.

    Examples
    --------
    >>> from margin.serving.traces import synthetic_trace
    >>> from margin.serving.schedulers import FCFS
    >>> res = Simulator(ServingConfig(replicas=1)).run(synthetic_trace(200, rate=1.0), FCFS())
    >>> bool(res.completed.all()), int(res.decode_tokens.sum()) == int(res.trace.output.sum())
    (True, True)
    """

    def __init__(
        self,
        config: ServingConfig | None = None,
        model: CostModel | None = None,
        sink: RecordSink | None = None,
        eviction: PrefixEvictionFactory | None = None,
    ) -> None:
        self.config = config or ServingConfig()
        self.model = model if model is not None else load_cost_model(self.config.cost_model)
        self.sink = sink
        #: builds each replica's prefix-cache eviction strategy
        self.eviction: PrefixEvictionFactory = (
            eviction if eviction is not None else make_prefix_eviction(self.config.prefix_eviction)
        )

    # ------------------------------------------------------------------ public API

    def shadow_prices(
        self,
        prefill_tokens: float,
        attn: float,
        ctx_sum: float,
        batch: int,
        lam_in_system: float,
        blocked_lam: float,
        blocked_need: int,
        time_to_free: float,
    ) -> tuple[float, float, float]:
        """Shadow prices (USD) of one more prefill token, decode token and KV block.

        With ``Λ`` the delay-cost rate of the requests in the replica (running and waiting,
        USD/s) and ``t(·)`` the cost model's iteration time, the prices are finite
        differences of the delay the marginal unit imposes on them (Eq. 1's ``λΔL`` seen
        from the others):

        * prefill token: ``Λ · (t(P+1, A+2c̄+1, S, B) − t(P, A, S, B))`` with ``c̄`` the
          mean prompt context of the chunks (or 0);
        * decode token: ``Λ · (t(P, A, S+s̄, B+1) − t(P, A, S, B))``, one more sequence of
          the mean context ``s̄``;
        * KV block: 0 when no request waits for memory (complementary slackness); else
          ``λ_h · τ / n_h``: the blocked head-of-line request (delay cost ``λ_h``, needing
          ``n_h`` blocks) would start ``τ`` (the time until memory frees) earlier with
          ``n_h`` more blocks.

        Examples
        --------
        >>> sim = Simulator()
        >>> p = sim.shadow_prices(0, 0, 0, 0, lam_in_system=1.0, blocked_lam=0.0,
        ...                       blocked_need=0, time_to_free=0.0)
        >>> p[2]
        0.0
        """
        m = self.model
        base = m.iteration_time(prefill_tokens, attn, ctx_sum, batch)
        cbar = attn / prefill_tokens if prefill_tokens > 0 else 0.0
        p_pre = m.iteration_time(prefill_tokens + 1, attn + 2 * cbar + 1, ctx_sum, batch) - base
        sbar = ctx_sum / batch if batch > 0 else 0.0
        p_dec = m.iteration_time(prefill_tokens, attn, ctx_sum + sbar, batch + 1) - base
        p_kv = blocked_lam * time_to_free / blocked_need if blocked_need > 0 else 0.0
        return lam_in_system * p_pre, lam_in_system * p_dec, p_kv

    def run(self, trace: Trace, scheduler: Scheduler) -> SimulationResult:
        """Simulate ``trace`` under ``scheduler`` and return per-request outcomes."""
        return _Run(self, trace, scheduler).go()


def simulate(
    trace: Trace,
    scheduler: Scheduler,
    config: ServingConfig | None = None,
    sink: RecordSink | None = None,
) -> SimulationResult:
    """Shorthand for ``Simulator(config, sink=sink).run(trace, scheduler)``."""
    return Simulator(config, sink=sink).run(trace, scheduler)


class _Run:
    """One simulation run (all mutable state lives here)."""

    def __init__(self, sim: Simulator, trace: Trace, scheduler: Scheduler) -> None:
        cfg = sim.config
        self.sim = sim
        self.cfg = cfg
        self.model = sim.model
        self.trace = trace
        self.sched = scheduler
        n = len(trace)
        self.n = n
        keys = np.asarray(scheduler.priorities(trace, sim.model), dtype=np.float64)
        if keys.shape != (n,) or not np.all(np.isfinite(keys)):
            raise InputError(
                f"scheduler {scheduler.name}: priorities must be finite, one per request"
            )
        self.key: list[float] = keys.tolist()
        self.arr: list[float] = trace.arrival.tolist()
        self.prm: list[int] = trace.prompt.tolist()
        self.out: list[int] = trace.output.tolist()
        self.lam: list[float] = trace.latency_price.tolist()
        self.val: list[float] = trace.value.tolist()
        bs = cfg.block_size
        self.bs = bs
        H = trace.hash_block_tokens
        self.H = H
        hb = -(-H // bs)
        self.use_cache = cfg.prefix_cache and trace.hash_ids is not None
        self.prefix_routing = self.use_cache and cfg.prefix_routing
        self.hash_off: list[int] | None = None
        self.hash_ids: list[int] | None = None
        if self.use_cache and trace.hash_offsets is not None and trace.hash_ids is not None:
            self.hash_off = trace.hash_offsets.tolist()
            self.hash_ids = trace.hash_ids.tolist()
        if cfg.disaggregated:
            roles = ["prefill"] * cfg.prefill_replicas + ["decode"] * (
                cfg.replicas - cfg.prefill_replicas
            )
        else:
            roles = ["mixed"] * cfg.replicas
        self.reps = [_Replica(i, r, hb, sim.eviction()) for i, r in enumerate(roles)]
        self.prefix_evictions = 0
        self.front = [r for r in self.reps if r.role != "decode"]
        self.back = [r for r in self.reps if r.role == "decode"]
        # per-request state
        self.state = [_PENDING] * n
        self.gen = [0] * n
        self.peff = list(self.prm)  # prompt to prefill (grows on recompute)
        self.pf_left = [0] * n
        self.pf_done = [0] * n
        self.priv = [0] * n  # private blocks while prefilling / transferring
        self.shared_tok = [0] * n  # tokens held in shared prefix-cache entries
        self.held = [0] * n  # number of hash entries referenced
        self.swapped = [False] * n
        self.first = [math.nan] * n
        self.finish = [math.nan] * n
        self.admitted_at = [math.nan] * n
        self.prefill_ct = [0] * n
        self.cached_ct = [0] * n
        self.dec_ct = [0] * n
        self.rep_of = [-1] * n
        self.fin_iter = [0] * n
        self.preemptions = 0
        self.too_long = 0
        self.events = 0
        self.heap: list[tuple[float, int, int, int]] = []  # (time, seq, kind, payload)
        self.seq = 0
        self.link_free = 0.0
        self.now = 0.0
        self.price_rows: list[tuple[float, int, float, float, float]] = []
        # SRPT: remaining-work conversion (seconds per token)
        a1, b1 = self.model.decode_coefficients(32)
        self.dec_tok_work: float = a1 / 32
        self.dec_ctx_work: float = b1
        self.spec: SpeculationPolicy | None = None
        self.spec_iterations = 0
        self.spec_extra = 0
        self.spec_max_batch = 0
        if cfg.spec_gamma > 0:
            self.setup_speculation(trace)
        self.admission = bool(scheduler.admission)
        self.priced = scheduler if isinstance(scheduler, PricedScheduler) else None
        if self.admission:
            if self.priced is not None and self.priced.work_.size == n:
                self.work = self.priced.work_.tolist()
            else:
                self.work = request_work(trace.prompt, trace.output, self.model).tolist()
            order = np.argsort(keys, kind="stable")
            rank = np.empty(n, dtype=np.int64)
            rank[order] = np.arange(n)
            self.rank = rank.tolist()
            for r in self.front:
                r.fen_lam = _Fenwick(n)
                r.fen_work = _Fenwick(n)
            self.max_defer = self.priced.max_defer_s if self.priced is not None else 30.0
            self.recheck = self.priced.recheck_s if self.priced is not None else 0.5

    def setup_speculation(self, trace: Trace) -> None:
        """Per-request α (trace, else the config's constant or Beta draw) and E[τ]."""
        cfg = self.cfg
        rng = np.random.default_rng(cfg.spec_seed)
        if trace.accept_rate is not None:
            alpha = np.asarray(trace.accept_rate, dtype=np.float64)
        elif cfg.spec_alpha_concentration > 0 and 0.0 < cfg.spec_alpha < 1.0:
            k, m = cfg.spec_alpha_concentration, cfg.spec_alpha
            alpha = rng.beta(k * m, k * (1.0 - m), size=self.n)
        else:
            alpha = np.full(self.n, cfg.spec_alpha)
        g = cfg.spec_gamma
        with np.errstate(divide="ignore", invalid="ignore"):
            etau = np.where(alpha < 1.0, (1.0 - alpha ** (g + 1)) / (1.0 - alpha), g + 1.0)
            log_a = np.where(alpha > 0.0, np.log(alpha), -np.inf)
        self.etau: list[float] = etau.tolist()
        self.log_alpha: list[float] = log_a.tolist()
        self.spec_rng = random.Random(cfg.spec_seed)
        if np.any(etau > 1.0):
            self.spec = SpeculationPolicy(self.model, gamma=g, draft_cost=cfg.spec_draft_cost)

    # ---------------------------------------------------------------- event plumbing

    def push(self, t: float, kind: int, payload: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, payload))

    def go(self) -> SimulationResult:
        t_wall = time.perf_counter()
        arr = self.arr
        n = self.n
        heap = self.heap
        i = 0
        while i < n or heap:
            if i < n and (not heap or arr[i] <= heap[0][0]):
                self.now = arr[i]
                self.events += 1
                self.on_arrival(i)
                i += 1
                continue
            t, _, kind, payload = heapq.heappop(heap)
            self.now = t
            if kind == 0:  # replica iteration end: payload = idx * 2**32 + version
                rep = self.reps[payload >> 32]
                if (payload & 0xFFFFFFFF) != rep.version:
                    continue
                self.events += 1
                self.on_iteration_end(rep)
            elif kind == 1:  # KV transfer done
                self.events += 1
                self.on_transfer_done(payload)
            else:  # deferred-request recheck on a replica
                self.events += 1
                self.recheck_deferred(self.reps[payload])
        wall = time.perf_counter() - t_wall
        return self.result(wall)

    def schedule(self, rep: _Replica, t_end: float) -> None:
        rep.version = (rep.version + 1) & 0xFFFFFFFF
        rep.t_end = t_end
        self.push(t_end, 0, (rep.idx << 32) | rep.version)

    # ---------------------------------------------------------------- arrivals & routing

    def pick(self, pool: list[_Replica]) -> _Replica:
        best = pool[0]
        for r in pool:
            if r.n_in < best.n_in:
                best = r
        return best

    def pick_prefix(self, rid: int, least: _Replica) -> _Replica:
        """The replica caching the longest prefix of ``rid``'s prompt among those within
        the routing slack of the least loaded one (ties: fewer requests; none: least)."""
        h = self.hashes(rid)
        cap = least.n_in + self.cfg.prefix_routing_slack
        best, best_j = least, 0
        for r in self.front:
            if r.n_in > cap:
                continue
            cache = r.cache
            j = 0
            while j < len(h) and h[j] in cache:
                j += 1
            if j > best_j or (j == best_j and j > 0 and r.n_in < best.n_in):
                best, best_j = r, j
        return best

    def on_arrival(self, rid: int) -> None:
        if -(-(self.prm[rid] + self.out[rid]) // self.bs) + self.cfg.watermark_blocks > (
            self.cfg.kv_blocks
        ):
            # longer than a replica's KV memory (vLLM's max_model_len check): never servable
            self.state[rid] = _REJECTED
            self.too_long += 1
            return
        rep = self.pick(self.front)
        if self.prefix_routing:
            rep = self.pick_prefix(rid, rep)
        self.rep_of[rid] = rep.idx
        rep.n_in += 1
        rep.lam_in += self.lam[rid]
        self.peff[rid] = self.prm[rid]
        self.pf_left[rid] = self.prm[rid]
        if self.admission and not self.affordable(rep, rid):
            self.state[rid] = _DEFERRED
            rep.deferred.append(rid)
            rep.deferred_lam += self.lam[rid]
            if not rep.recheck_pending:
                rep.recheck_pending = True
                self.push(self.now + self.recheck, 2, rep.idx)
            return
        self.enqueue(rep, rid)
        self.kick(rep)

    def kick(self, rep: _Replica) -> None:
        """A new request reached ``rep``: start it if idle, else end its decode segment at
        the first iteration boundary after now."""
        if rep.seg_kind == -1:
            self.plan(rep)
        elif rep.seg_kind == 1 and rep.k > 1:
            dt = self.now - rep.t0
            a, d = rep.seg_a, rep.seg_d  # T(j) = j·a + d·j(j−1)/2
            if d > 0:
                qa, qb = d / 2, a - d / 2
                j = math.ceil((-qb + math.sqrt(qb * qb + 4 * qa * dt)) / (2 * qa) - 1e-9)
            else:
                j = math.ceil(dt / a - 1e-9) if a > 0 else 1
            j = max(j, 1)
            while (
                j > 1
                and j * a + d * j * (j - 1) / 2 >= dt + 1e-12
                and ((j - 1) * a + d * (j - 1) * (j - 2) / 2 >= dt)
            ):
                j -= 1
            if j < rep.k:
                t_new = rep.t0 + j * a + d * j * (j - 1) / 2
                rep.busy_time -= rep.t_end - t_new
                rep.iters -= rep.k - j
                rep.k = j
                self.schedule(rep, t_new)

    def enqueue(self, rep: _Replica, rid: int) -> None:
        self.state[rid] = _WAIT
        heapq.heappush(rep.waiting, (self.key[rid], rid))
        if rep.fen_lam is not None and rep.fen_work is not None:
            rk = self.rank[rid]
            rep.fen_lam.add(rk, self.lam[rid])
            rep.fen_work.add(rk, self.work[rid])
            rep.queued_lam += self.lam[rid]
            rep.queued_work += self.work[rid]

    def dequeued(self, rep: _Replica, rid: int) -> None:
        if rep.fen_lam is not None and rep.fen_work is not None:
            rk = self.rank[rid]
            rep.fen_lam.add(rk, -self.lam[rid])
            rep.fen_work.add(rk, -self.work[rid])
            rep.queued_lam -= self.lam[rid]
            rep.queued_work -= self.work[rid]

    def quote(self, rep: _Replica, rid: int) -> tuple[float, float]:
        """(congestion price p_i, expected delay W_i + Ŝ_i) on ``rep`` now (PricedScheduler)."""
        assert rep.fen_lam is not None and rep.fen_work is not None
        rk = self.rank[rid]
        lam_ahead = rep.fen_lam.prefix(rk)
        work_ahead = rep.fen_work.prefix(rk)
        own = self.lam[rid]
        lam_running = (
            rep.lam_in
            - rep.queued_lam
            - rep.deferred_lam
            - (0.0 if self.state[rid] == _DEFERRED else own)
        )
        behind = rep.queued_lam - lam_ahead + max(lam_running, 0.0)
        w = self.work[rid]
        return w * behind, work_ahead + w

    def affordable(self, rep: _Replica, rid: int) -> bool:
        price, delay = self.quote(rep, rid)
        return self.val[rid] - price - self.lam[rid] * delay >= 0.0

    def recheck_deferred(self, rep: _Replica, timer: bool = True) -> None:
        """Re-quote deferred requests: admit the affordable, reject the expired."""
        if timer:
            rep.recheck_pending = False
        if not rep.deferred:
            return
        keep: list[int] = []
        started = False
        for rid in sorted(rep.deferred, key=self.key.__getitem__):
            if self.affordable(rep, rid):
                rep.deferred_lam -= self.lam[rid]
                self.enqueue(rep, rid)
                started = True
            elif self.now - self.arr[rid] >= self.max_defer:
                rep.deferred_lam -= self.lam[rid]
                self.state[rid] = _REJECTED
                rep.n_in -= 1
                rep.lam_in -= self.lam[rid]
            else:
                keep.append(rid)
        rep.deferred = keep
        if keep and not rep.recheck_pending:
            rep.recheck_pending = True
            self.push(self.now + self.recheck, 2, rep.idx)
        if started:
            self.kick(rep)

    # ---------------------------------------------------------------- memory

    def used(self, rep: _Replica) -> int:
        bs, it = self.bs, rep.it
        dec = 0
        for b in rep.dec.values():
            dec += -(-(b + it) // bs)
        return rep.cache_blocks + rep.pf_priv + dec

    def evict(self, rep: _Replica, need: int, free: int) -> int:
        """Evict unreferenced prefix-cache entries (in the replica's eviction strategy's
        order) until ``need`` blocks are free."""
        pol, lru, cache, hb = rep.policy, rep.lru, rep.cache, rep.hb
        while free < need and (lru if lru is not None else len(pol)):
            del cache[lru.popitem(last=False)[0] if lru is not None else pol.victim()]
            rep.cache_blocks -= hb
            free += hb
            self.prefix_evictions += 1
        return free

    def hashes(self, rid: int) -> list[int]:
        assert self.hash_off is not None and self.hash_ids is not None
        return self.hash_ids[self.hash_off[rid] : self.hash_off[rid + 1]]

    def release(self, rep: _Replica, rid: int, private_blocks: int, keep_prompt: bool) -> None:
        """Free a request's KV; optionally hand its prompt blocks to the prefix cache."""
        if self.use_cache and rep.role != "decode":
            h = self.hashes(rid)
            j = self.held[rid]
            cache, lru, hb = rep.cache, rep.lru, rep.hb
            if lru is not None:  # the default LRU strategy, inline
                if keep_prompt:
                    for hid in h[j : min(len(h), j + private_blocks // hb)]:
                        if hid not in cache:
                            cache[hid] = 0
                            lru[hid] = None
                            rep.cache_blocks += hb
                for hid in h[:j]:
                    c = cache[hid] - 1
                    cache[hid] = c
                    if c == 0:
                        lru[hid] = None
            else:
                pol, now = rep.policy, self.now
                if keep_prompt:
                    m = min(len(h), j + private_blocks // hb)
                    H, prm, v = self.H, self.prm[rid], self.val[rid]
                    for k in range(j, m):
                        hid = h[k]
                        if hid not in cache:
                            cache[hid] = 0
                            parent = h[k - 1] if k else -1
                            pol.written(hid, v, max(min(H, prm - k * H), 1), now, parent)
                            rep.cache_blocks += hb
                for hid in h[:j]:
                    c = cache[hid] - 1
                    cache[hid] = c
                    if c == 0:
                        pol.unreferenced(hid, now)
            self.held[rid] = 0
            self.shared_tok[rid] = 0

    # ---------------------------------------------------------------- admission

    def try_admit(self, rep: _Replica) -> tuple[float, int]:
        """Admit waiting requests in key order; returns the blocked head's (λ, need)."""
        cfg, bs = self.cfg, self.bs
        waiting = rep.waiting
        free = cfg.kv_blocks - self.used(rep)
        while waiting and len(rep.pf) + len(rep.dec) < cfg.max_batch:
            _, rid = waiting[0]
            if rep.role == "decode" or self.swapped[rid]:
                # resume decoding (transferred or swapped back in): the whole context
                ctx_private = self.ctx_private_on_resume(rid)
                need = -(-ctx_private // bs)
                if need + cfg.watermark_blocks > free:
                    free = self.evict(rep, need + cfg.watermark_blocks, free)
                    if need + cfg.watermark_blocks > free:
                        return self.lam[rid], need
                heapq.heappop(waiting)
                self.dequeued(rep, rid)
                free -= need
                self.join_decode(rep, rid, ctx_private, self.ctx_full_on_resume(rid))
                continue
            # prefill-capable replica: prefix lookup, allocate prompt blocks
            hit = 0
            j = 0
            if self.use_cache:
                h = self.hashes(rid)
                cache = rep.cache
                while j < len(h) and h[j] in cache:
                    j += 1
                hit = min(j * self.H, self.peff[rid] - 1)
            # private blocks hold every token past the hit (the first generated one
            # included); a partial last hash block is not written into (copy on write)
            need = -(-(self.peff[rid] + 1 - hit) // bs)
            if need + cfg.watermark_blocks > free:
                free = self.evict(rep, need + cfg.watermark_blocks, free)
                # the lookup may have pointed at evicted entries: recount
                if j and any(hid not in rep.cache for hid in self.hashes(rid)[:j]):
                    continue
                if need + cfg.watermark_blocks > free:
                    return self.lam[rid], need
            heapq.heappop(waiting)
            self.dequeued(rep, rid)
            if j:
                cache, lru = rep.cache, rep.lru
                if lru is not None:
                    for hid in self.hashes(rid)[:j]:
                        cache[hid] += 1
                        lru.pop(hid, None)
                else:
                    pol, now = rep.policy, self.now
                    for hid in self.hashes(rid)[:j]:
                        cache[hid] += 1
                        pol.hit(hid, now)
                self.held[rid] = j
                self.shared_tok[rid] = hit
            free -= need
            self.priv[rid] = need
            rep.pf_priv += need
            self.cached_ct[rid] += hit
            self.pf_done[rid] = hit
            self.pf_left[rid] = self.peff[rid] - hit
            if math.isnan(self.admitted_at[rid]):
                self.admitted_at[rid] = self.now
            self.state[rid] = _PREFILL
            rep.pf.append(rid)
        return 0.0, 0

    def ctx_full_on_resume(self, rid: int) -> int:
        return self.prm[rid] + self.gen[rid]

    def ctx_private_on_resume(self, rid: int) -> int:
        return self.prm[rid] + self.gen[rid] - self.shared_tok[rid]

    def join_decode(self, rep: _Replica, rid: int, ctx_private: int, ctx_full: int) -> None:
        if math.isnan(self.admitted_at[rid]):
            self.admitted_at[rid] = self.now
        self.swapped[rid] = False
        self.state[rid] = _DECODE
        self.rep_of[rid] = rep.idx
        it = rep.it
        rep.dec[rid] = ctx_private - it
        rep.sum_fbase += ctx_full - it
        fin = it + self.out[rid] - self.gen[rid]
        self.fin_iter[rid] = fin
        heapq.heappush(rep.dec_heap, (fin, rid))

    def leave_decode(self, rep: _Replica, rid: int) -> int:
        """Remove from the decode set; returns the private blocks it held."""
        b = rep.dec.pop(rid)
        rep.sum_fbase -= self.prm[rid] + self.gen[rid] - rep.it
        return -(-(b + rep.it) // self.bs)

    # ---------------------------------------------------------------- preemption

    def preempt_one(self, rep: _Replica, swap: bool) -> bool:
        """Preempt the lowest-priority decode member; False if there is none."""
        if not rep.dec:
            return False
        if self.sched.preemptive:
            it = rep.it
            rid = max(rep.dec, key=lambda r: self.remaining_work(r, self.fin_iter[r] - it))
            self.key[rid] = self.remaining_work(rid, self.fin_iter[rid] - it)
        else:
            rid = max(rep.dec, key=self.key.__getitem__)
        self.preempt_victim(rep, rid, swap)
        return True

    def preempt_victim(self, rep: _Replica, rid: int, swap: bool) -> None:
        blocks = self.leave_decode(rep, rid)
        self.preemptions += 1
        if swap:
            self.swapped[rid] = True
            self.pf_left[rid] = 0
            self.release_shared_only(rep, rid)
        else:
            # recompute: drop KV, prefill prompt + generated tokens again
            self.release(rep, rid, blocks, keep_prompt=False)
            self.peff[rid] = self.prm[rid] + self.gen[rid]
            self.pf_left[rid] = self.peff[rid]
            self.pf_done[rid] = 0
        self.enqueue(rep, rid)

    def release_shared_only(self, rep: _Replica, rid: int) -> None:
        """A swapped-out request keeps its whole context privately (in host memory)."""
        if self.held[rid]:
            self.release(rep, rid, 0, keep_prompt=False)

    def remaining_work(self, rid: int, rem: int) -> float:
        """Decode work left, in the units of :func:`~margin.serving.pricing.request_work`."""
        ctx = self.prm[rid] + self.gen[rid]
        return rem * (self.dec_tok_work + self.dec_ctx_work * (ctx + rem / 2.0))

    def srpt_preempt(self, rep: _Replica) -> None:
        """Swap out running requests whose remaining work exceeds a blocked waiting one's."""
        while rep.waiting and rep.dec:
            wkey, _ = rep.waiting[0]
            it = rep.it
            worst = max(rep.dec, key=lambda r: self.remaining_work(r, self.fin_iter[r] - it))
            rem = self.remaining_work(worst, self.fin_iter[worst] - it)
            if rem <= wkey:
                return
            self.key[worst] = rem
            self.preempt_victim(rep, worst, swap=True)
            self.try_admit(rep)
            if rep.waiting and rep.waiting[0][1] == worst:
                return

    # ---------------------------------------------------------------- iterations

    def plan(self, rep: _Replica) -> None:
        """At an iteration boundary: admit, then start the next iteration or segment."""
        cfg = self.cfg
        blocked_lam, blocked_need = self.try_admit(rep)
        if self.sched.preemptive and rep.waiting:
            self.srpt_preempt(rep)
            blocked_lam, blocked_need = self.try_admit(rep)
        B = len(rep.dec)
        if not rep.pf and B == 0:
            rep.seg_kind = -1
            return
        bs = self.bs
        it = rep.it
        free = cfg.kv_blocks - self.used(rep)
        # KV blocks for decode growth: member i (private context c_i) needs a new block
        # after s_i = (−c_i) mod block_size more tokens; with fewer free blocks than members
        # the next ``sorted(s)[free]`` iterations fit exactly, and 0 means preempt now.
        kmem = 0
        if B:
            if free >= B:
                kmem = bs * (free // B)
            else:
                while True:
                    slack = sorted(-(b + it) % bs for b in rep.dec.values())
                    kmem = slack[free] if free < len(slack) else bs
                    if kmem > 0:
                        break
                    free = self.evict(rep, free + 1, free)
                    if (slack[free] if free < len(slack) else bs) > 0:
                        continue
                    self.preempt_one(rep, swap=rep.role == "decode")
                    free = cfg.kv_blocks - self.used(rep)
                    if not rep.dec:
                        break
                B = len(rep.dec)
                if not rep.pf and B == 0:
                    self.plan(rep)
                    return
        used_now = cfg.kv_blocks - free
        if used_now > rep.max_used:
            rep.max_used = used_now
        S = rep.sum_fbase + B * it
        budget = cfg.token_budget - B
        if rep.pf and budget > 0:
            chunks: list[tuple[int, int]] = []
            P = 0
            A = 0.0
            pf_left, pf_done = self.pf_left, self.pf_done
            for rid in rep.pf:
                x = pf_left[rid]
                if x > budget:
                    x = budget
                chunks.append((rid, x))
                P += x
                A += x * (pf_done[rid] + x)
                budget -= x
                if budget <= 0:
                    break
            dt = self.model.iteration_time(P, A, S, B)
            rep.chunks = chunks
            rep.seg_kind = 0
            rep.k = 1
            rep.t0 = self.now
            rep.iters += 1
            rep.busy_time += dt
            if rep.iters % cfg.price_every == 0:
                self.sample_prices(rep, P, A, S, B, blocked_lam, blocked_need, dt)
            self.schedule(rep, self.now + dt)
            return
        if self.spec is not None and self.spec_step(rep, S, B, free, blocked_lam, blocked_need):
            return
        # decode-only segment
        alpha, beta = self.model.decode_coefficients(B)
        k = rep.dec_heap[0][0] - it
        while (
            self.state[rep.dec_heap[0][1]] != _DECODE
            or rep.dec_heap[0][1] not in rep.dec
            or self.fin_iter[rep.dec_heap[0][1]] != rep.dec_heap[0][0]
        ):
            heapq.heappop(rep.dec_heap)
            k = rep.dec_heap[0][0] - it
        if kmem < k:
            k = kmem
        a = alpha + beta * S
        d = beta * B
        dt = k * a + d * k * (k - 1) / 2
        rep.seg_kind = 1
        rep.k = k
        rep.t0 = self.now
        rep.seg_a = a
        rep.seg_d = d
        it0 = rep.iters
        rep.iters += k
        rep.busy_time += dt
        if it0 // cfg.price_every != rep.iters // cfg.price_every:
            self.sample_prices(rep, 0, 0.0, S, B, blocked_lam, blocked_need, dt)
        self.schedule(rep, self.now + dt)

    def spec_step(
        self,
        rep: _Replica,
        S: int,
        B: int,
        free: int,
        blocked_lam: float,
        blocked_need: int,
    ) -> bool:
        """Start one speculative decode iteration if any member's speedup exceeds 1.

        Sec. 3.3's make-or-buy (Leviathan et al., ICML 2023): a request with acceptance
        rate α speculates at batch ``B`` only if ``E[τ] = (1 − α^{γ+1})/(1 − α)`` exceeds
        ``γc + v(B)`` (speedup > 1, :class:`~margin.serving.speculative.SpeculationPolicy`
        at the batch's mean context). The iteration costs
        ``γc·T_d(B) + t(γs verify tokens with the batch)`` (``= T_d(B)·(γc + v(B))`` when all
        ``B`` speculate), and a speculating request gains ``1 + min(G, γ)`` tokens with
        ``P(G ≥ j) = α^j`` (mean ``E[τ]``), the others one; gains are capped at the output
        still owed, so tokens produced equal tokens requested. Returns False (plain decode
        segment) when nobody gains or KV memory cannot hold the worst-case growth.
        """
        pol = self.spec
        assert pol is not None
        gamma = pol.gamma
        ctx_mean = S / B
        thr = gamma * pol.draft_cost + pol.verify_cost(B, ctx_mean)
        etau = self.etau
        spec = [rid for rid in rep.dec if etau[rid] > thr]
        if not spec:
            return False
        bs, it = self.bs, rep.it
        dec = rep.dec
        need = 0
        for rid in spec:
            c = dec[rid] + it
            need += -(-(c + gamma + 1) // bs) + (-c // bs)
        # members not speculating grow by one token: at most one block each
        if need + B - len(spec) > free:
            return False
        gen, out, log_a, rng = self.gen, self.out, self.log_alpha, self.spec_rng
        extras: list[tuple[int, int]] = []
        g_tok = 0
        attn = 0.0
        for rid in spec:
            la = log_a[rid]
            if la == 0.0:
                acc = gamma
            elif la == -math.inf:
                acc = 0
            else:
                acc = min(int(math.log(1.0 - rng.random()) / la), gamma)
            owed = out[rid] - gen[rid] - 1
            if acc > owed:
                acc = owed
            if acc > 0:
                extras.append((rid, acc))
            g_tok += gamma
            attn += gamma * (self.prm[rid] + gen[rid])
        m = self.model
        t_d = m.iteration_time(0, 0, S, B)
        dt = gamma * pol.draft_cost * t_d + m.iteration_time(g_tok, attn, S, B)
        rep.spec = extras
        rep.seg_kind = 2
        rep.k = 1
        rep.t0 = self.now
        rep.iters += 1
        rep.busy_time += dt
        self.spec_iterations += 1
        if self.spec_max_batch < B:
            self.spec_max_batch = B
        if rep.iters % self.cfg.price_every == 0:
            self.sample_prices(rep, 0, 0.0, S, B, blocked_lam, blocked_need, dt)
        self.schedule(rep, self.now + dt)
        return True

    def sample_prices(
        self,
        rep: _Replica,
        P: int,
        A: float,
        S: float,
        B: int,
        blocked_lam: float,
        blocked_need: int,
        horizon: float,
    ) -> None:
        p = self.sim.shadow_prices(P, A, S, B, rep.lam_in, blocked_lam, blocked_need, horizon)
        self.price_rows.append((self.now, rep.idx, p[0], p[1], p[2]))
        sink = self.sim.sink
        if sink is not None:
            sink.append(
                LedgerRecord(
                    request_id=f"replica-{rep.idx}-iter-{rep.iters}",
                    layer="serving",
                    choice=None,
                    options=(
                        Option("prefill_token", 0.0, p[0]),
                        Option("decode_token", 0.0, p[1]),
                        Option("kv_block", 0.0, p[2]),
                    ),
                    prices=PriceVector(value=0.0),
                    attributes={
                        "kind": "shadow_prices",
                        "scheduler": self.sched.name,
                        "replica": rep.idx,
                        "batch": B,
                        "waiting": len(rep.waiting),
                        "sim_time": self.now,
                    },
                )
            )

    def on_iteration_end(self, rep: _Replica) -> None:
        k = rep.k
        gen = self.gen
        # decode members each produced k tokens
        rep.it += k
        it = rep.it
        finished: list[int] = []
        if rep.dec:
            for rid in rep.dec:
                gen[rid] += k
                self.dec_ct[rid] += k
            heap = rep.dec_heap
            if rep.seg_kind == 2:
                # accepted draft tokens: context and finish iteration move forward
                for rid, x in rep.spec:
                    gen[rid] += x
                    self.dec_ct[rid] += x
                    rep.dec[rid] += x
                    rep.sum_fbase += x
                    fin = it + self.out[rid] - gen[rid]
                    self.fin_iter[rid] = fin
                    heapq.heappush(heap, (fin, rid))
                    self.spec_extra += x
                rep.spec = []
            while heap and heap[0][0] <= it:
                fin, rid = heapq.heappop(heap)
                # a request swapped out and back in can leave a duplicate heap entry
                if rid in rep.dec and self.fin_iter[rid] == fin and rid not in finished:
                    finished.append(rid)
        if rep.seg_kind == 0:
            pf_left, pf_done = self.pf_left, self.pf_done
            done_pf: list[int] = []
            for rid, x in rep.chunks:
                pf_left[rid] -= x
                pf_done[rid] += x
                self.prefill_ct[rid] += x
                if pf_left[rid] == 0:
                    done_pf.append(rid)
            if done_pf:
                keep = set(done_pf)
                rep.pf = [r for r in rep.pf if r not in keep]
                for rid in done_pf:
                    self.prefill_finished(rep, rid)
        for rid in finished:
            self.complete(rep, rid)
        self.plan(rep)

    def prefill_finished(self, rep: _Replica, rid: int) -> None:
        """The iteration that ends a prefill emits one token."""
        now = self.now
        if math.isnan(self.first[rid]):
            self.first[rid] = now
        self.gen[rid] += 1
        self.dec_ct[rid] += 1
        pblocks = self.priv[rid]
        rep.pf_priv -= pblocks
        self.priv[rid] = 0
        if self.gen[rid] >= self.out[rid]:
            self.finish_request(rep, rid, pblocks)
            return
        if rep.role == "prefill":
            # ship the KV to a decode replica; the blocks stay held until it lands
            size = (self.prm[rid] + self.gen[rid]) * self.cfg.kv_bytes_per_token
            start = max(now, self.link_free)
            self.link_free = start + size / self.cfg.link_bandwidth
            self.state[rid] = _XFER
            self.priv[rid] = pblocks
            rep.pf_priv += pblocks
            self.push(self.link_free + self.cfg.link_latency, 1, rid)
            return
        ctx_full = self.prm[rid] + self.gen[rid]
        self.join_decode(rep, rid, ctx_full - self.shared_tok[rid], ctx_full)

    def on_transfer_done(self, rid: int) -> None:
        src = self.reps[self.rep_of[rid]]
        blocks = self.priv[rid]
        src.pf_priv -= blocks
        self.priv[rid] = 0
        self.release(src, rid, blocks, keep_prompt=True)
        src.n_in -= 1
        src.lam_in -= self.lam[rid]
        if src.seg_kind == -1:
            self.plan(src)
        dst = self.pick(self.back)
        self.rep_of[rid] = dst.idx
        dst.n_in += 1
        dst.lam_in += self.lam[rid]
        self.state[rid] = _WAIT
        heapq.heappush(dst.waiting, (self.key[rid], rid))
        self.kick(dst)

    def complete(self, rep: _Replica, rid: int) -> None:
        blocks = self.leave_decode(rep, rid)
        self.finish_request(rep, rid, blocks)

    def finish_request(self, rep: _Replica, rid: int, private_blocks: int) -> None:
        self.finish[rid] = self.now
        self.state[rid] = _DONE
        self.release(rep, rid, private_blocks, keep_prompt=True)
        rep.n_in -= 1
        rep.lam_in -= self.lam[rid]
        if rep.deferred and self.now - rep.last_check >= self.recheck:
            rep.last_check = self.now
            self.recheck_deferred(rep, timer=False)

    # ---------------------------------------------------------------- results

    def result(self, wall: float) -> SimulationResult:
        arr = self.trace.arrival
        first = np.array(self.first)
        finish = np.array(self.finish)
        state = np.array(self.state)
        completed = state == _DONE
        rejected = state == _REJECTED
        if not np.all(completed | rejected):  # pragma: no cover - would be a simulator bug
            raise RuntimeError("simulation ended with unfinished requests")
        out = self.trace.output
        ttft = first - arr
        e2e = finish - arr
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = np.where(out > 1, (finish - first) / np.maximum(out - 1, 1), np.nan)
        tpot[~completed] = np.nan
        queue = np.array(self.admitted_at) - arr
        prices = (
            np.array(self.price_rows, dtype=np.float64) if self.price_rows else np.zeros((0, 5))
        )
        return SimulationResult(
            trace=self.trace,
            scheduler=self.sched.name,
            config=self.cfg,
            ttft=ttft,
            tpot=tpot,
            e2e=e2e,
            queue_delay=queue,
            completed=completed,
            rejected=rejected,
            prefill_tokens=np.array(self.prefill_ct, dtype=np.int64),
            cached_tokens=np.array(self.cached_ct, dtype=np.int64),
            decode_tokens=np.array(self.dec_ct, dtype=np.int64),
            preemptions=self.preemptions,
            too_long=self.too_long,
            events=self.events,
            iterations=sum(r.iters for r in self.reps),
            wall_s=wall,
            sim_time=float(np.nanmax(finish)) if completed.any() else 0.0,
            max_kv_used=np.array([r.max_used for r in self.reps], dtype=np.int64),
            busy_time=np.array([r.busy_time for r in self.reps]),
            prices=prices,
            spec_iterations=self.spec_iterations,
            spec_extra_tokens=self.spec_extra,
            spec_max_batch=self.spec_max_batch,
            prefix_evictions=self.prefix_evictions,
            prefix_policy=self.reps[0].policy.name if self.reps else "lru",
        )
