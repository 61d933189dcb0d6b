"""A rollback's move to stable (``flows.engine.set_and_verify`` with ``tries``) whose later send
fails after an earlier one that may have landed: what the error, the run's log and the page say.

The load balancer is a scripted fake: each ModifyRule is taken, taken with its answer lost, or
refused, and its reads fail as a test says, so each path is reached in a second.
"""
from __future__ import annotations

import logging
from typing import Callable

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, CredentialRetrievalError, ReadTimeoutError

import flows.engine
import flows.rollback
import tasks.traffic
from rollway.aws.errors import TargetNotFound
from rollway.deadline import ReadBackUnanswered
from rollway.fakes import FakeRouter
from rollway.model import Weights
from tests.flows.fake_env import fake_environment
from tests.flows.test_rollback_move_not_read_back import VERIFY_SECONDS, rollback_on

ENDPOINT = "https://elasticloadbalancing.eu-west-1.amazonaws.com/"
ON_CANARY, ALL_STABLE = Weights.canary_at(25), Weights(stable=100, canary=0)
RULE = "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener-rule/app/edit/1/2/3"

TAKEN, LOST = "taken", "lost"  # a ModifyRule the load balancer takes; one it takes whose answer is lost


def throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, operation)


def dropped() -> ConnectionClosedError:
    return ConnectionClosedError(endpoint_url=ENDPOINT)


