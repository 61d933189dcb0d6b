"""A person starts the next weekly phase early (`advance_phase(start_early_because=...)`).

At `make up`'s 60x a rollout week passes in under three wall hours while the Monday cron fires
on the wall calendar, and in production a person may have a reason not to wait for Monday: a
run by hand said "nothing to do". An early start is recorded in the ledger with who and why;
it still refuses a phase that has not passed, and the schedule itself cannot give one.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from prefect import flow

from flows.progressive import PhaseRefused, advance, advance_phase, run_progressive
from rollway.approvals import auto_approve
from rollway.ledger import Transition
from rollway.phases import RolloutPhase
from tests.flows.test_progressive_fakes import Killed, dies_at_observe, env_with_ledger, full_spec, shifts

H = 3600
TUESDAY = dt.datetime(2027, 1, 12, 9, 0, tzinfo=dt.timezone.utc).timestamp()
REASON = "the demo's week passed; showing week 2 to the team"


@flow
def week_1(env):
    return run_progressive(env, full_spec(), auto_approve("alice"), owner="run-1", actor="alice", phased=True)


@flow
def by_hand(env, actor, reason, live_owner=None):
    """A person's advance_phase run; ``live_owner``: a holder whose run Prefect says has not ended."""
    return advance(env, auto_approve(actor), owner="by-hand", actor=actor, early_reason=reason,
                   owner_finished=lambda owner: owner != live_owner)


def test_a_person_starts_the_next_phase_early_and_the_ledger_says_who_and_why():
    env = env_with_ledger()
    env.clock.t = TUESDAY
    assert week_1(env).outcome == "holding"
    env.clock.t += 2 * H
    assert by_hand(env, "bob", None) is None and shifts(env) == [5], "without a reason: the calendar holds"
    assert by_hand(env, "bob", REASON).outcome == "holding"
    record = env.ledger.get(env.targets.canary_service)
    assert record.weekly_phase_index == 1 and shifts(env) == [5, 25, 50]
    started = [t for t in record.history if t.kind == "phase" and t.comment.startswith("starting week 2")]
    assert started and started[-1].actor == "bob", started
    assert "early, before Mon 2027-01-18 00:00 UTC, by bob" in started[-1].comment and REASON in started[-1].comment


def week_1_not_passed(**changes):
    """Week 1 ran on Tuesday and is recorded not passed (with ``changes``), two hours later: (env, service)."""
    env = env_with_ledger()
    env.clock.t = TUESDAY
    assert week_1(env).outcome == "holding"
    service = env.targets.canary_service
    now = env.clock.now()
    env.ledger.record(service, owner=None, now=now, transition=Transition(at=now, kind="note", actor="test"),
                      weekly_phase_passed=False, **changes)
    env.clock.t += 2 * H
    return env, service


def test_an_early_start_is_refused_while_the_current_phase_has_not_passed():
    # Week 1 held without passing (as a phase whose stage was inconclusive leaves it).
    env, service = week_1_not_passed(stage_passed=False)
    with pytest.raises(PhaseRefused, match="week 1 has not passed"):
        by_hand(env, "bob", REASON)
    assert shifts(env) == [5] and env.ledger.get(service).weekly_phase_index == 0


def test_an_early_start_while_the_phases_run_is_still_at_work_is_refused_saying_so():
    """Week 1's run still drives it (waiting for an approval, say). bob's early start used to end
    Completed, only its log saying "nothing to do": in the UI it looked as if week 2 had started."""
    env, service = week_1_not_passed(phase=RolloutPhase.PROGRESSING)
    env.ledger.acquire(service, owner="week-1-run", now=env.clock.now(), lease_seconds=600)
    with pytest.raises(PhaseRefused, match=r"week 1 is still driven by week-1-run[\s\S]*no phase was started early"):
        by_hand(env, "bob", REASON, live_owner="week-1-run")
    assert shifts(env) == [5] and env.ledger.get(service).weekly_phase_index == 0


def test_an_early_start_with_no_rollout_is_refused():
    with pytest.raises(PhaseRefused, match="no next phase to start early"):
        by_hand(env_with_ledger(), "bob", REASON)


def test_the_schedule_cannot_start_a_phase_early():
    env = env_with_ledger()
    env.clock.t = TUESDAY
    week_1(env)
    with pytest.raises(PhaseRefused, match="name of the person"):
        by_hand(env, "schedule", REASON)
    assert shifts(env) == [5]


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_a_blank_or_overlong_reason_is_refused_before_the_run(reason):
    state = advance_phase(actor="bob", start_early_because=reason, return_state=True)
    assert state.is_failed() and "Validation of flow parameters failed" in (state.message or ""), state.message


def test_an_early_start_at_a_phase_whose_run_died_is_refused_not_turned_into_a_resume():
    """bob asks for week 2 early while week 1's run has died half-way through its stage. The
    run resumed week 1 instead, ended Completed "holding" at 5 %, and said nothing of the early
    start it had dropped: from the UI, week 2 looked started."""
    env = env_with_ledger()
    env.clock.t = TUESDAY
    real = dies_at_observe(env, 3, "the node running week 1 is lost while 5% bakes")
    with pytest.raises(Killed):
        week_1(env)
    env.metrics = real
    service = env.targets.canary_service
    before = env.ledger.get(service)
    assert (before.phase, before.weekly_phase_passed, before.owner) == (RolloutPhase.PROGRESSING, False, "run-1")
    env.clock.t += 2 * H  # the dead run's lease has run out
    with pytest.raises(PhaseRefused, match=r"week 1 has not passed[\s\S]*no phase was started early for bob"
                                           r"[\s\S]*without start_early_because"):
        by_hand(env, "bob", REASON)
    after = env.ledger.get(service)
    assert after.history == before.history and after.owner == "run-1", [t.kind for t in after.history]
    assert env.router.weights.canary == 5 and shifts(env) == [5]


