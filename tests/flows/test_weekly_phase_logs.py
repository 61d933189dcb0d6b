"""What the runs of a weekly rollout tell people: in their logs, which is what a person reads on
the run's page (which phase a run starts and why, that a phase ended holding, until when), and
over SNS when the schedule's run waits for a person."""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace

import pytest
from prefect import flow

from flows.progressive import advance, run_progressive
from rollway.fakes import FakeMetrics, steady
from tests.flows.test_monitor_resume import SPEC as MONITORED
from rollway.approvals import ApprovalAnswer, auto_approve, scripted
from rollway.cli.ops import print_status
from tests.flows.test_progressive_fakes import Intercept, Killed, env_with_ledger, full_spec
from tests.flows.test_weekly_schedule import MONDAY, WEEK, at, dies_recording_the_phase_complete, first_run, tick


def _said(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "prefect.flow_runs"]


def test_a_phased_run_and_the_schedules_tick_say_which_phase_they_start_and_that_it_ended_holding(caplog):
    """The Monday tick that started week 2 logged only "resuming ... at stage 1 (95/5)", and a run
    whose phase ended logged nothing after its last stage passed: neither log said that a phase
    started or ended, which one, where the traffic holds, nor when the next one may start."""
    env = env_with_ledger()
    service = env.targets.canary_service
    env.clock.t = at("UTC", *MONDAY)
    with caplog.at_level(logging.INFO):
        first_run(env, full_spec())
    said = _said(caplog)
    assert any(f"starting week 1 of {service} (phase 1 of 3: 5%)" in line for line in said), said
    assert any(f"week 1 of {service} complete: holding at 95/5" in line
               and "week 2 may start from Mon 2027-01-18 00:00 UTC" in line for line in said), said
    caplog.clear()
    env.clock.t += WEEK
    with caplog.at_level(logging.INFO):
        tick(env, "cron-1")
    said = _said(caplog)
    assert any(f"week 1 of {service} passed, and week 2 has been due since Mon 2027-01-18 00:00 UTC"
               in line for line in said), said
    assert any(f"starting week 2 of {service} (phase 2 of 3: 25%, 50%)" in line for line in said), said
    assert any(f"week 2 of {service} complete: holding at 50/50" in line for line in said), said


def test_a_phase_start_says_which_approvals_it_asks_by_when_and_that_an_unanswered_one_rolls_back(caplog):
    """The Monday schedule starts week 2, which asks before 25 % as it starts: the start line named
    the phase and its weights only, and nothing but the pause itself (once asked) said that nobody
    answering within the hour rolls the rollout back, nor how to wait instead."""
    env = env_with_ledger()
    env.wall = lambda: at("UTC", 2027, 1, 18, 9, 0)
    service = env.targets.canary_service
    env.clock.t = at("UTC", *MONDAY)
    with caplog.at_level(logging.INFO):
        first_run(env, full_spec())
    (week_1,) = [line for line in _said(caplog) if line.startswith(f"starting week 1 of {service}")]
    assert "approval" not in week_1, week_1  # week 1 asks nothing
    caplog.clear()
    env.clock.t += WEEK
    with caplog.at_level(logging.INFO):
        tick(env, "cron-1")
    (week_2,) = [line for line in _said(caplog) if line.startswith(f"starting week 2 of {service}")]
    assert week_2.endswith(
        "(phase 2 of 3: 25%, 50%); it asks for approval before 25% (25% is asked now: answer by about "
        "Mon 2027-01-18 10:00 UTC, wall clock, 1 h from now); a pause unanswered for 1 h rolls the rollout back "
        "(approvals.on_timeout: rollback; set approvals.on_timeout: hold to keep the weights and ask again "
        "instead)"), week_2
    caplog.clear()
    env.clock.t += WEEK
    with caplog.at_level(logging.INFO):
        tick(env, "cron-2")
    (week_3,) = [line for line in _said(caplog) if line.startswith(f"starting week 3 of {service}")]
    assert week_3.endswith("(phase 3 of 3: 75%, 100%); it asks for approval before 100%; a pause unanswered for "
                           "1 h rolls the rollout back (approvals.on_timeout: rollback; set approvals.on_timeout: hold "
                           "to keep the weights and ask again instead)"), week_3


