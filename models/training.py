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
from riskstrat.features import social_care
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
from riskstrat.models.settings import (
    CaseloadSettings,
    LightGBMParams,
    ModelSettings,
    SplitSettings,
    TrainingSampleSettings,
)

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


def sample_training_rows(
    split: TemporalSplit, sample: TrainingSampleSettings
) -> tuple[TemporalSplit, dict[str, Any]]:
    """A seeded simple random sample of at most ``sample.max_rows`` training rows; validation and test untouched.

    Person-time rows are drawn uniformly, not stratified by outcome: one draw serves every
    outcome (the same rows train each model, so their memory is bounded once), and a uniform
    draw keeps each outcome's event rate and the case mix unbiased. Calibration and every
    reported metric use the validation and test rows, which are never sampled. The kept rows
    stay in table order, so the draw depends only on the rows, the seed and ``max_rows``.

    Args:
        split: Row positions of each part.
        sample: The sample settings (``training_sample`` in ``configs/model.yaml``).

    Returns:
        The split with the sampled training rows, and a record of the sample for MLflow.
    """
    rows = split.train
    record: dict[str, Any] = {"training_sample_max_rows": sample.max_rows or 0}
    if sample.max_rows is None or len(rows) <= sample.max_rows:
        record["training_sample_share"] = 1.0
        return split, record
    drawn = np.random.default_rng(sample.seed).choice(len(rows), size=sample.max_rows, replace=False)
    record["training_sample_share"] = sample.max_rows / len(rows)
    kept = rows[np.sort(drawn)]
    return TemporalSplit(train=kept, validation=split.validation, test=split.test), record