class Scripted(FakeRouter):
    """A load balancer whose n-th ModifyRule does what ``sends[n]`` says (``TAKEN``, ``LOST``, or a
    callable that raises, moving nothing), and whose reads of the weights after the n-th fail with
    what ``reads(n)`` gives (None: read as the fake holds them)."""

    def __init__(self, sends: list, reads: Callable[[int], BaseException | None]) -> None:
        super().__init__(ON_CANARY)
        self.sends, self.reads, self.sent = sends, reads, 0

    def set_weights(self, weights: Weights) -> Weights:
        how = self.sends[self.sent]
        self.sent += 1
        if how in (TAKEN, LOST):
            held = super().set_weights(weights)
            if how == LOST:
                raise ReadTimeoutError(endpoint_url=ENDPOINT)
            return held
        how(self)
        raise AssertionError("a scripted send that fails raises")

    def get_weights(self) -> Weights:
        failure = self.reads(self.sent)
        if failure is not None:
            raise failure
        return super().get_weights()


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    """No waits between sends or between a failed read and the next: what is sent and said is tested."""
    monkeypatch.setattr(flows.engine, "WRITE_RETRY_FIRST_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(flows.engine, "LOST_ANSWER_READ_BACK_SECONDS", 0.3)
    monkeypatch.setattr(tasks.traffic, "LOOK_AGAIN_SECONDS", 0.01)
    monkeypatch.setattr(flows.rollback, "DEFAULT_VERIFY_SECONDS", VERIFY_SECONDS)


def failed_rollback(router: FakeRouter, raises: type[BaseException], caplog) -> tuple[BaseException, str]:
    """The error of the rollback on a fake environment whose load balancer is ``router``, and its
    page on one line."""
    env = fake_environment()
    env.router = router
    with caplog.at_level(logging.INFO), pytest.raises(raises) as failed:
        rollback_on(env)
    (_, page), = env.notifier.messages
    return failed.value, " ".join(page.split())


def paged_as_taken_not_read_back(err: BaseException, page: str, went: str) -> None:
    """``err`` and the ``page`` (on one line) of a rollback whose move the load balancer took and did
    not read back, its read-back having ``went`` so ("was refused", "failed"): not paged as a move that
    "could NOT be moved back", nor as one never sent."""
    assert f"the load balancer took the weights 100/0, but their read-back {went}" in str(err), err
    assert "could NOT be moved back" not in page and "Done before it failed: nothing" not in page, page
    assert "The traffic may NOT be back on webordinary-edit-service" in page, page
    assert ("sent the move of all the traffic to webordinary-edit-service (the load balancer took it; not read back)"
            in page), page
    assert (f"The load balancer took the move to webordinary-edit-service, but its read-back {went}: the traffic may be "
            "on webordinary-edit-service already, or not.") in page, page


def lost_then(later, reads_after_the_later: Callable[[], BaseException | None] = lambda: None) -> Scripted:
    """The first ModifyRule lands with its answer lost, and its read-back's connection drops to the
    last look (it may have landed); the second does what ``later`` says, and the reads after it fail
    with ``reads_after_the_later()``."""
    return Scripted([LOST, later, later], lambda sent: dropped() if sent == 1 else reads_after_the_later())


def test_a_move_taken_whose_read_back_finds_the_rule_gone_after_a_lost_answer_says_the_move_may_have_landed(caplog):
    """The first send lands with its answer lost and its read-back unanswered; the second is taken, and
    its read-back finds the rule deleted. The read-back's own error escaped the move, the earlier send
    forgotten: the page said the traffic "could NOT be moved back" and "Done before it failed: nothing"
    of a move sent twice, taken the second time. It says the traffic may be on stable, the move taken
    and not read back, and what to put right."""
    gone = TargetNotFound("listener rule", RULE, "it was deleted since this run looked it up")
    err, page = failed_rollback(lost_then(TAKEN, lambda: gone), ReadBackUnanswered, caplog)
    said = " ".join(str(err).split())
    assert "the answer to the move was lost (Read timeout" in said, said
    assert f"sent again, the move was taken but could not be read back: listener rule '{RULE}' not found" in said, said
    assert "could NOT be moved back" not in page and "Done before it failed: nothing" not in page, page
    assert "The traffic may NOT be back on webordinary-edit-service" in page, page
    assert ("the move sent again was taken but could not be read back: the traffic may be on webordinary-edit-service "
            "already, or not") in page, page
    assert "(its answer lost, then taken when sent again; not read back)" in page, page


def test_a_move_taken_whose_read_back_is_refused_for_good_after_a_lost_answer_does_not_say_it_was_refused(caplog):
    """As above, the second send's read-back refused (AccessDenied on DescribeRules): raised as a
    RefusedAfterLostAnswer saying "sent again, the weights were refused", and paged "the move sent
    again was refused", of a move the load balancer took."""
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "DescribeRules")
    err, page = failed_rollback(lost_then(TAKEN, lambda: denied), ReadBackUnanswered, caplog)
    said = " ".join(str(err).split())
    assert "the move was refused" not in said and "sent again, the move was taken but could not be read back" in said
    assert "DescribeRules" in said, said
    assert "the move sent again was refused" not in page, page
    assert "the move sent again was taken but could not be read back" in page, page
    refused = flows.engine.RefusedAfterLostAnswer(ReadTimeoutError(endpoint_url=ENDPOINT), denied, taken=True)
    assert "the weights were refused" not in str(refused), refused
    assert "sent again, the weights were taken but could not be read back: " in str(refused), refused


def test_a_bug_failing_a_later_send_after_a_lost_answer_keeps_its_own_traceback(caplog):
    """A bug (not AWS's error, nor rollway's refusal) failing the second send after one that may have
    landed was one log line beside the earlier send's error: its own traceback was lost. It is logged
    with it, and the move is still failed on the send that may have landed."""
    def bug(router):
        raise RuntimeError("a bug in the second send")

    err, page = failed_rollback(lost_then(bug), ReadBackUnanswered, caplog)
    assert "the answer to the move was lost" in str(err), err
    logged = [r for r in caplog.records if "a bug in the second send" in r.getMessage()
              and "may have landed" in r.getMessage()]
    assert logged and logged[0].exc_info is not None, [r.getMessage() for r in caplog.records]
    assert isinstance(logged[0].exc_info[1], RuntimeError), logged[0].exc_info
    assert "The traffic may NOT be back on webordinary-edit-service" in page, page


