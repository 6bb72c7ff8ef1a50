"""Weeks to detection and false alarms of the weekly monitoring, on the generator's monitoring scenarios.

    python -m benchmarks.monitoring_scenarios [--people 250000] [--seed 42] [--root /tmp/riskstrat-monitoring]
        [--scenarios clean feed_stop coding_change new_residents] [--reuse] [--no-drift]

For each scenario (``ingest/synthetic/scenarios.py``; ``clean`` is the default generator)
a contract extract is written with the synthetic generator, then the weekly monitoring's
feed-health check (``riskstrat.evaluation.feed_health``) runs at every weekly data date:
each run counts only events dated on or before its data date (the extract holds later
events, which the counts must ignore). For ``new_residents`` the drift check
(``riskstrat.evaluation.drift``) also runs on the feature matrix at each weekly date
against the reference matrix at :data:`REFERENCE_DATE`, scored by a quick proxy model (a
small LightGBM fitted on an earlier year), whose gain gives the watched features.

Reported: for each scenario, the weekly runs from its start date to the first warning and
to the first critical alarm of the check that should see it; for the clean default, over
52 weekly runs through 2025, the runs with any alarm (95% Clopper-Pearson interval of the
per-run false-alarm rate) and the alarms per run. Results go to ``<root>/monitoring_scenarios.json``
and ``.md`` and are printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

START = date(2025, 9, 1)
"""The scenarios' start date (a Monday): the first week ending on or after it is run 1."""
REFERENCE_DATE = date(2025, 6, 1)
"""The drift reference's as-of date (features and proxy scores)."""
FIRST_DATA_DATE = date(2025, 6, 1)
"""The first weekly data date of the scenario runs (a Sunday)."""
CLEAN_FIRST_DATA_DATE = date(2025, 1, 5)
"""The first of the 52 weekly data dates of the clean default's simulated year."""
DRIFT_FIRST_DATA_DATE = date(2025, 7, 6)
"""The first of the 26 weekly data dates of the drift runs (each builds a feature matrix)."""
PROXY_AS_OF = date(2024, 6, 1)
"""As-of date of the proxy model's training rows (outcomes in the following year)."""

SCENARIOS: dict[str, dict[str, Any]] = {
    "clean": {},
    "feed_stop": {"feed_stop": {"enabled": True, "start_date": START}},
    "coding_change": {"coding_change": {"enabled": True, "start_date": START}},
    "coding_change_hypertension": {
        "coding_change": {"enabled": True, "start_date": START, "condition": "hypertension"}
    },
    "new_residents": {"new_residents": {"enabled": True, "start_date": START}},
}
"""Synthetic settings of each scenario (on top of the shipped defaults)."""

EXPECTED_CHECK: dict[str, tuple[str, str | None]] = {
    "feed_stop": ("feed", "gp_appointments"),
    "coding_change": ("feed", "gp_diagnoses.condition"),
    "coding_change_hypertension": ("feed", "gp_diagnoses.condition"),
    "new_residents": ("drift", None),
}
"""The check (and alarm subject, when one is expected) that should see each scenario."""


def scenario_settings(name: str, changes: dict[str, Any] | None = None) -> Any:
    """The synthetic settings of scenario ``name`` (the simulated deployment off: not needed here).

    Args:
        name: A key of :data:`SCENARIOS`.
        changes: Further settings, merged per scenario section (e.g. ``{"coding_change": {"share_lost": 1.0}}``).
    """
    from riskstrat.ingest.synthetic.settings import SyntheticSettings

    values: dict[str, Any] = {key: dict(value) for key, value in SCENARIOS[name].items()}
    for key, value in (changes or {}).items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    if "deployment" in SyntheticSettings.model_fields:
        values.setdefault("deployment", {})["enabled"] = False
    return SyntheticSettings.model_validate(values)


def generate(folder: Path, people: int, seed: int, settings: Any, reuse: bool = False) -> Path:
    """Write the scenario's contract extract under ``folder`` (reused when ``reuse`` and present).

    Returns:
        The extract folder.
    """
    from riskstrat.catalog import output_catalog
    from riskstrat.pipelines.generate import write_synthetic

    extract = output_catalog(folder).extract
    if reuse and (extract / "patients.parquet").is_file():
        return extract
    write_synthetic(folder, people, seed, settings, national=None)
    return extract


def open_extract(extract: Path) -> dict[str, Any]:
    """The extract's tables as DuckDB Ibis tables, loaded into memory once (the weekly runs query them often)."""
    import ibis

    from riskstrat.features.backends import read_extract
    from riskstrat.ingest.contract import CONTRACT

    con = ibis.duckdb.connect()
    names = tuple(name for name in CONTRACT if (extract / f"{name}.parquet").is_file())
    tables = read_extract(con, extract, names)
    return {name: con.create_table(f"m_{name}", table.to_pyarrow()) for name, table in tables.items()}