@flow
def tick_answered(env, *answers):
    return advance(env, scripted(*answers), owner="cron-1")


def test_the_schedules_run_that_pauses_for_an_approval_tells_people_and_again_after_a_hold(caplog):
    """The Monday tick starts week 2, which opens with the approval before 25 %: the run paused
    and told nobody (the form is seen only by someone watching the Prefect UI), and an hour later
    the unanswered pause rolled the healthy rollout back. A "hold" answer asks the same question
    again an analysis interval later: people were told of the first pause only, and whoever
    follows the rollout from their phone never heard that it waited for them again."""
    env = env_with_ledger()
    env.clock.t = at("UTC", *MONDAY)
    first_run(env, full_spec())
    env.notifier.messages.clear()
    env.clock.t += WEEK
    # The default approvals: an hour to answer, then roll back (the tick pauses as it starts).
    due = dt.datetime.fromtimestamp(env.clock.t + 3600, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    hold = ApprovalAnswer(action="hold", approver="dan", comment="after the standup")
    approve = ApprovalAnswer(action="approve", approver="dan", comment="ok")
    assert tick_answered(env, hold, approve).outcome == "holding"
    asked = [(subject, message) for subject, message in env.notifier.messages if "waits for a person" in subject]
    assert len(asked) == 2, env.notifier.messages
    subject, message = asked[0]
    assert env.targets.canary_service in subject
    assert "approval needed before 25%" in message and "95/5" in message, message
    assert f"unanswered by {due} (wall clock) the rollout rolls back" in message, message
    # Every answer a terminal can give, holding included (it named approve and abort only).
    assert all(f"`rollway {command}`" in message for command in ("promote", "hold", "abort")), message
    subject, message = asked[1]
    assert subject == f"Rollout waits for a person again: {env.targets.canary_service}", subject
    assert message.startswith("dan answered hold (after the standup); asked again."), message
    assert "approval needed before 25%" in message and "95/5" in message, message


@flow
def rollout_answered(env, spec, *answers):
    return run_progressive(env, spec, scripted(*answers), owner="run-1", actor="alice", phased=False)


def test_a_pause_asked_again_after_a_refused_approval_or_a_timeout_tells_nobody_again():
    """Asked again after an approval the run refused (the person is at the form, which says why)
    or after a timeout whose policy holds (nobody read the first message), the pause is not sent
    again: for a rollout left holding for weeks that would be one message an hour."""
    env = env_with_ledger()
    env.clock.t = at("UTC", *MONDAY)
    spec = full_spec().model_copy(update={"approvals": full_spec().approvals.model_copy(update={"on_timeout": "hold"})})
    timeout = ApprovalAnswer(action="hold", approver="timeout", timed_out=True, comment="no answer within 3600 s")
    refused = ApprovalAnswer(action="approve", approver="dan", next_weight=3)
    reject = ApprovalAnswer(action="reject", approver="dan", comment="not this week")
    assert rollout_answered(env, spec, timeout, refused, reject).outcome == "rolled_back"
    asked = [subject for subject, _message in env.notifier.messages if "waits for a person" in subject]
    assert len(asked) == 1, env.notifier.messages


@flow
def unphased_run(env, spec):
    return run_progressive(env, spec, auto_approve("alice"), owner="run-1", actor="alice", phased=False)


def test_an_unphased_runs_history_and_status_agree_on_the_weekly_phase(capsys):
    """An unphased run (`rollway up`'s default) records week 1 as it starts: the history said
    "starting week 1" while `rollway status` said "weekly phase none", and a reader could not tell
    whether the run would stop at the end of week 1."""
    env = env_with_ledger()
    env.clock.t = at("UTC", *MONDAY)
    unphased_run(env, full_spec())
    record = env.ledger.get(env.targets.canary_service)
    (started,) = [t for t in record.history if t.kind == "phase"]
    assert started.comment.startswith("starting week 1") and "every stage" in started.comment, started
    print_status(SimpleNamespace(name=record.service, targets=env.targets), record, record.weights, None, limit=1)
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("weekly phase")]
    assert "every stage" in row and "none" not in row, row


