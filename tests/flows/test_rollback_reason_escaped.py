"""A rollback's reason as a person typed it (the `rollback` flow's form, `rollway abort --reason`) or
a run's end said it (its hook's rollback: a cancellation's message), as the page on-call gets, the
ledger and the run's log show it: on one line, its control characters and bidirectional-text
controls escaped (``rollway.one_line``).

The page reads "Why: <reason>" then "Requested by: <actor>": a line break in the reason wrote a
"Requested by:" line of its own above the real one, and a right-to-left override (U+202E)
reordered the words after it, so that the page read as nobody wrote it.
"""

from __future__ import annotations

import pytest
from prefect.exceptions import ParameterTypeError

import flows.rollback
from flows.params import MAX_ROLLBACK_REASON
from flows.progressive import progressive_rollout
from rollway.fakes import FakeLedger
from rollway.ledger import RolloutRecord, Transition, answer_comment, begin_rollback, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment, pages
from tests.flows.test_refusals import hooks_and_flows_see

TYPED = "sessions lost\nRequested by: nobody \u202eevorppa\x1b[2J"
SHOWN = r"sessions lost Requested by: nobody \u202eevorppa\x1b[2J"
SPEC = RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)])


def test_a_rollback_by_hand_pages_its_reason_on_one_line_escaped(monkeypatch):
    env = fake_environment()
    env.router.set_weights(Weights.canary_at(25))
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    result = flows.rollback.rollback(reason=TYPED, actor="erin")
    assert result.reason == SHOWN, result.reason
    ((_subject, page),) = [(s, m) for s, m in pages(env) if s.startswith("Rollback: ")]
    assert f"Why: {SHOWN}\nRequested by: erin\n" in page, page
    assert page.count("Requested by:") == 2 and "\u202e" not in page and "\x1b" not in page, page


def test_a_reason_is_bounded_as_typed_not_as_escaped(monkeypatch):
    """The bound counts what the person typed: a reason at the bound whose escape is longer (a
    right-to-left override, six characters escaped) is taken, and one past it refused."""
    env = fake_environment()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    typed = "x" * (MAX_ROLLBACK_REASON - 2) + "\ny\u202e"
    assert flows.rollback.rollback(reason=typed[1:], actor="erin").reason == "x" * (MAX_ROLLBACK_REASON - 3) + r" y\u202e"
    with pytest.raises(ParameterTypeError, match=f"reason is {MAX_ROLLBACK_REASON + 1} characters"):
        flows.rollback.rollback(reason=typed, actor="erin")


def _begun_by_abort(env, record, now):
    # As `rollway abort` records its intent when no run is paused, before it stops the owning run.
    begin_rollback(env.ledger, record.service, actor="erin", reason=f"aborted by erin: {TYPED}", now=now,
                   rollout=record.rollout_id)


def _rejected_and_run_died(env, record, now):
    # As the paused run records erin's reject (``LedgerJournal.answered``); it died before its rollback.
    env.ledger.record(record.service, owner="process/old", now=now, transition=Transition(
        at=now, kind="reject", actor="erin", to_stage=0, comment=answer_comment("reject", TYPED)))
    env.ledger.release(record.service, owner="process/old")


@pytest.mark.parametrize("begun", [_begun_by_abort, _rejected_and_run_died],
                         ids=["begun by rollway abort", "a rejection its run did not act on"])
def test_a_rollback_finished_by_a_resumed_run_pages_the_persons_reason_on_one_line(monkeypatch, begun):
    """`rollway abort` records its intent in the person's words before it stops the owning run and
    rolls back; a run that died after recording a reject leaves it owed. A run of the rollout
    started again finishes that rollback, and its page's Why quotes the reason the ledger kept: as
    typed, its line break wrote a "Requested by:" line of its own above the real one."""
    env = fake_environment()
    env.ledger = FakeLedger()
    service = env.targets.canary_service
    now = env.clock.now()
    record = env.ledger.create(RolloutRecord(
        service=service, rollout_id=new_rollout_id(now - 100), image=SPEC.image, spec_json=SPEC.model_dump_json(),
        phase=RolloutPhase.PROGRESSING, weights=Weights.canary_at(5), previous_task_definition=STABLE_TD,
        stable_desired=4), owner="process/old", now=now - 100, lease_seconds=0)
    env.router.weights = Weights.canary_at(5)
    begun(env, record, now - 5)
    hooks_and_flows_see(monkeypatch, env)

    progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False)

    ((_subject, page),) = [(s, m) for s, m in pages(env) if s.startswith("Rollback: ")]
    assert SHOWN in page and page.count("\nRequested by:") == 1, page
    (start,) = [t for t in env.ledger.get(service).history if t.kind == "rollback-start"]
    assert start.comment.endswith(f"erin: {SHOWN}"), start.comment
