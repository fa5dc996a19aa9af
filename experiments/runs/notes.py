"""What a run's report says about how its arms started and what chose for them."""

from __future__ import annotations

from experiments.runs.simulation import ArmResult, RunResult

__all__ = ["gate_note", "history_note"]


def history_note(result: RunResult) -> str:
    """How the arms started: from the burn-in's log, with how many decisions, or empty."""
    replayed = [arm.history_decisions for arm in result.arms if arm.history_decisions]
    if not replayed:
        return ""
    return f", every arm first learned from its log ({min(replayed):,} decisions)"


def gate_note(arm: ArmResult) -> str | None:
    """What chose for a gated arm: the short-term learner throughout, or the lifetime value
    from the day the evidence of delayed effects opened its gate."""
    if not arm.gated:
        return None
    if arm.gate_opened_day is None:
        return "gate never opened: the short-term learner chose throughout"
    if arm.gate_opened_day == 0:
        return "gate open from day 0: the lifetime value chose throughout"
    return f"gate opened on day {arm.gate_opened_day}: the lifetime value chose from then on"
