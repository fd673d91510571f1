"""Configuration of an end-to-end economy: the workload, the menu of models, the budgets.

Every default below is either computed from the shared real data (the figure is stated
with its source, and :func:`calibrate_from_data` recomputes it through the layers' own
loaders) or a modelling assumption, labelled as such.

Calibrations (recomputed by :func:`calibrate_from_data` when ``data_dir`` is given):

* model tiers: mean 0/1 quality and mean USD cost per prompt of four models on the
  Pareto frontier of RouterBench's MBPP split (coding prompts; 299 rows of
  ``routing/routerbench/mbpp_train.csv``, withmartian/routerbench via shuhao02/RouterDC,
  MIT), read with :func:`margin.routing.data.load_routerbench`:
  Mistral-7B 0.328 / $4.8e-5, Mixtral-8x7B 0.542 / $1.76e-4, GPT-3.5-turbo 0.639 /
  $3.34e-4, GPT-4-1106 0.686 / $9.38e-3;
* chat tenant: prompt and output lengths lognormal with the mean and log-s.d. of the
  Azure LLM inference conversation trace (1,155 / 0.985 and 211 / 0.859 tokens; 5.5 req/s
  over 3,502 s; Azure/AzurePublicDataset, CC-BY 4.0), read with
  :func:`margin.serving.traces.load_azure`;
* coding agent: the agent layer's :class:`~margin.agent.controller.EpisodeModel`
  calibration on SWE-Bench Pro (SWE-agent + GPT-5: $0.0284 per step, resolve ceiling
  0.38, 1.28 s of tool time per step; nilenso/swe-bench-pro-cost-token-time-analysis);
  per model call about 1,000 new prompt tokens and 200 output tokens (SWE-Bench Pro:
  median observation characters / 4 per step and output tokens per step);
* imperfect tests: ``test_blind_share`` ε = 0.078 of wrong patches pass any amount of
  verification — Wang, Pradel & Liu (2025), "Are 'Solved Issues' in SWE-bench Really
  Solved Correctly?", find 7.8% of patches counted correct by SWE-bench's validation
  failing the developer-written test suite;
* trainer: staleness decay ω = 0.1715 per policy version, the agent-independent fit of
  :func:`margin.capital.rl.calibrate_staleness` to AReaL v0.3's η ablation (decoupled
  PPO; inclusionAI/AReaL, Apache-2.0).

Assumptions (no public data pins them down): coding task values lognormal (median $20,
log-s.d. 1.2); risk classes as in :data:`margin.agent.simulator.RISK_CLASSES`; delay
prices λ (coding $0.005/s ≈ $18 per developer-hour waiting, chat $0.02/s, long-context
$0.001/s); chat V = $0.05, long-context V = $0.50 with 8,000-token prompts; a weaker
model's agent resolve ceiling and per-step price scale with its MBPP quality and price
relative to the frontier tier; every tier is served by the same cluster (the serving
layer's OPT-13B on A100 cost model); a clean trace is worth $1 of capability to the
trainer and costs $0.20 of update tokens; a policy version per 60 s plus a geometric
asynchronous lag of mean 2 versions.

KV cache (Sec. 3.4; the numbers that decide whether the cache is under pressure):

* agent context: call k of a task sends the task's whole context, its repository
  context R plus every earlier step's new prompt (``call_prompt_tokens``) and output
  (``call_output_tokens``) tokens, so call k shares its prefix with call k−1. On
  SWE-Bench Pro (SWE-agent + GPT-5, 730 tasks) a least-squares fit of tokens per call
  against steps gives R = 17,288 tokens and 783 tokens of growth per step; the growth
  per step used here is the economy's 1,000 + 200 tokens. The serving cluster is the
  OPT-13B/A100 model with 60k tokens of KV per replica, so R is scaled to
  ``repo_context_tokens`` = 2,048 and the agent compacts its history (context
  management, as SWE-agent and Claude Code do) when the context would pass
  ``context_window_tokens`` = 8,192: the context restarts at R + one step (the
  repository blocks stay shared). Working set: a coding task holds ~5k tokens on
  average; with ~20-40 tasks in flight (siloed tasks last ~850 s) plus the background
  tenants' unshared prompts (~2.2k tokens/s written), the 4 × 60k tokens of KV turn over
  in tens of seconds, so reuse competes with eviction (assumption, scaled);
* blocks: ``hash_block_tokens`` = 512 (Mooncake's hash-block size); background chat
  and long-context requests carry their own, unshared blocks;
* priced eviction (shared regime): δ_S = 0.2297 per minute = 0.003828 per second, the
  :func:`margin.capital.depreciation.trace_depreciation` fit on the Mooncake
  conversation trace (kvcache-ai/Mooncake, Apache-2.0); discount β = 0.999 per second
  (assumption); each block carries the published value of the task that wrote it;
* cache-read price: a cached prompt token costs ``1 − cache_read_discount`` = 10% of an
  uncached one and output tokens cost ``output_input_price_ratio`` = 8× input tokens
  (gpt-5-mini in the built-in LiteLLM price table: $2.5e-7 / $2.5e-8 / $2e-6 per input /
  cached / output token, the GPT-5 family's ratios; the agent calibration is GPT-5). A
  call's price is its tier's per-step price with its cached tokens discounted:
  ``step_cost·(1 − d·cached/(prompt + ratio·output))``.

Budgets of Eq. 3 (a policy choice, set so that they bind in some intervals and not in
others; per task, turned into per-interval targets by the expected tasks per interval):
cost $0.50 per task ≈ 1.1× the mean model spend of the unconstrained shared regime on
seeds 0-4 ($0.45), so it binds in the intervals where high-V tasks buy the frontier tier;
latency SLA 100 s per task ≈ 0.87× its mean ex-ante latency (115 s); risk envelope $3 of
expected loss per task, i.e. $12 per interval, less than one unreviewed submission of a
high-risk-class patch (≈ 0.05 escape × $300), so it binds when such tasks arrive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from margin._io import parse_structured
from margin.core.prices import InputError, check_fields, check_number

__all__ = ["DEFAULT_TIERS", "EconomyConfig", "ModelTier", "calibrate_from_data", "load_config"]


@dataclass(frozen=True, slots=True)
class ModelTier:
    """One model on the router's menu: benchmark quality and price per prompt.

    ``quality`` is the mean pass rate on the calibration benchmark and ``cost`` the mean
    USD per benchmark prompt; the economy scales the agent's resolve ceiling by
    ``quality / top quality`` and its price per step by ``cost / top cost``.
    """

    name: str
    quality: float
    cost: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError("model tier: field 'name' must be a non-empty string")
        where = f"model tier '{self.name}'"
        q = check_number(where, "quality", self.quality, nonnegative=True)
        if not 0.0 < q <= 1.0:
            raise InputError(f"{where}: field 'quality' must be in (0, 1], got {q}")
        c = check_number(where, "cost", self.cost, nonnegative=True)
        if c <= 0:
            raise InputError(f"{where}: field 'cost' must be > 0, got {c}")
        object.__setattr__(self, "quality", q)
        object.__setattr__(self, "cost", c)


#: RouterBench MBPP means (see the module docstring), cheapest first.
DEFAULT_TIERS: tuple[ModelTier, ...] = (
    ModelTier("mistral-7b-chat", 0.328, 4.843e-05),
    ModelTier("mixtral-8x7b-chat", 0.542, 1.756e-04),
    ModelTier("gpt-3.5-turbo-1106", 0.639, 3.342e-04),
    ModelTier("gpt-4-1106-preview", 0.686, 9.375e-03),
)

#: RouterBench model names of the default tiers (for :func:`calibrate_from_data`).
_TIER_SOURCES = {
    t.name: n
    for t, n in zip(
        DEFAULT_TIERS,
        (
            "mistralai/mistral-7b-chat",
            "mistralai/mixtral-8x7b-chat",
            "gpt-3.5-turbo-1106",
            "gpt-4-1106-preview",
        ),
        strict=True,
    )
}

_INT_FIELDS = (
    "seed",
    "n_coding",
    "replicas",
    "verify_lookahead",
    "closed_loop_passes",
    "hash_block_tokens",
)
_POSITIVE = (
    "horizon_s",
    "interval_s",
    "value_median",
    "call_prompt_tokens",
    "call_output_tokens",
    "chat_prompt_mean",
    "chat_output_mean",
    "long_prompt_mean",
    "long_output_mean",
    "version_s",
    "cost_budget_per_task",
    "latency_sla_per_task",
    "risk_envelope_per_task",
    "eta0",
    "repo_context_tokens",
    "context_window_tokens",
    "cache_discount_per_s",
)


@dataclass(frozen=True, slots=True)
class EconomyConfig:
    """Everything an economy run needs; the defaults are the built-in workload.

    Parameters (workload)
    ---------------------
    seed : int
        Seed of the task stream (both regimes see the same stream).
    n_coding : int
        Coding-agent tasks ("fix the failing test") arriving over ``horizon_s``.
    horizon_s : float
        Arrival window in seconds.
    chat_rate, long_rate : float
        Poisson arrival rates (1/s) of the chat and long-context tenants.
    value_median, value_sigma : float
        Lognormal value V (USD) of a coding task.
    chat_value, long_value : float
        V of one chat / long-context request.
    latency_price_coding, latency_price_chat, latency_price_long : float
        λ (USD per second) of each tenant: the social price of its delay.
    risk_price, irreversible_risk_price : float
        Social ρ and ρ_irr applied to a realized loss (USD per USD of loss).
    call_prompt_tokens, call_output_tokens : float
        Mean new prompt and output tokens of one agent model call.
    chat_prompt_mean, chat_prompt_sigma, chat_output_mean, chat_output_sigma : float
        Lognormal lengths of chat requests (Azure conversation trace).
    long_prompt_mean, long_output_mean : float
        Lognormal means (log-s.d. 0.5) of long-context requests.
    flat_usd_per_mtok : float
        Flat token price (USD per million tokens) paid by the chat and long-context
        tenants (Mixtral-8x7B list price, assumption).
    tiers : tuple of ModelTier
        The router's menu, cheapest first.
    tool_seconds : float
        Tool time per agent step (seconds).

    Parameters (layers and prices)
    ------------------------------
    quality_bar : float
        The siloed router's fixed bar: the cheapest tier with benchmark quality >= bar.
    replicas : int
        Serving replicas (:class:`~margin.serving.simulator.ServingConfig`).
    interval_s : float
        Price publication interval.
    cost_budget_per_task, latency_sla_per_task, risk_envelope_per_task : float
        Budgets of Eq. 3 per coding task (USD, seconds, USD of expected loss); the online
        controller's per-interval targets are these times the expected tasks per interval.
        The defaults bind part of the time on the built-in workload (module docstring).
    eta0 : float
        Step size of the price controller.
    trace_value, update_cost, omega, version_s, mean_async_lag : float
        Trainer: capability value of a clean trace (USD), update cost per trace (USD),
        staleness decay per version, seconds per policy version, mean asynchronous lag.
    verify_lookahead : int
        Verify steps of the ``verify`` option recorded at an episode's end.
    test_blind_share : float
        Share ε of wrong patches that no amount of verification catches (the tests are not
        exhaustive): the tests catch ``(1 − ε)·(1 − e^{−T_v/k_v})`` of wrong patches, so a
        wrong merge, and its loss L of the task's risk class, stays possible (in [0, 1)).
    closed_loop_passes : int
        Extra serving simulations in which each task's calls are re-issued one after the
        other at the previous pass's realized latencies (0: open loop at the quote).
    repo_context_tokens, context_window_tokens : float
        R, the repository context every call of a task starts with, and the context size
        at which the agent compacts its history (module docstring).
    hash_block_tokens : int
        Tokens per prefix-cache hash block.
    cache_depreciation_per_s, cache_discount_per_s : float
        δ_S and β (per second) of the shared regime's priced prefix eviction.
    cache_read_discount : float
        d, the share of an input token's price saved when it is read from the cache.
    output_input_price_ratio : float
        Price of an output token relative to an input token.
    data_dir : str or None
        Shared data folder; when set, tiers, chat lengths and ω are recalibrated from it.
    """

    seed: int = 0
    n_coding: int = 40
    horizon_s: float = 600.0
    chat_rate: float = 1.0
    long_rate: float = 0.12
    value_median: float = 20.0
    value_sigma: float = 1.2
    chat_value: float = 0.05
    long_value: float = 0.5
    latency_price_coding: float = 0.005
    latency_price_chat: float = 0.02
    latency_price_long: float = 0.001
    risk_price: float = 1.0
    irreversible_risk_price: float = 1.0
    call_prompt_tokens: float = 1000.0
    call_output_tokens: float = 200.0
    chat_prompt_mean: float = 1155.0
    chat_prompt_sigma: float = 0.985
    chat_output_mean: float = 211.0
    chat_output_sigma: float = 0.859
    long_prompt_mean: float = 8000.0
    long_output_mean: float = 300.0
    flat_usd_per_mtok: float = 0.6
    tiers: tuple[ModelTier, ...] = DEFAULT_TIERS
    tool_seconds: float = 1.28
    quality_bar: float = 0.5
    replicas: int = 4
    interval_s: float = 60.0
    cost_budget_per_task: float = 0.5
    latency_sla_per_task: float = 100.0
    risk_envelope_per_task: float = 3.0
    eta0: float = 0.5
    trace_value: float = 1.0
    update_cost: float = 0.2
    omega: float = 0.1715
    version_s: float = 60.0
    mean_async_lag: float = 2.0
    verify_lookahead: int = 8
    closed_loop_passes: int = 1
    test_blind_share: float = 0.078
    repo_context_tokens: float = 2048.0
    context_window_tokens: float = 8192.0
    hash_block_tokens: int = 512
    cache_depreciation_per_s: float = 0.2297 / 60.0
    cache_discount_per_s: float = 0.999
    cache_read_discount: float = 0.9
    output_input_price_ratio: float = 8.0
    data_dir: str | None = field(default=None)

    def __post_init__(self) -> None:
        where = "economy config"
        for f in fields(self):
            name = f.name
            v = getattr(self, name)
            if name in ("tiers", "data_dir"):
                continue
            if name in _INT_FIELDS:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise InputError(f"{where}: field '{name}' must be an integer, got {v!r}")
                if v < (0 if name in ("seed", "closed_loop_passes") else 1):
                    raise InputError(f"{where}: field '{name}' must be >= 1, got {v}")
                continue
            x = check_number(where, name, v, nonnegative=True)
            if name in _POSITIVE and x <= 0:
                raise InputError(f"{where}: field '{name}' must be > 0, got {x}")
            object.__setattr__(self, name, x)
        tiers = tuple(self.tiers)
        if not tiers or not all(isinstance(t, ModelTier) for t in tiers):
            raise InputError(f"{where}: field 'tiers' must be a non-empty list of model tiers")
        names = [t.name for t in tiers]
        if len(set(names)) != len(names):
            raise InputError(f"{where}: field 'tiers' has duplicate names")
        object.__setattr__(self, "tiers", tuple(sorted(tiers, key=lambda t: t.cost)))
        if not any(t.quality >= self.quality_bar for t in tiers):
            raise InputError(
                f"{where}: field 'quality_bar' ({self.quality_bar}) is above every tier's quality"
            )
        if not self.test_blind_share < 1.0:
            raise InputError(
                f"{where}: field 'test_blind_share' must be in [0, 1), got {self.test_blind_share}"
            )
        if not self.cache_read_discount <= 1.0:
            raise InputError(
                f"{where}: field 'cache_read_discount' must be in [0, 1], "
                f"got {self.cache_read_discount}"
            )
        if not self.cache_discount_per_s <= 1.0:
            raise InputError(
                f"{where}: field 'cache_discount_per_s' must be in (0, 1], "
                f"got {self.cache_discount_per_s}"
            )
        if self.context_window_tokens < (
            self.repo_context_tokens + self.call_prompt_tokens + self.call_output_tokens
        ):
            raise InputError(
                f"{where}: field 'context_window_tokens' must hold the repository context "
                "plus one step (repo_context_tokens + call_prompt_tokens + call_output_tokens)"
            )
        if self.interval_s > self.horizon_s:
            raise InputError(f"{where}: field 'interval_s' must be <= 'horizon_s'")
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise InputError(f"{where}: field 'data_dir' must be a string path")

    @property
    def n_intervals(self) -> int:
        """Price publication intervals over the horizon."""
        return math.ceil(self.horizon_s / self.interval_s - 1e-9)

    def with_(self, **changes: Any) -> EconomyConfig:
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tiers"] = [asdict(t) for t in self.tiers]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "economy config") -> EconomyConfig:
        """Build from a mapping of fields (unknown fields are an error)."""
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: expected an object, got {type(data).__name__}")
        check_fields(where, data, (f.name for f in fields(cls)))
        kw: dict[str, Any] = {str(key): v for key, v in data.items()}
        if "tiers" in kw:
            raw = kw["tiers"]
            if not isinstance(raw, list):
                raise InputError(f"{where}: field 'tiers' must be a list")
            tiers = []
            for i, t in enumerate(raw):
                if not isinstance(t, Mapping) or set(t) != {"name", "quality", "cost"}:
                    raise InputError(
                        f"{where}: tiers[{i}] must be an object with name, quality, cost"
                    )
                try:
                    tiers.append(ModelTier(t["name"], t["quality"], t["cost"]))
                except InputError as e:
                    raise InputError(f"{where}: tiers[{i}]: {e}") from None
            kw["tiers"] = tuple(tiers)
        try:
            return cls(**kw)
        except InputError as e:
            raise InputError(str(e).replace("economy config", where, 1)) from None


def load_config(path: str | Path) -> EconomyConfig:
    """Read an :class:`EconomyConfig` from a JSON or YAML file (by extension).

    Errors name the file (and line for syntax errors).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = os.path.join(d, "e.json")
    >>> _ = open(p, "w").write('{"n_coding": 12, "seed": 3}')
    >>> load_config(p).n_coding
    12
    >>> _ = open(p, "w").write('{"n_coding": 12, "seeds": 3}')
    >>> load_config(p)
    Traceback (most recent call last):
    ...
    margin.core.prices.InputError: ...e.json: unknown field 'seeds'
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: config file not found")
    data = parse_structured(p.read_text(encoding="utf-8"), p)
    if data is None:
        data = {}
    return EconomyConfig.from_dict(data, str(p))


