"""The canary run's Prefect concurrency slot is held for the whole life of the run, failure hook included.

Two defects: Prefect's lease renewal tried three times and then stopped for good, so after an
API outage of a minute the lease ran out mid-rollout and a second run of the service could
start; and the slot was freed when the run's body raised, before its failure hook rolled back,
so a second run could start under that rollback. The renewal loop is driven here with a fake
API, clock and wait (no thread, no sleep); the rest runs on the real Prefect test harness.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from uuid import uuid4

import httpx
import pytest
from prefect import flow, get_client

from flows.canary import RolloutRefused, _create_slot, canary_slot_name, one_canary_run
from flows.slot import (HeldSlot, SlotMissing, SlotTaken, adopt_recorded, claim_handed_over, hand_over, record_lease,
                        recorded_lease, releases_handed_over_slot)
from rollway.lease import RenewalPolicy
from rollway.sim.topology import put_release_image
from rollway.spec import RolloutSpec, Stage
from rollway.targets import Targets

POLICY = RenewalPolicy()  # the canary slot's: a 300 s lease, renewed every 75 s
# The API's shortest lease, renewed almost at once: the real-API tests see many renewals in a moment.
QUICK = RenewalPolicy(lease_seconds=60, renew_fraction=0.001, first_retry_seconds=0.01, max_retry_seconds=0.02)
LOG = logging.getLogger("tests.canary_slot")


def gone() -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://prefect/api/v2/concurrency_limits/leases/x/renew")
    return httpx.HTTPStatusError("410 Gone", request=request, response=httpx.Response(410, request=request))


# -- the renewal loop on a fake API, clock and wait ----------------------------------------------


class Clock:
    """A clock the loop's waits move forward; the loop is told to stop at ``until``."""

    def __init__(self, until: float) -> None:
        self.now = 0.0
        self.until = until

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.now += seconds
        return self.now > self.until


class FakeApi:
    """Answers each renewal with ``answer(now)``: None renews, an exception fails it."""

    def __init__(self, clock: Clock, answer, policy: RenewalPolicy = POLICY) -> None:
        self.clock = clock
        self.answer = answer
        self.policy = policy
        self.renewed: list[float] = []
        self.failed: list[float] = []
        self.released = 0

    @contextmanager
    def __call__(self):
        yield self

    def renew_concurrency_lease(self, lease_id, lease_duration):
        assert lease_duration == self.policy.lease_seconds
        error = self.answer(self.clock.now)
        if error is not None:
            self.failed.append(self.clock.now)
            raise error
        self.renewed.append(self.clock.now)

    def release_concurrency_slots_with_lease(self, lease_id):
        self.released += 1

    def increment_concurrency_slots_with_lease(self, names, slots, mode, lease_duration, holder):
        """Another run took the slot once the lease ran out: 423, as the API answers then."""
        request = httpx.Request("POST", "http://prefect/api/v2/concurrency_limits/increment-with-lease")
        raise httpx.HTTPStatusError("423 Locked", request=request, response=httpx.Response(423, request=request))


def held(api: FakeApi, clock: Clock) -> HeldSlot:
    return HeldSlot("rollway-canary:test:fake", uuid4(), POLICY, taken_at=clock(), client=api, clock=clock, logger=LOG)


