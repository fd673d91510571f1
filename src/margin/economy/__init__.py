"""The economy: one request through four layers on shared prices (Sec. 1, 4).

Names are loaded lazily (numpy, scipy and the layers are imported on first use).
"""

from typing import TYPE_CHECKING

from margin._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "config": [
            "DEFAULT_TIERS",
            "EconomyConfig",
            "ModelTier",
            "calibrate_from_data",
            "load_config",
        ],
        "stream": ["BACKGROUND_TENANTS", "TaskStream", "draw_stream"],
        "equilibrium": [
            "MarketAllocation",
            "Tenant",
            "clear_market",
            "default_market",
            "flat_allocation",
            "pareto_slack",
            "tenant_demand",
        ],
        "engine": [
            "LAYER_NAMES",
            "REGIMES",
            "EconomyResult",
            "LayerReport",
            "Regime",
            "RegimeResult",
            "run_economy",
            "run_regime",
        ],
    },
)

if TYPE_CHECKING:
    from margin.economy.config import (
        DEFAULT_TIERS as DEFAULT_TIERS,
        EconomyConfig as EconomyConfig,
        ModelTier as ModelTier,
        calibrate_from_data as calibrate_from_data,
        load_config as load_config,
    )
    from margin.economy.engine import (
        LAYER_NAMES as LAYER_NAMES,
        REGIMES as REGIMES,
        EconomyResult as EconomyResult,
        LayerReport as LayerReport,
        Regime as Regime,
        RegimeResult as RegimeResult,
        run_economy as run_economy,
        run_regime as run_regime,
    )
    from margin.economy.equilibrium import (
        MarketAllocation as MarketAllocation,
        Tenant as Tenant,
        clear_market as clear_market,
        default_market as default_market,
        flat_allocation as flat_allocation,
        pareto_slack as pareto_slack,
        tenant_demand as tenant_demand,
    )
    from margin.economy.stream import (
        BACKGROUND_TENANTS as BACKGROUND_TENANTS,
        TaskStream as TaskStream,
        draw_stream as draw_stream,
    )