def calibrate_from_data(config: EconomyConfig, data_dir: str | Path) -> EconomyConfig:
    """Recompute the data-calibrated fields from the shared data, via the layers' loaders.

    Reads RouterBench MBPP (tiers), the Azure conversation trace (chat lengths and log-
    s.d.) and the RL staleness ablations (ω, decoupled PPO). Missing files raise
    :class:`InputError` naming the file.
    """
    import numpy as np

    from margin.capital.rl import calibrate_staleness
    from margin.routing.data import load_routerbench
    from margin.serving.traces import load_azure

    root = Path(data_dir)
    rb = load_routerbench(root / "routing" / "routerbench" / "mbpp_train.csv")
    q = np.nanmean(rb.quality, axis=0)
    c = np.nanmean(rb.cost, axis=0)
    col = {m: i for i, m in enumerate(rb.models)}
    tiers = []
    for t in DEFAULT_TIERS:
        src = _TIER_SOURCES[t.name]
        if src not in col:
            raise InputError(f"{root}: RouterBench MBPP has no model '{src}'")
        tiers.append(ModelTier(t.name, round(float(q[col[src]]), 3), float(c[col[src]])))
    az = load_azure(root / "serving" / "AzureLLMInferenceTrace_conv.csv")
    stale = calibrate_staleness(root / "rl" / "rl_staleness_ablations.csv")
    return replace(
        config,
        tiers=tuple(tiers),
        chat_prompt_mean=float(az.prompt.mean()),
        chat_prompt_sigma=float(np.log(az.prompt).std()),
        chat_output_mean=float(az.output.mean()),
        chat_output_sigma=float(np.log(az.output).std()),
        omega=float(stale.omega["decoupled_ppo"]),
    )
