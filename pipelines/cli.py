"""The ``riskstrat`` command line: one command per stage, plus the end-to-end demo.

Every command loads and validates ``configs/`` first, so a wrong setting stops
it before any work. Errors print one line and a hint and exit non-zero; pass
``--debug`` for the traceback.

The flow modules are imported inside each command, after :func:`_config` has set
the offline environment (Prefect's home under the outputs folder), because
importing them imports Prefect and MLflow, which read it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.text import Text

from riskstrat.errors import RiskstratError
from riskstrat.features.outcomes import outcome_names
from riskstrat.io import output_lock
from riskstrat.pipelines.config import Config, load_config
from riskstrat.pipelines.environment import configure_environment, start_command_guards
from riskstrat.pipelines.generate import write_synthetic
from riskstrat.pipelines.terminal import make_console, printable, say

app = typer.Typer(
    name="riskstrat",
    help="Population-health risk stratification for NHS integrated care systems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Everything printed may hold data (paths, IDs, codes): plain text only, never markup (see terminal.py).
console = make_console(stderr=True)
out = make_console()

_state: dict[str, Any] = {"debug": False, "config_dir": None}

F = TypeVar("F", bound=Callable[..., Any])

OUTCOME_CHOICES = " or ".join(outcome_names())
"""The registered outcomes, as the --outcome help lists them."""

EXIT_USER_ERROR = 1
EXIT_UNEXPECTED = 2


def handle_errors(command: F) -> F:
    """Turn errors into one clear line plus a hint, and a non-zero exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except RiskstratError as exc:
            if _state["debug"]:
                if exc.message != str(exc):
                    exc.add_note(printable(exc.message))  # the examples, on the user's own terminal only
                raise
            # The full message, with examples, goes to the user's terminal only (str(exc) is redacted).
            _print_error(exc.message, exc.hint)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            console.print(Text("interrupted", style="red"))
            raise typer.Exit(130) from None
        except Exception as exc:
            if _state["debug"]:
                raise
            _print_error(f"{type(exc).__name__}: {exc}", "run again with --debug for the full traceback.")
            raise typer.Exit(EXIT_UNEXPECTED) from None

    return wrapper  # type: ignore[return-value]


def _print_error(message: str, hint: str = "") -> None:
    """Print ``error: <message>`` and ``hint: <hint>`` as plain text (never markup), controls escaped."""
    console.print(Text.assemble(("error:", "bold red"), " ", printable(message)))
    if hint:
        console.print(Text.assemble(("hint:", "yellow"), " ", printable(hint)))


def _config() -> Config:
    config = load_config(_state["config_dir"])
    configure_environment(config.data.output_dir)
    start_command_guards(debug=_state["debug"])
    return config


