"""What the approval form shows of the stages already passed. Week 2 opens with the approval
before 25 %, in a run that has judged no stage itself: its form's table had a header and no row,
and the person approving saw nothing of week 1's 5 % (what was judged, the verdict, the counts)."""

from __future__ import annotations

from prefect import flow

from flows.progressive import advance, run_progressive
from rollway.approvals import ApprovalAnswer
from rollway.spec import Stage
from tests.flows.test_progressive_fakes import env_with_ledger, full_spec
from tests.flows.test_weekly_schedule import MONDAY, WEEK, at, first_run


def recording(forms: list[str]):
    def answer(pause, summary: str) -> ApprovalAnswer:
        forms.append(summary)
        return ApprovalAnswer(action="approve", approver="dan", comment="ok")
    return answer


@flow
def tick_recorded(env, forms):
    return advance(env, recording(forms), owner="cron-1")


def test_week_2s_approval_form_shows_the_evidence_recorded_for_week_1s_stage():
    env = env_with_ledger()
    env.clock.t = at("UTC", *MONDAY)
    first_run(env, full_spec())
    passed = env.ledger.get(env.targets.canary_service).last_transition("verdict")
    env.clock.t += WEEK
    forms: list[str] = []
    assert tick_recorded(env, forms).outcome == "holding"
    form = forms[0]
    assert "approval needed before 25%" in form, form
    # Not a table with a header alone.
    assert "| stage | weights" not in form or form.count("\n|") > 2, form
    # Week 1's 5 % stage: its weights, and the verdict as the ledger recorded it, counts included.
    assert "95/5" in form.split("traffic now", 1)[1].split("\n", 1)[1], form
    assert passed.verdict and "canary" in passed.verdict and "req" in passed.verdict, passed
    assert passed.verdict in form.replace("\\", ""), (passed.verdict, form)


@flow
def first_pause(env, spec, forms):
    return run_progressive(env, spec, recording(forms), owner="run-1", actor="alice", phased=False)


def test_a_pause_before_any_stage_says_in_one_line_that_no_evidence_is_recorded():
    env = env_with_ledger()
    env.clock.t = at("UTC", *MONDAY)
    spec = full_spec()
    spec = spec.model_copy(update={"stages": (spec.stages[0].model_copy(update={"approval": True}),) + spec.stages[1:]})
    forms: list[str] = []
    first_pause(env, spec, forms)
    form = forms[0]
    assert "approval needed before 5%" in form, form
    assert "| stage |" not in form and "|---|" not in form, form
    assert "no stage has been judged yet" in form.lower(), form
