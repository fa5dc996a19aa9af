"""Bad input at the command line: one readable line and exit code 2, never a traceback; stored
text is shown, never obeyed; --json is strict JSON."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from cli.common import print_json, shown, strict_json
from cli.main import app
from experiments.engine import DecisionEngine
from experiments.store.database import open_database
from experiments.store.schema import upgrade

runner = CliRunner()
#: The ``engage`` program of this checkout, as the console script runs it.
ENGAGE = [sys.executable, "-X", "faulthandler", "-c", "from cli.main import entry; entry()"]
ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, " ".join(result.output.split())


def test_init_refuses_a_missing_folder_a_directory_and_a_full_device(tmp_path: Path) -> None:
    assert invoke("init", str(tmp_path / "nope" / "x.toml")) == (
        2,
        f"error: cannot write {tmp_path / 'nope' / 'x.toml'}: the folder {tmp_path / 'nope'} "
        "does not exist",
    )
    assert invoke("init", str(tmp_path), "--force") == (
        2,
        f"error: {tmp_path} is a directory; name the spec file to write, e.g. "
        f"{tmp_path / 'x.toml'}",
    )
    if Path("/dev/full").exists():
        assert invoke("init", "/dev/full", "--force") == (
            2,
            "error: cannot write /dev/full: No space left on device",
        )


@pytest.mark.parametrize(
    "args",
    [
        ("demo", "--seed", "-1"),
        ("keys", "revoke", "9223372036854775808"),
        ("keys", "revoke", "0"),
    ],
)
def test_out_of_range_numbers_are_usage_errors_that_name_the_option(args: tuple[str, ...]) -> None:
    code, output = invoke(*args)
    assert code == 2
    assert "Invalid value for" in output
    assert ("'--seed'" if "--seed" in args else "'key_id'") in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("mysql://user:secret@db/engage", "mysql"),
        ("postgresql+asyncpg://db/x", "postgresql+asyncpg"),
    ],
)
def test_an_unsupported_database_url_is_one_line_without_its_password(
    url: str, scheme: str
) -> None:
    code, output = invoke("experiments", "list", env={"ENGAGE_DATABASE_URL": url})
    assert (code, output) == (
        2,
        f"error: database URL scheme '{scheme}' is not supported: engage stores data in SQLite "
        "(sqlite:///path.db) or PostgreSQL (postgresql://user@host/db)",
    )
    assert "secret" not in output


def test_a_closed_pipe_stops_engage_quietly() -> None:
    """``engage ... | head -1``: the reader leaves after one line; engage ends by SIGPIPE (the
    shell's status 141) with nothing on standard error."""
    script = "import sys; from cli.main import entry; sys.argv = ['engage', '--help']; entry()"
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    assert process.stdout is not None
    process.stdout.readline()
    process.stdout.close()
    _, errors = process.communicate(timeout=60)
    assert errors == b""
    assert process.returncode in (0, -signal.SIGPIPE)


def test_strict_json_turns_non_finite_numbers_into_null() -> None:
    data = {"a": float("nan"), "b": [1.5, float("inf"), {"c": -float("inf")}], "d": "NaN"}
    assert strict_json(data) == {"a": None, "b": [1.5, None, {"c": None}], "d": "NaN"}
    console = Console(record=True, width=200)
    import cli.common as common

    original, common.console = common.console, console
    try:
        print_json(data)
    finally:
        common.console = original
    assert json.loads(console.export_text(), parse_constant=pytest.fail) == strict_json(data)


DIRECTION = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
PIECES = st.sampled_from(["[/]", "[bold red]", "\x1b[2J", "\x1b]8;;x\x07", *DIRECTION])
#: Text mixing any character (controls included) with markup brackets, ESC sequences and
#: direction overrides.
HOSTILE_TEXT = st.lists(st.text(max_size=8) | PIECES, max_size=8).map("".join)


def visible(char: str) -> bool:
    return not (ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F or char in DIRECTION)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE_TEXT)