def mask_unknown_social_care(
    x_train: np.ndarray, feature_names: Sequence[str], share: float, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Mark a seeded share of TRAINING rows as social care not known, in place.

    At the training as-of dates every local authority's return is in, so without this the
    model never sees ``social_care_known = 0`` with empty social care features, and at
    scoring LightGBM would send a person whose return is missing down the side of its
    learned default for NaN: in practice "no support". On the masked rows the social care
    features (:data:`~riskstrat.features.social_care.SOCIAL_CARE_FEATURES`) are set to NaN
    and ``social_care_known`` to 0, exactly as the feature build writes a person whose
    return is missing. Only the training matrix is passed here: validation and test rows
    (calibration and every reported metric) keep their real values.

    Args:
        x_train: The training rows' matrix (:func:`feature_matrix`); changed in place.
        feature_names: Its columns.
        share: Share of training rows to mask (0 = none).
        seed: Seed of the draw (the same rows on every run).

    Returns:
        The matrix, and a record for MLflow (``unknown_social_care_rows``).
    """
    columns = [i for i, name in enumerate(feature_names) if name in social_care.SOCIAL_CARE_FEATURES]
    record: dict[str, Any] = {"unknown_social_care_share": share, "unknown_social_care_rows": 0}
    if share <= 0 or not columns or social_care.KNOWN not in feature_names or len(x_train) == 0:
        return x_train, record
    count = round(share * len(x_train))
    rows = np.sort(np.random.default_rng(seed).choice(len(x_train), size=count, replace=False))
    for position in columns:
        known = feature_names[position] == social_care.KNOWN
        x_train[rows, position] = 0.0 if known else np.nan
    record["unknown_social_care_rows"] = count
    return x_train, record


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
    return fit_risk_model_on(
        feature_matrix(train, names),
        train[outcome].to_numpy(dtype=np.int64),
        feature_matrix(validation, names),
        validation[outcome].to_numpy(dtype=np.int64),
        train["person_id"],
        names,
        outcome,
        settings,
    )


def feature_matrix(table: pd.DataFrame, names: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
    """LightGBM's input: the ``names`` columns of ``table`` (at positions ``rows``) as one float32 matrix.

    Filled one column at a time into a column-major array, which LightGBM reads without
    copying: no row subset of the whole table and no float64 copy is ever made.

    Args:
        table: Rows with the feature columns (a training table or one of its parts).
        names: Feature columns, in the model's order.
        rows: Row positions to take (default: every row).

    Returns:
        A (rows x features) float32 array, NaN where a feature is missing.
    """
    count = len(table) if rows is None else len(rows)
    matrix = np.empty((count, len(names)), dtype=np.float32, order="F")
    for position, name in enumerate(names):
        values = table[name].to_numpy(dtype=np.float32, na_value=np.nan)
        matrix[:, position] = values if rows is None else values[rows]
    return matrix


def fit_risk_model_on(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    train_person_id: pd.Series,
    feature_names: Sequence[str],
    outcome: str,
    settings: ModelSettings,
) -> tuple[RiskModel, CalibrationChoice]:
    """:func:`fit_risk_model` on matrices already built (:func:`feature_matrix`).

    Args:
        x_train: Training matrix.
        y_train: Training outcomes (0/1).
        x_valid: Validation matrix.
        y_valid: Validation outcomes (0/1).
        train_person_id: Person of each training row (cross-validation folds are by person).
        feature_names: Model input columns, in the matrices' order.
        outcome: Outcome column.
        settings: Model settings.

    Returns:
        The fitted model and the evidence for its calibration.
    """
    names = list(feature_names)
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
            train_person_id,
            names,
            params,
            chosen.n_estimators,
            chosen.early_stopping_rounds,
        )
        booster = lgb.train(
            params,
            lgb.Dataset(x_train, label=y_train, feature_name=names, free_raw_data=True),
            num_boost_round=rounds,
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
    split, sample_record = sample_training_rows(split, settings.training_sample)
    person = table["person_id"]
    y = table[outcome].to_numpy(dtype=np.int64)
    # Each part's matrix is built once, as float32, from the table's columns: no row subset
    # of the whole table is copied (the test rows aside, which the evaluation reads whole).
    x_train = feature_matrix(table, names, split.train)
    # Training rows only: validation and test keep the real social care status.
    x_train, unknown_record = mask_unknown_social_care(
        x_train, names, settings.unknown_social_care_share, settings.seed
    )
    sample_record.update(unknown_record)
    x_valid = feature_matrix(table, names, split.validation)
    model, choice = fit_risk_model_on(
        x_train,
        y[split.train],
        x_valid,
        y[split.validation],
        person.iloc[split.train],
        names,
        outcome,
        settings,
    )
    del x_valid
    medians = _column_medians(x_train, names)
    fitted = logistic_rows(len(split.train), settings.seed, settings.logistic_baseline_max_rows)
    x_logistic = x_train if fitted is None else x_train[fitted]
    del x_train  # the logistic baseline's rows (a copy when sampled) are all it still needs
    logistic = fit_logistic(
        pd.DataFrame(x_logistic, columns=names, copy=False),
        y[split.train] if fitted is None else y[split.train][fitted],
        names,
        seed=settings.seed,
    )
    del x_logistic
    sample_record["logistic_baseline_rows"] = len(split.train) if fitted is None else len(fitted)
    test = table.iloc[split.test]

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
        **sample_record,
    }
    for name in PARTS:
        rows = split.part(name)
        summary[f"rows_{name}"] = len(rows)
        summary[f"persons_{name}"] = int(person.iloc[rows].nunique())
        summary[f"events_{name}"] = int(y[rows].sum())
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
        feature_medians=medians,
    )


LOGISTIC_MAX_ROWS = ModelSettings.model_fields["logistic_baseline_max_rows"].default
"""Default of ``logistic_baseline_max_rows`` (configs/model.yaml): most training rows the logistic
baseline is fitted on (a seeded simple random sample beyond); kept for older callers."""


def logistic_rows(train_rows: int, seed: int, max_rows: int | None = LOGISTIC_MAX_ROWS) -> np.ndarray | None:
    """Positions (within the training rows) the logistic baseline is fitted on; None = every row.

    Args:
        train_rows: Number of training rows.
        seed: Seed of the sample.
        max_rows: Most rows fitted on (``logistic_baseline_max_rows``); None = every row.
    """
    if max_rows is None or train_rows <= max_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(train_rows, size=max_rows, replace=False))


def _column_medians(matrix: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Median of each column, missing values left out (0 for a column with none)."""
    medians = {}
    for position, name in enumerate(names):
        values = matrix[:, position]
        present = values[~np.isnan(values)].astype(np.float64)
        medians[name] = float(np.median(present)) if len(present) else 0.0
    return medians
