"""A rollback's reason and an abort's options are text every record of them can hold.

A byte that is not UTF-8 (a Latin-1 terminal, an error pasted from a binary log) reaches Python
as a lone surrogate. The rollback flow's ``reason`` took one, as ``actor`` does not: nothing in
Python looked at it until the page, the ledger or the run's parameters had to be encoded, after
the traffic had moved, or in Prefect's own error. `rollway abort --reason` took it the same way.
"""
from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from flows.params import Actor, EarlyReason, Reason

NOT_UTF8 = "db down: caf\udce9 timeouts"


def test_a_reason_that_is_not_utf8_is_refused_naming_where():
    with pytest.raises(ValidationError, match=r"reason is not valid UTF-8 text \(character 13 cannot be encoded\)"):
        TypeAdapter(Reason).validate_python(NOT_UTF8)


def test_reason_and_actor_say_it_alike():
    for kind, what in ((Reason, "reason"), (Actor, "actor")):
        with pytest.raises(ValidationError) as refused:
            TypeAdapter(kind).validate_python("caf\udce9")
        assert f"{what} is not valid UTF-8 text (character 4 cannot be encoded)" in str(refused.value)


def test_a_reason_to_start_a_weekly_phase_early_is_checked_as_a_rollbacks_is():
    """The weekly run's ``start_early_because`` is recorded in the ledger as a rollback's reason is,
    and took a lone surrogate its own check did not look for."""
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(EarlyReason).validate_python(NOT_UTF8)
    assert "start_early_because is not valid UTF-8 text (character 13 cannot be encoded)" in str(refused.value)
    said = "démo de la semaine 2 — 数据"
    assert TypeAdapter(EarlyReason).validate_python(f" {said} ") == said


def test_a_reason_in_any_language_is_taken():
    said = "base de données injoignable — 数据库超时 🔥"
    assert TypeAdapter(Reason).validate_python(f"  {said} ") == said


@pytest.mark.parametrize("args, said", [
    (["--reason", NOT_UTF8], "--reason is not valid UTF-8 text (character 13 cannot be encoded)"),
    (["--approver", "jos\udce9", "--reason", "db down"],
     "--approver is not valid UTF-8 text (character 4 cannot be encoded)"),
])
def test_rollway_abort_refuses_text_that_is_not_utf8_before_anything_is_read(monkeypatch, capsys, args, said):
    from rollway.cli import app, ops

    def too_early(*args, **kwargs):
        raise AssertionError("blocks, the Prefect API or AWS were reached before the options were checked")

    monkeypatch.setattr(ops, "connect", too_early)
    monkeypatch.setattr(ops, "load_account", too_early)
    try:
        code = app(["abort", *args], result_action="return_value")
    except SystemExit as stop:
        code = int(stop.code)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert said in err and "nothing was done" in err and "Traceback" not in err, err
