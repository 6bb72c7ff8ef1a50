"""Rebuild ``snomed_conditions.csv`` from the DynAIRx Baseline2 list (a maintenance script).

Run ``python -m riskstrat.ingest.codelists.build_snomed_conditions <Baseline2_Codelist.csv>``
when the Baseline2 list or the condition vocabulary changes. The shipped CSV is
the output; nothing reads this module at run time.

What it does:

- maps each Baseline2 ``Deficit`` group onto the condition vocabulary
  (``ingest/reference/conditions.csv``) with :data:`GROUP_CONDITIONS`; groups mapped
  to "" are left out (listed in ``README.md``);
- splits two groups by the code's description (alcohol consumption levels are not
  alcohol dependence; a tremor is not Parkinson's disease) and moves the care-home
  residence codes out of "Requirement for care" into ``care_home_resident``;
- adds the codes Baseline2 lacks, each checked in a public source (:data:`EXTRA_CODES`):
  resolved codes of the QOF registers, recorded eFI scores, learning disability, homelessness;
- keeps one row per code (a code in two groups goes to the long-term condition).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from riskstrat.ingest.codes import is_snomed_id
from riskstrat.ingest.reference import conditions

HERE = Path(__file__).parent

GROUP_CONDITIONS: dict[str, str] = {
    "Abdominal pain": "",
    "Activity limitation": "activity_limitation",
    "Alcohol": "alcohol_dependence",  # only dependence/misuse codes, see _alcohol_dependence
    "Anaemia & haematinic deficiency": "anaemia",
    "Anxiety": "anxiety",
    "Asthma": "asthma",
    "Atrial fibrillation": "atrial_fibrillation",
    "Back pain": "",
    "Body mass index": "",
    "Bone disease": "",
    "COPD": "copd",
    "Cancer": "cancer",
    "Chronic kidney disease": "chronic_kidney_disease",
    "Cognitive impairment": "memory_problems",
    "Dementia": "dementia",
    "Depression": "depression",
    "Diabetes mellitus": "diabetes",
    "Dizziness": "dizziness",
    "Dressing & grooming problems": "activity_limitation",
    "Dyspnoea": "dyspnoea",
    "Environment problems": "",
    "Faecal incontinence": "",
    "Falls": "falls",
    "Fatigue": "",
    "Foot problems": "foot_problems",
    "Fracture": "",
    "Fragility fracture": "fragility_fracture",
    "General mental health": "",
    "Headache": "",
    "Hearing impairment": "hearing_impairment",
    "Heart Failure": "heart_failure",
    "Heart valve disease": "heart_valve_disease",
    "Housebound": "housebound",
    "Hypertension": "hypertension",
    "Hypotension / syncope": "hypotension_syncope",
    "Inflammatory arthritis": "rheumatoid_arthritis",
    "Inflammatory bowel disease": "",
    "Ischaemic heart disease": "coronary_heart_disease",
    "Liver problems": "chronic_liver_disease",
    "Meal preparation problems": "activity_limitation",
    "Medication management problems": "activity_limitation",
    "Memory concerns": "memory_problems",
    "Mobility problems": "mobility_problems",
    "Mono/hemiparesis": "",
    "Motor neuron disease": "",
    "Musculoskeletal problems": "",
    "Obesity": "",
    "Osteoarthritis": "osteoarthritis",
    "Osteoporosis": "osteoporosis",
    "Palliative care": "",
    "Parkinsonism & tremor": "parkinsons",  # tremor codes go to tremor, see _split
    "Peptic ulcer disease": "peptic_ulcer",
    "Peripheral neuropathy": "",
    "Peripheral vascular disease": "peripheral_vascular_disease",
    "Problems managing finances": "activity_limitation",
    "Requirement for care": "requirement_for_care",
    "Respiratory disease": "other_respiratory_disease",
    "Seizures": "epilepsy",
    "Self-harm": "self_harm",
    "Severe mental illness": "serious_mental_illness",
    "Shopping problems": "activity_limitation",
    "Skin ulcer": "skin_ulcer",
    "Sleep problems": "sleep_disturbance",
    "Smoker (current)": "",
    "Smoker (ex)": "",
    "Social vulnerability": "social_vulnerability",
    "Stress": "",
    "Stroke": "stroke_tia",
    "Thyroid problems": "thyroid_disease",
    "Toileting problems": "activity_limitation",
    "Transient ischaemic attack": "stroke_tia",
    "Urinary incontinence": "urinary_incontinence",
    "Urinary system disease": "urinary_system_disease",
    "Visual impairment": "visual_impairment",
    "Washing & bathing problems": "activity_limitation",
    "Weakness": "",
    "Weight loss": "weight_loss",
}
"""Baseline2 ``Deficit`` group -> condition vocabulary name ("" = no home; left out)."""

DIAGNOSIS_CLUSTERS: dict[str, str] = {
    "hypertension": "HYP_COD",
    "diabetes": "DM_COD",
    "asthma": "AST_COD",
    "copd": "COPD_COD",
    "coronary_heart_disease": "CHD_COD",
    "heart_failure": "HF_COD",
    "atrial_fibrillation": "AFIB_COD",
    "stroke_tia": "STRK_COD",
    "chronic_kidney_disease": "CKD_COD",
    "dementia": "DEM_COD",
    "depression": "DEPR_COD",
    "anxiety": "ANX_COD",
    "serious_mental_illness": "MH_COD",
    "cancer": "CAN_COD",
    "epilepsy": "EPIL_COD",
    "osteoporosis": "OSTEO_COD",
    "rheumatoid_arthritis": "RARTH_COD",
    "peripheral_vascular_disease": "PAD_COD",
    "learning_disability": "LD_COD",
    "thyroid_disease": "THY_COD",
}
"""The NHS England primary care domain cluster of each condition's register (as an ICB warehouse
names it, e.g. ncl-icb-analytics/dbt-ncl-analytics). It names the register the condition stands
for; whether each Baseline2 code is a member of that refset is not checked."""

EXTRA_CODES: tuple[tuple[str, str, str, str, str, str], ...] = (
    # code, condition, status, cluster, description, where the ID was checked
    ("162659009", "hypertension", "resolved", "HYPRES_COD", "Hypertension resolved",
     "opensafely/winter-pressures-phase-II nhsd-primary-care-domain-refsets-hypres_cod.csv"),
    ("315051004", "diabetes", "resolved", "DMRES_COD", "Diabetes resolved",
     "opensafely/dataset-definition-testing-examples nhsd-primary-care-domain-refsets-dmres_cod.csv"),
    ("162660004", "asthma", "resolved", "ASTRES_COD", "Asthma resolved",
     "public QOF register test fixtures and SQL code sets (asthma-resolved concept)"),
    ("196381000000100", "depression", "resolved", "DEPRES_COD", "Depression resolved",
     "wpsharpe/MondayTraining nhsd-primary-care-domain-refsets-depres_cod.csv"),
    ("941201000000103", "copd", "resolved", "COPDRES_COD", "Chronic obstructive pulmonary disease resolved",
     "opensafely/winter-pressures-phase-II nhsd-primary-care-domain-refsets-copdres_cod.csv; also in Baseline2"),
    # 195080001 is "Atrial fibrillation and flutter", a diagnosis: listed as resolved it switched AF off.
    ("195080001", "atrial_fibrillation", "diagnosed", "AFIB_COD", "Atrial fibrillation and flutter",
     "public EMIS GUID to SNOMED CT mapping example; a diagnosis (AFIB_COD), not the resolved code"),
    ("196371000000102", "atrial_fibrillation", "resolved", "AFIBRES_COD", "Atrial fibrillation resolved",
     "NHS England primary care domain refset AFIBRES_COD (as published in public FHIR value sets)"),
    ("918321000000104", "alcohol_dependence", "resolved", "", "Alcohol dependence resolved", "Baseline2"),
    ("713634000", "recorded_efi", "diagnosed", "EFI_SCORE", "Frailty index score (eFI, recorded with a value)",
     "Discovery data service frailty concepts; Barts LBHSC value dataset"),
    ("713636003", "recorded_efi", "diagnosed", "EFI_SCORE",
     "Frailty index score (eFI, used by EMIS Web from July 2018, recorded with a value)",
     "Discovery data service frailty concepts (comment: EMIS uses this code from Jul 2018)"),
    ("110359009", "learning_disability", "diagnosed", "LD_COD", "Intellectual disability",
     "opensafely/ckd-coverage-ve nhsd-primary-care-domain-refsets-ld_cod.csv"),
    ("416075005", "learning_disability", "diagnosed", "LD_COD", "On learning disability register",
     "opensafely/ckd-coverage-ve nhsd-primary-care-domain-refsets-ld_cod.csv"),
    ("508171000000105", "learning_disability", "diagnosed", "LD_COD", "Severe learning disability",
     "opensafely/ckd-coverage-ve nhsd-primary-care-domain-refsets-ld_cod.csv"),
    ("61152003", "learning_disability", "diagnosed", "LD_COD", "Moderate intellectual disability",
     "opensafely/ckd-coverage-ve nhsd-primary-care-domain-refsets-ld_cod.csv"),
    ("40700009", "learning_disability", "diagnosed", "LD_COD", "Severe intellectual disability",
     "opensafely/ckd-coverage-ve nhsd-primary-care-domain-refsets-ld_cod.csv"),
    ("41040004", "learning_disability", "diagnosed", "LD_COD", "Complete trisomy 21 syndrome",
     "opensafely/ckd-coverage-ve nhsd-primary-care-domain-refsets-ld_cod.csv"),
    ("32911000", "no_fixed_abode", "diagnosed", "", "Homeless", "HL7 FHIR implementation guides (SNOMED CT 32911000 Homeless)"),
)  # fmt: skip
"""Codes Baseline2 does not carry, each ID checked in the public source named."""

CARE_HOME_CODES = ("160734000", "248171000000108", "394923006")
"""Lives in a nursing home / in a care home / in a residential home (Baseline2 "Requirement for care")."""

VALUE_RULE = r"greater than|less than|>0|abnormal result|reading|BMI|result below|any value"
"""Baseline2 ``Otherinstructions`` that make a code count only for some values (those codes are left out)."""

_ALCOHOL_DEPENDENCE = r"depend|misuse|abuse|alcoholi|harmful|hazardous|withdrawal|detox|korsakov|delirium|psychos|binge|very heavy|heavy drinker|community alcohol team|specialist alcohol|addiction"
"""Alcohol codes that say dependence or harmful use (consumption levels such as "light drinker" do not)."""


def build(baseline2: Path) -> pd.DataFrame:
    """The ``snomed_conditions`` list from the Baseline2 CSV (see the module docstring)."""
    raw = pd.read_csv(baseline2, dtype=str, keep_default_na=False, encoding="utf-8")
    unknown = sorted(set(raw["Deficit"]) - set(GROUP_CONDITIONS))
    if unknown:
        raise ValueError(f"Baseline2 groups with no mapping decision: {unknown}")
    frame = pd.DataFrame(
        {
            "code": raw["SNOMEDCT_CONCEPTID"].str.strip(),
            "value": raw["Deficit"].map(GROUP_CONDITIONS),
            "status": "diagnosed",
            "cluster": "",
            "lookback_years": raw["TimeConstraintyears"].str.strip(),
            "age_limit": raw["AgeLimit"].str.strip(),
            "rule": raw["Otherinstructions"].str.strip().str.replace(r"\s+", " ", regex=True),
            "group": raw["Deficit"],
            "description": raw["Codedescription"].str.strip().str.replace(r"\s+", " ", regex=True),
            "source": "Baseline2",
        }
    )
    text = frame["description"].str.lower()
    alcohol = frame["group"] == "Alcohol"
    frame.loc[alcohol & ~text.str.contains(_ALCOHOL_DEPENDENCE), "value"] = ""
    tremor_only = (
        (frame["group"] == "Parkinsonism & tremor")
        & text.str.contains("tremor")
        & ~text.str.contains("parkinson")
    )
    frame.loc[tremor_only, "value"] = "tremor"
    frame.loc[frame["code"].isin(CARE_HOME_CODES), "value"] = "care_home_resident"
    frame.loc[frame["code"].isin({"941201000000103", "918321000000104"}), "status"] = "resolved"
    # Observations that count only above or below a value (BP readings, lab results, scores) would
    # make every measured person a case without the value rule: left out. So are IDs that are not
    # SNOMED CT identifiers (long IDs whose last digits were lost to a spreadsheet's number format).
    frame.loc[frame["rule"].str.contains(VALUE_RULE, case=False), "value"] = ""
    frame.loc[~frame["code"].map(is_snomed_id), "value"] = ""
    frame = frame[frame["value"] != ""]
    extra = pd.DataFrame(
        [
            {"code": c, "value": v, "status": s, "cluster": k, "lookback_years": "", "age_limit": "", "rule": "",
             "group": "",
             "description": d, "source": src}
            for c, v, s, k, d, src in EXTRA_CODES
        ]
    )  # fmt: skip
    frame = pd.concat([extra, frame], ignore_index=True)
    # One row per code: the extra (checked) codes first, then long-term conditions before deficits.
    is_ltc = frame["value"].map(conditions().set_index("condition")["is_ltc"]).fillna(False).astype(bool)
    frame = frame.assign(_extra=frame["source"] != "Baseline2", _ltc=is_ltc)
    frame = frame.sort_values(["_extra", "_ltc"], ascending=False, kind="stable")
    frame = frame.drop_duplicates("code").drop(columns=["_extra", "_ltc"])
    diagnosed = frame["status"] == "diagnosed"
    clusters = frame["value"].map(DIAGNOSIS_CLUSTERS).fillna("")
    frame.loc[diagnosed & (frame["cluster"] == ""), "cluster"] = clusters[
        diagnosed & (frame["cluster"] == "")
    ]
    frame.loc[frame["group"] == "Transient ischaemic attack", "cluster"] = "TIA_COD"
    bad = [code for code in frame["code"] if not is_snomed_id(code)]
    if bad:
        raise ValueError(f"not SNOMED CT identifiers: {bad[:10]}")
    missing = sorted(set(frame["value"]) - set(conditions()["condition"]))
    if missing:
        raise ValueError(f"conditions not in the vocabulary: {missing}")
    return frame.sort_values(["value", "status", "code"], kind="stable").reset_index(drop=True)


def left_out(baseline2: Path) -> dict[str, int]:
    """How many Baseline2 rows are left out and why, for the README."""
    raw = pd.read_csv(baseline2, dtype=str, keep_default_na=False, encoding="utf-8")
    no_home = raw["Deficit"].map(GROUP_CONDITIONS) == ""
    value_rule = ~no_home & raw["Otherinstructions"].str.contains(VALUE_RULE, case=False)
    bad_id = ~no_home & ~raw["SNOMEDCT_CONCEPTID"].str.strip().map(is_snomed_id)
    return {
        "groups with no home": int(no_home.sum()),
        "value-rule observations": int(value_rule.sum()),
        "damaged IDs": int((bad_id & ~value_rule).sum()),
    }


if __name__ == "__main__":
    source = Path(sys.argv[1])
    table = build(source)
    table.to_csv(HERE / "snomed_conditions.csv", index=False, encoding="utf-8", lineterminator="\n")
    print(f"{len(table)} codes, {table['value'].nunique()} conditions")
    print(left_out(source))
