"""margin: agentic AI systems as marginal token allocation economies.

Every allocation decision in an agentic stack is the rule of Eq. 1 of the paper,

    i* = argmax_i  V·ΔQ_i − ΔC_i − λ·ΔL_i − ρ·ΔR_i,

read at one shared price vector (V, λ, ρ) whose entries are the Lagrange multipliers of
shared budgets (Eq. 3). Names load lazily: ``import margin`` does not import numpy.

Examples
--------
The worked example of Sec. 2:

>>> import margin
>>> cheap = margin.Option("cheap", quality=0.7, cost=1.0, risk=0.05)
>>> frontier = margin.Option("frontier", quality=0.9, cost=5.0, risk=0.01)
>>> margin.allocate(margin.PriceVector(value=10.0), [cheap, frontier]).choice
'cheap'
>>> margin.crossover_value(cheap, frontier), margin.crossover_value(
...     cheap, frontier, margin.PriceVector(value=0.0, risk_price=50.0))
(20.0, 10.0)
"""

from margin._lazy import attach

# Not `typing.TYPE_CHECKING`: importing typing costs ~9 ms of `margin gate`'s start-up.
TYPE_CHECKING = False

__version__ = "0.1.0"

__getattr__, __dir__, _names = attach(
    __name__,
    {
        "agent.autonomy": ["AutonomyModel"],
        "agent.controller": ["MarginalController"],
        "agent.guard": ["ActionDenied", "gated"],
        "agent.schedule": ["ActionClass", "AutonomySchedule"],
        "capital.cache": ["CacheReport", "PricedPrefixEviction", "ReuseRule"],
        "capital.depreciation": ["DepreciationEstimator"],
        "capital.rl": ["CapabilityModel", "allocate_investment"],
        "routing.data": ["RoutingDataset", "load_any", "load_routerbench"],
        "routing.menu": ["design_menu"],
        "routing.router": ["MarginalRouter"],
        "serving.prefix": ["PrefixEviction"],
        "serving.pricing": ["PriorityQueueModel", "Quote"],
        "serving.simulator": ["CONFIG_PRESETS", "ServingConfig", "SimulationResult", "simulate"],
        "serving.traces": ["Trace", "load_trace"],
        "economy.config": ["EconomyConfig"],
        "economy.engine": ["run_economy"],
        "economy.equilibrium": ["clear_market"],
        "report.page": ["build_report", "write_report"],
        "core.allocation": [
            "Allocation",
            "BatchAllocation",
            "allocate",
            "allocate_batch",
            "crossover_value",
            "equimarginal_residuals",
            "surplus_matrix",
        ],
        "core.discovery": [
            "Budgets",
            "PriceController",
            "PriceDiscovery",
            "Task",
            "discover_prices",
        ],
        "core.prices": ["InputError", "Option", "PriceVector"],
        "core.production": ["CobbDouglas", "cobb_douglas_allocation"],
        "core.risk": ["CVaR", "Expectation", "RiskMeasure", "RiskPolicy", "WorstCase"],
        "ledger.records": ["LedgerRecord", "Outcome", "TokenUsage"],
    },
)
__all__ = ["__version__", *_names]

if TYPE_CHECKING:
    from margin.agent.autonomy import AutonomyModel as AutonomyModel
    from margin.agent.controller import MarginalController as MarginalController
    from margin.agent.guard import ActionDenied as ActionDenied, gated as gated
    from margin.agent.schedule import (
        ActionClass as ActionClass,
        AutonomySchedule as AutonomySchedule,
    )
    from margin.capital.cache import (
        CacheReport as CacheReport,
        PricedPrefixEviction as PricedPrefixEviction,
        ReuseRule as ReuseRule,
    )
    from margin.capital.depreciation import DepreciationEstimator as DepreciationEstimator
    from margin.capital.rl import (
        CapabilityModel as CapabilityModel,
        allocate_investment as allocate_investment,
    )
    from margin.core.allocation import (
        Allocation as Allocation,
        BatchAllocation as BatchAllocation,
        allocate as allocate,
        allocate_batch as allocate_batch,
        crossover_value as crossover_value,
        equimarginal_residuals as equimarginal_residuals,
        surplus_matrix as surplus_matrix,
    )
    from margin.core.discovery import (
        Budgets as Budgets,
        PriceController as PriceController,
        PriceDiscovery as PriceDiscovery,
        Task as Task,
        discover_prices as discover_prices,
    )
    from margin.core.prices import (
        InputError as InputError,
        Option as Option,
        PriceVector as PriceVector,
    )
    from margin.core.production import (
        CobbDouglas as CobbDouglas,
        cobb_douglas_allocation as cobb_douglas_allocation,
    )
    from margin.core.risk import (
        CVaR as CVaR,
        Expectation as Expectation,
        RiskMeasure as RiskMeasure,
        RiskPolicy as RiskPolicy,
        WorstCase as WorstCase,
    )
    from margin.economy.config import EconomyConfig as EconomyConfig
    from margin.economy.engine import run_economy as run_economy
    from margin.economy.equilibrium import clear_market as clear_market
    from margin.ledger.records import (
        LedgerRecord as LedgerRecord,
        Outcome as Outcome,
        TokenUsage as TokenUsage,
    )
    from margin.report.page import build_report as build_report, write_report as write_report
    from margin.routing.data import (
        RoutingDataset as RoutingDataset,
        load_any as load_any,
        load_routerbench as load_routerbench,
    )
    from margin.routing.menu import design_menu as design_menu
    from margin.routing.router import MarginalRouter as MarginalRouter
    from margin.serving.prefix import PrefixEviction as PrefixEviction
    from margin.serving.pricing import PriorityQueueModel as PriorityQueueModel, Quote as Quote
    from margin.serving.simulator import (
        CONFIG_PRESETS as CONFIG_PRESETS,
        ServingConfig as ServingConfig,
        SimulationResult as SimulationResult,
        simulate as simulate,
    )
    from margin.serving.traces import Trace as Trace, load_trace as load_trace
