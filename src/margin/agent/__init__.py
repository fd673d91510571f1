"""The action layer (Sec. 3.2): autonomy pricing, the permission gate, the step controller.

Names are loaded lazily: ``margin gate`` imports :mod:`margin.agent.gate` on every tool
call of a coding agent and must not pull numpy.
"""

from margin._lazy import attach

# Not `typing.TYPE_CHECKING`: importing typing costs ~9 ms of `margin gate`'s start-up.
TYPE_CHECKING = False

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "schedule": [
            "HOOK_DECISIONS",
            "LEVELS",
            "ActionClass",
            "ActionPrice",
            "AutonomySchedule",
            "Oversight",
            "load_schedule",
            "two_point_cvar",
        ],
        "classify": ["Part", "classify_command", "classify_tool_call", "is_protected_path"],
        "gate": ["GateDecision", "decide"],
        "guard": ["ActionDenied", "ConfirmationRequired", "check", "gated", "guard"],
        "autonomy": ["AutonomyModel", "AutonomySolution", "calibrate_swe_pro"],
        "controller": [
            "EpisodeModel",
            "EpisodeState",
            "MarginalController",
            "StepDecision",
            "TeamProduction",
            "equimarginal_split",
            "verifier_budget",
        ],
        "simulator": [
            "POLICIES",
            "Policy",
            "PolicyResult",
            "compare_policies",
            "policy_grid",
            "sample_tasks",
            "simulate",
            "verifier_sweep",
        ],
        "evidence": ["aider_retry_evidence", "swe_effi_evidence", "swe_pro_evidence"],
    },
)

if TYPE_CHECKING:
    from margin.agent.autonomy import (
        AutonomyModel as AutonomyModel,
        AutonomySolution as AutonomySolution,
        calibrate_swe_pro as calibrate_swe_pro,
    )
    from margin.agent.classify import (
        Part as Part,
        classify_command as classify_command,
        classify_tool_call as classify_tool_call,
        is_protected_path as is_protected_path,
    )
    from margin.agent.controller import (
        EpisodeModel as EpisodeModel,
        EpisodeState as EpisodeState,
        MarginalController as MarginalController,
        StepDecision as StepDecision,
        TeamProduction as TeamProduction,
        equimarginal_split as equimarginal_split,
        verifier_budget as verifier_budget,
    )
    from margin.agent.evidence import (
        aider_retry_evidence as aider_retry_evidence,
        swe_effi_evidence as swe_effi_evidence,
        swe_pro_evidence as swe_pro_evidence,
    )
    from margin.agent.gate import (
        GateDecision as GateDecision,
        decide as decide,
    )
    from margin.agent.guard import (
        ActionDenied as ActionDenied,
        ConfirmationRequired as ConfirmationRequired,
        check as check,
        gated as gated,
        guard as guard,
    )
    from margin.agent.schedule import (
        HOOK_DECISIONS as HOOK_DECISIONS,
        LEVELS as LEVELS,
        ActionClass as ActionClass,
        ActionPrice as ActionPrice,
        AutonomySchedule as AutonomySchedule,
        Oversight as Oversight,
        load_schedule as load_schedule,
        two_point_cvar as two_point_cvar,
    )
    from margin.agent.simulator import (
        POLICIES as POLICIES,
        Policy as Policy,
        PolicyResult as PolicyResult,
        compare_policies as compare_policies,
        policy_grid as policy_grid,
        sample_tasks as sample_tasks,
        simulate as simulate,
        verifier_sweep as verifier_sweep,
    )
