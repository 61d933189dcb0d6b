"""A rollback whose move the load balancer took and whose read-back it did not answer.

Its page and `rollway abort` said to run it again "once <stable> can take the traffic": stable was
never the trouble, and the traffic may be on it already. They say what is known instead: the move
was taken, not read back, and what to do once the load balancer answers.
"""
from __future__ import annotations

import pytest
from prefect import flow

import flows.rollback
from flows.rollback import execute_rollback
from rollway.deadline import ReadBackUnanswered
from rollway.model import Weights
from tests.flows.fake_env import fake_environment
from tests.flows.test_abort_failed_rollback import SilentAfterWrite

VERIFY_SECONDS = 1.0


@flow
def rollback_on(env):
    return execute_rollback(env, "error rate 7%", actor="judge", verify_timeout_seconds=VERIFY_SECONDS)


def paged(monkeypatch, env, raises: type[BaseException]) -> tuple[str, str]:
    """The page of the rollback on ``env`` (its router a ``SilentAfterWrite``) that failed with
    ``raises``: as sent, and on one line."""
    monkeypatch.setattr(flows.rollback, "DEFAULT_VERIFY_SECONDS", VERIFY_SECONDS)
    try:
        with pytest.raises(raises):
            rollback_on(env)
    finally:
        env.router.released.set()
    (_, page), = env.notifier.messages
    return page, " ".join(page.split())


def test_the_page_of_a_move_not_read_back_says_it_may_have_landed_and_to_run_again_once_the_load_balancer_answers(
        monkeypatch):
    env = fake_environment()
    env.router = SilentAfterWrite(Weights.canary_at(25))
    page, flat = paged(monkeypatch, env, ReadBackUnanswered)
    assert "can take the traffic" not in flat, page
    stable = env.targets.stable_service
    # Not "could NOT be moved back": the load balancer took the move.
    assert (f"The traffic may NOT be back on {stable}: the move was sent and not read back. It failed: the load "
            "balancer's weights could not be read back within 1 s (verify_timeout_seconds): Elastic Load Balancing did "
            "not answer" in flat), page
    assert (f"The load balancer took the move to {stable} but did not answer the read-back of its weights: the "
            f"traffic may be on {stable} already, or not. Run the rollback again" in flat), page
    assert ("once the load balancer answers (moving the traffic to stable again does no harm if it is there); "
            "`rollway status` shows the split it holds once it answers." in flat), page
    # Not "nothing": the move was sent, and taken.
    assert (f"Done before it failed: sent the move of all the traffic to {stable} (the load balancer took it; not read "
            "back)." in flat), page


class LostAfterWrite(SilentAfterWrite):
    """A load balancer that takes each write and loses its answer, then never answers a read."""

    def set_weights(self, weights: Weights) -> Weights:
        from botocore.exceptions import ReadTimeoutError

        super().set_weights(weights)
        raise ReadTimeoutError(endpoint_url="https://elasticloadbalancing.eu-west-1.amazonaws.com/")


def test_a_move_whose_answer_was_lost_and_not_read_back_is_paged_as_one_that_may_have_landed(monkeypatch):
    """Its lost answer not read back failed the move as the write's own error: paged as "could NOT be
    moved back", "Done before it failed: nothing", to run it again "once <stable> can take the traffic"."""
    import flows.engine

    env = fake_environment()
    env.router = LostAfterWrite(Weights.canary_at(25))
    monkeypatch.setattr(flows.rollback, "ROLLBACK_WRITE_TRIES", 2)
    monkeypatch.setattr(flows.engine, "WRITE_RETRY_FIRST_DELAY_SECONDS", 0.01)
    page, flat = paged(monkeypatch, env, ReadBackUnanswered)
    stable = env.targets.stable_service
    assert "can take the traffic" not in flat and "could NOT be moved back" not in flat, page
    assert (f"The traffic may NOT be back on {stable}: the move was sent and not read back. It failed: the answer to "
            "the move was lost (Read timeout on endpoint URL" in flat), page
    assert ("the load balancer's weights could not be read back within 1 s (verify_timeout_seconds): Elastic Load "
            "Balancing did not answer" in flat), page
    assert (f"Done before it failed: sent the move of all the traffic to {stable} (its answer lost; not read back)."
            in flat), page
    assert (f"The answer to the move to {stable} was lost and the load balancer did not answer the read-back of its "
            f"weights: the traffic may be on {stable} already, or not. Run the rollback again" in flat), page


class LostThenThrottled(SilentAfterWrite):
    """A load balancer that takes the first write and loses its answer, then never answers a read,
    and throttles each write after it."""

    def set_weights(self, weights: Weights) -> Weights:
        from botocore.exceptions import ClientError, ReadTimeoutError

        if self.written.is_set():
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "ModifyRule")
        super().set_weights(weights)
        raise ReadTimeoutError(endpoint_url="https://elasticloadbalancing.eu-west-1.amazonaws.com/")


def test_a_move_whose_first_try_may_have_landed_is_paged_as_such_when_the_tries_after_it_are_throttled(
        monkeypatch, caplog):
    """Only the last try's lost answer was taken for a move that may have landed: a first try lost
    and not read back, then two throttled, was paged "could NOT be moved back" and "Done before it
    failed: nothing"."""
    import logging

    import flows.engine

    env = fake_environment()
    env.router = LostThenThrottled(Weights.canary_at(25))
    monkeypatch.setattr(flows.rollback, "ROLLBACK_WRITE_TRIES", 3)
    monkeypatch.setattr(flows.engine, "WRITE_RETRY_FIRST_DELAY_SECONDS", 0.01)
    with caplog.at_level(logging.INFO):
        page, flat = paged(monkeypatch, env, ReadBackUnanswered)
    stable = env.targets.stable_service
    assert "could NOT be moved back" not in flat and "Done before it failed: nothing" not in flat, page
    assert (f"The traffic may NOT be back on {stable}: the move was sent and not read back. It failed: the answer to "
            "the move was lost (Read timeout on endpoint URL" in flat), page
    assert (f"Done before it failed: sent the move of all the traffic to {stable} (its answer lost; not read back)."
            in flat), page
    # The last try's refusal is not dropped: the run's log says it.
    said = [" ".join(r.getMessage().split()) for r in caplog.records]
    assert any("failed on try 3 of 3" in m and "Throttling" in m and "may have landed" in m for m in said), said