@app.callback()
def main(
    config_dir: Annotated[
        Path | None,
        typer.Option(
            "--config-dir",
            help="Folder of settings files (default: $RISKSTRAT_CONFIG_DIR, else ./configs, else the settings shipped with riskstrat).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """Find the people most likely to need emergency care, explain why, and audit fairness."""
    _state["config_dir"] = config_dir
    _state["debug"] = debug


@app.command()
@handle_errors
def generate(
    people: Annotated[
        int | None, typer.Option("--people", min=100, help="How many people (default: synthetic.people).")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output folder (default: data.output_dir); writes extract/ (or raw/), truth/, reference/ "
            "and the simulated deployment's worklists/, decisions/ and monitoring/scores/ (synthetic.deployment).",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default: synthetic.seed).")] = None,
    national: Annotated[
        bool,
        typer.Option(
            "--national",
            help="Write raw national files (SUS+ APC, ECDS, CSDS, GP) to raw/ for `riskstrat adapt`, "
            "instead of contract tables to extract/.",
        ),
    ] = False,
) -> None:
    """Generate a synthetic population on real English neighbourhoods (never real data)."""
    config = _config()
    target = out_dir or config.data.output_dir
    with output_lock(
        target, "generate", config.data.lock_timeout_seconds
    ):  # one writer of the outputs folder at a time
        paths = write_synthetic(
            target,
            people if people is not None else config.synthetic.people,
            seed if seed is not None else config.synthetic.seed,
            config.synthetic,
            national=config.sources if national else None,
        )
    if paths.raw_dir is not None:
        say(out, f"Raw national files ({paths.people:,} people): {paths.raw_dir}")
        say(out, "Next: `riskstrat adapt` reads them into contract tables in the extract folder.")
    else:
        say(out, f"Synthetic extract ({paths.people:,} people): {paths.extract_dir}")
    say(out, f"Ground truth (never read by the pipeline): {paths.truth_dir}")
    say(out, f"Practices and neighbourhoods: {paths.practices_csv}")
    if paths.simulated_weeks:
        first, last = paths.simulated_weeks[0], paths.simulated_weeks[-1]
        say(out, f"Simulated deployment: {len(paths.simulated_weeks)} weeks of lists, {first} to {last}")


@app.command()
@handle_errors
def adapt(
    raw_dir: Annotated[
        Path | None, typer.Option("--raw", help="Folder of raw national files (default: sources.raw_dir).")
    ] = None,
    extract_dir: Annotated[
        Path | None, typer.Option("--out", help="Extract folder to write (default: data.extract_dir).")
    ] = None,
) -> None:
    """Read raw national files (SUS+ APC, ECDS, CSDS, GP) into contract tables, with mapping coverage."""
    from riskstrat.pipelines.sources import adapt_flow

    config = _config()
    result = adapt_flow(
        config_dir=str(config.source_dir),
        raw_dir=str(raw_dir) if raw_dir is not None else None,
        extract_dir=str(extract_dir) if extract_dir is not None else None,
    )
    say(out, f"Extract (contract tables): {result.extract_dir}")
    say(out, f"Mapping coverage: {result.coverage_file} ({result.coverage_headline()})")
    for note in result.notes:
        say(out, f"  {note}")


@app.command()
@handle_errors
def validate(
    extract_dir: Annotated[
        Path | None, typer.Argument(help="Extract folder (default: data.extract_dir).", show_default=False)
    ] = None,
) -> None:
    """Run the Great Expectations gate alone; exit 0 when nothing critical failed."""
    from riskstrat.pipelines.validate import run_validate

    config = _config()
    report = run_validate(config, extract_dir or config.data.extract_dir)
    if report.critical_failures:
        raise typer.Exit(EXIT_USER_ERROR)


@app.command()
@handle_errors
def features(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="As-of date YYYY-MM-DD (default: the extract date).")
    ] = None,
    extract_dir: Annotated[Path | None, typer.Option("--extract", help="Extract folder.")] = None,
) -> None:
    """Validate the extract and build the point-in-time feature matrix at an as-of date."""
    when = _parse_date(as_of, "--as-of") if as_of else None
    config = _config()
    from riskstrat.pipelines.features import build_features_flow

    path = build_features_flow(
        config_dir=str(config.source_dir),
        extract_dir=str(extract_dir or config.data.extract_dir),
        as_of=when,
    )
    say(out, f"Feature matrix: {path}")


@app.command()
@handle_errors
def train(
    extract_dir: Annotated[Path | None, typer.Option("--extract", help="Extract folder.")] = None,
) -> None:
    """Retrain: validate, build training tables, train, calibrate, evaluate, register challengers."""
    from riskstrat.pipelines.retrain import retrain_flow

    config = _config()
    result = retrain_flow(
        config_dir=str(config.source_dir), extract_dir=str(extract_dir or config.data.extract_dir)
    )
    say(out, result.summary())


@app.command()
@handle_errors
def promote(
    outcome: Annotated[
        str | None,
        typer.Option("--outcome", help=f"{OUTCOME_CHOICES} (default: every outcome)."),
    ] = None,
) -> None:
    """Compare each challenger with its champion and move the champion alias only if the gates pass."""
    from riskstrat.pipelines.retrain import run_promotion

    config = _config()
    decisions = run_promotion(config, outcome)
    for decision in decisions:
        say(out, decision.summary())
    if not any(d.promoted for d in decisions):
        raise typer.Exit(EXIT_USER_ERROR)


@app.command()
@handle_errors
def worklists(
    week: Annotated[
        str | None, typer.Option("--week", help="Week commencing, YYYY-MM-DD (default: this week).")
    ] = None,
    extract_dir: Annotated[Path | None, typer.Option("--extract", help="Extract folder.")] = None,
) -> None:
    """Weekly run: validate, features as at the run date, score, select, explain, export."""
    week_date = _parse_date(week, "--week") if week else None
    config = _config()
    from riskstrat.pipelines.weekly import weekly_worklists_flow

    result = weekly_worklists_flow(
        config_dir=str(config.source_dir),
        extract_dir=str(extract_dir or config.data.extract_dir),
        week=week_date,
    )
    say(out, f"Worklists: {result}")


@app.command()
@handle_errors
def monitor(
    week: Annotated[
        str | None,
        typer.Option("--week", help="Week the page is filed under, YYYY-MM-DD (default: this week)."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Data date YYYY-MM-DD (default: the extract's data date).")
    ] = None,
    extract_dir: Annotated[Path | None, typer.Option("--extract", help="Extract folder.")] = None,
) -> None:
    """Monitoring on demand: feed health, drift, estimated and realised performance; no lists published.

    Exits non-zero on a critical alarm of a check that stops the weekly run (monitoring.stop_checks).
    """
    week_date = _parse_date(week, "--week") if week else None
    when = _parse_date(as_of, "--as-of") if as_of else None
    config = _config()
    from riskstrat.pipelines.monitor import monitoring_flow

    result = monitoring_flow(
        config_dir=str(config.source_dir),
        extract_dir=str(extract_dir or config.data.extract_dir),
        week=week_date,
        as_of=when,
    )
    say(out, result.summary())
    for alarm in result.alarms:
        say(out, f"  {alarm.level}: {alarm.message}")


@app.command()
@handle_errors
def audit(
    outcome: Annotated[str, typer.Option("--outcome", help=f"{OUTCOME_CHOICES}.")] = outcome_names()[0],
    alias: Annotated[
        str, typer.Option("--alias", help="Registry alias to audit: champion or challenger.")
    ] = "champion",
) -> None:
    """Fairness audit and governance report for a registered model."""
    from riskstrat.pipelines.audit import fairness_audit_flow

    config = _config()
    report = fairness_audit_flow(config_dir=str(config.source_dir), outcome=outcome, alias=alias)
    say(out, f"Governance report: {report}")


@app.command("evaluate-impact")
@handle_errors
def evaluate_impact(
    outcome: Annotated[str, typer.Option("--outcome", help=f"{OUTCOME_CHOICES}.")] = outcome_names()[0],
    extract_dir: Annotated[Path | None, typer.Option("--extract", help="Extract folder.")] = None,
) -> None:
    """Is the programme working? Estimate the effect of being listed at each MDT's capacity cut-off."""
    from riskstrat.pipelines.impact import impact_flow, summary_lines

    config = _config()
    payload = impact_flow(
        config_dir=str(config.source_dir),
        outcome=outcome,
        extract_dir=str(extract_dir or config.data.extract_dir),
    )
    for line in summary_lines(payload):
        say(out, line)
    say(out, f"Impact evaluation: {config.data.output_dir}/impact/impact_{outcome}.json")


@app.command()
@handle_errors
def demo(
    people: Annotated[
        int | None, typer.Option("--people", help="People to generate (default: synthetic.people).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default: synthetic.seed).")] = None,
) -> None:
    """Generate the synthetic population and run every stage end to end."""
    from riskstrat.pipelines.demo import demo_flow, demo_summary

    config = _config()
    result = demo_flow(config_dir=str(config.source_dir), people=people, seed=seed)
    say(out, demo_summary(config, result))


decisions_app = typer.Typer(
    help="The MDTs' decisions on their lists: import returned worklists.", no_args_is_help=True
)
app.add_typer(decisions_app, name="decisions")


@decisions_app.command("import")
@handle_errors
def import_decisions(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Returned worklists (XLSX) with the MDT decision column filled in.", show_default=False
        ),
    ],
) -> None:
    """Import returned worklists into the decision history: every file, or none if one is refused."""
    from riskstrat.pipelines.decisions import import_decisions_command

    config = _config()
    for imported in import_decisions_command(config, paths):
        say(out, imported.summary())


@app.command()
@handle_errors
def serve() -> None:
    """Register the deployments with their schedules and serve them (keeps running)."""
    from riskstrat.pipelines.deployments import serve_deployments

    serve_deployments(_config())


@app.command()
@handle_errors
def docs(
    folder: Annotated[Path, typer.Option("--out", help="Docs folder.")] = Path("docs"),
) -> None:
    """Regenerate the generated documentation (data contract, features, configuration)."""
    from riskstrat.pipelines.docs import write_generated_docs

    for path in write_generated_docs(folder):
        say(out, f"wrote {path}")


def _parse_date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RiskstratError(
            f"{option} {value!r} is not a date", hint="Use YYYY-MM-DD, e.g. 2026-11-23."
        ) from None


def run() -> None:
    """Entry point for ``python -m riskstrat.pipelines.cli``."""
    app()


if __name__ == "__main__":
    sys.exit(run())