def test_a_move_the_load_balancer_took_then_moved_since_is_not_said_not_to_have_landed(caplog):
    """The first send is taken and its check read throttled to the last look; the second's answer is
    lost, and its read-back shows 75/25: someone moved the traffic since (or the load balancer does not
    show the move yet). The warning said the earlier try, which the load balancer took, "did not land";
    it says what is known. The last send is throttled, and the page says the split the load balancer holds."""
    def moved_by_someone_and_lost(router):
        router.weights = ON_CANARY
        raise ReadTimeoutError(endpoint_url=ENDPOINT)

    def refused(router):
        raise throttled("ModifyRule")

    router = Scripted([TAKEN, moved_by_someone_and_lost, refused],
                      lambda sent: throttled("DescribeRules") if sent == 1 else None)
    err, page = failed_rollback(router, ClientError, caplog)
    assert "Throttling" in str(err) and router.sent == 3, err
    said = " ".join(caplog.text.split())
    assert ("try 2 of 3 read the weights back as 75/25, not 100/0: the earlier try that the load balancer took is not "
            "what it holds now (moved since, or not shown yet), so it is not the one failed on") in said, caplog.text
    assert "took did not land" not in said, caplog.text
    assert "The traffic could NOT be moved back to webordinary-edit-service: the load balancer holds 75/25" in page, page


def test_a_move_taken_whose_check_reads_fail_on_aws_side_is_not_said_refused_for_now(caplog):
    """Each send is taken, and every read of the weights after it fails on the load balancer's own side
    (InternalFailure, a 500): the error and the page said it "refused the read for now", as of a throttle."""
    internal = ClientError({"Error": {"Code": "InternalFailure", "Message": "An internal error occurred"},
                            "ResponseMetadata": {"HTTPStatusCode": 500}}, "DescribeRules")
    router = Scripted([TAKEN] * 3, lambda sent: internal if sent else None)
    err, page = failed_rollback(router, ReadBackUnanswered, caplog)
    said = " ".join(str(err).split())
    assert "refused" not in said and "refused" not in page, page
    assert ("Elastic Load Balancing failed the read with an error on its own side (InternalFailure: An internal error "
            "occurred)") in said, said
    assert ("The load balancer took the move to webordinary-edit-service but failed the read-back of its weights with "
            "an error on its own side: the traffic may be on webordinary-edit-service already, or not") in page, page


def test_a_rollbacks_lost_answers_are_said_of_its_move_back_not_of_a_shift(caplog):
    """A lost answer's read-back named a rollback's move "the shift" in the run's log: "the shift to
    100/0 is not known to have landed", "the shift did not land"."""
    def moved_by_someone_and_lost(router):
        router.weights = ON_CANARY
        raise ReadTimeoutError(endpoint_url=ENDPOINT)

    def refused(router):
        raise throttled("ModifyRule")

    router = Scripted([LOST, moved_by_someone_and_lost, refused], lambda sent: dropped() if sent == 1 else None)
    failed_rollback(router, ClientError, caplog)
    said = " ".join(caplog.text.split())
    assert "the shift" not in said, caplog.text
    assert "; the rollback's move back to 100/0 is not known to have landed" in said, caplog.text
    assert "the weights did not become 100/0 after the lost answer: the rollback's move back did not land" in said


def test_a_move_that_shows_after_its_read_back_gave_up_is_not_paged_as_not_moved_back(monkeypatch, caplog):
    """The read-back gave up with the weights not yet shown (WeightMismatch), and the page's own read,
    made after it, shows all the traffic on stable: the page said the traffic "could NOT be moved back"
    beside "the load balancer holds 100/0". It says what its read shows, and that the rollback did not finish."""
    from rollway.aws.errors import WeightMismatch

    def shown_too_late(env, target, timeout_seconds, **kwargs):
        env.router.set_weights(target)
        raise WeightMismatch(expected=target, actual=ON_CANARY, seconds=timeout_seconds)

    monkeypatch.setattr(flows.rollback, "set_and_verify", shown_too_late)
    err, page = failed_rollback(FakeRouter(ON_CANARY), WeightMismatch, caplog)
    assert "could NOT be moved back" not in page, page
    assert ("All the traffic is on webordinary-edit-service as far as the load balancer shows now: the load balancer "
            "holds 100/0 (stable/canary), read back after the failure. The rollback did not finish. It failed: the "
            "load balancer held weights 75/25") in page, page
    assert "The move has shown since: run the rollback again" in page, page