def test_the_schedules_run_that_finds_a_complete_phase_names_it_and_says_it_holds(caplog):
    """The tick's line read "phase 1 of <service> runs on: ...; the next phase may start from ...":
    a number where the summary, status and SNS say "week 1", and "runs on" of a phase that was
    complete and holding its weights."""
    env = env_with_ledger()
    service = env.targets.canary_service
    env.clock.t = at("UTC", *MONDAY)
    first_run(env, full_spec())
    env.clock.t += 24 * 3600
    with caplog.at_level(logging.INFO):
        assert tick(env, "cron-0") is None
    (line,) = [line for line in _said(caplog) if "nothing to do" in line]
    assert line.startswith(f"week 1 of {service} is complete, holding at 95/5:"), line
    assert "week 2 may start from Mon 2027-01-18 00:00 UTC" in line and "runs on" not in line, line


def test_the_schedules_run_that_resumes_a_dead_runs_phase_names_it(caplog):
    """A run killed between its phase's last stage passing and the phase's completion: the next
    tick said "phase 1 of ... was left unfinished", "phase 1 of ... had passed before its run
    died" and "the next phase has been due since", naming no phase as people know them."""
    env = env_with_ledger()
    service = env.targets.canary_service
    real, armed = env.ledger, [True]
    env.ledger = Intercept(real, dies_recording_the_phase_complete(armed))
    env.clock.t = at("UTC", *MONDAY)
    with pytest.raises(Killed):
        first_run(env, full_spec())
    env.ledger = real
    env.clock.t += WEEK
    with caplog.at_level(logging.INFO):
        assert tick(env, "cron-1").outcome == "holding"
    said = _said(caplog)
    assert any(line.startswith(f"week 1 of {service} was left unfinished by run-1: resuming it") for line in said), said
    assert any(line.startswith(f"week 1 of {service} had passed before its run died") for line in said), said
    assert any(f"week 1 of {service} passed, and week 2 has been due since Mon 2027-01-18 00:00 UTC: starting it"
               in line for line in said), said
    assert not any(line.startswith("phase ") for line in said), said


class DarkOncePromoted(FakeMetrics):
    """The promoted version's request counts go missing once the rollout is promoted."""

    def __init__(self, env) -> None:
        super().__init__(env.router, steady(50.0, 0.001, 0.001))
        self.ledger, self.service, self.dark = env.ledger, env.targets.canary_service, True

    def observe(self, start, end):
        seen = super().observe(start, end)
        record = self.ledger.get(self.service)
        if self.dark and record is not None and record.phase.value == "promoted":
            return seen.model_copy(update={"intervals": tuple(i.model_copy(update={"canary": None})
                                                              for i in seen.intervals)})
        return seen


@flow
def monitored_run(env):
    return run_progressive(env, MONITORED, auto_approve("alice"), owner="run-1", actor="alice",
                           owner_finished=lambda owner: True)


def test_the_schedules_run_that_resumes_an_unverified_window_says_no_run_holds_it(caplog):
    """A window that ended unverified is released by its run: the next tick said it "was left
    unfinished by None"."""
    env = env_with_ledger()
    env.metrics = DarkOncePromoted(env)
    assert monitored_run(env).monitoring_verified is False
    env.metrics.dark = False
    env.clock.sleep(7200)
    with caplog.at_level(logging.INFO):
        tick(env, "cron-1")
    said = [line for line in _said(caplog) if "monitoring window" in line]
    assert any(line.startswith(f"the monitoring window of {env.targets.canary_service} is unfinished and no run "
                               "holds it: resuming it") for line in said), said
    assert not any("None" in line for line in said), said


@flow
def tick_of(env, owner, finished):
    return advance(env, auto_approve("carol"), owner=owner, owner_finished=finished)


