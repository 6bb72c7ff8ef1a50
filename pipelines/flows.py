"""The Prefect flows users run: validate, build_features, retrain, weekly_worklists, fairness_audit, demo.

Each flow takes plain parameters (a config folder, an extract folder, dates) so
it can be deployed and started from the Prefect UI. Stage logic lives in the
stage packages; this module only reads, writes and wires.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from riskstrat.config import Config, check_worklist_files, load_config
from riskstrat.errors import RiskstratError
from riskstrat.io import output_lock
from riskstrat.pipelines.environment import configure_environment
from riskstrat.pipelines.logs import run_logger

CHAMPION = "champion"
CHALLENGER = "challenger"
FAIRNESS_FLAGS_TAG = "fairness_open_flags"


def _is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only I/O hiccups (a locked or briefly missing file), never bad data or settings."""
    try:
        state.result()
    except RiskstratError:
        return False
    except (OSError, TimeoutError):
        return True
    except Exception:
        return False
    return False


IO_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": 3,
    "retry_condition_fn": _is_transient,
    "cache_policy": NO_CACHE,
}


def load_run_config(config_dir: str | None) -> Config:
    """Load and validate the settings, check the output folder and set the offline environment for the run."""
    from riskstrat.pipelines.logs import install_log_redaction

    config = load_config(Path(config_dir) if config_dir else None)
    configure_environment(config.data.output_dir)
    install_log_redaction()  # no user error's traceback (which may quote data) reaches Prefect
    return config


# ----------------------------------------------------------------------------- output-folder lock


