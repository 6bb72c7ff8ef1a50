"""Hospital-diagnosis features: frailty, comorbidity and long-term conditions coded in hospital (SUS APC).

Point in time: a spell's diagnoses are coded after discharge, so only spells
discharged on or before T count (:func:`riskstrat.features.acute.spells_known_at`),
and only those discharged within the look-back (``hospital_lookback_days``,
default 2 years, the Hospital Frailty Risk Score's own look-back; Charlson is used
with 1 to 5 years, and one look-back keeps the three features on the same spells).

Each spell's ICD-10 codes (``diagnoses``, primary first; ``primary_diagnosis`` when
an extract has no ``diagnoses``) are split into one row per code and matched to
the shipped code lists by prefix with joins on ``substr`` (a code matches a list
entry it starts with: every Charlson entry it starts with, and the longest
``icd10_conditions`` entry, as that list is defined), so no Python loop ever sees a row.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir
import pandas as pd

from riskstrat.features.acute import spells_known_at
from riskstrat.features.common import Tables, bit_count, bit_or
from riskstrat.features.point_in_time import window_start
from riskstrat.features.settings import FeatureSettings
from riskstrat.ingest.codelists import codelist, manifest
from riskstrat.ingest.contract import DIAGNOSIS_SEPARATOR
from riskstrat.ingest.reference import conditions

HFRS_LIST = "icd10_hfrs"
CHARLSON_LIST = "icd10_charlson"
CONDITIONS_LIST = "icd10_conditions"
"""ICD-10 prefix -> condition vocabulary name (shipped with the SUS APC adapter)."""
HFRS_BANDS: tuple[float, float] = (5.0, 15.0)
"""Gilbert et al. 2018: low risk below 5, intermediate 5 to 15, high above 15."""
HFRS_BAND_NAMES: tuple[str, str, str] = ("low risk", "intermediate risk", "high risk")
CHARLSON_HIERARCHY: tuple[tuple[str, str], ...] = (("mld", "msld"), ("diab", "diabwc"), ("canc", "metacanc"))
"""(milder, severer) Charlson groups: the milder one is not counted when the severer is coded."""
PREFIX_LENGTHS: tuple[int, ...] = (3, 4)


def hfrs_band(score: float) -> str:
    """The Hospital Frailty Risk Score band of ``score``: low (< 5), intermediate (5-15), high (> 15)."""
    low, high = HFRS_BANDS
    if score < low:
        return HFRS_BAND_NAMES[0]
    return HFRS_BAND_NAMES[1] if score <= high else HFRS_BAND_NAMES[2]


def _hfrs_weights() -> ir.Table:
    """``code3`` -> ``hfrs_weight`` (the 109 ICD-10 categories of the score)."""
    table = codelist(HFRS_LIST)
    return ibis.memtable(
        {"code3": table["code"].tolist(), "hfrs_weight": table["value"].astype("float64").tolist()},
        schema={"code3": "string", "hfrs_weight": "float64"},
    )


def charlson_groups() -> pd.DataFrame:
    """The Charlson groups in list order: ``group``, ``weight``, ``label``, ``bit`` (2**i)."""
    table = codelist(CHARLSON_LIST).drop_duplicates("value")
    return pd.DataFrame(
        {
            "group": table["value"].tolist(),
            "weight": table["weight"].astype("int64").tolist(),
            "label": table["label"].tolist(),
            "bit": [1 << index for index in range(len(table))],
        }
    )


def _prefix_bits(prefixes: pd.DataFrame, bits: dict[str, int]) -> ir.Table:
    """List entries as ``prefix``, ``prefix_length``, ``_bit`` (entries naming no known bit are dropped)."""
    known = prefixes[prefixes["value"].isin(bits)]
    codes = known["code"].str.upper().str.replace(".", "", regex=False)
    return ibis.memtable(
        {
            "prefix": codes.tolist(),
            "prefix_length": codes.str.len().astype("int64").tolist(),
            "_bit": [bits[value] for value in known["value"]],
        },
        schema={"prefix": "string", "prefix_length": "int64", "_bit": "int64"},
    )


def _condition_prefixes() -> ir.Table:
    """ICD-10 prefixes of the vocabulary's long-term conditions, each with the condition's bit.

    The bits are those of :func:`riskstrat.features.primary.condition_features`, so a
    hospital set and a GP set of conditions compare bit by bit. Empty if the
    ``icd10_conditions`` list is not shipped.
    """
    names = conditions()["condition"].tolist()
    long_term = {name for name, flag in zip(names, conditions()["is_ltc"], strict=True) if flag}
    bits = {name: 1 << index for index, name in enumerate(names) if name in long_term}
    return _prefix_bits(condition_prefix_list(), bits)


def condition_prefix_list() -> pd.DataFrame:
    """The ``icd10_conditions`` list (``code`` prefix, ``value`` condition); empty if it is not shipped."""
    if CONDITIONS_LIST not in manifest():
        return pd.DataFrame({"code": [], "value": []}, dtype=str)
    # One condition per prefix, the first listed (as code_map reads a repeated code).
    return codelist(CONDITIONS_LIST).drop_duplicates("code")


def diagnoses_known_at(tables: Tables, as_of: date, settings: FeatureSettings) -> ir.Table:
    """One row per person and distinct ICD-10 code of the spells discharged in the look-back to T.

    Returns:
        ``person_id``, ``code`` (upper case, no dot, dagger or asterisk), ``code3``, ``code4``.
    """
    spells = spells_known_at(tables, as_of, settings)
    since = window_start(as_of, settings.hospital_lookback_days)
    coded = spells.filter(spells.discharge_known.notnull() & (spells.discharge_known > since))
    # An extract without the diagnoses column (older contract files) still has the primary diagnosis.
    listed = ibis.coalesce(coded.diagnoses.nullif(""), coded.primary_diagnosis)
    codes = coded.select("person_id", code=listed.split(DIAGNOSIS_SEPARATOR).unnest())
    cleaned = codes.code.upper().re_replace(r"[^A-Z0-9]", "")
    codes = codes.select("person_id", code=cleaned).filter(lambda t: t.code.length() >= 3).distinct()
    return codes.mutate(code3=codes.code.substr(0, 3), code4=codes.code.substr(0, 4))


def _prefix_matches(codes: ir.Table, prefixes: ir.Table) -> ir.Table:
    """``person_id`` and ``_bit`` of every list entry a person's code starts with (3- and 4-character entries)."""
    matched = []
    for length in PREFIX_LENGTHS:
        entries = prefixes.filter(prefixes.prefix_length == length).select("prefix", "_bit")
        key = codes[f"code{length}"]
        joined = codes.inner_join(entries, key == entries.prefix)
        matched.append(joined.select("person_id", "_bit"))
    return ibis.union(*matched, distinct=False)


