"""A small threaded TCP proxy on loopback that can cut the line: for database outage tests.

``TcpProxy(upstream_port=5432)`` listens on a free loopback port and forwards every
connection to ``127.0.0.1:<upstream_port>``. The server under test is given the proxy's port
instead of the database's, so only its connections suffer; the test talks to the database
directly. Three modes, switched at any time (the switch has taken effect when the call
returns):

- ``forward()``: bytes flow both ways, as if the proxy were not there;
- ``refuse()``: the database is down: every open connection is closed and the listening socket
  with it, so a new connection is refused (``ECONNREFUSED``), as when the server process stops;
- ``blackhole()``: the network is partitioned: connections stay open and new ones are accepted
  (the kernel completes the handshake), but nothing is delivered either way. Bytes and
  end-of-stream are held, not dropped, and delivered on ``forward()``, as TCP retransmits
  across a partition that heals. The peer's kernel keeps acknowledging, so TCP keepalives and
  ``tcp_user_timeout`` never fire: only a client-side deadline ends a wait for an answer.

Two threads per connection (one per direction) and one accepting thread; all daemons, all
ended by :meth:`close`.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from types import TracebackType

LOOPBACK = "127.0.0.1"
FORWARD, REFUSE, BLACKHOLE = "forward", "refuse", "blackhole"
_POLL_SECONDS = 0.05
_CHUNK = 65_536


class _Pair:
    """A client connection and its upstream connection."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.closed = False
        self.ended = 0  # directions that delivered their end-of-stream

    def close(self) -> None:
        self.closed = True
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv
            with contextlib.suppress(OSError):
                sock.close()


class TcpProxy:
    """Loopback TCP proxy to ``upstream_host:upstream_port`` with switchable failure modes."""

    def __init__(self, upstream_port: int, upstream_host: str = LOOPBACK) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._flowing = threading.Condition(self._lock)
        self._mode = FORWARD
        self._pairs: set[_Pair] = set()
        self._closed = False
        self._listener: socket.socket | None = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(
            target=self._accept_loop, name="proxy-accept", daemon=True
        )
        self._acceptor.start()

    # ------------------------------------------------------------------ modes
    @property
    def mode(self) -> str:
        return self._mode

    def forward(self) -> None:
        """Deliver everything, including what was held during a blackhole."""
        with self._lock:
            if self._listener is None and not self._closed:
                self._listener = self._listen(self.port)
            self._mode = FORWARD
            self._flowing.notify_all()

    def refuse(self) -> None:
        """Close every connection and stop listening: new connections are refused."""
        with self._lock:
            self._mode = REFUSE
        self._drop_everything()

    def blackhole(self) -> None:
        """Keep connections (and accept new ones) but deliver nothing until ``forward()``."""
        with self._lock:
            if self._listener is None and not self._closed:
                self._listener = self._listen(self.port)
            self._mode = BLACKHOLE

    @property
    def connections(self) -> int:
        """Open client connections."""
        with self._lock:
            return len(self._pairs)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._drop_everything()
        self._acceptor.join(timeout=5)

    def _drop_everything(self) -> None:
        """Close every connection and the listener (the mode says what happens next)."""
        with self._lock:
            pairs, self._pairs = self._pairs, set()
            listener, self._listener = self._listener, None
            self._flowing.notify_all()
        for pair in pairs:
            pair.close()
        _close_listener(listener)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ threads
    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Re-listening on the same port after refuse(): connections it closed are in TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, port))
        listener.listen(128)
        return listener

    def _accept_loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                listener = self._listener
            if listener is None:
                time.sleep(_POLL_SECONDS)  # refused: nothing to accept until forward()
                continue
            try:
                readable, _, _ = select.select([listener], [], [], _POLL_SECONDS)
                if not readable:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):  # closed under us by refuse() or close()
                continue
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, upstream)
            with self._lock:
                if self._mode == REFUSE or self._closed:
                    pair.close()
                    continue
                self._pairs.add(pair)
            for source, target, name in ((client, upstream, "up"), (upstream, client, "down")):
                threading.Thread(
                    target=self._pump,
                    args=(pair, source, target),
                    name=f"proxy-{name}",
                    daemon=True,
                ).start()

    def _wait_for_flow(self, pair: _Pair) -> bool:
        """Block while blackholed; False when the pair is gone."""
        with self._lock:
            while self._mode == BLACKHOLE and not pair.closed and not self._closed:
                self._flowing.wait()
            return not pair.closed and not self._closed and self._mode == FORWARD

    def _pump(self, pair: _Pair, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                # Held, not dropped, while blackholed: delivered once forwarding resumes.
                if not self._wait_for_flow(pair):
                    return
                if not data:
                    target.shutdown(socket.SHUT_WR)
                    break
                target.sendall(data)
        except OSError:  # reset, or closed under us: end both directions
            self._drop(pair)
            return
        with self._lock:
            pair.ended += 1
            done = pair.ended == 2
        if done:
            self._drop(pair)

    def _drop(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)
        pair.close()


def _close_listener(listener: socket.socket | None) -> None:
    """Stop listening now: a plain close() is deferred while the acceptor sits in select()."""
    if listener is None:
        return
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()