def holds_output_lock(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the decorated flow or command holding the lock of its ``data.output_dir``.

    Every flow that writes under the outputs folder is decorated, so the CLI,
    the demo (which re-enters the lock for the flows it runs) and the Prefect
    deployments all pass through it. A second run of the same folder waits up
    to ``data.lock_timeout_seconds``, saying who holds the lock, then refuses
    (:func:`riskstrat.io.output_lock`); on taking the lock, a cut-short swap is
    put back and a killed run's temporary files are removed. The settings are
    taken from the ``config`` argument, else loaded from ``config_dir``.
    """

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def locked(*args: Any, **kwargs: Any) -> Any:
            arguments = signature.bind(*args, **kwargs).arguments
            config = arguments.get("config")
            if config is None:
                config = load_run_config(arguments.get("config_dir"))
            with output_lock(
                config.data.output_dir,
                command,
                config.data.lock_timeout_seconds,
                notify=run_logger(__name__).warning,
            ):
                return function(*args, **kwargs)

        locked.output_lock_command = command  # type: ignore[attr-defined]  # tests check every writer has it
        return locked

    return decorate


def this_monday(today: date | None = None) -> date:
    """Monday of the week containing ``today``."""
    today = today or date.today()
    return today - timedelta(days=today.weekday())


def tracking_uri(config: Config) -> str:
    """The MLflow tracking URI of this configuration."""
    return config.model.mlflow.resolved_tracking_uri(config.data.output_dir)


# ----------------------------------------------------------------------------- tasks


LISTED_CONTEXT_TABLES: tuple[str, ...] = ("apc_spells", "ae_attendances", "community_contacts")
"""Event tables the worklist rows read for listed people only: last emergency admission
and A&E dates, and the community services seen in the last 90 days."""

WEEKLY_TABLES: tuple[str, ...] = ("patients", "caseload", "opt_outs", *LISTED_CONTEXT_TABLES)
"""Typed tables the weekly run takes from the gate (status, exclusions, listed people's context).

The large primary-care tables are validated and released one at a time, which
keeps the weekly run's peak memory down; features read the files directly.
"""


@task(name="validation-gate", **IO_RETRIES)
def gate(config: Config, extract_dir: Path, keep_tables: tuple[str, ...] = ()):
    """The Great Expectations gate; raises on any critical failure (nothing downstream runs)."""
    from riskstrat.errors import ContractError
    from riskstrat.pipelines.validate import validation_dir, validation_gate

    try:
        return validation_gate.fn(
            extract_dir, config.data.output_dir, config.validation, config.data.extract_date, keep_tables
        )
    except ContractError as exc:
        # Logs and Prefect get the error without examples; it names where they are.
        exc.report = validation_dir(config.data.output_dir) / "latest.json"
        raise


@task(name="latest-event-date", **IO_RETRIES)
def data_date(config: Config, extract_dir: Path) -> date:
    """The as-of date of a weekly run: ``data.extract_date``, else the latest event date in the extract."""
    if config.data.extract_date:
        return config.data.extract_date
    from riskstrat.features.backends import connect, read_extract
    from riskstrat.ingest.contract import CONTRACT, EVENT_TABLES

    dated = tuple(name for name in EVENT_TABLES if CONTRACT[name].event_date)
    tables = read_extract(connect(config.features), Path(extract_dir), dated)
    found = [tables[name][CONTRACT[name].event_date].max().execute() for name in dated]
    latest = [pd.Timestamp(value) for value in found if value is not None and not pd.isna(value)]
    if not latest:
        raise RiskstratError(
            f"no dated events in {extract_dir}", hint="Set data.extract_date in configs/data.yaml."
        )
    return min(max(latest).date(), date.today())


@task(name="build-features", **IO_RETRIES)
def features_at(
    config: Config, extract_dir: Path, as_of: date, with_outcomes: bool, snapshot_hash: str | None = None
) -> Path:
    """Build (or reuse the cached) feature matrix at ``as_of``; with outcomes for training tables.

    ``snapshot_hash``: the extract's hash from the validation gate's report, so the
    folder is not hashed twice in one run (default: hashed here).
    """
    from riskstrat.pipelines.features import build_feature_file

    return build_feature_file(
        extract_dir,
        config.data.output_dir,
        as_of,
        config.features,
        config.outcomes if with_outcomes else None,
        config.data.extract_date,
        snapshot_hash,
    )


@task(name="realised-need", **IO_RETRIES)
def need_at(config: Config, extract_dir: Path, as_of: date, person_ids: pd.Series) -> pd.DataFrame:
    """Emergency admissions, bed days and caseload exposure in the outcome window (evaluation only)."""
    import ibis

    from riskstrat.features.backends import connect, read_extract
    from riskstrat.features.need import realised_need

    con = connect(config.features)
    tables = read_extract(con, extract_dir, ("apc_spells", "caseload"))
    people = ibis.memtable(pd.DataFrame({"person_id": person_ids.astype(str).unique()}))
    frame = realised_need(people, tables, as_of, config.outcomes).to_pandas()
    frame["as_of"] = pd.Timestamp(as_of).date()
    return frame


@task(name="read-truth", **IO_RETRIES)
def read_truth(config: Config) -> pd.DataFrame | None:
    """Synthetic ground truth for the oracle baseline, or None on real data."""
    truth_dir = config.data.truth_dir
    if truth_dir is None or not (Path(truth_dir) / "risk.parquet").is_file():
        return None
    truth = pd.read_parquet(Path(truth_dir) / "risk.parquet")
    truth["as_of"] = pd.to_datetime(truth["as_of"]).dt.date
    return truth


def read_feature_matrix(path: Path) -> pd.DataFrame:
    """A stored feature matrix with ``as_of`` as dates (Parquet keeps them as timestamps)."""
    frame = pd.read_parquet(path)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    return frame


# ----------------------------------------------------------------------------- validate


def _validate_name() -> str:
    extract = flow_run.parameters.get("extract_dir") or "default-extract"
    return f"validate-{Path(str(extract)).name}"


@flow(name="validate", flow_run_name=_validate_name, validate_parameters=False)
@holds_output_lock("validate")
def validate_flow(config_dir: str | None = None, extract_dir: str | None = None) -> dict[str, Any]:
    """Run the Great Expectations gate on an extract; fails on any critical check.

    Returns:
        A summary: snapshot hash, checks, warnings and the Data Docs path.
    """
    config = load_run_config(config_dir)
    report = gate(config, Path(extract_dir or config.data.extract_dir))
    return {
        "snapshot": report.snapshot_hash,
        "checks": len(report.results),
        "warnings": [w.expected for w in report.warnings],
        "data_docs": str(report.data_docs_index),
    }


@holds_output_lock("validate")
def run_validate(config: Config, extract_dir: Path):
    """The ``riskstrat validate`` command: the gate alone, with a summary table, never raising on bad data."""
    from riskstrat.pipelines.terminal import make_console, say
    from riskstrat.pipelines.validate import run_validation, summary_table

    report = run_validation(
        extract_dir,
        config.data.output_dir,
        config.validation,
        config.data.extract_date,
        keep_tables=False,
        record_baseline=False,  # a check alone: only pipeline runs move the row-count baseline
    )
    console = make_console()
    console.print(summary_table(report))
    say(console, f"Data Docs: {report.data_docs_index}")
    return report


# ----------------------------------------------------------------------------- features


def _features_name() -> str:
    as_of = flow_run.parameters.get("as_of") or "latest"
    return f"build-features-{as_of}"


@flow(name="build_features", flow_run_name=_features_name, validate_parameters=False)
@holds_output_lock("features")
def build_features_flow(
    config_dir: str | None = None, extract_dir: str | None = None, as_of: date | None = None
) -> Path:
    """Validate the extract, then build (or reuse) the feature matrix at ``as_of`` (default: the data date)."""
    config = load_run_config(config_dir)
    extract = Path(extract_dir or config.data.extract_dir)
    report = gate(config, extract)
    when = as_of or data_date(config, extract)
    return features_at(config, extract, when, with_outcomes=False, snapshot_hash=report.snapshot_hash)


# ----------------------------------------------------------------------------- retrain


@dataclass
class RetrainResult:
    """What a retrain produced, per outcome (aggregates only)."""

    decisions: dict[str, Any] = field(default_factory=dict)
    registrations: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    open_flags: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """Plain-text summary for the command line."""
        lines = []
        for outcome, decision in self.decisions.items():
            m = self.metrics.get(outcome, {})
            lines.append(
                f"{outcome}: AUROC {m.get('auroc', float('nan')):.3f} "
                f"(95% CI {m.get('auroc_ci_low', float('nan')):.3f}-{m.get('auroc_ci_high', float('nan')):.3f}), "
                f"calibration slope {m.get('calibration_slope', float('nan')):.2f}; report {self.reports.get(outcome)}"
            )
            lines.append(decision.summary())
        return "\n".join(lines)


@task(name="training-table", **IO_RETRIES)
def training_table(config: Config, extract_dir: Path, snapshot_hash: str | None = None) -> pd.DataFrame:
    """Features and outcomes stacked over the training, validation and test as-of dates, with need columns.

    ``snapshot_hash``: the gate's hash of the extract (default: hashed by each feature build).
    """
    from riskstrat.features.matrix import stack_matrices

    as_of = config.model.as_of
    dates = sorted({*as_of.train, as_of.validation, as_of.test})
    frames = []
    for when in dates:
        matrix = read_feature_matrix(
            features_at.fn(config, extract_dir, when, with_outcomes=True, snapshot_hash=snapshot_hash)
        )
        need = need_at.fn(config, extract_dir, when, matrix["person_id"])
        frames.append(matrix.merge(need, on=["person_id", "as_of"], how="left", validate="one_to_one"))
    return stack_matrices(frames)


def _model_info(
    config: Config,
    outcome: str,
    registration: Any,
    model: Any,
    test_metrics: pd.DataFrame,
    table: pd.DataFrame,
) -> Any:
    from riskstrat.evaluation.disclosure import count
    from riskstrat.evaluation.report import ModelInfo
    from riskstrat.models.promotion import calibration_checks

    metrics = test_metrics.query("model == 'lightgbm'").set_index("metric")["value"].to_dict()
    as_of = config.model.as_of
    outcome_definition = {
        "emergency_admission": (
            f"An emergency admission (ADMIMETH 21-2D, 28) within "
            f"{config.outcomes.emergency_admission.horizon_days} days after the as-of date"
            + (
                ", or death in that window"
                if config.outcomes.emergency_admission.death_counts_as_event
                else ""
            )
        ),
        "frequent_attendance": (
            f"{config.outcomes.frequent_attendance.min_attendances} or more A&E attendances within "
            f"{config.outcomes.frequent_attendance.horizon_days} days after the as-of date"
        ),
    }[outcome]
    return ModelInfo(
        outcome=outcome,
        model_name=registration.model_name,
        model_version=registration.version,
        training_data=(
            f"{count(table['person_id'].nunique()):,} people, {count(len(table)):,} person-time rows at as-of dates "
            f"{', '.join(str(d) for d in sorted(set(table['as_of'])))}; trained on {', '.join(map(str, as_of.train))}, "
            f"calibrated on {as_of.validation}, tested on {as_of.test}"
        ),
        outcome_definition=outcome_definition,
        metrics={k: float(v) for k, v in metrics.items()},
        run_id=registration.run_id,
        test_as_of=str(as_of.test),
        predictors=tuple(model.feature_names),
        calibration_method=f"{model.calibrator.method} on the validation as-of date ({as_of.validation})",
        missing_data="Missing event history means no events; LightGBM handles missing numeric values natively.",
        synthetic=config.data.truth_dir is not None and Path(config.data.truth_dir).is_dir(),
        promotion_checks=tuple(calibration_checks(test_metrics, config.model.promotion)[1]),
    )


def audit_inputs(
    config: Config, test: pd.DataFrame, probabilities: Any, outcome: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test-row predictions and simulated list selections for the fairness audit.

    The lists are simulated on the test rows at each MDT's own capacity from
    ``configs/mdts.yaml``, so the board sees who lists of the size in use select and
    how their outcomes turned out. The test rows are the test persons (``split.test``
    of everyone), so an MDT with ``capacity_people`` C and n test rows lists the share
    C / (n / split.test); one with ``capacity_share`` lists that share. People outside
    every MDT are never listed. Without MDTs (no practices file) every row is one list
    at ``model.evaluation.capacity_share``.
    """
    from riskstrat.evaluation.fairness import simulate_selection
    from riskstrat.worklists.settings import read_practices, resolve_mdts

    predictions = test.copy()
    predictions["y"] = predictions[outcome].astype(int)
    predictions["p"] = probabilities
    practices_file = config.mdts.practices_file
    mdts = []
    if practices_file and Path(practices_file).is_file():
        mdts = resolve_mdts(config.mdts, read_practices(Path(practices_file)))
    if not mdts:
        predictions["mdt"] = "All"
        return predictions, simulate_selection(predictions, config.model.evaluation.capacity_share)
    mdt_of_practice: dict[str, str] = {}
    for mdt in mdts:
        mdt_of_practice.update(dict.fromkeys(mdt.practices, mdt.name))
    predictions["mdt"] = predictions["practice_code"].map(mdt_of_practice).fillna("No MDT")
    test_rows = predictions["mdt"].value_counts()
    shares = {}
    for mdt in mdts:
        registered = test_rows.get(mdt.name, 0) / config.model.split.test
        if registered:
            shares[mdt.name] = min(mdt.capacity(round(registered)) / registered, 1.0)
    return predictions, simulate_selection(predictions, shares)


@flow(name="retrain", flow_run_name=lambda: f"retrain-{date.today().isoformat()}", validate_parameters=False)
@holds_output_lock("train")
def retrain_flow(config_dir: str | None = None, extract_dir: str | None = None) -> RetrainResult:
    """Validate -> features -> train -> calibrate -> evaluate -> register challenger -> audit -> promote.

    Promotion happens only when every gate passes, including no open fairness
    flag, and ``model.promotion.auto_promote`` is on.
    """
    from riskstrat.features.dictionary import feature_dictionary
    from riskstrat.pipelines.audit import fairness_audit
    from riskstrat.pipelines.retrain import promote_challenger, register_challenger, train_models

    config = load_run_config(config_dir)
    extract = Path(extract_dir or config.data.extract_dir)
    report = gate(config, extract)
    warnings = [f"{w.table}.{w.column}: {w.expected}" for w in report.warnings]
    table = training_table(config, extract, report.snapshot_hash)
    dictionary = _dictionary_frame(feature_dictionary(config.features))
    truth = read_truth(config)
    results = train_models(table, dictionary, config.model, truth)
    outcome_result = RetrainResult()
    for outcome, result in results.items():
        registration = register_challenger(
            result,
            table,
            dictionary,
            config.model,
            config.data.output_dir,
            report.snapshot_hash,
            config.settings_hash(),
            warnings,
        )
        test = table.iloc[result.test_rows]
        predictions, selections = audit_inputs(
            config, test, result.test_scores["lightgbm"].to_numpy(), outcome
        )
        audit = fairness_audit(
            predictions,
            selections,
            config.fairness,
            _model_info(config, outcome, registration, result.model, result.metrics, table),
            config.data.output_dir,
            run_id=registration.run_id,
            tracking_uri=registration.tracking_uri,
        )
        flags = [f.flag_id for f in audit.open_flags]
        _tag_run(registration, FAIRNESS_FLAGS_TAG, json.dumps(flags))
        decision = promote_challenger(registration, result, table, config.model, None, flags)
        metrics = result.metrics.query("model == 'lightgbm'").set_index("metric")
        outcome_result.decisions[outcome] = decision
        outcome_result.registrations[outcome] = registration
        outcome_result.metrics[outcome] = {
            **metrics["value"].to_dict(),
            **{f"{k}_ci_low": v for k, v in metrics["ci_low"].to_dict().items()},
            **{f"{k}_ci_high": v for k, v in metrics["ci_high"].to_dict().items()},
        }
        outcome_result.reports[outcome] = str(audit.html_path)
        outcome_result.open_flags[outcome] = flags
    return outcome_result


def _dictionary_frame(dictionary: Any) -> pd.DataFrame:
    """The feature dictionary as a table (one row per feature, in model order)."""
    from dataclasses import asdict, is_dataclass

    rows = [asdict(spec) if is_dataclass(spec) else dict(spec) for spec in dictionary.values()]
    frame = pd.DataFrame(rows)
    if "name" not in frame.columns:
        frame.insert(0, "name", list(dictionary))
    return frame


def _tag_run(registration: Any, key: str, value: str) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=registration.tracking_uri).set_tag(registration.run_id, key, value)


# ----------------------------------------------------------------------------- registered models


def registered_version(config: Config, outcome: str, alias: str) -> tuple[Any, Any]:
    """The registration and MLflow run of ``outcome``'s model behind ``alias``.

    Returns:
        ``(registration, run)``; the run holds the tags written at training.

    Raises:
        RiskstratError: If no version carries the alias.
    """
    from mlflow.tracking import MlflowClient

    from riskstrat.models.registry import Registration

    uri = tracking_uri(config)
    client = MlflowClient(tracking_uri=uri)
    model_name = config.model.mlflow.registered_models[outcome]
    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except Exception:
        raise RiskstratError(
            f"no {alias} model registered for {model_name}", hint="Run `riskstrat train` first."
        ) from None
    run = client.get_run(version.run_id)
    registration = Registration(
        outcome, model_name, version.version, version.run_id, run.info.experiment_id, uri
    )
    return registration, run


def logged_test_metrics(registration: Any) -> pd.DataFrame:
    """The tidy test metrics logged with a model's training run."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=registration.tracking_uri)
    return pd.read_csv(client.download_artifacts(registration.run_id, "evaluation/test_metrics.csv"))


def held_out_test_rows(config: Config, extract: Path, snapshot_hash: str | None = None) -> pd.DataFrame:
    """The test rows exactly as training chose them: the test as-of date, test persons only."""
    from riskstrat.models.training import person_groups

    built = features_at.fn(
        config, extract, config.model.as_of.test, with_outcomes=True, snapshot_hash=snapshot_hash
    )
    table = read_feature_matrix(built)
    return table[person_groups(table["person_id"], config.model.split).to_numpy() == "test"]


# ----------------------------------------------------------------------------- promotion (CLI)


@holds_output_lock("promote")
def run_promotion(config: Config, outcome: str | None = None) -> list[Any]:
    """``riskstrat promote``: judge each challenger against its champion on the challenger's test rows.

    The test rows are rebuilt from the cached feature matrix at the test as-of
    date and the person split, exactly as training chose them; the challenger's
    logged test metrics and open fairness flags are read from its MLflow run.
    """
    from riskstrat.models.promotion import promote
    from riskstrat.models.registry import load_model
    from riskstrat.models.settings import OUTCOMES

    configure_environment(config.data.output_dir)
    outcomes = [outcome] if outcome else list(OUTCOMES)
    test = None
    decisions = []
    for name in outcomes:
        if name not in OUTCOMES:
            raise RiskstratError(
                f"--outcome {name!r} is not a modelled outcome", hint=f"Use one of {OUTCOMES}."
            )
        registration, run = registered_version(config, name, CHALLENGER)
        # Both outcomes share the test rows: read them once.
        test = held_out_test_rows(config, Path(config.data.extract_dir)) if test is None else test
        decisions.append(
            promote(
                registration,
                test,
                test[name].to_numpy(),
                logged_test_metrics(registration),
                config.model,
                apply=True,
                open_fairness_flags=json.loads(run.data.tags.get(FAIRNESS_FLAGS_TAG, "[]")),
                challenger=load_model(
                    f"models:/{registration.model_name}/{registration.version}", registration.tracking_uri
                ),
            )
        )
    return decisions


# ----------------------------------------------------------------------------- weekly worklists


def _weekly_name() -> str:
    week = flow_run.parameters.get("week") or this_monday()
    return f"weekly-worklists-{week}"


def ranking_outcomes(config: Config) -> set[str]:
    """The outcomes some MDT ranks its list by (each needs a champion model)."""
    from riskstrat.worklists.settings import read_practices, resolve_mdts

    practices_file = Path(config.mdts.practices_file)
    practices = read_practices(practices_file) if practices_file.is_file() else None
    return {mdt.outcome for mdt in resolve_mdts(config.mdts, practices)}


def champion_models(config: Config, required: set[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The champion of each outcome that has one, loaded once from the registry on the driver.

    An outcome an MDT ranks by must have a champion; for the others a missing
    champion is logged and the outcome is left unscored.

    Returns:
        ``(models, versions)``: outcome -> model, and outcome -> "<name> v<version>".

    Raises:
        RiskstratError: If an outcome in ``required`` has no champion.
    """
    from riskstrat.models.scoring import load_champion
    from riskstrat.models.settings import OUTCOMES

    uri = tracking_uri(config)
    models, versions = {}, {}
    for outcome in OUTCOMES:
        name = config.model.mlflow.registered_models[outcome]
        try:
            model = load_champion(name, uri)
        except Exception as exc:
            if outcome in required:
                raise RiskstratError(
                    f"no champion model for {name} in {uri}, and an MDT ranks its list by {outcome}",
                    hint="Run `riskstrat train` (a first model becomes champion when it passes every gate) "
                    "or `riskstrat promote`; see the promotion reasons in MLflow.",
                ) from exc
            run_logger(__name__).warning("no champion for %s: its risk is not scored this week", name)
            continue
        models[outcome] = model
        versions[outcome] = _champion_version(name, uri)
    return models, versions


def _unscored_as_empty(scored: pd.DataFrame) -> pd.DataFrame:
    """Add an empty ``p_<outcome>`` column for every outcome without a champion, in outcome order."""
    from riskstrat.models.settings import OUTCOMES

    for outcome in OUTCOMES:
        if f"p_{outcome}" not in scored.columns:
            scored[f"p_{outcome}"] = float("nan")
    return scored[[c for c in scored.columns if not c.startswith("p_")] + [f"p_{o}" for o in OUTCOMES]]


@task(name="score-population", cache_policy=NO_CACHE)
def score_population(
    config: Config, features: pd.DataFrame, required: set[str]
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, str]]:
    """Score everyone with the champion model of each outcome.

    An outcome an MDT ranks by must have a champion; other outcomes are scored
    when a champion exists (their column is empty otherwise).
    """
    from riskstrat.models.scoring import score

    models, versions = champion_models(config, required)
    scored = features[["person_id", "practice_code", "age"]].copy()
    for outcome, model in models.items():
        scored[f"p_{outcome}"] = score(model, features)
    return _unscored_as_empty(scored), models, versions