def test_shown_text_is_never_markup_and_never_a_control_character(text: str) -> None:
    rendered = shown(text).plain
    assert all(visible(char) for char in rendered)
    # Readable: the text itself, each unshowable character written as its Python escape.
    assert rendered == "".join(char if visible(char) else ascii(char)[1:-1] for char in text)
    console = Console(record=True, width=400, color_system=None)
    console.print(shown(text), soft_wrap=True, end="")
    assert console.export_text() == rendered


def test_experiments_list_and_show_print_markup_and_escapes_as_text(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    engine = DecisionEngine(open_database(url))
    description = "[/][red]x\x1b[2J\u202ey"
    engine.create_experiment(
        {
            "key": "promo",
            "description": description,
            "factors": {"offer": ["a", "b"]},
            "policy": {"name": "uniform"},
            "reward": {"kind": "event", "event": "click", "window": "1d"},
        }
    )
    for args in (("experiments", "list"), ("experiments", "show", "promo")):
        code, output = invoke(*args, "--database-url", url)
        assert code == 0, output
        assert "[/][red]x\\x1b[2J" in output
        assert "\x1b" not in output


QUICKSTART = (ROOT / "examples" / "quickstart.toml").read_text()


def _spec_file(tmp_path: Path, old: str, new: str) -> str:
    assert old in QUICKSTART
    path = tmp_path / "spec.toml"
    path.write_text(QUICKSTART.replace(old, new))
    return str(path)


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            'name = "logistic_ts"',
            'name = "logistic_ts"\nparams = { n_samples = 100000000 }',
            "error: policy.params.n_samples: must be at most 10,000; got 100,000,000",
        ),
        (
            "default = 0.0",
            "default = 1e308",
            "error: reward.default: must be a number within +-1e+12, the bound on outcome "
            "values; got 1e+308",
        ),
        (
            'name = "logistic_ts"',
            'name = "logistic_ts"\nparams = { ridge = 1e-320 }',
            "error: policy.params.ridge: must be 0 or a number between 1e-12 and 1e+12 in "
            "magnitude; got 1e-320",
        ),
    ],
    ids=["n_samples", "reward default", "ridge"],
)
def test_run_refuses_a_spec_that_would_exhaust_memory_or_overflow(
    tmp_path: Path, old: str, new: str, line: str
) -> None:
    path = _spec_file(tmp_path, old, new)
    code, output = invoke("run", path, "--customers", "10", "--days", "1", "--no-track")
    assert (code, output) == (2, line)


#: ``engage run`` at its smallest: no MLflow, no oracles, one process.
QUICK_RUN = ["run", "--customers", "10", "--days", "1", "--no-track", "--no-oracles", "--jobs", "1"]


