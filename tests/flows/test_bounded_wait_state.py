"""A wait that ran out at rollway's own bound shows in Prefect as a Failed run, in rollway's words.

``rollway.deadline.Unanswered`` was a TimeoutError, and Prefect's engines take any TimeoutError
out of a task or flow for their own timeout: the run showed "TimedOut", "Flow run failed due to
timeout: ReadBackUnanswered(...)", on a task and a flow that set no timeout_seconds; and the run's
exception was not persisted, so a hook or the UI in another process read back no error at all.
"""

from __future__ import annotations

import threading

from prefect import flow, task
from prefect.client.orchestration import get_client

from rollway.deadline import Unanswered, answered


def as_the_api_has_it(state):
    """The run's state as a person (the UI, `prefect flow-run inspect`) or a hook in another process reads it."""
    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id).state


def test_a_task_whose_read_was_not_answered_fails_in_rollways_words():
    never = threading.Event()

    @task(name="read-cloudwatch")
    def read() -> None:
        answered("CloudWatch", 0.2, never.wait, lambda line: None)

    seen = {}

    @flow(name="bounded-read", persist_result=True)
    def reads() -> None:
        seen["task"] = read(return_state=True)
        seen["task"].result()  # the flow fails with it, as a flow that calls the task does

    try:
        stored = as_the_api_has_it(reads(return_state=True))
    finally:
        never.set()

    task_state = seen["task"]
    assert (task_state.type.value, task_state.name) == ("FAILED", "Failed"), (task_state.name, task_state.message)
    assert "CloudWatch did not answer within 0.2 s" in task_state.message, task_state.message
    assert "timeout" not in task_state.message, task_state.message
    assert (stored.type.value, stored.name) == ("FAILED", "Failed"), (stored.name, stored.message)
    assert "CloudWatch did not answer within 0.2 s" in stored.message, stored.message


def test_a_flow_whose_read_was_not_answered_fails_in_rollways_words():
    never = threading.Event()

    @flow(name="bounded-read-in-flow", persist_result=True)
    def reads() -> None:
        answered("the Prefect API", 0.2, never.wait, lambda line: None)

    try:
        stored = as_the_api_has_it(reads(return_state=True))
    finally:
        never.set()

    assert (stored.type.value, stored.name) == ("FAILED", "Failed"), (stored.name, stored.message)
    assert "the Prefect API did not answer within 0.2 s" in stored.message, stored.message
    assert "timeout" not in stored.message, stored.message
    error = stored.result(raise_on_failure=False)
    assert type(error) is Unanswered and str(error) == "the Prefect API did not answer within 0.2 s", repr(error)