@task(name="spark-features", **IO_RETRIES)
def spark_features_at(
    config: Config, session: Any, extract_dir: Path, as_of: date, snapshot_hash: str | None = None
) -> Any:
    """Build (or reuse) the feature matrix at ``as_of`` on Spark; it stays a Spark DataFrame."""
    from riskstrat.pipelines.spark import spark_feature_matrix

    return spark_feature_matrix(
        session, extract_dir, Path(config.data.output_dir), as_of, config.features, snapshot_hash
    )


@task(name="score-population-spark", cache_policy=NO_CACHE)
def score_population_spark(
    config: Config, matrix: Any, required: set[str]
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, str]]:
    """Score everyone on Spark, per partition; only the scores come to the driver.

    Same result as :func:`score_population` (one row per person sorted by
    ``person_id``; the champions are loaded once here and broadcast).
    """
    from riskstrat.models.spark_scoring import collect_scores, score_partitions

    models, versions = champion_models(config, required)
    scored = collect_scores(score_partitions(matrix, models))
    return _unscored_as_empty(scored), models, versions


def champion_contributions(models: dict[str, Any]) -> Callable[[str, pd.DataFrame], pd.DataFrame]:
    """TreeSHAP contributions of given rows with each outcome's champion (the worklists' reasons)."""
    from riskstrat.models.explain import contributions

    def explain(outcome: str, rows: pd.DataFrame) -> pd.DataFrame:
        model = models[outcome]
        return contributions(model.booster, rows, model.feature_names)

    return explain


