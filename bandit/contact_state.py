"""Observable contact state per customer: recent contacts per factor level, and recency.

A message that fatigues a customer does its harm in the customer's later weeks, where the
decision's own reward window cannot see it. A learner can only credit that harm if the state
it acts on shows what the customer has recently been sent. This module keeps, per customer:

- ``counts`` (n_customers, n_levels): exponentially decayed counts of contacts per factor
  level (one column per level of every factor, factors side by side in the space's order),
  valued at the customer's latest contact;
- ``last_contact`` (n_customers,): the time, in days, of that latest contact (NaN: never).

A contact at time ``t_k`` weighs ``2^(-(t - t_k) / h)`` at a later time ``t`` (half-life
``h`` days), so the count of level ``l`` at time ``t`` is

    c_l(t) = sum_{k: level l in contact k} 2^(-(t - t_k) / h)

(an exponentially weighted moving sum, the exponential forgetting of West & Harrison 1997,
*Bayesian Forecasting and Dynamic Models*, ch. 6, in its continuous-time form). Because the
weight factorises, ``c(t) = 2^(-(t - T) / h) c(T)`` for any ``T <= t``: a batch of contacts
is folded in by valuing everything at the customer's new latest contact ``T'``,

    c(T') = 2^(-(T' - T) / h) c(T) + sum_{k in batch} 2^(-(T' - t_k) / h) e_{levels(k)},

which is exact in any order (a contact older than ``T`` simply weighs less), so one batch
equals any split into smaller batches. :func:`state_features` puts these next to the Kalman
level and trend of a KPI series from :mod:`bandit.statespace` to make the observable
customer state a value function (:mod:`bandit.policies.fitted_q`) can act on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from bandit._validation import BanditValueError, check_int, check_real, check_vector
from bandit.space import DecisionSpace
from bandit.statespace import FEATURE_NAMES as TREND_FEATURE_NAMES
from bandit.statespace import TrendState

__all__ = [
    "ContactDecay",
    "ContactState",
    "contact_feature_names",
    "level_columns",
    "level_incidence",
    "level_marginals",
    "state_feature_names",
    "state_features",
]

_OWNER = "ContactDecay"

#: Name of the recency column of :meth:`ContactDecay.features`.
DAYS_SINCE = "days_since_contact"


def level_columns(space: DecisionSpace, actions: ArrayLike) -> np.ndarray:
    """The count column of every factor's level for each action, ``(n,)`` -> ``(n, F)``.

    Columns number the levels of all factors side by side: factor ``f``'s level ``j`` is
    column ``sum(sizes[:f]) + j``, the order of :func:`contact_feature_names`.
    """
    chosen = np.asarray(actions)
    if chosen.ndim != 1 or (chosen.size and not np.issubdtype(chosen.dtype, np.integer)):
        raise BanditValueError("actions", "'actions' must be a 1-D array of integers.")
    if chosen.size and (chosen.min() < 0 or chosen.max() >= space.n_actions):
        raise BanditValueError("actions", f"'actions' must be integers in [0, {space.n_actions}).")
    sizes = np.array(space.factor_sizes, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return space.level_index[chosen.astype(np.int64)] + offsets


def level_incidence(space: DecisionSpace, actions: ArrayLike | None = None) -> np.ndarray:
    """``H`` ``(n, L)``: ``H[k, l] = 1`` where the ``k``-th of ``actions`` (default: every
    action, ``n = A``) contains level ``l`` (columns as :func:`level_columns`); every row has
    one 1 per factor."""
    chosen = np.arange(space.n_actions) if actions is None else np.asarray(actions)
    columns = level_columns(space, chosen)
    incidence = np.zeros((columns.shape[0], sum(space.factor_sizes)))
    np.put_along_axis(incidence, columns, 1.0, axis=1)
    return incidence


def level_marginals(space: DecisionSpace, probabilities: ArrayLike) -> np.ndarray:
    """Each level's chance of being sent, ``(n, A)`` -> ``(n, L)``: ``p_l = sum_{a ni l} P(a)``,
    i.e. ``P H`` with ``H`` from :func:`level_incidence` (summed over the actions' grid by
    :meth:`DecisionSpace.level_totals`, without forming ``H``).

    Within a factor the marginals sum to each row's total (1 for a law over actions), so a
    row's marginals sum to ``F``, the number of factors. A contact's indicator ``1[l in a]``
    has expectation ``p_l`` under the law it was drawn from: this is the expected part of the
    decayed counts (:meth:`ContactDecay.record_amounts`).

    Example (by hand): factors ``m = [x, y]`` and ``c = [e, s]`` (actions ``xe, xs, ye, ys``),
    ``P = [0.1, 0.2, 0.3, 0.4]``: ``p = [0.3, 0.7, 0.4, 0.6]``.
    """
    law = np.asarray(probabilities, dtype=np.float64)
    if law.ndim != 2 or law.shape[1] != space.n_actions:
        raise BanditValueError(
            "probabilities",
            f"'probabilities' must have shape (n, {space.n_actions}); got {law.shape}.",
        )
    if not np.isfinite(law).all() or (law < 0).any():
        raise BanditValueError("probabilities", "'probabilities' must be finite and >= 0.")
    return space.level_totals(law)


def contact_feature_names(space: DecisionSpace) -> tuple[str, ...]:
    """Names of the columns of :meth:`ContactDecay.features`: one per level, then recency."""
    levels = [
        f"contacts[{factor}={level}]" for factor, names in space.factors.items() for level in names
    ]
    return (*levels, DAYS_SINCE)


def state_feature_names(space: DecisionSpace) -> tuple[str, ...]:
    """Names of the columns of :func:`state_features`."""
    return (*TREND_FEATURE_NAMES, *contact_feature_names(space))


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class ContactState:
    """Decayed contact counts ``(n, L)`` valued at ``last_contact`` ``(n,)`` (NaN: never).

    Arrays are stored as read-only float64 copies. A customer never contacted has NaN as
    ``last_contact`` and a row of zeros.
    """

    counts: np.ndarray
    last_contact: np.ndarray

    def __post_init__(self) -> None:
        try:
            counts = np.array(self.counts, dtype=np.float64)
            last = np.array(self.last_contact, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise BanditValueError(
                "counts", "'counts' and 'last_contact' must hold numbers."
            ) from exc
        if counts.ndim != 2:
            raise BanditValueError(
                "counts", f"'counts' must have shape (n, L); got {counts.shape}."
            )
        if last.shape != (counts.shape[0],):
            raise BanditValueError(
                "last_contact",
                f"'last_contact' must have shape ({counts.shape[0]},); got {last.shape}.",
            )
        if not np.isfinite(counts).all() or (counts < 0).any():
            raise BanditValueError("counts", "'counts' must be finite and non-negative.")
        if np.isinf(last).any():
            raise BanditValueError(
                "last_contact", "'last_contact' must be finite, or NaN for never contacted."
            )
        if (counts[np.isnan(last)] != 0).any():
            raise BanditValueError(
                "counts", "'counts' must be zero for customers never contacted (NaN last_contact)."
            )
        object.__setattr__(self, "counts", _readonly(counts))
        object.__setattr__(self, "last_contact", _readonly(last))

    @property
    def n_customers(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_levels(self) -> int:
        return int(self.counts.shape[1])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain writable copies ``{"counts": (n, L), "last_contact": (n,)}``."""
        return {"counts": self.counts.copy(), "last_contact": self.last_contact.copy()}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, ArrayLike]) -> ContactState:
        """Inverse of :meth:`to_arrays`; the round trip is exact (NaN included)."""
        for key in ("counts", "last_contact"):
            if key not in arrays:
                raise BanditValueError(key, f"'{key}' is missing from the arrays.")
        return cls(
            counts=np.asarray(arrays["counts"]), last_contact=np.asarray(arrays["last_contact"])
        )


