"""Errors raised in a worker process (``engage run``'s arms, ``engage sweep``'s cells) reach
the parent as themselves, with the field they name, not as a broken process pool."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import pytest

from bandit import BanditValueError
from experiments.errors import InvalidInputError
from experiments.spec import SpecError
from experiments.store.errors import DuplicateRequestError, InvalidFieldError
from experiments.store.models import Decision

ERRORS = [
    SpecError("reward.events", "a funnel needs 2 or more steps", errors=[("a", "b"), ("c", "d")]),
    BanditValueError("churn_value", "'churn_value' must be >= 0."),
    InvalidFieldError("status must be one of open, rewarded", field="status"),
    InvalidInputError("bad context", field="context.plan"),
    DuplicateRequestError(
        Decision(id="d1", experiment_key="exp", customer_id="c", request_id="r1", eligible_count=2)
    ),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: type(error).__name__)
def test_errors_survive_pickling(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  # our own bytes, as a process pool sends them
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert getattr(copy, "field", None) == getattr(error, "field", None)
    assert getattr(copy, "errors", None) == getattr(error, "errors", None)


def _raise_spec_error() -> None:
    raise SpecError("reward.events", "a funnel needs 2 or more steps; got 1")


def test_a_spec_error_in_a_spawned_worker_reaches_the_parent_as_itself() -> None:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        future = pool.submit(_raise_spec_error)
        with pytest.raises(SpecError) as error:
            future.result(timeout=60)
    assert error.value.field == "reward.events"
