import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss
from synthetic_training import FEATURES, fast_settings

from riskstrat.errors import RiskstratError
from riskstrat.models.settings import LightGBMParams
from riskstrat.models.training import (
    apply_caseload_treatment,
    early_stopping_rows,
    person_groups,
    temporal_split,
    train_outcome,
)


def test_persons_are_disjoint_across_train_validation_and_test(training_table, settings):
    split = temporal_split(training_table, settings)
    persons = {
        name: set(training_table["person_id"].iloc[split.part(name)])
        for name in ("train", "validation", "test")
    }
    assert not persons["train"] & persons["validation"]
    assert not persons["train"] & persons["test"]
    assert not persons["validation"] & persons["test"]


def test_rows_come_from_their_as_of_dates(training_table, settings):
    split = temporal_split(training_table, settings)
    as_of = pd.to_datetime(training_table["as_of"])
    assert set(as_of.iloc[split.test]) == {pd.Timestamp(settings.as_of.test)}
    assert set(as_of.iloc[split.validation]) == {pd.Timestamp(settings.as_of.validation)}
    assert set(as_of.iloc[split.train]) == {pd.Timestamp(d) for d in settings.as_of.train}


def test_person_split_is_deterministic_and_near_the_fractions(settings):
    ids = pd.Series([f"P{i}" for i in range(20_000)])
    first, second = person_groups(ids, settings.split), person_groups(ids, settings.split)
    assert first.equals(second)
    shares = first.value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.6, abs=0.02)
    assert shares["test"] == pytest.approx(0.2, abs=0.02)


def test_missing_as_of_date_is_named(training_table, settings):
    table = training_table[pd.to_datetime(training_table["as_of"]) != pd.Timestamp(settings.as_of.test)]
    with pytest.raises(RiskstratError, match="2024-12-31"):
        temporal_split(table, settings)


def test_missing_feature_column_is_named(training_table, settings):
    with pytest.raises(RiskstratError, match="efi_score"):
        train_outcome(training_table.drop(columns=["efi_score"]), FEATURES, "emergency_admission", settings)


def test_caseload_exclude_drops_train_and_validation_rows_but_keeps_test(training_table):
    settings = fast_settings(caseload={"treatment": "exclude"})
    split = temporal_split(training_table, settings)
    reduced, record = apply_caseload_treatment(training_table, split, settings.caseload)
    on = training_table["on_caseload_in_window"].to_numpy() == 1
    assert not on[reduced.train].any() and not on[reduced.validation].any()
    assert np.array_equal(reduced.test, split.test)
    assert record["caseload_rows_excluded"] == on[split.train].sum() + on[split.validation].sum()


def test_caseload_flag_keeps_rows_and_records_shares(training_table, settings):
    split = temporal_split(training_table, settings)
    same, record = apply_caseload_treatment(training_table, split, settings.caseload)
    assert same == split
    assert record["caseload_treatment"] == "flag"
    assert 0.02 < record["caseload_share_train"] < 0.08


def test_caseload_exclude_without_column_fails(training_table):
    settings = fast_settings(caseload={"treatment": "exclude"})
    table = training_table.drop(columns=["on_caseload_in_window"])
    with pytest.raises(RiskstratError, match="on_caseload_in_window"):
        apply_caseload_treatment(table, temporal_split(table, settings), settings.caseload)


def _value(metrics, model, metric):
    return metrics.query("model == @model and metric == @metric")["value"].iloc[0]


@pytest.mark.parametrize(("outcome", "gap"), [("emergency_admission", 0.03), ("frequent_attendance", 0.05)])
def test_lightgbm_is_close_to_the_oracle_and_beats_both_baselines(trained, outcome, gap):
    metrics = trained[outcome].metrics
    auroc = _value(metrics, "lightgbm", "auroc")
    assert auroc >= _value(metrics, "oracle", "auroc") - gap
    assert auroc > _value(metrics, "logistic_regression", "auroc")
    assert auroc > _value(metrics, "prior_utilisation", "auroc")
    assert 0.75 <= _value(metrics, "lightgbm", "calibration_slope") <= 1.25


