"""Training: one calibrated LightGBM model per outcome with a temporal, person-disjoint design.

Design (``configs/model.yaml``):
    - train rows: the earlier as-of dates (``as_of.train``), persons in the train group;
    - validation rows: ``as_of.validation``, persons in the validation group; used for
      early stopping and to fit and choose the calibration;
    - test rows: ``as_of.test`` (the latest date whose outcome window is complete),
      persons in the test group; every reported metric uses them only.

Each person falls in exactly one group by a salted hash of ``person_id``, so no
person contributes to two of train, validation and test, and the split is the
same on every run and machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from riskstrat.errors import RiskstratError
from riskstrat.features.outcomes import outcome as outcome_spec
from riskstrat.models.baselines import (
    LIGHTGBM,
    LOGISTIC,
    ORACLE,
    PRIOR_UTILISATION,
    fit_logistic,
    logistic_score,
    oracle_score,
    prior_utilisation_score,
)
from riskstrat.models.calibration import CalibrationChoice, Calibrator, choose_calibration, reliability_table
from riskstrat.models.metrics import compare_models
from riskstrat.models.settings import CaseloadSettings, LightGBMParams, ModelSettings, SplitSettings

KEY_COLUMNS = ("person_id", "as_of")
PARTS = ("train", "validation", "test")


# ----------------------------------------------------------------------------- the model


@dataclass
class RiskModel:
    """A fitted LightGBM booster plus its calibrator: the unit that is logged, registered and scored.

    Attributes:
        outcome: What it predicts (``emergency_admission`` or ``frequent_attendance``).
        booster: The LightGBM booster (raw scores are log-odds).
        feature_names: Input columns, in the booster's order.
        calibrator: Maps raw probabilities to calibrated ones.
        params: LightGBM parameters used.
        best_iteration: Boosting rounds kept after early stopping.
    """

    outcome: str
    booster: lgb.Booster
    feature_names: list[str]
    calibrator: Calibrator
    params: dict[str, Any] = field(default_factory=dict)
    best_iteration: int = 0

    def matrix(self, features: pd.DataFrame) -> np.ndarray:
        """The model's input matrix (float64, columns in training order).

        Raises:
            RiskstratError: If a feature column is missing.
        """
        missing = [c for c in self.feature_names if c not in features.columns]
        if missing:
            raise RiskstratError(
                f"the feature matrix lacks {len(missing)} column(s) the {self.outcome} model needs, "
                f"e.g. {', '.join(missing[:5])}",
                hint="Score with features built by the same feature settings as the model was trained on.",
            )
        return features[self.feature_names].to_numpy(dtype=np.float64, na_value=np.nan)

    def raw_score(self, features: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds (the scale SHAP contributions add up to)."""
        return self.booster.predict(self.matrix(features), raw_score=True)

    def raw_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Uncalibrated LightGBM probabilities."""
        return self.booster.predict(self.matrix(features))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities of the outcome."""
        return self.calibrator.transform(self.raw_proba(features))


# ----------------------------------------------------------------------------- splits


