"""The HTTP decision service over the engine, and the Python client that calls it.

=================  ==========================================================================
``app``            :func:`create_app`: the versioned HTTP API (FastAPI); nothing built at import
``schemas``        request and response bodies: the contract clients code against
``errors``         every error answered as JSON with its status
``auth``           bearer API keys with scopes
``ratelimit``      a token bucket per API key (429 with Retry-After)
``limits``         request bodies over a size limit refused with 413 before they are read
``factory``        the import-string app factory uvicorn workers call (``ENGAGE_`` settings)
``server``         :func:`~experiments.service.server.run_server`: uvicorn, one or more workers
``client``         :class:`EngageClient`: decide and report outcomes with idempotent retries
=================  ==========================================================================

The names below are loaded from their module on first use (:pep:`562`): a program that only
calls the service through :class:`EngageClient` does not import FastAPI or the engine.
"""

from __future__ import annotations

from experiments._lazy import load_on_first_use

__all__ = ["EngageClient", "EngageError", "create_app"]

#: The module of the package that defines each public name.
HOMES: dict[str, str] = {"EngageClient": "client", "EngageError": "client", "create_app": "app"}

__getattr__, __dir__ = load_on_first_use(__name__, HOMES)