def test_renewals_go_on_through_a_long_outage_and_renew_the_lease_past_its_first_expiry(caplog):
    """Prefect's renewal gave up after three failures; here eight minutes of failures (the lease
    taken at 0 runs out at 300 s by the holder's count) are retried all along, and the first
    renewal the API accepts afterwards holds the slot again."""
    clock = Clock(until=2000.0)
    api = FakeApi(clock, lambda now: httpx.ConnectError("Prefect API unreachable") if now < 480 else None)
    caplog.set_level(logging.INFO, logger=LOG.name)

    held(api, clock).renew_until_released(clock.wait)

    assert len(api.failed) == 30 and api.failed[-1] >= 480 - POLICY.max_retry_seconds, "renewals stopped in the outage"
    assert api.failed[0] == 75.0 and max(b - a for a, b in zip(api.failed, api.failed[1:])) <= POLICY.max_retry_seconds
    assert api.renewed and api.renewed[0] > POLICY.expires_at(0.0), api.renewed
    assert all(b - a == POLICY.renew_every for a, b in zip(api.renewed, api.renewed[1:])), "back to the normal pace"
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warned and "225 s of the lease left" in warned[0].getMessage(), [r.getMessage() for r in warned[:2]]
    # Past 300 s with no renewal, the holder says plainly that the slot may be taken.
    assert any(r.levelno == logging.ERROR and "ran out" in r.getMessage() and "may take the slot" in r.getMessage()
               for r in caplog.records)
    assert any("after" in r.getMessage() and "failed attempts" in r.getMessage() for r in caplog.records)


def test_an_api_outage_of_a_minute_never_lets_the_lease_run_out():
    """The closing notes' case: one minute of failures, then the API is back. The lease is
    renewed well inside its 300 s from every earlier renewal, all along an hours-long run."""
    clock = Clock(until=4 * 3600.0)
    api = FakeApi(clock, lambda now: httpx.ConnectError("down") if 3000 <= now < 3060 else None)

    held(api, clock).renew_until_released(clock.wait)

    renewals = [0.0, *api.renewed]
    assert len(api.failed) > 3 and api.renewed[-1] > 4 * 3600 - POLICY.renew_every
    assert max(b - a for a, b in zip(renewals, renewals[1:])) < POLICY.lease_seconds / 2


def test_a_lease_the_api_no_longer_has_is_reported_plainly_and_no_longer_renewed(caplog):
    clock = Clock(until=2000.0)
    api = FakeApi(clock, lambda now: gone() if now >= 150 else None)

    slot = held(api, clock)
    slot.renew_until_released(clock.wait)

    assert slot.lost and api.renewed == [75.0] and api.failed == [150.0], "one answer of 410 is final"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "is no longer held" in errors[0] and "could not be taken again" in errors[0]
    assert "another run may be driving the same service" in errors[0]


def test_a_slot_handed_over_and_taken_by_no_hook_stops_being_renewed_so_its_lease_runs_out(caplog):
    """The run's body raised and handed its slot over, but no hook came for it (its final state
    could not be set, say): renewed for handover_seconds, then left to run out."""
    clock = Clock(until=100_000.0)
    api = FakeApi(clock, lambda now: None)
    slot = held(api, clock)
    clock.now = 1000.0
    run = uuid4()
    hand_over(run, slot)

    slot.renew_until_released(clock.wait)

    assert api.renewed and max(api.renewed) < 1000.0 + POLICY.handover_seconds
    assert clock.now < 1000.0 + POLICY.handover_seconds + POLICY.renew_every + 1, "the loop ended"
    assert claim_handed_over(run) is None, "a hook that comes this late finds nothing to release"
    assert any("no state hook took over" in r.getMessage() for r in caplog.records)


# A lease of 100 s, its other waits as no %g says them: "1.66667 minutes", "12.3457 s".
ODD = RenewalPolicy(lease_seconds=100, handover_seconds=12.3456789, first_retry_seconds=12.3456789,
                    max_retry_seconds=20)


