"""Thompson sampling that credits an action with what it does to the customer's next contacts.

A per-contact reward (a click) cannot see that a fatiguing message lowers the response to the
customer's *later* contacts. But those later contacts are observed, and their rewards depend
on the customer's recent contacts: with the decayed contact counts per factor level in the
context (:mod:`bandit.contact_state`, the last ``L + 1`` columns: one count per level, then
the days since the last contact), a linear reward model learns how much each level's recent
contacts move today's reward, from every contact, not only from the rare outcome that lands
weeks later. Sending level ``l`` now adds 1 to its count, which then decays with the counts'
half-life ``h`` and moves the reward of every later contact. So the value of an action is

    Q(x, a) = r(x, a) + M sum_{l in a} g_l,      g_l = sum_{l'} c_{l'} w_{l', col(l)},

with ``r(x, a) = phi(x, a) . w`` the reward model of linear Thompson sampling, ``w_{l', k}``
the weight of context column ``k`` in level ``l'``'s slot (:mod:`bandit.features`), ``c_{l'}``
the share of allowed actions that contain ``l'`` (so ``g_l`` is the average allowed action's
reward change per unit of level ``l``'s count), and ``M = E[sum_k 2^(-(t_k - t) / h)]`` over
the customer's later contacts ``t_k > t``: the decayed mass of future contacts. ``M`` is
either given (``future_contacts``) or learned from the gaps between contacts. If a customer's
gaps ``G`` are independent draws of one distribution (a renewal process), ``t_k - t`` is the
sum of ``k`` gaps and

    M = sum_{k >= 1} E[2^(-G / h)]^k = phi / (1 - phi),      phi = E[2^(-G / h)],

and every context holds one gap, the days since the customer's previous contact, so ``phi``
is the mean of ``2^(-days / h)`` over the rows learned from; a row with no earlier contact
within the look-back adds 0 (its gap is at least the look-back). Reading the gap rather than
the decayed mass of the earlier contacts, which has the same expectation, does not
underestimate ``M`` where the history is short (every customer at the start of a run) or cut
by the look-back. Churn ends the renewals and is not in ``phi``, so ``M`` is an upper bound
for a customer who may leave; ``phi`` is capped at 0.99.

This is one step of a model-based Bellman backup with a linear value of the contact state,
``V(s) = M g . s`` (the continuous-time discounted sum of Theocharous, Thomas & Ghavamzadeh
2015, "Personalized Ad Recommendation Systems for Life-Time Value Optimization with
Guarantees", IJCAI, with the discount given by the counts' own decay): the transition of the
state is known exactly (the chosen levels' counts grow by 1), so only the reward model is
learned, at the rate of the immediate reward. ``Q`` is linear in ``w``, so under the posterior
``w ~ N(mu, Sigma)`` the slot scores of ``Q`` are Gaussian with mean ``(G + M B) mu`` and
covariance ``(G + M B) Sigma (G + M B)^T`` (``G`` the context's slot map, ``B`` the map from
``w`` to ``g``), and Thompson sampling, its Monte Carlo propensities and the shared draws are
exactly those of :class:`~bandit.policies.linear.ThompsonLinearPolicy` on these scores. The
learned model is the immediate reward's: :meth:`expected_rewards` predicts ``r``, not ``Q``,
so off-policy estimates of the logged reward stay unbiased; :meth:`lookahead_values` gives the
posterior mean of ``Q``.

With ``churn_value = V > 0`` the policy also learns what the counts do to the chance the
customer leaves (:mod:`bandit.churn`: a small ridge model of churn within ``churn_window``
days of a contact, fed by :meth:`LookaheadTSPolicy.update_churn`), and charges each level's
slot ``V`` times the churns one more unit of its count adds: ``Q = r + M sum g - V sum
Delta_churn``, the term ``M`` leaves out (a churned customer has no later contacts). The charge
is the posterior mean, a constant per slot, so propensities stay exact.

Where the world has no delayed effect (the counts do not move the reward) the ``g`` are 0 up
to posterior noise and the policy is linear Thompson sampling with ``L`` more columns.

With ``state_effects = "pooled"`` the counts leave the reward model: ``r`` is learned on the
context without the contact state (the model a policy without it would learn), and ``g_l`` is
the weight of level ``l``'s count in one ridge model of the response over every contact, on
the reward model's design plus the counts entered once (:mod:`bandit.state_effects`): ``L``
weights learned from every row, where the crossed layout spends ``S x L`` weights, each
learned from the rows of its slot, and draws all of them. The term ``M g`` is then its
posterior mean, a constant per slot like the churn charge.

With ``expected_counts`` (``[state] centred``) each block of counts ``c`` is followed in the
context by its expected part under the logged policies, ``E_l = sum_k 2^(-(t - t_k) / h)
p_l(t_k)``, with ``p_l(t_k)`` the chance the decision at ``t_k`` sent level ``l``
(:func:`bandit.contact_state.level_marginals`): the context ends ``[c_1 .. c_B, E_1 .. E_B,
days]``. ``R = c - E`` is the randomised part of the history (mean zero given the past, so
independent of who the customer is), ``E`` what the policies' choices say about the customer.
The pooled model then regresses on ``u = [1, phi(x, a), R, E, days]``, so ``g`` is the
weight of ``R``, the effect of a send, and ``E`` absorbs the confounding (a control function;
Chernozhukov et al. 2018, "Double/debiased machine learning", Econometrics Journal, sec. 4,
with the propensity known exactly). In the crossed layout ``E`` is one more block of context
columns crossed with every slot, so ``g``, read from the weights of ``c`` with ``E`` held
fixed, is again the effect of ``R``.

With ``gate_level = alpha > 0`` none of this chooses until the data show a delayed effect: a
short-term policy (linear Thompson sampling on the context without the contact state) does,
while both learn from every row, until an always-valid test at level ``alpha`` finds that the
levels differ in ``M g`` or in the churn charge (:mod:`bandit.policies.short_term_gate`,
:mod:`bandit.evidence`). Where nothing is delayed the policy is then the short-term learner
with probability at least ``1 - alpha``, instead of a learner that steers by the noise of two
terms whose truth is 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal, NamedTuple, Unpack

import numpy as np

from bandit._validation import (
    BanditValueError,
    check_actions,
    check_choice,
    check_flag,
    check_int,
    check_matrix,
    check_real,
    check_vector,
)
from bandit.belief import JointBelief
from bandit.churn import (
    charge_moments,
    churn_design,
    churn_shift,
    credible_shift,
    level_charges,
    ridge_solve,
)
from bandit.credibility import credible_levels
from bandit.evidence import contrast_log_evidence
from bandit.features import ActionFeatures
from bandit.policies.linear import ThompsonLinearOptions, ThompsonLinearPolicy
from bandit.policies.linear_ts import LinearTSPolicy
from bandit.policies.short_term_gate import ShortTermGate
from bandit.space import DecisionSpace
from bandit.state_effects import state_charges, state_design

__all__ = ["LookaheadBelief", "LookaheadTSPolicy", "lookahead_map"]

#: ``future_contacts`` value that learns ``M`` from the gaps between contacts.
AUTO_FUTURE: Literal["auto"] = "auto"
#: Half-life of the counts, in days, when none is given (``ContactDecay``'s default).
DEFAULT_HALF_LIFE = 7.0
#: Cap on ``phi`` (``M <= 99``): a customer contacted far faster than the counts fade.
MAX_PHI = 0.99
#: How the counts' effect on the response is learned: crossed with every level's slot in the
#: reward model, or one pooled model for every action (:mod:`bandit.state_effects`).
STATE_EFFECTS = ("crossed", "pooled")
#: Default ``gate_scale``: the spread, in reward units, of the level differences the gate's
#: test is built to find soonest (:mod:`bandit.evidence`).
DEFAULT_GATE_SCALE = 0.03
#: What the gate's short-term policy learns: the reward capped, or a short-term reward of its
#: own (:meth:`LookaheadTSPolicy.update_short_term`).
SHORT_TERM_REWARDS = ("capped", "own")


class _SolvedOnce:
    """A value solved from a model's sums, solved again only when the sums or the other inputs
    change. The policy replaces its sums with new arrays on every update and load, never
    edits them in place, so arrays are compared by identity (the cache holds them, so their
    ids are not reused); other inputs (numbers, tuples) by equality."""

    def __init__(self) -> None:
        self._inputs: tuple[object, ...] | None = None
        self._value: np.ndarray | None = None

    def get(self, inputs: tuple[object, ...], solve: Callable[[], np.ndarray]) -> np.ndarray:
        held = self._inputs
        if (
            held is None
            or self._value is None
            or len(held) != len(inputs)
            or not all(
                a is b if isinstance(a, np.ndarray) else a == b
                for a, b in zip(held, inputs, strict=True)
            )
        ):
            self._inputs, self._value = inputs, solve()
        return self._value


def lookahead_map(features: ActionFeatures, first_count: int) -> np.ndarray:
    """``B`` of shape ``(S, p)``: slot ``l``'s row maps the weights ``w`` to ``g_l``, the
    average allowed action's weight on level ``l``'s count column (module docstring).

    The ``L`` count columns (one per level, factors side by side) start at column
    ``first_count`` of ``z`` (the augmented context); pair-bias slots get a zero row.
    """
    space, width = features.space, features.width
    levels = features.n_context_slots
    if not 0 <= first_count <= width - levels:
        raise BanditValueError(
            "first_count", f"'first_count' must be in [0, {width - levels}]; got {first_count}."
        )
    allowed = space.allowed
    # c_l': the share of allowed actions whose slots include l'.
    share = np.zeros(levels)
    for column in range(features.context_slots.shape[1]):
        np.add.at(share, features.context_slots[allowed, column], 1.0)
    share /= max(int(allowed.sum()), 1)
    B = np.zeros((features.n_slots, features.n_features))
    for level in range(levels):
        B[level, np.arange(levels) * width + first_count + level] = share
    return B


class _Bonus(NamedTuple):
    """What ``B_M`` adds to the slot moments, for every context alike."""

    mean: np.ndarray  # B_M mu, (S,), shrunk when the belief shrinks it
    sigma_bt: np.ndarray  # Sigma B_M^T, (p, S)
    cov: np.ndarray  # B_M Sigma B_M^T, (S, S)


class LookaheadBelief(JointBelief):
    """The joint belief of the reward model, whose Thompson draws score ``Q`` (module
    docstring): slot means ``G mu + B_M mu`` and covariances ``(G + B_M) Sigma (G + B_M)^T``,
    with ``B_M = sum_b M_b B_b`` over the blocks of counts. Learning, the linear predictor and
    the mean scores stay those of the reward model.

    Every batch draws in slot space, never in weight space (:attr:`JointBelief.weight_space`):
    ``B_M w`` is the same for every row, so scoring a whole batch with ``M`` shared weight
    vectors gives every customer of the batch the same draw of it, and a batch's contacts
    then shift to one level together. The law per row is the same, but measured on
    ``examples/mechanism.toml`` without its mechanisms (20,000 x 60, seed 0, policy seeds 0
    and 1) the arm lost 0.355 and 0.348 revenue per customer to the click learner with weight
    draws, and 0.112 and 0.090 with this belief in slot space (README, "How the factored
    Thompson samplers draw")."""

    weight_space = False

    def __init__(self, features: ActionFeatures, prior_variance: float, maps: np.ndarray) -> None:
        super().__init__(features, prior_variance)
        #: ``B_b`` per block of counts, ``(blocks, S, p)``.
        self.maps = maps
        #: ``M_b`` per block; set by the policy before deciding.
        self.future_mass = np.zeros(maps.shape[0])
        #: A constant per slot added to ``Q``'s mean (``(S,)``): the churn charge
        #: (:func:`bandit.churn.churn_shift`) and, with pooled state effects, ``M g``
        #: (:mod:`bandit.state_effects`); None for neither. Set by the policy.
        self.slot_shift: np.ndarray | None = None
        #: Whether ``B_M mu`` is shrunk by its credibility (:mod:`bandit.credibility`), and
        #: what ``cov`` is multiplied by to be in reward units; set by the policy.
        self.shrink = False
        self.variance_unit = 1.0
        #: How many levels each factor has, in the order of the level slots.
        self.factor_sizes = tuple(int(size) for size in features.space.factor_sizes)
        self._cached: tuple[np.ndarray, np.ndarray, np.ndarray, float, _Bonus] | None = None

    def _bonus(self) -> _Bonus:
        """The context-free parts of ``Q``'s moments, ``B_M mu``, ``Sigma B_M^T`` (p, S) and
        ``B_M Sigma B_M^T``: an ``O(p^2 S)`` product, so computed once per belief and ``M``,
        not per decide. The belief's updates replace ``mean`` and ``cov`` with new arrays,
        which the identity check sees (the cache holds them, so their ids are not reused)."""
        cached = self._cached
        key = self.variance_unit if self.shrink else 0.0
        if (
            cached is not None
            and cached[0] is self.mean
            and cached[1] is self.cov
            and np.array_equal(cached[2], self.future_mass)
            and cached[3] == key
        ):
            return cached[4]
        B = self._lookahead_map()
        sigma_bt = self.cov @ B.T
        cov = B @ sigma_bt
        mean = B @ self.mean
        if self.shrink:
            levels = sum(self.factor_sizes)
            shrunk = np.zeros_like(mean)
            shrunk[:levels] = credible_levels(
                mean[:levels], self.variance_unit * cov[:levels, :levels], self.factor_sizes
            )
            mean = shrunk
        bonus = _Bonus(mean, sigma_bt, cov)
        self._cached = (self.mean, self.cov, self.future_mass.copy(), key, bonus)
        return bonus

    def _lookahead_map(self) -> np.ndarray:
        """``B_M = sum_b M_b B_b`` ``(S, p)``: the map from the weights to ``M g``."""
        return np.tensordot(self.future_mass, self.maps, axes=1)

    def level_moments(self, variance_unit: float) -> tuple[np.ndarray, np.ndarray]:
        """``M g`` of every level ``(L,)`` at the posterior mean, unshrunk, and its covariance
        ``(L, L)``, ``cov`` times ``variance_unit`` (the noise variance where ``cov`` is in its
        units): what the gate tests (:mod:`bandit.policies.short_term_gate`)."""
        levels = sum(self.factor_sizes)
        B = self._lookahead_map()[:levels]
        return B @ self.mean, variance_unit * (B @ self.cov @ B.T)

    def _slot_moments(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Slot means ``(n, S)`` and covariances ``(n, S, S)`` of ``Q``."""
        mean, cov = super()._slot_moments(Z)
        if self.slot_shift is not None:
            mean = mean + self.slot_shift
        if not self.future_mass.any():
            return mean, cov
        bonus = self._bonus()
        cross = _project(self.features, Z, bonus.sigma_bt)  # G Sigma B_M^T, (n, S, S)
        return mean + bonus.mean, cov + cross + np.swapaxes(cross, 1, 2) + bonus.cov

    def q_mean(self, Z: np.ndarray) -> np.ndarray:
        """Posterior mean of ``Q`` for every action, ``(n, A)``."""
        return self.features.action_scores(self._slot_moments(Z)[0])


def _project(features: ActionFeatures, Z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``G_i K`` for every row: ``K`` is ``(p, T)``; returns ``(n, S, T)``."""
    slots, width = features.n_context_slots, features.width
    crossed = K[: features.n_crossed].reshape(slots, width, -1)
    block = np.einsum("sjt,nj->nst", crossed, Z)
    if not features.n_bias_slots:
        return block
    bias = np.broadcast_to(K[features.n_crossed :], (Z.shape[0], *K[features.n_crossed :].shape))
    return np.concatenate([block, bias], axis=1)


class LookaheadTSPolicy(ThompsonLinearPolicy):
    """Linear Thompson sampling on ``Q = reward now + M x the reward change of later contacts``
    (module docstring). The context must end with the contact state of
    :mod:`bandit.contact_state`: ``contact_blocks`` blocks of one decayed count per factor
    level (each block with its own half-life, e.g. a fast one for fatigue and a slow one for
    what builds up), then the days since the last contact. Each block ``b`` has its own map
    ``B_b`` and future mass ``M_b``: ``Q = r + sum_b M_b sum_{l in a} g_{b, l}``.

    Args:
        future_contacts: ``M`` for every block, the decayed mass of a customer's later
            contacts (>= 0), or ``"auto"`` (the default) to learn each block's ``M_b`` from
            the gaps between contacts (module docstring; state ``gap_sum``, the sum of
            ``2^(-days / h_b)`` per block, and ``gap_rows``).
        contact_blocks: how many blocks of counts the context holds (>= 1).
        half_lives: each block's half-life in days (> 0), as the counts were made with;
            default 7 days each (:class:`bandit.contact_state.ContactDecay`'s default).
        churn_value: ``V`` (>= 0), what a customer who leaves costs in reward units; 0 (the
            default) leaves churn out. With ``V > 0`` the state holds ``churn_gram`` and
            ``churn_moment``, the churn model's ``U^T U`` and ``U^T y`` (module docstring).
        churn_window: the window of the churn labels given to :meth:`update_churn`, in days
            (> 0; default 1).
        churn_shrinkage: shrink each level's churn charge, relative to its factor's mean, by
            its empirical Bayes credibility under the churn model's noise
            (:func:`bandit.churn.credible_shift`), so noise where no level does harm charges
            (almost) nothing; False (the default) charges the posterior mean as it is.
        lookahead_shrinkage: the same for the later contacts' change ``M g``: its posterior
            mean, relative to each factor's mean, shrunk by its credibility under the
            posterior covariance (:mod:`bandit.credibility`); the draws keep the full
            covariance. False (the default): the posterior mean as it is.
        gate_level: ``alpha`` in [0, 1): with ``alpha > 0`` a short-term policy (linear
            Thompson sampling on the context without the contact state) chooses until an
            always-valid test at level ``alpha`` shows that the levels differ in ``M g`` or in
            the churn charge (:mod:`bandit.policies.short_term_gate`; state ``gate_open``,
            ``gate_evidence`` and the short-term policy's under ``short_``). 0 (the
            default): no gate, the lifetime value chooses from the start.
        gate_scale: ``rho`` (> 0), the spread of level differences, in reward units, the
            gate's test finds soonest (:mod:`bandit.evidence`); default 0.03.
        short_term_cap: the gate's short-term policy learns ``min(reward, cap)`` (1 with the
            click-and-purchase funnel: the click); None (the default): the reward itself.
        short_term_reward: what the gate's short-term policy learns: ``"capped"`` (the
            default), the reward as :meth:`update` gets it, capped at ``short_term_cap``;
            ``"own"``, only the short-term reward :meth:`update_short_term` gets, known
            sooner than the reward (the engine joins a spec's ``[reward.short_term]``).
        expected_counts: whether each block of counts is followed by its expected part under
            the logged policies (set from ``[state] centred``; module docstring): the pooled
            model's treatment is then ``R = c - E`` with ``E`` as a control.
        state_effects: ``"crossed"`` (the default): the reward model's contexts hold the
            contact state, crossed with every level's slot, and ``g`` is read from its weights
            and Thompson-drawn with them. ``"pooled"``: the reward model sees the context
            without the contact state, and ``g`` comes from one ridge model of the response on
            the reward model's design and the counts, entered once for every action
            (:mod:`bandit.state_effects`; state ``state_gram``, ``state_moment``,
            ``state_square``); ``M g`` is then its posterior mean, a constant per slot
            (shrunk by credibility with ``lookahead_shrinkage``).
        ridge, noise_variance, fit_intercept, interactions, scale, n_samples: as in linear
            Thompson sampling.
    """

    name = "lookahead_ts"
    needs_contact_state = True
    reads_expected_counts = True

    def __init__(
        self,
        space: DecisionSpace,
        n_context: int,
        *,
        future_contacts: float | Literal["auto"] = AUTO_FUTURE,
        contact_blocks: int = 1,
        half_lives: Sequence[float] | None = None,
        churn_value: float = 0.0,
        churn_window: float = 1.0,
        churn_shrinkage: bool = False,
        lookahead_shrinkage: bool = False,
        state_effects: str = "crossed",
        gate_level: float = 0.0,
        gate_scale: float = DEFAULT_GATE_SCALE,
        short_term_cap: float | None = None,
        short_term_reward: str = "capped",
        expected_counts: bool = False,
        **kwargs: Unpack[ThompsonLinearOptions],
    ) -> None:
        super().__init__(space, n_context, **kwargs)
        owner = type(self).__name__
        self.contact_blocks = check_int(contact_blocks, "contact_blocks", owner, low=1)
        self.expected_counts = check_flag(expected_counts, "expected_counts", owner)
        levels = self.features.n_context_slots
        self.n_state = self.contact_blocks * levels
        #: Columns of counts (and, with ``expected_counts``, their expected parts).
        self._n_count_columns = self.n_state * (2 if self.expected_counts else 1)
        if n_context < self._n_count_columns + 1:
            expected = " and as many expected counts" if self.expected_counts else ""
            raise BanditValueError(
                "n_context",
                f"{owner} needs the contact state at the end of the context: at least "
                f"{self._n_count_columns + 1} columns ({self.contact_blocks} x {levels} counts, "
                f"one per level{expected}, and the days since the last contact); got "
                f"{n_context}.",
            )
        self.future_contacts: float | str
        if isinstance(future_contacts, str):
            if future_contacts != AUTO_FUTURE:
                raise BanditValueError(
                    "future_contacts",
                    f"The 'future_contacts' parameter of {owner} must be a number >= 0 or "
                    f"'auto'. Got {future_contacts!r}.",
                )
            self.future_contacts = AUTO_FUTURE
        else:
            self.future_contacts = check_real(future_contacts, "future_contacts", owner, low=0.0)
        #: Column of ``x`` where the contact state (the counts, then the days) starts.
        self._first_state = n_context - 1 - self._n_count_columns
        #: Column of ``x`` where each block of counts starts.
        self._block_starts = self._first_state + levels * np.arange(self.contact_blocks)
        offset = self.features.width - n_context  # z = [1, x] with an intercept
        maps = np.stack(
            [lookahead_map(self.features, int(start) + offset) for start in self._block_starts]
        )
        self._lookahead = LookaheadBelief(self.features, 1.0 / self.ridge, maps)
        self.belief_ = self._lookahead
        if half_lives is None:
            half_lives = (DEFAULT_HALF_LIFE,) * self.contact_blocks
        if isinstance(half_lives, str) or len(half_lives) != self.contact_blocks:
            raise BanditValueError(
                "half_lives",
                f"'half_lives' must list {self.contact_blocks} half-lives in days, one per block "
                f"of counts; got {half_lives!r}.",
            )
        self.half_lives = np.array(
            [
                check_real(value, "half_lives", owner, low=0.0, closed="neither")
                for value in half_lives
            ]
        )
        self.gap_sum_ = np.zeros(self.contact_blocks)
        self.gap_rows_ = np.array(0.0)
        self.churn_value = check_real(churn_value, "churn_value", owner, low=0.0)
        self.churn_window = check_real(
            churn_window, "churn_window", owner, low=0.0, closed="neither"
        )
        self.churn_shrinkage = check_flag(churn_shrinkage, "churn_shrinkage", owner)
        self.lookahead_shrinkage = check_flag(lookahead_shrinkage, "lookahead_shrinkage", owner)
        self._lookahead.shrink = self.lookahead_shrinkage
        width = 2 + self.n_state
        self.churn_gram_ = np.zeros((width, width))
        self.churn_moment_ = np.zeros(width)
        #: ``churn_shift_``, solved once per change of the churn model's sums.
        self._churn_solved = _SolvedOnce()
        self._first_factor = slice(
            self._block_starts[0], self._block_starts[0] + space.factor_sizes[0]
        )
        self.state_effects = check_choice(state_effects, "state_effects", owner, STATE_EFFECTS)
        #: With pooled state effects, the reward model's layout on the context without its
        #: contact state (the pooled model's design, :mod:`bandit.state_effects`); None for the
        #: crossed layout, which has no pooled model.
        self._plain_features = (
            ActionFeatures(
                space,
                self._first_state,
                fit_intercept=self.features.fit_intercept,
                interactions=self.features.interactions,
            )
            if self.pooled
            else None
        )
        state_width = self._state_width()
        self.state_gram_ = np.zeros((state_width, state_width))
        self.state_moment_ = np.zeros(state_width)
        self.state_square_ = np.array(0.0)
        #: ``state_shift_``, solved once per change of the pooled model's sums or of ``M``.
        self._state_solved = _SolvedOnce()
        self.short_term_reward = check_choice(
            short_term_reward, "short_term_reward", owner, SHORT_TERM_REWARDS
        )
        self._gate = self._short_term_gate(gate_level, gate_scale, short_term_cap, kwargs)

    def _short_term_gate(
        self,
        level: float,
        scale: float,
        cap: float | None,
        options: ThompsonLinearOptions,
    ) -> ShortTermGate | None:
        """The gate and its short-term policy (``gate_level > 0``), else None. The short-term
        policy has this policy's options, no floor of its own (this policy's applies) and
        this policy's random generator, so it draws what it would draw on its own."""
        owner = type(self).__name__
        level = check_real(level, "gate_level", owner, low=0.0, high=1.0, closed="left")
        self.gate_scale = check_real(scale, "gate_scale", owner, low=0.0, closed="right")
        self.short_term_cap = None if cap is None else check_real(cap, "short_term_cap", owner)
        self.gate_level = level
        if level == 0.0:
            return None
        own: ThompsonLinearOptions = {**options, "seed": self.rng_, "exploration_floor": 0.0}
        short_term = LinearTSPolicy(self.space, self._first_state, **own)
        own_reward = self.short_term_reward == "own"
        return ShortTermGate(short_term, level, self.short_term_cap, own_reward=own_reward)

    @property
    def gated(self) -> bool:
        """Whether a short-term policy chooses until the gate opens (``gate_level > 0``)."""
        return self._gate is not None

    @property
    def gate_open_(self) -> bool:
        """Whether the lifetime value chooses: always without a gate, else once it opened."""
        return self._gate is None or self._gate.is_open

    def get_state(self) -> dict[str, np.ndarray]:
        state = super().get_state()
        if self._gate is not None:
            state.update(self._gate.get_state())
        return state

    def state_keys(self) -> set[str]:
        own = super().state_keys()
        return own if self._gate is None else own | self._gate.state_keys()

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        if self._gate is None:
            super().set_state(state)
            return
        gate_keys = self._gate.state_keys()
        missing = sorted(gate_keys - set(state))
        if missing:
            raise BanditValueError(
                "state", f"'state' of a gated {type(self).__name__} misses {missing}."
            )
        super().set_state({name: value for name, value in state.items() if name not in gate_keys})
        self._gate.set_state({name: state[name] for name in gate_keys})

    @property
    def pooled(self) -> bool:
        """Whether the counts' effect comes from the pooled model (``state_effects``)."""
        return self.state_effects == "pooled"

    def _state_width(self) -> int:
        """The width of the pooled model's ``u = [1, phi, s]``; 0 for the crossed layout."""
        if self._plain_features is None:
            return 0
        return 1 + self._plain_features.n_features + self._n_count_columns + 1

    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {**super()._state_shapes(), "gap_sum": (self.contact_blocks,), "gap_rows": ()}
        if self.churn_value > 0:  # a policy without churn keeps the state it always had
            width = 2 + self.n_state
            shapes.update(churn_gram=(width, width), churn_moment=(width,))
        if self.pooled:
            width = self._state_width()
            shapes.update(state_gram=(width, width), state_moment=(width,), state_square=())
        return shapes

    def _treatment_state(self, X: np.ndarray) -> np.ndarray:
        """The pooled model's state columns ``s``: the counts and days as given, or with
        ``expected_counts`` ``[R, E, days]``, ``R = c - E`` (module docstring)."""
        state = X[:, self._first_state :]
        if not self.expected_counts:
            return state
        counts, expected = state[:, : self.n_state], state[:, self.n_state : -1]
        return np.column_stack([counts - expected, expected, state[:, -1]])

    def _reward_context(self, X: np.ndarray) -> np.ndarray:
        """The contexts the reward model sees: as given, or with pooled state effects, with
        the contact state (counts and days since the last contact) set to 0, so the reward
        model is the one a policy without the state would learn."""
        if not self.pooled:
            return X
        reward_context = X.copy()
        reward_context[:, self._first_state :] = 0.0
        return reward_context

    def expected_rewards(self, X: object) -> np.ndarray:
        contexts = check_matrix(X, "X", n_columns=self.n_context)
        return super().expected_rewards(self._reward_context(contexts))

    def _churn_design(self, X: np.ndarray, actions: np.ndarray) -> np.ndarray:
        levels = self.features.n_context_slots
        slots = self.features.context_slots[actions]  # each factor's level, (n, F)
        return churn_design(X, slots, int(self._block_starts[0]), levels, self.contact_blocks)

    def _checked_batch(
        self, X: object, actions: object, values: object, name: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch's contexts, actions and per-row ``values`` (named ``name``), checked."""
        contexts = check_matrix(X, "X", n_columns=self.n_context)
        n = contexts.shape[0]
        return (
            contexts,
            check_actions(actions, n, self.n_actions),
            check_vector(values, name, length=n),
        )

    def update_churn(self, X: object, actions: object, churned: object) -> None:
        """Fold churn labels into the churn model: ``churned`` ``(n,)`` is 1 where the
        customer left within ``churn_window`` days of the contact ``(X, actions)``, else 0.
        Sums of ``U^T U`` and ``U^T y``, so one batch equals any split of it."""
        contexts, chosen, labels = self._checked_batch(X, actions, churned, "churned")
        n = contexts.shape[0]
        if not np.all((labels == 0) | (labels == 1)):
            raise BanditValueError("churned", "'churned' must hold 0 or 1 for every row.")
        if self.churn_value == 0 or n == 0:
            return
        U = self._churn_design(contexts, chosen)
        self.churn_gram_ = self.churn_gram_ + U.T @ U
        self.churn_moment_ = self.churn_moment_ + U.T @ labels
        self._look()

    @property
    def churn_theta_(self) -> np.ndarray:
        """The churn model's ridge weights ``theta`` ``(2 + blocks x levels,)``."""
        return ridge_solve(self.churn_gram_, self.churn_moment_, self.ridge)

    @property
    def churn_shift_(self) -> np.ndarray:
        """Each slot's churn charge ``(S,)`` (:func:`bandit.churn.churn_shift`)."""
        if self.churn_value == 0:
            return np.zeros(self.features.n_slots)
        if self.churn_shrinkage:
            return credible_shift(
                self.churn_gram_,
                self.churn_moment_,
                self.ridge,
                self._churn_charges(),
                self._lookahead.factor_sizes,
                self.features.n_slots,
            )
        return churn_shift(
            self.churn_theta_,
            self.churn_value,
            self.half_lives,
            self.churn_window,
            self.features.n_context_slots,
            self.features.n_slots,
        )

    def _churn_charges(self) -> np.ndarray:
        """``C`` with ``C theta`` each level's churn charge (:func:`bandit.churn.level_charges`)."""
        return level_charges(
            self.churn_value,
            self.half_lives,
            self.churn_window,
            self.features.n_context_slots,
            self.churn_gram_.shape[0],
        )

    @property
    def future_mass_(self) -> np.ndarray:
        """``M_b`` per block: the given ``future_contacts``, else ``phi_b / (1 - phi_b)``."""
        if self.future_contacts != AUTO_FUTURE:
            return np.full(self.contact_blocks, float(self.future_contacts))
        rows = float(self.gap_rows_)
        if rows == 0:
            return np.zeros(self.contact_blocks)
        phi = np.minimum(self.gap_sum_ / rows, MAX_PHI)
        return phi / (1.0 - phi)

    def _update(self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        super()._update(self._reward_context(X), actions, rewards)
        plain = self._plain_features
        if plain is not None:
            first_state = self._first_state
            design = plain.design(plain.augment(X[:, :first_state]), actions)
            U = state_design(design, self._treatment_state(X))
            self.state_gram_ = self.state_gram_ + U.T @ U
            self.state_moment_ = self.state_moment_ + U.T @ rewards
            self.state_square_ = np.array(float(self.state_square_) + float(rewards @ rewards))
        # A previous contact within the look-back left counts; each adds 1 to a level of the
        # first factor.
        seen = X[:, self._first_factor].sum(axis=1) > 0
        weights = np.exp2(-X[:, -1][:, None] / self.half_lives) * seen[:, None]
        self.gap_sum_ = self.gap_sum_ + weights.sum(axis=0)
        self.gap_rows_ = np.array(float(self.gap_rows_) + X.shape[0])
        if self._gate is not None:
            if not self._gate.own_reward:
                self._gate.learn(X, actions, rewards)
            self._look()

    def update_short_term(self, X: object, actions: object, rewards: object) -> None:
        """Fold a batch of short-term rewards into the gate's short-term policy (with
        ``short_term_reward = "own"``): ``X`` the contexts as :meth:`update` takes them
        (with the contact state, which the short-term policy leaves out). The lifetime model
        and the gate's evidence do not change."""
        contexts, chosen, observed = self._checked_batch(X, actions, rewards, "rewards")
        n = contexts.shape[0]
        if self._gate is None or not self._gate.own_reward:
            raise BanditValueError(
                "short_term_reward",
                f"{type(self).__name__} learns short-term rewards of their own only when gated "
                "(gate_level > 0) with short_term_reward = 'own'.",
            )
        if n:
            self._gate.learn(contexts, chosen, observed)

    def _look(self) -> None:
        """Show the gate (if any, and closed) the evidence that the levels differ in ``M g``
        and, with a churn charge learned from enough rows, in the charge."""
        gate = self._gate
        if gate is None or gate.is_open:
            return
        evidence = []
        plain = self._plain_features
        has_mass = bool(self.future_mass_.any())
        if has_mass and plain is None:
            unit = self.noise_variance_ if self.learns_noise else 1.0
            self._lookahead.future_mass = self.future_mass_
            estimate, covariance = self._lookahead.level_moments(unit)
            evidence.append(self._level_evidence(estimate, covariance))
        elif has_mass and plain is not None and self.state_gram_[0, 0] > self.state_gram_.shape[0]:
            estimate, covariance = charge_moments(
                self.state_gram_,
                self.state_moment_,
                self.ridge,
                self._pooled_charges(plain),
                square_sum=float(self.state_square_),
            )
            evidence.append(self._level_evidence(estimate, covariance))
        if self.churn_value > 0 and self.churn_gram_[0, 0] > self.churn_gram_.shape[0]:
            estimate, covariance = charge_moments(
                self.churn_gram_, self.churn_moment_, self.ridge, self._churn_charges()
            )
            evidence.append(self._level_evidence(estimate, covariance))
        # Bonferroni over the terms the policy has, whether or not each has data yet.
        gate.look(evidence, tests=2 if self.churn_value > 0 else 1)

    def _level_evidence(self, estimate: np.ndarray, covariance: np.ndarray) -> float:
        return contrast_log_evidence(
            estimate, covariance, self._lookahead.factor_sizes, self.gate_scale
        )

    def _churn_charge(self) -> np.ndarray | None:
        """``churn_shift_`` for deciding, None without a churn charge. The ridge solve runs
        only when the churn model's sums change, not per decide (:class:`_SolvedOnce`:
        :meth:`update_churn` and :meth:`set_state` replace them with new arrays)."""
        if self.churn_value == 0:
            return None
        sums = (self.churn_gram_, self.churn_moment_)
        return self._churn_solved.get(sums, lambda: self.churn_shift_)

    @property
    def state_shift_(self) -> np.ndarray:
        """With pooled state effects, each slot's ``M g`` ``(S,)`` (:mod:`bandit.state_effects`),
        shrunk by credibility with ``lookahead_shrinkage``; zeros otherwise."""
        levels, slots = self.features.n_context_slots, self.features.n_slots
        plain = self._plain_features
        if plain is None or not self.future_mass_.any():
            return np.zeros(slots)
        charges = self._pooled_charges(plain)
        if self.lookahead_shrinkage:
            return credible_shift(
                self.state_gram_,
                self.state_moment_,
                self.ridge,
                charges,
                self._lookahead.factor_sizes,
                slots,
                square_sum=float(self.state_square_),
            )
        shift = np.zeros(slots)
        shift[:levels] = charges @ ridge_solve(self.state_gram_, self.state_moment_, self.ridge)
        return shift

    def _pooled_charges(self, plain: ActionFeatures) -> np.ndarray:
        """``C`` with ``C theta`` each level's ``M g`` in the pooled model of the plain layout
        ``plain`` (:func:`bandit.state_effects.state_charges`)."""
        return state_charges(
            self.future_mass_,
            self.features.n_context_slots,
            1 + plain.n_features,
            self.state_moment_.size,
        )

    def _state_shift(self) -> np.ndarray:
        """``state_shift_`` for deciding, solved again only when the pooled model's sums or
        ``M`` change (:class:`_SolvedOnce`)."""
        inputs = (self.state_gram_, self.state_moment_, tuple(self.future_mass_))
        return self._state_solved.get(inputs, lambda: self.state_shift_)

    def _lookahead_belief(self) -> LookaheadBelief:
        churn = self._churn_charge()
        if self.pooled:
            self._lookahead.future_mass = np.zeros(self.contact_blocks)
            pooled = self._state_shift()
            self._lookahead.slot_shift = pooled if churn is None else pooled + churn
        else:
            self._lookahead.future_mass = self.future_mass_
            self._lookahead.slot_shift = churn
        if self.lookahead_shrinkage:
            self._lookahead.variance_unit = self.noise_variance_ if self.learns_noise else 1.0
        return self._lookahead

    def _policy_probabilities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self._gate is not None and not self._gate.is_open:
            return self._gate.probabilities(X, mask)
        self._lookahead_belief()
        return super()._policy_probabilities(self._reward_context(X), mask)

    def lookahead_values(self, X: object) -> np.ndarray:
        """Posterior mean of ``Q(x, a)``, reward now plus the later contacts' change, ``(n, A)``."""
        contexts = self._reward_context(check_matrix(X, "X", n_columns=self.n_context))
        return self._lookahead_belief().q_mean(self.features.augment(contexts))