def _champion_version(name: str, uri: str) -> str:
    from riskstrat.models.registry import alias_version

    return f"{name} v{alias_version(name, CHAMPION, uri)}"


@flow(name="weekly_worklists", flow_run_name=_weekly_name, validate_parameters=False)
@holds_output_lock("worklists")
def weekly_worklists_flow(
    config_dir: str | None = None,
    extract_dir: str | None = None,
    week: date | None = None,
    as_of: date | None = None,
) -> str:
    """Validate -> features as at the data date -> score -> select -> explain -> export -> record history.

    Args:
        config_dir: Settings folder.
        extract_dir: Extract folder (default ``data.extract_dir``).
        week: Week commencing the lists are for (default: this week's Monday).
        as_of: Data date of features and scores (default: ``data.extract_date`` or the latest event).

    Returns:
        The week's output folder.
    """
    from riskstrat.pipelines.weekly import WeeklyInputs, run_worklists
    from riskstrat.worklists.selection import people_not_to_score, population_status, without_people

    config = load_run_config(config_dir)
    check_worklist_files(config)  # before any work: the practices file and re-identification key exist
    # Before any work too: an earlier version's history moved into place, or a gap refused.
    from riskstrat.worklists.history import reconcile_history

    reconcile_history(Path(config.data.output_dir), week or this_monday())
    extract = Path(extract_dir or config.data.extract_dir)
    report = gate(config, extract, WEEKLY_TABLES)
    when = as_of or data_date(config, extract)
    tables = report.tables
    # Type 1 opt-outs are not scored at all when no MDT lists them.
    unscored = people_not_to_score(config.mdts, tables.get("opt_outs"))
    hooks: dict[str, Any] = {}
    if config.features.backend == "pyspark":
        # Features, scoring and reasons run on the executors; the driver gets scores and listed rows.
        from riskstrat.pipelines.spark import feature_rows, listed_reasons, weekly_session

        matrix = spark_features_at(
            config, weekly_session(config.features), extract, when, report.snapshot_hash
        )
        if unscored:
            matrix = matrix.filter(~matrix["person_id"].isin(sorted(unscored)))
        scored, models, versions = score_population_spark(config, matrix, ranking_outcomes(config))
        features = None
        hooks = {
            "feature_rows": lambda people: feature_rows(matrix, people),
            "reasons": lambda outcome, people, count: listed_reasons(matrix, models[outcome], people, count),
        }
    else:
        features = read_feature_matrix(
            features_at(config, extract, when, with_outcomes=False, snapshot_hash=report.snapshot_hash)
        )
        features = without_people(features, unscored)
        scored, models, versions = score_population(config, features, ranking_outcomes(config))
    status = population_status(tables["patients"], tables.get("caseload"), tables.get("opt_outs"), when)
    inputs = WeeklyInputs(
        week=week or this_monday(),
        data_date=when,
        scored=scored,
        features=features,
        contributions=champion_contributions(models),
        settings=config.mdts,
        output_dir=Path(config.data.output_dir),
        model_versions=versions,
        extract_snapshot_hash=report.snapshot_hash,
        status=status,
        tables={name: tables[name] for name in LISTED_CONTEXT_TABLES if name in tables},
        **hooks,
    )
    return str(run_worklists(inputs, as_tasks=True))


