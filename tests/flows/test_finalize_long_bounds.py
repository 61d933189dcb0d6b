"""A finalize whose bounds a person set large says them as given: ``:g`` wrote 1,234,567 s as
"1.23457e+06 s", a figure nobody gave, in the stop and in the advice to give the next run more.
On the fakes, the waits ended at once (what is tested is how their bound is said)."""

from __future__ import annotations

import pytest
from prefect import flow

import flows.finalize as finalize_flow
from rollway.deadline import Unanswered
from rollway.fakes import FakeLedger
from rollway.finalize import FinalizeIncomplete
from tests.flows.test_finalize import promoted_on_fakes

LONG = 1_234_567.0


def _unrecorded():
    env, _ = promoted_on_fakes(FakeLedger())
    FakeLedger.__init__(env.ledger)  # the ledger records nothing: no lease shortens the write's bound
    return env


def _in_a_run(**bounds):
    env = _unrecorded()
    return flow(lambda: finalize_flow.run_finalize(env, actor="alice", unrecorded=True, **bounds))()


def test_a_read_given_up_on_says_its_bound_as_given(monkeypatch):
    def ran_out(what, seconds, work, say):
        if not what.startswith("ECS"):
            return work()  # the ledger's read, bounded by its own setting
        # deadline.answered's own words for a read that ran out
        raise Unanswered(f"{what} did not answer within {seconds:g} s")

    monkeypatch.setattr(finalize_flow, "answered", ran_out)
    with pytest.raises(FinalizeIncomplete) as stopped:
        _in_a_run(verify_timeout_seconds=LONG)
    said = str(stopped.value)
    assert "(verify_timeout_seconds: 1234567 s)" in said and "more than the 1234567 s it had" in said, said
    assert "e+06" not in said.replace("1.23457e+06 s", "", 1), said  # only the read's own words


def test_a_write_given_up_on_says_its_bound_as_given(monkeypatch):
    def ran_out(seconds, work, **_):
        raise Unanswered("not done")

    monkeypatch.setattr(finalize_flow, "within", ran_out)
    with pytest.raises(FinalizeIncomplete) as stopped:
        _in_a_run(verify_timeout_seconds=1, write_seconds=LONG)
    said = str(stopped.value)
    assert "did not answer within 1234567 s" in said and "e+06" not in said, said