@dataclass(frozen=True)
class ContactDecay:
    """How contacts fade: ``half_life`` in days (> 0), and ``max_days`` (> 0), the cap of
    the days-since-last-contact feature (also its value for a customer never contacted), so
    the feature stays bounded for a linear model.

    Example (by hand, ``half_life = 7``): contacts on day 0 with levels {0, 3} and on day 7
    with levels {1, 3}; on day 14 the counts are ``[1/4, 1/2, 0, 3/4]`` and 7 days have
    passed since the last contact.
    """

    half_life: float = 7.0
    max_days: float = 90.0

    def __post_init__(self) -> None:
        for name in ("half_life", "max_days"):
            value = check_real(getattr(self, name), name, _OWNER, low=0.0, closed="neither")
            object.__setattr__(self, name, value)

    def weight(self, elapsed: np.ndarray) -> np.ndarray:
        """``2^(-elapsed / half_life)``: what a contact ``elapsed`` days old counts for."""
        return np.exp2(-np.asarray(elapsed, dtype=np.float64) / self.half_life)

    def initial_state(self, n_customers: int, n_levels: int) -> ContactState:
        """No contacts yet: zero counts, ``last_contact`` NaN."""
        n = check_int(n_customers, "n_customers", _OWNER, low=0)
        levels = check_int(n_levels, "n_levels", _OWNER, low=1)
        return ContactState(counts=np.zeros((n, levels)), last_contact=np.full(n, np.nan))

    def record(
        self, state: ContactState, customers: ArrayLike, times: ArrayLike, columns: ArrayLike
    ) -> ContactState:
        """Fold in a batch of contacts: customer index ``(n,)``, time in days ``(n,)`` and the
        count columns of the contact's levels ``(n, F)`` (:func:`level_columns`).

        Each touched customer's counts are revalued at ``T' = max(T, max batch time)`` and
        every contact adds ``2^(-(T' - t_k) / h)`` to its levels' columns (module docstring).
        Customers may repeat within the batch; order does not matter.
        """
        state = _check_state(state)
        who, when = self._check_rows(state, customers, times)
        cols = np.asarray(columns)
        if cols.ndim != 2 or cols.shape[0] != who.shape[0]:
            raise BanditValueError(
                "columns", f"'columns' must have shape ({who.shape[0]}, F); got {cols.shape}."
            )
        if cols.size and not np.issubdtype(cols.dtype, np.integer):
            raise BanditValueError("columns", f"'columns' must hold integers; got {cols.dtype}.")
        if cols.size and (cols.min() < 0 or cols.max() >= state.n_levels):
            raise BanditValueError(
                "columns", f"'columns' must be integers in [0, {state.n_levels})."
            )
        levels = cols.astype(np.int64)

        def add(counts: np.ndarray, weights: np.ndarray) -> None:
            np.add.at(counts, (who[:, None], levels), weights[:, None])

        return self._fold(state, who, when, add)

    def record_amounts(
        self, state: ContactState, customers: ArrayLike, times: ArrayLike, amounts: ArrayLike
    ) -> ContactState:
        """Fold in a batch of contacts that add ``amounts`` ``(n, L)`` (>= 0) to the counts
        instead of 1 to their levels' columns: :meth:`record` with ``e_{levels(k)}`` replaced
        by any non-negative row, e.g. the levels' marginals under the law the contact was
        drawn from (:func:`level_marginals`), whose decayed sum is the counts' expected part
        ``E_l = sum_k 2^(-(t - t_k) / h) p_l(t_k)``. With one-hot rows it equals
        :meth:`record`."""
        state = _check_state(state)
        who, when = self._check_rows(state, customers, times)
        added = np.asarray(amounts, dtype=np.float64)
        if added.shape != (who.shape[0], state.n_levels):
            raise BanditValueError(
                "amounts",
                f"'amounts' must have shape ({who.shape[0]}, {state.n_levels}); got {added.shape}.",
            )
        if not np.isfinite(added).all() or (added < 0).any():
            raise BanditValueError("amounts", "'amounts' must be finite and non-negative.")

        def add(counts: np.ndarray, weights: np.ndarray) -> None:
            np.add.at(counts, who, weights[:, None] * added)

        return self._fold(state, who, when, add)

    def _fold(
        self,
        state: ContactState,
        who: np.ndarray,
        when: np.ndarray,
        add: Callable[[np.ndarray, np.ndarray], None],
    ) -> ContactState:
        """A new state with the batch folded in: the touched customers revalued at their new
        latest contact, then ``add(counts, weights)`` adds each contact's weight
        ``2^(-(T' - t_k) / h)`` to its columns (:meth:`record`, :meth:`record_amounts`)."""
        counts = state.counts.copy()
        last = state.last_contact.copy()
        if who.size == 0:
            return ContactState(counts=counts, last_contact=last)
        new_last = self._revalue(counts, last, who, when)
        add(counts, self.weight(new_last[who] - when))
        return ContactState(counts=counts, last_contact=new_last)

    def _revalue(
        self, counts: np.ndarray, last: np.ndarray, who: np.ndarray, when: np.ndarray
    ) -> np.ndarray:
        """Revalue the touched customers' ``counts`` (in place) at their new latest contact
        ``T' = max(T, max batch time)``; returns the new ``last_contact``."""
        touched = np.unique(who)
        new_last = last.copy()
        np.fmax.at(new_last, who, when)  # fmax: a NaN (never contacted) loses to any time
        before = last[touched]
        factor = np.where(
            np.isnan(before), 0.0, self.weight(new_last[touched] - np.nan_to_num(before))
        )
        counts[touched] *= factor[:, None]
        return new_last

    def counts_at(self, state: ContactState, customers: ArrayLike, times: ArrayLike) -> np.ndarray:
        """Decayed counts of the given customers at the given times, ``(n, L)``:
        ``c(t) = 2^(-(t - T) / h) c(T)``. A time before the customer's latest recorded
        contact is refused: the counts would have to include a contact from its future."""
        state = _check_state(state)
        who, when = self._check_rows(state, customers, times)
        elapsed = self._elapsed(state, who, when)
        return state.counts[who] * self.weight(np.nan_to_num(elapsed))[:, None]

    def days_since(self, state: ContactState, customers: ArrayLike, times: ArrayLike) -> np.ndarray:
        """``min(t - T, max_days)`` per row ``(n,)``; ``max_days`` if never contacted."""
        state = _check_state(state)
        who, when = self._check_rows(state, customers, times)
        elapsed = self._elapsed(state, who, when)
        return np.where(np.isnan(elapsed), self.max_days, np.minimum(elapsed, self.max_days))

    def features(self, state: ContactState, customers: ArrayLike, times: ArrayLike) -> np.ndarray:
        """``[counts at t..., days since last contact]`` per row, ``(n, L + 1)``; column names
        from :func:`contact_feature_names`."""
        return np.column_stack(
            [self.counts_at(state, customers, times), self.days_since(state, customers, times)]
        )

    @staticmethod
    def _check_rows(
        state: ContactState, customers: ArrayLike, times: ArrayLike
    ) -> tuple[np.ndarray, np.ndarray]:
        who = np.asarray(customers)
        if who.ndim != 1:
            raise BanditValueError("customers", f"'customers' must be 1-D; got shape {who.shape}.")
        who = check_vector(who, "customers", length=who.shape[0], dtype=np.int64)
        if who.size and (who.min() < 0 or who.max() >= state.n_customers):
            raise BanditValueError(
                "customers", f"'customers' must be integers in [0, {state.n_customers})."
            )
        return who, check_vector(times, "times", length=who.shape[0])

    @staticmethod
    def _elapsed(state: ContactState, who: np.ndarray, when: np.ndarray) -> np.ndarray:
        """``t - T`` per row, NaN where never contacted; refuses ``t < T``."""
        elapsed = when - state.last_contact[who]
        early = np.flatnonzero(elapsed < 0)
        if early.size:
            row = int(early[0])
            raise BanditValueError(
                "times",
                f"'times' row {row} ({when[row]:g}) is before customer {int(who[row])}'s latest "
                f"recorded contact ({state.last_contact[who[row]]:g}).",
            )
        return elapsed


