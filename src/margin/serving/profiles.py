"""Published iteration-time fits embedded as constants (no data file needed at run time).

Source: LLMServe/DistServe @ 82831f16, ``simdistserve/estimators/profile_data/
profiler-a100-80g.{distserve,vllm}.json`` (Apache-2.0), as mirrored in
``../shared/data/serving/distserve_profiler-a100-80g.*.json``. DistServe (Zhong et al.,
OSDI 2024) fitted, per model and tensor-parallel degree on an A100-80G, iteration times
in milliseconds of the form

* prefill: ``a + b·Σprompt + c·Σprompt²``
* decode: ``a + b·Σcontext + c·batch`` with one fit for batches below
  ``decoding_large_small_bs_threshold`` and another above.

Only the ``distserve`` engine profile is embedded (the ``vllm`` one can be loaded with
:meth:`margin.serving.costmodel.DistServeCostModel.from_json`). Coefficients are copied
verbatim.
"""

from __future__ import annotations

__all__ = ["DISTSERVE_A100_80G", "DISTSERVE_SOURCE"]

DISTSERVE_SOURCE = (
    "LLMServe/DistServe@82831f16 simdistserve/estimators/profile_data/"
    "profiler-a100-80g.distserve.json (Apache-2.0)"
)

#: ``{model: {tp: {"threshold", "prefill", "decoding_smallbs", "decoding_largebs"}}}``,
#: coefficients (a, b, c) in milliseconds.
DISTSERVE_A100_80G: dict[str, dict[int, dict[str, tuple[float, float, float] | int]]] = {
    "facebook/opt-13b": {
        1: {
            "threshold": 95,
            "prefill": (18.10254647486372, 0.1019122572698738, 7.122264314252114e-06),
            "decoding_smallbs": (19.934702624895458, 0.0006269356524350583, 0.03850697740828398),
            "decoding_largebs": (7.1661889468253595, 0.0005798000403396046, 0.15831096191764046),
        },
        2: {
            "threshold": 95,
            "prefill": (14.742973695171262, 0.06857720739764, 2.4495727400243586e-06),
            "decoding_smallbs": (13.294796350285385, 0.00034109219700723494, 0.06296393225243659),
            "decoding_largebs": (10.638741913126715, 0.00031183369638295723, 0.08562913604102729),
        },
        4: {
            "threshold": 95,
            "prefill": (12.062297033449054, 0.03808140082550695, 5.226249731787869e-07),
            "decoding_smallbs": (10.256231678259395, 0.00018786702316166354, 0.03269273629225551),
            "decoding_largebs": (10.483514938375274, 0.00017120888562939117, 0.04566648525887034),
        },
    },
    "facebook/opt-66b": {
        2: {
            "threshold": 95,
            "prefill": (43.05881348288936, 0.2742292870458432, 2.2478042467169447e-05),
            "decoding_smallbs": (48.288015489286245, 0.0009424343535737985, 0.12755020094383188),
            "decoding_largebs": (28.727693993711597, 0.00047448475459061987, 0.29617792360743994),
        },
        3: {
            "threshold": 95,
            "prefill": (32.998230028437035, 0.19568256864690514, 1.2205248980953765e-05),
            "decoding_smallbs": (35.8015439512012, 0.0005845004786127403, 0.0952669764890301),
            "decoding_largebs": (22.653861586978355, 0.0005358489190129727, 0.208514444037787),
        },
        4: {
            "threshold": 95,
            "prefill": (29.441636037717455, 0.151352180625198, 8.317450765979451e-06),
            "decoding_smallbs": (30.760284619429587, 0.000451947603788462, 0.063284195750671),
            "decoding_largebs": (27.47082137429487, 0.0004046845541646486, 0.12480667738300383),
        },
        8: {
            "threshold": 95,
            "prefill": (25.490662375045222, 0.10659177664763161, 3.3910502518615973e-06),
            "decoding_smallbs": (23.15511135047022, 0.00022691488497826264, 0.04800638397272423),
            "decoding_largebs": (21.71772781576609, 0.0003758089655762475, 0.08978614175851013),
        },
    },
}
