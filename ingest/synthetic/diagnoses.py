"""ICD-10 diagnoses of synthetic hospital spells, drawn from each person's latent conditions.

Hospital coders record most of a patient's active long-term conditions as secondary
diagnoses, including conditions the GP never coded, which is where hospital diagnoses
add signal. Each spell gets:

- its primary diagnosis as the generator draws it (``events.emergency_diagnoses``,
  elective and maternity lists), normalised (no dot); on a share of emergency spells of
  people with a long-term condition that has an exacerbation code (COPD, heart failure
  ...), that code instead;
- secondary diagnoses: each condition present on the admission day (latent onset on or
  before it) with a condition-specific chance (higher for serious conditions, lower for
  frailty deficits, and much lower on elective and maternity spells), plus a few common
  codes outside the condition vocabulary (hyperlipidaemia, smoking ...); at most
  :data:`MAX_SECONDARY` (plus the dagger code written before an asterisk code, G309 before
  F009); :data:`NO_SECONDARY_SHARE` of spells have none.

Codes are normalised ICD-10 (``I500``) and every one maps back to its condition through
the shipped list ``icd10_conditions`` (a test checks this). Every draw uses the ``apc``
detail generator only, so every other table stays as it was.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from riskstrat.ingest.contract import (
    DIAGNOSIS_SEPARATOR,
    ELECTIVE_ADMISSION_METHODS,
    EMERGENCY_ADMISSION_METHODS,
    MATERNITY_ADMISSION_METHODS,
)

MAX_SECONDARY = 12
NO_SECONDARY_SHARE = 0.03
EXACERBATION_SHARE = 0.25
"""Chance that an emergency spell of a person with an exacerbation-prone condition is coded as it."""
FRACTURE_DAYS = 90
"""A fragility fracture is coded on spells within this many days of it (an injury, not a history)."""

CONDITION_CODES: dict[str, tuple[tuple[str, ...], float]] = {
    # condition: (normalised ICD-10 codes to draw from, chance of being coded on an emergency spell)
    "hypertension": (("I10",), 0.75),
    "diabetes": (("E119", "E119", "E119", "E109", "E117", "E112"), 0.85),
    "copd": (("J449", "J449", "J440", "J439"), 0.85),
    "asthma": (("J459", "J450"), 0.7),
    "coronary_heart_disease": (("I251", "I259", "I252", "I209"), 0.75),
    "heart_failure": (("I500", "I509", "I501"), 0.85),
    "atrial_fibrillation": (("I489", "I480", "I481"), 0.85),
    "stroke_tia": (("I693", "I694", "I64"), 0.7),
    "chronic_kidney_disease": (("N183", "N184", "N189", "N185"), 0.8),
    "dementia": (("F03", "F03", "F019", "F009", "F051"), 0.85),
    "depression": (("F329", "F339", "F321"), 0.6),
    "anxiety": (("F419", "F411"), 0.5),
    "serious_mental_illness": (("F209", "F319", "F259"), 0.85),
    "cancer": (("C509", "C61", "C189", "C349", "C679", "C439", "C80"), 0.85),
    "epilepsy": (("G409", "G403"), 0.85),
    "osteoporosis": (("M819", "M8199"), 0.6),
    "rheumatoid_arthritis": (("M069", "M059"), 0.7),
    "osteoarthritis": (("M199", "M179", "M169", "M159"), 0.5),
    "parkinsons": (("G20",), 0.85),
    "peripheral_vascular_disease": (("I739", "I702"), 0.7),
    "thyroid_disease": (("E039", "E039", "E059"), 0.65),
    "chronic_liver_disease": (("K703", "K746", "K740"), 0.8),
    "alcohol_dependence": (("F102", "F101", "Z721"), 0.7),
    "learning_disability": (("F79", "F71", "F70"), 0.85),
    "falls": (("W19", "R296", "W18", "W01"), 0.5),
    "fragility_fracture": (("S720", "S721", "S525", "S422", "S327"), 0.6),
    "mobility_problems": (("R268", "R263", "Z993"), 0.45),
    "dizziness": (("R42",), 0.3),
    "dyspnoea": (("R060",), 0.3),
    "anaemia": (("D649", "D509", "D638", "D519"), 0.45),
    "skin_ulcer": (("L899", "L891", "L97"), 0.6),
    "activity_limitation": (("R54",), 0.3),
    "requirement_for_care": (("Z740", "Z741"), 0.3),
    "memory_problems": (("R413",), 0.35),
    "hearing_impairment": (("H919", "H902"), 0.2),
    "visual_impairment": (("H547", "H544"), 0.25),
    "urinary_incontinence": (("R32", "N394"), 0.3),
    "hypotension_syncope": (("I959", "I951", "R55"), 0.35),
    "weight_loss": (("R634", "E46"), 0.35),
    "tremor": (("R251",), 0.2),
    "peptic_ulcer": (("K259", "K269"), 0.4),
    "heart_valve_disease": (("I350", "I340", "I361"), 0.6),
    "sleep_disturbance": (("G479",), 0.2),
    "social_vulnerability": (("Z602",), 0.25),
    "no_fixed_abode": (("Z590",), 0.7),
}
"""Conditions with clear ICD-10 codes; the rest of the vocabulary is never coded in hospital."""

COMPANIONS = {"F009": "G309"}
"""Dagger code coded before an asterisk code (Alzheimer's disease G30.9† with its dementia F00.9*)."""

EXACERBATIONS = {
    "copd": "J441",
    "heart_failure": "I509",
    "asthma": "J459",
    "atrial_fibrillation": "I489",
    "epilepsy": "G409",
    "diabetes": "E111",
    "chronic_liver_disease": "K729",
    "alcohol_dependence": "F103",
    "serious_mental_illness": "F209",
    "dementia": "F051",
    "chronic_kidney_disease": "N179",
}
"""Primary diagnosis of an emergency spell caused by the condition (J44.1 COPD exacerbation ...)."""

OTHER_CODES = ("E785", "Z867", "Z921", "E669", "K219", "Z720", "N390", "E871", "Z864", "E559")
"""Common secondary codes outside the condition vocabulary (hyperlipidaemia, history, smoking ...)."""
OTHER_CODES_MEAN = 0.6

_METHOD_FACTOR = (
    (EMERGENCY_ADMISSION_METHODS, 1.0),
    (ELECTIVE_ADMISSION_METHODS, 0.55),
    (MATERNITY_ADMISSION_METHODS, 0.2),
)
_OTHER_METHOD_FACTOR = 0.6


def _method_factor(method: np.ndarray) -> np.ndarray:
    """How fully comorbidities are coded, by admission method (few on elective and maternity spells)."""
    factor = np.full(method.size, _OTHER_METHOD_FACTOR)
    for methods, value in _METHOD_FACTOR:
        factor[np.isin(method, methods)] = value
    return factor


def normalise_primary(codes: np.ndarray) -> np.ndarray:
    """The generator's dotted primary codes (``J18.9``) in the contract's form (``J189``)."""
    text = pd.Series(codes, dtype=object)
    return text.where(text.isna(), text.astype(str).str.replace(".", "", regex=False).str.upper()).to_numpy()


def spell_diagnoses(
    onset_day: np.ndarray,
    conditions: tuple[str, ...],
    person: np.ndarray,
    admission_day: np.ndarray,
    method: np.ndarray,
    primary: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Primary and all ICD-10 diagnoses of each spell.

    Args:
        onset_day: Latent onset day of each (person, condition); ``inf`` = never.
        conditions: Condition names in ``onset_day``'s column order.
        person: Row index of each spell's person.
        admission_day: Admission day number of each spell.
        method: Admission method code of each spell.
        primary: The primary diagnosis as drawn (dotted ICD-10), one per spell.
        rng: The ``apc`` detail generator (nothing else draws from it).

    Returns:
        ``primary`` (normalised, object array) and ``diagnoses`` (normalised codes joined by
        ``;``, primary first; object array) of each spell.
    """
    spells = person.size
    primary = normalise_primary(primary)
    coded = [c for c in conditions if c in CONDITION_CODES]
    columns = np.array([conditions.index(c) for c in coded], dtype=np.int64)
    onset = onset_day[person[:, None], columns[None, :]]
    present = onset <= admission_day[:, None]
    fracture = coded.index("fragility_fracture") if "fragility_fracture" in coded else None
    if fracture is not None:
        present[:, fracture] &= admission_day - onset[:, fracture] <= FRACTURE_DAYS

    primary = _exacerbations(primary, present, coded, method, rng)

    chance = np.array([CONDITION_CODES[c][1] for c in coded])[None, :] * _method_factor(method)[:, None]
    chosen = present & (rng.random(present.shape) < chance)
    spell, column = np.nonzero(chosen)
    options = [CONDITION_CODES[c][0] for c in coded]
    width = max(len(o) for o in options)
    table = np.array([list(o) + [""] * (width - len(o)) for o in options], dtype=object)
    count = np.array([len(o) for o in options])
    code = table[column, (rng.random(spell.size) * count[column]).astype(np.int64)]

    extra_count = rng.poisson(OTHER_CODES_MEAN * _method_factor(method))
    extra_spell = np.repeat(np.arange(spells), extra_count)
    extra_code = np.asarray(OTHER_CODES, dtype=object)[rng.integers(0, len(OTHER_CODES), extra_spell.size)]

    secondary = pd.DataFrame(
        {
            "spell": np.concatenate([spell, extra_spell]),
            "code": np.concatenate([code, extra_code]),
            "priority": rng.random(spell.size + extra_spell.size),
        }
    )
    secondary = secondary[secondary["code"].to_numpy() != primary[secondary["spell"].to_numpy()]]
    secondary = secondary.drop_duplicates(["spell", "code"]).sort_values(["spell", "priority"], kind="stable")
    secondary = secondary[secondary.groupby("spell").cumcount().to_numpy() < MAX_SECONDARY]
    none = rng.random(spells) < NO_SECONDARY_SHARE
    secondary = secondary[~none[secondary["spell"].to_numpy()]]
    secondary = _with_companions(secondary, primary)

    # Primary first, then the secondaries (already in spell order): joined per spell by Arrow.
    has_primary = pd.notna(primary)
    head = np.flatnonzero(has_primary)
    spell = np.r_[head, secondary["spell"].to_numpy()]
    code = np.r_[primary[head].astype(object), secondary["code"].to_numpy(dtype=object)]
    order = np.lexsort((np.r_[np.zeros(head.size), np.ones(len(secondary))], spell))
    counts = np.bincount(spell, minlength=spells)
    offsets = pa.array(np.r_[0, np.cumsum(counts)].astype(np.int64), type=pa.int64())
    lists = pa.LargeListArray.from_arrays(offsets, pa.array(code[order], type=pa.string()))
    diagnoses = np.asarray(
        pc.binary_join(lists, DIAGNOSIS_SEPARATOR).to_numpy(zero_copy_only=False), dtype=object
    )
    diagnoses[~has_primary] = None
    return primary, diagnoses


def _exacerbations(
    primary: np.ndarray, present: np.ndarray, coded: list[str], method: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Replace the primary of some emergency spells by an exacerbation of a condition the person has."""
    names = [c for c in coded if c in EXACERBATIONS]
    eligible = present[:, [coded.index(c) for c in names]]
    emergency = np.isin(method, EMERGENCY_ADMISSION_METHODS)
    replace = emergency & eligible.any(axis=1) & (rng.random(primary.size) < EXACERBATION_SHARE)
    pick = np.argmax(eligible * rng.random(eligible.shape), axis=1)
    codes = np.asarray([EXACERBATIONS[c] for c in names], dtype=object)
    out = primary.copy()
    out[replace] = codes[pick[replace]]
    return out


def _with_companions(secondary: pd.DataFrame, primary: np.ndarray) -> pd.DataFrame:
    """Put the dagger code in front of each asterisk code that needs one (G309 before F009)."""
    needs = secondary["code"].isin(list(COMPANIONS)).to_numpy()
    if not needs.any():
        return secondary[["spell", "code"]]
    order = np.arange(len(secondary), dtype=float)
    companion = secondary[needs].copy()
    companion["code"] = companion["code"].map(COMPANIONS)
    out = pd.concat(
        [secondary.assign(order=order), companion.assign(order=order[needs] - 0.5)], ignore_index=True
    ).sort_values(["spell", "order"], kind="stable")
    out = out[out["code"].to_numpy() != primary[out["spell"].to_numpy()]]
    return out.drop_duplicates(["spell", "code"])[["spell", "code"]]