def weekly_dates(first: date, last: date) -> list[date]:
    """Every 7th day from ``first`` to ``last``."""
    days = (last - first).days // 7 + 1
    return [first + timedelta(days=7 * k) for k in range(max(days, 0))]


def as_of_extract(tables: dict[str, Any], data_date: date) -> dict[str, Any]:
    """The extract as it was on ``data_date``: no event after it; registrations and deaths after it unknown."""
    import ibis

    from riskstrat.ingest.contract import CONTRACT

    cut = {}
    for name, table in tables.items():
        column = CONTRACT[name].event_date
        if name == "patients":
            late_end = table.registration_end > data_date
            late_death = table.date_of_death > data_date
            cut[name] = table.filter(
                table.registration_start.isnull() | (table.registration_start <= data_date)
            ).mutate(
                registration_end=ibis.ifelse(late_end, ibis.null().cast("date"), table.registration_end),
                date_of_death=ibis.ifelse(late_death, ibis.null().cast("date"), table.date_of_death),
            )
        elif column is not None:
            day = table[column].date() if table[column].type().is_timestamp() else table[column]
            cut[name] = table.filter(day <= data_date)
        else:
            cut[name] = table
    return cut


@dataclass
class Run:
    """One weekly monitoring run: its data date, alarms and seconds taken."""

    data_date: date
    alarms: list[Any] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-able counts and the alarms' check, level, subject and message."""
        return {
            "data_date": self.data_date.isoformat(),
            "warning": sum(a.level == "warning" for a in self.alarms),
            "critical": sum(a.level == "critical" for a in self.alarms),
            "seconds": round(self.seconds, 2),
            "alarms": [
                {"check": a.check, "level": a.level, "subject": a.subject, "message": a.message}
                for a in self.alarms
            ],
        }


def feed_health_run(tables: dict[str, Any], data_date: date, settings: Any) -> Any:
    """The weekly feed-health check at ``data_date`` (H1's functions, as the weekly run calls them)."""
    from riskstrat.evaluation.feed_health import (
        feed_health,
        registered_by_practice,
        source_coverage,
        week_ends,
        weekly_event_counts,
    )

    weeks = settings.baseline_weeks + settings.recent_weeks
    counts = weekly_event_counts(tables, data_date, weeks, settings.code_groups, names=settings.tables)
    registered = registered_by_practice(tables, week_ends(data_date, weeks))
    coverage = source_coverage(tables, data_date, 7 * settings.baseline_weeks, names=settings.tables)
    return feed_health(counts, registered, coverage, data_date, settings)


def feed_health_runs(tables: dict[str, Any], dates: Iterable[date], settings: Any) -> list[Run]:
    """Feed health at each data date."""
    runs = []
    for day in dates:
        started = time.perf_counter()
        result = feed_health_run(tables, day, settings)
        runs.append(Run(day, list(result.alarms), time.perf_counter() - started))
    return runs


def _matches(alarm: Any, level: str, check: str, subject: str | None) -> bool:
    if alarm.check != check or (subject is not None and alarm.subject != subject):
        return False
    return level == "warning" or alarm.level == "critical"


