"""Automatic stop: a running experiment whose guardrail is breached, or whose split is
mismatched, falls back to its control policy by itself.

:class:`GuardrailWatch` reads the same checks the report shows
(:func:`experiments.analysis.guardrails.guardrail_checks`) and, when one whose action is
``stop`` fails, pauses the experiment with the reason and the time stored (``stop_reason``,
``stopped_at``). Paused, every customer is served by the control policy (the holdout's uniform
or business-as-usual policy; :mod:`experiments.engine.planning`) and decisions are still logged,
so the evidence keeps accruing. Only an admin resumes it (``engage experiments resume``,
``POST /v1/experiments/{key}/resume`` or ``PATCH`` with ``status = "running"``); from then on
the checks read only the decisions made after the resume.

The watch runs where the engine already recomputes, after a learning step
(:class:`~experiments.engine.learner.Learner`, :meth:`DecisionEngine.step`), never per decision:
the checks read every customer of the experiment once. Their intervals are always-valid, so
checking after every step does not inflate the chance of stopping a harmless experiment.
"""

from __future__ import annotations

import logging

from experiments.analysis.guardrails import GuardrailChecks, guardrail_checks
from experiments.engine.clock import Clock
from experiments.engine.registry import find_experiment
from experiments.spec import parse_spec
from experiments.store.database import Database
from experiments.store.experiments import update_experiment
from experiments.vocabulary import ExperimentStatus

__all__ = ["GuardrailWatch"]

logger = logging.getLogger("engage.guardrails")


class GuardrailWatch:
    """Checks experiments' guardrails and split, and stops those that fail (see the module doc).

    Args:
        database: where the experiments are stored.
        clock: the source of ``stopped_at``.
    """

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    def check(self, key: str) -> GuardrailChecks | None:
        """The checks of a running experiment, after stopping it if one with action ``stop``
        fails; None for an experiment that is not running (nothing to stop)."""
        with self._database.session() as session:
            row = find_experiment(session, key)
            if row.status != ExperimentStatus.RUNNING:
                return None
            spec = parse_spec(row.spec)
            checks = guardrail_checks(session, spec, key=key, since=row.resumed_at)
            reasons = checks.stop_reasons()
            if reasons:
                reason = "; ".join(reasons)
                update_experiment(
                    session,
                    key=key,
                    now=self._clock.now(),
                    status=ExperimentStatus.PAUSED,
                    stop_reason=reason,
                )
                session.commit()
                logger.warning("experiment %s stopped itself: %s", key, reason)
        return checks
