"""Helpers for end-to-end tests: the real CLI, and `engage serve` on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from port_support import free_port as free_port  # re-exported: tests import it from here
from sqlmodel import Session

from experiments.store.api_keys import create_api_key
from experiments.store.connection import make_engine
from experiments.store.schema import upgrade

ENGAGE = str(Path(sys.executable).parent / "engage")


def engage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; fail the test with its output if it fails."""
    done = subprocess.run(  # noqa: S603 - our own console script with fixed arguments
        [ENGAGE, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done


@dataclass
class Server:
    """A running `engage serve` process and the keys to talk to it."""

    database_url: str
    port: int
    keys: dict[str, str]
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        environment = {**os.environ, "ENGAGE_LEARNER_POLL_SECONDS": "0.2", **self.env}
        self.process = subprocess.Popen(  # noqa: S603 - our own console script
            [
                ENGAGE,
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--database-url",
                self.database_url,
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise AssertionError(f"server exited early: {error}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError("server did not become healthy in time")

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self.process = None

    def client(self, scope: str = "admin") -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"authorization": f"Bearer {self.keys[scope]}"},
            timeout=10,
        )


def prepare_database(database_url: str) -> dict[str, str]:
    """Migrate the database and create one key per scope through the CLI."""
    engage("db", "upgrade", "--database-url", database_url)
    keys = {}
    for scope in ("admin", "decide", "read"):
        done = engage("keys", "create", "--scope", scope, "--json", "--database-url", database_url)
        keys[scope] = json.loads(done.stdout)["key"]
    return keys


def prepare_in_process(database_url: str) -> dict[str, str]:
    """Migrate and create one key per scope without the CLI: the same result as
    :func:`prepare_database` minus four process starts (the CLI has its own tests)."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            keys = {
                scope: create_api_key(session, scopes=[scope])[1]
                for scope in ("admin", "decide", "read")
            }
            session.commit()
    finally:
        engine.dispose()
    return keys
