"""The capital layer (Sec. 3.4): KV caches as priced inventory and RL post-training as
token investment. Names are loaded lazily (numpy/scipy only when used)."""

from typing import TYPE_CHECKING

from margin._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "trace": [
            "BLOCK_TOKENS",
            "MooncakeTrace",
            "Provenance",
            "ValueModel",
            "load_mooncake",
        ],
        "depreciation": [
            "CacheDepreciation",
            "DepreciationEstimator",
            "reuse_spells",
            "simulate_spells",
            "trace_depreciation",
        ],
        "cache": [
            "CACHE_POLICIES",
            "BlockProvenance",
            "CachePolicy",
            "CacheReport",
            "LFUPolicy",
            "LRUPolicy",
            "PricedPolicy",
            "PricedPrefixEviction",
            "ReuseRule",
            "make_cache_policy",
            "replay",
        ],
        "rl": [
            "DEFAULT_ASSETS",
            "FIXED_RATIOS",
            "GAIN_FUNCTIONS",
            "USES",
            "CESGain",
            "CapabilityModel",
            "CobbDouglasGain",
            "GainFunction",
            "InvestmentAllocation",
            "PortfolioAsset",
            "StalenessCalibration",
            "admit_rollouts",
            "allocate_investment",
            "budget_report",
            "calibrate_staleness",
            "efficient_frontier",
            "group_marginal_value",
            "model_from_config",
            "rl_asset",
            "simulate_capability",
            "simulate_staleness",
            "staleness_threshold",
            "tokens_to_reach",
            "verifier_cut_effect",
            "zero_advantage_filter",
        ],
    },
)

if TYPE_CHECKING:
    from margin.capital.cache import (
        CACHE_POLICIES as CACHE_POLICIES,
        BlockProvenance as BlockProvenance,
        CachePolicy as CachePolicy,
        CacheReport as CacheReport,
        LFUPolicy as LFUPolicy,
        LRUPolicy as LRUPolicy,
        PricedPolicy as PricedPolicy,
        PricedPrefixEviction as PricedPrefixEviction,
        ReuseRule as ReuseRule,
        make_cache_policy as make_cache_policy,
        replay as replay,
    )
    from margin.capital.depreciation import (
        CacheDepreciation as CacheDepreciation,
        DepreciationEstimator as DepreciationEstimator,
        reuse_spells as reuse_spells,
        simulate_spells as simulate_spells,
        trace_depreciation as trace_depreciation,
    )
    from margin.capital.rl import (
        DEFAULT_ASSETS as DEFAULT_ASSETS,
        FIXED_RATIOS as FIXED_RATIOS,
        GAIN_FUNCTIONS as GAIN_FUNCTIONS,
        USES as USES,
        CapabilityModel as CapabilityModel,
        CESGain as CESGain,
        CobbDouglasGain as CobbDouglasGain,
        GainFunction as GainFunction,
        InvestmentAllocation as InvestmentAllocation,
        PortfolioAsset as PortfolioAsset,
        StalenessCalibration as StalenessCalibration,
        admit_rollouts as admit_rollouts,
        allocate_investment as allocate_investment,
        budget_report as budget_report,
        calibrate_staleness as calibrate_staleness,
        efficient_frontier as efficient_frontier,
        group_marginal_value as group_marginal_value,
        model_from_config as model_from_config,
        rl_asset as rl_asset,
        simulate_capability as simulate_capability,
        simulate_staleness as simulate_staleness,
        staleness_threshold as staleness_threshold,
        tokens_to_reach as tokens_to_reach,
        verifier_cut_effect as verifier_cut_effect,
        zero_advantage_filter as zero_advantage_filter,
    )
    from margin.capital.trace import (
        BLOCK_TOKENS as BLOCK_TOKENS,
        MooncakeTrace as MooncakeTrace,
        Provenance as Provenance,
        ValueModel as ValueModel,
        load_mooncake as load_mooncake,
    )
