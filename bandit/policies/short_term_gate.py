"""A lifetime policy that acts as the short-term learner until the data show delayed effects.

A lifetime policy (:mod:`bandit.policies.lookahead_ts`) values an action by its reward now and
by what it does to the customer's later contacts and chance of leaving. Where the world has no
such delayed effect, those terms are estimates of 0, and acting on their noise (or on the slow
drift a misspecified model reads into them under an adaptive design) costs reward against a
policy that learns the short-term reward alone: measured on the simulator without its
mechanisms, 0.09 to 0.11 revenue per customer even with the terms shrunk by their credibility.

The gate keeps a second, short-term policy beside the lifetime model: linear Thompson
sampling on the context without the contact state. It learns either the lifetime model's
reward capped at ``short_term_cap`` (1 for the click-and-purchase funnel: the click), or a
short-term reward of its own, given row by row as soon as it is known (``own_reward``: the
engine joins a spec's ``[reward.short_term]`` apart from the reward, so a click counts the
moment it happens, as it does for a click learner, not when the funnel's window closes). Both
learn from every row; until the gate opens, the short-term policy chooses. After every batch
the lifetime terms' level differences are tested with an always-valid mixture test
(:func:`bandit.evidence.contrast_log_evidence`): the later contacts' change ``M g`` and, with a
churn charge, the charge, each at level ``alpha / tests`` (Bonferroni). The gate opens, for
good, the first time either passes, and the lifetime policy chooses from then on. Under no
delayed effect it stays closed with probability at least ``1 - alpha`` (up to the test's
approximations), and the policy is the short-term learner; where the effects are real it
opens as soon as they are shown. The short-term policy shares the lifetime policy's random
generator and draws exactly what a short-term policy on its own would draw, so propensities
stay exact and, given the same contexts, rewards and seed, it chooses what that policy chooses.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bandit._validation import BanditValueError
from bandit.evidence import evidence_threshold
from bandit.policies.linear import ThompsonLinearPolicy

__all__ = ["SHORT_TERM_PREFIX", "ShortTermGate"]

#: State keys of the short-term policy, stored beside the lifetime policy's own.
SHORT_TERM_PREFIX = "short_"


class ShortTermGate:
    """The short-term policy and the gate's state (module docstring).

    Args:
        short_term: the short-term policy; its context is the lifetime policy's without the
            contact state (the first ``short_term.n_context`` columns).
        level: ``alpha`` in (0, 1), the gate's false-alarm rate over every look.
        cap: the short-term policy learns ``min(reward, cap)``; None: the reward as given.
        own_reward: the short-term policy learns only what :meth:`learn` is given as its own
            reward, not the lifetime model's reward (``cap`` must then be None).
    """

    def __init__(
        self,
        short_term: ThompsonLinearPolicy,
        level: float,
        cap: float | None,
        *,
        own_reward: bool = False,
    ) -> None:
        if own_reward and cap is not None:
            raise BanditValueError(
                "short_term_cap",
                "'short_term_cap' applies to a short-term policy that learns the capped reward; "
                "with a short-term reward of its own it must be left out.",
            )
        self.short_term = short_term
        self.level = level
        self.cap = cap
        self.own_reward = own_reward
        #: 1 once the gate has opened (for good), else 0.
        self.open_ = np.array(0.0)
        #: The largest ``log Lambda`` of the last look, for reporting.
        self.evidence_ = np.array(0.0)

    @property
    def is_open(self) -> bool:
        """Whether the lifetime policy chooses."""
        return bool(self.open_)

    def short_context(self, X: np.ndarray) -> np.ndarray:
        """The short-term policy's contexts: ``X`` without the contact state, contiguous (a
        strided view could round differently in matrix products)."""
        return np.ascontiguousarray(X[:, : self.short_term.n_context])

    def probabilities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The short-term policy's own distribution (before the exploration floor)."""
        return self.short_term._policy_probabilities(self.short_context(X), mask)

    def learn(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Fold a batch (the lifetime policy's contexts, validated) into the short-term
        policy: the lifetime model's rewards, capped, or with ``own_reward`` its own."""
        capped = rewards if self.cap is None else np.minimum(rewards, self.cap)
        self.short_term.update(self.short_context(X), actions, capped)

    def look(self, evidence: list[float], tests: int) -> None:
        """Open the gate if any ``log Lambda`` of this look reaches ``log(tests / alpha)``.

        ``tests`` is how many tests the policy runs in all (fixed in advance, so the split of
        ``alpha`` does not depend on which tests have data yet); ``evidence`` holds those
        that have.
        """
        if not evidence:
            return
        self.evidence_ = np.array(max(evidence))
        if self.is_open:
            return
        if float(self.evidence_) >= evidence_threshold(self.level, tests):
            self.open_ = np.array(1.0)

    def get_state(self) -> dict[str, np.ndarray]:
        """The gate's and the short-term policy's state, under prefixed keys."""
        state = {"gate_open": self.open_.copy(), "gate_evidence": self.evidence_.copy()}
        for name, value in self.short_term.get_state().items():
            state[SHORT_TERM_PREFIX + name] = value
        return state

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Load what :meth:`get_state` exported (the keys were checked by the caller)."""
        is_open = np.asarray(state["gate_open"], dtype=np.float64)
        if is_open.shape != () or float(is_open) not in (0.0, 1.0):
            raise BanditValueError("state.gate_open", "'state.gate_open' must be 0 or 1.")
        evidence = np.asarray(state["gate_evidence"], dtype=np.float64)
        if evidence.shape != () or not np.isfinite(evidence):
            raise BanditValueError(
                "state.gate_evidence", "'state.gate_evidence' must be one finite number."
            )
        short = {
            name.removeprefix(SHORT_TERM_PREFIX): value
            for name, value in state.items()
            if name.startswith(SHORT_TERM_PREFIX)
        }
        try:
            self.short_term.set_state(short)
        except BanditValueError as error:  # name the key as the caller stored it
            field = error.field.replace("state.", f"state.{SHORT_TERM_PREFIX}", 1)
            raise BanditValueError(field, f"short-term policy: {error}") from error
        self.open_ = np.array(float(is_open))
        self.evidence_ = np.array(float(evidence))

    def state_keys(self) -> set[str]:
        """Every key :meth:`get_state` exports (no state is copied to list them)."""
        short = self.short_term.state_keys()
        return {"gate_open", "gate_evidence", *(SHORT_TERM_PREFIX + name for name in short)}