def weeks_to_alarm(
    runs: Sequence[Run], start: date, level: str, check: str, subject: str | None = None
) -> int | None:
    """Weekly runs from ``start`` until the first alarm of ``check`` at ``level`` or worse (1 = the first run).

    Run 1 is the first run whose data date is on or after ``start``; None when none alarms.
    """
    after = [run for run in runs if run.data_date >= start]
    for index, run in enumerate(after, start=1):
        if any(_matches(alarm, level, check, subject) for alarm in run.alarms):
            return index
    return None


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a proportion."""
    from scipy import stats

    alpha = 1 - confidence
    low = stats.beta.ppf(alpha / 2, successes, trials - successes + 1) if successes > 0 else 0.0
    high = stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes) if successes < trials else 1.0
    return float(low), float(high)


def false_alarms(runs: Sequence[Run]) -> dict[str, Any]:
    """Runs with any alarm, per-run rate with its 95% interval, and alarms per run (clean default)."""
    n = len(runs)
    with_any = sum(bool(run.alarms) for run in runs)
    with_critical = sum(any(a.level == "critical" for a in run.alarms) for run in runs)
    low, high = clopper_pearson(with_any, n)
    c_low, c_high = clopper_pearson(with_critical, n)
    return {
        "runs": n,
        "runs_with_alarm": with_any,
        "rate": with_any / n if n else float("nan"),
        "rate_low": low,
        "rate_high": high,
        "runs_with_critical": with_critical,
        "critical_rate_low": c_low,
        "critical_rate_high": c_high,
        "alarms_per_run": sum(len(run.alarms) for run in runs) / n if n else float("nan"),
        "by_check": pd.Series([a.check for run in runs for a in run.alarms], dtype=object)
        .value_counts()
        .to_dict(),
    }


# -- drift (new residents) -------------------------------------------------------------------------
def feature_matrix(extract: Path, as_of: date, cache: Path, outcomes: bool = False) -> pd.DataFrame:
    """The feature matrix of ``extract`` at ``as_of`` (cached as Parquet under ``cache``)."""
    from riskstrat.features.backends import connect, read_extract
    from riskstrat.features.matrix import build_feature_table
    from riskstrat.features.settings import FeatureSettings, OutcomeSettings

    path = cache / f"features_{as_of.isoformat()}{'_outcomes' if outcomes else ''}.parquet"
    if path.is_file():
        return pd.read_parquet(path)
    settings = FeatureSettings()
    tables = read_extract(connect(settings), extract)
    outcome_settings = OutcomeSettings() if outcomes else None
    table = build_feature_table(tables, as_of, settings, outcome_settings, None)
    cache.mkdir(parents=True, exist_ok=True)
    frame = table.to_pandas()
    frame.to_parquet(path)
    return frame


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The model-input columns of a feature matrix (the dictionary's features present in it)."""
    from riskstrat.features.dictionary import feature_dictionary
    from riskstrat.features.settings import FeatureSettings

    return [name for name in feature_dictionary(FeatureSettings()) if name in frame.columns]


