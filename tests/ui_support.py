"""Running ``engage ui`` in tests: a free loopback port, and stopping the server's whole
process group (importable as ``ui_support``: the ``tests`` folder is on ``sys.path``)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from port_support import free_port as free_port  # re-exported: tests import it from here


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group, then SIGKILL it if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    # uvicorn runs as mlflow server's child: make sure nothing of the group survives.
    for _ in range(40):
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.25)
    os.killpg(process.pid, signal.SIGKILL)


def wait_until_up(
    process: subprocess.Popen[bytes], base: str, log: Path, *, timeout: float, poll: float = 0.5
) -> None:
    """Poll ``base``/health until ``engage ui`` answers; fail with its log if it exits first
    or does not answer within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"engage ui exited early: {log.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"engage ui did not answer in time: {log.read_text()}")
        time.sleep(poll)
