"""One pipeline stage per process, for :mod:`benchmarks.run` to time and measure.

    python -m benchmarks.stages <stage> --config DIR --result FILE [--people N] [--cap N]

Each stage calls the functions the flows call (the ``.fn`` of Prefect tasks,
or the functions under them), never a ``@flow``, so no Prefect server starts
and the figures are the work alone; the weekly stages call what
:func:`riskstrat.pipelines.weekly.weekly_worklists_flow` calls, with the same
arguments. A stage writes a JSON result (its own timings in seconds, row
counts, notes) to ``--result``; the runner adds the process's wall time and
peak memory. Stages hand data to later stages through files under
``<output_dir>/benchmark_state/``.

Each stage imports riskstrat inside its function, on purpose: a stage process
loads only what its stage runs, so its peak memory is its own (importing every
stage's libraries up front would add them to every stage's figure).
``tests/test_benchmarks_import.py`` checks those imports still resolve.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

STATE = "benchmark_state"
"""Folder under ``data.output_dir`` where stages leave data for later stages."""

REASONS_OUTCOME = "emergency_admission"
"""Outcome 'reasons for everyone' explains when no list was explained."""


class Timer:
    """Named wall-clock timings and peak memory of the steps of one stage.

    ``peak_gib`` holds, per step, the largest resident memory of the stage's process
    tree (Spark's JVM included) sampled while the step ran: where the stage's memory goes.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_gib: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block and add it to ``name`` (steps may repeat); keep its peak memory."""
        from benchmarks.memory import GIB, PeakSampler

        started = time.perf_counter()
        sampler = PeakSampler()
        try:
            with sampler:
                yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.peak_gib[name] = max(self.peak_gib.get(name, 0.0), sampler.peak_bytes / GIB)


def data_date(config: Any) -> date:
    """The weekly run's as-of date: ``data.extract_date``, else the synthetic extract date."""
    return config.data.extract_date or config.synthetic.extract_date


def run_week(config: Any) -> date:
    """The Monday the benchmark's worklists are for (the week after the data date, as the demo)."""
    from riskstrat.pipelines.shared import this_monday

    return this_monday(data_date(config) + timedelta(days=7))


def state_dir(config: Any) -> Path:
    """Where stages leave data for later stages."""
    folder = Path(config.data.output_dir) / STATE
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _status_and_context(config: Any, con: Any, present: Collection[str], when: date) -> tuple[Any, Any]:
    """Every patient's status and the listed people's context hook, as the weekly flow makes them.

    Args:
        config: The run's settings.
        con: The feature backend (DuckDB, or PySpark on the weekly session).
        present: The extract's tables (the gate's ``row_counts``).
        when: The data date.

    Returns:
        ``(status, listed_context)`` for :class:`~riskstrat.pipelines.weekly.WeeklyInputs`.
    """
    from riskstrat.pipelines.weekly import (
        listed_context_reader,
        point_in_time_tables,
        population_status_task,
        social_care_returns_at,
    )

    tables = point_in_time_tables(con, Path(config.data.extract_dir), present)
    # The social care returns are worked out as the weekly flow does (timed with the context).
    care = config.sources.social_care
    returns = social_care_returns_at(tables, when, care)
    context = listed_context_reader(tables, when, returns, care.county_of_district)
    return population_status_task.fn(tables, when), context


def _tables_present(config: Any) -> list[str]:
    """The contract tables with a file in the extract, as the gate finds them (stages that run no gate)."""
    from riskstrat.ingest.contract import CONTRACT
    from riskstrat.ingest.readers import find_table_file

    extract = Path(config.data.extract_dir)
    return [name for name in CONTRACT if find_table_file(extract, name) is not None]


def _ranking_outcomes(config: Any) -> set[str]:
    from riskstrat.pipelines.weekly import ranking_outcomes

    return ranking_outcomes(config.mdts)


def _inputs(config: Any, features: Any, scored: Any, models: dict, versions: dict, **extra: Any) -> Any:
    from riskstrat.pipelines.weekly import WeeklyInputs, champion_contributions

    return WeeklyInputs(
        week=run_week(config),
        data_date=data_date(config),
        scored=scored,
        features=features,
        contributions=champion_contributions(models),
        settings=config.mdts,
        output_dir=Path(config.data.output_dir),
        model_versions=versions,
        outcome_settings=config.outcomes,
        **extra,
    )


# ----------------------------------------------------------------------------- stages


def stage_generate(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """Write the synthetic population of ``--people`` people as the demo does: raw national files
    (``synthetic.write_national``, the default) or contract tables, with the truth and practice map."""
    from riskstrat.pipelines.generate import write_synthetic

    national = config.sources if config.synthetic.write_national else None
    with timer.step("generate"):
        paths = write_synthetic(
            Path(config.data.output_dir), args.people, config.synthetic.seed, config.synthetic, national
        )
    written = paths.raw_dir if paths.raw_dir is not None else paths.extract_dir
    size = sum(p.stat().st_size for p in Path(written).glob("*.parquet"))
    return {"written_bytes": size, "national": national is not None}


def stage_adapt(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """The source adapters: raw national files -> contract tables and mapping coverage, as ``riskstrat adapt``."""
    from riskstrat.pipelines.sources import adapt_task, resolved_raw_dir

    raw = resolved_raw_dir(config)
    if not any(raw.glob("*.parquet")):
        return {"skipped": "no raw national files (synthetic.write_national is false)"}
    with timer.step("adapt"):
        result = adapt_task.fn(config, raw, Path(config.data.extract_dir))
    return {"rows": result.row_counts, "lowest_coverage": result.coverage_headline()}


def stage_validate(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """The validation gate (Great Expectations, Data Docs, report) as every flow runs it."""
    from riskstrat.pipelines.validate import validation_gate

    with timer.step("validate"):
        report = validation_gate.fn(
            Path(config.data.extract_dir),
            config.data.output_dir,
            config.validation,
            config.data.extract_date,
            keep_tables=False,  # as every flow's gate (run_gate): no typed tables handed on
        )
    return {
        "rows": dict(report.row_counts),
        "checks": len(report.results),
        "critical_failures": len(report.critical_failures),
        "warnings": len(report.warnings),
    }


def stage_features(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """The training table: features and outcomes at the four as-of dates, with need columns."""
    from riskstrat.io import write_parquet
    from riskstrat.pipelines.retrain import training_table

    with timer.step("training_table"):
        table = training_table.fn(config, Path(config.data.extract_dir))
    with timer.step("write_state"):
        write_parquet(table, state_dir(config) / "training_table.parquet")
    return {"rows": len(table), "columns": table.shape[1]}


def stage_train(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """Train, calibrate and evaluate both outcomes, register each in MLflow and promote it."""
    from riskstrat.features.matrix import trained_dictionary
    from riskstrat.models.registry import CHAMPION, alias_version
    from riskstrat.pipelines.retrain import (
        dictionary_frame,
        promote_challenger,
        read_training_table,
        read_truth,
        register_challenger,
        train_models,
    )

    with timer.step("read_state"):
        table = read_training_table(state_dir(config) / "training_table.parquet")
        dictionary = dictionary_frame(trained_dictionary(config.features, table.columns))
        truth = read_truth.fn(config.data.truth_dir)
    with timer.step("train"):
        results = train_models.fn(table, dictionary, config.model, truth)
    notes, promoted = [], {}
    for outcome, result in results.items():
        with timer.step("register"):
            registration = register_challenger.fn(
                result,
                table,
                dictionary,
                config.model,
                config.data.output_dir,
                "benchmark",
                config.settings_hash(),
            )
        with timer.step("promote"):
            decision = promote_challenger.fn(registration, result, table, config.model, apply=True)
        promoted[outcome] = decision.promoted
        if alias_version(registration.model_name, CHAMPION, registration.tracking_uri) is None:
            # The weekly stages need a champion; a refused first model is made champion for timing only.
            _set_alias(registration, CHAMPION)
            notes.append(f"{outcome}: promotion refused ({decision.status}); champion set for the benchmark")
    auroc = {
        outcome: float(result.metrics.query("model == 'lightgbm' and metric == 'auroc'")["value"].iloc[0])
        for outcome, result in results.items()
    }
    # Boosting rounds kept by early stopping: training time grows with them as well as with rows.
    trees = {outcome: int(result.model.booster.num_trees()) for outcome, result in results.items()}
    return {"rows": len(table), "auroc": auroc, "trees": trees, "promoted": promoted, "notes": notes}


def _set_alias(registration: Any, alias: str) -> None:
    from riskstrat.models.registry import tracking

    # tracking() points the registry at the same URI; a bare MlflowClient would use MLflow's default registry.
    with tracking(registration.tracking_uri) as client:
        client.set_registered_model_alias(registration.model_name, alias, registration.version)


def stage_weekly_features(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """The feature matrix at the data date (no outcomes), built from scratch.

    The extract is hashed in its own step: the weekly flow takes that hash from the
    validation gate and passes it to the feature build, so ``features`` times the build alone.
    """
    import pyarrow.parquet as pq

    from riskstrat.io import folder_snapshot_hash

    _drop_cached_scoring_features(config)
    extract = Path(config.data.extract_dir)
    with timer.step("hash"):
        snapshot = folder_snapshot_hash(extract)
    with timer.step("features"):
        path = _build_scoring_features(config, extract, snapshot)

    return {"rows": pq.ParquetFile(path).metadata.num_rows, "backend": config.features.backend}


def _build_scoring_features(config: Any, extract: Path, snapshot_hash: str | None) -> Path:
    """The weekly flow's feature matrix at the data date (no outcomes): ``features_at`` without its task."""
    from riskstrat.pipelines.features import build_feature_file

    return build_feature_file(
        extract,
        config.data.output_dir,
        data_date(config),
        config.features,
        None,
        config.data.extract_date,
        snapshot_hash,
        config.sources.social_care.county_of_district,
    )


def _scoring_features_path(config: Any) -> Path:
    from riskstrat.io import folder_snapshot_hash
    from riskstrat.pipelines.features import feature_file_path

    snapshot = folder_snapshot_hash(Path(config.data.extract_dir))
    return feature_file_path(
        config.data.output_dir,
        snapshot,
        data_date(config),
        config.features,
        None,
        config.sources.social_care.county_of_district,
    )


def _drop_cached_scoring_features(config: Any) -> None:
    """Remove a stored matrix at the data date so the stage times a real build, not a cache hit."""
    _scoring_features_path(config).unlink(missing_ok=True)


def stage_weekly_score(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """Score everyone with the champion of each outcome (loaded from MLflow)."""
    from riskstrat.io import write_parquet
    from riskstrat.pipelines.features import read_feature_matrix
    from riskstrat.pipelines.shared import tracking_uri
    from riskstrat.pipelines.weekly import score_population_task

    with timer.step("read_features"):
        features = read_feature_matrix(_scoring_features_path(config))
    with timer.step("scoring"):
        scored, _, versions = score_population_task.fn(
            features, config.model.mlflow, tracking_uri(config), _ranking_outcomes(config)
        )
    with timer.step("write_state"):
        write_parquet(scored, state_dir(config) / "scored.parquet")
        (state_dir(config) / "versions.json").write_text(json.dumps(versions))
    return {"rows": len(scored), "models": versions}


def _load_weekly_state(config: Any, timer: Timer) -> tuple[Any, Any, dict, dict, Any, Any]:
    """What the weekly stage before left, with the champions, status and listed context recomputed."""
    import pandas as pd

    from riskstrat.features.backends import connect_duckdb
    from riskstrat.models.scoring import load_champion
    from riskstrat.pipelines.features import read_feature_matrix
    from riskstrat.pipelines.shared import tracking_uri

    with timer.step("read_state"):
        features = read_feature_matrix(_scoring_features_path(config))
        scored = pd.read_parquet(state_dir(config) / "scored.parquet")
        versions = json.loads((state_dir(config) / "versions.json").read_text())
        models = {
            outcome: load_champion(config.model.mlflow.registered_models[outcome], tracking_uri(config))
            for outcome in versions
        }
        con = connect_duckdb(config.features)
        status, context = _status_and_context(config, con, _tables_present(config), data_date(config))
    return features, scored, models, versions, status, context


def stage_weekly_reasons(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """Select the worklists, then TreeSHAP reasons for the listed people only."""
    from riskstrat.pipelines.weekly import explain_task, select_task

    features, scored, models, versions, status, context = _load_weekly_state(config, timer)
    inputs = _inputs(config, features, scored, models, versions, status=status, listed_context=context)
    with timer.step("select"):
        selections = select_task.fn(inputs)
    with timer.step("reasons"):
        reasons = explain_task.fn(inputs, selections)
    with timer.step("write_state"), (state_dir(config) / "weekly.pkl").open("wb") as handle:
        pickle.dump({"selections": selections, "reasons": reasons}, handle)
    listed = {outcome: len(frame) for outcome, frame in reasons.items()}
    return {"explained": listed, "mdts": len(selections)}


def stage_weekly_export(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """Rows, change since last week and leavers, the XLSX/CSV/manifest export, and the history."""
    from riskstrat.pipelines.weekly import assemble_task, export_task

    features, scored, models, versions, status, context = _load_weekly_state(config, timer)
    inputs = _inputs(config, features, scored, models, versions, status=status, listed_context=context)
    with timer.step("read_state"), (state_dir(config) / "weekly.pkl").open("rb") as handle:
        state = pickle.load(handle)
    with timer.step("assemble"):
        outputs = assemble_task.fn(inputs, state["selections"], state["reasons"])
    with timer.step("export"):  # the week's files and its history, published in one step
        folder = export_task.fn(inputs, outputs, state["selections"])
    return {"listed": int(sum(len(o.rows) for o in outputs)), "folder": str(folder)}


def stage_weekly(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """The whole weekly run as the flow does it: gate -> status -> features -> score -> worklists."""
    import pyarrow.parquet as pq

    from riskstrat.features.backends import connect_duckdb
    from riskstrat.features.dictionary import feature_names
    from riskstrat.features.matrix import feature_matrix_schema
    from riskstrat.pipelines.features import read_feature_matrix
    from riskstrat.pipelines.shared import tracking_uri
    from riskstrat.pipelines.validate import validation_gate
    from riskstrat.pipelines.weekly import run_worklists, score_population_task
    from riskstrat.worklists.history import WEEK_HISTORY
    from riskstrat.worklists.selection import people_not_to_score, without_people

    extract = Path(config.data.extract_dir)
    _drop_cached_scoring_features(config)
    with timer.step("validate"):
        report = validation_gate.fn(
            extract, config.data.output_dir, config.validation, config.data.extract_date, keep_tables=False
        )
    with timer.step("status"):
        con = connect_duckdb(config.features)
        status, context = _status_and_context(config, con, report.row_counts, data_date(config))
    with timer.step("features"):
        # As the flow: the gate's snapshot hash keys the cache, so the extract is hashed once,
        # and the matrix is checked against its schema before it is scored.
        built = _build_scoring_features(config, extract, report.snapshot_hash)
        features = feature_matrix_schema(feature_names(config.features)).check(read_feature_matrix(built))
    with timer.step("scoring"):
        # As the flow: type 1 opt-outs are not scored when no MDT lists them.
        features = without_people(features, people_not_to_score(config.mdts, status))
        scored, models, versions = score_population_task.fn(
            features, config.model.mlflow, tracking_uri(config), _ranking_outcomes(config)
        )
    inputs = _inputs(
        config,
        features,
        scored,
        models,
        versions,
        extract_snapshot_hash=report.snapshot_hash,
        status=status,
        listed_context=context,
    )
    with timer.step("worklists"):  # select -> reasons -> rows -> export with history, as the flow
        folder = run_worklists(inputs)
    # The week's history holds one row per listed person per MDT.
    listed = pq.ParquetFile(folder / WEEK_HISTORY).metadata.num_rows
    return {"rows": len(features), "listed": listed, "folder": str(folder)}


def stage_weekly_spark(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """The weekly run's Spark steps: features on the executors, scoring and listed reasons per partition.

    Needs ``backend: pyspark`` and the champions the train stage registered
    (the runner points this config's MLflow at the DuckDB run's store).
    """
    import shutil

    from riskstrat.features.backends import connect_pyspark
    from riskstrat.io import folder_snapshot_hash
    from riskstrat.pipelines.shared import tracking_uri
    from riskstrat.pipelines.spark import feature_rows, listed_reasons, spark_feature_path, weekly_session
    from riskstrat.pipelines.weekly import score_population_spark, select_task, spark_features_at
    from riskstrat.worklists.selection import people_not_to_score

    extract = Path(config.data.extract_dir)
    when = data_date(config)
    snapshot = folder_snapshot_hash(extract)  # outside the clock: the weekly flow has the gate's
    districts = config.sources.social_care.county_of_district
    cache = spark_feature_path(Path(config.data.output_dir), snapshot, when, config.features, districts)
    shutil.rmtree(cache, ignore_errors=True)
    with timer.step("session"):
        session = weekly_session(config.features)
    with timer.step("status"):  # on the executors, as the flow: only the status columns come back
        status, context = _status_and_context(config, connect_pyspark(session), _tables_present(config), when)
    with timer.step("features"):
        matrix = spark_features_at.fn(
            session, extract, Path(config.data.output_dir), when, config.features, snapshot, districts
        )
    with timer.step("scoring"):  # loading the champions from MLflow, then scoring per partition
        # As the flow: type 1 opt-outs are not scored when no MDT lists them.
        unscored = people_not_to_score(config.mdts, status)
        if unscored:
            matrix = matrix.filter(~matrix["person_id"].isin(sorted(unscored)))
        scored, models, versions = score_population_spark.fn(
            matrix, config.model.mlflow, tracking_uri(config), _ranking_outcomes(config)
        )
    inputs = _inputs(config, None, scored, models, versions, status=status, listed_context=context)
    with timer.step("select"):
        selections = select_task.fn(inputs)
    wanted: dict[str, set[str]] = {}
    for selection in selections.values():
        wanted.setdefault(selection.mdt.outcome, set()).update(selection.listed["person_id"].astype(str))
    with timer.step("reasons"):
        for outcome, people in wanted.items():
            listed_reasons(matrix, models[outcome], people, config.mdts.reasons_count)
    with timer.step("listed_rows"):
        feature_rows(matrix, set().union(*wanted.values()) if wanted else set())
    parts = len(list(cache.glob("part-*.parquet")))
    return {
        "rows": len(scored),
        "listed": int(sum(len(p) for p in wanted.values())),
        "partitions": parts,
        "backend": config.features.backend,
    }


MODEL_SIZE_ROUNDS = 5000
"""Rounds allowed to the uncapped fit of the model-size stage (early stopping ends it sooner)."""


def stage_model_size(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """What the boosting-round budget (``n_estimators``) costs in test AUROC, per outcome.

    One LightGBM fit per outcome with the configured parameters but up to
    ``MODEL_SIZE_ROUNDS`` rounds, early-stopped on the validation rows. Its log-loss
    curve gives the rounds early stopping chooses with and without the budget; the
    test AUROC of both (raw scores: calibration does not change AUROC) is compared on
    the same bootstrap resamples (paired 95% interval of the difference).
    """
    import lightgbm as lgb
    import numpy as np

    from riskstrat.features.dictionary import feature_dictionary
    from riskstrat.models.metrics import AUROC_DIFFERENCE, compare_models, metric_value
    from riskstrat.models.training import lightgbm_params, temporal_split
    from riskstrat.pipelines.retrain import read_training_table

    with timer.step("read_state"):
        table = read_training_table(state_dir(config) / "training_table.parquet")
        names = [name for name in feature_dictionary(config.features) if name in table.columns]
        split = temporal_split(table, config.model)
        x = table[names].to_numpy(dtype=np.float64, na_value=np.nan)
    results = {}
    for outcome in config.model.outcomes:
        y = table[outcome].to_numpy(dtype=np.int64)
        chosen = config.model.params_for(outcome)
        curve: dict[str, Any] = {}
        with timer.step(f"fit_{outcome}"):
            train_set = lgb.Dataset(x[split.train], label=y[split.train], feature_name=names)
            valid_set = lgb.Dataset(x[split.validation], label=y[split.validation], reference=train_set)
            booster = lgb.train(
                lightgbm_params(chosen, config.model),
                train_set,
                num_boost_round=MODEL_SIZE_ROUNDS,
                valid_sets=[valid_set],
                valid_names=["validation"],
                callbacks=[
                    lgb.early_stopping(chosen.early_stopping_rounds, verbose=False),
                    lgb.record_evaluation(curve),
                ],
            )
        loss = np.asarray(curve["validation"]["binary_logloss"])
        uncapped = int(np.argmin(loss)) + 1
        capped = int(np.argmin(loss[: chosen.n_estimators])) + 1
        y_test = y[split.test]
        scores = {
            rounds: booster.predict(x[split.test], num_iteration=rounds) for rounds in {capped, uncapped}
        }
        # AUROC only (ranking), paired: the budget's AUROC minus the unbudgeted model's.
        metrics = compare_models(
            y_test,
            {"budget": scores[capped], "no_budget": scores[uncapped]},
            ranking_only=["budget", "no_budget"],
            n_boot=config.model.evaluation.n_boot,
            seed=config.model.evaluation.seed,
            reference="budget",
        )
        difference = metrics[
            (metrics["metric"] == AUROC_DIFFERENCE) & (metrics["model"] == "no_budget")
        ].iloc[0]
        results[outcome] = {
            "budget": chosen.n_estimators,
            "rounds_capped": capped,
            "rounds_uncapped": uncapped,
            "auroc_capped": metric_value(metrics, "auroc", "budget"),
            "auroc_uncapped": metric_value(metrics, "auroc", "no_budget"),
            "difference": float(difference["value"]),
            "difference_ci": [float(difference["ci_low"]), float(difference["ci_high"])],
            "test_rows": len(y_test),
            "test_events": int(y_test.sum()),
        }
    return {"outcomes": results}


TRAINING_SAMPLE_SHARES = (0.5, 0.25)
"""Shares of the training rows the person-time sample benchmark keeps (``training_sample.max_rows``)."""


def stage_training_sample(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """What a person-time sample of the training rows (``training_sample``) costs in test AUROC, per outcome.

    Each outcome is fitted as training fits it (same parameters, early stopping on the
    validation rows) on every training row and on seeded samples of
    ``TRAINING_SAMPLE_SHARES`` of them; the test AUROC of each sample (raw scores:
    calibration does not change AUROC) is compared with the full fit's on the same test
    rows and bootstrap resamples (paired 95% interval of the difference).
    """
    import numpy as np

    from riskstrat.features.dictionary import feature_dictionary
    from riskstrat.models.metrics import AUROC_DIFFERENCE, compare_models, metric_value
    from riskstrat.models.settings import TrainingSampleSettings
    from riskstrat.models.training import (
        feature_matrix,
        fit_risk_model_on,
        sample_training_rows,
        temporal_split,
    )
    from riskstrat.pipelines.retrain import read_training_table

    with timer.step("read_state"):
        table = read_training_table(state_dir(config) / "training_table.parquet")
        names = [name for name in feature_dictionary(config.features) if name in table.columns]
        split = temporal_split(table, config.model)
        x_valid = feature_matrix(table, names, split.validation)
        x_test = feature_matrix(table, names, split.test)
    seed = config.model.training_sample.seed
    results: dict[str, Any] = {}
    for outcome in config.model.outcomes:
        y = table[outcome].to_numpy(dtype=np.int64)
        scores: dict[str, np.ndarray] = {}
        for share in (1.0, *TRAINING_SAMPLE_SHARES):
            rows = int(len(split.train) * share)
            sample = TrainingSampleSettings.model_construct(max_rows=rows if share < 1 else None, seed=seed)
            rows_used = sample_training_rows(split, sample)[0].train
            with timer.step(f"fit_{outcome}_{share:g}"):
                model, _ = fit_risk_model_on(
                    feature_matrix(table, names, rows_used),
                    y[rows_used],
                    x_valid,
                    y[split.validation],
                    table["person_id"].iloc[rows_used],
                    names,
                    outcome,
                    config.model,
                )
            scores[f"share_{share:g}"] = model.booster.predict(x_test)
        y_test = y[split.test]
        metrics = compare_models(
            y_test,
            scores,
            ranking_only=list(scores),
            n_boot=config.model.evaluation.n_boot,
            seed=config.model.evaluation.seed,
            reference="share_1",
        )
        samples = {}
        for share in TRAINING_SAMPLE_SHARES:
            name = f"share_{share:g}"
            difference = metrics[(metrics["metric"] == AUROC_DIFFERENCE) & (metrics["model"] == name)].iloc[0]
            # compare_models gives the reference's AUROC minus the sample's: flip it to the sample's cost.
            samples[f"{share:g}"] = {
                "train_rows": int(len(split.train) * share),
                "auroc": metric_value(metrics, "auroc", name),
                "difference": -float(difference["value"]),
                "difference_ci": [-float(difference["ci_high"]), -float(difference["ci_low"])],
            }
        results[outcome] = {
            "train_rows": len(split.train),
            "auroc_all_rows": metric_value(metrics, "auroc", "share_1"),
            "samples": samples,
            "test_rows": len(y_test),
            "test_events": int(y_test.sum()),
        }
    return {"outcomes": results}


def stage_reasons_everyone(config: Any, timer: Timer, args: argparse.Namespace) -> dict[str, Any]:
    """TreeSHAP ``pred_contrib`` over the whole scored population, for the outcomes the lists explain.

    At most ``--cap`` rows are explained; beyond that the time is extrapolated
    linearly (TreeSHAP costs the same per row), and the result says so.
    """
    from riskstrat.models.scoring import load_champion
    from riskstrat.pipelines.features import read_feature_matrix
    from riskstrat.pipelines.shared import tracking_uri
    from riskstrat.pipelines.weekly import champion_contributions

    with timer.step("read_state"):
        features = read_feature_matrix(_scoring_features_path(config))
        with (state_dir(config) / "weekly.pkl").open("rb") as handle:
            outcomes = sorted(pickle.load(handle)["reasons"]) or [REASONS_OUTCOME]
        models = {
            outcome: load_champion(config.model.mlflow.registered_models[outcome], tracking_uri(config))
            for outcome in outcomes
        }
    population = len(features)
    rows = features if not args.cap or population <= args.cap else features.iloc[: args.cap]
    explain = champion_contributions(models)
    for outcome in outcomes:
        with timer.step("reasons_measured"):
            explain(outcome, rows)
    measured = timer.seconds.get("reasons_measured", 0.0)
    extrapolated = len(rows) < population
    timer.seconds["reasons_everyone"] = measured * population / max(len(rows), 1)
    return {
        "outcomes": outcomes,
        "population": population,
        "rows_explained": len(rows),
        "extrapolated": extrapolated,
    }


STAGES: dict[str, Callable[[Any, Timer, argparse.Namespace], dict[str, Any]]] = {
    "generate": stage_generate,
    "adapt": stage_adapt,
    "validate": stage_validate,
    "features": stage_features,
    "train": stage_train,
    "weekly_features": stage_weekly_features,
    "weekly_score": stage_weekly_score,
    "weekly_reasons": stage_weekly_reasons,
    "weekly_export": stage_weekly_export,
    "weekly": stage_weekly,
    "reasons_everyone": stage_reasons_everyone,
    "model_size": stage_model_size,
    "training_sample": stage_training_sample,
    "weekly_spark": stage_weekly_spark,
}
"""Stage name -> function(config, timer, args) returning extra figures for the result."""


def main(argv: list[str] | None = None) -> int:
    """Run one stage and write its result JSON (timings in seconds plus the stage's figures)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("--config", type=Path, required=True, help="Config folder the runner wrote.")
    parser.add_argument("--result", type=Path, required=True, help="Where to write the result JSON.")
    parser.add_argument("--people", type=int, default=0, help="People to generate (generate only).")
    parser.add_argument("--cap", type=int, default=200_000, help="Row cap of reasons_everyone (0: none).")
    args = parser.parse_args(argv)

    from riskstrat.pipelines.shared import load_run_config

    started = time.perf_counter()
    config = load_run_config(str(args.config))
    timer = Timer()
    timer.seconds["setup"] = time.perf_counter() - started
    figures = STAGES[args.stage](config, timer, args)
    result = {"stage": args.stage, "seconds": timer.seconds, "step_peak_gib": timer.peak_gib, **figures}
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
