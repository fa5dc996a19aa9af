"""Import-string factory for uvicorn workers: settings come from ``ENGAGE_`` variables."""

from __future__ import annotations

from fastapi import FastAPI

from experiments._blas import hold_one_blas_thread
from experiments.service.app import create_app
from experiments.settings import Settings


def app_from_environment() -> FastAPI:
    """Build the app from the environment (each uvicorn worker process calls this), in a
    process whose BLAS runs on one thread: its spinning threads would otherwise take the
    cores of the threads answering requests, and of the other workers (:mod:`experiments._blas`)."""
    hold_one_blas_thread()
    return create_app(Settings())
