"""A pause whose notice SNS refused, and whose refusal the ledger then could not record: the run's
log says DynamoDB's refusal as the ledger's other failures say it. On the embedded AWS."""

from __future__ import annotations

import logging

from prefect import flow

from flows.journal import LedgerJournal
from rollway.aws.environment import aws_environment
from rollway.clock import ClockSettings
from rollway.decide import Pause
from rollway.ledger import RolloutRecord, new_rollout_id
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.test_finalize import failing
from tests.flows.test_finalize_notice_refused import _publish_refused


def _asking(aws):
    """A flow asking a pause of a rollout the ledger records (run-A's), returning the notice's refusal."""
    t = aws.targets
    env = aws_environment(aws.get_client, t, ClockSettings().build())
    spec = RolloutSpec(image=f"{aws.topology.repository_uri}:2.0.0", stages=[Stage(weight=5), Stage(weight=100)])
    now = env.clock.now()
    record = env.ledger.create(RolloutRecord(
        service=t.canary_service, rollout_id=new_rollout_id(now), image=spec.image, spec_json=spec.model_dump_json(),
        phase=RolloutPhase.PROGRESSING), owner="run-A", now=now, lease_seconds=600, wall=env.wall())
    journal = LedgerJournal(env, spec, owner="run-A", lease_seconds=600, actor="alice", rollout_id=record.rollout_id)

    @flow
    def ask():
        return journal.asking(Pause(reason="approve 100%?", cause="approval", stage_index=1))
    return ask


def test_a_pause_notice_refusal_the_ledger_could_not_record_is_logged_in_the_short_form(aws, caplog):
    """The line quoted botocore's long form ("An error occurred (ThrottlingException) when calling
    the UpdateItem operation: Rate exceeded") where finalize's and the ledger's other failures say
    "DynamoDB UpdateItem failed with ThrottlingException: Rate exceeded"."""
    ask = _asking(aws)
    # Only the write recording SNS's refusal fails, as a throttled one does past botocore's retries.
    unfail = failing(aws.get_client("dynamodb"), "UpdateItem", when=lambda params: "sns:Publish" in str(params))
    try:
        with _publish_refused(aws, []), caplog.at_level(logging.ERROR):
            refused = ask()
    finally:
        unfail()
    assert refused is not None and "sns:Publish" in refused.said and not refused.lost, refused
    said = [r.getMessage() for r in caplog.records if "could not record on the rollout that the pause's notice" in
            r.getMessage()]
    assert len(said) == 1, said
    assert said[0].endswith("was not sent (DynamoDB UpdateItem failed with ThrottlingException: Rate exceeded)"), said


def test_a_pause_notice_whose_answer_was_lost_the_ledger_could_not_record_is_logged_as_maybe_sent(aws, caplog):
    """SNS took the notice and its answer was lost: the line said the notice "was not sent"."""
    from tests.flows.test_rollback_notices_lost import answers_lost

    ask = _asking(aws)
    unfail = failing(aws.get_client("dynamodb"), "UpdateItem", when=lambda params: "AnswerLost" in str(params))
    try:
        with answers_lost(aws), caplog.at_level(logging.ERROR):
            refused = ask()
    finally:
        unfail()
    assert refused is not None and refused.lost, refused
    (said,) = [r.getMessage() for r in caplog.records if "could not record on the rollout that the pause's notice" in
               r.getMessage()]
    assert said.endswith("may have gone out or not (DynamoDB UpdateItem failed with ThrottlingException: Rate "
                         "exceeded)"), said


def test_a_pause_notice_whose_answer_was_lost_is_recorded_as_lost_not_refused(aws):
    """Recorded on the open pause as a lost answer, read back from DynamoDB so: status and the
    report say the notice may have gone out, not that it was NOT sent."""
    from tests.flows.test_rollback_notices_lost import answers_lost

    ask = _asking(aws)
    with answers_lost(aws):
        refused = ask()
    asked = aws_environment(aws.get_client, aws.targets, ClockSettings().build()).ledger.get(
        aws.targets.canary_service).open_pause
    assert asked is not None and asked.notice_lost, asked
    assert asked.notice_refused == refused.said and asked.notice_refused.startswith("AnswerLost: "), asked