def person_groups(person_id: pd.Series, split: SplitSettings) -> pd.Series:
    """Assign each person to train, validation or test by a salted hash of the ID.

    Args:
        person_id: Pseudonymised person IDs (repeats allowed).
        split: Fractions and salt.

    Returns:
        A string series aligned with ``person_id``: ``train``, ``validation`` or ``test``.
    """
    hashed = pd.util.hash_pandas_object(
        person_id.astype(str), index=False, hash_key=(split.salt * 16)[:16], categorize=True
    ).to_numpy()
    u = (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    groups = np.where(
        u < split.train, "train", np.where(u < split.train + split.validation, "validation", "test")
    )
    return pd.Series(groups, index=person_id.index, name="split")


def _as_of_dates(table: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(table["as_of"]).dt.normalize()


@dataclass(frozen=True)
class TemporalSplit:
    """Row positions of the train, validation and test parts of a stacked training table."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def part(self, name: str) -> np.ndarray:
        """Row positions of ``name`` (train, validation or test)."""
        return getattr(self, name)


def temporal_split(table: pd.DataFrame, settings: ModelSettings) -> TemporalSplit:
    """Split a stacked training table by as-of date and person.

    Args:
        table: Stacked rows with ``person_id`` and ``as_of``.
        settings: Model settings (as-of dates and split fractions).

    Returns:
        Row positions of each part.

    Raises:
        RiskstratError: If a part is empty (e.g. an as-of date is absent).
    """
    as_of = _as_of_dates(table)
    group = person_groups(table["person_id"], settings.split).to_numpy()
    wanted = {
        "train": as_of.isin([pd.Timestamp(d) for d in settings.as_of.train]).to_numpy(),
        "validation": (as_of == pd.Timestamp(settings.as_of.validation)).to_numpy(),
        "test": (as_of == pd.Timestamp(settings.as_of.test)).to_numpy(),
    }
    positions = {name: np.flatnonzero(wanted[name] & (group == name)) for name in PARTS}
    for name, rows in positions.items():
        if len(rows) == 0:
            dates = settings.as_of.train if name == "train" else [getattr(settings.as_of, name)]
            found = sorted({d.date().isoformat() for d in as_of.unique()})
            raise RiskstratError(
                f"no {name} rows: the training table has no rows at as-of date(s) "
                f"{', '.join(d.isoformat() for d in dates)} (found {', '.join(found) or 'none'})",
                hint="Build features at every as-of date listed under as_of in configs/model.yaml.",
            )
    return TemporalSplit(**positions)


def apply_caseload_treatment(
    table: pd.DataFrame, split: TemporalSplit, caseload: CaseloadSettings
) -> tuple[TemporalSplit, dict[str, Any]]:
    """Apply the caseload treatment (keep, exclude or flag) and describe it for the run.

    People on an MDT caseload during the outcome window may have had the outcome
    prevented by that care; a model trained on them learns that such people are
    at lower risk than they were (Liley et al.). ``exclude`` drops their train and
    validation rows (test rows stay, so the evaluation covers the whole population);
    ``flag`` keeps every row and records the share on a caseload per part; ``keep``
    uses every row and records nothing beyond the choice.

    Args:
        table: The stacked training table.
        split: Row positions of each part.
        caseload: The caseload settings.

    Returns:
        The (possibly reduced) split, and a record of the treatment for MLflow.

    Raises:
        RiskstratError: If ``exclude`` is asked for but the caseload column is absent.
    """
    record: dict[str, Any] = {"caseload_treatment": caseload.treatment, "caseload_column": caseload.column}
    has_column = caseload.column in table.columns
    if caseload.treatment == "keep":
        return split, record
    if not has_column:
        if caseload.treatment == "exclude":
            raise RiskstratError(
                f"caseload treatment 'exclude' needs the column {caseload.column} in the training table",
                hint="Build features with the caseload outcome-window flag, or set caseload.treatment: flag.",
            )
        record["caseload_column_present"] = False
        return split, record
    on_caseload = table[caseload.column].fillna(0).astype(int).to_numpy() == 1
    record["caseload_column_present"] = True
    for name in PARTS:
        rows = split.part(name)
        record[f"caseload_share_{name}"] = float(on_caseload[rows].mean()) if len(rows) else float("nan")
    if caseload.treatment == "exclude":
        kept = {name: split.part(name)[~on_caseload[split.part(name)]] for name in ("train", "validation")}
        record["caseload_rows_excluded"] = int(
            sum(len(split.part(n)) - len(kept[n]) for n in ("train", "validation"))
        )
        split = TemporalSplit(train=kept["train"], validation=kept["validation"], test=split.test)
    return split, record


# ----------------------------------------------------------------------------- checks


def check_training_table(table: pd.DataFrame, feature_names: Sequence[str], outcome: str) -> None:
    """Fail early, naming the column, when the training table cannot be used.

    Raises:
        RiskstratError: On missing keys, features or outcome, non-numeric features,
            or an outcome that is not 0/1.
    """
    missing = [c for c in (*KEY_COLUMNS, outcome, *feature_names) if c not in table.columns]
    if missing:
        raise RiskstratError(
            f"the training table lacks {len(missing)} column(s): {', '.join(missing[:8])}",
            hint="Build the training table with the features stage; pass the feature dictionary's names.",
        )
    if not feature_names:
        raise RiskstratError("no feature columns were given", hint="Pass the feature dictionary's names.")
    bad = [c for c in feature_names if not pd.api.types.is_numeric_dtype(table[c].dtype)]
    if bad:
        raise RiskstratError(
            f"feature column(s) {', '.join(bad[:5])} are not numeric "
            f"(e.g. {bad[0]} is {table[bad[0]].dtype})",
            hint="Model inputs must be numbers; keep text columns as audit columns, not features.",
        )
    values = table[outcome]
    bad_rows = ~values.isin([0, 1])
    if bad_rows.any():
        raise RiskstratError(
            f"outcome column {outcome} must be 0/1; {int(bad_rows.sum()):,} rows are not",
            details=f"e.g. {values[bad_rows].iloc[0]!r}",
            hint="Outcomes come from the features stage as 0/1 integers.",
        )


# ----------------------------------------------------------------------------- fitting


def lightgbm_params(params: LightGBMParams, settings: ModelSettings) -> dict[str, Any]:
    """LightGBM's parameter dict for a binary outcome (deterministic, fixed threads and seed)."""
    return {
        "objective": "binary",
        "metric": "binary_logloss",
        "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves,
        "min_child_samples": params.min_child_samples,
        "feature_fraction": params.feature_fraction,
        "bagging_fraction": params.bagging_fraction,
        "bagging_freq": params.bagging_freq,
        "lambda_l2": params.lambda_l2,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": settings.num_threads,
        "seed": settings.seed,
        "verbose": -1,
    }


CV_FOLDS = 5
"""Folds (by person) of ``early_stopping_on: train_cv``."""


def cv_rounds(
    x_train: np.ndarray,
    y_train: np.ndarray,
    person_id: pd.Series,
    feature_names: list[str],
    params: dict[str, Any],
    n_estimators: int,
    early_stopping_rounds: int,
) -> int:
    """Boosting rounds with the lowest mean held-out log-loss in person-grouped K-fold CV on training rows.

    Each person's rows fall in one fold (a hash of the ID), so no person is both fitted and judged.
    """
    fold = pd.util.hash_pandas_object(person_id.astype(str), index=False).to_numpy() % np.uint64(CV_FOLDS)
    folds = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(CV_FOLDS)]
    result = lgb.cv(
        params,
        lgb.Dataset(x_train, label=y_train, feature_name=feature_names, free_raw_data=True),
        num_boost_round=n_estimators,
        folds=folds,
        callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
    )
    # With early stopping, lgb.cv keeps the history up to the best round only.
    return len(result["valid binary_logloss-mean"])


def early_stopping_rows(params: LightGBMParams, y_valid: np.ndarray) -> str:
    """Which rows choose the boosting rounds: ``validation`` or ``train_cv``.

    ``auto`` picks validation when it holds ``min_validation_events`` events and as many
    non-events: a handful of events cannot judge the rounds, but cross-validation costs
    six fits where validation costs one, so it is kept for populations too small for validation.
    """
    if params.early_stopping_on != "auto":
        return params.early_stopping_on
    events = int(y_valid.sum())
    enough = min(events, len(y_valid) - events) >= params.min_validation_events
    return "validation" if enough else "train_cv"


def _fit_booster(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    feature_names: list[str],
    params: dict[str, Any],
    n_estimators: int,
    early_stopping_rounds: int,
) -> lgb.Booster:
    train_set = lgb.Dataset(x_train, label=y_train, feature_name=feature_names, free_raw_data=True)
    valid_set = lgb.Dataset(x_valid, label=y_valid, reference=train_set, free_raw_data=True)
    return lgb.train(
        params,
        train_set,
        num_boost_round=n_estimators,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
    )


_SEARCH_SPACE: dict[str, list[Any]] = {
    "learning_rate": [0.02, 0.05, 0.1],
    "num_leaves": [15, 31, 63, 127],
    "min_child_samples": [50, 100, 200, 400],
    "feature_fraction": [0.6, 0.8, 1.0],
    "lambda_l2": [0.0, 1.0, 5.0, 10.0],
}


def tune_params(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    feature_names: list[str],
    base: LightGBMParams,
    settings: ModelSettings,
) -> LightGBMParams:
    """Random search of a small grid, judged by validation log-loss at the early-stopping round.

    Args:
        x_train: Training matrix.
        y_train: Training outcomes.
        x_valid: Validation matrix.
        y_valid: Validation outcomes.
        feature_names: Column names.
        base: The configured parameters (the first trial).
        settings: Model settings (trials, seed).

    Returns:
        The best parameters found.
    """
    rng = np.random.default_rng(settings.seed)
    best, best_loss = base, np.inf
    for trial in range(settings.tuning.trials):
        candidate = base
        if trial > 0:
            changes = {key: values[rng.integers(len(values))] for key, values in _SEARCH_SPACE.items()}
            candidate = base.model_copy(update=changes)
        booster = _fit_booster(
            x_train,
            y_train,
            x_valid,
            y_valid,
            feature_names,
            lightgbm_params(candidate, settings),
            candidate.n_estimators,
            candidate.early_stopping_rounds,
        )
        loss = booster.best_score["validation"]["binary_logloss"]
        if loss < best_loss:
            best, best_loss = candidate, loss
    return best


def fit_risk_model(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    feature_names: Sequence[str],
    outcome: str,
    settings: ModelSettings,
) -> tuple[RiskModel, CalibrationChoice]:
    """Fit LightGBM on the train rows, early-stop and calibrate on the validation rows.

    Args:
        train: Training rows (features and outcome).
        validation: Validation rows.
        feature_names: Model input columns.
        outcome: Outcome column.
        settings: Model settings.

    Returns:
        The fitted model and the evidence for its calibration.
    """
    names = list(feature_names)
    x_train = train[names].to_numpy(dtype=np.float64, na_value=np.nan)
    x_valid = validation[names].to_numpy(dtype=np.float64, na_value=np.nan)
    y_train = train[outcome].to_numpy(dtype=np.int64)
    y_valid = validation[outcome].to_numpy(dtype=np.int64)
    chosen = settings.params_for(outcome)
    if settings.tuning.enabled:
        chosen = tune_params(x_train, y_train, x_valid, y_valid, names, chosen, settings)
    params = lightgbm_params(chosen, settings)
    stopping_on = early_stopping_rows(chosen, y_valid)
    if stopping_on == "train_cv":
        # Too few validation events to judge the rounds on: cross-validate on the training persons.
        rounds = cv_rounds(
            x_train,
            y_train,
            train["person_id"],
            names,
            params,
            chosen.n_estimators,
            chosen.early_stopping_rounds,
        )
        booster = lgb.train(
            params, lgb.Dataset(x_train, label=y_train, feature_name=names), num_boost_round=rounds
        )
        best_iteration = rounds
    else:
        booster = _fit_booster(
            x_train,
            y_train,
            x_valid,
            y_valid,
            names,
            params,
            chosen.n_estimators,
            chosen.early_stopping_rounds,
        )
        best_iteration = booster.best_iteration or booster.current_iteration()
    # Keep only the rounds early stopping chose, so every consumer (scoring, SHAP) sees one model.
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best_iteration))
    raw_valid = booster.predict(x_valid)
    choice = choose_calibration(
        raw_valid,
        y_valid,
        method=settings.calibration.method,
        folds=settings.calibration.folds,
        n_bins=settings.calibration.reliability_bins,
        seed=settings.seed,
        min_events=settings.calibration.min_events,
    )
    model = RiskModel(
        outcome=outcome,
        booster=booster,
        feature_names=names,
        calibrator=choice.calibrator,
        params={
            **params,
            "n_estimators": chosen.n_estimators,
            "early_stopping_rounds": chosen.early_stopping_rounds,
            "early_stopping_on": stopping_on,
        },
        best_iteration=int(best_iteration),
    )
    return model, choice


