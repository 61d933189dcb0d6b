"""A "Rollout starting" notice whose SNS answer was lost (tasks/metrics.py ``notify_or_repeat``).

The notify task no longer sends again a publish whose answer was lost (SNS may have delivered
it): the canary run then stopped before any write, refusing a rollout for one notice's lost
answer. It sends it once more, said to maybe repeat the one before; lost or refused again, the
run stops before any write as before.
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from flows.canary import RolloutRefused
from rollway.aws.errors import AnswerLost
from rollway.fakes import FakeNotifier
from tests.flows.fake_env import fake_environment
from tests.flows.test_canary_fakes import canary_on, spec


class LosesAnswers(FakeNotifier):
    """Delivers every publish; the answers to the first ``lost`` are lost (as the SNS notifier
    says it: AnswerLost), then ``then`` (an error) answers the next, if given."""

    def __init__(self, lost: int, then: Exception | None = None) -> None:
        super().__init__()
        self.lost, self.then, self.tries = lost, then, 0

    def notify(self, subject: str, message: str) -> str:
        self.tries += 1
        if self.tries <= self.lost:
            super().notify(subject, message)
            raise AnswerLost("SNS Publish", ReadTimeoutError(endpoint_url="https://sns.example"))
        if self.tries == self.lost + 1 and self.then is not None:
            raise self.then
        return super().notify(subject, message)


def test_a_starting_notice_whose_answer_was_lost_is_sent_once_more_saying_it_may_repeat():
    env = fake_environment(canary_error_rate=0.0)
    env.notifier = LosesAnswers(lost=1)
    result = canary_on(env, spec(5, 100))
    assert result.outcome == "promoted", result.reason
    (first, _), (again, body) = env.notifier.messages[:2]
    assert first == f"Rollout starting: {env.targets.canary_service}", first
    assert again == f"May repeat: Rollout starting: {env.targets.canary_service}", again
    assert body.startswith("This may repeat a notice sent just before it, whose answer SNS did not give"), body


@pytest.mark.parametrize("then", [None, ClientError({"Error": {"Code": "AuthorizationError", "Message": "no"}},
                                                    "Publish")])
def test_a_starting_notice_lost_then_lost_or_refused_again_stops_before_any_write(then):
    env = fake_environment(canary_error_rate=0.0)
    env.notifier = LosesAnswers(lost=1 if then is not None else 2, then=then)
    with pytest.raises(RolloutRefused, match="refused before any write: SNS Publish sent, and its answer lost "
                                             ".*AWS may have acted on it") as refused:
        canary_on(env, spec(5, 100))
    assert not [c for c in env.deployer.calls if not c.startswith(("describe", "image_of"))], env.deployer.calls
    assert env.router.weights.canary == 0, refused.value
    assert env.notifier.tries == 2
