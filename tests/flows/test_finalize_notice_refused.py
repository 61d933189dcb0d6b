"""A finalize whose "Finalized" notice SNS refuses: the traffic work is done and recorded as done,
the refusal is recorded on the rollout (``notice-failed``) and said in the run's result, its
summary, `rollway status`'s finalize row and the report, and the run fails saying so. It used to
stop before recording the finalize as done: every later finalize redid the moves and stopped at
the same notice, and the next rollout was refused until SNS took a publish. On the embedded AWS."""

from __future__ import annotations

import pytest

from rollway.finalize import FinalizeNoticeRefused, is_finalized
from rollway.ledger import NOTICE_FAILED, NOTIFIED
from rollway.reports import finalize_row, rollout_report
from tests.botocore_events import on_operation
from tests.flows.test_canary_moto import read_back
from tests.flows.moto_env import inbox
from tests.flows.test_finalize import ALL_STABLE, finalize_on, notice, promote_by_hand
from tests.flows.test_finalize_summary import KEY, run
from tests.flows.test_reports_flow import artifacts_of
from tests.flows.test_rollout_denied import refusing


def _publish_refused(aws, asked: list[str]):
    return on_operation(aws.get_client("sns"), "before-parameter-build",
                        refusing("AuthorizationError", "sns:Publish", aws.topology.topic_arn, asked),
                        operation="Publish")


def test_a_refused_finalized_notice_records_the_finalize_done_and_the_notice_not_sent(aws):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    asked: list[str] = []
    with _publish_refused(aws, asked):
        result = finalize_on(env)
    assert result.outcome == "finalized" and result.notification_id is None
    assert "sns:Publish" in result.notice_refused and "statement Alert" in result.notice_refused, result.notice_refused
    assert any('"Finalized" notice was NOT sent' in step for step in result.steps), result.steps
    weights, stable, canary = read_back(aws)
    assert (weights, stable.task_definition, canary.desired) == (ALL_STABLE, release, 0)

    record = env.ledger.get(aws.targets.canary_service)
    assert is_finalized(record), [t.kind for t in record.history]
    kinds = [t.kind for t in record.history]
    assert kinds.index(NOTICE_FAILED) > kinds.index("finalized")
    assert "sns:Publish" in record.last_transition(NOTICE_FAILED).comment

    row = finalize_row(record)
    assert row.startswith("done by alice") and 'the "Finalized" notice was NOT sent' in row, row
    assert "sns:Publish" in row, row
    report = rollout_report(record)
    assert 'the "Finalized" notice was NOT sent' in report and "sns:Publish" in report, report

    # Run again, SNS still refusing: nothing moved again, the finalize is found done.
    before = read_back(aws)
    with _publish_refused(aws, []):
        again = finalize_on(env)
    assert again.outcome == "already_finalized"
    assert read_back(aws) == before
    # Its closing line says the notice is still not sent: "nothing changed" alone read as all done.
    assert 'the "Finalized" notice was NOT sent' in again.steps[-1] and "sns:Publish" in again.steps[-1], again.steps


def test_a_finalize_run_again_sends_the_refused_finalized_notice_late_and_records_it_sent(aws):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    url = inbox(aws)
    with _publish_refused(aws, []):
        finalize_on(env)
    before = read_back(aws)
    # SNS takes it now (its policy mended): the run again moves nothing and sends the notice owed.
    again = finalize_on(env, actor="bob")
    assert again.outcome == "already_finalized" and again.notification_id, again
    assert again.notice_refused is None
    assert read_back(aws) == before
    stable = aws.targets.stable_service
    late = notice(aws, url, f"Finalized (late): {stable}")
    assert "This notice is late" in late and "sns:Publish" in late and release in late, late
    record = env.ledger.get(aws.targets.canary_service)
    kinds = [t.kind for t in record.history]
    assert kinds.index(NOTIFIED) > kinds.index(NOTICE_FAILED), kinds
    assert record.last_transition(NOTIFIED).message_id == again.notification_id
    assert any("sent late" in step for step in again.steps), again.steps
    # Sent, it is no longer said to be owed, and a third run sends nothing.
    row = finalize_row(record)
    assert "NOT sent" not in row, row
    # Only the history's own row of the refusal says it: the outcome no longer does.
    report = rollout_report(record).splitlines()
    said = [line for line in report if "NOT sent" in line and f"| {NOTICE_FAILED} |" not in line]
    assert not said, [line[:200] for line in said]
    assert any(f"| {NOTIFIED} | bob |" in line for line in report)
    third = finalize_on(env)
    assert third.notification_id is None and "NOT sent" not in third.steps[-1], third.steps


