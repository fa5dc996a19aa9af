"""``engage evaluate``: off-policy evaluation of a decision log from any source."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from cli.common import MAX_SEED, JsonFlag, console, print_json, readable_errors, shown


def evaluate(
    log: Annotated[Path, typer.Argument(help="Decision log (.csv or .parquet).")],
    policy: Annotated[
        str | None, typer.Option(help="One of our policies, replayed over the log in time order.")
    ] = None,
    target_probs: Annotated[
        Path | None,
        typer.Option(help="Target probabilities: one row per logged row, one column per action."),
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="Seed of the replayed policy.")
    ] = 0,
    drop_column: Annotated[
        list[str] | None,
        typer.Option(help="Leave this column out of the context (repeatable), e.g. an id."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Estimate a target policy's value on logged decisions (IPS, SNIPS, DM, DR).

    The log needs columns action, reward, propensity; timestamp (numbers or ISO-8601 times)
    and a row key (id or decision_id, to join --target-probs by) are optional; every other
    column is context. Example: engage evaluate log.csv --policy linucb --drop-column customer
    """
    from experiments.analysis.evaluate import evaluate_log
    from experiments.analysis.report import OffPolicyEstimate

    with readable_errors():
        evaluation = evaluate_log(
            log,
            policy=policy,
            target_probs=target_probs,
            seed=seed,
            drop_columns=drop_column or (),
        )
    estimates = evaluation.report.estimates()
    if as_json:
        print_json(
            {
                "target": evaluation.target,
                "rows": evaluation.n_rows,
                "estimates": {
                    name: OffPolicyEstimate.model_validate(item, from_attributes=True).to_json()
                    for name, item in estimates.items()
                },
                "unsupported_actions": list(evaluation.unsupported_names),
            }
        )
        return
    table = Table(title=f"Off-policy value of {evaluation.target} ({evaluation.n_rows:,} rows)")
    for column in ("estimator", "value", "std. error", "95% interval", "ESS", "max weight"):
        table.add_column(column, justify="left" if column == "estimator" else "right")
    for name, item in estimates.items():
        table.add_row(
            name.upper(),
            f"{item.value:.4f}",
            f"{item.stderr:.4f}",
            f"[{item.ci_low:.4f}, {item.ci_high:.4f}]",
            "" if item.ess is None else f"{item.ess:,.0f}",
            "" if item.max_weight is None else f"{item.max_weight:.2f}",
        )
    console.print(table)
    if evaluation.unsupported_names:
        warning = Text("warning: ", style="bold yellow")
        warning.append_text(
            shown(
                "the target puts mass on actions the log never tried: "
                + ", ".join(evaluation.unsupported_names)
                + "; IPS-type estimates are biased there."
            )
        )
        console.print(warning, highlight=False)
