"""The core: the price vector, the allocation rule (Eq. 1-2), production, risk, price discovery."""

from margin.core.allocation import (
    NOT_SERVED,
    Allocation,
    BatchAllocation,
    allocate,
    allocate_batch,
    crossover_value,
    equimarginal_residuals,
    surplus_matrix,
)
from margin.core.prices import InputError, Option, PriceVector
from margin.core.production import CobbDouglas, cobb_douglas_allocation, cobb_douglas_numeric
from margin.core.risk import (
    RISK_MEASURES,
    CVaR,
    Expectation,
    RiskMeasure,
    RiskPolicy,
    WorstCase,
    bernoulli_loss,
    make_risk_measure,
)

__all__ = [
    "NOT_SERVED",
    "RISK_MEASURES",
    "Allocation",
    "BatchAllocation",
    "CVaR",
    "CobbDouglas",
    "Expectation",
    "InputError",
    "Option",
    "PriceVector",
    "RiskMeasure",
    "RiskPolicy",
    "WorstCase",
    "allocate",
    "allocate_batch",
    "bernoulli_loss",
    "cobb_douglas_allocation",
    "cobb_douglas_numeric",
    "crossover_value",
    "equimarginal_residuals",
    "make_risk_measure",
    "surplus_matrix",
]
