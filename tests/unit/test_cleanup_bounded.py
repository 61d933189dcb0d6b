"""tasks.cleanup.bounded: a read of AWS given up on says nothing once it is given up on."""

from __future__ import annotations

import threading

import pytest

import tasks.cleanup as cleanup
from rollway.cleanup import CleanupReadUnanswered


def test_a_progress_line_begun_before_the_read_is_given_up_on_is_said_before_it_not_after(monkeypatch):
    """The read's say checked whether it was given up on, then logged: a line past the check as
    the read was given up on reached the run's log after the give-up, as if still waited on."""
    said: list[str] = []
    lock = threading.Lock()
    in_log, let_log, done, release = threading.Event(), threading.Event(), threading.Event(), threading.Event()

    def info(message: str, *args: object) -> None:
        if args and args[0] == "a progress line":  # held in the log call, past any check before it
            in_log.set()
            let_log.wait()
        with lock:
            said.append(message % args)

    monkeypatch.setattr(cleanup, "get_run_logger", lambda: type("Log", (), {"info": staticmethod(info)})())

    def work(say) -> None:
        say("a progress line")
        done.set()
        release.wait()  # still reading when given up on

    # Let go once the read has been given up on, or, once it waits for the line, a little after.
    threading.Thread(target=lambda: (in_log.wait(), let_log.wait(0.5), let_log.set()), daemon=True).start()
    with pytest.raises(CleanupReadUnanswered):
        cleanup.bounded(0.2, "stack old", work)
    with lock:
        said.append("given up")
    let_log.set()
    assert done.wait(10)
    release.set()
    assert said == ["a progress line", "given up"], said


def test_the_read_of_productions_network_given_up_on_names_the_certificates_it_reads_too(monkeypatch):
    """The read of the network (ECS's services, ELB's load balancer and its listeners' certificates)
    said it was "read for the network production runs in", where production runs in no certificate."""
    from rollway.targets import Targets

    monkeypatch.setattr(cleanup, "get_run_logger", lambda: type("Log", (), {"info": staticmethod(print)})())
    release = threading.Event()

    class Unanswering:  # an ECS that does not answer within the bound
        def describe_services(self, **_: object) -> None:
            release.wait(10)

    try:
        with pytest.raises(CleanupReadUnanswered) as given_up:
            cleanup.network_in_use.fn(Unanswering(), None, Targets(), 0.2)
    finally:
        release.set()
    assert given_up.value.reading == ("the network production's tasks and load balancer are in, and the certificates "
                                      "its load balancer serves"), given_up.value.reading
