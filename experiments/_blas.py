"""One BLAS thread per process: for the simulating processes and the service's workers.

engage's linear algebra is on small matrices (a posterior of a few hundred weights, slot
covariances of a few dozen), where OpenBLAS's threads gain little; but they spin while they
wait for work, so with several processes (``engage run --jobs``, sweeps, ``engage serve
--workers``) or any other load on the machine they take cores from one another and from the
threads that answer requests. Measured on this 2-core machine under a load of 3, ``engage run
examples/engagement.toml --customers 20000 --days 30 --arms interaction --jobs 1
--no-oracles``: 46.7 s with OpenBLAS's default threads against 23.9 s with one (a 440 x 440
Cholesky factor took 340 ms instead of 2 ms). engage gets its parallelism from processes
instead.

A limit reaches only the libraries already loaded, so :func:`hold_one_blas_thread` loads
numpy's and scipy's BLAS first.
"""

from __future__ import annotations

from typing import Any

__all__ = ["hold_one_blas_thread", "single_blas_thread"]


def single_blas_thread() -> Any:
    """Limit the BLAS libraries loaded in this process to one thread until the returned
    ``threadpool_limits`` exits as a context manager (for good when it is not one)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def hold_one_blas_thread() -> None:
    """Load numpy's and scipy's BLAS, then hold them to one thread for the process's life: a
    pool worker's initializer, a service worker's start."""
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401

    single_blas_thread()