def _said(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "prefect.flow_runs"]


def test_an_early_start_logs_which_phase_holds_and_which_one_it_starts(caplog):
    """The run's log said "phase 1 of <service> would run on (...)" of a week 1 that was complete
    and holding, naming neither it nor the phase bob started as people know them."""
    env = env_with_ledger()
    env.clock.t = TUESDAY
    assert week_1(env).outcome == "holding"
    env.clock.t += 2 * H
    with caplog.at_level(logging.INFO):
        assert by_hand(env, "bob", REASON).outcome == "holding"
    service = env.targets.canary_service
    (line,) = [line for line in _said(caplog) if REASON in line and "starts" in line]
    assert line.startswith(f"week 1 of {service} is complete, holding at 95/5 (the phase started this calendar "), line
    assert f"bob starts week 2 now: {REASON}" in line and "run on" not in line, line


def test_an_early_start_that_finds_the_next_phase_already_due_keeps_the_persons_reason(caplog):
    """bob asks for week 2 early, saying why, a week after week 1 began: it had been due since
    Monday, no tick had run since (under `make up` the cron fires on the wall calendar). The
    phase started as the schedule's would, and bob's reason was recorded nowhere, neither in the
    ledger's history nor in the run's log."""
    env = env_with_ledger()
    env.clock.t = TUESDAY
    assert week_1(env).outcome == "holding"
    env.clock.t += 7 * 24 * H
    with caplog.at_level(logging.INFO):
        assert by_hand(env, "bob", REASON).outcome == "holding"
    record = env.ledger.get(env.targets.canary_service)
    assert record.weekly_phase_index == 1 and shifts(env) == [5, 25, 50]
    (started,) = [t for t in record.history if t.kind == "phase" and t.comment.startswith("starting week 2")]
    assert started.actor == "bob", started
    assert "asked early by bob, due anyway since Mon 2027-01-18 00:00 UTC" in started.comment, started.comment
    assert REASON in started.comment, started.comment
    said = [line for line in _said(caplog) if REASON in line]
    assert any("bob asked to start it early" in line and "due anyway" in line for line in said), _said(caplog)


def test_an_early_start_over_the_lease_of_a_run_that_ended_names_that_lease_not_a_run_taking_over():
    """Week 1's run passed its phase and died before letting the rollout go: its lease runs ten
    more minutes, and bob starts week 2 early meanwhile. Refused, as before, but said as a run that
    "took the rollout as this run was about to start week 2 ...: it is left to that run": no run
    had taken it, and the one named had ended, so nobody would go on with it."""
    env = env_with_ledger()
    env.clock.t = TUESDAY
    assert week_1(env).outcome == "holding"
    env.clock.t += 2 * H
    service = env.targets.canary_service
    env.ledger.acquire(service, owner="week-1-run", now=env.clock.now(), lease_seconds=600, wall=env.wall())
    before = env.ledger.get(service)
    with pytest.raises(PhaseRefused) as refused:
        by_hand(env, "bob", REASON)
    said = str(refused.value)
    assert "took the rollout" not in said and "left to that run" not in said, said
    assert f"{service}'s rollout is held by week-1-run, whose run has ended, under a lease that runs until" in said, \
        said
    assert "no phase was started early for bob" in said and "run advance_phase again once that lease has run out" \
        in said, said
    assert env.ledger.get(service).history == before.history and shifts(env) == [5]


# A name a script or an older form let through (the form refuses a line break, not a right-to-left
# override), and a reason typed in the form's text area: as typed, the line break wrote a line of its
# own in the run's log, and the override (U+202E) reordered the words after it.
NAMED = "bob\n\u202eenoN"
NAMED_SHOWN = r"bob\n\u202eenoN"
TYPED = "week 1 looks fine\nrollback by nobody \u202egnikrow lla"
TYPED_SHOWN = r"week 1 looks fine rollback by nobody \u202egnikrow lla"


def _none_raw(*said: str) -> None:
    for text in said:
        assert "\u202e" not in text and "enoN\n" not in text and "bob\n" not in text, text


@pytest.mark.parametrize("hours", [2, 7 * 24], ids=["early", "due anyway"])
def test_an_early_starts_name_and_reason_are_logged_and_recorded_escaped(caplog, hours):
    env = env_with_ledger()
    env.clock.t = TUESDAY
    assert week_1(env).outcome == "holding"
    env.clock.t += hours * H
    with caplog.at_level(logging.INFO):
        assert by_hand(env, NAMED, TYPED).outcome == "holding"
    (started,) = [t for t in env.ledger.get(env.targets.canary_service).history
                  if t.kind == "phase" and t.comment.startswith("starting week 2")]
    by = "early, before Mon 2027-01-18 00:00 UTC, by" if hours == 2 else "asked early by"
    assert f"{by} {NAMED_SHOWN}" in started.comment and TYPED_SHOWN in started.comment, started.comment
    said = [line for line in _said(caplog) if "gnikrow" in line]
    assert said and all(TYPED_SHOWN in line and NAMED_SHOWN in line for line in said), said
    _none_raw(started.comment, *said)


def test_an_early_start_refused_names_the_person_escaped():
    env, _service = week_1_not_passed(phase=RolloutPhase.PROGRESSING)
    env.ledger.acquire(_service, owner="week-1-run", now=env.clock.now(), lease_seconds=600)
    with pytest.raises(PhaseRefused) as refused:
        by_hand(env, NAMED, TYPED, live_owner="week-1-run")
    said = str(refused.value)
    assert f"no phase was started early for {NAMED_SHOWN}" in said, said
    _none_raw(said)
