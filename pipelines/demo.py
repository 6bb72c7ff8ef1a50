"""The ``demo`` flow: generate the synthetic population and run every stage on it.

The population is written as raw national files (``synthetic.write_national``,
default true) and read back through the source adapters (``read-national-extracts``),
so every code mapping runs on every demo. Then validate, retrain (with the
fairness audit), then two consecutive weekly runs, so the second week's lists show
what changed since the first.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from riskstrat.pipelines.config import Config, check_worklist_files
from riskstrat.pipelines.environment import prefect_home
from riskstrat.pipelines.generate import write_synthetic
from riskstrat.pipelines.retrain import RetrainResult, retrain_flow
from riskstrat.pipelines.shared import holds_output_lock, load_run_config, this_monday, tracking_uri
from riskstrat.pipelines.sources import AdaptResult, adapt_flow
from riskstrat.pipelines.validate import validate_flow
from riskstrat.pipelines.weekly import weekly_worklists_flow


@dataclass
class DemoResult:
    """Where the demo put everything."""

    extract_dir: str
    data_docs: str
    retrain: RetrainResult
    worklists: list[str]
    adapted: AdaptResult | None = None
    """The adapters' run (raw folder, coverage) when the demo started from raw national files."""


def demo_weeks(extract_date: date) -> list[tuple[date, date]]:
    """Two consecutive weekly runs ending at the extract date: (week, data date) pairs."""
    last_week = this_monday(extract_date + timedelta(days=7))
    return [(last_week - timedelta(days=7), extract_date - timedelta(days=7)), (last_week, extract_date)]


@flow(name="demo", flow_run_name=lambda: f"demo-{date.today().isoformat()}", validate_parameters=False)
@holds_output_lock("demo")
def demo_flow(
    config_dir: str | None = None, people: int | None = None, seed: int | None = None
) -> DemoResult:
    """Generate the synthetic population (raw national files), adapt, then validate, retrain, audit, two weekly runs."""
    config = load_run_config(config_dir)
    paths = task(name="generate-synthetic-population", cache_policy=NO_CACHE)(write_synthetic)(
        Path(config.data.output_dir),
        people or config.synthetic.people,
        seed if seed is not None else config.synthetic.seed,
        config.synthetic,
        national=config.sources if config.synthetic.write_national else None,
    )
    check_worklist_files(config)  # the weekly step's files, checked now the practices file is written
    extract = str(paths.extract_dir)
    adapted = None
    if paths.raw_dir is not None:  # from the raw national files, through the adapters
        adapted = adapt_flow(config_dir, str(paths.raw_dir), extract)
    summary = validate_flow(config_dir, extract)
    retrained = retrain_flow(config_dir, extract)
    folders = [
        weekly_worklists_flow(config_dir, extract, week=week, as_of=when)
        for week, when in demo_weeks(config.synthetic.extract_date)
    ]
    return DemoResult(extract, summary["data_docs"], retrained, folders, adapted)


def _installed(command: str) -> str:
    """The command as installed beside this Python (a checkout's .venv, or a wheel's virtualenv)."""
    beside = Path(sys.executable).parent / command
    return str(beside) if beside.is_file() else command


def demo_summary(config: Config, result: DemoResult) -> str:
    """The lines ``make demo`` ends with: where everything is, and how to open the UIs."""
    lines = ["", "riskstrat demo finished.", "", result.retrain.summary(), ""]
    lines += [
        f"Worklists (this week):    {result.worklists[-1]}",
        f"Governance reports:       {', '.join(result.retrain.reports.values())}",
        f"Data Docs:                {result.data_docs}",
        f"Synthetic extract:        {result.extract_dir}",
    ]
    if result.adapted is not None:
        lines += [
            f"Raw national files:       {result.adapted.raw_dir}",
            f"Mapping coverage:         {result.adapted.coverage_file} ({result.adapted.coverage_headline()})",
        ]
    lines += [
        "",
        f"Open the MLflow UI:   {_installed('mlflow')} ui --backend-store-uri {tracking_uri(config)} --port 5000",
        f"Open the Prefect UI:  PREFECT_HOME={prefect_home()} {_installed('prefect')} server start",
        f"(outputs are under {Path(config.data.output_dir).resolve()})",
    ]
    return "\n".join(lines)
