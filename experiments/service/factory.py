"""Import-string factory for uvicorn workers: settings come from ``ENGAGE_`` variables."""

from __future__ import annotations

from fastapi import FastAPI

from experiments.service.app import create_app
from experiments.settings import Settings


def app_from_environment() -> FastAPI:
    """Build the app from the environment (each uvicorn worker process calls this)."""
    return create_app(Settings())
