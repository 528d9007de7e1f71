"""`drnflow submit` waits until the job's tasks run without a failure (issue 12): the polling logic over
scripted REST answers (the real cluster path is in tests/integration/test_submit.py)."""

from __future__ import annotations

from typing import Any

import pytest

from drnflow.errors import CommandError
from drnflow.tools import flink_jobs

TRACE = ("org.apache.flink.runtime.JobException: Recovery is suppressed\n\tat x.y(Z.java:1)\n"
         "Caused by: java.io.IOException: outer\nCaused by: pemja.core.PythonException: <class "
         "'FileNotFoundError'> python-dist-1/drnflow/serde.py\n\tat a.b(C.java:2)")


def scripted(states: list[tuple[str, list[str], list[str]]], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each poll of /jobs/ID takes the next (job state, task states, exception traces) of `states`."""
    calls = [0]

    def rest(jobmanager: str, path: str, **_: Any) -> Any:
        if path.startswith("/jobs/j1/exceptions"):  # asked right after the state: the same step's traces
            traces = states[min(calls[0] - 1, len(states) - 1)][2]
            return {"exceptionHistory": {"entries": [{"stacktrace": t} for t in traces]}}
        state, tasks, _ = states[min(calls[0], len(states) - 1)]
        calls[0] += 1
        return {"state": state, "vertices": [{"status": t} for t in tasks]}

    monkeypatch.setattr(flink_jobs, "rest", rest)
    monkeypatch.setattr(flink_jobs.time, "sleep", lambda s: None)
    return calls


def test_root_cause_is_the_last_caused_by() -> None:
    assert flink_jobs.root_cause(TRACE).startswith("pemja.core.PythonException: <class 'FileNotFoundError'>")
    assert flink_jobs.root_cause("java.lang.IllegalStateException: boom\n\tat a.b(C.java:1)") == \
        "java.lang.IllegalStateException: boom"
    assert flink_jobs.root_cause("") == ""


def test_a_job_that_fails_after_running_is_reported_with_its_root_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    scripted([("RUNNING", ["INITIALIZING"], []), ("RUNNING", ["RUNNING"], []),
              ("RESTARTING", ["CANCELING"], [TRACE])], monkeypatch)
    with pytest.raises(CommandError) as e:
        flink_jobs.wait_until_settled("h:1", "j1", settle_s=60.0, timeout_s=5.0)
    text = str(e.value)
    assert "is restarting right after submission" in text and "FileNotFoundError" in text
    assert "drnflow cancel j1" in text


def test_a_failure_while_running_counts_even_before_the_state_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    scripted([("RUNNING", ["RUNNING"], []), ("RUNNING", ["RUNNING"], [TRACE])], monkeypatch)
    with pytest.raises(CommandError, match="job j1 failed and restarted right after submission: pemja"):
        flink_jobs.wait_until_settled("h:1", "j1", settle_s=60.0, timeout_s=5.0)


def test_a_job_whose_tasks_keep_running_settles(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(flink_jobs.time, "monotonic", lambda: clock[0])
    scripted([("RUNNING", ["DEPLOYING", "RUNNING"], [])] * 2 + [("RUNNING", ["RUNNING", "RUNNING"], [])],
             monkeypatch)
    monkeypatch.setattr(flink_jobs.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    assert flink_jobs.wait_until_settled("h:1", "j1", settle_s=3.0, timeout_s=60.0) == "RUNNING"
    assert clock[0] >= 4.0, "it waited for the settle period after all tasks ran"


def test_tasks_that_never_all_run_time_out_with_the_state(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(flink_jobs.time, "monotonic", lambda: clock[0])
    scripted([("RUNNING", ["DEPLOYING"], [])], monkeypatch)
    monkeypatch.setattr(flink_jobs.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    with pytest.raises(CommandError, match="did not have all its tasks running within 10 s"):
        flink_jobs.wait_until_settled("h:1", "j1", settle_s=3.0, timeout_s=10.0)
