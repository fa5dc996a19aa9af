"""The simulator's public names are pinned: ``experiments.simulate.__all__`` lists exactly
these, each importable from the package, so a rename or a removal is a deliberate change."""

from __future__ import annotations

import experiments.simulate as simulate

PUBLIC = [
    "EVENT_NAMES",
    "ChannelSemantics",
    "ContactRules",
    "ContextFieldLike",
    "CustomerWorld",
    "Events",
    "LevelSemantics",
    "Mechanism",
    "MessageSemantics",
    "RolloutResult",
    "TimingSemantics",
    "WorldConfig",
    "greedy_rollout",
]


def test_all_is_pinned() -> None:
    assert simulate.__all__ == PUBLIC


def test_every_public_name_is_importable() -> None:
    for name in PUBLIC:
        assert getattr(simulate, name) is not None
