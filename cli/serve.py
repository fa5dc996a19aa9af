"""``engage serve``: run the HTTP decision service with uvicorn."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Callable
from typing import Annotated

import typer

from cli.common import DatabaseUrl, checked_engine, console, database_url, fail, readable_errors


def _is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface, in any spelling the resolver takes:
    ``localhost``, ``::1``, ``[::1]``, ``127.0.0.1`` and its inet_aton forms (``127.1``)."""
    name = host.strip().removeprefix("[").removesuffix("]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name)).is_loopback
    except OSError:
        return False


def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Permit binding a non-loopback address.")
    ] = False,
    learner: Annotated[
        bool, typer.Option("--learner/--no-learner", help="Run the background learner.")
    ] = True,
    url: DatabaseUrl = None,
) -> None:
    """Serve decisions over HTTP (OpenAPI docs at /docs).

    Example: engage serve --port 8000 --database-url sqlite:///engage.db
    """
    from experiments.service.server import listen, run_server

    if not _is_loopback(host) and not allow_remote:
        raise fail(f"--host {host} is not a loopback address; pass --allow-remote to bind it")
    resolved = database_url(url)
    with readable_errors():
        checked_engine(resolved).dispose()
    os.environ["ENGAGE_DATABASE_URL"] = resolved
    os.environ["ENGAGE_LEARNER"] = "true" if learner else "false"
    sock = bind_or_fail(host, port, listen)
    bound = sock.getsockname()[1]  # --port 0 asks for a free port: say which
    address = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
    console.print(f"engage serving on {address} (docs at /docs)", highlight=False)
    sys.stdout.flush()  # before the server takes over: a reader of a pipe needs the port now
    run_server(host=host, port=bound, workers=workers, sock=sock)


def bind_or_fail(
    host: str, port: int, listen: Callable[[str, int], socket.socket]
) -> socket.socket:
    """``listen(host, port)``, or one line and exit code 2 saying why it cannot be bound
    (address in use, not an address of this machine, ...)."""
    try:
        return listen(host, port)
    except OSError as error:
        raise fail(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
