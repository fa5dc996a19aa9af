"""Every ```python block of README.md runs, in order, in one namespace (house habit 9)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_has_python_snippets() -> None:
    assert len(python_blocks()) >= 2


def test_readme_snippets_run() -> None:
    namespace: dict[str, object] = {"__name__": "readme"}
    for number, block in enumerate(python_blocks()):
        code = compile(block, f"README.md python block {number}", "exec")
        exec(code, namespace)  # noqa: S102 - our own README, the point of the test
    # The first snippet's promises: propensities in (0, 1] and a state that round-trips.
    decision = namespace["decision"]
    assert ((decision.propensities > 0) & (decision.propensities <= 1)).all()
    state, same = namespace["state"], namespace["same"]
    for key, value in same.get_state().items():
        assert (value == state[key]).all()
    space = namespace["space"]
    assert space.n_actions == 9
    assert not space.allowed[space.index_of({"offer": "data_bundle", "channel": "email"})]