# ----------------------------------------------------------------------------- audit (monthly)


@flow(
    name="fairness_audit",
    flow_run_name=lambda: f"fairness-audit-{date.today().isoformat()}",
    validate_parameters=False,
)
@holds_output_lock("audit")
def fairness_audit_flow(
    config_dir: str | None = None,
    outcome: str = "emergency_admission",
    alias: str = CHAMPION,
    extract_dir: str | None = None,
) -> str:
    """Audit a registered model on its test rows and write the governance report (monthly on the champion)."""
    from riskstrat.models.registry import load_model
    from riskstrat.pipelines.audit import fairness_audit

    config = load_run_config(config_dir)
    extract = Path(extract_dir or config.data.extract_dir)
    report = gate(config, extract)
    registration, _ = registered_version(config, outcome, alias)
    model = load_model(f"models:/{registration.model_name}/{registration.version}", registration.tracking_uri)
    test = held_out_test_rows(config, extract, report.snapshot_hash)
    need = need_at(config, extract, config.model.as_of.test, test["person_id"])
    test = test.merge(need, on=["person_id", "as_of"], how="left", validate="one_to_one")
    predictions, selections = audit_inputs(config, test, model.predict_proba(test), outcome)
    info = _model_info(config, outcome, registration, model, logged_test_metrics(registration), test)
    result = fairness_audit(
        predictions,
        selections,
        config.fairness,
        info,
        config.data.output_dir,
        run_id=registration.run_id,
        tracking_uri=registration.tracking_uri,
    )
    return str(result.html_path)