def _longest_prefix_matches(codes: ir.Table, prefixes: ir.Table) -> ir.Table:
    """``person_id`` and ``_bit`` of the longest list entry each code starts with (a 4-character one first).

    The ``icd10_conditions`` rule: I110 (hypertensive heart disease with heart failure) is
    heart failure by its 4-character entry, not also hypertension by I11.
    """
    four = prefixes.filter(prefixes.prefix_length == 4).select(_prefix4="prefix", _bit4="_bit")
    three = prefixes.filter(prefixes.prefix_length == 3).select(_prefix3="prefix", _bit3="_bit")
    joined = codes.left_join(four, codes.code4 == four._prefix4)
    joined = joined.left_join(three, joined.code3 == three._prefix3)
    matched = joined.select("person_id", _bit=ibis.coalesce(joined._bit4, joined._bit3))
    return matched.filter(matched._bit.notnull())


def charlson_index(groups: ir.IntegerValue) -> ir.IntegerValue:
    """The Charlson index of a set of groups (bits ORed together), milder forms dropped (assign-zero rule)."""
    table = charlson_groups()
    bits = dict(zip(table["group"], table["bit"], strict=True))
    weights = dict(zip(table["group"], table["weight"], strict=True))
    masked = groups
    for milder, severer in CHARLSON_HIERARCHY:
        held_severer = (groups & bits[severer]) != 0
        masked = held_severer.ifelse(masked & (sum(bits.values()) - bits[milder]), masked)
    terms = [((masked & bits[group]) != 0).ifelse(weight, 0) for group, weight in weights.items()]
    return sum(terms[1:], terms[0]).cast("int64")


def hospital_features(tables: Tables, as_of: date, settings: FeatureSettings) -> list[ir.Table]:
    """Hospital diagnoses in the look-back, one row per person with a coded spell.

    Returns:
        Two aggregates: ``person_id``, ``hospital_frailty_score`` (sum of the weights of the
        distinct HFRS categories coded); and ``person_id``, ``charlson_index`` and the helper
        ``_hospital_conditions`` (long-term conditions coded in hospital as condition bits,
        compared with the GP record in the matrix: ``hospital_ltc_not_on_gp_record``).
    """
    codes = diagnoses_known_at(tables, as_of, settings)
    hfrs = _hfrs_weights()
    scored = codes.select("person_id", "code3").distinct()
    scored = scored.inner_join(hfrs, "code3")
    frailty = scored.group_by("person_id").agg(hospital_frailty_score=scored.hfrs_weight.sum())
    table = charlson_groups()
    charlson_bits = dict(zip(table["group"], table["bit"], strict=True))
    charlson = _prefix_matches(codes, _prefix_bits(codelist(CHARLSON_LIST), charlson_bits))
    charlson = charlson.mutate(_kind=ibis.literal("charlson"))
    ltc = _longest_prefix_matches(codes, _condition_prefixes()).mutate(_kind=ibis.literal("ltc"))
    both = ibis.union(charlson, ltc, distinct=False)
    by_person = both.group_by("person_id").agg(
        _charlson=bit_or((both._kind == "charlson").ifelse(both._bit, 0)),
        _hospital_conditions=bit_or((both._kind == "ltc").ifelse(both._bit, 0)),
    )
    comorbidity = by_person.select(
        "person_id",
        charlson_index=charlson_index(by_person._charlson),
        _hospital_conditions="_hospital_conditions",
    )
    return [frailty, comorbidity]


def hospital_ltc_not_on_gp_record(
    hospital_conditions: ir.IntegerValue, gp_conditions: ir.IntegerValue
) -> ir.IntegerValue:
    """Long-term conditions coded in hospital that the GP record does not hold as current at T."""
    # (h & ~g) without a bitwise NOT: h minus the bits it shares with g.
    return bit_count(hospital_conditions - (hospital_conditions & gp_conditions))