def test_a_renewal_failed_says_its_next_try_as_the_policy_gives_it(caplog):
    clock = Clock(until=40.0)
    api = FakeApi(clock, lambda now: httpx.ConnectError("down") if now < 30 else None, policy=ODD)
    caplog.set_level(logging.INFO, logger=LOG.name)

    HeldSlot("rollway-canary:test:fake", uuid4(), ODD, taken_at=clock(), client=api, clock=clock,
             logger=LOG).renew_until_released(clock.wait)

    assert api.failed == [25.0] and api.renewed == [25.0 + 12.3456789], (api.failed, api.renewed)
    (warned,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned.endswith("75 s of the lease left; trying again in 12.3456789 s"), warned


def test_renewals_failing_say_the_lease_left_and_the_time_since_it_ran_out_a_half_second_up(caplog):
    """``%.0f`` took a half second to the even whole: 76.5 s left read "76 s", where every span
    measured reads "77 s" (whole_seconds)."""
    policy = RenewalPolicy(lease_seconds=102, first_retry_seconds=25, max_retry_seconds=25)  # renewed at 25.5 s
    clock = Clock(until=160.0)
    api = FakeApi(clock, lambda now: httpx.ConnectError("down"), policy=policy)

    HeldSlot("rollway-canary:test:fake", uuid4(), policy, taken_at=clock(), client=api, clock=clock,
             logger=LOG).renew_until_released(clock.wait)

    assert api.failed == [25.5, 50.5, 75.5, 100.5, 125.5, 150.5], api.failed
    left = [m.split("): ")[1].split(";")[0] for m in said_at(caplog, logging.WARNING)]
    assert left == ["77 s of the lease left", "52 s of the lease left", "27 s of the lease left",
                    "2 s of the lease left"], left
    ago = [m.split("): ")[1].split(" unless")[0] for m in said_at(caplog, logging.ERROR)]
    assert ago == ["the lease ran out 24 s ago", "the lease ran out 49 s ago"], ago


def test_a_slot_no_hook_took_over_says_the_wait_and_the_lease_as_the_policy_gives_them(caplog):
    clock = Clock(until=100_000.0)
    slot = HeldSlot("rollway-canary:test:fake", uuid4(), ODD, taken_at=clock(), client=FakeApi(clock, lambda now: None),
                    clock=clock, logger=LOG)
    hand_over(uuid4(), slot)

    slot.renew_until_released(clock.wait)

    (warned,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned.endswith("in the 12.3456789 s since its run ended: renewals stop, and it frees itself within "
                           "1 min 40 s, when its lease runs out"), warned


def test_a_slot_not_released_says_its_lease_in_minutes_and_seconds(caplog):
    class Unreleased(FakeApi):
        def release_concurrency_slots_with_lease(self, lease_id):
            raise httpx.ConnectError("Prefect API unreachable")

    clock = Clock(until=0.0)
    slot = HeldSlot("rollway-canary:test:fake", uuid4(), ODD, taken_at=clock(), client=Unreleased(clock, None, ODD),
                    clock=clock, logger=LOG)
    slot.release()
    (said,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert said.endswith("(Prefect API unreachable): it frees itself within 1 min 40 s, when its lease runs out"), said


# httpx's words quote the URL asked: a PREFECT_API_URL behind basic auth, its password with it.
API_PASSWORD = "s3cr3t"


def refused_at(path: str, status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", f"https://ops:{API_PASSWORD}@prefect.internal/api/v2/{path}")
    return httpx.HTTPStatusError(f"Server error '{status}' for url '{request.url}'", request=request,
                                 response=httpx.Response(status, request=request))


def said_at(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_renewals_failing_say_the_api_error_without_the_password_of_the_api_url(caplog):
    clock = Clock(until=400.0)
    api = FakeApi(clock, lambda now: refused_at("concurrency_limits/leases/x/renew", 503))
    caplog.set_level(logging.INFO, logger=LOG.name)

    held(api, clock).renew_until_released(clock.wait)

    warned, erred = said_at(caplog, logging.WARNING), said_at(caplog, logging.ERROR)
    assert warned and erred, (warned, erred)  # the lease left, then the lease ran out
    for said in (*warned, *erred):
        assert API_PASSWORD not in said and "for url 'https://ops:***@prefect.internal/api/v2/" in said, said


def test_a_slot_taken_is_raised_from_the_api_error_without_the_password_of_the_api_url():
    """A second canary run meets the slot held: the API answers 423, and SlotTaken (then the run's
    refusal) was raised from httpx's error, whose words quote the URL asked, password and all: Prefect
    logs a failed run's error with its causes."""
    import flows.slot

    class Locked:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def increment_concurrency_slots_with_lease(self, **asked):
            raise refused_at("concurrency_limits/increment-with-lease", 423)

    with pytest.raises(SlotTaken) as taken:
        flows.slot._increment(Locked, "rollway-canary:test:fake", ODD, None)
    cause = str(taken.value.__cause__)
    assert API_PASSWORD not in cause and "for url 'https://ops:***@prefect.internal/api/v2/" in cause, cause


def test_a_lease_lost_says_the_api_errors_without_the_password_of_the_api_url(caplog):
    class Taken(FakeApi):
        def increment_concurrency_slots_with_lease(self, names, slots, mode, lease_duration, holder):
            raise refused_at("concurrency_limits/increment-with-lease", 503)

    clock = Clock(until=2000.0)
    slot = held(Taken(clock, lambda now: refused_at("concurrency_limits/leases/x/renew", 410)), clock)
    slot.renew_until_released(clock.wait)

    (lost,) = said_at(caplog, logging.ERROR)
    assert slot.lost and "is no longer held" in lost, lost
    assert API_PASSWORD not in lost and lost.count("https://ops:***@prefect.internal/api/v2/") == 2, lost


def test_a_lease_taken_again_but_not_recorded_says_the_api_errors_without_the_password_of_the_api_url(caplog):
    class Retaken(FakeApi):
        def increment_concurrency_slots_with_lease(self, names, slots, mode, lease_duration, holder):
            limit = {"id": str(uuid4()), "name": names[0], "limit": 1}
            return httpx.Response(200, json={"lease_id": str(uuid4()), "limits": [limit]})

        def read_flow_run(self, flow_run_id):
            raise refused_at(f"flow_runs/{flow_run_id}", 503)

    clock = Clock(until=160.0)
    api = Retaken(clock, lambda now: refused_at("concurrency_limits/leases/x/renew", 410) if now < 100 else None)
    HeldSlot("rollway-canary:test:fake", uuid4(), POLICY, taken_at=clock(), client=api, clock=clock, logger=LOG,
             flow_run_id=uuid4()).renew_until_released(clock.wait)

    (retaken,), (unrecorded,) = said_at(caplog, logging.ERROR), said_at(caplog, logging.WARNING)
    assert "holds it again" in retaken and "could not record the new lease" in unrecorded, (retaken, unrecorded)
    for said in (retaken, unrecorded):
        assert API_PASSWORD not in said and "for url 'https://ops:***@prefect.internal/api/v2/" in said, said


def test_a_slot_not_released_says_the_api_error_without_the_password_of_the_api_url(caplog):
    class Unreleased(FakeApi):
        def release_concurrency_slots_with_lease(self, lease_id):
            raise refused_at("concurrency_limits/leases/x/release", 503)

    clock = Clock(until=0.0)
    held(Unreleased(clock, None), clock).release()
    (said,) = said_at(caplog, logging.ERROR)
    assert API_PASSWORD not in said and "for url 'https://ops:***@prefect.internal/api/v2/" in said, said


def test_a_hook_that_cannot_read_the_recorded_slot_says_why_without_the_password_of_the_api_url(caplog):
    class Unread(FakeApi):
        def read_flow_run(self, flow_run_id):
            raise refused_at(f"flow_runs/{flow_run_id}", 503)

    clock = Clock(until=0.0)
    assert adopt_recorded(uuid4(), POLICY, client=Unread(clock, None), clock=clock, logger=LOG) is None
    (said,) = said_at(caplog, logging.WARNING)
    assert API_PASSWORD not in said and "for url 'https://ops:***@prefect.internal/api/v2/" in said, said


def test_a_slot_a_hook_took_over_is_renewed_until_the_hook_releases_it():
    clock = Clock(until=5000.0)
    api = FakeApi(clock, lambda now: None)
    slot = held(api, clock)
    run = uuid4()
    hand_over(run, slot)
    assert claim_handed_over(run) is slot

    slot.renew_until_released(clock.wait)

    assert max(api.renewed) > 5000.0 - POLICY.renew_every, "still renewed long after the hand-over"


def test_a_renewal_answered_after_the_release_says_nothing(caplog):
    """The run released the slot while a renewal waited on the API: the 410 that renewal gets
    is the release's doing, not a lost lease."""
    clock = Clock(until=2000.0)
    slot: list[HeldSlot] = []

    def released_meanwhile(now):
        slot[0].release()
        return gone()

    api = FakeApi(clock, released_meanwhile)
    slot.append(held(api, clock))
    slot[0].renew_until_released(clock.wait)

    assert api.released == 1 and not slot[0].lost
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# A process whose run handed its slot over and ended without a hook taking it (its final state could
# not be set: the API had stopped), then exits. The run's log handler is Prefect's: at exit it can no
# longer start its worker (here: a handler that registers a thread exit hook, as that worker does),
# and the exit takes a while (Prefect's own exit hooks stop the ephemeral API server).
_ABANDONED = """
import atexit, logging, sys, threading, time
from contextlib import contextmanager
from uuid import uuid4
from flows.slot import HeldSlot, hand_over
from rollway.lease import RenewalPolicy

class RunLog(logging.Handler):
    def emit(self, record):
        try:
            threading._register_atexit(lambda: None)
            print("LOG", record.getMessage()[:40], flush=True)
        except Exception:
            self.handleError(record)

class DeadApi:
    @contextmanager
    def __call__(self):
        yield self
    def renew_concurrency_lease(self, lease_id, lease_duration):
        print("API renew", flush=True)
        raise ConnectionRefusedError(111, "Connection refused")

log = logging.getLogger("run")
log.addHandler(RunLog())
policy = RenewalPolicy(lease_seconds=60, renew_fraction=0.001, first_retry_seconds=0.02, max_retry_seconds=0.02)
slot = HeldSlot("rollway-canary:test:abandoned", uuid4(), policy, taken_at=time.monotonic(), client=DeadApi(),
                logger=log)
slot.start()
hand_over(uuid4(), slot)
time.sleep(0.2)
atexit.register(lambda: (print("EXITING", flush=True), time.sleep(0.5)))
"""


def test_a_slot_no_hook_took_stops_being_renewed_when_its_process_exits():
    """The demo stopped by a signal: its run's state could not be set, no hook took the slot, and
    the renewal thread went on calling the stopped API and logging through the process's exit,
    each line a "--- Logging error ---" traceback. It stops before the exit's hooks, without a word."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _ABANDONED], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "EXITING" in lines and any(line.startswith("API renew") for line in lines), done.stdout
    after = lines[lines.index("EXITING") + 1:]
    assert after == [], f"the renewals went on through the exit: {after}"
    assert "Logging error" not in done.stderr, done.stderr


# -- the real API ------------------------------------------------------------------------------------


def active_slots(name: str) -> int:
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name).active_slots


class FlakyRenewals:
    """A client factory over the harness whose first ``failures`` renewals fail, as in an outage."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[str] = []
        self.renewed = threading.Event()

    @contextmanager
    def __call__(self):
        with get_client(sync_client=True) as api:
            yield _Flaky(api, self)


class _Flaky:
    def __init__(self, api, flaky: FlakyRenewals) -> None:
        self._api = api
        self._flaky = flaky

    def __getattr__(self, name):
        return getattr(self._api, name)

    def renew_concurrency_lease(self, lease_id, lease_duration):
        flaky = self._flaky
        if flaky.calls.count("failed") < flaky.failures:
            flaky.calls.append("failed")
            raise httpx.ConnectError("Prefect API unreachable for a moment")
        answer = self._api.renew_concurrency_lease(lease_id=lease_id, lease_duration=lease_duration)
        flaky.calls.append(f"renewed {answer.status_code}")  # the API answers 410 for a lease it no longer has
        flaky.renewed.set()
        return answer


def test_on_the_api_renewal_goes_on_after_failures_and_the_slot_stays_held(caplog):
    name = "rollway-canary:test:renewals"
    _create_slot(name)
    flaky = FlakyRenewals(failures=6)
    slot = HeldSlot.take(name, QUICK, client=flaky, logger=LOG)
    slot.start()
    try:
        assert flaky.renewed.wait(timeout=15), f"no renewal reached the API after the failures: {flaky.calls}"
        assert flaky.calls[:7] == ["failed"] * 6 + ["renewed 204"], flaky.calls
        assert slot.renewing and not slot.lost
        assert active_slots(name) == 1
        with pytest.raises(SlotTaken):
            HeldSlot.take(name, QUICK)
    finally:
        slot.release()
    assert active_slots(name) == 0 and not slot.renewing
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == LOG.name]
    assert len(warned) >= 6 and all("of the lease left" in m for m in warned[:6]), warned


def test_a_missing_limit_is_not_taken():
    with pytest.raises(SlotMissing, match="does not exist"):
        HeldSlot.take("rollway-canary:test:nobody-made-it", QUICK)


TARGETS = Targets(cluster="slot-tests", canary_service="slot-canary")


def second_run_refused() -> str:
    """What a second run of the same service gets now; raises if it was let through."""
    with pytest.raises(RolloutRefused, match="another canary run") as refused:
        with one_canary_run(TARGETS, policy=QUICK):
            pass
    return str(refused.value)


def test_a_limit_that_cannot_be_taken_is_refused_without_the_password_of_the_api_url(monkeypatch):
    """httpx's error quotes the URL asked: a PREFECT_API_URL behind basic auth
    (``https://<user>:<password>@host/api``) put its password in the refusal, the run's state."""
    import flows.canary

    def refused(name: str) -> None:
        request = httpx.Request("GET", f"https://ops:s3cr3t@prefect.internal/api/v2/concurrency_limits/filter/{name}")
        raise httpx.HTTPStatusError(f"Server error '503 Service Unavailable' for url '{request.url}'",
                                    request=request, response=httpx.Response(503, request=request))

    monkeypatch.setattr(flows.canary, "_create_slot", refused)
    with pytest.raises(RolloutRefused) as refused_run:
        with one_canary_run(TARGETS, policy=QUICK):
            pass
    said = str(refused_run.value)
    assert "s3cr3t" not in said and "for url 'https://ops:***@prefect.internal/api/v2/" in said, said
    # Prefect logs a failed run's error with its cause.
    cause = str(refused_run.value.__cause__)
    assert "s3cr3t" not in cause and "for url 'https://ops:***@prefect.internal/api/v2/" in cause, cause


def test_a_failed_runs_slot_is_held_through_its_hook_and_freed_after_it():
    name = canary_slot_name(TARGETS)
    seen: dict = {}

    def rolling_back(flow, flow_run, state):
        seen["slots"] = active_slots(name)
        seen["second"] = second_run_refused()

    hook = releases_handed_over_slot(rolling_back)

    @flow(on_failure=[hook], on_crashed=[hook], on_cancellation=[hook])
    def failing():
        with one_canary_run(TARGETS, policy=QUICK):
            raise RuntimeError("the deploy failed midway")

    state = failing(return_state=True)

    assert state.is_failed()
    assert seen.get("slots") == 1, f"the slot was free while the hook rolled back: {seen}"
    # The API's shortest lease, 60 s: "1 minutes" as %g said it.
    assert "is under way" in seen["second"] and "a run that died frees it within 1 min)" in seen["second"], seen
    assert active_slots(name) == 0
    with one_canary_run(TARGETS, policy=QUICK):
        assert active_slots(name) == 1


def test_a_hook_whose_rollback_fails_still_frees_the_slot():
    name = canary_slot_name(TARGETS)

    def rollback_fails(flow, flow_run, state):
        assert active_slots(name) == 1
        raise RuntimeError("the rollback failed too")

    hook = releases_handed_over_slot(rollback_fails)

    @flow(on_failure=[hook], on_crashed=[hook], on_cancellation=[hook])
    def failing():
        with one_canary_run(TARGETS, policy=QUICK):
            raise RuntimeError("the deploy failed midway")

    assert failing(return_state=True).is_failed()
    assert active_slots(name) == 0


def test_a_retry_of_a_failed_run_holds_the_slot_its_first_attempt_kept():
    """The first attempt's failure keeps the slot for the hook, but a retry comes instead (no
    hook runs between attempts): the retry takes the slot back, not a 423 from itself."""
    name = canary_slot_name(TARGETS)
    attempts: list[int] = []

    hook = releases_handed_over_slot(lambda flow, flow_run, state: None)

    @flow(retries=1, retry_delay_seconds=0, on_failure=[hook], on_crashed=[hook], on_cancellation=[hook])
    def flaky_run():
        with one_canary_run(TARGETS, policy=QUICK):
            attempts.append(active_slots(name))
            if len(attempts) == 1:
                raise RuntimeError("a read failed; the run is retried")
        return "done"

    assert flaky_run() == "done"
    assert attempts == [1, 1] and active_slots(name) == 0


def test_the_canary_flows_slot_is_held_while_its_hook_rolls_back_on_aws(aws, monkeypatch):
    """The real `canary` flow and its real hook, on the embedded AWS: the run fails after it
    deployed the new image, and while the hook's rollback runs, a second run of the service is
    refused; once the rollback has put the canary back, the slot is free."""
    import flows.canary
    import flows.rollback
    from tests.flows.moto_env import saved_blocks
    from tests.flows.test_canary_moto import read_back

    blocks = saved_blocks(aws, "slot")
    name = canary_slot_name(aws.targets)
    real_rollback = flows.rollback.hook_rollback
    seen: dict = {}

    def rollback_watched(**kwargs):
        seen["slots"] = active_slots(name)
        seen["deployed"] = read_back(aws)[2].task_definition
        with pytest.raises(RolloutRefused, match="another canary run") as refused:
            with one_canary_run(aws.targets, policy=QUICK):
                pass
        seen["second"] = str(refused.value)
        return real_rollback(**kwargs)

    def first_shift_fails(*args, **kwargs):
        raise RuntimeError("the load balancer refused the first shift")

    monkeypatch.setattr(flows.rollback, "hook_rollback", rollback_watched)  # the hook imports it when it runs
    monkeypatch.setattr(flows.canary, "run_stages", first_shift_fails)
    image = put_release_image(aws.get_client, aws.targets, "2.0.0")
    with pytest.raises(RuntimeError, match="refused the first shift"):
        flows.canary.canary(spec=RolloutSpec(image=image, stages=[Stage(weight=5), Stage(weight=100)]),
                            targets_block=blocks, aws_credentials_block=blocks)

    assert seen.get("slots") == 1, f"the slot was free while the hook rolled back: {seen}"
    assert "is under way" in seen["second"]
    weights, stable, canary_service = read_back(aws)
    assert seen["deployed"] != stable.task_definition, "the run deployed before it failed: a rollback to do"
    assert canary_service.task_definition == stable.task_definition and canary_service.desired == 0, "rolled back"
    assert active_slots(name) == 0


# -- a hook in another process: the runner reporting a crash, or cancelling for the UI ----------


@flow(name="slot-elsewhere")
def ran_elsewhere() -> None:
    pass


def run_that_took_the_slot_and_died(name: str):
    """A flow run whose process took ``name``'s slot, recorded its lease, and died: nothing in
    this process holds the slot, nothing renews it, nothing handed it over."""
    from prefect.states import Running

    _create_slot(name)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(ran_elsewhere, state=Running())
    slot = HeldSlot.take(name, POLICY, flow_run_id=run.id)
    record_lease(run.id, slot)
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run.id), slot.lease_id


def test_a_hook_in_another_process_holds_the_recorded_slot_through_its_rollback_and_frees_it():
    targets = Targets(cluster="slot-tests", canary_service="slot-elsewhere")
    name = canary_slot_name(targets)
    flow_run, _ = run_that_took_the_slot_and_died(name)
    seen: dict = {}

    def rolling_back(flow, flow_run, state):
        seen["slots"] = active_slots(name)
        with pytest.raises(RolloutRefused, match="another canary run"):
            with one_canary_run(targets, policy=QUICK):
                pass
        seen["refused"] = True

    releases_handed_over_slot(rolling_back)(ran_elsewhere, flow_run, None)

    assert seen == {"slots": 1, "refused": True}
    assert active_slots(name) == 0, "the dead run's slot stayed taken after its hook's rollback"


def test_a_hook_after_the_recorded_lease_ran_out_takes_the_slot_for_its_rollback():
    targets = Targets(cluster="slot-tests", canary_service="slot-lapsed")
    name = canary_slot_name(targets)
    flow_run, lease_id = run_that_took_the_slot_and_died(name)
    with get_client(sync_client=True) as client:
        client.release_concurrency_slots_with_lease(lease_id)  # what the server does when it runs out
    seen: dict = {}

    def rolling_back(flow, flow_run, state):
        seen["slots"] = active_slots(name)

    releases_handed_over_slot(rolling_back)(ran_elsewhere, flow_run, None)

    assert seen == {"slots": 1}, "a second canary run could have started under the rollback"
    assert active_slots(name) == 0


def test_a_canary_run_records_its_live_lease_on_its_flow_run():
    from prefect.context import FlowRunContext

    targets = Targets(cluster="slot-tests", canary_service="slot-recorded")

    @flow
    def canary_like():
        with one_canary_run(targets, policy=QUICK):
            run_id = FlowRunContext.get().flow_run.id
            with get_client(sync_client=True) as client:
                recorded = recorded_lease(client.read_flow_run(run_id).tags)
                assert recorded is not None, "no lease recorded on the run"
                renewed = client.renew_concurrency_lease(lease_id=recorded[1], lease_duration=60)
            return recorded[0], renewed.status_code

    assert canary_like() == (canary_slot_name(targets), 204)


def test_a_lease_not_recorded_on_the_run_says_why_without_the_password_of_the_api_url(monkeypatch, caplog):
    import flows.canary

    def unrecorded(run_id, slot):
        raise refused_at(f"flow_runs/{run_id}", 503)

    monkeypatch.setattr(flows.canary, "record_lease", unrecorded)
    targets = Targets(cluster="slot-tests", canary_service="slot-unrecorded")

    @flow
    def canary_like():
        with one_canary_run(targets, policy=QUICK):
            pass

    canary_like()
    (said,) = [m for m in said_at(caplog, logging.WARNING) if "could not record the lease" in m]
    assert API_PASSWORD not in said and "for url 'https://ops:***@prefect.internal/api/v2/flow_runs/" in said, said


def test_tags_that_are_not_a_lease_are_not_read_as_one():
    lease = uuid4()
    assert recorded_lease(["env:prod", f"rollway:slot-lease:{lease}:rollway-canary:c:s"]) == ("rollway-canary:c:s", lease)
    assert recorded_lease(["rollway:slot-lease:not-a-uuid:x", "rollway:finalizing:run-count-1"]) is None
    assert recorded_lease(None) is None


def test_a_lease_that_ran_out_is_taken_again_when_no_other_run_took_the_slot(caplog):
    """The API's answer to a renewal of a lease it no longer has (it ran out in an outage longer
    than the lease) used to end the renewals: the run went on unguarded though the slot was free."""
    name = "rollway-canary:test:retaken"
    _create_slot(name)
    slot = HeldSlot.take(name, QUICK, logger=LOG)
    first = slot.lease_id
    with get_client(sync_client=True) as client:
        client.release_concurrency_slots_with_lease(first)  # what the server does once the lease runs out
    assert active_slots(name) == 0
    slot.start()
    try:
        for _ in range(200):
            if slot.lease_id != first or slot.lost:
                break
            threading.Event().wait(0.05)
        assert not slot.lost and slot.lease_id != first, "the free slot was not taken again"
        assert active_slots(name) == 1
        with pytest.raises(SlotTaken):
            HeldSlot.take(name, QUICK)
    finally:
        slot.release()
    assert active_slots(name) == 0, "the new lease was not given back"
    assert any("holds it again" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