def test_run_warns_of_a_reward_event_the_simulator_never_emits(tmp_path: Path) -> None:
    path = _spec_file(tmp_path, 'event = "click"', 'event = "clicked"')
    result = runner.invoke(
        app,
        [*QUICK_RUN, path, "--arms", "interaction", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        "warning: reward.event 'clicked' is never emitted by the simulator (it emits click, "
        "accept, revenue, usage, churn): every reward will be the default"
    )


@pytest.mark.parametrize(("share", "held", "treated"), [("0.0", 0, 40), ("0.999999", 40, 0)])
def test_run_says_why_a_holdout_share_gives_no_lift_without_numpy_warnings(
    tmp_path: Path, share: str, held: int, treated: int
) -> None:
    path = _spec_file(tmp_path, "share = 0.1", f"share = {share}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's "Mean of empty slice"
        result = runner.invoke(
            app,
            [*QUICK_RUN, path, "--customers", "40", "--arms", "uniform,interaction"],
        )
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"warning: holdout.share {float(share):g} holds out {held} of 40 customers ({treated} "
        "treated): lift against the holdout needs at least 2 in each group, so there will be "
        "no lift table\n"
    )
    assert "Warning" not in result.output
    assert (
        " ".join(result.stdout.split()).count(
            f"No lift table: {held} held-out and {treated} treated customers; lift needs at least "
            f"2 in each group (holdout.share {float(share):g})"
        )
        == 1
    )


def test_a_bad_policy_parameter_is_named_with_the_valid_ones(tmp_path: Path) -> None:
    path = _spec_file(
        tmp_path, 'name = "logistic_ts"', 'name = "kalman_ts"\nparams = { process_nois = 0.1 }'
    )
    assert invoke("run", path, "--no-track") == (
        2,
        "error: policy.params.process_nois: is not a hyper-parameter of policy 'kalman_ts'; "
        "expected one of ['fit_intercept', 'forgetting', 'interactions', 'n_samples', "
        "'noise_variance', 'process_noise', 'ridge', 'scale']",
    )


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            'key = "quickstart"',
            f'key = "{"x" * 100_000}"',
            "error: key: must be 1 to 64 characters of lowercase letters, digits, '_' and '-', "
            f"starting with a letter or digit; got '{'x' * 79}…(100,002 characters)",
        ),
        (
            'channel = ["sms", "email", "push"]',
            f'channel = ["sms", "{"x" * 100_000}"]',
            "error: factors.channel[1]: must be a level of at most 128 characters; got 100,000",
        ),
        (
            'channel = "email"',
            f'channel = "{"x" * 100_000}"',
            "error: rules[0]: 'rules[0]' names unknown level "
            f"'{'x' * 79}…(100,002 characters) of factor 'channel'; known: ['sms', 'email', "
            "'push'].",
        ),
    ],
    ids=["key", "level", "rule"],
)
def test_a_long_value_is_echoed_clipped(tmp_path: Path, old: str, new: str, line: str) -> None:
    path = _spec_file(tmp_path, old, new)
    assert invoke("run", path, "--no-track") == (2, line)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("run", "--customers", "abc", "x"),
            "error: Invalid value for '--customers': Input should be a valid integer, unable "
            "to parse string as an integer (see 'engage run --help')",
        ),
        (("nosuch",), "error: No such command 'nosuch'. (see 'engage --help')"),
        (("run",), "error: Missing argument 'SPEC'. (see 'engage run --help')"),
        (
            ("keys", "create", "--scope", "root"),
            "error: Invalid value for '--scope': 'root' is not one of 'admin', 'decide', "
            "'read'. (see 'engage keys create --help')",
        ),
    ],
)
def test_a_usage_error_is_one_line_with_exit_code_2(args: tuple[str, ...], line: str) -> None:
    result = runner.invoke(app, list(args), prog_name="engage")
    assert (result.exit_code, result.output) == (2, line + "\n")


@pytest.mark.parametrize("group", [(), ("db",), ("keys",), ("experiments",)])
def test_every_group_help_has_an_example(group: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*group, "--help"], prog_name="engage")
    assert result.exit_code == 0
    assert f"Example: engage {group[0] if group else 'init'}" in result.output


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1", "127.0.1", "localhost", "LOCALHOST.", "::1", "[::1]", "0x7f.1"]
)
def test_serve_takes_any_spelling_of_loopback(host: str) -> None:
    from cli.serve import _is_loopback

    assert _is_loopback(host)


@pytest.mark.parametrize("host", ["10.0.0.1", "0.0.0.0", "example.com", "128.1", "::"])  # noqa: S104
def test_serve_refuses_other_hosts_without_allow_remote(host: str) -> None:
    from cli.serve import _is_loopback

    assert not _is_loopback(host)


