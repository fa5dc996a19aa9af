"""The HTTP decision service: ``create_app(settings)`` builds the FastAPI application."""

from experiments.service.app import create_app

__all__ = ["create_app"]
