"""A failure whose text holds a lone surrogate (a byte that is not UTF-8, decoded with
surrogateescape) leaves a rollout's run with that text written as UTF-8 can hold it.

Prefect records a failed run's state with the exception's text as its message: one it could not
encode left the run unrecorded, and its rollback hook never ran (tests/flows/test_hooks_moto.py
has the run). What a hook builds from the exception's fields (a rollback's reason and failed
steps, which become a flow run's parameters) must be writable too.
"""

from __future__ import annotations

import pytest

from flows.rollback import RollbackIncomplete
from rollway.aws.denied import names_rollout_denials
from rollway.failure_words import failures_writable, made_writable, writable
from rollway.targets import Targets

NOT_UTF8 = b"web\xff".decode("utf-8", "surrogateescape")


class _Env:
    targets = Targets()


def test_a_lone_surrogate_is_written_as_its_escape():
    assert writable(f"target group {NOT_UTF8}") == "target group web\\udcff"
    assert writable("web ✓") == "web ✓"  # text UTF-8 holds stays as it is


def test_a_failure_leaving_a_rollout_keeps_its_type_and_fields_with_their_text_writable():
    @failures_writable  # as under a rollout flow's @flow, over the rollout's run
    @names_rollout_denials
    def run(env):
        raise RollbackIncomplete([f"restore the canary: {NOT_UTF8} not found"], reason=f"errors on {NOT_UTF8}",
                                 paged=True)

    with pytest.raises(RollbackIncomplete) as raised:
        run(_Env())
    err = raised.value
    str(err).encode()  # Prefect writes it as the run's state message
    assert "web\\udcff not found" in str(err)
    assert err.failed_steps == ("restore the canary: web\\udcff not found",)
    assert err.reason == "errors on web\\udcff" and err.paged is True


def test_a_failure_that_is_writable_is_left_as_it_is():
    err = ValueError("web ✓", 3)
    args = err.args
    assert made_writable(err) is err and err.args is args


def test_fields_that_are_not_plain_text_are_left_as_they_are():
    from collections import namedtuple

    Where = namedtuple("Where", "path line")
    err = RuntimeError(f"no {NOT_UTF8}")
    err.where = Where(f"/srv/{NOT_UTF8}", 3)  # a tuple of its own kind: not rebuilt from its items
    err.response = {"Error": {"Message": f"no {NOT_UTF8}"}}
    made_writable(err)
    assert str(err) == "no web\\udcff"
    assert err.where == Where(f"/srv/{NOT_UTF8}", 3) and err.response["Error"]["Message"] == f"no {NOT_UTF8}"


def test_a_failure_escaped_twice_reads_as_escaped_once():
    # A subflow's failure, escaped as it leaves it, is raised again through its parent's body.
    @failures_writable
    @failures_writable
    def run():
        raise RollbackIncomplete([f"restore {NOT_UTF8}"], reason=f"errors on {NOT_UTF8}", paged=False)

    with pytest.raises(RollbackIncomplete) as raised:
        run()
    assert raised.value.failed_steps == ("restore web\\udcff",) and raised.value.reason == "errors on web\\udcff"
    assert writable(writable(NOT_UTF8)) == writable(NOT_UTF8) == "web\\udcff"
