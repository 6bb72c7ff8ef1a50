"""The named inter-stage frames: each failure kind is reported by frame, column and row count,
with a person ID (never a value) as the example; the frames the stages build pass."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairness_data import synthetic_predictions, synthetic_selections
from feature_fixtures import extract, hand_worked_rows, memtables
from worklist_fixtures import boosters, features, scored  # noqa: F401 (fixtures of the scored population)

import riskstrat.frames
from riskstrat.errors import RiskstratError
from riskstrat.evaluation.fairness import predictions_schema, selections_schema
from riskstrat.evaluation.settings import FairnessSettings
from riskstrat.features.dictionary import feature_names
from riskstrat.features.matrix import build_training_table, feature_matrix_schema
from riskstrat.features.outcomes import outcome_columns
from riskstrat.features.settings import FeatureSettings, OutcomeSettings
from riskstrat.frames import Column, FrameSchema, Kind
from riskstrat.worklists.rows import WORKLIST_ROWS
from riskstrat.worklists.selection import scored_population_schema

PEOPLE = FrameSchema(
    name="people",
    columns=(
        Column("person_id", Kind.TEXT),
        Column("seen", Kind.DATE),
        Column("count", Kind.INTEGER),
        Column("score", Kind.NUMBER, nullable=True),
        Column("flag", Kind.BOOLEAN),
        Column("p", Kind.PROBABILITY),
        Column("team", Kind.TEXT, nullable=True, required=False),
    ),
    key=("person_id",),
    extra_columns=False,
    hint="Build the people frame.",
)


def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": ["P1", "P2", "P3"],
            "seen": [date(2025, 1, 1), date(2025, 2, 1), None],
            "count": [0, 3, 12],
            "score": [0.5, np.nan, 2.0],
            "flag": [True, False, True],
            "p": [0.0, 0.25, 1.0],
        }
    )


def failure(frame: pd.DataFrame, schema: FrameSchema = PEOPLE) -> RiskstratError:
    with pytest.raises(RiskstratError) as caught:
        schema.check(frame)
    return caught.value


def test_a_frame_that_fits_is_returned_as_is():
    frame = people().assign(seen=[date(2025, 1, 1)] * 3)
    assert PEOPLE.check(frame) is frame
    # other spellings of the same kinds fit too
    PEOPLE.check(
        frame.assign(
            seen=pd.to_datetime(["2025-01-01"] * 3),
            count=[0.0, 3.0, 12.0],
            flag=[1, 0, 1],
            person_id=pd.Series(["P1", "P2", "P3"], dtype="category"),
            team=["VW", None, pd.NA],
        )
    )


def test_a_missing_column_is_named():
    error = failure(people().drop(columns=["p", "count"]))
    assert str(error) == "people: missing column(s) count, p"
    assert error.hint == "Build the people frame."


def test_an_optional_column_may_be_absent_but_is_checked_when_present():
    frame = people().assign(seen=[date(2025, 1, 1)] * 3)
    PEOPLE.check(frame)
    assert str(failure(frame.assign(team=[1, 2, 3]))) == "people.team: 3 row(s) are not text"


def test_an_unexpected_column_is_named_when_no_others_may_come_along():
    frame = people().assign(seen=[date(2025, 1, 1)] * 3, postcode=["X"] * 3)
    assert str(failure(frame)) == "people: unexpected column(s) postcode"
    loose = FrameSchema("people", PEOPLE.columns, key=PEOPLE.key)
    loose.check(frame)


def test_a_column_named_twice_is_refused():
    frame = people().assign(seen=[date(2025, 1, 1)] * 3)
    doubled = pd.concat([frame, frame[["p"]]], axis=1)
    assert str(failure(doubled)) == "people: column(s) named twice: p"


def test_missing_values_are_counted_with_a_person_as_example():
    error = failure(people())  # P3 has no date seen
    assert str(error) == "people.seen: 1 row(s) missing"
    assert error.details == "e.g. person_id P3"
    assert "P3" not in repr(error) and "P3" in error.message


@pytest.mark.parametrize(
    ("column", "values", "words", "count", "example"),
    [
        ("person_id", [1, 2, 3], "text", 3, "1"),
        ("seen", ["2025-01-01", "2025-02-01", "2025-03-01"], "dates", 3, "P1"),
        ("count", [0, 2.5, 1], "whole numbers", 1, "P2"),
        ("count", ["0", "1", "2"], "whole numbers", 3, "P1"),
        ("score", [0.5, np.inf, 1.0], "finite numbers", 1, "P2"),
        ("score", [0.5, "high", 1.0], "finite numbers", 1, "P2"),
        ("flag", [1, 2, 0], "True/False (or 0/1)", 1, "P2"),
        ("flag", ["yes", "no", "yes"], "True/False (or 0/1)", 3, "P1"),
        ("p", [0.1, 1.5, -0.1], "probabilities in [0, 1]", 2, "P2"),
        ("p", [True, False, True], "probabilities in [0, 1]", 3, "P1"),
    ],
)
def test_values_of_the_wrong_kind_are_counted(column, values, words, count, example):
    frame = people().assign(seen=[date(2025, 1, 1)] * 3)
    frame[column] = values
    error = failure(frame)
    assert str(error) == f"people.{column}: {count} row(s) are not {words}"
    assert error.details == f"e.g. person_id {example}"


def test_the_example_is_the_person_never_the_value():
    frame = people().assign(seen=[date(2025, 1, 1)] * 3, p=[0.1, 0.2, 7.25])
    error = failure(frame)
    assert str(error) == "people.p: 1 row(s) are not probabilities in [0, 1]"
    assert error.details == "e.g. person_id P3"
    assert "7.25" not in error.message


def test_without_a_person_column_the_example_is_the_row_number():
    schema = FrameSchema("counts", (Column("n", Kind.INTEGER),))
    error = failure(pd.DataFrame({"n": [1, 2, -0.5]}), schema)
    assert str(error) == "counts.n: 1 row(s) are not whole numbers"
    assert error.details == "e.g. row 3"


def test_a_repeated_key_is_counted():
    frame = people().assign(seen=[date(2025, 1, 1)] * 3, person_id=["P1", "P2", "P1"])
    error = failure(frame)
    assert str(error) == "people: 1 row(s) repeat the key (person_id)"
    assert error.details == "e.g. person_id P1"


def test_with_columns_adds_or_replaces_columns():
    schema = PEOPLE.with_columns(Column("p_fall", Kind.PROBABILITY), Column("p", Kind.NUMBER))
    assert schema.column_names()[-2:] == ("p_fall", "p")
    frame = people().assign(seen=[date(2025, 1, 1)] * 3, p=[3.0, 4.0, 5.0], p_fall=[0.1, 0.2, 0.3])
    assert schema.check(frame) is frame
    assert PEOPLE.column_names()[-1] == "p"  # the schema it came from is unchanged


# --- the stages' frames -------------------------------------------------------------------


def test_a_training_table_is_a_feature_matrix():
    dates = [date(2024, 12, 31), date(2023, 12, 31)]
    table = build_training_table(
        memtables(extract(hand_worked_rows())), dates, FeatureSettings(), OutcomeSettings()
    )
    schema = feature_matrix_schema(feature_names(FeatureSettings()), outcome_columns(OutcomeSettings()))
    schema.check(table)
    error = failure(pd.concat([table, table.head(1)]), schema)
    assert str(error) == "feature matrix: 1 row(s) repeat the key (person_id, as_of)"


def test_the_scored_population_fits_with_a_probability_per_outcome(scored):  # noqa: F811 (a fixture)
    outcomes = ("emergency_admission", "frequent_attendance")
    schema = scored_population_schema(outcomes)
    schema.check(scored)
    assert str(failure(scored.drop(columns=["type1_opt_out"]), schema)) == (
        "scored population: missing column(s) type1_opt_out"
    )


def test_predictions_and_selections_fit():
    predictions = synthetic_predictions(2_000)
    predictions_schema(FairnessSettings()).check(predictions)
    selections = synthetic_selections(predictions)
    selections_schema().check(selections)
    selections_schema().check(selections.drop(columns=["y"], errors="ignore"))


def test_frames_is_core_and_imports_no_stage():
    tree = ast.parse(Path(riskstrat.frames.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    stages = {"pipelines", "ingest", "features", "models", "evaluation", "worklists"}
    assert not {
        name for name in imported if name.split(".")[:2][-1] in stages and name.startswith("riskstrat.")
    }


def test_each_stage_declares_its_frames_from_its_own_columns():
    from riskstrat.evaluation.groups import grouping_columns
    from riskstrat.features.matrix import FEATURE_MATRIX, KEY_COLUMNS, PERSON_ATTRIBUTES
    from riskstrat.worklists.rows import COLUMN_NOTES
    from riskstrat.worklists.selection import SCORED_POPULATION, STATUS_COLUMNS

    assert FEATURE_MATRIX.key == KEY_COLUMNS
    assert set(PERSON_ATTRIBUTES) <= set(FEATURE_MATRIX.column_names())
    assert set(STATUS_COLUMNS) <= set(SCORED_POPULATION.column_names())
    assert set(grouping_columns()) <= {c.name for c in selections_schema().columns}
    row_columns = {c.name for c in WORKLIST_ROWS.columns}
    assert row_columns - {"NHS number", "On caseload"} <= set(COLUMN_NOTES) | {"Person ID"}