# ----------------------------------------------------------------------------- demo


@dataclass
class DemoResult:
    """Where the demo put everything."""

    extract_dir: str
    data_docs: str
    retrain: RetrainResult
    worklists: list[str]


def _demo_weeks(extract_date: date) -> list[tuple[date, date]]:
    """Two consecutive weekly runs ending at the extract date: (week, data date) pairs."""
    last_week = this_monday(extract_date + timedelta(days=7))
    return [(last_week - timedelta(days=7), extract_date - timedelta(days=7)), (last_week, extract_date)]


@flow(name="demo", flow_run_name=lambda: f"demo-{date.today().isoformat()}", validate_parameters=False)
@holds_output_lock("demo")
def demo_flow(
    config_dir: str | None = None, people: int | None = None, seed: int | None = None
) -> DemoResult:
    """Generate the synthetic population and run every stage: validate, retrain, audit, two weekly runs."""
    from riskstrat.pipelines.generate import write_synthetic

    config = load_run_config(config_dir)
    out = Path(config.data.output_dir)
    n = people or config.synthetic.people
    paths = task(name="generate-synthetic-population", cache_policy=NO_CACHE)(write_synthetic)(
        out, n, seed if seed is not None else config.synthetic.seed, config.synthetic
    )
    check_worklist_files(config)  # the weekly step's files, checked now the practices file is written
    extract = str(paths.extract_dir)
    summary = validate_flow(config_dir, extract)
    retrained = retrain_flow(config_dir, extract)
    folders = [
        weekly_worklists_flow(config_dir, extract, week=week, as_of=when)
        for week, when in _demo_weeks(config.synthetic.extract_date)
    ]
    return DemoResult(extract, summary["data_docs"], retrained, folders)


def demo_summary(config: Config, result: DemoResult) -> str:
    """The lines ``make demo`` ends with: where everything is, and how to open the UIs."""
    from riskstrat.pipelines.environment import prefect_home

    out = Path(config.data.output_dir)
    lines = ["", "riskstrat demo finished.", "", result.retrain.summary(), ""]
    lines += [
        f"Worklists (this week):    {result.worklists[-1]}",
        f"Governance reports:       {', '.join(result.retrain.reports.values())}",
        f"Data Docs:                {result.data_docs}",
        f"Synthetic extract:        {result.extract_dir}",
        "",
        f"Open the MLflow UI:   .venv/bin/mlflow ui --backend-store-uri {tracking_uri(config)} --port 5000",
        f"Open the Prefect UI:  PREFECT_HOME={prefect_home()} .venv/bin/prefect server start",
        f"(outputs are under {out.resolve()})",
    ]
    return "\n".join(lines)