def _check_state(state: object) -> ContactState:
    if not isinstance(state, ContactState):
        raise BanditValueError(
            "state", f"'state' must be a ContactState; got {type(state).__name__}."
        )
    return state


def state_features(
    trend: TrendState,
    contacts: ContactState,
    decay: ContactDecay,
    customers: ArrayLike,
    times: ArrayLike,
) -> np.ndarray:
    """The observable customer state at decision time, ``(n, 4 + L + 1)``:
    ``[level, trend, level_sd, trend_sd]`` of the customer's KPI series
    (:meth:`bandit.statespace.TrendState.features`, filtered up to the decision) followed by
    :meth:`ContactDecay.features`. Column names from :func:`state_feature_names`.
    """
    if not isinstance(trend, TrendState):
        raise BanditValueError(
            "trend", f"'trend' must be a TrendState; got {type(trend).__name__}."
        )
    if trend.n_customers != contacts.n_customers:
        raise BanditValueError(
            "trend",
            f"'trend' holds {trend.n_customers} customers but 'contacts' holds "
            f"{contacts.n_customers}.",
        )
    contact = decay.features(contacts, customers, times)
    who = np.asarray(customers, dtype=np.int64)
    # Only the requested rows: the trend state may hold every customer.
    rows = TrendState(mean=trend.mean[who], cov=trend.cov[who])
    return np.column_stack([rows.features(), contact])
