"""``engage purge`` and ``engage erase``: data retention and the right to erasure."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from cli.common import (
    DatabaseUrl,
    JsonFlag,
    checked_engine,
    console,
    fail,
    print_json,
    readable_errors,
)


def purge(
    before: Annotated[str, typer.Option(help="ISO date or time; contexts older than this go.")],
    url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete raw contexts of closed, learned decisions older than a date.

    Example: engage purge --before 2026-01-01
    """
    from datetime import UTC

    from experiments.store.retention import purge_contexts

    try:
        moment = datetime.fromisoformat(before)
    except ValueError:
        raise fail(f"--before {before!r} is not an ISO date or time (e.g. 2026-01-01)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    with readable_errors():
        database = checked_engine(url)
        purged = purge_contexts(database, before=moment)
    if as_json:
        print_json({"purged_contexts": purged, "before": moment.isoformat()})
    else:
        console.print(
            f"purged the contexts of {purged:,} decisions made before {moment:%Y-%m-%d %H:%M %Z}"
        )


def erase(
    customer_id: Annotated[str, typer.Argument(help="The customer to erase.")],
    url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Erase a customer's id and contexts everywhere (reports still add up).

    Example: engage erase customer-42
    """
    from experiments.store.retention import erase_customer

    with readable_errors():
        database = checked_engine(url)
        result = erase_customer(database, customer_id=customer_id)
    if as_json:
        print_json({"decisions": result.decisions, "outcomes": result.outcomes})
    else:
        console.print(
            f"erased: {result.decisions:,} decisions and {result.outcomes:,} outcomes now carry "
            "an opaque token instead of the customer id"
        )
