"""What the reports say of a rollout while its run waits for a person's answer, and which flow
runs drove it: progressive_rollout's logic on fakes, the report read from its ledger mid-pause."""

from __future__ import annotations

from prefect.context import FlowRunContext

from rollway.approvals import ApprovalAnswer
from rollway.reports import rollout_report
from rollway.spec import Approvals, RolloutSpec, Stage
from tests.flows.test_progressive_fakes import Killed, env_with_ledger, progressive_on

SPEC = RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[
    Stage(weight=5, bake_seconds=120), Stage(weight=25, bake_seconds=120, approval=True),
    Stage(weight=100, bake_seconds=120),
])


def test_a_rollout_paused_for_approval_reads_as_waiting_at_its_stage_and_says_how_to_answer():
    """It read "progressing (not finished)": the ledger recorded no pause, and the report could
    not tell a rollout waiting for a person from one a run was moving on."""
    env = env_with_ledger()
    seen: dict[str, str] = {}

    def approver(pause, summary):
        run = FlowRunContext.get().flow_run
        seen["run"] = f"{run.name} ({run.id})"
        seen["report"] = rollout_report(env.ledger.get(env.targets.canary_service))
        return ApprovalAnswer(action="approve", approver="bob", comment="looks good")

    assert progressive_on(env, SPEC, approver).outcome == "promoted"
    paused = seen["report"]
    outcome = next(line for line in paused.splitlines() if line.startswith("- **Outcome:**"))
    assert "progressing (not finished)" not in outcome, outcome
    assert "waiting for a person's approval** for stage 2/3 (25%), at 95/5 stable/canary, since " in outcome
    assert "approval needed before 25%" in outcome and "the rollout rolls back" in outcome
    assert f"the paused flow run {seen['run']}: **Resume**" in outcome
    assert "`rollway promote` (approve)" in outcome and "`rollway abort` (reject: roll back)" in outcome
    # The flow run that drove it is named, so it can be found in the Prefect UI.
    assert f"- **Flow runs** (Prefect UI, Runs; search by name or id): `{seen['run']}` (started it, " in paused
    # Answered, it no longer waits.
    done = rollout_report(env.ledger.get(env.targets.canary_service))
    assert "waiting for a person" not in done and f"`{seen['run']}`" in done


def test_a_pause_asked_again_after_timeouts_that_hold_is_recorded_once_and_still_reads_as_waiting():
    """An unanswered pause whose policy holds is asked again for as long as nobody answers: one
    entry per asking would grow the ledger item without end."""
    env = env_with_ledger()
    spec = SPEC.model_copy(update={"approvals": Approvals(on_timeout="hold")})
    timeout = ApprovalAnswer(action="hold", approver="timeout", timed_out=True, comment="no answer within 3600 s")
    reports: list[str] = []

    def approver(pause, summary):
        reports.append(rollout_report(env.ledger.get(env.targets.canary_service)))
        if len(reports) > 3:
            raise Killed("the process dies while it waits")
        return timeout

    try:
        progressive_on(env, spec, approver)
    except Killed:
        pass
    history = env.ledger.get(env.targets.canary_service).history
    assert [t.kind for t in history].count("pause") == 1
    assert [t.kind for t in history].count("timeout") == 1
    assert "waiting for a person's approval** for stage 2/3 (25%)" in reports[-1]
    assert "timed out at " in reports[-1] and "and is asked again" in reports[-1]


def test_weekly_ticks_that_found_nothing_to_do_are_said_to_be_left_out_of_the_reports_flow_runs():
    """The report lists the flow runs the ledger names; a weekly tick that found nothing to do
    (the next phase not due yet) writes nothing, not even a lease, so a reader took the list for
    every run that had looked at the rollout, and could not tell whether the schedule ran at all."""
    from tests.flows.test_progressive_fakes import full_spec
    from tests.flows.test_weekly_schedule import MONDAY, at, first_run, tick

    env = env_with_ledger()
    env.clock.t = at("UTC", *MONDAY)
    first_run(env, full_spec())
    before = env.ledger.get(env.targets.canary_service)
    env.clock.t += 2 * 86400  # Wednesday: week 2 is not due before next Monday
    assert tick(env, "cron-1") is None
    after = env.ledger.get(env.targets.canary_service)
    assert after == before, "a tick with nothing to do writes nothing to the ledger"
    runs = next(line for line in rollout_report(after).splitlines() if line.startswith("- **Flow runs**"))
    assert "cron-1" not in runs
    assert ("Weekly `advance_phase` runs that found nothing to do are not listed: they write nothing to the ledger "
            "(not even a lease), so it does not count them") in runs, runs


def test_a_stage_approved_after_a_dead_run_and_a_hold_says_who_approved_it_and_how_long_5_percent_waited():
    """The run waiting at the approval before 25 % died; the next one took the rollout over and asked
    again, erin held it, dana approved: the stage table said "shift by alice" of 25 % and nothing of
    the wait users spent at 5 %, nor of the dead run and the hold in it."""
    import pytest

    from rollway.approvals import scripted
    from rollway.ledger import utc
    from rollway.spec import Approvals

    env = env_with_ledger()
    spec = SPEC.model_copy(update={"monitor_seconds": 0, "approvals": Approvals(timeout_seconds=7200)})

    def dies(pause, summary, watch=None):
        env.clock.sleep(300)
        raise Killed("the node running the rollout is lost while it waits")

    with pytest.raises(Killed):
        progressive_on(env, spec, dies, owner="run-1")
    env.clock.sleep(900)  # past run-1's lease
    hold = ApprovalAnswer(action="hold", approver="erin", comment="batch job running")
    approve = ApprovalAnswer(action="approve", approver="dana", comment="ok")
    assert progressive_on(env, spec, scripted(hold, approve, clock=env.clock, after_seconds=600),
                          owner="run-2").outcome == "promoted"

    record = env.ledger.get(env.targets.canary_service)
    first = next(t for t in record.history if t.kind == "pause")
    taken = next(t for t in record.history if t.kind == "takeover")
    held = next(t for t in record.history if t.kind == "hold")
    approved = next(t for t in record.history if t.kind == "approve")
    (row,) = [x for x in rollout_report(record).splitlines() if x.startswith("| 2/3 |")]
    assert (f"| by dana at {utc(approved.at)}, after {(approved.at - first.at) / 60:.1f} min at 5% (asked from "
            f"{utc(first.at)}; {taken.actor} took the rollout over at {utc(taken.at)} from a run that had stopped, "
            f"and asked again; held by erin at {utc(held.at)}) |") in row, row
