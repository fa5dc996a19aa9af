"""Running ``engage`` in process for CLI tests (typer's runner)."""

from __future__ import annotations

from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    """Exit code and output of ``engage ARGS``."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def one_line(text: str) -> str:
    """The output as one line: rich wraps long lines at the console width."""
    return " ".join(text.split())
