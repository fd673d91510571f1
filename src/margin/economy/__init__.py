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
        "predictions": [
            "DATA_FILES",
            "PLOT_FILES",
            "QualityBarRouter",
            "congestion_prediction",
            "headline",
            "plot_externality",
            "plot_router_regret",
            "plot_verifier",
            "router_regret_prediction",
            "run_predictions",
            "verifier_prediction",
        ],
        "sweep": [
            "BACKENDS",
            "METRICS",
            "ProcessBackend",
            "RayBackend",
            "SerialBackend",
            "SweepBackend",
            "SweepJob",
            "SweepSpec",
            "load_sweep",
            "parse_regime",
            "run_sweep",
            "summarize_sweep",
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
    from margin.economy.predictions import (
        DATA_FILES as DATA_FILES,
        PLOT_FILES as PLOT_FILES,
        QualityBarRouter as QualityBarRouter,
        congestion_prediction as congestion_prediction,
        headline as headline,
        plot_externality as plot_externality,
        plot_router_regret as plot_router_regret,
        plot_verifier as plot_verifier,
        router_regret_prediction as router_regret_prediction,
        run_predictions as run_predictions,
        verifier_prediction as verifier_prediction,
    )
    from margin.economy.stream import (
        BACKGROUND_TENANTS as BACKGROUND_TENANTS,
        TaskStream as TaskStream,
        draw_stream as draw_stream,
    )
    from margin.economy.sweep import (
        BACKENDS as BACKENDS,
        METRICS as METRICS,
        ProcessBackend as ProcessBackend,
        RayBackend as RayBackend,
        SerialBackend as SerialBackend,
        SweepBackend as SweepBackend,
        SweepJob as SweepJob,
        SweepSpec as SweepSpec,
        load_sweep as load_sweep,
        parse_regime as parse_regime,
        run_sweep as run_sweep,
        summarize_sweep as summarize_sweep,
    )
