"""Registry look-ups: a missing model or alias is a clear user error; any other registry failure is not hidden."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from riskstrat.errors import RiskstratError
from riskstrat.models.registry import CHAMPION, alias_version, registered_version


@pytest.fixture
def uri(tmp_path):
    """A fresh registry holding one model with no version and no alias."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).create_registered_model("emergency_admission")
    return uri


def test_no_version_with_the_alias_is_a_clear_error(uri):
    with pytest.raises(RiskstratError, match="no champion model registered for emergency_admission"):
        registered_version("emergency_admission", "emergency_admission", CHAMPION, uri)
    assert alias_version("emergency_admission", CHAMPION, uri) is None


def test_no_model_of_that_name_is_a_clear_error(uri):
    with pytest.raises(RiskstratError, match="no champion model registered for nobody"):
        registered_version("emergency_admission", "nobody", CHAMPION, uri)
    assert alias_version("nobody", CHAMPION, uri) is None


def test_other_registry_errors_are_raised_as_they_are(uri, monkeypatch):
    def broken(self, name, alias):
        raise MlflowException("database is locked", error_code="INTERNAL_ERROR")

    monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", broken)
    with pytest.raises(MlflowException, match="database is locked"):
        registered_version("emergency_admission", "emergency_admission", CHAMPION, uri)
    with pytest.raises(MlflowException, match="database is locked"):
        alias_version("emergency_admission", CHAMPION, uri)
