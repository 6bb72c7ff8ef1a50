"""Settings of model training, evaluation, MLflow tracking and promotion (``configs/model.yaml``).

A wrong key or value stops the run at start-up with the file, the key, the
value and what was expected.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from riskstrat.catalog import MLFLOW_ARTIFACTS, MLFLOW_DB
from riskstrat.features.outcomes import outcome, outcome_names
from riskstrat.settings import Settings


def _registered_outcome(name: str) -> str:
    if name not in outcome_names():
        raise ValueError(f"unknown outcome {name!r}; expected one of {', '.join(outcome_names())}")
    return name


class LightGBMParams(Settings):
    """LightGBM hyperparameters of one outcome's model."""

    learning_rate: float = Field(0.05, gt=0, le=1, description="Shrinkage applied to each tree.")
    num_leaves: int = Field(31, ge=2, description="Largest number of leaves per tree.")
    min_child_samples: int = Field(
        100,
        ge=1,
        description="Fewest training rows in a leaf (guards against fitting to a handful of people).",
    )
    feature_fraction: float = Field(0.8, gt=0, le=1, description="Share of features each tree may use.")
    bagging_fraction: float = Field(0.8, gt=0, le=1, description="Share of rows each bagging round uses.")
    bagging_freq: int = Field(1, ge=0, description="Re-draw the bagged rows every this many trees; 0 = off.")
    lambda_l2: float = Field(1.0, ge=0, description="L2 penalty on leaf values.")
    n_estimators: int = Field(
        2000, ge=1, description="Most boosting rounds; early stopping usually ends training sooner."
    )
    early_stopping_rounds: int = Field(
        50, ge=1, description="Stop when validation log-loss has not improved for this many rounds."
    )
    early_stopping_on: Literal["validation", "train_cv", "auto"] = Field(
        "validation",
        description=(
            "Rows whose log-loss chooses the number of boosting rounds: validation (the validation as-of "
            "date), train_cv (5-fold cross-validation on the training rows, folds by person, then one fit "
            "on every training row) for a rare outcome whose validation rows hold too few events, or auto: "
            "validation when it holds at least min_validation_events events (and as many non-events), "
            "else train_cv."
        ),
    )
    min_validation_events: int = Field(
        100,
        ge=1,
        description=(
            "With early_stopping_on: auto, the fewest validation events for the validation rows to choose "
            "the rounds; with fewer, 5-fold cross-validation on the training rows does (six fits, not one)."
        ),
    )


def _default_lightgbm() -> dict[str, LightGBMParams]:
    return {name: LightGBMParams() for name in outcome_names()}


class TuningSettings(Settings):
    """Optional hyperparameter search on the validation rows (off by default)."""

    enabled: bool = Field(False, description="Search hyperparameters before the final fit.")
    trials: int = Field(20, ge=1, description="Random-search trials (each one a LightGBM fit) when enabled.")


class CalibrationSettings(Settings):
    """How raw LightGBM probabilities are calibrated on the validation rows."""

    method: Literal["auto", "isotonic", "platt"] = Field(
        "auto",
        description=(
            "isotonic, platt, or auto: judged by cross-fitted log-loss on the validation rows, the raw "
            "probabilities are kept unless Platt scaling beats them by more than one standard error, and "
            "isotonic must beat the method kept so far in the same way."
        ),
    )
    folds: int = Field(
        5, ge=2, le=20, description="Cross-fitting folds on the validation rows used to compare methods."
    )
    min_events: int = Field(
        100,
        ge=0,
        description=(
            "Fewest outcome events (and non-events) the validation rows need before the raw probabilities "
            "are recalibrated; with fewer, LightGBM's own probabilities are used (calibrator identity)."
        ),
    )
    reliability_bins: int = Field(
        10, ge=2, le=100, description="Equal-count bins of predicted risk in reliability tables and plots."
    )


class AsOfSettings(Settings):
    """Which as-of dates of the stacked training table feed which part of the temporal design."""

    train: tuple[date, ...] = Field(
        (date(2022, 12, 31), date(2023, 6, 30)),
        min_length=1,
        description="As-of dates whose rows train the model.",
    )
    validation: date = Field(
        date(2023, 12, 31), description="As-of date for early stopping and choosing the calibration."
    )
    test: date = Field(
        date(2024, 12, 31),
        description="Latest as-of date whose outcome window is complete; every reported metric uses it.",
    )

    @model_validator(mode="after")
    def _in_time_order(self) -> AsOfSettings:
        if max(self.train) >= self.validation:
            raise ValueError("every train date must be before the validation date")
        if self.validation >= self.test:
            raise ValueError("the validation date must be before the test date")
        return self


class SplitSettings(Settings):
    """Person-level split: each person belongs to exactly one of train, validation and test."""

    train: float = Field(0.6, gt=0, lt=1, description="Share of persons whose rows may be used for training.")
    validation: float = Field(0.2, gt=0, lt=1, description="Share of persons used for validation.")
    test: float = Field(0.2, gt=0, lt=1, description="Share of persons used for testing.")
    salt: str = Field(
        "riskstrat-split-v1",
        min_length=1,
        description="Text mixed into the person hash; changing it re-draws the split.",
    )

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitSettings:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"train + validation + test must add up to 1, found {total:g}")
        return self


