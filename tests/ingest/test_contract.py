from pathlib import Path

from riskstrat.ingest.contract import CONTRACT, EMERGENCY_ADMISSION_METHODS, EVENT_TABLES
from riskstrat.ingest.contract_docs import render_contract_docs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "data-contract.md"


def test_contract_has_its_tables_with_person_ids():
    assert list(CONTRACT) == [
        "patients",
        "gp_diagnoses",
        "gp_appointments",
        "gp_medications",
        "community_contacts",
        "ae_attendances",
        "apc_spells",
        "caseload",
        "opt_outs",
        "social_care_events",
        "social_care_returns",
    ]
    optional = ["social_care_events", "social_care_returns"]
    assert [name for name, table in CONTRACT.items() if table.optional] == optional
    # The returns received belong to a local authority, not a person: not an event table.
    assert "social_care_returns" not in EVENT_TABLES
    for name in EVENT_TABLES:
        assert "person_id" in CONTRACT[name].required_columns


def test_keys_are_required_and_not_nullable():
    for table in CONTRACT.values():
        if table.key:
            key = table.column(table.key)
            assert key.required and not key.nullable


def test_emergency_methods_follow_admimeth():
    assert set(EMERGENCY_ADMISSION_METHODS) == {"21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28"}
    assert CONTRACT["apc_spells"].column("admission_method").codes[:3] == ("11", "12", "13")


def test_committed_contract_docs_match_the_code():
    assert DOCS.read_text() == render_contract_docs(), (
        "run: python -m riskstrat.ingest.contract_docs > docs/data-contract.md"
    )
