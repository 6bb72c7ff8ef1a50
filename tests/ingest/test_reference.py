import pandas as pd

from riskstrat.ingest import reference
from riskstrat.ingest.contract import ETHNIC_CATEGORY_CODES


def test_imd_lookup_covers_england_with_quintiles():
    imd = reference.imd_lookup()
    assert len(imd) == 32_844
    assert imd["lsoa_code"].is_unique
    assert imd["lsoa_code"].str.match(reference.LSOA_PATTERN).all()
    assert set(imd["imd_decile"]) == set(range(1, 11))
    # Quintile 1 is the most deprived 20% (Core20): deciles 1 and 2.
    assert (imd.loc[imd["imd_decile"].isin([1, 2]), "imd_quintile"] == 1).all()
    assert (imd.loc[imd["imd_decile"] == 10, "imd_quintile"] == 5).all()
    # Thousands separators in the published file are parsed.
    assert imd.loc[imd["lsoa_code"] == "E01000001", "imd_rank"].item() == 29_199


def test_black_country_footprint_is_real():
    imd = reference.imd_lookup()
    black_country = imd[imd["lad_code"].isin(["E08000027", "E08000028", "E08000030", "E08000031"])]
    assert len(black_country) == 712
    assert 1_100_000 < black_country["population"].sum() < 1_250_000
    assert set(black_country["imd_decile"]) == set(range(1, 11))


def test_every_ethnic_code_has_a_census_group_and_unknowns_stay_a_group():
    table = reference.ethnic_categories()
    assert set(table["code"]) == set(ETHNIC_CATEGORY_CODES)
    assert set(table["census_2021_group"]) == set(reference.CENSUS_GROUPS)
    groups = reference.ethnic_group(pd.Series(["A", "N", "Z", "99", None, "bad"]))
    assert groups.tolist() == ["White", "Black", *[reference.NOT_KNOWN_GROUP] * 4]


def test_condition_vocabulary_has_the_36_efi_deficits():
    assert len(reference.efi_deficits()) == 36
    assert "polypharmacy" in reference.efi_deficits()
    assert "heart_failure" in reference.long_term_conditions()
    assert reference.conditions()["condition"].is_unique


def test_code_lists_are_complete():
    methods = reference.admission_methods()
    assert set(methods.loc[methods["group"] == "emergency", "code"]) == {
        "21",
        "22",
        "23",
        "24",
        "25",
        "2A",
        "2B",
        "2C",
        "2D",
        "28",
    }
    assert reference.department_types()["code"].tolist() == ["01", "02", "03", "04"]
    assert len(reference.bnf_chapters()) == 15


def test_attribution_ships_with_the_data():
    readme = (reference.REFERENCE_DIR / "imd2019" / "README.md").read_text()
    assert "Open Government Licence v3.0" in readme