def test_a_pipe_or_a_device_is_refused_as_a_spec_or_a_log(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.toml"
    os.mkfifo(fifo)
    for args, line in (
        (
            ["run", str(fifo)],
            f"error: file: {fifo} is not a regular file (a pipe, socket or device); pass a file",
        ),
        (
            ["evaluate", "/dev/zero", "--policy", "linucb"],
            "error: /dev/zero is not a regular file (a pipe, socket or device); pass a file",
        ),
    ):
        done = subprocess.run(  # noqa: S603 - our own CLI; a hang fails by the timeout
            [*ENGAGE, *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )
        assert (done.returncode, done.stderr, done.stdout) == (2, line + "\n", "")


def test_a_spec_file_above_the_size_bound_is_refused(tmp_path: Path) -> None:
    from experiments.spec.loading import MAX_SPEC_BYTES

    path = tmp_path / "big.toml"
    with path.open("wb") as handle:
        handle.truncate(MAX_SPEC_BYTES + 1)
    assert invoke("run", str(path)) == (
        2,
        f"error: file: {path} is {MAX_SPEC_BYTES + 1:,} bytes; at most {MAX_SPEC_BYTES:,} are read",
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another socket is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_serve_and_ui_refuse_a_port_in_use_before_saying_they_serve(
    tmp_path: Path, taken_port: int
) -> None:
    url = f"sqlite:///{tmp_path / 'engage.db'}"
    upgrade(url)
    line = f"error: cannot listen on 127.0.0.1:{taken_port}: Address already in use"
    result = runner.invoke(app, ["serve", "--port", str(taken_port), "--database-url", url])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", line + "\n")
    result = runner.invoke(app, ["ui", "--port", str(taken_port)])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", line + "\n")


def test_serve_on_port_0_says_the_port_it_bound(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'engage.db'}"
    upgrade(url)
    server = subprocess.Popen(  # noqa: S603 - our own CLI
        [*ENGAGE, "serve", "--port", "0", "--database-url", url, "--no-learner"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        match = re.fullmatch(
            r"engage serving on http://127\.0\.0\.1:(\d+) \(docs at /docs\)\n", first
        )
        assert match, first
        port = int(match.group(1))
        assert port != 0
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.parametrize(
    "args", [("db", "upgrade"), ("keys", "create", "--scope", "read"), ("experiments", "list")]
)
@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_is_refused(args: tuple[str, ...], url: str) -> None:
    assert invoke(*args, env={"ENGAGE_DATABASE_URL": url}) == (
        2,
        f"error: database URL {url} is an in-memory SQLite database, gone when this command "
        "ends; use a file, e.g. sqlite:///engage.db",
    )


def test_run_refuses_an_in_memory_database(tmp_path: Path) -> None:
    assert invoke(
        *QUICK_RUN, str(ROOT / "examples" / "quickstart.toml"), "--database-url", "sqlite://"
    ) == (
        2,
        "error: database URL sqlite:// is an in-memory SQLite database, gone when this command "
        "ends; use a file, e.g. sqlite:///engage.db",
    )


@pytest.mark.parametrize(
    "args",
    [
        ("experiments", "list"),
        ("experiments", "show", "promo"),
        ("report", "promo"),
        ("keys", "list"),
        ("export", "promo"),
        ("purge", "--before", "2026-01-01"),
    ],
)
def test_a_missing_sqlite_file_is_refused_and_not_created(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    path = tmp_path / "nope.db"
    assert invoke(*args, "--database-url", f"sqlite:///{path}") == (
        2,
        f"error: no database at {path}; run `engage db upgrade` to create it",
    )
    assert not path.exists()


def test_run_refuses_an_arm_named_twice() -> None:
    quickstart = str(ROOT / "examples" / "quickstart.toml")
    assert invoke(*QUICK_RUN, quickstart, "--arms", "uniform, interaction,uniform") == (
        2,
        "error: --arms names 'uniform' more than once; name each arm once",
    )


def test_a_second_run_into_the_same_database_names_the_key_that_exists(tmp_path: Path) -> None:
    quickstart = str(ROOT / "examples" / "quickstart.toml")
    url = f"sqlite:///{tmp_path / 'run.db'}"
    args = (*QUICK_RUN, quickstart, "--customers", "100", "--arms", "interaction")
    first = invoke(*args, "--database-url", url)
    assert first[0] == 0, first[1]
    assert invoke(*args, "--database-url", url) == (
        2,
        f"error: experiment 'quickstart-interaction' (the interaction arm) already exists in "
        f"{url}: an earlier run, perhaps interrupted, kept it there; pass another "
        "--database-url, or leave it out to run in a temporary database",
    )


def _group_alive(group: int) -> list[int]:
    """Processes still in process group ``group``."""
    alive = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(status.parent.name))
    return alive


#: A run long enough to be stopped halfway, in two worker processes.
LONG_RUN = ["--no-track", "--customers", "3000", "--days", "30", "--jobs", "2"]


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the handler interrupts this


def test_sigterm_while_tracking_ends_the_mlflow_runs_as_killed(tmp_path: Path) -> None:
    """engage run wraps its work in sigterm_as_interrupt: a SIGTERM while it logs to MLflow
    ends the parent and child runs as KILLED, as Ctrl-C does, not stuck RUNNING."""
    from mlflow import MlflowClient

    from cli.common import sigterm_as_interrupt
    from experiments.analysis.tracking import Tracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with (
        pytest.raises(KeyboardInterrupt),
        sigterm_as_interrupt(),
        Tracker("terminated", run_name="r", params={}, uri=uri) as tracker,
        tracker.child("uniform", params={}) as child,
    ):
        _terminate_self()
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(tracker.parent_run_id).info.status == "KILLED"
    assert client.get_run(child.run_id).info.status == "KILLED"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored


@pytest.mark.parametrize("midway", [False, True], ids=["starting", "midway"])
def test_sigterm_stops_a_run_like_ctrl_c_and_leaves_no_worker_behind(
    tmp_path: Path, midway: bool
) -> None:
    """SIGTERM to engage alone (as a supervisor sends it): exit 130, and its worker
    processes (a pool and a multiprocessing manager) end with it."""
    run = subprocess.Popen(  # noqa: S603 - our own CLI
        [*ENGAGE, "run", str(ROOT / "examples" / "quickstart.toml"), *LONG_RUN],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_group_alive(run.pid)) < 3:  # engage, the manager and a pool worker
            assert run.poll() is None, run.stderr.read() if run.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.2)
        if midway:
            time.sleep(4)  # the workers are simulating
            assert run.poll() is None
        run.send_signal(signal.SIGTERM)
        try:
            code = run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.send_signal(signal.SIGABRT)  # faulthandler: where it hangs
            run.wait(timeout=10)
            raise AssertionError(run.stderr.read() if run.stderr else "") from None
        assert code == 130
        assert run.stderr is not None
        assert "Traceback" not in run.stderr.read()
        deadline = time.monotonic() + 15
        while _group_alive(run.pid):
            assert time.monotonic() < deadline, _group_alive(run.pid)
            time.sleep(0.2)
    finally:
        for pid in _group_alive(run.pid):
            os.kill(pid, signal.SIGKILL)


def test_run_checks_the_tracking_store_before_simulating(tmp_path: Path) -> None:
    quickstart = str(ROOT / "examples" / "quickstart.toml")
    result = runner.invoke(
        app,
        ["run", quickstart, "--customers", "10", "--days", "1", "--jobs", "1"],
        env={"MLFLOW_TRACKING_URI": "nonsense://x"},
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        "error: MLflow could not reach the tracking store at nonsense://x: "
    )
    assert result.stderr.count("\n") == 1


def test_run_prints_its_results_when_tracking_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from experiments.analysis.tracking_store import TrackingError

    def broken(*_: object) -> str:
        raise TrackingError("MLflow could not log the run's params at sqlite:///m.db: full")

    monkeypatch.setattr("experiments.analysis.tracking.check_store", lambda: "sqlite:///m.db")
    monkeypatch.setattr("experiments.runs.report.track_run", broken)
    quickstart = str(ROOT / "examples" / "quickstart.toml")
    result = runner.invoke(
        app,
        [
            *QUICK_RUN,
            quickstart,
            "--customers",
            "100",
            "--arms",
            "interaction",
            "--json",
            "--track",
        ],
    )
    assert result.exit_code == 2
    printed = json.loads(result.stdout)
    assert printed["mlflow_run_id"] is None
    assert [arm["arm"] for arm in printed["arms"]] == ["interaction"]
    assert result.stderr == (
        "error: the results were not tracked in MLflow: MLflow could not log the run's params "
        "at sqlite:///m.db: full\n"
    )


def _storable(text: str) -> bool:
    from experiments.spec.text import text_problem

    return text_problem(text) is None


#: Levels a spec accepts, drawn from the hostile alphabet: non-empty, not padded with spaces,
#: without the action-name separators.
HOSTILE_LEVEL = HOSTILE_TEXT.filter(
    lambda text: (
        text.strip() == text
        and text != ""
        and "|" not in text
        and "=" not in text
        and len(text) <= 128
        and _storable(text)
    )
)


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'store.db'}"
    upgrade(url)
    return url


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    description=HOSTILE_TEXT.filter(_storable),
    levels=st.lists(HOSTILE_LEVEL, min_size=1, max_size=3, unique=True),
)
def test_experiment_text_is_printed_escaped_and_readable(
    hostile_store: str, description: str, levels: list[str]
) -> None:
    """Whatever a spec's description and levels hold (markup, ESC sequences, direction
    marks, controls), `engage experiments show` prints the description as :func:`shown`
    writes it and the levels as JSON, and nothing the terminal would act on."""
    engine = DecisionEngine(open_database(hostile_store))
    key = f"k{len(engine.list_experiments())}"
    engine.create_experiment(
        {
            "key": key,
            "description": description,
            "factors": {"offer": levels},
            "policy": {"name": "uniform"},
            "reward": {"kind": "event", "event": "click", "window": "1d"},
        }
    )
    result = runner.invoke(app, ["experiments", "show", key, "--database-url", hostile_store])
    assert result.exit_code == 0, result.output
    title, spec = result.stdout.split("\n", 1)
    assert title == shown(f"{key} (running) {description}").plain
    assert json.loads(spec, parse_constant=pytest.fail)["factors"]["offer"] == levels
    unshown = [char for char in result.stdout if not (visible(char) or char == "\n")]
    assert not unshown, unshown


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"not strict JSON: {name}")


def test_json_of_run_report_and_evaluate_is_strict_json(tmp_path: Path) -> None:
    """A tiny run has groups too small for intervals (NaN inside): --json still writes strict
    JSON, which json.loads reads without NaN or Infinity."""
    url = f"sqlite:///{tmp_path / 'run.db'}"
    quickstart = str(ROOT / "examples" / "quickstart.toml")
    outputs = []
    for args in (
        [*QUICK_RUN, quickstart, "--arms", "interaction", "--database-url", url, "--json"],
        ["report", "quickstart-interaction", "--database-url", url, "--no-track", "--json"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    log = tmp_path / "log.csv"
    log.write_text("action,reward,propensity,x\na,1,0.5,1\nb,1,0.5,1\na,1,0.5,1\n")
    result = runner.invoke(app, ["evaluate", str(log), "--policy", "linucb", "--json"])
    assert result.exit_code == 0, result.output
    outputs.append(result.stdout)
    for output in outputs:
        json.loads(output, parse_constant=_refuse_constant)
    assert "null" in outputs[0]  # the intervals a tiny run cannot compute


#: Column names a CSV header can hold and the log reader keeps as a context column: not a
#: reserved column name, no newline or NUL (a CSV row break), not blank.
HOSTILE_COLUMN = HOSTILE_TEXT.filter(
    lambda text: (
        text.strip() != ""
        and not ({"\n", "\r", "\x00"} & set(text))
        and text.strip().lower()
        not in {"action", "reward", "propensity", "timestamp", "id", "customer_id"}
        and len(text) <= 64
    )
)


@settings(
    max_examples=25,
    deadline=None,
    # The file is rewritten whole for every example.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(column=HOSTILE_COLUMN)
def test_a_log_column_name_is_printed_escaped_and_readable(tmp_path: Path, column: str) -> None:
    """Whatever a log's context column is called, `engage evaluate`'s refusal of its missing
    value names it as :func:`shown` writes it, on one line, with exit code 2, and nothing the
    terminal would act on."""
    log = tmp_path / "hostile.csv"
    with log.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["action", "reward", "propensity", column])
        writer.writerows([["ab"[i % 2], i % 2, 0.5, "nan" if i == 3 else i] for i in range(20)])
    result = runner.invoke(app, ["evaluate", str(log), "--policy", "uniform"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    unshown = [char for char in result.output if not (visible(char) or char == "\n")]
    assert not unshown, unshown
    message = f"column '{column}' has a missing or infinite value at row 4"
    assert result.output == "error: " + shown(" ".join(message.split())).plain + "\n"