class NotShown(FakeRouter):
    """A load balancer that takes each ModifyRule and goes on showing the weights it held before."""

    def set_weights(self, weights: Weights) -> Weights:
        return self.get_weights()


def test_a_move_taken_whose_read_back_shows_other_weights_is_paged_as_sent(caplog):
    """The load balancer took the move (its ModifyRule answered) and its read-back showed 75/25 to the
    bound: the page said "Done before it failed: nothing" of a move sent and taken. It names the move
    sent, and what its read-back showed."""
    err, page = failed_rollback(NotShown(ON_CANARY), flows.rollback.WeightMismatch, caplog)
    assert "Done before it failed: nothing" not in page, page
    assert ("Done before it failed: sent the move of all the traffic to webordinary-edit-service (the load balancer "
            "took it; its read-back showed 75/25).") in page, page


def refused_for_good(refusal: str) -> BaseException:
    """A read-back's refusal for good: the rule deleted in between ("gone"), DescribeRules denied
    ("denied"), or a request the load balancer refuses every time ("invalid", a ValidationError)."""
    if refusal == "gone":
        return TargetNotFound("listener rule", RULE, "it was deleted since this run looked it up")
    code, said = {"denied": ("AccessDenied", "not authorized"), "invalid": ("ValidationError", "the rule ARN is not "
                                                                           "valid")}[refusal]
    return ClientError({"Error": {"Code": code, "Message": said}}, "DescribeRules")


# What the page says to put right before the rollback is run again, for each ``refused_for_good``.
FIX_FIRST = {"gone": "once what the error above says of the listener rule is put right",
             "denied": "once the permission the error above names is granted",
             "invalid": "once what the refusal above says is put right"}


@pytest.mark.parametrize("refusal", ["gone", "denied", "invalid"])
def test_a_first_move_taken_whose_read_back_is_refused_for_good_is_not_paged_as_not_moved_back(caplog, refusal):
    """The first send is taken, and its read-back is refused for good (the rule deleted in between, or
    DescribeRules denied), no earlier send in doubt: the read's own error was raised, and the page said
    the traffic "could NOT be moved back" and "Done before it failed: nothing" of a move the load
    balancer took. It says the move was taken and not read back, and what to put right first."""
    # "invalid": a request the load balancer refuses (ValidationError), every time: it was said "refused
    # the read for now", as of a throttle, and the move sent again.
    failure = refused_for_good(refusal)
    router = Scripted([TAKEN] * 3, lambda sent: failure if sent else None)
    err, page = failed_rollback(router, Exception, caplog)
    assert router.sent == 1, router.sent
    paged_as_taken_not_read_back(err, page, "was refused")
    assert FIX_FIRST[refusal] in page, page


def not_renewed() -> CredentialRetrievalError:
    """A read that fails before it reaches AWS: the credentials could not be renewed for it."""
    return CredentialRetrievalError(provider="assume-role", error_msg="the source profile could not be read")


def test_a_move_taken_whose_read_back_fails_before_reaching_aws_is_not_logged_as_a_failed_setting(caplog):
    """The load balancer takes the first send, and its read-back fails before it reaches AWS (the
    credentials could not be renewed for the read): the move is sent again, and the log said setting the
    weights "failed", of a ModifyRule the load balancer took. It says the send was taken, and its
    read-back failed."""
    env = fake_environment()
    env.router = Scripted([TAKEN] * 3, lambda sent: not_renewed() if sent == 1 else None)
    with caplog.at_level(logging.INFO):
        rollback_on(env)
    assert env.router.sent == 2 and env.router.get_weights() == ALL_STABLE, env.router.sent
    resent = [r.getMessage() for r in caplog.records if "sending it again" in r.getMessage()]
    assert resent, caplog.text
    assert all("was taken, but its read-back failed (" in m and " failed (" not in m.split("taken")[0]
               for m in resent), resent


