"""A free loopback port for a server a test starts next (importable as ``port_support``: the
``tests`` folder is on ``sys.path`` through its own conftest).

Run serially, the kernel picks the port (bind to port 0). Under pytest-xdist two workers can
each probe a port and then race to start a server on it; so there each worker takes ports
from a block of its own, between Ray's worker ports (10002-19999) and the kernel's ephemeral
range (32768 and up, where outgoing connections take theirs), and probes them in turn.
"""

from __future__ import annotations

import itertools
import os
import socket

#: Ports 20000 + 1000 * n up to 20999 + 1000 * n for xdist worker ``gw<n>``, n < 12.
BLOCK_START = 20_000
BLOCK_SIZE = 1_000
BLOCKS = 12
_next_offsets = itertools.cycle(range(BLOCK_SIZE))


def _worker_block() -> int | None:
    """The first port of this xdist worker's block, or None outside xdist (or past 12)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not worker[2:].isdigit() or int(worker[2:]) >= BLOCKS:
        return None
    return BLOCK_START + BLOCK_SIZE * int(worker[2:])


def _binds(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port nothing listens on now; successive calls in a worker differ."""
    start = _worker_block()
    if start is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])
    for _ in range(BLOCK_SIZE):
        port = start + next(_next_offsets)
        if _binds(port):
            return port
    raise RuntimeError(f"no free port in {start}-{start + BLOCK_SIZE - 1}")
