"""Where engage's MLflow runs live, and how ``engage ui`` serves them; no ``mlflow`` import.

* :func:`tracking_uri` - ``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<cwd>/mlruns/mlflow.db``
  (MLflow's plain file store refuses to log without an opt-in);
* :func:`artifact_root`, :func:`artifact_location` - for any local SQLite store, artifacts go to
  ``artifacts/`` beside the database file (for the default store that is ``mlruns/artifacts``):
  left to itself, MLflow would put them under ``./mlruns`` relative to whatever the working
  directory happens to be. For a tracking server or another database, the server's own artifact
  configuration applies;
* :func:`configure` - offline, quiet MLflow settings, applied before ``mlflow`` is imported;
* :func:`ui_command`, :func:`ui_environment` - the ``mlflow server`` behind ``engage ui``;
* :func:`git_commit`, :func:`redacted` - what a run is tagged with, and a URI fit to print.

Kept apart from :mod:`experiments.analysis.tracking` (the runs themselves) so that ``engage ui``
and ``engage --help`` never load the module that talks to MLflow.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = [
    "TrackingError",
    "artifact_location",
    "artifact_root",
    "configure",
    "git_commit",
    "redacted",
    "tracking_uri",
    "ui_command",
    "ui_environment",
]

_SERVER_SCHEMES = ("http://", "https://", "databricks")


class TrackingError(ValueError):
    """MLflow could not record or read a run; the message says where and why."""


# --------------------------------------------------------------------------- where runs live


def tracking_uri(cwd: Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the SQLite store ``<cwd>/mlruns/mlflow.db``.

    The default store's directories (``mlruns/`` and ``mlruns/artifacts``) are created.
    """
    configured = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if configured:
        return configured
    base = _base(cwd)
    (base / "mlruns" / "artifacts").mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{base / 'mlruns' / 'mlflow.db'}"


def artifact_root(cwd: Path | None = None) -> str:
    """File URI of ``<cwd>/mlruns/artifacts``: artifacts of the default local store."""
    return (_base(cwd) / "mlruns" / "artifacts").as_uri()


def redacted(uri: str) -> str:
    """``uri`` with any password replaced by ``***``, for printing."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", uri)


def _base(cwd: Path | None) -> Path:
    return (cwd if cwd is not None else Path.cwd()).resolve()


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the working directory), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    if path in ("", ":memory:"):
        return None
    return Path(path).resolve()


def artifact_location(uri: str) -> str | None:
    """Where new experiments keep artifacts: beside a local SQLite store, else MLflow decides."""
    database = _sqlite_path(uri)
    return None if database is None else (database.parent / "artifacts").as_uri()


def configure() -> None:
    """Set MLflow up for an offline machine and a quiet terminal (idempotent).

    Telemetry is switched off (there is no internet and nobody asked for it). HTTP retries to a
    tracking server default to 2 instead of MLflow's 7 with exponential backoff, so an
    unreachable server fails in seconds rather than minutes (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``
    still overrides). The database initialisation chatter of a new SQLite store is silenced.
    """
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    for name in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit checked out in ``cwd`` (default: the working directory), or None outside git."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments to the git found on PATH
            [git, "rev-parse", "HEAD"],
            cwd=_base(cwd),
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", commit) else None


# --------------------------------------------------------------------------- engage ui


def ui_command(host: str, port: int, uri: str | None = None) -> list[str]:
    """The ``mlflow server`` command serving the tracking store on ``host:port``.

    One worker (a local UI for one person). Refuses a URI that is already a tracking server:
    there is nothing to start, open that URL instead.
    """
    store = uri or tracking_uri()
    if store.startswith(_SERVER_SCHEMES):
        raise TrackingError(
            f"MLFLOW_TRACKING_URI is a tracking server ({redacted(store)}); "
            "open it in a browser instead"
        )
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store]
    location = artifact_location(store)
    if location is not None:
        command += ["--default-artifact-root", location]
    return [*command, "--host", host, "--port", str(port), "--workers", "1"]


def ui_environment() -> dict[str, str]:
    """The environment for :func:`ui_command`: this one, offline, without MLflow's job runner.

    The job runner (a huey consumer process) executes GenAI evaluation jobs, which engage never
    submits; without it the server starts faster (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true``
    in the environment turns it back on).
    """
    configure()
    environment = dict(os.environ)
    environment.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return environment
