"""The core: the price vector, the allocation rule (Eq. 1-2), production, risk, price discovery.

Names are loaded lazily so that ``margin.core.prices`` stays importable without numpy.
"""

from margin._lazy import attach

# Not `typing.TYPE_CHECKING`: importing typing costs ~9 ms of `margin gate`'s start-up.
TYPE_CHECKING = False

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "allocation": [
            "NOT_SERVED",
            "Allocation",
            "BatchAllocation",
            "allocate",
            "allocate_batch",
            "crossover_value",
            "equimarginal_residuals",
            "surplus_matrix",
        ],
        "discovery": [
            "RESOURCES",
            "UPDATE_RULES",
            "Budgets",
            "ControllerState",
            "DualAscent",
            "MultiplicativeUpdate",
            "PriceController",
            "PriceDiscovery",
            "PriceUpdateRule",
            "StreamDecision",
            "Task",
            "TaskBatch",
            "discover_prices",
            "load_discovery_problem",
            "make_update_rule",
        ],
        "prices": ["InputError", "Option", "PriceVector", "check_number"],
        "production": ["CobbDouglas", "cobb_douglas_allocation", "cobb_douglas_numeric"],
        "risk": [
            "RISK_MEASURES",
            "CVaR",
            "Expectation",
            "RiskMeasure",
            "RiskPolicy",
            "WorstCase",
            "bernoulli_loss",
            "make_risk_measure",
        ],
    },
)

if TYPE_CHECKING:
    from margin.core.allocation import (
        NOT_SERVED as NOT_SERVED,
        Allocation as Allocation,
        BatchAllocation as BatchAllocation,
        allocate as allocate,
        allocate_batch as allocate_batch,
        crossover_value as crossover_value,
        equimarginal_residuals as equimarginal_residuals,
        surplus_matrix as surplus_matrix,
    )
    from margin.core.discovery import (
        RESOURCES as RESOURCES,
        UPDATE_RULES as UPDATE_RULES,
        Budgets as Budgets,
        ControllerState as ControllerState,
        DualAscent as DualAscent,
        MultiplicativeUpdate as MultiplicativeUpdate,
        PriceController as PriceController,
        PriceDiscovery as PriceDiscovery,
        PriceUpdateRule as PriceUpdateRule,
        StreamDecision as StreamDecision,
        Task as Task,
        TaskBatch as TaskBatch,
        discover_prices as discover_prices,
        load_discovery_problem as load_discovery_problem,
        make_update_rule as make_update_rule,
    )
    from margin.core.prices import (
        InputError as InputError,
        Option as Option,
        PriceVector as PriceVector,
        check_number as check_number,
    )
    from margin.core.production import (
        CobbDouglas as CobbDouglas,
        cobb_douglas_allocation as cobb_douglas_allocation,
        cobb_douglas_numeric as cobb_douglas_numeric,
    )
    from margin.core.risk import (
        RISK_MEASURES as RISK_MEASURES,
        CVaR as CVaR,
        Expectation as Expectation,
        RiskMeasure as RiskMeasure,
        RiskPolicy as RiskPolicy,
        WorstCase as WorstCase,
        bernoulli_loss as bernoulli_loss,
        make_risk_measure as make_risk_measure,
    )