def test_a_late_finalized_notice_sns_refuses_again_fails_the_run_again_and_stays_owed(aws, monkeypatch):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    with _publish_refused(aws, []):
        finalize_on(env)
        state = run(monkeypatch, env)
    with pytest.raises(FinalizeNoticeRefused, match="NOT sent") as refused:
        state.result()
    said = str(refused.value)
    assert "Running finalize again sends it late to topic" in said, said
    record = env.ledger.get(aws.targets.canary_service)
    assert [t.kind for t in record.history][-2:] == [NOTICE_FAILED, NOTICE_FAILED]
    assert 'the "Finalized" notice was NOT sent' in finalize_row(record)


def test_a_finalize_run_whose_notice_is_refused_fails_after_its_summary_says_so(aws, monkeypatch):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    with _publish_refused(aws, []):
        state = run(monkeypatch, env)
    with pytest.raises(FinalizeNoticeRefused, match="NOT sent") as refused:
        state.result()
    said = str(refused.value)
    assert "is finalized and recorded so" in said and "sns:Publish" in said, said
    assert "Running finalize again sends it late to topic" in said and "yourself" not in said, said
    summary = artifacts_of(state)[KEY]
    assert "# Finalized: webordinary-edit-service-canary" in summary, summary
    assert "**Notice:** NOT sent" in summary and "sns:Publish" in summary, summary
    assert is_finalized(env.ledger.get(aws.targets.canary_service))


def test_a_late_finalized_notice_does_not_name_a_hotfix_put_on_since_as_the_finalized_release(aws):
    """Finalized with its notice refused, then the stable service pointed at a hotfix by hand: the
    late "Finalized" notice said the stable service runs the hotfix's task definition, beside
    "Rollout X, finalized", as if that were the release finalized."""
    from rollway.aws.ecs import EcsDeployer

    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    url = inbox(aws)
    with _publish_refused(aws, []):
        finalize_on(env)
    t = aws.targets
    hotfix = EcsDeployer(aws.get_client("ecs"), t).register_revision(f"{aws.topology.repository_uri}:2.0.1", release)
    aws.get_client("ecs").update_service(cluster=t.cluster, service=t.stable_service, taskDefinition=hotfix)
    again = finalize_on(env, actor="bob")
    assert again.outcome == "already_finalized" and again.notification_id, again
    late = notice(aws, url, f"Finalized (late): {t.stable_service}")
    assert f"runs {hotfix} (not the finalized {release}: it was changed since)" in late, late


def test_a_late_finalized_notice_names_the_release_as_the_first_notice_would_have(aws):
    """The first "Finalized" notice names the image, the digest it was pinned to and the task
    definition ("now runs <tag> (pinned as <digest>) (<revision>)"); the late one sent in its place
    named the task definition alone, leaving people to look up which release that was."""
    repository = aws.topology.repository_uri
    pinned = f"{repository}@sha256:{'ab' * 32}"
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission", pinned_image=pinned)
    url = inbox(aws)
    with _publish_refused(aws, []):
        finalize_on(env)
    again = finalize_on(env, actor="bob")
    assert again.outcome == "already_finalized" and again.notification_id, again
    late = notice(aws, url, f"Finalized (late): {aws.targets.stable_service}")
    assert f"runs {repository}:2.0.0 (pinned as {pinned}) ({release}) and carries 100%" in late, late


def test_a_late_notice_sent_but_not_recorded_says_when_a_finalize_sends_it_again(aws, caplog):
    """Its ``notified`` entry refused, the run said "the next finalize run sends it again": a
    finalize reads the service's newest rollout only, so once another rollout starts none does."""
    import logging

    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    with _publish_refused(aws, []):
        finalize_on(env)
    table = f"arn:aws:dynamodb:{aws.targets.region}:123456789012:table/{aws.targets.rollouts_table}"
    with caplog.at_level(logging.ERROR), on_operation(
            aws.get_client("dynamodb"), "before-parameter-build",
            refusing("AccessDeniedException", "dynamodb:UpdateItem", table, []), operation="UpdateItem"):
        again = finalize_on(env, actor="bob")
    assert again.notification_id, again
    rollout = env.ledger.get(aws.targets.canary_service).rollout_id
    said = [r.getMessage() for r in caplog.records if "late notice was sent" in r.getMessage()]
    assert len(said) == 1 and "dynamodb:UpdateItem" in said[0], said
    # The statement granting it, as the ledger's other failures say it, not botocore's long form.
    assert "DynamoDB UpdateItem failed: " in said[0] and "An error occurred" not in said[0], said
    assert said[0].endswith(f"a finalize run sends it again while {rollout} is the service's newest rollout; once "
                            "another starts, none does"), said


