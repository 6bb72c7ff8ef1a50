"""Nothing a failing run raises reaches Prefect's database or a log with patient data in it."""

from __future__ import annotations

import logging

import prefect.flow_engine  # imported before the redaction, as in a long-running process
import prefect.task_engine  # noqa: F401
import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client

from riskstrat.errors import RiskstratError
from riskstrat.pipelines.logs import WITHHELD, install_log_redaction, state_message, withheld_traceback

LEAKED_ID = "ZZLEAK7731"


@task
def look_up_person():
    people = {"P001": 1}
    return people[LEAKED_ID]  # a bug: pandas and dict look-ups quote the missing key


@flow
def failing_flow():
    return look_up_person()


@task
async def look_up_person_async():
    people = {"P001": 1}
    return people[LEAKED_ID]


@flow
async def failing_async_flow():
    return await look_up_person_async()


def _chained() -> BaseException:
    try:
        try:
            raise KeyError(LEAKED_ID)
        except KeyError as exc:
            raise ValueError(f"could not score {LEAKED_ID}") from exc
    except ValueError as exc:
        return exc


def test_withheld_traceback_keeps_frames_and_types_but_no_message():
    text = withheld_traceback(_chained())
    assert LEAKED_ID not in text
    assert "KeyError" in text and "ValueError" in text and "test_log_redaction.py" in text
    assert text.count(WITHHELD) == 2


def test_state_message_names_the_type_only_unless_the_error_is_riskstrats():
    assert state_message(KeyError(LEAKED_ID)) == f"KeyError {WITHHELD}"
    error = RiskstratError("patients.sex: expected a code", details=f"e.g. person_id={LEAKED_ID}")
    assert state_message(error) == "RiskstratError: patients.sex: expected a code"


def test_unexpected_exception_in_a_task_keeps_ids_out_of_prefect(prefect_harness, caplog):
    # Prefect's sync and async engines build a failed state's message in different modules.
    import asyncio

    install_log_redaction()
    with caplog.at_level(logging.INFO), pytest.raises(KeyError):
        failing_flow()
    with caplog.at_level(logging.INFO), pytest.raises(KeyError):
        asyncio.run(failing_async_flow())
    for record in caplog.records:
        assert LEAKED_ID not in logging.Formatter().format(record)

    # Everything Prefect stored in this session: every flow run's states, task runs and logs.
    with get_client(sync_client=True) as client:
        stored = []
        for run in client.read_flow_runs():
            stored += [state.message or "" for state in client.read_flow_run_states(run.id)]
        stored += [t.state.message or "" for t in client.read_task_runs() if t.state]
        stored += [log.message for log in client.read_logs()]
    assert sum("KeyError" in text and WITHHELD in text for text in stored) >= 4  # 2 task and 2 flow states
    assert not [text for text in stored if LEAKED_ID in text]
