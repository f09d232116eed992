"""tokenomy.planners: reasoning-mode selection (difficulty, modes, provider params, consensus)."""

from tokenomy.planners.modes import Mode, ModeDecision, ProviderParams
from tokenomy.planners.policy import PlannerPolicy, policy_for_team
from tokenomy.planners.select import select_mode

__all__ = [
    "Mode",
    "ModeDecision",
    "PlannerPolicy",
    "ProviderParams",
    "policy_for_team",
    "select_mode",
]
