"""Synthetic spell diagnoses: codes consistent with latent conditions, drawn without disturbing other tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskstrat.ingest.contract import CONTRACT, DIAGNOSIS_SEPARATOR
from riskstrat.ingest.reference import conditions as condition_vocabulary
from riskstrat.ingest.sources.sus_apc import icd10_condition, is_icd10_category, normalise_icd10
from riskstrat.ingest.synthetic import diagnoses as dx
from riskstrat.ingest.synthetic import generate as gen
from riskstrat.ingest.synthetic.health import CONDITIONS
from riskstrat.ingest.synthetic.settings import SyntheticSettings


def test_every_drawn_code_is_a_real_icd10_code_of_its_condition():
    for condition, (codes, chance) in dx.CONDITION_CODES.items():
        assert condition in CONDITIONS
        assert 0 < chance <= 1
        series = pd.Series(codes, dtype="string")
        assert (normalise_icd10(series) == series).all(), condition
        assert is_icd10_category(series).all(), condition
        assert (icd10_condition(series) == condition).all(), condition
    extra = pd.Series([*dx.OTHER_CODES, *dx.EXACERBATIONS.values(), *dx.COMPANIONS.values()], dtype="string")
    assert is_icd10_category(extra).all()
    assert icd10_condition(pd.Series(dx.OTHER_CODES, dtype="string")).isna().all()
    assert icd10_condition(pd.Series(list(dx.COMPANIONS.values()), dtype="string")).eq("dementia").all()


def test_condition_list_maps_onto_the_vocabulary_by_longest_prefix():
    vocabulary = set(condition_vocabulary()["condition"])
    from riskstrat.ingest.codelists import codelist

    assert set(codelist("icd10_conditions")["value"]) <= vocabulary
    codes = pd.Series(["I110", "I119", "I10", "J441", "C449", "C509", "E119", "X999", None], dtype="string")
    expected = [
        "heart_failure",
        "hypertension",
        "hypertension",
        "copd",
        None,
        "cancer",
        "diabetes",
        None,
        None,
    ]
    assert [None if pd.isna(v) else v for v in icd10_condition(codes)] == expected


def _draw(onset_row: dict[str, float], method: str, spells: int, seed: int = 0):
    onset = np.full((1, len(CONDITIONS)), np.inf)
    for name, day in onset_row.items():
        onset[0, CONDITIONS.index(name)] = day
    person = np.zeros(spells, dtype=np.int64)
    day = np.full(spells, 100, dtype=np.int64)
    method_array = np.full(spells, method, dtype=object)
    primary = np.full(spells, "R07.4", dtype=object)
    return dx.spell_diagnoses(
        onset, CONDITIONS, person, day, method_array, primary, np.random.default_rng(seed)
    )


def _share_with(diagnoses: np.ndarray, prefix: str) -> float:
    codes = pd.Series(diagnoses, dtype="string").str.split(DIAGNOSIS_SEPARATOR)
    return float(codes.map(lambda c: any(x.startswith(prefix) for x in c[1:])).mean())


def test_present_conditions_are_coded_often_absent_and_future_ones_never():
    onset = {"heart_failure": 50.0, "copd": 500.0}  # heart failure before the admission, COPD after it
    primary, diagnoses = _draw(onset, "21", 4000)
    heart_failure = _share_with(diagnoses, "I50")
    assert 0.72 < heart_failure < 0.86  # 0.85 chance, less the 3% spells with no secondary diagnosis
    assert _share_with(diagnoses, "J44") == 0.0
    assert _share_with(diagnoses, "E11") == 0.0
    # A quarter of emergency spells of a person with heart failure are coded as an exacerbation.
    assert 0.2 < (primary == "I509").mean() < 0.3
    assert set(primary) == {"R074", "I509"}
    assert all(d.split(DIAGNOSIS_SEPARATOR)[0] == p for p, d in zip(primary, diagnoses, strict=True))
    assert max(len(d.split(DIAGNOSIS_SEPARATOR)) for d in diagnoses) <= 1 + dx.MAX_SECONDARY


def test_elective_and_maternity_spells_carry_fewer_comorbidities_and_keep_their_primary():
    onset = {"heart_failure": 50.0}
    _, emergency = _draw(onset, "21", 4000)
    elective_primary, elective = _draw(onset, "11", 4000)
    _, maternity = _draw(onset, "31", 4000)
    assert _share_with(maternity, "I50") < 0.5 * _share_with(elective, "I50") < _share_with(emergency, "I50")
    assert set(elective_primary) == {"R074"}


def test_alzheimers_dementia_is_coded_as_a_dagger_asterisk_pair():
    _, diagnoses = _draw({"dementia": 10.0}, "21", 3000)
    with_f00 = [d.split(DIAGNOSIS_SEPARATOR) for d in diagnoses if "F009" in d]
    assert with_f00
    assert all(c.index("G309") == c.index("F009") - 1 for c in with_f00)


@pytest.fixture(scope="module")
def pair():
    """The same population with and without the spell-diagnosis detail."""
    with_detail = gen.generate_population(SyntheticSettings(), 1500, seed=21)
    original = gen.spell_diagnoses

    def plain(onset, conditions, person, day, method, primary, rng):
        return dx.normalise_primary(primary), np.full(person.size, None, dtype=object)

    gen.spell_diagnoses = plain
    try:
        without = gen.generate_population(SyntheticSettings(), 1500, seed=21)
    finally:
        gen.spell_diagnoses = original
    return with_detail, without


def test_the_detail_leaves_every_other_table_and_column_unchanged(pair):
    with_detail, without = pair
    for name in CONTRACT:
        a, b = with_detail.tables[name], without.tables[name]
        if name == "apc_spells":
            a, b = (
                a.drop(columns=["diagnoses", "primary_diagnosis"]),
                b.drop(columns=["diagnoses", "primary_diagnosis"]),
            )
        pd.testing.assert_frame_equal(a, b, obj=name)


def test_hospital_diagnoses_include_conditions_the_gp_never_recorded(pair):
    with_detail, _ = pair
    spells = with_detail.tables["apc_spells"]
    codes = spells[["person_id", "diagnoses"]].dropna().assign(code=lambda f: f["diagnoses"].str.split(";"))
    codes = codes.explode("code")
    codes["condition"] = icd10_condition(codes["code"]).to_numpy()
    hospital = set(map(tuple, codes.dropna(subset=["condition"])[["person_id", "condition"]].to_numpy()))
    gp = with_detail.tables["gp_diagnoses"]
    recorded = set(map(tuple, gp[["person_id", "condition"]].to_numpy()))
    assert hospital
    assert 0.03 < len(hospital - recorded) / len(hospital) < 0.6
    assert is_icd10_category(pd.Series(codes["code"].dropna().unique())).all()
