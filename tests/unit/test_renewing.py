"""The thread that renews a hold (flows.renewing.Renewals), as a rollback's claim and a run's lease are.

The wall-clock looks of a run's lease are tested through LeaseKeeper (tests/unit/test_lease_keeper.py).
Most tests drive the renewals one look at a time (``tick``) on a clock of their own: no thread, no
real time. The thread's own tests wait on events and on its end, on a clock that makes every look due.
"""

from __future__ import annotations

import itertools
import logging
import threading

import pytest
from botocore.exceptions import ClientError

from flows.renewing import Renewals
from flows.rollback import ClaimKeeper
from rollway.fakes import FakeClock, FakeLedger
from rollway.ledger import CLAIM_SECONDS, LedgerError, RollbackClaimed, RolloutRecord, begin_rollback, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec
from tests.flows.fake_env import fake_environment


def renewals(renew, *, lease: float, clock, name: str = "test-renewals") -> tuple[Renewals, list, list]:
    lost, trouble = [], []
    return (Renewals(renew, lease=lease, clock=clock, look=None, lost=lost.append,
                     trouble=lambda err, after, left, failures: trouble.append((str(err), after, left)), name=name),
            lost, trouble)


def test_renewals_come_a_third_of_the_hold_apart_and_storage_trouble_is_tried_again_a_tenth_of_that_later():
    clock, tries = FakeClock(0.0), []

    def renew():
        tries.append(clock.now())
        if len(tries) == 2:
            raise ConnectionError("DynamoDB did not answer")

    keeper, lost, trouble = renewals(renew, lease=60.0, clock=clock.now)
    for _ in range(70):
        keeper.tick()
        clock.sleep(1.0)
    # A period to the first, a period to the second (which fails), 2 s to the third, a period on.
    assert tries == [20.0, 40.0, 42.0, 62.0], tries
    # Renewed at 20, the hold runs to 80: 40 s left at the failure.
    assert lost == [] and trouble == [("DynamoDB did not answer", 2.0, 40.0)]


def test_a_retry_is_never_put_off_past_the_holds_lapse():
    # A write that hung 39 s before it failed leaves the hold 1 s: the next try comes then, not in 2 s.
    clock, tries = FakeClock(0.0), []

    def renew():
        tries.append(clock.now())
        if len(tries) == 1:
            clock.sleep(39.0)
            raise ConnectionError("DynamoDB did not answer")

    keeper, _lost, trouble = renewals(renew, lease=60.0, clock=clock.now)
    clock.sleep(20.0)
    keeper.tick()
    assert trouble == [("DynamoDB did not answer", 1.0, 1.0)]
    clock.sleep(1.0)
    keeper.tick()
    assert tries == [20.0, 60.0]
    assert keeper.left() == 60.0  # renewed at 60: a claim's whole length again


# --- A rollback's claim through an outage of its ledger -------------------------------------

HOLDER = "judge (flow run fast-falcon, 1a2b...)"
CAROL = "carol (process 4242 on laptop)"


class OutageLedger(FakeLedger):
    """DynamoDB throttles every claim write before ``until`` (wall seconds), each after a second's wait."""

    def __init__(self, clock: FakeClock, until: float) -> None:
        super().__init__()
        self.clock, self.until = clock, until

    def claim_rollback(self, service, **kwargs):
        if self.clock.now() < self.until and kwargs.get("holder") == HOLDER:
            self.clock.sleep(1.0)
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                         "Message": "Rate of requests exceeds the allowed throughput."}}, "UpdateItem")
        return super().claim_rollback(service, **kwargs)


def a_claimed_rollback(outage: float):
    env = fake_environment()
    start = env.clock.now()
    env.ledger = OutageLedger(env.clock, until=start + outage)
    spec = RolloutSpec(image="webordinary/edit-container:2.0.0")
    record = RolloutRecord(service=env.targets.canary_service, rollout_id=new_rollout_id(start - 100),
                           image=spec.image, spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING,
                           stage_index=0, weights=Weights.canary_at(5))
    env.ledger.create(record, owner="run-1", now=start - 100, lease_seconds=600)
    begin_rollback(env.ledger, env.targets.canary_service, actor="judge", reason="errors over the threshold",
                   now=start, rollout=record.rollout_id, holder=HOLDER, lease_seconds=CLAIM_SECONDS)
    keeper = ClaimKeeper(env, HOLDER, record.rollout_id, clock=env.wall, log=logging.getLogger("test-claim"))
    return env, record, keeper


