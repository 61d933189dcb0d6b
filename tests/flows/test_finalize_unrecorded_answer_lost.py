"""A "Finalized" notice whose SNS answer was lost (``rollway.aws.errors.AnswerLost``: SNS may have
delivered it) in a finalize of a promotion the ledger does not record (the `canary` flow's,
`rollway finalize --unrecorded`). That path read the wrapped error as a refusal and said the notice
"NOT sent, nobody was told" in the run's error, its steps and its summary, of a notice SNS took. It
now says, in the recorded path's words, that whether it was sent is not known. On the embedded AWS."""

from __future__ import annotations

import pytest

from rollway.finalize import FinalizeNoticeRefused
from tests.flows.fake_env import rollout_flows_see
from tests.flows.moto_env import inbox, received_subjects, simulated
from tests.flows.test_finalize import promote_by_hand, saved_blocks
from tests.flows.test_finalize_notice_answer_lost import _finalized_answer_lost
from tests.flows.test_finalize_summary import KEY, run
from tests.flows.test_finalize_unrecorded import canary_flow
from tests.flows.test_reports_flow import artifacts_of

NOT_KNOWN = 'whether the "Finalized" notice was sent is not known (SNS\'s answer was lost: it may have taken it)'


def test_an_unrecorded_finalize_whose_notice_answer_was_lost_does_not_say_it_was_not_sent(aws, monkeypatch):
    env, _, _ = promote_by_hand(aws)
    url = inbox(aws)
    with _finalized_answer_lost(aws):
        state = run(monkeypatch, env, unrecorded=True)
    with pytest.raises(FinalizeNoticeRefused) as failed:
        state.result()
    said = " ".join(str(failed.value).split())
    assert "NOT sent" not in said and "nobody was told" not in said, said
    t = aws.targets
    assert f"{t.canary_service} is at 0 tasks; but {NOT_KNOWN}: " in said and "SNS Publish sent" in said, said
    assert f"Check the topic's delivery logs, or tell its subscribers yourself ({t.alert_topic}): " in said, said
    summary = " ".join(artifacts_of(state)[KEY].split())
    assert "NOT sent" not in summary and "nobody was told" not in summary, summary
    assert f"**Notice:** {NOT_KNOWN} on `{t.alert_topic}`" in summary, summary
    # SNS took it, though the run could not know.
    assert any(s.startswith("Finalized") for s in received_subjects(aws, url))


def test_the_canary_flow_s_finalize_whose_notice_answer_was_lost_says_it_is_not_known(aws, monkeypatch):
    blocks = saved_blocks(aws)
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        rollout_flows_see(monkeypatch, env)
        with _finalized_answer_lost(aws):
            result = canary_flow(env, image, blocks, finalize=True)
    done = result.finalized
    assert done is not None and done.outcome == "finalized", result.reason
    reason = " ".join(result.reason.split())
    assert "NOT sent" not in reason and "nobody was told" not in reason, reason
    assert f"{aws.targets.canary_service} is at 0 tasks; but {NOT_KNOWN}: " in reason, reason
    assert done.notice_lost, done
    assert any(step.startswith(f"{NOT_KNOWN}: ") for step in done.steps), done.steps


def test_an_unrecorded_finalize_that_gives_up_waiting_for_sns_does_not_send_people_to_a_run_again():
    """SNS not answering the "Finalized" notice within the run's ``write_seconds`` stopped the run,
    saying to run finalize again (``--unrecorded``), which "carries on": a run again finds nothing to
    finalize and sends nothing. Said as a lost answer is, instead (SNS may have taken it). On the
    fakes: the wait is the flow's own."""
    from rollway.fakes import FakeLedger
    from rollway.finalize import finalized_said
    from tests.flows.test_finalize import ALL_STABLE, finalize_bounded, promoted_on_fakes
    from tests.flows.test_finalize_notice_unanswered import UNANSWERED, _silent

    env, _ = promoted_on_fakes(FakeLedger())
    FakeLedger.__init__(env.ledger)  # the ledger records nothing: a `canary` flow's promotion
    with _silent(env):
        done = finalize_bounded(env, write_seconds=0.3, unrecorded=True)
    assert done.outcome == "finalized" and done.notice_lost and env.router.weights == ALL_STABLE, done
    said = " ".join(finalized_said(done, env.targets).split())
    t = env.targets
    assert (f"but {UNANSWERED}: SNS (topic {t.alert_topic!r}) did not answer within 0.3 s. Check the topic's delivery "
            f"logs, or tell its subscribers yourself ({t.alert_topic}): the ledger does not record this promotion, so "
            "no run sends the notice again") in said, said
    assert "run again" not in said.replace("finalize run again finds nothing", ""), said
    assert any(step.startswith(f"{UNANSWERED}: SNS (topic ") for step in done.steps), done.steps
    # As it says: a run again finds nothing to do.
    assert finalize_bounded(env, unrecorded=True).outcome == "nothing_to_finalize"
