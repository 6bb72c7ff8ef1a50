"""Measure a generated extract against the published figures it is calibrated to.

Each function reads contract tables (as pandas frames) only, so the same
measuring stick works on any extract. The year measured is the 365 days
after ``as_of``; the cohort is everyone alive and registered at ``as_of``.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from riskstrat.ingest.contract import EMERGENCY_ADMISSION_METHODS
from riskstrat.ingest.reference import conditions, imd_lookup

AGE_BANDS = (0, 20, 40, 60, 80, 200)
AGE_LABELS = ("0-19", "20-39", "40-59", "60-79", "80+")


def _window(as_of: date, days: int = 365) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(as_of)
    return start, start + pd.Timedelta(days=days)


def cohort(tables: dict[str, pd.DataFrame], as_of: date) -> pd.DataFrame:
    """People alive and registered at ``as_of`` with age, IMD decile and care-home flag."""
    patients = tables["patients"]
    t = pd.Timestamp(as_of)
    alive = patients["date_of_death"].isna() | (patients["date_of_death"] > t)
    registered = (patients["registration_start"] <= t) & (
        patients["registration_end"].isna() | (patients["registration_end"] > t)
    )
    people = patients.loc[alive & registered & (patients["birth_date"] <= t)].copy()
    people["age"] = (t - people["birth_date"]).dt.days / 365.25
    people["age_band"] = pd.cut(people["age"], AGE_BANDS, right=False, labels=AGE_LABELS)
    deciles = imd_lookup().set_index("lsoa_code")["imd_decile"]
    people["imd_decile"] = people["lsoa_code"].map(deciles)
    diagnoses = tables["gp_diagnoses"]
    care_home = diagnoses.loc[
        (diagnoses["condition"] == "care_home_resident") & (diagnoses["event_date"] <= t), "person_id"
    ]
    people["care_home"] = people["person_id"].isin(care_home)
    return people.reset_index(drop=True)


def emergency_spells(tables: dict[str, pd.DataFrame], as_of: date, days: int = 365) -> pd.DataFrame:
    """Emergency admissions starting in (as_of, as_of + days]."""
    spells = tables["apc_spells"]
    start, end = _window(as_of, days)
    emergency = spells["admission_method"].isin(EMERGENCY_ADMISSION_METHODS)
    return spells.loc[emergency & (spells["admission_date"] > start) & (spells["admission_date"] <= end)]


def emergency_outcome(tables: dict[str, pd.DataFrame], as_of: date, days: int = 365) -> pd.DataFrame:
    """The cohort with ``emergency_admission`` = 1 if admitted as an emergency or died in the window."""
    people = cohort(tables, as_of)
    start, end = _window(as_of, days)
    admitted = set(emergency_spells(tables, as_of, days)["person_id"])
    deaths = tables["patients"]
    died = set(deaths.loc[(deaths["date_of_death"] > start) & (deaths["date_of_death"] <= end), "person_id"])
    people["emergency_admission"] = people["person_id"].isin(admitted | died).astype(int)
    return people


def admission_rate_by(outcome: pd.DataFrame, column: str) -> pd.Series:
    """Share with an emergency admission or death, by ``column``."""
    return outcome.groupby(column, observed=True)["emergency_admission"].mean()


def deprivation_ratio(outcome: pd.DataFrame) -> float:
    """Rate in the most deprived decile divided by the rate in the least deprived."""
    rates = admission_rate_by(outcome, "imd_decile")
    return float(rates.loc[1] / rates.loc[10])


def admissions_per_person_65plus(tables: dict[str, pd.DataFrame], as_of: date) -> float:
    """Emergency admissions in the year per person aged 65+ in the cohort."""
    people = cohort(tables, as_of)
    older = set(people.loc[people["age"] >= 65, "person_id"])
    spells = emergency_spells(tables, as_of)
    return float(spells["person_id"].isin(older).sum() / len(older))


def ae_conversion(tables: dict[str, pd.DataFrame], as_of: date) -> float:
    """Share of A&E attendances in the year that end in admission."""
    ae = tables["ae_attendances"]
    start, end = _window(as_of)
    arrival = ae["arrival_datetime"]
    year = ae.loc[(arrival > start) & (arrival < end + pd.Timedelta(days=1))]
    return float((year["disposal"] == "admitted").mean())


def readmission_30d_65plus(tables: dict[str, pd.DataFrame], as_of: date) -> float:
    """Share of emergency admissions of people 65+ (discharged alive) followed by another within 30 days."""
    people = cohort(tables, as_of)
    older = set(people.loc[people["age"] >= 65, "person_id"])
    spells = tables["apc_spells"]
    emergency = spells.loc[spells["admission_method"].isin(EMERGENCY_ADMISSION_METHODS)]
    emergency = emergency.sort_values(["person_id", "admission_date"])
    start, end = _window(as_of)
    index = emergency.loc[
        (emergency["admission_date"] > start)
        & (emergency["discharge_date"] <= end)
        & (emergency["discharge_method"] != "4")
        & emergency["person_id"].isin(older)
    ]
    merged = index[["spell_id", "person_id", "discharge_date"]].merge(
        emergency[["spell_id", "person_id", "admission_date"]], on="person_id", suffixes=("", "_next")
    )
    gap = (merged["admission_date"] - merged["discharge_date"]).dt.days
    follows = (merged["spell_id_next"] != merged["spell_id"]) & (gap >= 0) & (gap <= 30)
    readmitted = set(merged.loc[follows, "spell_id"])
    return float(index["spell_id"].isin(readmitted).mean())


def frequent_attenders(
    tables: dict[str, pd.DataFrame], as_of: date, threshold: int = 5
) -> tuple[float, float]:
    """Share of the cohort with ``threshold``+ attendances in the year, and their share of attendances."""
    people = cohort(tables, as_of)
    ae = tables["ae_attendances"]
    start, end = _window(as_of)
    arrival = ae["arrival_datetime"]
    year = ae.loc[
        (arrival > start) & (arrival < end + pd.Timedelta(days=1)) & ae["person_id"].isin(people["person_id"])
    ]
    counts = year["person_id"].value_counts()
    frequent = counts[counts >= threshold]
    return float(len(frequent) / len(people)), float(frequent.sum() / counts.sum())


def care_home_shares(tables: dict[str, pd.DataFrame], as_of: date) -> tuple[float, float]:
    """Share of the cohort living in a care home (recorded by as_of) and their share of emergency admissions."""
    people = cohort(tables, as_of)
    residents = set(people.loc[people["care_home"], "person_id"])
    spells = emergency_spells(tables, as_of)
    spells = spells.loc[spells["person_id"].isin(people["person_id"])]
    return float(people["care_home"].mean()), float(spells["person_id"].isin(residents).mean())


def efi_categories_65plus(tables: dict[str, pd.DataFrame], as_of: date) -> pd.Series:
    """Shares of people 65+ in each eFI category (fit, mild, moderate, severe) at ``as_of``.

    eFI = distinct deficits recorded by as_of (plus polypharmacy: 5+ distinct BNF
    sections issued in the prior 12 months) / 36.
    """
    t = pd.Timestamp(as_of)
    people = cohort(tables, as_of)
    older = people.loc[people["age"] >= 65, ["person_id"]]
    deficit_of = conditions().set_index("condition")["efi_deficit"]
    diagnoses = tables["gp_diagnoses"]
    recorded = diagnoses.loc[diagnoses["event_date"] <= t].assign(
        deficit=lambda d: d["condition"].map(deficit_of)
    )
    recorded = recorded.loc[recorded["deficit"].fillna("") != ""]
    deficits = recorded.groupby("person_id")["deficit"].nunique()
    meds = tables["gp_medications"]
    recent = meds.loc[(meds["issue_date"] <= t) & (meds["issue_date"] > t - pd.Timedelta(days=365))]
    sections = recent.assign(section=recent["bnf_code"].str[:4]).groupby("person_id")["section"].nunique()
    count = older["person_id"].map(deficits).fillna(0) + (older["person_id"].map(sections).fillna(0) >= 5)
    efi = count / 36
    category = pd.cut(efi, [-1, 0.12, 0.24, 0.36, 2], labels=["fit", "mild", "moderate", "severe"])
    return category.value_counts(normalize=True).reindex(["fit", "mild", "moderate", "severe"])


def prior_use_ratio(tables: dict[str, pd.DataFrame], as_of: date) -> float:
    """Emergency rate in the year after as_of for people admitted in the year before, over those not."""
    outcome = emergency_outcome(tables, as_of)
    before = tables["apc_spells"]
    before = before.loc[
        before["admission_method"].isin(EMERGENCY_ADMISSION_METHODS)
        & (before["admission_date"] <= pd.Timestamp(as_of))
        & (before["admission_date"] > pd.Timestamp(as_of) - pd.Timedelta(days=365))
    ]
    prior = outcome["person_id"].isin(before["person_id"])
    return float(
        outcome.loc[prior, "emergency_admission"].mean() / outcome.loc[~prior, "emergency_admission"].mean()
    )


def oracle_auroc(tables: dict[str, pd.DataFrame], truth_risk: pd.DataFrame, as_of: date) -> float:
    """AUROC of the true probability against the observed outcome (the best any model can do)."""
    from sklearn.metrics import roc_auc_score

    outcome = emergency_outcome(tables, as_of)
    truth = truth_risk.loc[truth_risk["as_of"] == pd.Timestamp(as_of), ["person_id", "p_emergency_admission"]]
    merged = outcome.merge(truth, on="person_id")
    return float(roc_auc_score(merged["emergency_admission"], merged["p_emergency_admission"]))


def summary(tables: dict[str, pd.DataFrame], truth_risk: pd.DataFrame, as_of: date) -> dict[str, object]:
    """Every calibration figure in one dictionary (for the docs and the benchmark)."""
    outcome = emergency_outcome(tables, as_of)
    fa_people, fa_share = frequent_attenders(tables, as_of)
    ch_people, ch_share = care_home_shares(tables, as_of)
    return {
        "emergency_admission_or_death": float(outcome["emergency_admission"].mean()),
        "by_age": admission_rate_by(outcome, "age_band").round(3).to_dict(),
        "deprivation_ratio": deprivation_ratio(outcome),
        "admissions_per_person_65plus": admissions_per_person_65plus(tables, as_of),
        "ae_conversion": ae_conversion(tables, as_of),
        "readmission_30d_65plus": readmission_30d_65plus(tables, as_of),
        "frequent_attender_people": fa_people,
        "frequent_attender_attendances": fa_share,
        "care_home_people": ch_people,
        "care_home_admissions": ch_share,
        "efi_65plus": efi_categories_65plus(tables, as_of).round(3).to_dict(),
        "prior_use_ratio": prior_use_ratio(tables, as_of),
        "oracle_auroc": oracle_auroc(tables, truth_risk, as_of),
        "mean_true_risk": float(
            truth_risk.loc[truth_risk["as_of"] == pd.Timestamp(as_of), "p_emergency_admission"].mean()
        ),
    }


__all__ = [name for name in dir() if not name.startswith("_") and name not in {"date", "np", "pd"}]
