"""Policy: thresholds, quality floor, budget pressure, team overrides, select_mode."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tokenomy.planners import Mode, PlannerPolicy, policy_for_team, select_mode
from tokenomy.planners.policy import mode_for_difficulty

HARD = (
    "A baker makes 3 batches of 24 cookies, then, after selling 40% of them at $2 each, gives "
    "a dozen away, and, with the money, buys flour at $4 per bag. How many bags can she buy, "
    "and how many cookies are left?"
)


def test_thresholds_pick_modes_from_cheap_to_dear() -> None:
    policy = PlannerPolicy()
    picks = [mode_for_difficulty(d, policy)[0] for d in (0.1, 0.5, 0.7, 0.95)]
    assert picks == [Mode.DIRECT, Mode.BRIEF, Mode.CONSENSUS, Mode.DELIBERATE]


def test_budget_pressure_moves_every_difficulty_to_an_equal_or_cheaper_mode() -> None:
    policy = PlannerPolicy()
    moved = 0
    for step in range(101):
        difficulty = step / 100
        normal, _ = mode_for_difficulty(difficulty, policy)
        degraded, reason = mode_for_difficulty(difficulty, policy, degrade=True)
        assert degraded.rank <= normal.rank
        moved += degraded.rank < normal.rank
        assert reason in {"degrade", "floor"}
    assert moved >= 40  # a shift of 0.2 on three thresholds


def test_quality_floor_holds_even_under_pressure() -> None:
    policy = PlannerPolicy(quality_floor="brief")
    mode, reason = mode_for_difficulty(0.0, policy, degrade=True)
    assert (mode, reason) == (Mode.BRIEF, "floor")


def test_streams_and_teams_without_consensus_get_a_single_call_mode() -> None:
    policy = PlannerPolicy()
    assert mode_for_difficulty(0.65, policy, single_call=True) == (Mode.BRIEF, "single-call")
    assert mode_for_difficulty(0.78, policy, single_call=True) == (Mode.DELIBERATE, "single-call")
    no_vote = PlannerPolicy(allow_consensus=False)
    assert mode_for_difficulty(0.65, no_vote)[0] is Mode.BRIEF


def test_team_section_overrides_the_global_one() -> None:
    planner = {"reasoning": "auto", "thresholds": {"direct": 0.2, "brief": 0.5, "consensus": 0.9}}
    teams = {"research": {"planner": {"quality_floor": "deliberate", "thresholds": {"brief": 0.6}}}}
    research = policy_for_team(planner, teams, "research")
    other = policy_for_team(planner, teams, "sales")
    assert research.quality_floor is Mode.DELIBERATE and research.reasoning == "auto"
    assert research.thresholds.direct == 0.2 and research.thresholds.brief == 0.6
    assert other.quality_floor is Mode.DIRECT and other.thresholds.brief == 0.5


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValidationError):
        PlannerPolicy(reasoning="ponder")
    with pytest.raises(ValidationError):
        PlannerPolicy(thresholds={"direct": 0.9, "brief": 0.5})
    with pytest.raises(ValidationError):
        PlannerPolicy(colour="blue")


def test_select_mode_fixed_auto_and_degrade() -> None:
    messages = [{"role": "system", "content": "Be helpful."}, {"role": "user", "content": HARD}]
    auto = select_mode(messages, model="gpt-5")
    assert auto.reason == "auto" and auto.mode in {Mode.CONSENSUS, Mode.DELIBERATE}
    assert auto.difficulty > 0.6
    fixed = select_mode(messages, model="gpt-5", requested="direct")
    assert fixed.mode is Mode.DIRECT and fixed.reason == "fixed"
    assert fixed.params.body == {"reasoning_effort": "minimal"}
    pressured = select_mode(messages, model="gpt-5", degrade=True)
    assert pressured.mode.rank <= auto.mode.rank
    easy = select_mode([{"role": "user", "content": "Say hello to Ana."}], model="gpt-5")
    assert easy.mode is Mode.DIRECT and easy.confidence > 0.5


def test_consensus_decision_carries_sample_and_escalation_params() -> None:
    decision = select_mode([{"role": "user", "content": HARD}], model="claude-opus-4-5",
                           requested="consensus")
    assert decision.mode is Mode.CONSENSUS and decision.samples == 6
    assert decision.threshold == 0.95
    assert decision.sample_params is not None and decision.sample_params.body == {}
    assert decision.escalate_params is not None
    assert decision.escalate_params.body["thinking"]["type"] == "enabled"