def test_the_schedules_run_while_the_last_phase_still_waits_for_an_answer_says_so(caplog):
    """Week 2 opens with the approval before 25 %, asked by the Monday tick's run (cron-1); the
    approvals wait a fortnight here, and nobody has answered by the next Monday, when week 3
    would be due. That tick left the rollout alone, as it must, but its log said only "driven by
    cron-1, whose run has not ended: nothing to do" at info: not that week 2 still waits for an
    answer, which one, nor that week 3 cannot start until week 2 has passed."""
    env = env_with_ledger()
    service = env.targets.canary_service
    env.clock.t = at("UTC", *MONDAY)
    spec = full_spec().model_copy(update={"approvals": full_spec().approvals.model_copy(
        update={"timeout_seconds": 14 * 24 * 3600})})
    first_run(env, spec)
    env.clock.t += WEEK
    seen: dict = {}

    def dan(pause, summary, watch=None):
        env.clock.sleep(WEEK)  # dan is away; the next Monday's schedule fires meanwhile
        with caplog.at_level(logging.INFO):
            seen["tick"] = tick_of(env, "cron-2", lambda owner: False)
        seen["said"] = _said(caplog)
        seen["record"] = env.ledger.get(service)
        return ApprovalAnswer(action="approve", approver="dan", comment="back")

    assert tick_answered_by(env, dan).outcome == "holding"
    assert seen["tick"] is None and seen["record"].owner == "cron-1", seen
    lines = [r for r in caplog.records if "cron-1" in r.getMessage() and "nothing to do" in r.getMessage()]
    assert lines, seen["said"]
    line = lines[-1].getMessage()
    assert lines[-1].levelno == logging.WARNING, line
    assert f"week 2 of {service} waits for an answer to its pause before 25%" in line, line
    assert "week 3 starts only once week 2 has passed" in line, line


@flow
def unphased_run_answered_by(env, spec, approver):
    return run_progressive(env, spec, approver, owner="run-1", actor="alice", phased=False)


def test_the_schedules_run_while_an_unphased_rollout_waits_for_an_answer_does_not_call_it_the_last_phase(caplog):
    """alice runs every stage at once (phased=false); its run waits for the approval before 25 %
    when the Monday tick fires. The tick's warning said "week 1 ... waits for an answer ...; it is
    the last phase": the rollout follows no weekly phase, and week 1 of three is not the last."""
    env = env_with_ledger()
    service = env.targets.canary_service
    env.clock.t = at("UTC", *MONDAY)
    seen: dict = {}

    def dan(pause, summary, watch=None):
        with caplog.at_level(logging.INFO):
            seen["tick"] = tick_of(env, "cron-1", lambda owner: False)
        return ApprovalAnswer(action="approve", approver="dan", comment="ok")

    unphased_run_answered_by(env, full_spec(), dan)
    assert seen["tick"] is None, seen
    lines = [r for r in caplog.records if "run-1" in r.getMessage() and "nothing to do" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.WARNING] * 2, _said(caplog)
    for record, pause in zip(lines, ("pause before 25%", "pause before 100%")):
        line = record.getMessage()
        assert f"waits for an answer to its {pause}" in line, line
        assert "last phase" not in line and "week 1" not in line, line
        assert f"{service}'s rollout runs every stage in one run (unphased)" in line, line


@flow
def tick_answered_by(env, approver):
    return advance(env, approver, owner="cron-1")


def test_the_schedules_run_after_a_rollback_names_the_rolled_back_rollout(caplog):
    """dan rejects week 2's approval: the rollout is rolled back. The next Monday's tick said
    "no unfinished rollout of <service>: nothing to advance", which read as though no rollout had
    ever run, and named neither the rollback nor how to start again."""
    env = env_with_ledger()
    service = env.targets.canary_service
    env.clock.t = at("UTC", *MONDAY)
    first_run(env, full_spec())
    env.clock.t += WEEK
    reject = ApprovalAnswer(action="reject", approver="dan", comment="not this week")
    assert tick_answered(env, reject).outcome == "rolled_back"
    record = env.ledger.get(service)
    env.clock.t += WEEK
    with caplog.at_level(logging.INFO):
        assert tick(env, "cron-2") is None
    (line,) = [line for line in _said(caplog) if "nothing to advance" in line]
    assert f"{service}'s newest rollout of {record.image} ({record.rollout_id}) was rolled back in week 2" in line, line
    assert "week 2" in line and "progressive_rollout" in line, line
    assert shifts_of(env) == [5]