class CaseloadSettings(Settings):
    """How training treats people on an MDT caseload during the outcome window (performative effects)."""

    treatment: Literal["keep", "exclude", "flag"] = Field(
        "flag",
        description=(
            "keep: use every row and ignore caseload; exclude: drop train and validation rows of people "
            "on a caseload in the outcome window (test rows are kept so evaluation covers everyone); "
            "flag: keep every row and record, per split, the share of rows on a caseload in the run."
        ),
    )
    column: str = Field(
        "on_caseload_in_window",
        min_length=1,
        description="0/1 column of the training table: on an MDT caseload at any time in (T, T + horizon].",
    )


class TrainingSampleSettings(Settings):
    """A person-time sample of the training rows, for a training table too large to fit (off by default)."""

    max_rows: int | None = Field(
        None,
        ge=10_000,
        description=(
            "Most training rows (person-time rows at the train as-of dates, train persons) the models are "
            "fitted on: a seeded simple random sample when there are more; empty = every row. The "
            "validation and test rows are never sampled, so calibration and every reported metric are "
            "unchanged in kind. Its measured cost in test AUROC: docs/performance.md."
        ),
    )
    seed: int = Field(20231231, description="Seed of the sample (the same rows on every run).")


class MlflowSettings(Settings):
    """Where runs and models are tracked."""

    tracking_uri: str = Field(
        "",
        description="MLflow tracking URI; empty = sqlite:///<output_dir>/<tracking_db>.",
    )
    tracking_db: str = Field(
        MLFLOW_DB,
        min_length=1,
        description="SQLite file for the default tracking URI, relative to output_dir.",
    )
    artifact_dir: str = Field(
        MLFLOW_ARTIFACTS,
        min_length=1,
        description="Folder for run artifacts (plots, models), relative to output_dir unless absolute.",
    )
    experiment_prefix: str = Field(
        "riskstrat", min_length=1, description="Experiments are named <prefix>/<outcome>."
    )
    registered_models: dict[str, str] = Field(
        default_factory=lambda: {name: outcome(name).registered_model for name in outcome_names()},
        description="Registered model name of each outcome; an outcome not named keeps its default name.",
    )

    @field_validator("registered_models")
    @classmethod
    def _every_outcome_named(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            _registered_outcome(name)
        # Every registered outcome has a name: its spec's default unless the file gives one.
        return {name: value.get(name, outcome(name).registered_model) for name in outcome_names()}

    def resolved_tracking_uri(self, output_dir: Path) -> str:
        """The tracking URI, with the default SQLite file under ``output_dir``."""
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(Path(output_dir) / self.tracking_db).resolve()}"

    def resolved_artifact_dir(self, output_dir: Path) -> Path:
        """The artifact folder, resolved against ``output_dir`` when relative."""
        folder = Path(self.artifact_dir)
        return folder if folder.is_absolute() else (Path(output_dir) / folder).resolve()


class PromotionSettings(Settings):
    """Gates a challenger must pass to become champion.

    The calibration gates judge the evidence, not the point estimate: a test set's
    observed/expected ratio (O/E) moves by chance (about +/-0.12 with 200 events), so a
    point estimate compared with a narrow range refuses sound models and passes unsound
    ones by luck. With ``calibration_evidence: refuse_on_evidence`` (the default) a model
    is refused only when the whole 95% interval lies outside the bounds; with
    ``pass_on_evidence`` it passes only when the whole interval lies inside them. Each
    reason states the rule's two error rates at the test set's precision.
    """

    auroc_tolerance: float = Field(
        0.005, ge=0, le=0.5, description="Challenger AUROC may be at most this much below the champion's."
    )
    calibration_slope_bounds: tuple[float, float] = Field(
        (0.9, 1.1),
        description="Acceptable [low, high] calibration slope of the challenger on the test rows.",
    )
    oe_bounds: tuple[float, float] = Field(
        (0.9, 1.1),
        description="Acceptable [low, high] observed/expected ratio of the challenger on the test rows.",
    )
    calibration_evidence: Literal["refuse_on_evidence", "pass_on_evidence"] = Field(
        "refuse_on_evidence",
        description=(
            "How the calibration gates judge the 95% interval: refuse_on_evidence refuses only when the "
            "whole interval lies outside the bounds (a model inside them is refused at most 2.5% of the "
            "time; a miscalibrated one may pass when there are too few events to show it); "
            "pass_on_evidence passes only when the whole interval lies inside them (a model outside "
            "them passes at most 2.5% of the time; a sound one is refused when there are too few events "
            "to show it is sound)."
        ),
    )
    oe_material: tuple[float, float] = Field(
        (0.8, 1.25),
        description=(
            "True observed/expected ratios [low, high] the board calls materially miscalibrated; each "
            "reason states the chance the rule passes a model this miscalibrated (a value inside oe_bounds is not quoted)."
        ),
    )
    slope_material: tuple[float, float] = Field(
        (0.8, 1.25),
        description=(
            "True calibration slopes [low, high] the board calls materially miscalibrated; each reason "
            "states the chance the rule passes a model with such a slope (a value inside the bounds is not quoted)."
        ),
    )
    auto_promote: bool = Field(
        True, description="The retrain flow moves the champion alias itself when every gate passes."
    )

    @field_validator("calibration_slope_bounds", "oe_bounds", "oe_material", "slope_material")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] <= value[1]:
            raise ValueError("expected [low, high] with 0 < low <= high")
        return value


