"""Running the service under uvicorn, with one or several worker processes."""

from __future__ import annotations

import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

__all__ = ["APP", "NoDelayConfig", "listen", "run_server"]

APP = "experiments.service.factory:app_from_environment"


class NoDelayConfig(uvicorn.Config):
    """uvicorn's Config whose listening socket is re-wrapped with its protocol set.

    With several workers uvicorn binds the socket itself, and the socket object the workers
    inherit reports protocol 0, so asyncio never sets TCP_NODELAY on accepted connections:
    every keep-alive reply then waits ~40 ms for the client's delayed ACK (uvicorn#3149).
    Module level, so worker processes can unpickle it.
    """

    def bind_socket(self) -> socket.socket:
        bound = super().bind_socket()
        return socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, fileno=bound.detach())


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: a free one), as uvicorn binds it but
    raising ``OSError`` instead of exiting, so the caller can say why it cannot serve and,
    once it can, which port it got. Its protocol is set (see :class:`NoDelayConfig`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


#: How long an idle kept-alive connection stays open. Longer than the clients' own expiry
#: (httpx drops idle connections after 5 s, load balancers after 60 s): at uvicorn's default
#: of 5 s the server could close a connection just as a client reused it, and that request
#: failed with "server disconnected" although the server was healthy.
KEEP_ALIVE_SECONDS = 75


def run_server(*, host: str, port: int, workers: int, sock: socket.socket | None = None) -> None:
    """Serve the app built from ``ENGAGE_`` settings until interrupted, on ``sock`` (from
    :func:`listen`) when given, else on a socket uvicorn binds to ``host:port``."""
    config = NoDelayConfig(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    bound = sock if sock is not None else config.bind_socket()
    if workers > 1:
        Multiprocess(config, sockets=[bound]).run()
    else:
        uvicorn.Server(config).run(sockets=[bound])
