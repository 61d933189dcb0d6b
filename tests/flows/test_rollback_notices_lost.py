"""The rollback's notices other than its own page, whose SNS answers were lost (flows/rollback.py).

The notify task no longer sends again a publish whose answer was lost: these notices are sent once
more, saying they may repeat the one before (``notify_or_repeat``); lost twice, their log line and
step said "could not send", "could NOT be sent", of notices SNS may have delivered.
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ReadTimeoutError
from prefect import flow

from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.botocore_events import on_operation
from tests.flows.moto_env import inbox
from tests.flows.test_notify_retries import _delivered
from tests.flows.test_rollout_denied import OWN, at_5_percent


def answers_lost(aws, lost: int = 99):
    """SNS takes the first ``lost`` publishes (moto delivers them) and their answers are lost."""
    made: list[int] = []

    def lose(**_):
        made.append(1)
        if len(made) <= lost:
            raise ReadTimeoutError(endpoint_url=aws.endpoint_url)
    return on_operation(aws.get_client("sns"), "after-call", lose, operation="Publish")


def logged_once(caplog, start: str) -> str:
    (said,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith(start)]
    return said


def quiet_rollback_then(aws, then, lost: int = 99):
    """A rollback paging nobody, then ``then(env, result)``, as a flow while SNS loses the answers
    to the first ``lost`` publishes: what ``then`` returned, and what SNS delivered."""
    from flows.rollback import execute_rollback

    env, url = at_5_percent(aws), inbox(aws)

    @flow
    def rolled_back():
        return then(env, execute_rollback(env, "error rate 9% over 1%", notify=False))

    with answers_lost(aws, lost):
        returned = rolled_back()
    return returned, _delivered(aws, url)


def _put_back(env, result):
    from flows.rollback import tell_put_back

    return tell_put_back(env, "shift overtaken", Weights.canary_at(5), result, rollout=None)


@pytest.mark.parametrize("targets", [OWN])
def test_a_follow_up_whose_answers_were_lost_says_it_may_have_gone_out(aws, caplog):
    result, delivered = quiet_rollback_then(aws, _put_back)
    assert len(delivered) == 2 and delivered[1].startswith("This may repeat a notice sent just before it"), delivered
    step = result.steps[-1]
    assert step.startswith("the follow-up notice that 5% had reached the canary again may have gone out or not "
                           "(SNS Publish sent, and its answer lost"), step
    said = logged_once(caplog, "the follow-up notice that the traffic was put back may have gone out or not: ")
    assert "could not" not in said, said


@pytest.mark.parametrize("targets", [OWN])
def test_a_follow_up_whose_first_answer_was_lost_is_sent_once_more_saying_it_may_repeat(aws):
    result, delivered = quiet_rollback_then(aws, _put_back, lost=1)
    assert result.steps[-1].startswith("followed up: 5% had reached the canary again after the rollback (message "), result.steps
    assert len(delivered) == 2 and delivered[1].startswith("This may repeat a notice sent just before it"), delivered


@pytest.mark.parametrize("targets", [OWN])
def test_a_rollback_not_recorded_whose_notices_answers_were_lost_says_it_may_have_gone_out(aws, caplog):
    from flows.rollback import unrecorded

    _, delivered = quiet_rollback_then(
        aws, lambda env, result: unrecorded(env, result, "the rollback's end (a write the ledger lost)",
                                            rollout_id=None, phase=RolloutPhase.ROLLING_BACK, tell=True))
    assert len(delivered) == 2, delivered
    said = logged_once(caplog, "the notice that the rollback is not recorded may have gone out or not: ")
    assert "SNS Publish sent, and its answer lost" in said, said


@pytest.mark.parametrize("targets", [OWN])
def test_a_failed_rollback_whose_pages_answers_were_lost_says_it_may_have_paged_people(aws, caplog):
    from tests.flows.test_rollout_denied_more import rolling_back_unmoved

    url = inbox(aws)
    rolling_back_unmoved(aws, answers_lost(aws))
    assert len(_delivered(aws, url)) == 2
    said = logged_once(caplog, "the page that the rollback failed may have gone out or not: ")
    assert "SNS Publish sent, and its answer lost" in said, said