def test_a_refusal_finalize_could_not_record_is_logged_in_the_short_form_other_messages_use(aws, caplog):
    """Its "could not record" lines quoted botocore's long form ("ClientError: An error occurred
    (ThrottlingException) when calling the UpdateItem operation: Rate exceeded") where the
    ledger's other failures say "DynamoDB UpdateItem failed with ThrottlingException: ..."."""
    import logging

    from tests.flows.test_finalize import failing

    env, _, _ = promote_by_hand(aws, "start", "promote", "decommission")
    unfail = failing(aws.get_client("dynamodb"), "UpdateItem", when=lambda params: NOTICE_FAILED in str(params))
    try:
        with caplog.at_level(logging.ERROR), _publish_refused(aws, []):
            result = finalize_on(env)
    finally:
        unfail()
    assert result.notice_refused, result
    said = [r.getMessage() for r in caplog.records if "finalize: could not record" in r.getMessage()]
    assert len(said) == 1, said
    assert "that its notice was not sent (DynamoDB UpdateItem failed with ThrottlingException: Rate exceeded)" in \
        said[0], said
    assert "An error occurred" not in said[0], said


def _notice_failed_unrecorded(aws):
    """Fail the ledger's write of the ``notice-failed`` entry (as DynamoDB does when throttled)."""
    from tests.flows.test_finalize import failing

    return failing(aws.get_client("dynamodb"), "UpdateItem", when=lambda params: NOTICE_FAILED in str(params))


def test_a_refusal_the_ledger_could_not_record_is_not_said_to_be_sent_late_by_a_run_again(aws):
    """Its ``notice-failed`` refused, nothing records the notice owed: the run's error said "Running
    finalize again sends it late", and a run again found the rollout finalized and sent nothing."""
    from rollway.finalize import finalized_said

    env, _, _ = promote_by_hand(aws, "start", "promote", "decommission")
    unfail = _notice_failed_unrecorded(aws)
    try:
        with _publish_refused(aws, []):
            result = finalize_on(env)
    finally:
        unfail()
    t = aws.targets
    said = " ".join(finalized_said(result, t).split())
    assert 'but the "Finalized" notice was NOT sent, nobody was told' in said, said
    assert "Running finalize again sends it" not in said, said
    assert (f"Tell the subscribers of {t.alert_topic} yourself: the ledger's write recording it owed failed "
            "(DynamoDB UpdateItem failed with ThrottlingException: Rate exceeded), so a finalize run again may send "
            "nothing" in said), said
    # As said: a run again finds the rollout finalized, owing nothing (the write was refused), and sends nothing.
    again = finalize_on(env, actor="bob")
    assert again.outcome == "already_finalized" and again.notification_id is None and again.notice_refused is None


def test_a_lost_answer_the_ledger_could_not_record_is_not_said_to_be_sent_late_by_a_run_again(aws):
    from rollway.finalize import finalized_said
    from tests.flows.test_finalize_notice_answer_lost import NOT_KNOWN, _finalized_answer_lost

    env, _, _ = promote_by_hand(aws, "start", "promote", "decommission")
    unfail = _notice_failed_unrecorded(aws)
    try:
        with _finalized_answer_lost(aws):
            result = finalize_on(env)
    finally:
        unfail()
    t = aws.targets
    said = " ".join(finalized_said(result, t).split())
    assert f"; but {NOT_KNOWN}: " in said and "Running finalize again sends it" not in said, said
    assert (f"Check the topic's delivery logs, or tell its subscribers yourself ({t.alert_topic}): the ledger's write "
            "recording it owed failed (DynamoDB UpdateItem failed with ThrottlingException: Rate exceeded), so a "
            "finalize run again may send nothing" in said), said
    again = finalize_on(env, actor="bob")
    assert again.outcome == "already_finalized" and again.notification_id is None and again.notice_refused is None