# ----------------------------------------------------------------------------- the whole job


@dataclass
class TrainingResult:
    """Everything one outcome's training produced, for evaluation, logging and promotion.

    Attributes:
        model: The calibrated LightGBM model.
        calibration: Evidence for the calibration choice (validation rows).
        logistic: The fitted logistic-regression baseline.
        metrics: Tidy metrics of every model on the test rows (model, metric, value,
            ci_low, ci_high, n, events).
        test_scores: Per-row test outcome and scores (``y``, ``lightgbm``,
            ``lightgbm_raw``, ``logistic_regression``, ``prior_utilisation``, maybe
            ``oracle``). Patient-level: keep in memory, never log.
        test_rows: Positions of the test rows in the training table.
        reliability_test: Reliability tables on the test rows: ``before`` (raw) and ``after``.
        summary: Counts and choices to log with the run (rows, persons, events per part,
            caseload treatment and shares, calibration method, as-of dates).
        feature_medians: Median of each feature over the training rows (an aggregate; the
            registered model's input example is built from it, never from a person's row).
    """

    model: RiskModel
    calibration: CalibrationChoice
    logistic: Any
    metrics: pd.DataFrame
    test_scores: pd.DataFrame
    test_rows: np.ndarray
    reliability_test: dict[str, pd.DataFrame]
    summary: dict[str, Any]
    feature_medians: dict[str, float] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        """The outcome modelled."""
        return self.model.outcome


