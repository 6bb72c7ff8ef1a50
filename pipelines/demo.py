"""The ``demo`` flow: generate the synthetic population and run every stage on it.

The population is written as raw national files (``synthetic.write_national``,
default true) and read back through the source adapters (``read-national-extracts``),
so every code mapping runs on every demo. Then validate, retrain (with the
fairness audit), then two consecutive weekly runs, so the second week's lists show
what changed since the first. Between the two, the MDTs' decisions on the first
week's lists come back (:func:`simulate_returned_decisions`: a seeded, plausible
mix of coded decisions put in the returns folder), so the second week shows the
loop: people rested or moved to a caseload, their places filled by the next
people, and each row's last decision. Last, the monthly audit runs on the champion
of each outcome that ranked those lists, so its governance report shows the board
what the MDTs did with them (in production the board sees decisions at the next
monthly audit or retrain).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from openpyxl import load_workbook
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from riskstrat.catalog import output_catalog
from riskstrat.pipelines.audit import fairness_audit_flow
from riskstrat.pipelines.config import Config, check_worklist_files
from riskstrat.pipelines.decisions import mdt_outcomes
from riskstrat.pipelines.environment import prefect_home
from riskstrat.pipelines.generate import write_synthetic
from riskstrat.pipelines.retrain import RetrainResult, retrain_flow
from riskstrat.pipelines.shared import holds_output_lock, load_run_config, this_monday, tracking_uri
from riskstrat.pipelines.sources import AdaptResult, adapt_flow
from riskstrat.pipelines.validate import validate_flow
from riskstrat.pipelines.weekly import weekly_worklists_flow
from riskstrat.worklists.decisions import DECISIONS, STAMP_SHEET, read_stamp, record_on_list

DEMO_DECISION_MIX: dict[str, float] = {
    "added_to_caseload": 0.20,
    "already_known": 0.20,
    "not_appropriate": 0.15,
    "declined": 0.10,
    "could_not_contact": 0.10,
    "not_discussed": 0.10,
}
"""Chance of each decision on a listed row in the demo's returned lists (the rest, 15%, left blank)."""


@dataclass
class DemoResult:
    """Where the demo put everything."""

    extract_dir: str
    data_docs: str
    retrain: RetrainResult
    worklists: list[str]
    adapted: AdaptResult | None = None
    """The adapters' run (raw folder, coverage) when the demo started from raw national files."""
    decisions: dict[str, int] = field(default_factory=dict)
    """Decisions returned on the first week's lists, by code (counts only)."""
    board_reports: dict[str, str] = field(default_factory=dict)
    """Outcome -> the governance report written after the second week, with the MDTs' decisions."""


def demo_weeks(extract_date: date) -> list[tuple[date, date]]:
    """Two consecutive weekly runs ending at the extract date: (week, data date) pairs."""
    last_week = this_monday(extract_date + timedelta(days=7))
    return [(last_week - timedelta(days=7), extract_date - timedelta(days=7)), (last_week, extract_date)]


@flow(name="demo", flow_run_name=lambda: f"demo-{date.today().isoformat()}", validate_parameters=False)
@holds_output_lock("demo")
def demo_flow(
    config_dir: str | None = None, people: int | None = None, seed: int | None = None
) -> DemoResult:
    """Generate the synthetic population (raw national files), adapt, validate, retrain, audit, two weekly runs, audit."""
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
    (first, first_date), (second, second_date) = demo_weeks(config.synthetic.extract_date)
    folders = [weekly_worklists_flow(config_dir, extract, week=first, as_of=first_date)]
    decided = task(name="simulate-returned-decisions", cache_policy=NO_CACHE)(simulate_returned_decisions)(
        Path(folders[0]),
        Path(config.mdts.decisions.returns_dir),
        seed if seed is not None else config.synthetic.seed,
    )
    folders.append(weekly_worklists_flow(config_dir, extract, week=second, as_of=second_date))
    # The board's step: the monthly audit of each champion whose lists came back decided.
    ranked = (
        sorted(set(mdt_outcomes(Path(config.data.output_dir), first).values()))
        if any(decided.values())
        else []
    )
    board = {outcome: fairness_audit_flow(config_dir, outcome, extract_dir=extract) for outcome in ranked}
    return DemoResult(extract, summary["data_docs"], retrained, folders, adapted, decided, board)


def simulate_returned_decisions(week_folder: Path, returns_dir: Path, seed: int) -> dict[str, int]:
    """Fill in every list of a published week with a seeded mix of decisions and put them in the returns folder.

    Each listed row gets a decision drawn from :data:`DEMO_DECISION_MIX` (or stays blank),
    as an MDT would record them; the weekly run imports the files before the next lists.

    Args:
        week_folder: The published week whose lists come back.
        returns_dir: The returns folder (``decisions.returns_dir``).
        seed: Random seed: the same seed gives the same decisions.

    Returns:
        Decisions recorded, by code (counts only).
    """
    rng = np.random.default_rng(seed)
    codes = [*DEMO_DECISION_MIX, ""]
    chances = [*DEMO_DECISION_MIX.values(), 1 - sum(DEMO_DECISION_MIX.values())]
    returns_dir.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    for path in sorted(week_folder.glob("*.xlsx")):
        book = load_workbook(path)
        if STAMP_SHEET not in book.sheetnames:
            continue
        people = read_stamp(book, path.name).people["person_id"]
        drawn = rng.choice(codes, size=len(people), p=chances)
        decided = {person: code for person, code in zip(people, drawn, strict=True) if code}
        record_on_list(book, decided)
        book.save(returns_dir / path.name)
        counts.update(decided.values())
    return {code: counts.get(code, 0) for code in DECISIONS}


def _installed(command: str) -> str:
    """The command as installed beside this Python (a checkout's .venv, or a wheel's virtualenv)."""
    beside = Path(sys.executable).parent / command
    return str(beside) if beside.is_file() else command


def _monitoring_line(config: Config, result: DemoResult) -> list[str]:
    """The week's monitoring page, when the weekly run wrote one."""
    try:
        week = date.fromisoformat(Path(result.worklists[-1]).name)
    except (IndexError, ValueError):
        return []
    page = output_catalog(config.data.output_dir).monitoring_page(week)
    return [f"Monitoring page:          {page}"] if page.is_file() else []


def demo_summary(config: Config, result: DemoResult) -> str:
    """The lines ``make demo`` ends with: where everything is, and how to open the UIs."""
    lines = ["", "riskstrat demo finished.", "", result.retrain.summary(), ""]
    lines += [
        f"Worklists (this week):    {result.worklists[-1]}",
        f"Decisions returned:       {sum(result.decisions.values()):,} on last week's lists "
        f"({', '.join(f'{n} {DECISIONS[c].lower()}' for c, n in result.decisions.items() if n)})",
        f"Governance reports:       {', '.join(result.retrain.reports.values())}",
        *_monitoring_line(config, result),
        f"Data Docs:                {result.data_docs}",
        f"Synthetic extract:        {result.extract_dir}",
    ]
    if result.board_reports:  # the same reports, written again by the monthly audit after week 2
        lines.append(
            f"Board step:               {', '.join(result.board_reports)} audited again after week 2: "
            "its report shows what the MDTs did with the lists"
        )
    impact = output_catalog(config.data.output_dir).impact_file("emergency_admission")
    if impact.is_file():  # written by the monthly audit's impact evaluation (riskstrat evaluate-impact)
        lines.append(
            f"Is it working?:           {json.loads(impact.read_text(encoding='utf-8'))['summary']} ({impact})"
        )
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