def test_a_rollbacks_claim_outlives_a_long_outage_of_its_ledger_and_no_other_rollback_takes_over(caplog):
    """Tried again only at the next renewal (20 s of 60), two failed writes let the claim lapse while
    the rollback still acted, and `rollway abort` took the rollback over mid-way: two rollbacks, two pages."""
    env, record, keeper = a_claimed_rollback(outage=55.0)
    start = env.clock.now()
    with caplog.at_level(logging.WARNING, logger="test-claim"):
        while env.clock.now() < start + CLAIM_SECONDS + 2:
            keeper._renewals.tick()  # the renewing thread's look, on the test's clock
            env.clock.sleep(0.5)
    with pytest.raises(RollbackClaimed, match="is being rolled back by judge"):
        env.ledger.claim_rollback(env.targets.canary_service, holder=CAROL, now=env.wall(),
                                  lease_seconds=CLAIM_SECONDS, rollout=record.rollout_id)
    assert env.ledger.get(env.targets.canary_service).rollback_holder == HOLDER
    first = caplog.records[0].getMessage()
    assert first.startswith("could not renew this rollback's claim (trying again in 2 s; the claim lapses in 39 s "
                            "unless a renewal succeeds first; then another rollback may take the rollback over "
                            "mid-way): "), first
    assert "ProvisionedThroughputExceededException" in first


def test_an_outage_through_a_long_rollback_is_said_once_a_period_and_its_end_once(caplog):
    """Tried every 2 s, an outage through a 15-minute rollback said so some 450 times in the run's log."""
    env, record, keeper = a_claimed_rollback(outage=20.0 + 60.0)  # from the first renewal, a whole claim long
    start = env.clock.now()
    with caplog.at_level(logging.INFO, logger="test-claim"):
        while env.clock.now() < start + 100:
            keeper._renewals.tick()
            env.clock.sleep(0.5)
    said = [r.getMessage() for r in caplog.records]
    # A try every 3 s (a failed write takes 1 s here): the first failure, then once each 20 s (a
    # renewal period) while they go on, then the renewal that ends them.
    assert [m.split(" (")[0] for m in said] == [
        "could not renew this rollback's claim", "still could not renew this rollback's claim after 8 tries",
        "still could not renew this rollback's claim after 15 tries",
        "renewed this rollback's claim again after 20 failed tries, 20 s after it had lapsed: no other rollback "
        "took it over meanwhile"], said
    assert "the claim lapsed 3 s ago, and another rollback may take the rollback over mid-way now" in said[2], said


def test_a_claim_renewal_the_role_may_not_make_says_which_statement_grants_it(caplog):
    env, record, keeper = a_claimed_rollback(outage=0.0)
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "User: arn:aws:sts::123456789012:"
                                    "assumed-role/rollout/x is not authorized to perform: dynamodb:UpdateItem"}},
                         "UpdateItem")

    def refuse(service, **kwargs):
        raise denied

    env.ledger.claim_rollback = refuse
    env.clock.sleep(20.0)
    with caplog.at_level(logging.WARNING, logger="test-claim"):
        keeper._renewals.tick()
    assert "DynamoDB UpdateItem failed: AWS refused dynamodb:UpdateItem" in caplog.text, caplog.text
    assert "statement Ledger" in caplog.text, caplog.text


def test_a_claim_the_role_may_not_read_before_a_step_says_which_statement_grants_it(caplog):
    env, record, keeper = a_claimed_rollback(outage=0.0)
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "User: arn:aws:sts::123456789012:"
                                    "assumed-role/rollout/x is not authorized to perform: dynamodb:Query"}}, "Query")

    def refuse(service):
        raise denied

    env.ledger.get = refuse
    with caplog.at_level(logging.WARNING, logger="test-claim"):
        assert keeper.verify() is None  # a storage error never stops a rollback
    assert "could not read this rollback's claim (DynamoDB Query failed: AWS refused dynamodb:Query" in caplog.text, \
        caplog.text
    assert "statement Ledger" in caplog.text, caplog.text


def test_a_claim_given_up_in_an_outage_says_when_it_lapses_counted_from_its_last_renewal(caplog):
    env, record, keeper = a_claimed_rollback(outage=CLAIM_SECONDS * 10)
    env.clock.sleep(45.0)  # renewals failing since the 20th second: 15 s left, 14 once the give-up write failed
    with caplog.at_level(logging.WARNING, logger="test-claim"):
        keeper.__exit__(RuntimeError, RuntimeError("the canary could not be scaled down"), None)
    # It said 60 s (the claim's length) whenever it was given up.
    assert "could not give up this rollback's claim (it lapses by itself in 14 s)" in caplog.text, caplog.text


def test_a_claim_given_up_after_it_lapsed_in_an_outage_says_it_lapsed_not_that_it_lapses_in_0_s(caplog):
    env, record, keeper = a_claimed_rollback(outage=CLAIM_SECONDS * 10)
    env.clock.sleep(CLAIM_SECONDS + 30.0)  # renewals failing since the 20th second: lapsed 30 s ago
    with caplog.at_level(logging.WARNING, logger="test-claim"):
        keeper.__exit__(RuntimeError, RuntimeError("the canary could not be scaled down"), None)
    assert "could not give up this rollback's claim (it lapsed 31 s ago: another rollback may take it over now)" \
        in caplog.text, caplog.text
    assert "lapses by itself in 0 s" not in caplog.text, caplog.text


