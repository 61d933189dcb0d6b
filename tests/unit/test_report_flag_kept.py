"""The rollout report's flag line for a bound flag a person changed during the rollout.

A stage that leaves a flag as a person set it (the kill switch at 5 %) records a "left" line in the
ledger. The report read it as the flag's last setting "set by" the rollout's actor at the stage's
time: on-call's kill switch read as the rollout's doing, and nothing said the flag no longer followed
the stages.
"""

from __future__ import annotations

from rollway.fakes import FakeFlagStore
from rollway.flag_binding import FlagChange, apply_bindings, flag_transition, set_flag
from rollway.ledger import utc
from rollway.phases import RolloutPhase
from rollway.reports import rollout_report
from rollway.spec import FlagBinding
from tests.unit.test_reports import T0, passed, record, shift, started

SQS = "sqs-sessions"
ROLLOUT = "20270115T080000Z-1a2b3c4d"


def _stage_lines(store: FakeFlagStore, weight: int, at: float) -> list:
    updates = apply_bindings(store, [FlagBinding(feature=SQS)], weight, actor="alice", now=T0 + at, rollout=ROLLOUT,
                             exclusive=True)
    return [flag_transition(u, at=T0 + at, actor="alice") for u in updates]


def _flags_line(text: str) -> str:
    (line,) = [x for x in text.splitlines() if x.startswith("- **Feature flags it binds**")]
    return line


def test_a_flag_a_person_changed_under_the_rollout_is_reported_as_theirs_not_set_by_the_rollout():
    store = FakeFlagStore()
    set_flag(store, FlagChange(feature=SQS, create=True, enabled=False), actor="seed", now=T0)
    history = [started(), shift(60, 5, 0), *_stage_lines(store, 5, 60), passed(700, 0)]
    # On-call throws the kill switch at 5 %; the 25 % stage leaves the flag as they set it.
    set_flag(store, FlagChange(feature=SQS, enabled=False, reason="errors in sessions"), actor="oncall-bob",
             now=T0 + 650)
    history += [shift(710, 25, 1, 5), *_stage_lines(store, 25, 710)]
    assert history[-1].comment.startswith(f"{SQS}: left off 5%"), history[-1].comment

    line = _flags_line(rollout_report(record(history, RolloutPhase.PROGRESSING, flags=(SQS,))))
    assert f"set by alice at {utc(T0 + 710)}" not in line, line
    assert f"`{SQS}` **left off 5% (v3)** as a person had set it" in line, line
    assert "oncall-bob changed it after the rollout last set it (v3: errors in sessions)" in line, line

    # Promoted with the flag still as the person left it: the 100 % stage's line says so too.
    history += [passed(1400, 1), shift(1410, 100, 2, 25), *_stage_lines(store, 100, 1410)]
    line = _flags_line(rollout_report(record(history, RolloutPhase.PROMOTED, flags=(SQS,))))
    assert f"`{SQS}` **left off 5% (v4)** as a person had set it" in line, line
    assert "set by alice" not in line, line
