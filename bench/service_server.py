"""Databases and `engage serve` processes for ``bench.service``, all on loopback.

A database is a context manager that yields a URL and removes the database afterwards (a
SQLite file in a temporary directory, or a fresh PostgreSQL database dropped WITH (FORCE)).
A server is `engage serve` in its own process group on a free loopback port, stopped by
signalling the whole group so that no uvicorn worker outlives the benchmark.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ENGAGE = str(Path(sys.executable).parent / "engage")
LOOPBACK = "127.0.0.1"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_URL_ENV = "ENGAGE_BENCH_POSTGRES_URL"
CLI_TIMEOUT_SECONDS = 120
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def engage(*args: str) -> str:
    """Run the real CLI and return its stdout; RuntimeError with its output if it fails."""
    done = subprocess.run(  # noqa: S603 - our own console script with fixed arguments
        [ENGAGE, *args], capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"engage {args[0]} {args[1]} failed: {done.stderr or done.stdout}")
    return done.stdout


def prepare(database_url: str) -> dict[str, str]:
    """Migrate the database and create an admin and a decide key; returns the keys."""
    engage("db", "upgrade", "--database-url", database_url)
    keys = {}
    for scope in ("admin", "decide"):
        out = engage("keys", "create", "--scope", scope, "--json", "--database-url", database_url)
        keys[scope] = json.loads(out)["key"]
    return keys


def _require_loopback(host: str | None) -> None:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the benchmark only talks to loopback addresses; got host {host!r}")


@contextlib.contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="engage-bench-") as directory:
        yield f"sqlite:///{directory}/bench.db"


def postgres_admin_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database ``engage_bench_<hex>`` on the loopback server, dropped afterwards."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    _require_loopback(make_url(admin_url).host)
    name = f"engage_bench_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def postgres_reachable(admin_url: str) -> str | None:
    """None when the server answers, else why not."""
    import psycopg
    from sqlalchemy.engine import make_url

    try:
        _require_loopback(make_url(admin_url).host)
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3):
            return None
    except (psycopg.Error, ValueError) as exc:
        return str(exc).strip().splitlines()[0]


def database(kind: str) -> contextlib.AbstractContextManager[str]:
    if kind == "sqlite":
        return sqlite_database()
    if kind == "postgresql":
        return postgres_database(postgres_admin_url())
    raise ValueError(f"The 'database' parameter must be sqlite|postgresql. Got {kind!r}.")


class Server:
    """`engage serve` with ``workers`` processes on a free loopback port."""

    def __init__(self, database_url: str, *, workers: int, log_dir: Path) -> None:
        self.database_url = database_url
        self.workers = workers
        self.port = free_port()
        self.log_path = log_dir / f"serve-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until every worker has had time to come up."""
        with self.log_path.open("wb") as log:  # a file, not a pipe nobody reads (it would fill)
            self.process = subprocess.Popen(  # noqa: S603 - our own console script
                [
                    ENGAGE,
                    "serve",
                    "--host",
                    LOOPBACK,
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                    "--database-url",
                    self.database_url,
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,  # its own process group: stop() reaches every worker
            )
        deadline = time.monotonic() + timeout
        healthy_since: float | None = None
        # One healthy answer proves one worker; give the others as long again to boot.
        settle = 0.5 * self.workers
        with httpx.Client(base_url=self.base_url, timeout=2, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"engage serve exited early:\n{self.log_tail()}")
                try:
                    healthy = client.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    healthy = False
                now = time.monotonic()
                if healthy and healthy_since is None:
                    healthy_since = now
                if healthy_since is not None and now - healthy_since >= settle:
                    return
                time.sleep(0.1)
        raise RuntimeError(f"engage serve did not become healthy in {timeout:.0f} s")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it if it has not exited in 15 s."""
        process, self.process = self.process, None
        if process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                continue
        # Workers left behind by a supervisor that died first.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the live processes of the server's group."""
        if self.process is None:
            return float("nan")
        return sum(_cpu_of_group(self.process.pid).values())


def group_stat_fields(group: int) -> dict[int, list[str]]:
    """pid -> the fields of ``/proc/<pid>/stat`` after the command (``state ppid pgrp ...``)
    for the live processes of process group ``group``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # the command may hold spaces and ")"
        if int(fields[2]) == group:
            found[int(entry.name)] = fields
    return found


def _cpu_of_group(group: int) -> dict[int, float]:
    # utime and stime are the 12th and 13th fields after the command.
    return {
        pid: (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        for pid, fields in group_stat_fields(group).items()
    }


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS


def create_experiment(server: Server, admin_key: str, spec: dict[str, Any]) -> None:
    """Create the benchmark's experiment through the API (admin key); fail loudly."""
    with httpx.Client(
        base_url=server.base_url,
        headers={"authorization": f"Bearer {admin_key}"},
        timeout=30,
        trust_env=False,
    ) as http:
        answer = http.post("/v1/experiments", json=spec)
    if answer.status_code != 201:
        raise RuntimeError(f"creating the experiment answered {answer.status_code}: {answer.text}")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a timeout, a killed make) unwinds like Ctrl-C, so every finally runs."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
