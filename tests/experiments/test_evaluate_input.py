"""Logs that used to give a wrong estimate with exit code 0: each is now read right or refused
by name (column, row, and the flag that helps)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from experiments.analysis.evaluate import evaluate_log, replay_chunk
from experiments.analysis.log_table import MAX_CATEGORY_LEVELS, load_log
from experiments.errors import InvalidInputError

N = 400


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def perfect_target_log(tmp_path: Path, *, newest_first: bool, with_id: bool) -> tuple[Path, Path]:
    """A log whose target policy is worth exactly 1.0.

    Row ``i`` has a good action ``good(i)`` (alternating a, b): reward 1 when the logged action
    is the good one, else 0; logging is uniform (propensity 1/2) and logs the good action in
    exactly half of the rows. The target puts all its mass on ``good(i)``, so its value is 1,
    and IPS = (1/N) x sum over matched rows of (1 / 0.5) x 1 = (2/N) x (N/2) = 1.0 exactly, but
    only if the target's row ``i`` is paired with the log's row ``i``.
    """
    log, target = tmp_path / "log.csv", tmp_path / "target.csv"
    rows, target_rows = [], []
    for i in range(N):
        good = "ab"[i % 2]
        logged = good if (i // 2) % 2 == 0 else "ab"[(i + 1) % 2]
        stamp = N - i if newest_first else i
        row: list[object] = [stamp, logged, float(logged == good), 0.5, i % 5]
        target_row: list[object] = [float(good == "a"), float(good == "b")]
        if with_id:
            row.insert(0, f"d{i}")
            target_row.insert(0, f"d{i}")
        rows.append(row)
        target_rows.append(target_row)
    header = ["timestamp", "action", "reward", "propensity", "x"]
    write_csv(log, ["id", *header] if with_id else header, rows)
    order = list(range(N))
    if with_id:
        order = list(np.random.default_rng(0).permutation(N))
    write_csv(target, ["id", "a", "b"] if with_id else ["a", "b"], [target_rows[i] for i in order])
    return log, target


@pytest.mark.parametrize("newest_first", [False, True])
def test_target_rows_pair_with_log_rows_as_read_whatever_the_time_order(
    tmp_path: Path, newest_first: bool
) -> None:
    log, target = perfect_target_log(tmp_path, newest_first=newest_first, with_id=False)
    report = evaluate_log(log, target_probs=target).report
    assert report.ips.value == pytest.approx(1.0, abs=1e-12)
    assert report.snips is not None
    assert report.snips.value == pytest.approx(1.0, abs=1e-12)


def test_target_rows_join_by_id_when_both_tables_have_one(tmp_path: Path) -> None:
    log, target = perfect_target_log(tmp_path, newest_first=True, with_id=True)
    assert evaluate_log(log, target_probs=target).report.ips.value == pytest.approx(1.0)


def test_a_target_table_that_names_other_rows_is_refused(tmp_path: Path) -> None:
    log, target = perfect_target_log(tmp_path, newest_first=False, with_id=True)
    lines = target.read_text().splitlines()
    target.write_text("\n".join([lines[0], *lines[2:], "d999,1.0,0.0"]) + "\n")
    with pytest.raises(InvalidInputError) as error:
        evaluate_log(log, target_probs=target)
    assert error.value.field == "target_probs"
    assert "name different rows by 'id'" in str(error.value)


def test_a_missing_number_in_a_numeric_context_column_is_refused_not_one_hot(
    tmp_path: Path,
) -> None:
    log = tmp_path / "log.csv"
    rows: list[list[object]] = [["ab"[i % 2], i % 2, 0.5, float(i)] for i in range(20)]
    rows[3][3] = "nan"
    write_csv(log, ["action", "reward", "propensity", "spend"], rows)
    with pytest.raises(InvalidInputError) as error:
        load_log(log)
    assert error.value.field == "spend"
    assert str(error.value) == "column 'spend' has a missing or infinite value at row 4"


def test_numeric_timestamps_are_ordered_as_numbers_not_text(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    stamps = [12, 3, 1, 10, 2, 11, 4, 5, 9, 6, 8, 7]
    write_csv(
        log,
        ["timestamp", "action", "reward", "propensity"],
        [[stamp, "ab"[stamp % 2], float(stamp), 0.5] for stamp in stamps],
    )
    assert load_log(log).rewards.tolist() == [float(value) for value in range(1, 13)]


def test_iso_timestamps_with_zones_are_ordered_as_instants(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    stamps = ["2026-01-01T10:00:00+02:00", "2026-01-01T09:00:00+00:00", "2026-01-01T08:30:00"]
    write_csv(
        log,
        ["timestamp", "action", "reward", "propensity"],
        [[stamp, "a", float(row), 0.5] for row, stamp in enumerate(stamps)],
    )
    # 08:00 UTC, 09:00 UTC, 08:30 UTC (a time without a zone is read as UTC).
    assert load_log(log).rewards.tolist() == [0.0, 2.0, 1.0]


def test_an_unreadable_timestamp_is_refused_by_row(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    write_csv(
        log,
        ["timestamp", "action", "reward", "propensity"],
        [["2026-01-01", "a", 1, 0.5], ["yesterday", "b", 0, 0.5]],
    )
    with pytest.raises(InvalidInputError) as error:
        load_log(log)
    assert str(error.value) == (
        "column 'timestamp' must hold numbers or ISO-8601 times; row 2 is 'yesterday'"
    )


def test_a_null_action_is_refused_in_parquet_and_an_empty_one_in_csv(tmp_path: Path) -> None:
    parquet = tmp_path / "log.parquet"
    pq.write_table(
        pa.table({"action": ["a", None, "b"], "reward": [1.0, 0.0, 1.0], "propensity": [0.5] * 3}),
        parquet,
    )
    with pytest.raises(InvalidInputError) as error:
        load_log(parquet)
    assert str(error.value) == "column 'action' has a missing value at row 2"
    flat = tmp_path / "log.csv"
    write_csv(flat, ["action", "reward", "propensity"], [["a", 1, 0.5], ["", 0, 0.5]])
    with pytest.raises(InvalidInputError) as error:
        load_log(flat)
    assert str(error.value) == "column 'action' has an empty value at row 2"


def test_a_short_log_still_teaches_the_replayed_policy(tmp_path: Path) -> None:
    """On 200 rows the old single chunk of 256 scored every row before any learning, so every
    policy was uniform and all estimates were identical."""
    log = tmp_path / "log.csv"
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(200):
        action = "abc"[rng.integers(3)]
        rows.append([action, float(rng.random() < {"a": 0.1, "b": 0.5, "c": 0.9}[action]), 1 / 3])
    write_csv(log, ["action", "reward", "propensity"], rows)
    assert replay_chunk(200) == 3
    uniform = evaluate_log(log, policy="uniform").report.snips
    learner = evaluate_log(log, policy="linucb").report.snips
    assert uniform is not None
    assert learner is not None
    assert learner.value > uniform.value + 0.1


def test_a_high_cardinality_column_is_refused_with_the_flag_that_drops_it(
    tmp_path: Path,
) -> None:
    log = tmp_path / "log.csv"
    n = MAX_CATEGORY_LEVELS + 44
    write_csv(
        log,
        ["action", "reward", "propensity", "customer", "x"],
        [["ab"[i % 2], i % 2, 0.5, f"c{i}", i % 3] for i in range(n)],
    )
    with pytest.raises(InvalidInputError) as error:
        load_log(log)
    assert str(error.value) == (
        f"context column 'customer' has {n} distinct values (at most {MAX_CATEGORY_LEVELS} are "
        "one-hot encoded); leave it out with --drop-column customer"
    )
    assert load_log(log, drop_columns=["customer"]).feature_names == ("x",)
    with pytest.raises(InvalidInputError) as error:
        load_log(log, drop_columns=["nope"])
    assert str(error.value) == "--drop-column names no column of log.csv: nope"


def test_the_cli_names_the_column_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    log = tmp_path / "log.csv"
    write_csv(
        log,
        ["action", "reward", "propensity", "customer"],
        [["ab"[i % 2], i % 2, 0.5, f"c{i}"] for i in range(MAX_CATEGORY_LEVELS + 1)],
    )
    result = CliRunner().invoke(app, ["evaluate", str(log), "--policy", "linucb"])
    assert result.exit_code == 2
    assert " ".join(result.output.split()) == (
        f"error: context column 'customer' has {MAX_CATEGORY_LEVELS + 1} distinct values (at "
        f"most {MAX_CATEGORY_LEVELS} are one-hot encoded); leave it out with --drop-column "
        "customer"
    )
    assert "Traceback" not in result.output
    dropped = CliRunner().invoke(
        app, ["evaluate", str(log), "--policy", "linucb", "--drop-column", "customer", "--json"]
    )
    assert dropped.exit_code == 0, dropped.output
