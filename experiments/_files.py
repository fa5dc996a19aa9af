"""Input files engage reads whole (specs, decision logs): a regular file of bounded size.

A FIFO or ``/dev/zero`` passed where a file is expected would block the read or never end
it, and a file of many gigabytes would fill memory before any check could speak; both are
refused before the file is opened, with a line saying why.
"""

from __future__ import annotations

import stat
from pathlib import Path


def file_problem(path: Path, *, max_bytes: int) -> str | None:
    """Why ``path`` cannot be read as an input file (missing, not a regular file, larger than
    ``max_bytes``), or None when it can."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return f"no such file: {path}"
    except OSError as error:
        return f"cannot read {path}: {error.strerror}"
    if stat.S_ISDIR(status.st_mode):
        return f"{path} is a directory, not a file"
    if not stat.S_ISREG(status.st_mode):
        return f"{path} is not a regular file (a pipe, socket or device); pass a file"
    if status.st_size > max_bytes:
        return f"{path} is {status.st_size:,} bytes; at most {max_bytes:,} are read"
    return None