def test_a_move_taken_whose_read_backs_fail_before_reaching_aws_is_not_said_refused(caplog):
    """Each send is taken, and each read-back after it fails before it reaches AWS (the credentials could
    not be renewed for the read): the error and the page said the read-back "was refused", and to run the
    rollback again once "the refusal" is put right, "until then AWS refuses the move's read-back the same
    way", of reads AWS never saw. They say it failed, and to put right what its error says."""
    err, page = failed_rollback(Scripted([TAKEN] * 3, lambda sent: not_renewed() if sent else None),
                                flows.engine.TakenNotReadBack, caplog)
    assert "refused" not in str(err) and "refused" not in page, page
    paged_as_taken_not_read_back(err, page, "failed")
    assert ("the load balancer took the weights 100/0, but their read-back failed: Error when retrieving credentials "
            "from assume-role: the source profile could not be read") in str(err), err
    assert "once what the error above says is put right. `rollway status` shows" in page, page


@pytest.mark.parametrize("later", ["throttled", "not renewed"])
def test_a_move_taken_whose_read_back_failed_before_reaching_aws_is_paged_as_sent_when_the_sends_after_it_fail(
        caplog, later):
    """The first send is taken, and its read-back fails before it reaches AWS (the credentials could not be
    renewed for the read); each send after it fails (throttled, the credentials still not renewed, or
    ModifyRule denied). The taken send was forgotten: the last send's error was raised, and the page said
    the traffic "could NOT be moved back" and "Done before it failed: nothing" of a move the load balancer
    took. It says the move was taken and not read back, and the log names the later failure."""
    def fails(router):
        if later == "throttled":
            raise throttled("ModifyRule")
        raise not_renewed()

    router = Scripted([TAKEN, fails, fails], lambda sent: not_renewed() if sent else None)
    err, page = failed_rollback(router, flows.engine.TakenNotReadBack, caplog)
    assert router.sent == 3, router.sent
    paged_as_taken_not_read_back(err, page, "failed")
    assert str(err).startswith("the load balancer took the weights 100/0, but their read-back failed: Error when "
                               "retrieving credentials"), err
    said = " ".join(caplog.text.split())
    assert (f"setting the weights to 100/0 failed on try {router.sent} of 3 (") in said, caplog.text
    assert ("an earlier try that the load balancer took was not read back, so it may have landed: failing on that one "
            "(the load balancer took the weights 100/0, but their read-back failed") in said, caplog.text


@pytest.mark.parametrize("first", [TAKEN, LOST])
@pytest.mark.parametrize("refusal", ["gone", "denied", "invalid"])
def test_a_move_sent_again_refused_for_good_after_one_not_read_back_is_named_on_the_page(caplog, refusal, first):
    """The first send is taken (or its answer lost), and its read-back fails before it reaches AWS (the
    credentials could not be renewed for the read); the send after it is refused for good (the rule
    deleted, ModifyRule denied, a request the load balancer holds invalid). The page said to run the
    rollback again "once what the error above says is put right", the credentials' error, and named the
    refusal nowhere: put right, the next run failed the same way on it. The page names the refusal and
    what to put right for it, and the move is still said to be one that may have landed."""
    failure = refused_for_good(refusal)

    def refused(router):
        raise failure

    router = Scripted([first, refused, refused], lambda sent: not_renewed() if sent == 1 else None)
    err, page = failed_rollback(router, flows.engine.TakenNotReadBack, caplog)
    assert router.sent == 2, router.sent  # refused for good: not sent a third time
    assert "could NOT be moved back" not in page and "Done before it failed: nothing" not in page, page
    assert err.again is not None and f"; sent again, the move was refused: {err.again}" in str(err), err
    sent = ("The load balancer took the move to webordinary-edit-service, but" if first == TAKEN
            else "The answer to the move to webordinary-edit-service was lost, and")
    assert (f"{sent} its read-back failed, and the move sent again was refused: the traffic may be on "
            "webordinary-edit-service already, or not.") in page, page
    assert FIX_FIRST[refusal] in page, page


