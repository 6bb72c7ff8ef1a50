"""The audited test rows: what an independent reviewer needs to recompute every figure of an audit.

The audit's inputs are the test rows' predictions and the lists drawn up on them.
They are stored as one frame, one row per test person: the pseudonymised
``person_id``, ``as_of``, the outcome ``y``, the calibrated probability ``p``, each
grouping's input column, the need measures, the GP-recording columns when present,
the person's MDT and whether the back-tested list selected them. Splitting the frame
back (:func:`split_audit_rows`) gives the audit exactly the inputs it judged, so
rerunning ``run_audit`` on them gives the same figures.

The rows are patient-level: they are stored beside the feature cache (which holds
the same people already), never in MLflow or the report. The report and the MLflow
run carry only the file's SHA-256, so a reviewer can check they hold the same rows.
"""

from __future__ import annotations

import pandas as pd

from riskstrat.errors import RiskstratError
from riskstrat.evaluation.groups import grouping_columns
from riskstrat.evaluation.recording import RECORDING_COLUMNS
from riskstrat.evaluation.settings import FairnessSettings

SELECTION_COLUMNS: tuple[str, ...] = ("mdt", "selected")
"""Columns the stored rows take from the list selections."""


def audit_rows(
    predictions: pd.DataFrame, selections: pd.DataFrame, settings: FairnessSettings
) -> pd.DataFrame:
    """The audit's inputs as one frame to store, one row per test person.

    Args:
        predictions: The test-row predictions the audit judged.
        selections: The lists drawn up on the same rows (``worklists.backtest.back_test_lists``).
        settings: The fairness settings (which need measures the audit read).

    Returns:
        ``person_id``, ``as_of``, ``y``, ``p``, the grouping, need and recording columns the
        predictions carry, then ``mdt`` and ``selected``.

    Raises:
        RiskstratError: If the selections do not hold the same people as the predictions, or
            the predictions lack the MDT or give a person another one than the selections.
    """
    carried = [
        c
        for c in (*grouping_columns(), *settings.need_measures, *RECORDING_COLUMNS)
        if c in predictions.columns and c not in SELECTION_COLUMNS
    ]
    columns = list(dict.fromkeys(["person_id", "as_of", "y", "p", *carried]))
    rows = predictions[columns].copy()
    rows["person_id"] = rows["person_id"].astype(str)
    chosen = selections[["person_id", *SELECTION_COLUMNS]].copy()
    chosen["person_id"] = chosen["person_id"].astype(str)
    if set(chosen["person_id"]) != set(rows["person_id"]) or len(chosen) != len(rows):
        raise RiskstratError(
            "audited rows: the selections do not hold the same people as the predictions",
            hint="Store the back-test's predictions and selections: one row per test person in each.",
        )
    merged = rows.merge(chosen, on="person_id", how="left", validate="one_to_one")
    # The predictions' MDT is the MDT grouping's column: the stored rows must give the same one.
    own = predictions["mdt"].astype(str).to_numpy() if "mdt" in predictions.columns else None
    if own is None or (own != merged["mdt"].astype(str).to_numpy()).any():
        raise RiskstratError(
            "audited rows: the predictions must carry each person's MDT, the same as the selections",
            hint="Store the back-test's predictions and selections (worklists.backtest.back_test_lists).",
        )
    merged["y"] = pd.to_numeric(merged["y"]).astype("int64")
    merged["p"] = pd.to_numeric(merged["p"]).astype(float)
    merged["selected"] = merged["selected"].astype(bool)
    return merged.reset_index(drop=True)


def split_audit_rows(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stored audited rows back into the audit's two inputs.

    Args:
        rows: Frame written from :func:`audit_rows` (and read back).

    Returns:
        The predictions (every column but ``selected``) and the selections (``person_id``,
        ``mdt``, ``selected``, the grouping columns and ``y``), ready for ``run_audit``.
    """
    predictions = rows.drop(columns="selected").copy()
    predictions["as_of"] = pd.to_datetime(predictions["as_of"]).dt.date
    groups = [c for c in grouping_columns() if c in rows.columns]
    selections = rows[list(dict.fromkeys(["person_id", *SELECTION_COLUMNS, *groups, "y"]))].copy()
    return predictions, selections