def test_calibration_improves_brier_on_held_out_rows_when_raw_is_miscalibrated(trained):
    """Shift the raw scores (a miscalibrated model); calibration fitted on validation must repair it."""
    from riskstrat.models.calibration import choose_calibration, reliability_table

    scores = trained["emergency_admission"].test_scores
    y = scores["y"].to_numpy()
    distorted = np.clip(scores["lightgbm_raw"].to_numpy() ** 0.6, 0, 1)  # too high, too flat
    half = np.arange(len(y)) % 2 == 0
    choice = choose_calibration(distorted[half], y[half])
    calibrated = choice.calibrator.transform(distorted[~half])
    assert brier_score_loss(y[~half], calibrated) < brier_score_loss(y[~half], distorted[~half])
    before = reliability_table(y[~half], distorted[~half])
    after = reliability_table(y[~half], calibrated)
    gap_before = np.average(np.abs(before["mean_predicted"] - before["observed_rate"]), weights=before["n"])
    gap_after = np.average(np.abs(after["mean_predicted"] - after["observed_rate"]), weights=after["n"])
    assert gap_after < gap_before / 2
    assert set(choice.scores["method"]) == {"raw", "platt", "isotonic"}
    assert choice.scores["chosen"].sum() == 1


def test_summary_records_caseload_treatment_and_counts(trained):
    summary = trained["emergency_admission"].summary
    assert summary["caseload_treatment"] == "flag"
    assert summary["rows_test"] == summary["persons_test"]
    assert summary["events_test"] == trained["emergency_admission"].test_scores["y"].sum()


def test_rare_outcome_chooses_rounds_by_cross_validation_on_training_persons(training_table):
    """early_stopping_on: train_cv judges the rounds on training persons, never on validation or test rows."""
    params = {"learning_rate": 0.1, "n_estimators": 300, "early_stopping_rounds": 20}
    settings = fast_settings(
        lightgbm={"frequent_attendance": {**params, "early_stopping_on": "train_cv"}},
    )
    result = train_outcome(training_table, FEATURES, "frequent_attendance", settings)
    model = result.model
    assert model.params["early_stopping_on"] == "train_cv"
    assert 1 <= model.best_iteration < 300
    assert model.booster.current_iteration() == model.best_iteration
    auroc = _value(result.metrics, "lightgbm", "auroc")
    assert auroc > _value(result.metrics, "prior_utilisation", "auroc")


@pytest.mark.parametrize(
    ("events", "rows", "expected"),
    [(99, 10_000, "train_cv"), (100, 10_000, "validation"), (150, 180, "train_cv")],
)
def test_auto_early_stopping_uses_validation_only_with_enough_events_and_non_events(events, rows, expected):
    """auto falls back to cross-validation when the validation rows hold too few events (or non-events)."""
    y_valid = np.zeros(rows, dtype=np.int64)
    y_valid[:events] = 1
    params = LightGBMParams(early_stopping_on="auto", min_validation_events=100)
    assert early_stopping_rows(params, y_valid) == expected
    assert (
        early_stopping_rows(params.model_copy(update={"early_stopping_on": "train_cv"}), y_valid)
        == "train_cv"
    )


def test_auto_early_stopping_records_the_rows_it_used(training_table):
    """The run records which rows chose the rounds, not just 'auto'."""
    params = {"learning_rate": 0.1, "n_estimators": 300, "early_stopping_rounds": 20}
    settings = fast_settings(
        lightgbm={
            "frequent_attendance": {**params, "early_stopping_on": "auto", "min_validation_events": 10**6}
        },
    )
    model = train_outcome(training_table, FEATURES, "frequent_attendance", settings).model
    assert model.params["early_stopping_on"] == "train_cv"