def train_outcome(
    table: pd.DataFrame,
    feature_names: Sequence[str],
    outcome: str,
    settings: ModelSettings,
    truth: pd.DataFrame | None = None,
) -> TrainingResult:
    """Train, calibrate and evaluate one outcome's model against the baselines.

    Args:
        table: Stacked training table (keys, features, outcomes, audit columns).
        feature_names: Model input columns (e.g. the feature dictionary's names).
        outcome: ``emergency_admission`` or ``frequent_attendance``.
        settings: Model settings.
        truth: Optional synthetic truth (``person_id``, ``as_of``, ``p_<outcome>``) for the oracle.

    Returns:
        The trained model, baselines, test metrics and a summary for the run.
    """
    names = list(feature_names)
    check_training_table(table, names, outcome)
    split = temporal_split(table, settings)
    split, caseload_record = apply_caseload_treatment(table, split, settings.caseload)
    train = table.iloc[split.train]
    validation = table.iloc[split.validation]
    test = table.iloc[split.test]
    model, choice = fit_risk_model(train, validation, names, outcome, settings)
    logistic = fit_logistic(train, train[outcome].to_numpy(), names, seed=settings.seed)

    y_test = test[outcome].to_numpy(dtype=np.int64)
    raw_test = model.raw_proba(test)
    scores = {
        LIGHTGBM: model.calibrator.transform(raw_test),
        LOGISTIC: logistic_score(logistic, test, names),
        PRIOR_UTILISATION: prior_utilisation_score(test),
    }
    truth_column = outcome_spec(outcome).truth_column
    # An outcome the synthetic population does not simulate has no oracle: left out, not an error.
    if truth is not None and truth_column in truth.columns:
        scores[ORACLE] = oracle_score(test, truth, truth_column)
    metrics = compare_models(
        y_test,
        scores,
        ranking_only=[PRIOR_UTILISATION],
        top_fractions=settings.evaluation.top_fractions,
        capacity_share=settings.evaluation.capacity_share,
        n_boot=settings.evaluation.n_boot,
        seed=settings.evaluation.seed,
        reference=LIGHTGBM,
    )
    test_scores = pd.DataFrame({"y": y_test, **scores, "lightgbm_raw": raw_test})
    bins = settings.calibration.reliability_bins
    summary: dict[str, Any] = {
        "outcome": outcome,
        "as_of_train": ",".join(d.isoformat() for d in settings.as_of.train),
        "as_of_validation": settings.as_of.validation.isoformat(),
        "as_of_test": settings.as_of.test.isoformat(),
        "calibration_method": model.calibrator.method,
        "best_iteration": model.best_iteration,
        "n_features": len(names),
        **caseload_record,
    }
    for name, part in (("train", train), ("validation", validation), ("test", test)):
        summary[f"rows_{name}"] = len(part)
        summary[f"persons_{name}"] = int(part["person_id"].nunique())
        summary[f"events_{name}"] = int(part[outcome].sum())
    return TrainingResult(
        model=model,
        calibration=choice,
        logistic=logistic,
        metrics=metrics,
        test_scores=test_scores,
        test_rows=split.test,
        reliability_test={
            "before": reliability_table(y_test, raw_test, bins),
            "after": reliability_table(y_test, scores[LIGHTGBM], bins),
        },
        summary=summary,
        feature_medians={name: float(value) for name, value in train[names].median().fillna(0).items()},
    )
