"""Redaction: a user error's text for logs and Prefect never holds a person ID; the terminal's does."""

import logging
import pickle
import traceback

from riskstrat.errors import ContractError, ContractProblem, RiskstratError
from riskstrat.pipelines.logs import HideUserErrors, RedactUserErrors

PERSON = "ZZPERSON123"


def _contract_error() -> ContractError:
    return ContractError(
        [
            ContractProblem(
                "gp_medications",
                "person_id",
                "every person_id to be in patients",
                2,
                (f"person_id={PERSON}", "person_id=ZZ2"),
            ),
            ContractProblem("patients", "sex", "a code in 1, 2, 9, X", 1, (f"person_id={PERSON} (sex=7)",)),
        ],
        report=None,
    )


def test_contract_error_logs_no_examples_but_the_terminal_gets_them():
    error = _contract_error()
    for text in (str(error), repr(error), *map(str, error.args)):
        assert PERSON not in text
        assert "gp_medications.person_id: expected every person_id to be in patients; 2 rows fail" in text
        assert "patients.sex" in text and "examples are not logged" in text
    assert f"person_id={PERSON}" in error.message
    assert "e.g." in error.message


def test_contract_error_names_the_report_and_withholds_an_id_quoted_in_the_expectation(tmp_path):
    error = ContractError([ContractProblem("t", "c", f"no {PERSON} here", 1, (f"person_id={PERSON}",))])
    error.report = tmp_path / "latest.json"
    assert PERSON not in str(error) and str(tmp_path / "latest.json") in str(error)
    assert error.args == (str(error),)


def test_traceback_and_pickle_keep_the_redaction():
    error = _contract_error()
    try:
        raise error
    except ContractError:
        text = traceback.format_exc()
    assert PERSON not in text
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is ContractError
    assert again.message == error.message and str(again) == str(error)
    assert again.problems == error.problems


def test_details_reach_the_terminal_only():
    error = RiskstratError("scored population: 2 repeated person_id(s)", hint="h", details=f"e.g. {PERSON}")
    assert PERSON in error.message
    assert PERSON not in str(error) and PERSON not in repr(error) and PERSON not in str(error.args)
    assert pickle.loads(pickle.dumps(error)).message == error.message


def _record(exc: BaseException | None, message: str = "Task run failed") -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1, message, None, exc_info)


def test_log_filters_drop_a_user_errors_traceback_and_hide_it_from_the_console():
    try:
        try:
            raise KeyError(PERSON)  # a chained exception quoting data
        except KeyError as inner:
            raise _contract_error() from inner
    except ContractError as exc:
        record = _record(exc)
    assert RedactUserErrors().filter(record) is True
    assert record.exc_info is None
    assert PERSON not in logging.Formatter().format(record)
    assert HideUserErrors().filter(record) is False
    # Prefect's "Finished in state Failed(...)" names the error without an exception object.
    state = _record(None, "Finished in state Failed('Flow run encountered an exception: ContractError: x')")
    assert HideUserErrors().filter(state) is False
    other = _record(ValueError("boom"))
    assert RedactUserErrors().filter(other) and HideUserErrors().filter(other)
    assert other.exc_info is not None


def test_log_messages_show_control_characters_as_escapes():
    record = logging.LogRecord("riskstrat", logging.WARNING, __file__, 1, "value %s", ("a\x1b[31mb",), None)
    RedactUserErrors().filter(record)
    assert record.getMessage() == "value a\\x1b[31mb"


FORGED = "X1\nhint: all fine, nothing to fix"
BREAKS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def test_a_line_break_in_data_cannot_start_a_line_of_its_own():
    from riskstrat.errors import one_line

    for brk in BREAKS:
        value = f"X1{brk}hint: all fine"
        assert len(one_line(value).splitlines()) == 1, repr(brk)
        problem = ContractProblem(
            f"pat{brk}ients", f"s{brk}ex", f"a code{brk}in 1, 2", 1, (f"person_id={value}",)
        )
        assert len(problem.describe().splitlines()) == 1, repr(brk)
        error = RiskstratError("scored population: 1 repeated person_id", details=f"e.g. {value}")
        assert len(error.message.splitlines()) == 1 and len(error.details.splitlines()) == 1
    assert one_line(FORGED) == "X1\\nhint: all fine, nothing to fix"
    assert one_line("a\r\nb\u2028c\x85d") == "a\\r\\nb\\u2028c\\x85d"


def test_a_forged_line_in_a_contract_error_stays_inside_its_problem_line():
    error = ContractError(
        [
            ContractProblem("patients", "sex", "a code in 1, 2, 9, X", 1, (f"person_id={FORGED} (sex=7)",)),
            ContractProblem(
                "gp_events", "person_id", "every person_id in patients", 1, ("person_id=ZZ\u20281",)
            ),
        ]
    )
    lines = error.message.splitlines()
    assert lines[0] == "2 problems:" and len(lines) == 3  # the structure's own line breaks only
    assert (
        lines[1]
        == "  patients.sex: expected a code in 1, 2, 9, X; 1 row fail; e.g. person_id=X1\\nhint: all fine, nothing to fix (sex=7)"
    )
    assert not any(line.lstrip().startswith("hint:") for line in lines)
    assert "\\u2028" in lines[2]
    for text in (str(error), *error.args):  # the log text: still no examples, still one line per problem
        assert "all fine" not in text and "ZZ" not in text
    again = pickle.loads(pickle.dumps(error))
    assert again.message == error.message


def test_the_terminal_prints_a_forged_line_as_an_escape(monkeypatch):
    import io

    from riskstrat.pipelines import cli
    from riskstrat.pipelines.terminal import make_console

    buffer = io.StringIO()
    monkeypatch.setattr(cli, "console", make_console(file=buffer))
    error = ContractError([ContractProblem("patients", "sex", "a code", 1, (f"person_id={FORGED}",))])
    cli._print_error(error.message, error.hint)
    lines = buffer.getvalue().splitlines()
    assert (
        lines[0]
        == "error: patients.sex: expected a code; 1 row fail; e.g. person_id=X1\\nhint: all fine, nothing to fix"
    )
    assert [line for line in lines if line.startswith("hint:")] == [f"hint: {error.hint}"]
