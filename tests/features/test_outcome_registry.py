"""Adding an outcome is registering one spec: settings, labels, models, lists and wording follow.

The outcome registered here (an emergency admission for a hip fracture within 90
days) exists only inside each test: no stage code knows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import ibis.expr.types as ir
import pytest
import yaml
from feature_fixtures import AS_OF, extract, memtables, patient
from pydantic import Field, ValidationError

from riskstrat.errors import RiskstratError, SettingsError
from riskstrat.features.common import as_flag
from riskstrat.features.matrix import build_feature_matrix
from riskstrat.features.outcomes import (
    Outcome,
    check_outcome_window,
    outcome,
    outcome_columns,
    outcome_definition,
    outcome_names,
    outcome_wording,
    register_outcome,
    registered_outcomes,
)
from riskstrat.features.point_in_time import Tables, emergency_spells, in_outcome_window
from riskstrat.features.settings import FeatureSettings, OutcomeSettings
from riskstrat.models.settings import ModelSettings
from riskstrat.settings import Settings, load_settings
from riskstrat.worklists.settings import MdtSettings, resolve_mdts


class HipFractureSettings(Settings):
    """The hip fracture admission outcome."""

    horizon_days: int = Field(90, ge=1, description="Outcome window in days.")
    diagnoses: tuple[str, ...] = Field(
        ("S72",), min_length=1, description="ICD-10 prefixes of a hip fracture."
    )


def hip_fracture_labels(
    people: ir.Table, tables: Tables, as_of: date, settings: HipFractureSettings
) -> ir.Table:
    spells = emergency_spells(tables)
    fracture = spells.primary_diagnosis.startswith(settings.diagnoses[0])
    for prefix in settings.diagnoses[1:]:
        fracture = fracture | spells.primary_diagnosis.startswith(prefix)
    events = spells.filter(fracture, in_outcome_window(spells.admission_date, as_of, settings.horizon_days))
    people_with = events.select("person_id").distinct().mutate(_event=1)
    joined = people.select("person_id").left_join(people_with, "person_id").drop("person_id_right")
    return joined.select("person_id", hip_fracture_admission=as_flag(joined._event.notnull()).cast("int64"))


HIP_FRACTURE = Outcome(
    name="hip_fracture_admission",
    description="Emergency admission for a hip fracture in the outcome window.",
    settings_model=HipFractureSettings,
    label=hip_fracture_labels,
    horizon_days=lambda settings: settings.horizon_days,
    wording=lambda settings: (
        f"an emergency admission for a hip fracture in the next {settings.horizon_days} days"
    ),
    definition=lambda settings: (
        f"An emergency admission with a primary diagnosis {', '.join(settings.diagnoses)} within "
        f"{settings.horizon_days} days after the as-of date"
    ),
    use="falls prevention",
    truth_column="p_hip_fracture_admission",
    registered_model="hip_fracture_admission",
)


@pytest.fixture
def hip_fracture() -> Iterator[Outcome]:
    with registered_outcomes():
        yield register_outcome(HIP_FRACTURE)


def _spell(spell_id: str, person_id: str, days_after: int, method: str, diagnosis: str) -> dict:
    admitted = AS_OF + timedelta(days=days_after)
    return {
        "spell_id": spell_id,
        "person_id": person_id,
        "admission_date": admitted,
        "discharge_date": admitted + timedelta(days=3),
        "admission_method": method,
        "primary_diagnosis": diagnosis,
    }


def _rows() -> dict[str, list[dict]]:
    born = date(1940, 1, 1)
    return {
        "patients": [patient(p, born) for p in ("q1", "q2", "q3", "q4", "q5")],
        "apc_spells": [
            _spell("f1", "q1", 30, "21", "S72.0"),  # emergency, hip fracture, day 30: event
            _spell("f2", "q2", 91, "21", "S72.1"),  # day 91: outside the 90-day window
            _spell("f3", "q3", 10, "11", "S72.0"),  # elective: not an emergency admission
            _spell("f4", "q4", 5, "2A", "J18.9"),  # emergency, not a hip fracture
            _spell("f5", "q5", 0, "21", "S72.0"),  # on T: the past, not the outcome
        ],
    }


def test_its_settings_section_validates_from_yaml(hip_fracture, tmp_path):
    settings = OutcomeSettings.model_validate(yaml.safe_load("hip_fracture_admission:\n  horizon_days: 60\n"))
    assert settings.section("hip_fracture_admission").horizon_days == 60
    assert OutcomeSettings().section("hip_fracture_admission") == HipFractureSettings()
    with pytest.raises(ValidationError, match=r"hip_fracture_admission\.horizon_days = 0"):
        OutcomeSettings.model_validate({"hip_fracture_admission": {"horizon_days": 0}})
    path = tmp_path / "outcomes.yaml"
    path.write_text("hip_fracture_admission:\n  horizon_days: soon\n")
    with pytest.raises(SettingsError, match=r"outcomes\.yaml.*hip_fracture_admission\.horizon_days = 'soon'"):
        load_settings(path, OutcomeSettings)


def test_a_section_of_no_registered_outcome_is_refused():
    with pytest.raises(ValidationError, match="unknown outcome 'hip_fracture_admission'"):
        OutcomeSettings.model_validate({"hip_fracture_admission": {"horizon_days": 60}})


def test_the_training_table_gets_its_label(hip_fracture):
    settings = OutcomeSettings()
    assert outcome_columns(settings) == [
        "emergency_admission",
        "frequent_attendance",
        "hip_fracture_admission",
    ]
    matrix = build_feature_matrix(ibis_tables(_rows()), AS_OF, FeatureSettings(), settings)
    labels = matrix.set_index("person_id")["hip_fracture_admission"]
    assert labels.to_dict() == {"q1": 1, "q2": 0, "q3": 0, "q4": 0, "q5": 0}
    assert labels.dtype == "int64"
    longer = OutcomeSettings.model_validate({"hip_fracture_admission": {"horizon_days": 91}})
    matrix = build_feature_matrix(ibis_tables(_rows()), AS_OF, FeatureSettings(), longer)
    assert matrix.set_index("person_id")["hip_fracture_admission"].to_dict()["q2"] == 1
    # Its window counts when checking the extract covers every outcome window.
    long_window = OutcomeSettings.model_validate({"hip_fracture_admission": {"horizon_days": 400}})
    with pytest.raises(RiskstratError, match="after the extract date"):
        check_outcome_window(AS_OF, long_window, AS_OF + timedelta(days=399))


def test_models_train_it_under_its_registered_name(hip_fracture):
    settings = ModelSettings.model_validate({"outcomes": ["hip_fracture_admission"]})
    assert settings.outcomes == ("hip_fracture_admission",)
    assert settings.mlflow.registered_models["hip_fracture_admission"] == "hip_fracture_admission"
    assert "hip_fracture_admission" in ModelSettings().outcomes


def test_an_mdt_can_rank_by_it(hip_fracture):
    settings = MdtSettings.model_validate(
        {
            "mdts": [
                {
                    "name": "Falls",
                    "practices": ["P1"],
                    "capacity_people": 10,
                    "outcome": "hip_fracture_admission",
                }
            ]
        }
    )
    (mdt,) = resolve_mdts(settings, None)
    assert mdt.outcome == "hip_fracture_admission"


def test_its_wording_and_definition(hip_fracture):
    settings = OutcomeSettings()
    assert outcome_wording("hip_fracture_admission", settings) == (
        "an emergency admission for a hip fracture in the next 90 days"
    )
    assert outcome_definition("hip_fracture_admission", settings) == (
        "An emergency admission with a primary diagnosis S72 within 90 days after the as-of date"
    )
    assert outcome("hip_fracture_admission").use == "falls prevention"


def test_outside_the_test_no_stage_knows_it():
    assert outcome_names() == ("emergency_admission", "frequent_attendance")
    with pytest.raises(ValidationError, match="unknown outcome 'hip_fracture_admission'"):
        ModelSettings.model_validate({"outcomes": ["hip_fracture_admission"]})
    with pytest.raises(ValidationError, match="unknown outcome 'hip_fracture_admission'"):
        MdtSettings.model_validate(
            {
                "mdts": [
                    {
                        "name": "F",
                        "practices": ["P1"],
                        "capacity_people": 1,
                        "outcome": "hip_fracture_admission",
                    }
                ]
            }
        )
    with pytest.raises(RiskstratError, match="emergency_admission, frequent_attendance"):
        outcome("hip_fracture_admission")


def test_a_name_is_registered_once(hip_fracture):
    with pytest.raises(RiskstratError, match="already registered"):
        register_outcome(HIP_FRACTURE)


def test_shipped_outcomes_word_and_define_themselves_from_their_settings():
    settings = OutcomeSettings.model_validate(
        {
            "emergency_admission": {"horizon_days": 180, "death_counts_as_event": False},
            "frequent_attendance": {"min_attendances": 3},
        }
    )
    assert outcome_wording("emergency_admission", OutcomeSettings()) == (
        "an emergency hospital admission (or death) in the next 12 months"
    )
    assert (
        outcome_wording("emergency_admission", settings)
        == "an emergency hospital admission in the next 180 days"
    )
    assert outcome_wording("frequent_attendance", settings) == (
        "frequent A&E attendance (3 or more) in the next 12 months"
    )
    assert outcome_definition("emergency_admission", OutcomeSettings()) == (
        "An emergency admission (ADMIMETH 21-2D, 28) within 365 days after the as-of date, or death in that window"
    )
    assert outcome_definition("frequent_attendance", OutcomeSettings()) == (
        "5 or more A&E attendances within 365 days after the as-of date"
    )


def ibis_tables(rows: dict[str, list[dict]]) -> dict[str, ir.Table]:
    return memtables(extract(rows))
