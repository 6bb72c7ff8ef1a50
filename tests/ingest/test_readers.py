import pandas as pd
import pytest

from riskstrat.errors import ContractError
from riskstrat.ingest.contract import CONTRACT
from riskstrat.ingest.readers import coerce, load_raw, read_extract, read_table, value_shape


def _patients(**overrides):
    frame = pd.DataFrame(
        {
            "person_id": ["P001", "P002", "P003"],
            "birth_date": ["1950-01-01", "1960-02-01", "1970-03-01"],
            "sex": ["1", "2", "2"],
            "ethnic_category": ["A", "", "J"],
            "lsoa_code": ["E01000001"] * 3,
            "practice_code": ["M00001"] * 3,
        }
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


def test_csv_is_read_typed_in_contract_order(tmp_path):
    _patients().to_csv(tmp_path / "patients.csv", index=False)
    frame = read_table(tmp_path, "patients")
    assert list(frame.columns) == list(CONTRACT["patients"].column_names)
    assert frame["birth_date"].dtype.kind == "M"
    assert frame["birth_date"].iloc[1] == pd.Timestamp("1960-02-01")
    assert frame["ethnic_category"].isna().tolist() == [False, True, False]
    assert frame["registration_end"].isna().all()


def test_codes_stay_text_with_leading_zeros(tmp_path):
    attendances = pd.DataFrame(
        {
            "attendance_id": ["A1", "A2"],
            "person_id": ["P001", "P002"],
            "arrival_datetime": ["2024-01-01 10:00:00", "2024-01-02T11:30"],
            "department_type": ["01", "03"],
            "acuity": ["2", ""],
            "disposal": ["admitted", "discharged"],
        }
    )
    attendances.to_csv(tmp_path / "ae_attendances.csv", index=False)
    frame = read_table(tmp_path, "ae_attendances")
    assert frame["department_type"].tolist() == ["01", "03"]
    assert frame["acuity"].iloc[0] == 2 and pd.isna(frame["acuity"].iloc[1])
    assert frame["arrival_datetime"].iloc[1] == pd.Timestamp("2024-01-02 11:30")


def test_parquet_is_read_typed(tmp_path):
    frame = _patients()
    frame["birth_date"] = pd.to_datetime(frame["birth_date"])
    frame.to_parquet(tmp_path / "patients.parquet")
    typed = read_table(tmp_path, "patients")
    assert typed["birth_date"].iloc[2] == pd.Timestamp("1970-03-01")


def test_unparseable_dates_name_table_column_rows_and_shape_not_value(tmp_path):
    _patients(birth_date=["1950-01-01", "01/02/1960", "03/01/1970"]).to_csv(
        tmp_path / "patients.csv", index=False
    )
    with pytest.raises(ContractError) as error:
        read_table(tmp_path, "patients")
    message = error.value.message  # what the terminal shows
    assert "patients.birth_date" in message
    assert "2 rows" in message
    assert "99/99/9999" in message
    assert "person_id=P002" in message
    assert "1960" not in message  # a date of birth never reaches a log
    assert "P002" not in str(error.value)  # logs and Prefect get no person ID


def test_missing_required_column_and_missing_table(tmp_path):
    _patients().drop(columns=["lsoa_code"]).to_csv(tmp_path / "patients.csv", index=False)
    with pytest.raises(ContractError) as error:
        read_extract(tmp_path, ("patients", "apc_spells"))
    message = str(error.value)
    assert "patients.lsoa_code" in message
    assert "apc_spells" in message and "apc_spells.parquet or apc_spells.csv" in message


def test_corrupt_parquet_is_reported_not_raised_raw(tmp_path):
    (tmp_path / "opt_outs.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ContractError, match="opt_outs: expected a readable parquet file"):
        read_table(tmp_path, "opt_outs")


def test_non_numeric_acuity_is_a_problem(tmp_path):
    pd.DataFrame(
        {
            "attendance_id": ["A1"],
            "person_id": ["P001"],
            "arrival_datetime": ["2024-01-01 10:00"],
            "acuity": ["urgent"],
            "disposal": ["left"],
        }
    ).to_csv(tmp_path / "ae_attendances.csv", index=False)
    frame, problems = coerce(load_raw(tmp_path, "ae_attendances"))
    assert [(p.column, p.n_rows) for p in problems] == [("acuity", 1)]
    assert "attendance_id=A1" in problems[0].examples
    assert pd.isna(frame["acuity"].iloc[0])


def test_value_shape_hides_digits_and_letters():
    assert value_shape("31/12/2024") == "99/99/9999"
    assert value_shape("Dec 3") == "Aaa 9"


def test_missing_folder_is_clear(tmp_path):
    with pytest.raises(ContractError, match="extract folder"):
        read_extract(tmp_path / "nowhere")
