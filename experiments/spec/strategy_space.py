"""What each strategy allows: the action masks of named strategy options, and the strategies
of a ``[strategies.withhold]`` section with the strategy policy's factorial space.

Pure functions of the section's parts and the spec's decision space; every refusal names its
field (``strategies.options[1].allow.message``, ``strategies.withhold.message``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from bandit import DecisionSpace
from experiments.spec.errors import SpecError, names

if TYPE_CHECKING:
    from experiments.spec.strategies import StrategySpec

__all__ = ["ALLOW", "WITHHOLD", "option_mask", "withhold_strategies"]

#: The levels of each binary factor of a withhold strategy space.
ALLOW, WITHHOLD = "allow", "withhold"


def withhold_strategies(
    withhold: Mapping[str, Sequence[str]], space: DecisionSpace
) -> tuple[tuple[str, ...], DecisionSpace, np.ndarray]:
    """The strategies of a ``[strategies.withhold]`` section: every combination of the named
    levels, each allowed or withheld (a factorial design).

    The strategy policy's space has one two-level factor (``allow``, ``withhold``) per named
    level, so a linear policy's one-hot features make its model additive: each level's effect
    of being withheld is learned from every epoch, not only from the epochs of one strategy
    (a 2^k factorial estimates each main effect from all runs: Box, Hunter & Hunter 2005,
    *Statistics for Experimenters*, ch. 5). Combinations that leave no action the rules allow
    are excluded by rules of that space. Names: ``all``, else ``no-`` and the withheld levels
    joined by ``-`` (``factor.level`` when several factors are named), and
    ``no-<n>-levels-<index>`` past 64 characters or where level names would make two alike.

    Returns the names ``(S,)`` in the space's action order, the space, and the masks
    ``(S, n_actions)``.
    """
    named: list[tuple[str, str]] = []
    for factor, levels in withhold.items():
        where = f"strategies.withhold.{factor}"
        _level_codes(where, "", "name", space, factor, levels)
        for level in levels:
            if (factor, level) in named:
                raise SpecError(where, f"names level {level!r} twice")
            named.append((factor, level))
    labels = [f"{factor}.{level}" if len(withhold) > 1 else level for factor, level in named]
    binary = DecisionSpace({f"{factor}.{level}": [ALLOW, WITHHOLD] for factor, level in named})
    withheld = binary.level_index.astype(bool)
    masks = np.repeat(space.allowed[None, :], withheld.shape[0], axis=0)
    for column, (factor, level) in enumerate(named):
        codes = space.level_index[:, space.factor_names.index(factor)]
        masks[withheld[:, column]] &= codes != space.factors[factor].index(level)
    withheld_labels = [
        [label for label, flag in zip(labels, flags, strict=True) if flag] for flags in withheld
    ]
    strategy_names = tuple(
        _withhold_name(chosen, row) for row, chosen in enumerate(withheld_labels)
    )
    if len(set(strategy_names)) < len(strategy_names):
        strategy_names = tuple(
            _withhold_name(chosen, row, readable=False)
            for row, chosen in enumerate(withheld_labels)
        )
    empty = [
        {
            binary.factor_names[column]: WITHHOLD if flag else ALLOW
            for column, flag in enumerate(flags)
        }
        for flags in withheld[~masks.any(axis=1)]
    ]
    if empty:
        binary = DecisionSpace(binary.factors, empty)
    return strategy_names, binary, masks


def _withhold_name(labels: Sequence[str], index: int, *, readable: bool = True) -> str:
    """``all``, ``no-`` and the withheld labels, or (past 64 characters, or not ``readable``)
    ``no-<count>-levels-<index>``."""
    if not labels:
        return "all"
    name = "no-" + "-".join(labels)
    return name if readable and len(name) <= 64 else f"no-{len(labels)}-levels-{index}"


def option_mask(option: StrategySpec, position: int, space: DecisionSpace) -> np.ndarray:
    """The actions ``option`` allows, ``(n_actions,)`` bool, the rules included."""
    where = f"strategies.options[{position}].allow"
    allowed = space.allowed.copy()
    for factor, levels in option.allow.items():
        who = f"strategy {option.name!r} "
        codes = _level_codes(f"{where}.{factor}", who, "allow", space, factor, levels)
        column = space.factor_names.index(factor)
        allowed &= np.isin(space.level_index[:, column], codes)
    if not allowed.any():
        raise SpecError(
            f"strategies.options[{position}]",
            f"strategy {option.name!r} leaves no eligible action: every action it allows is "
            "excluded by the spec's rules",
        )
    return allowed


def _level_codes(
    where: str, who: str, verb: str, space: DecisionSpace, factor: str, levels: Sequence[str]
) -> list[int]:
    """The codes of ``levels`` of ``factor`` in ``space``; refuses (at ``where``, the message
    starting with ``who``) an unknown factor, no level (``must <verb> at least one level``)
    and an unknown level."""
    if factor not in space.factors:
        raise SpecError(
            where,
            f"{who}names unknown factor {factor!r}; expected one of {names(list(space.factors))}",
        )
    known = space.factors[factor]
    if not levels:
        raise SpecError(where, f"{who}must {verb} at least one level of {factor!r}")
    for level in levels:
        if level not in known:
            raise SpecError(
                where,
                f"{who}names unknown level {level!r} of factor {factor!r}; expected some of "
                f"{names(list(known))}",
            )
    return [known.index(level) for level in levels]
