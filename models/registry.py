"""MLflow tracking and model registry: one experiment per outcome, one run per training.

A run logs the parameters, every test metric with its 95% interval (LightGBM as
``test_<metric>``, ``test_<metric>_ci_low``, ``test_<metric>_ci_high``; baselines as
``test_<baseline>_<metric>...``), plots, the feature dictionary, the extract's
snapshot hash, the settings hash, the git commit, validation warnings and the
caseload treatment, and the model as one MLflow pyfunc: the LightGBM booster
plus its calibrator, so ``models:/<name>@champion`` returns calibrated
probabilities. The new version gets the alias ``challenger``.

No patient-level row is logged: metrics, reliability tables and plots are
aggregates, and the model's input example is a single row of training-set
feature medians, not a person.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.tracking._model_registry import utils as registry_utils
from mlflow.tracking._tracking_service import utils as tracking_utils
from mlflow.types import ColSpec, Schema, TensorSpec

from riskstrat.errors import RiskstratError
from riskstrat.models.baselines import LIGHTGBM
from riskstrat.models.calibration import Calibrator
from riskstrat.models.settings import ModelSettings
from riskstrat.models.training import RiskModel, TrainingResult

CHALLENGER = "challenger"
CHAMPION = "champion"
MODEL_ARTIFACT = "model"
TEST_METRICS_ARTIFACT = "evaluation/test_metrics.csv"
"""The tidy test metrics logged with every training run."""
FAIRNESS_FLAGS_TAG = "fairness_open_flags"
"""Run tag holding the JSON list of the fairness flags that were open when the model was audited."""
PIP_REQUIREMENTS = ["lightgbm==4.7.0", "numpy", "pandas", "mlflow==3.17.2"]


# ----------------------------------------------------------------------------- the pyfunc


class CalibratedLightGBM(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapping a LightGBM booster and its calibrator.

    ``predict`` returns calibrated probabilities. After loading, the underlying
    :class:`RiskModel` (booster, feature names, calibrator) is ``risk_model``, so
    worklists can compute ``pred_contrib`` reasons from the same booster.
    """

    def __init__(self) -> None:
        self.risk_model: RiskModel | None = None

    def load_context(self, context: Any) -> None:
        """Rebuild the RiskModel from the logged booster text and calibrator JSON."""
        meta = json.loads(Path(context.artifacts["meta"]).read_text(encoding="utf-8"))
        booster = lgb.Booster(model_file=context.artifacts["booster"])
        self.risk_model = RiskModel(
            outcome=meta["outcome"],
            booster=booster,
            feature_names=list(meta["feature_names"]),
            calibrator=Calibrator.from_dict(meta["calibrator"]),
            params=meta.get("params", {}),
            best_iteration=int(meta.get("best_iteration", 0)),
        )

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Calibrated probabilities for a feature matrix."""
        if self.risk_model is None:
            raise RuntimeError("model context not loaded")
        return self.risk_model.predict_proba(pd.DataFrame(model_input))


def model_signature(feature_names: Sequence[str]) -> ModelSignature:
    """Signature: every feature a double (missing allowed), output a 1-d double array."""
    inputs = Schema([ColSpec("double", name, required=False) for name in feature_names])
    outputs = Schema([TensorSpec(np.dtype("float64"), (-1,))])
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(model: RiskModel, medians: dict[str, float]) -> pd.DataFrame:
    """One made-up row of training-set medians (an aggregate, never a person's row)."""
    return pd.DataFrame([{name: float(medians.get(name, 0.0)) for name in model.feature_names}])


# ----------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def tracking(uri: str) -> Iterator[MlflowClient]:
    """Point MLflow (tracking and registry) at ``uri`` for the block, then restore exactly what was set.

    MLflow keeps both URIs in module globals and environment variables; restoring
    the *resolved* previous URIs would pin them for every later client, so the raw
    values are saved and put back (unset stays unset).
    """
    saved = (
        tracking_utils._tracking_uri,
        registry_utils._registry_uri,
        os.environ.get("MLFLOW_TRACKING_URI"),
        os.environ.get("MLFLOW_REGISTRY_URI"),
    )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved[0], saved[1]
        for name, value in (("MLFLOW_TRACKING_URI", saved[2]), ("MLFLOW_REGISTRY_URI", saved[3])):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def git_commit(folder: Path | None = None) -> str:
    """The checkout's commit hash, or ``unknown`` outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def experiment_name(settings: ModelSettings, outcome: str) -> str:
    """The MLflow experiment of an outcome: ``<prefix>/<outcome>``."""
    return f"{settings.mlflow.experiment_prefix}/{outcome}"


def ensure_experiment(client: MlflowClient, name: str, artifact_dir: Path) -> str:
    """The experiment's ID, creating it with artifacts under ``artifact_dir`` if new."""
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = (Path(artifact_dir) / name.replace("/", "_")).resolve()
    location.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(name, artifact_location=location.as_uri())


def metric_key(model: str, metric: str) -> str:
    """MLflow metric name: ``test_<metric>`` for LightGBM, ``test_<model>_<metric>`` otherwise."""
    return f"test_{metric}" if model == LIGHTGBM else f"test_{model}_{metric}"


def metrics_for_mlflow(table: pd.DataFrame) -> dict[str, float]:
    """Flatten a tidy metric table into MLflow metrics with ``_ci_low`` / ``_ci_high``."""
    out: dict[str, float] = {}
    for row in table.itertuples(index=False):
        model = getattr(row, "model", LIGHTGBM)
        key = metric_key(model, row.metric)
        for suffix, value in (("", row.value), ("_ci_low", row.ci_low), ("_ci_high", row.ci_high)):
            if value is not None and np.isfinite(value):
                out[key + suffix] = float(value)
    return out


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


@dataclass(frozen=True)
class Registration:
    """Where a training run and its model version live.

    Attributes:
        outcome: The outcome modelled.
        model_name: Registered model name.
        version: Registered model version (a string, as MLflow returns it).
        run_id: The MLflow run.
        experiment_id: The MLflow experiment.
        tracking_uri: The tracking URI used.
    """

    outcome: str
    model_name: str
    version: str
    run_id: str
    experiment_id: str
    tracking_uri: str


# ----------------------------------------------------------------------------- logging


def log_training_run(
    result: TrainingResult,
    settings: ModelSettings,
    tracking_uri: str,
    artifact_dir: Path,
    *,
    feature_dictionary: pd.DataFrame | None = None,
    extract_snapshot_hash: str = "unknown",
    settings_hash: str = "unknown",
    validation_warnings: Sequence[str] = (),
    figures: Mapping[str, Figure] | None = None,
    register: bool = True,
) -> Registration:
    """Log one outcome's training run to MLflow and register the model as ``challenger``.

    Args:
        result: The output of :func:`riskstrat.models.training.train_outcome`.
        settings: Model settings.
        tracking_uri: MLflow tracking (and registry) URI.
        artifact_dir: Folder for the experiment's artifacts (new experiments only).
        feature_dictionary: The feature dictionary (name, description, ...), logged as CSV and JSON.
        extract_snapshot_hash: Hash of the extract the features came from.
        settings_hash: Hash of every setting of the run.
        validation_warnings: Data-validation warnings to record with the run.
        figures: Evaluation plots by file name, logged under ``plots/``
            (:func:`riskstrat.evaluation.training_figures.training_figures`; the caller closes them).
        register: Register the model and set the ``challenger`` alias.

    Returns:
        The run and the registered model version.
    """
    outcome = result.outcome
    model_name = settings.mlflow.registered_models[outcome]
    with tracking(tracking_uri) as client:
        experiment_id = ensure_experiment(client, experiment_name(settings, outcome), artifact_dir)
        with (
            mlflow.start_run(experiment_id=experiment_id, run_name=f"{outcome}-train") as run,
            tempfile.TemporaryDirectory() as tmp,
        ):
            folder = Path(tmp)
            params = {**result.summary, **{f"lgbm_{k}": v for k, v in result.model.params.items()}}
            params.update(
                {
                    "calibration_setting": settings.calibration.method,
                    "n_boot": settings.evaluation.n_boot,
                    "capacity_share": settings.evaluation.capacity_share,
                    "split_fractions": "/".join(
                        str(x) for x in (settings.split.train, settings.split.validation, settings.split.test)
                    ),
                    "tuning_enabled": settings.tuning.enabled,
                }
            )
            mlflow.log_params({k: _short(v) for k, v in params.items()})
            mlflow.log_metrics(metrics_for_mlflow(result.metrics))
            for row in result.calibration.scores.itertuples(index=False):
                mlflow.log_metric(f"validation_log_loss_{row.method}", float(row.log_loss))
                mlflow.log_metric(f"validation_brier_{row.method}", float(row.brier))
            for key, value in result.summary.items():
                if key.startswith("caseload_share_"):
                    mlflow.log_metric(key, float(value))
            mlflow.set_tags(
                {
                    "outcome": outcome,
                    "extract_snapshot_hash": extract_snapshot_hash,
                    "settings_hash": settings_hash,
                    "model_settings_hash": settings.fingerprint(),
                    "git_commit": git_commit(),
                    "caseload_treatment": settings.caseload.treatment,
                    "calibration_method": result.model.calibrator.method,
                    "validation_warnings": str(len(validation_warnings)),
                }
            )
            # Aggregate tables only.
            result.metrics.to_csv(folder / "test_metrics.csv", index=False)
            result.calibration.scores.to_csv(folder / "calibration_choice.csv", index=False)
            result.calibration.reliability_before.to_csv(
                folder / "reliability_validation_before.csv", index=False
            )
            result.calibration.reliability_after.to_csv(
                folder / "reliability_validation_after.csv", index=False
            )
            result.reliability_test["before"].to_csv(folder / "reliability_test_before.csv", index=False)
            result.reliability_test["after"].to_csv(folder / "reliability_test_after.csv", index=False)
            (folder / "run_summary.json").write_text(json.dumps(result.summary, indent=2, default=str))
            (folder / "validation_warnings.json").write_text(json.dumps(list(validation_warnings), indent=2))
            if feature_dictionary is not None:
                feature_dictionary.to_csv(folder / "feature_dictionary.csv", index=False)
                (folder / "feature_dictionary.json").write_text(
                    feature_dictionary.to_json(orient="records", indent=2, default_handler=str)
                )
            mlflow.log_artifacts(str(folder), artifact_path="evaluation")
            for name, figure in (figures or {}).items():
                mlflow.log_figure(figure, f"plots/{name}")
            model_info = _log_model(result, folder, model_name if register else None)
            run_id = run.info.run_id
        version = ""
        if register:
            version = str(model_info.registered_model_version)
            client.set_registered_model_alias(model_name, CHALLENGER, version)
            client.set_model_version_tag(model_name, version, "outcome", outcome)
            client.set_model_version_tag(model_name, version, "run_id", run_id)
    return Registration(outcome, model_name, version, run_id, experiment_id, tracking_uri)


def _log_model(result: TrainingResult, folder: Path, registered_name: str | None) -> Any:
    model = result.model
    booster_path = folder / "booster.txt"
    model.booster.save_model(str(booster_path))
    meta_path = folder / "risk_model.json"
    meta_path.write_text(
        json.dumps(
            {
                "outcome": model.outcome,
                "feature_names": model.feature_names,
                "calibrator": model.calibrator.to_dict(),
                "params": model.params,
                "best_iteration": model.best_iteration,
            },
            default=str,
        )
    )
    return mlflow.pyfunc.log_model(
        name=MODEL_ARTIFACT,
        python_model=CalibratedLightGBM(),
        artifacts={"booster": str(booster_path), "meta": str(meta_path)},
        signature=model_signature(model.feature_names),
        input_example=input_example(model, result.feature_medians),
        registered_model_name=registered_name,
        pip_requirements=PIP_REQUIREMENTS,
    )


def load_model(uri: str, tracking_uri: str) -> RiskModel:
    """Load a logged or registered model (``models:/<name>@<alias>``, ``runs:/...``) as a RiskModel."""
    with tracking(tracking_uri):
        loaded = mlflow.pyfunc.load_model(uri)
    wrapper = loaded.unwrap_python_model()
    if not isinstance(wrapper, CalibratedLightGBM) or wrapper.risk_model is None:
        raise TypeError(f"{uri} is not a riskstrat calibrated LightGBM model")
    return wrapper.risk_model


def _alias_missing(error: MlflowException) -> bool:
    """True when ``error`` says the model or its alias does not exist (not any other registry failure)."""
    if error.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    message = str(error.message).lower()
    return error.error_code == "INVALID_PARAMETER_VALUE" and "alias" in message and "not found" in message


def alias_version(model_name: str, alias: str, tracking_uri: str) -> str | None:
    """The version behind ``alias``, or None when the model or the alias is not there.

    Raises:
        MlflowException: On any other registry error (an unreadable store, say).
    """
    with tracking(tracking_uri) as client:
        try:
            return str(client.get_model_version_by_alias(model_name, alias).version)
        except MlflowException as exc:
            if _alias_missing(exc):
                return None
            raise


def registered_version(
    outcome: str, model_name: str, alias: str, tracking_uri: str
) -> tuple[Registration, Run]:
    """The registration and MLflow run of ``outcome``'s model behind ``alias``.

    Args:
        outcome: The outcome modelled.
        model_name: Its registered model name (``model.mlflow.registered_models``).
        alias: ``champion`` or ``challenger``.
        tracking_uri: MLflow tracking (and registry) URI.

    Returns:
        ``(registration, run)``; the run holds the tags written at training.

    Raises:
        RiskstratError: If no version carries the alias (or no model has the name).
        MlflowException: On any other registry error, unchanged.
    """
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if not _alias_missing(exc):
            raise
        raise RiskstratError(
            f"no {alias} model registered for {model_name}", hint="Run `riskstrat train` first."
        ) from None
    run = client.get_run(version.run_id)
    registration = Registration(
        outcome, model_name, str(version.version), version.run_id, run.info.experiment_id, tracking_uri
    )
    return registration, run


def alias_label(model_name: str, alias: str, tracking_uri: str) -> str:
    """``"<name> v<version>"`` of the version behind ``alias``, for list titles and manifests."""
    return f"{model_name} v{alias_version(model_name, alias, tracking_uri)}"


def logged_test_metrics(registration: Registration) -> pd.DataFrame:
    """The tidy test metrics logged with a model's training run."""
    client = MlflowClient(tracking_uri=registration.tracking_uri)
    return pd.read_csv(client.download_artifacts(registration.run_id, TEST_METRICS_ARTIFACT))


def tag_run(registration: Registration, key: str, value: str) -> None:
    """Set a tag on a model's training run."""
    MlflowClient(tracking_uri=registration.tracking_uri).set_tag(registration.run_id, key, value)


def open_fairness_flags(run: Run) -> list[str]:
    """The fairness flags recorded as open on a training run (:data:`FAIRNESS_FLAGS_TAG`)."""
    return json.loads(run.data.tags.get(FAIRNESS_FLAGS_TAG, "[]"))
