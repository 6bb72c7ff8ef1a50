"""Calibration is chosen on the validation rows and must not chase the noise of a few events."""

import numpy as np

from riskstrat.models.calibration import choose_calibration


def _calibrated_rows(n: int, low: float, high: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(low, high, n)
    return p, (rng.random(n) < p).astype(int)


def test_auto_keeps_raw_probabilities_that_are_already_calibrated():
    raw, y = _calibrated_rows(20_000, 0.01, 0.4, seed=3)
    choice = choose_calibration(raw, y, method="auto")
    assert choice.calibrator.method == "identity"
    assert choice.scores.loc[choice.scores["chosen"], "method"].item() == "raw"
    np.testing.assert_array_equal(choice.calibrator.transform(raw), raw)


def test_auto_recalibrates_when_raw_probabilities_are_clearly_off():
    raw, y = _calibrated_rows(20_000, 0.01, 0.4, seed=4)
    choice = choose_calibration(np.clip(raw * 2.0, 0, 0.99), y, method="auto")
    assert choice.calibrator.method in {"platt", "isotonic"}


def test_too_few_validation_events_keep_the_raw_probabilities():
    """23 events (as for frequent attendance on the synthetic default) are too few to recalibrate on."""
    raw, _ = _calibrated_rows(6_000, 0.001, 0.01, seed=5)
    y = np.zeros(raw.size, dtype=int)
    y[np.argsort(raw)[-23:]] = 1  # far fewer events than the raw probabilities expect
    assert choose_calibration(raw, y, method="platt", min_events=100).calibrator.method == "identity"
    assert choose_calibration(raw, y, method="platt", min_events=0).calibrator.method == "platt"
