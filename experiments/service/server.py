"""Running the service under uvicorn, with one or several worker processes."""

from __future__ import annotations

import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

__all__ = ["APP", "NoDelayConfig", "run_server"]

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


def run_server(*, host: str, port: int, workers: int) -> None:
    """Serve the app built from ``ENGAGE_`` settings until interrupted."""
    config = NoDelayConfig(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