class EvaluationSettings(Settings):
    """Metrics on the test rows."""

    n_boot: int = Field(200, ge=10, description="Bootstrap resamples for the 95% intervals.")
    seed: int = Field(20240101, description="Seed of the bootstrap resamples (shared by every model).")
    top_fractions: tuple[float, ...] = Field(
        (0.01, 0.02, 0.05),
        min_length=1,
        description="Shares of the population at the top of the ranking for PPV and sensitivity.",
    )
    capacity_share: float = Field(
        0.005,
        gt=0,
        lt=1,
        description=(
            "Worklist capacity as a share of the population for the 'at capacity' metrics; the fairness "
            "audit back-tests each MDT's list at its own capacity (configs/mdts.yaml) and uses this only without MDTs."
        ),
    )

    @field_validator("top_fractions")
    @classmethod
    def _fractions(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < f < 1 for f in value):
            raise ValueError("every fraction must be between 0 and 1")
        return tuple(sorted(set(value)))


class ModelSettings(Settings):
    """Model training, calibration, evaluation, tracking and promotion (``configs/model.yaml``)."""

    outcomes: tuple[str, ...] = Field(
        default_factory=outcome_names,
        min_length=1,
        description="Outcomes to train a model for (registered outcomes: riskstrat.features.outcomes).",
    )
    seed: int = Field(42, description="Seed of LightGBM and of everything random in training.")
    num_threads: int = Field(2, ge=1, description="Threads LightGBM may use.")
    lightgbm: dict[str, LightGBMParams] = Field(
        default_factory=_default_lightgbm, description="LightGBM hyperparameters per outcome."
    )
    tuning: TuningSettings = Field(
        default_factory=TuningSettings, description="Optional hyperparameter search."
    )
    calibration: CalibrationSettings = Field(
        default_factory=CalibrationSettings, description="Calibration on validation rows."
    )
    as_of: AsOfSettings = Field(
        default_factory=AsOfSettings, description="As-of dates of the temporal design."
    )
    split: SplitSettings = Field(default_factory=SplitSettings, description="Person-level split fractions.")
    caseload: CaseloadSettings = Field(
        default_factory=CaseloadSettings, description="Treatment of people on an MDT caseload."
    )
    training_sample: TrainingSampleSettings = Field(
        default_factory=TrainingSampleSettings,
        description="Optional person-time sample of the training rows (memory bound for the largest ICBs).",
    )
    logistic_baseline_max_rows: int | None = Field(
        500_000,
        ge=10_000,
        description=(
            "Most training rows the logistic-regression baseline (the promotion comparator) is fitted "
            "on: a seeded simple random sample when there are more; empty = every row. Its pipeline "
            "holds about five float64 copies of the rows it fits (3.7 GiB at 1,000,000 people); a "
            "comparator of about 120 coefficients is as well determined by 500,000 rows as by millions."
        ),
    )
    unknown_social_care_share: float = Field(
        0.05,
        ge=0.0,
        le=0.5,
        description=(
            "Share of training rows (seeded, never validation or test rows) whose social care features "
            "are set to not known (social_care_known 0, the others empty) so the model learns what to "
            "predict when a local authority's return is missing; 0 = off."
        ),
    )
    evaluation: EvaluationSettings = Field(
        default_factory=EvaluationSettings, description="Metrics and bootstrap intervals."
    )
    mlflow: MlflowSettings = Field(
        default_factory=MlflowSettings, description="MLflow tracking and registry."
    )
    promotion: PromotionSettings = Field(
        default_factory=PromotionSettings, description="Gates for moving the champion alias."
    )

    @field_validator("lightgbm")
    @classmethod
    def _known_outcomes(cls, value: dict[str, LightGBMParams]) -> dict[str, LightGBMParams]:
        for name in value:
            _registered_outcome(name)
        return value

    @field_validator("outcomes")
    @classmethod
    def _registered_outcomes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            _registered_outcome(name)
        return value

    def params_for(self, outcome: str) -> LightGBMParams:
        """LightGBM hyperparameters of ``outcome`` (the defaults when the file does not list it)."""
        return self.lightgbm.get(outcome, LightGBMParams())

    def fingerprint(self) -> str:
        """A short hash of every setting in this file."""
        payload = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
