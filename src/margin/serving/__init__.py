"""The supply layer (Sec. 3.3): a fast LLM-serving simulator with congestion prices.

Names are loaded lazily so that importing ``margin.serving`` does not pull numpy.
"""

from typing import TYPE_CHECKING

from margin._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "costmodel": [
            "COST_MODELS",
            "CostModel",
            "DistServeCostModel",
            "SplitwiseCostModel",
            "load_cost_model",
        ],
        "metrics": [
            "analytic_fcfs",
            "distserve_goodput",
            "externality_fingerprint",
            "latency_stats",
            "summarize",
        ],
        "predictor": ["OutputLengthPredictor"],
        "pricing": [
            "PriorityQueueModel",
            "Quote",
            "cobham_waits",
            "externality_by_removal",
            "mendelson_whang_prices",
            "pk_wait",
            "request_work",
            "simulate_priority_queue",
        ],
        "prefix": [
            "PREFIX_EVICTIONS",
            "LRUEviction",
            "PrefixEviction",
            "PrefixEvictionFactory",
            "make_prefix_eviction",
        ],
        "profiles": ["DISTSERVE_A100_80G", "DISTSERVE_SOURCE"],
        "schedulers": [
            "FCFS",
            "SCHEDULERS",
            "SJF",
            "SRPT",
            "OracleSJF",
            "PricedScheduler",
            "PriorityScheduler",
            "Scheduler",
            "make_scheduler",
        ],
        "simulator": [
            "CONFIG_PRESETS",
            "ServingConfig",
            "SimulationResult",
            "Simulator",
            "simulate",
        ],
        "speculative": ["SpeculationPolicy", "expected_tokens", "speculative_speedup"],
        "traces": [
            "TRACE_FORMATS",
            "Trace",
            "load_azure",
            "load_mooncake",
            "load_trace",
            "load_vidur",
            "synthetic_trace",
            "tag_context_tenants",
        ],
    },
)

if TYPE_CHECKING:
    from margin.serving.costmodel import (
        COST_MODELS as COST_MODELS,
        CostModel as CostModel,
        DistServeCostModel as DistServeCostModel,
        SplitwiseCostModel as SplitwiseCostModel,
        load_cost_model as load_cost_model,
    )
    from margin.serving.metrics import (
        analytic_fcfs as analytic_fcfs,
        distserve_goodput as distserve_goodput,
        externality_fingerprint as externality_fingerprint,
        latency_stats as latency_stats,
        summarize as summarize,
    )
    from margin.serving.predictor import (
        OutputLengthPredictor as OutputLengthPredictor,
    )
    from margin.serving.prefix import (
        PREFIX_EVICTIONS as PREFIX_EVICTIONS,
        LRUEviction as LRUEviction,
        PrefixEviction as PrefixEviction,
        PrefixEvictionFactory as PrefixEvictionFactory,
        make_prefix_eviction as make_prefix_eviction,
    )
    from margin.serving.pricing import (
        PriorityQueueModel as PriorityQueueModel,
        Quote as Quote,
        cobham_waits as cobham_waits,
        externality_by_removal as externality_by_removal,
        mendelson_whang_prices as mendelson_whang_prices,
        pk_wait as pk_wait,
        request_work as request_work,
        simulate_priority_queue as simulate_priority_queue,
    )
    from margin.serving.profiles import (
        DISTSERVE_A100_80G as DISTSERVE_A100_80G,
        DISTSERVE_SOURCE as DISTSERVE_SOURCE,
    )
    from margin.serving.schedulers import (
        FCFS as FCFS,
        SCHEDULERS as SCHEDULERS,
        SJF as SJF,
        SRPT as SRPT,
        OracleSJF as OracleSJF,
        PricedScheduler as PricedScheduler,
        PriorityScheduler as PriorityScheduler,
        Scheduler as Scheduler,
        make_scheduler as make_scheduler,
    )
    from margin.serving.simulator import (
        CONFIG_PRESETS as CONFIG_PRESETS,
        ServingConfig as ServingConfig,
        SimulationResult as SimulationResult,
        Simulator as Simulator,
        simulate as simulate,
    )
    from margin.serving.speculative import (
        SpeculationPolicy as SpeculationPolicy,
        expected_tokens as expected_tokens,
        speculative_speedup as speculative_speedup,
    )
    from margin.serving.traces import (
        TRACE_FORMATS as TRACE_FORMATS,
        Trace as Trace,
        load_azure as load_azure,
        load_mooncake as load_mooncake,
        load_trace as load_trace,
        load_vidur as load_vidur,
        synthetic_trace as synthetic_trace,
        tag_context_tenants as tag_context_tenants,
    )
