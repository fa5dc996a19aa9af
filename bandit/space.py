"""Decision spaces: named factors with named levels, exclusion rules and eligibility masks.

An action picks one level per factor (offer x message x channel x timing, ...). Actions are
numbered in mixed radix with the last factor varying fastest, the order of
``itertools.product(*levels)``. A plain K-armed bandit is the one-factor case.

Rules exclude combinations: a rule maps some factors to one level or a list of levels, and an
action is excluded when it matches every factor the rule names (``{"offer": "data_bundle",
"channel": "email", "timing": ["night"]}``). Requests can exclude more actions on top.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bandit._validation import BanditValueError

Rule = Mapping[str, str | Sequence[str]]


def _as_level_list(value: object, where: str) -> list[str]:
    """A rule's level, or list of levels, as a list of strings."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and value and all(isinstance(item, str) for item in value):
        return list(value)
    raise BanditValueError(
        where, f"'{where}' must map factors to a level name or a non-empty list of level names."
    )


@dataclass(frozen=True)
class DecisionSpace:
    """A finite action space built from named factors.

    Attributes:
        factors: factor name -> its level names, in order.
        rules: exclusion rules; an action matching every entry of a rule is never eligible.
    """

    factors: Mapping[str, Sequence[str]]
    rules: Sequence[Rule] = ()
    level_index: np.ndarray = field(init=False, repr=False, compare=False)
    allowed: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.factors, Mapping) or not self.factors:
            raise BanditValueError("factors", "'factors' must map at least one factor to levels.")
        frozen: dict[str, tuple[str, ...]] = {}
        for name, levels in self.factors.items():
            if not isinstance(name, str) or not name:
                raise BanditValueError("factors", "factor names must be non-empty strings.")
            if isinstance(levels, str) or not isinstance(levels, Sequence) or not levels:
                raise BanditValueError(
                    f"factors.{name}", f"factor '{name}' must have a non-empty list of levels."
                )
            names = tuple(str(level) for level in levels)
            if len(set(names)) != len(names):
                raise BanditValueError(
                    f"factors.{name}", f"factor '{name}' has duplicate levels: {list(names)}."
                )
            frozen[name] = names
        object.__setattr__(self, "factors", frozen)
        sizes = [len(levels) for levels in frozen.values()]
        grids = np.meshgrid(*[np.arange(size) for size in sizes], indexing="ij")
        index = np.stack([grid.reshape(-1) for grid in grids], axis=1).astype(np.int64)
        object.__setattr__(self, "level_index", index)
        if isinstance(self.rules, Mapping | str) or not all(
            isinstance(rule, Mapping) for rule in self.rules
        ):
            raise BanditValueError("rules", "'rules' must be a list of {factor: level(s)} maps.")
        object.__setattr__(self, "rules", tuple(dict(rule) for rule in self.rules))
        allowed = np.ones(index.shape[0], dtype=bool)
        for position, rule in enumerate(self.rules):
            allowed &= ~self._matches(rule, f"rules[{position}]")
        if not allowed.any():
            raise BanditValueError("rules", "the exclusion rules leave no action eligible.")
        object.__setattr__(self, "allowed", allowed)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(self.factors)

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return tuple(len(levels) for levels in self.factors.values())

    @property
    def n_actions(self) -> int:
        return int(self.level_index.shape[0])

    def level_totals(self, values: np.ndarray) -> np.ndarray:
        """Per factor level, the sum of ``values`` ``(n, A)`` over the actions holding it,
        ``(n, L)`` (levels in factor order, as in :func:`bandit.contact_state.level_columns`).

        Actions are numbered in mixed radix over every combination of levels (rules exclude
        none from the numbering), so a row is a grid of the factors' sizes and a level's total
        is the grid's sum over every other factor's axis: no ``(A, L)`` incidence is formed.
        """
        grid = values.reshape(values.shape[0], *self.factor_sizes)
        axes = tuple(range(1, grid.ndim))
        totals = [grid.sum(axis=tuple(a for a in axes if a != axis)) for axis in axes]
        return np.concatenate(totals, axis=1)

    def allowed_levels(self, mask: np.ndarray) -> np.ndarray:
        """Per row of an eligibility ``mask`` ``(n, A)``, whether each factor level is held by
        some eligible action, ``(n, L)`` bool: ``level_totals(mask) > 0``.

        A batch's rows mostly share a few masks (the rules, a strategy's restriction), so the
        totals are taken once per distinct row (rows compared as packed bits).
        """
        if mask.shape[0] <= 1:
            return self.level_totals(mask) > 0
        packed = np.packbits(mask, axis=1)
        keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        return (self.level_totals(mask[first]) > 0)[inverse.ravel()]

    def _matches(self, rule: Rule, where: str) -> np.ndarray:
        """Boolean vector over actions: True where the action matches every entry of ``rule``."""
        if not rule:
            raise BanditValueError(where, f"'{where}' must name at least one factor.")
        hit = np.ones(self.n_actions, dtype=bool)
        for factor, levels in rule.items():
            column = self._factor_position(factor, where)
            levels_named = _as_level_list(levels, where)
            codes = [self._level_code(factor, level, where) for level in levels_named]
            hit &= np.isin(self.level_index[:, column], codes)
        return hit

    def _factor_position(self, factor: str, where: str) -> int:
        try:
            return self.factor_names.index(factor)
        except ValueError:
            raise BanditValueError(
                where, f"'{where}' names unknown factor '{factor}'; known: {list(self.factors)}."
            ) from None

    def _level_code(self, factor: str, level: str, where: str) -> int:
        levels = self.factors[factor]
        try:
            return levels.index(level)
        except ValueError:
            raise BanditValueError(
                where,
                f"'{where}' names unknown level '{level}' of factor '{factor}'; "
                f"known: {list(levels)}.",
            ) from None

    def index_of(self, levels: Mapping[str, str]) -> int:
        """The action index of a full assignment ``{factor: level}``."""
        missing = [name for name in self.factors if name not in levels]
        extra = [name for name in levels if name not in self.factors]
        if missing or extra:
            raise BanditValueError(
                "action",
                f"'action' must give exactly one level for each of {list(self.factors)}; "
                f"missing {missing}, unknown {extra}.",
            )
        index = 0
        for name, size in zip(self.factor_names, self.factor_sizes, strict=True):
            index = index * size + self._level_code(name, levels[name], "action")
        return index

    def levels_of(self, action: int) -> dict[str, str]:
        """The ``{factor: level}`` assignment of an action index."""
        if not 0 <= int(action) < self.n_actions:
            raise BanditValueError(
                "action", f"'action' must be an int in [0, {self.n_actions}); got {action}."
            )
        codes = self.level_index[int(action)]
        return {
            name: self.factors[name][int(code)]
            for name, code in zip(self.factor_names, codes, strict=True)
        }

    def action_name(self, action: int) -> str:
        """A readable name: the level for one factor, ``factor=level|...`` otherwise."""
        levels = self.levels_of(action)
        if len(levels) == 1:
            return next(iter(levels.values()))
        return "|".join(f"{name}={level}" for name, level in levels.items())

    @property
    def action_names(self) -> list[str]:
        return [self.action_name(action) for action in range(self.n_actions)]

    def excluded_by(self, rules: Iterable[Rule]) -> np.ndarray:
        """Boolean vector over actions: True where any of the given partial rules matches."""
        hit = np.zeros(self.n_actions, dtype=bool)
        for position, rule in enumerate(rules):
            hit |= self._matches(rule, f"exclude[{position}]")
        return hit

    def eligibility(self, n_rows: int, exclude: Iterable[Rule] | None = None) -> np.ndarray:
        """Mask of shape ``(n_rows, n_actions)``: the space's rules minus per-request exclusions.

        Raises ``BanditValueError`` on 'exclude' when nothing is left eligible.
        """
        allowed = self.allowed.copy()
        if exclude is not None:
            allowed &= ~self.excluded_by(exclude)
        if not allowed.any():
            raise BanditValueError("exclude", "'exclude' leaves no eligible action.")
        return np.broadcast_to(allowed, (n_rows, self.n_actions)).copy()
