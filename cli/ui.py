"""``engage ui``: the MLflow UI on the runs engage tracked, bound to loopback by default."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from cli.common import console, fail, print_links, readable_errors
from cli.serve import _is_loopback, bind_or_fail


def ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 5000,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Permit binding a non-loopback address.")
    ] = False,
) -> None:
    """Open the MLflow UI on the tracking store (MLFLOW_TRACKING_URI, else ./mlruns).

    Prints links to the newest engage run: its experiment's runs, and its arms side by side.

    Example: engage ui --port 5000
    """
    from rich.markup import escape

    from experiments.analysis.tracking_store import (
        redacted,
        tracking_uri,
        ui_command,
        ui_environment,
    )

    if not _is_loopback(host) and not allow_remote:
        raise fail(f"--host {host} is not a loopback address; pass --allow-remote to bind it")
    from experiments.service.server import listen

    with readable_errors():
        store = tracking_uri()
        command = ui_command(host, port, store)
    # MLflow's server reports a port in use and still exits 0: try the port first. (Another
    # process may take it in between; then MLflow's own message is all there is.)
    bind_or_fail(host, port, listen).close()
    address = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    console.print(
        f"MLflow UI on [bold]{escape(address)}[/] (store {escape(redacted(store))}); "
        "Ctrl-C stops it",
        highlight=False,
        soft_wrap=True,  # one line, so the address can be copied whole
    )
    _print_links(address)
    sys.stdout.flush()
    # Become the server: Ctrl-C and SIGTERM reach it directly and nothing is left orphaned.
    os.execve(command[0], command, ui_environment())  # noqa: S606 - our interpreter, fixed args


def _print_links(address: str) -> None:
    """Links that land on the newest engage run's runs and on the compare view of its arms
    (nothing when the store holds no engage run or cannot be read: the UI starts anyway)."""
    from experiments.analysis.tracking_links import latest_run_links
    from experiments.analysis.tracking_store import TrackingError

    try:
        links = latest_run_links(address=address)
    except TrackingError:
        return
    if links is not None:
        print_links(*links)