def test_a_multi_line_comment_is_logged_on_the_answers_one_line(caplog):
    """The form's comment is a text area: the run logged it as typed after "pause (...) answered
    reject by dan:", so a second line of it read as a line of the run's own log (here a forged
    approval by someone else) and an escape sequence acted on a console showing the log."""
    env = env_with_ledger()
    env.clock.t = at("UTC", *MONDAY)
    first_run(env, full_spec())
    env.clock.t += WEEK
    forged = "01:02:03.000 | INFO    | Flow run 'x' - pause (approval) answered approve by the-cto: fine"
    reject = ApprovalAnswer(action="reject", approver="dan", comment=f"not this week\n{forged}\x1b[2K")
    with caplog.at_level(logging.INFO):
        assert tick_answered(env, reject).outcome == "rolled_back"
    said = "\n".join(_said(caplog))
    (line,) = [line for line in said.splitlines() if "answered reject by dan" in line]
    assert "not this week\\n01:02:03.000" in line and line.endswith("\\x1b[2K"), line
    assert not any(line.startswith("01:02:03.000") for line in said.splitlines()), said
    assert "\x1b" not in said, said


def shifts_of(env) -> list[int]:
    return [t.to_weights.canary for t in env.ledger.get(env.targets.canary_service).history if t.kind == "shift"]


def test_a_run_after_a_rollback_of_the_same_image_says_it_starts_a_new_rollout_from_week_1(caplog):
    """Week 2 is rejected and rolled back; later someone starts progressive_rollout again with the
    same image, as they would to resume. It began a new rollout at week 1's 5 % saying only
    "starting week 1", and nothing said that the rolled-back rollout is not resumed."""
    env = env_with_ledger()
    service = env.targets.canary_service
    env.clock.t = at("UTC", *MONDAY)
    first_run(env, full_spec())
    env.clock.t += WEEK
    assert tick_answered(env, ApprovalAnswer(action="reject", approver="dan", comment="no")).outcome == "rolled_back"
    old = env.ledger.get(service)
    env.clock.t += WEEK
    with caplog.at_level(logging.INFO):
        assert first_run(env, full_spec(), owner="run-2").outcome == "holding"
    # Run-2's words about the earlier rollout (the rollback's own run ends with a "rolled back ..." line too).
    said = [line for line in _said(caplog) if "was rolled back" in line]
    assert said and f"{service}'s newest rollout of {old.image} ({old.rollout_id}) was rolled back in week 2" in said[0], \
        _said(caplog)
    assert "this run starts a new rollout of it, from week 1" in said[0], said
    assert env.ledger.get(service).rollout_id != old.rollout_id and shifts_of(env) == [5]


def test_a_tick_over_a_run_paused_before_the_open_pause_was_kept_says_it_waits_not_that_it_may_be_hung(caplog):
    """A record written before the ledger kept the open pause (no ``open_pause``) whose history shows
    alice's run waiting at the approval before 25 %: a paused run renews no lease, and the tick, which
    looked for the question on the record alone, warned two hours on that the run "may be hung" and
    nothing judged the canary, of a run waiting for dan."""
    env = env_with_ledger()
    service = env.targets.canary_service
    env.clock.t = at("UTC", *MONDAY)
    spec = full_spec().model_copy(update={"approvals": full_spec().approvals.model_copy(
        update={"timeout_seconds": 14 * 24 * 3600})})
    seen: dict = {}

    def dan(pause, summary, watch=None):
        rollouts = env.ledger._rollouts[service]
        rollouts[-1] = rollouts[-1].model_copy(update={"open_pause": None})  # as an older version wrote it
        env.clock.sleep(2 * 3600)  # the paused run's lease lapsed long ago
        with caplog.at_level(logging.INFO):
            seen.setdefault("ticks", []).append(tick_of(env, "cron-1", lambda owner: False))
        return ApprovalAnswer(action="approve", approver="dan", comment="ok")

    unphased_run_answered_by(env, spec, dan)
    assert seen["ticks"] == [None, None], seen
    said = _said(caplog)
    assert not [line for line in said if "may be hung" in line], said
    lines = [r for r in caplog.records if "run-1" in r.getMessage() and "nothing to do" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.WARNING] * 2, said
    for record, pause in zip(lines, ("pause before 25%", "pause before 100%")):
        assert f"waits for an answer to its {pause}" in record.getMessage(), record.getMessage()