@pytest.mark.parametrize("refusal", ["gone", "denied", "invalid"])
def test_a_move_whose_answer_was_lost_and_whose_read_back_is_refused_for_good_is_paged_as_one_that_may_have_landed(
        caplog, refusal):
    """The first send's answer is lost (it may have landed), and its read-back is refused for good (the
    rule deleted in between, DescribeRules denied, a request the load balancer holds invalid): the read's
    own error was raised, and the page said the traffic "could NOT be moved back" and "Done before it
    failed: nothing" of a move that may have landed. It says the move was sent, its answer lost, and not
    read back, and what to put right first."""
    failure = refused_for_good(refusal)
    router = Scripted([LOST] * 3, lambda sent: failure if sent else None)
    err, page = failed_rollback(router, Exception, caplog)
    assert router.sent == 1, router.sent  # refused for good: not sent again
    assert "could NOT be moved back" not in page and "Done before it failed: nothing" not in page, page
    assert ("The traffic may NOT be back on webordinary-edit-service: the move was sent and not read back. It failed: "
            "the answer to setting the weights 100/0 was lost (Read timeout on endpoint URL") in page, page
    assert "the load balancer took" not in page.lower(), page  # not known to have: its answer was lost
    assert "sent the move of all the traffic to webordinary-edit-service (its answer lost; not read back)" in page, page
    assert ("The answer to the move to webordinary-edit-service was lost, and its read-back was refused: the "
            "traffic may be on webordinary-edit-service already, or not.") in page, page
    assert isinstance(err, flows.engine.TakenNotReadBack) and err.lost is not None, err
    assert FIX_FIRST[refusal] in page, page


def test_a_move_whose_answer_was_lost_and_whose_read_back_failed_before_aws_is_paged_as_sent_after_later_sends_fail(
        caplog):
    """The first send's answer is lost, and its read-back fails before it reaches AWS (the credentials
    could not be renewed for the read); the sends after it are throttled. The first send was logged as a
    setting that "failed" and forgotten: the last throttle was raised, and the page said "Done before it
    failed: nothing" of a move that may have landed (and, the page's own read failing too, that the
    traffic "could NOT be moved back"). It says the move was sent, its answer lost, and not read back."""
    def refused(router):
        raise throttled("ModifyRule")

    router = Scripted([LOST, refused, refused], lambda sent: not_renewed() if sent == 1 else None)
    err, page = failed_rollback(router, flows.engine.TakenNotReadBack, caplog)
    assert router.sent == 3 and err.lost is not None, router.sent
    assert "could NOT be moved back" not in page and "Done before it failed: nothing" not in page, page
    assert "sent the move of all the traffic to webordinary-edit-service (its answer lost; not read back)" in page, page
    assert ("The answer to the move to webordinary-edit-service was lost, and its read-back failed: the traffic may be "
            "on webordinary-edit-service already, or not. Run the rollback again") in page, page
    said = " ".join(caplog.text.split())
    assert "setting the weights to 100/0 had its answer lost (Read timeout" in said, caplog.text
    assert ("an earlier try whose answer was lost was not read back, so it may have landed: failing on that one (the "
            "answer to setting the weights 100/0 was lost") in said, caplog.text


def test_a_move_sent_again_whose_answer_was_lost_too_and_whose_read_back_is_refused_is_not_said_refused(caplog):
    """The first send's answer is lost and its read-back unanswered; the second's answer is lost too, and
    its read-back is refused for good (DescribeRules denied). The error and the page said "sent again, the
    move was refused", of a move whose answer was lost and which may have landed: its read-back was refused."""
    router = Scripted([LOST] * 3, lambda sent: dropped() if sent == 1 else refused_for_good("denied"))
    err, page = failed_rollback(router, ReadBackUnanswered, caplog)
    assert router.sent == 2, router.sent
    said = " ".join(str(err).split())
    assert "the move was refused" not in said and "the move sent again was refused" not in page, page
    assert "sent again, its answer was lost too and the move could not be read back" in said, said
    assert "The traffic may NOT be back on webordinary-edit-service" in page, page
    assert ("the move sent again, its answer lost too, could not be read back: the traffic may be on "
            "webordinary-edit-service already, or not") in page, page
    assert "(its answer lost, and lost again when sent again; not read back)" in page, page
    assert FIX_FIRST["denied"] in page, page