def test_a_failed_rollback_whose_claim_was_taken_over_does_not_say_it_could_not_give_it_up(caplog):
    """It warned "could not give up this rollback's claim (it lapses by itself in 60 s)" over the
    ledger's refusal: on-call read that the claim would soon free itself, while carol's rollback held it."""
    env, record, keeper = a_claimed_rollback(outage=0.0)
    env.clock.sleep(CLAIM_SECONDS + 1)  # its renewals stalled: the claim lapsed, and carol took it over
    env.ledger.claim_rollback(env.targets.canary_service, holder=CAROL, now=env.wall(), lease_seconds=CLAIM_SECONDS,
                              rollout=record.rollout_id)
    with caplog.at_level(logging.INFO, logger="test-claim"):
        keeper.__exit__(RuntimeError, RuntimeError("the canary could not be scaled down"), None)
    assert "could not give up" not in caplog.text, caplog.text
    assert "this rollback's claim is no longer its own to give up: rollout" in caplog.text, caplog.text
    assert f"being rolled back by {CAROL}" in caplog.text, caplog.text
    assert env.ledger.get(env.targets.canary_service).rollback_holder == CAROL


# --- The thread -------------------------------------------------------------------------------
# On a clock that moves a renewal period at each read, every look finds a renewal due: the thread
# renews at once, and the tests wait on events and on the thread's end, never on real time.


def every_look_due(period: float):
    """A clock ``period`` seconds further on at each read: the renewals' first look renews at once."""
    return itertools.count(0.0, period).__next__


def ended(name: str) -> bool:
    """Whether the renewing thread ``name`` has ended (waited for, bounded, as it may lag under load)."""
    for thread in [t for t in threading.enumerate() if t.name == name]:
        thread.join(5)
    return not any(t.name == name for t in threading.enumerate())


def test_a_hold_taken_by_another_ends_the_renewals() -> None:
    tries = []

    def renew():
        tries.append(len(tries))
        raise RollbackClaimed("carol holds the rollback's claim", holder="carol", expires=0.0)

    keeper, lost, trouble = renewals(renew, lease=60.0, clock=every_look_due(20.0), name="renewals-lost")
    keeper.start()
    assert ended("renewals-lost"), "the renewals went on after the hold was another's"
    assert len(tries) == 1 and trouble == []
    assert [type(err) for err in lost] == [RollbackClaimed] and isinstance(lost[0], LedgerError)


def test_no_renewal_lands_after_stop_returns() -> None:
    under_way, release, stopping, order = threading.Event(), threading.Event(), threading.Event(), []

    def renew():
        under_way.set()
        release.wait(5)  # a slow write, under way when the holder stops the renewals
        order.append("renewal landed")

    class Stopped(Renewals):
        def stop(self) -> None:
            stopping.set()
            super().stop()
            order.append("stop returned")

    keeper = Stopped(renew, lease=60.0, clock=every_look_due(20.0), look=None, lost=lambda err: None,
                     trouble=lambda *said: None, name="renewals-stopped")
    keeper.start()
    assert under_way.wait(5)
    holder = threading.Thread(target=keeper.stop)
    holder.start()
    assert stopping.wait(5)
    release.set()
    holder.join(5)
    assert order == ["renewal landed", "stop returned"]


def test_halt_from_the_renewing_thread_ends_the_renewals_without_waiting_on_itself() -> None:
    """As a rollback that found its claim lost does, from the renewing thread: a halt that waited
    for the thread would wait on itself."""
    calls = []

    def renew():
        calls.append(len(calls))
        keeper.halt()

    keeper, lost, trouble = renewals(renew, lease=60.0, clock=every_look_due(20.0), name="renewals-halted")
    keeper.start()
    assert ended("renewals-halted"), "the renewals went on after halt()"
    assert len(calls) == 1 and lost == [] and trouble == []


def test_a_claim_renewal_failing_on_other_than_storage_says_what_failed_on_one_line(caplog):
    """A renewal that failed on something other than DynamoDB's refusal (a bare TimeoutError, a
    record the ledger could not parse) was said as ``str(err)``: nothing at all after "could not
    renew this rollback's claim (...):" for an error with no message, and a many-line text broke the line."""
    said = []
    for error in (TimeoutError(), ValueError("the stored record\ndoes not parse:\n  phase: unknown")):
        env, record, keeper = a_claimed_rollback(outage=0.0)

        def fail(service, error=error, **kwargs):
            raise error

        env.ledger.claim_rollback = fail
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="test-claim"):
            env.clock.sleep(20.0)
            keeper._renewals.tick()
        said += [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said
    assert ": TimeoutError with no message" in said[0], said
    assert "\n" not in said[1] and "ValueError: the stored record" in said[1], said


def test_a_claim_read_failing_on_other_than_storage_says_what_failed_on_one_line(caplog):
    env, record, keeper = a_claimed_rollback(outage=0.0)

    def fail(service):
        raise ValueError("the stored record\ndoes not parse:\n  phase: unknown")

    env.ledger.get = fail
    with caplog.at_level(logging.WARNING, logger="test-claim"):
        assert keeper.verify() is None
    (said,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in said and "could not read this rollback's claim (ValueError: the stored record" in said, said
