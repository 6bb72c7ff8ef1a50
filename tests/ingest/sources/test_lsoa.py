"""LSOA 2011 or 2021 of residence onto LSOA 2011 through the shipped ONS best-fit lookup."""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskstrat.ingest.codelists import codelist, manifest
from riskstrat.ingest.sources.lsoa import lsoa2011_codes, to_lsoa2011, to_lsoa2021

# From the ONS best-fit lookup: E01033769 (new in 2021) is the best fit of E01028040 and
# E01028041 (a merge: the first is used); E01000001 is unchanged.
MERGED_2021, FIRST_2011, SECOND_2011 = "E01033769", "E01028040", "E01028041"


def test_the_lookup_is_shipped_with_its_licence_and_only_new_2021_codes():
    info = manifest()["lsoa2021_lsoa2011"]
    assert "Open Government Licence" in info.licence
    table = codelist("lsoa2021_lsoa2011")
    assert table["code"].is_unique
    assert not set(table["code"]) & lsoa2011_codes()  # unchanged codes need no row
    assert set(table["value"]) <= lsoa2011_codes()
    row = table.set_index("code").loc[MERGED_2021]
    assert row["value"] == FIRST_2011
    assert row["lsoa11_codes"].split(";") == [FIRST_2011, SECOND_2011]


def test_2011_codes_pass_2021_codes_map_and_unknown_codes_stay_and_are_counted():
    codes = pd.Series(
        ["E01000001", MERGED_2021, " e01033769 ", "E01099999", "W01000001", "E01099999", None], dtype="string"
    )
    mapped, coverage = to_lsoa2011(codes, "gp_registrations", "LSOA")
    assert mapped.tolist()[:6] == ["E01000001", FIRST_2011, FIRST_2011, "E01099999", "W01000001", "E01099999"]
    assert pd.isna(mapped.iloc[6])
    assert (coverage.source, coverage.field, coverage.rows, coverage.mapped) == (
        "gp_registrations",
        "LSOA",
        6,
        3,
    )
    assert [(u.code, u.rows) for u in coverage.unmapped] == [("E01099999", 2), ("W01000001", 1)]


def test_to_lsoa2021_rewrites_only_codes_that_come_back_to_themselves():
    codes = pd.Series([FIRST_2011, SECOND_2011, "E01000001"] * 50, dtype="string")
    written = to_lsoa2021(codes, 1.0, np.random.default_rng(0))
    assert set(written[codes == FIRST_2011]) == {MERGED_2021}
    assert set(written[codes == SECOND_2011]) == {SECOND_2011}  # it would come back as FIRST_2011
    assert set(written[codes == "E01000001"]) == {"E01000001"}
    back, coverage = to_lsoa2011(written)
    assert back.tolist() == codes.tolist()
    assert coverage.share == 1.0