@dataclass
class Proxy:
    """A quick stand-in for the champion: a small LightGBM for one outcome, and its gain per feature."""

    outcome: str
    features: list[str]
    model: Any
    importance: dict[str, float]

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted probabilities for the rows of ``frame``."""
        return self.model.predict_proba(frame[self.features].astype(float))[:, 1]


def fit_proxy(training: pd.DataFrame, outcome: str = "emergency_admission", seed: int = 0) -> Proxy:
    """Fit the proxy on a training matrix with outcome columns."""
    import lightgbm

    features = feature_columns(training)
    target = training[outcome].astype(int)
    model = lightgbm.LGBMClassifier(
        n_estimators=150,
        learning_rate=0.05,
        num_leaves=31,
        min_child_samples=50,
        random_state=seed,
        verbose=-1,
    )
    model.fit(training[features].astype(float), target)
    gain = model.booster_.feature_importance(importance_type="gain")
    return Proxy(outcome, features, model, {name: float(g) for name, g in zip(features, gain, strict=True)})


def drift_runs(
    extract: Path, dates: Sequence[date], cache: Path, proxy: Proxy, settings: Any
) -> tuple[list[Run], pd.DataFrame]:
    """Drift of scores and the proxy's top features at each date against :data:`REFERENCE_DATE`.

    Returns:
        The runs (drift alarms) and the PSI table of every run (data_date, kind, name, psi, level).
    """
    from riskstrat.evaluation.drift import drift, drift_reference

    reference = feature_matrix(extract, REFERENCE_DATE, cache)
    ref = drift_reference(
        {proxy.outcome: proxy.scores(reference)}, reference, {proxy.outcome: proxy.importance}, settings
    )
    runs, tables = [], []
    for day in dates:
        started = time.perf_counter()
        current = feature_matrix(extract, day, cache)
        result = drift(ref, {proxy.outcome: proxy.scores(current)}, current, settings)
        runs.append(Run(day, list(result.alarms), time.perf_counter() - started))
        tables.append(result.table.assign(data_date=day))
    return runs, pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


# -- the benchmark ---------------------------------------------------------------------------------
def scenario_result(name: str, runs: Sequence[Run], check: str, subject: str | None) -> dict[str, Any]:
    """Weeks to the first warning and critical alarm of ``check`` after :data:`START`, and false alarms before it."""
    before = [run for run in runs if run.data_date < START]
    return {
        "scenario": name,
        "check": check,
        "subject": subject,
        "weeks_to_warning": weeks_to_alarm(runs, START, "warning", check, subject),
        "weeks_to_critical": weeks_to_alarm(runs, START, "critical", check, subject),
        "runs_before_start_with_alarm": sum(bool(run.alarms) for run in before),
        "runs_before_start": len(before),
        "first_alarm": next(
            (
                {"data_date": run.data_date.isoformat(), "message": alarm.message, "level": alarm.level}
                for run in runs
                if run.data_date >= START
                for alarm in run.alarms
                if _matches(alarm, "warning", check, subject)
            ),
            None,
        ),
    }


def run_benchmark(
    root: Path,
    people: int,
    seed: int,
    scenarios: Sequence[str],
    reuse: bool = False,
    with_drift: bool = True,
) -> dict[str, Any]:
    """Generate each scenario's extract and run the weekly checks over it (see the module docstring)."""
    from riskstrat.evaluation.monitoring_settings import MonitoringSettings
    from riskstrat.ingest.synthetic.settings import SyntheticSettings

    settings = MonitoringSettings()
    extract_date = SyntheticSettings().extract_date
    results: dict[str, Any] = {
        "people": people,
        "seed": seed,
        "start_date": START.isoformat(),
        "scenarios": {},
    }
    for name in scenarios:
        started = time.perf_counter()
        extract = generate(root / name, people, seed, scenario_settings(name), reuse=reuse)
        generated = time.perf_counter() - started
        tables = open_extract(extract)
        first = CLEAN_FIRST_DATA_DATE if name == "clean" else FIRST_DATA_DATE
        runs = feed_health_runs(tables, weekly_dates(first, extract_date), settings.feed_health)
        entry: dict[str, Any] = {
            "generation_seconds": round(generated, 1),
            "feed_health_seconds_per_run": round(float(np.mean([r.seconds for r in runs])), 2),
            "feed_health_runs": [run.summary() for run in runs],
        }
        if name == "clean":
            entry["false_alarms"] = false_alarms(runs)
        else:
            check, subject = EXPECTED_CHECK[name]
            if check == "feed":
                entry["detection"] = scenario_result(name, runs, check, subject)
            entry["feed_detection"] = scenario_result(name, runs, "feed", None)
        if with_drift and name in ("new_residents", "clean"):
            cache = root / name / "feature_cache"
            training = feature_matrix(extract, PROXY_AS_OF, cache, outcomes=True)
            proxy = fit_proxy(training)
            drift_dates = weekly_dates(DRIFT_FIRST_DATA_DATE, extract_date)
            d_runs, psi = drift_runs(extract, drift_dates, cache, proxy, settings.drift)
            entry["drift_runs"] = [run.summary() for run in d_runs]
            entry["drift_psi"] = (
                psi.assign(data_date=psi["data_date"].astype(str)).to_dict(orient="records")
                if len(psi)
                else []
            )
            if name == "new_residents":
                entry["detection"] = scenario_result(name, d_runs, "drift", None)
            else:
                entry["drift_false_alarms"] = false_alarms(d_runs)
        results["scenarios"][name] = entry
        print(f"{name}: done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return results


def markdown(results: dict[str, Any]) -> str:
    """The results as a short Markdown report."""
    lines = [
        f"# Monitoring scenarios ({results['people']:,} people, seed {results['seed']}, "
        f"start {results['start_date']})",
        "",
        "| scenario | check | weekly runs to first warning | to first critical | first alarm |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, entry in results["scenarios"].items():
        found = entry.get("detection")
        if found is None:
            continue
        first = found["first_alarm"]["message"] if found["first_alarm"] else "none"
        lines.append(
            f"| {name} | {found['check']} {found['subject'] or ''} | {found['weeks_to_warning']} | "
            f"{found['weeks_to_critical']} | {first} |"
        )
    clean = results["scenarios"].get("clean")
    if clean is not None:
        fa = clean["false_alarms"]
        lines += [
            "",
            f"Clean default, feed health: {fa['runs_with_alarm']} of {fa['runs']} weekly runs raised an alarm "
            f"(per-run rate {fa['rate']:.3f}, 95% CI {fa['rate_low']:.3f}-{fa['rate_high']:.3f}); "
            f"{fa['alarms_per_run']:.2f} alarms per run; with a critical alarm: {fa['runs_with_critical']} "
            f"(95% CI {fa['critical_rate_low']:.3f}-{fa['critical_rate_high']:.3f}). "
            f"Seconds per run: {clean['feed_health_seconds_per_run']}.",
        ]
        if "drift_false_alarms" in clean:
            dfa = clean["drift_false_alarms"]
            lines.append(
                f"Clean default, drift: {dfa['runs_with_alarm']} of {dfa['runs']} weekly runs with an alarm "
                f"(95% CI {dfa['rate_low']:.3f}-{dfa['rate_high']:.3f})."
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios, print and write the results."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=250_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--root", type=Path, default=Path("/tmp/riskstrat-monitoring"))
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--reuse", action="store_true", help="Reuse extracts already written under --root.")
    parser.add_argument("--no-drift", action="store_true", help="Skip the drift runs (feature builds).")
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    results = run_benchmark(args.root, args.people, args.seed, args.scenarios, args.reuse, not args.no_drift)
    (args.root / "monitoring_scenarios.json").write_text(json.dumps(results, indent=1, default=str))
    report = markdown(results)
    (args.root / "monitoring_scenarios.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
