"""The decision engine: decide, record outcomes, join rewards, learn, publish snapshots."""

from experiments.engine.facade import (
    DecisionEngine,
    DecisionRequest,
    DecisionResult,
    OutcomeInput,
    RecordResult,
)

__all__ = ["DecisionEngine", "DecisionRequest", "DecisionResult", "OutcomeInput", "RecordResult"]
