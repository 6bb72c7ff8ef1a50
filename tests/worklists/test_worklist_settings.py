from pathlib import Path

import pytest
from worklist_fixtures import PRACTICES

from riskstrat.errors import RiskstratError, SettingsError
from riskstrat.settings import REPO_CONFIG_DIR, load_settings
from riskstrat.worklists.settings import MdtSettings, read_practices, resolve_mdts


def test_shipped_yaml_loads_and_gives_one_mdt_per_neighbourhood(tmp_path):
    settings = load_settings(REPO_CONFIG_DIR / "mdts.yaml", MdtSettings)
    assert settings.practices_file == Path("outputs/reference/practices.csv")
    assert settings.reasons_count == 3 and settings.reidentification_key is None
    path = tmp_path / "practices.csv"
    PRACTICES.to_csv(path, index=False)
    mdts = resolve_mdts(settings, read_practices(path))
    assert [m.name for m in mdts] == ["North", "South"]
    assert mdts[0].practices == ("P00001", "P00002")
    assert all(m.capacity_people == 50 and m.outcome == "emergency_admission" for m in mdts)
    assert mdts[0].exclusions.type1_opt_out == "exclude"


def test_mdt_settings_fall_back_to_default_mdt(mdt_settings):
    north, south = resolve_mdts(mdt_settings, PRACTICES)
    assert north.capacity(1000) == 20 and north.outcome == "emergency_admission"
    assert south.capacity(1000) == 15 and south.outcome == "frequent_attendance"
    assert south.practices == ("P00003",)


def test_capacity_share_rounds_up():
    settings = MdtSettings.model_validate(
        {"mdts": [{"name": "A", "practices": ["P1"], "capacity_share": 0.005}]}
    )
    (mdt,) = resolve_mdts(settings, None)
    assert mdt.capacity(1001) == 6
    assert mdt.capacity(1000) == 5


def write(tmp_path, text):
    path = tmp_path / "mdts.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("reasons_cont: 3\n", "reasons_cont"),
        ("default_mdt:\n  outcome: readmission\n", "default_mdt.outcome"),
        (
            "default_mdt:\n  exclusions:\n    active_caseload: hide\n",
            "default_mdt.exclusions.active_caseload",
        ),
        ("reasons_count: three\n", "reasons_count"),
        ("mdts:\n  - name: A\n    practices: [P1]\n    neighbourhood: North\n", "mdts.0"),
        ("mdts:\n  - name: A\n    practices: [P1]\n    capacity_people: 0\n", "mdts.0.capacity_people"),
        ("risk_bands:\n  bands:\n    - {name: Low, min: 50}\n    - {name: High, min: 90}\n", "risk_bands"),
    ],
)
def test_invalid_file_fails_naming_the_key(tmp_path, text, key):
    with pytest.raises(SettingsError) as error:
        load_settings(write(tmp_path, text), MdtSettings)
    assert key in str(error.value)


def test_unknown_neighbourhood_is_a_clear_error(tmp_path):
    settings = MdtSettings.model_validate({"mdts": [{"name": "X", "neighbourhood": "Nowhere"}]})
    with pytest.raises(RiskstratError, match="Nowhere"):
        resolve_mdts(settings, PRACTICES)


def test_mdt_file_names_are_short_plain_and_distinct():
    from riskstrat.worklists.settings import SLUG_MAX_LENGTH, mdt_slug

    assert mdt_slug("North East PCN") == "north-east-pcn"
    assert mdt_slug("../../etc/passwd") == "etc-passwd"
    assert mdt_slug("Équipe\u202enorth") == "quipe-north"
    long_a, long_b = "Neighbourhood " * 30 + "A", "Neighbourhood " * 30 + "B"
    assert len(mdt_slug(long_a)) <= SLUG_MAX_LENGTH
    assert mdt_slug(long_a) != mdt_slug(long_b)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "missing column"),
        (b"practice_code,neighbourhood\n", "no practices listed"),
        ("practice_code,neighbourhood\nP1,Ysbyty Ystwyth\u00e9\n".encode("latin-1"), "not UTF-8"),
        (
            b"practice_code,neighbourhood\nP1,North\nP2,North\nP1,South\n",
            r"P1 \(neighbourhoods: North, South\)",
        ),
    ],
    ids=["zero bytes", "header only", "latin-1", "practice twice"],
)
def test_a_broken_practice_file_is_a_clear_error(tmp_path, content, message):
    from riskstrat.errors import RiskstratError
    from riskstrat.worklists.settings import read_practices

    path = tmp_path / "practices.csv"
    path.write_bytes(content)
    with pytest.raises(RiskstratError, match=message) as caught:
        read_practices(path)
    assert str(path) in caught.value.message


def test_a_practice_in_two_mdts_of_one_outcome_is_refused_but_across_outcomes_allowed():
    from riskstrat.errors import RiskstratError
    from riskstrat.worklists.settings import MdtSettings, resolve_mdts

    def settings(second_outcome):
        return MdtSettings.model_validate(
            {
                "mdts": [
                    {"name": "A", "practices": ["P1", "P2"]},
                    {"name": "B", "practices": ["P1", "P3"], "outcome": second_outcome},
                ]
            }
        )

    with pytest.raises(RiskstratError, match="practice P1 belongs to two MDTs ranked by emergency_admission"):
        resolve_mdts(settings("emergency_admission"), None)
    assert [m.name for m in resolve_mdts(settings("frequent_attendance"), None)] == ["A", "B"]


@pytest.mark.parametrize("name", ["   ", "N" * 101], ids=["blank", "too long"])
def test_an_mdt_name_must_be_visible_and_fit_a_printed_header(name):
    from pydantic import ValidationError

    from riskstrat.worklists.settings import MdtSettings

    with pytest.raises(ValidationError, match="name"):
        MdtSettings.model_validate({"mdts": [{"name": name, "practices": ["P1"]}]})
