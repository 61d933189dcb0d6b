"""The lease renewal policy of the canary run's Prefect concurrency slot: pure, on a clock the test gives."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rollway.lease import RenewalPolicy

POLICY = RenewalPolicy()  # the canary slot's: a 300 s lease


def test_after_a_renewal_the_next_is_a_quarter_of_the_lease_away():
    assert POLICY.next_wait(0) == 75.0
    assert RenewalPolicy(lease_seconds=60).next_wait(0) == 15.0


@pytest.mark.parametrize("failures, wait", [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 15.0), (6, 15.0), (40, 15.0),
                                            (10_000, 15.0)])
def test_failed_renewals_back_off_to_a_bound_and_stay_there(failures, wait):
    assert POLICY.next_wait(failures) == wait


def test_a_renewal_is_retried_more_than_three_times_before_the_lease_runs_out():
    """Prefect's own renewal tried three times, then never again; this one keeps going, and
    the retries of one outage fit many times into the lease."""
    spent, tries = POLICY.next_wait(0), 0
    while spent < POLICY.lease_seconds:
        tries += 1
        spent += POLICY.next_wait(tries)
    assert tries > 15


def test_the_lease_left_counts_from_when_the_renewal_was_sent():
    assert POLICY.expires_at(1000.0) == 1300.0
    assert POLICY.left(renewed_at=1000.0, now=1075.0) == 225.0
    assert POLICY.left(renewed_at=1000.0, now=1310.0) == -10.0


@pytest.mark.parametrize("now, handed_over_at, claimed, renews", [
    (10_000.0, None, False, True),      # the run's body holds it: for as long as it runs
    (1000.0, 1000.0, False, True),      # handed to the hook a moment ago
    (1299.0, 1000.0, False, True),
    (1300.0, 1000.0, False, False),     # no hook took it within handover_seconds: stop, let the lease run out
    (10_000.0, 1000.0, True, True),     # a hook took it: until the hook releases it
])
def test_a_handed_over_slot_is_renewed_only_until_the_handover_deadline_unless_a_hook_took_it(
        now, handed_over_at, claimed, renews):
    assert POLICY.keeps_renewing(now, handed_over_at, claimed) is renews


@pytest.mark.parametrize("settings, complaint", [
    ({"lease_seconds": 30}, "greater than or equal to 60"),
    ({"renew_fraction": 1.0}, "less than 1"),
    ({"first_retry_seconds": 5, "max_retry_seconds": 2}, "shorter than first_retry_seconds"),
    ({"max_retry_seconds": 100}, "fewer than four retries"),
    ({"handover_seconds": 0}, "greater than 0"),
])
def test_a_policy_that_could_not_keep_a_lease_is_refused(settings, complaint):
    with pytest.raises(ValidationError, match=complaint):
        RenewalPolicy(**settings)


def test_a_negative_failure_count_is_a_bug_not_a_wait():
    with pytest.raises(ValueError, match="0 or more"):
        POLICY.next_wait(-1)
