"""When a run renews a lease it holds on a shared slot, and how long it waits after a renewal fails.

Pure: times are seconds on whatever monotonic clock the caller reads, and nothing here sleeps.
The holder (``flows/slot.py``, over the Prefect API) asks this policy how long to wait before
its next renewal, how much of the lease it can count on still being left, and whether it should
keep renewing a slot its run has handed to the run's failure hook.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rollway.bounds import as_given, seconds_said


class RenewalPolicy(BaseModel):
    """How a held lease is kept alive.

    Attributes:
        lease_seconds: How long the lease lasts after each renewal (the Prefect API accepts 60 s to a day).
        renew_fraction: After a renewal, wait this fraction of the lease before the next one; a quarter
            leaves room for three more renewals, each retried, before the lease could run out.
        first_retry_seconds: The wait after the first failed renewal; it doubles with each further
            failure in a row...
        max_retry_seconds: ...up to this, and stays there for as long as the failures go on: the
            holder never gives up while its run holds the slot.
        handover_seconds: How long a slot handed to the run's failure hook is renewed while no hook
            has taken it over. The hook runs in the run's process moments after the run's final state
            is set; one that never comes (the state could not be set, a flow without the hook, a retry
            that never started) must not keep the slot forever, so renewals stop then and the lease
            runs out ``lease_seconds`` later.
    """

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    lease_seconds: float = Field(default=300.0, ge=60.0, le=86_400.0)
    renew_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)
    first_retry_seconds: float = Field(default=1.0, gt=0.0)
    max_retry_seconds: float = Field(default=15.0, gt=0.0)
    handover_seconds: float = Field(default=300.0, gt=0.0)

    @model_validator(mode="after")
    def _retries_fit_the_lease(self) -> "RenewalPolicy":
        if self.max_retry_seconds < self.first_retry_seconds:
            raise ValueError(f"max_retry_seconds ({as_given(self.max_retry_seconds)}) is shorter than "
                             f"first_retry_seconds ({as_given(self.first_retry_seconds)})")
        if self.max_retry_seconds * 4 > self.lease_seconds:
            # Fewer than four tries a lease: one short outage would run the lease out.
            raise ValueError(f"max_retry_seconds ({as_given(self.max_retry_seconds)}) leaves fewer than four retries "
                             f"in a {seconds_said(self.lease_seconds)} lease")
        return self

    @property
    def renew_every(self) -> float:
        """Seconds from a successful renewal (or the take) to the next renewal."""
        return self.lease_seconds * self.renew_fraction

    def next_wait(self, failures: int) -> float:
        """Seconds to wait before the next renewal, ``failures`` renewals in a row having failed.

        Bounded exponential backoff: 1, 2, 4, 8, 15, 15, ... with the defaults. No jitter: one
        holder per slot, so there is no herd to spread.
        """
        if failures < 0:
            raise ValueError(f"failures must be 0 or more, not {failures}")
        if failures == 0:
            return self.renew_every
        # Capped before it is computed: 2 ** 2000 would overflow a float after a long outage.
        return min(self.max_retry_seconds, self.first_retry_seconds * 2 ** min(failures - 1, 64))

    def expires_at(self, renewed_at: float) -> float:
        """When the lease runs out at the latest, renewed by a request sent at ``renewed_at``.

        Counted from when the request was sent, not answered: the API set the expiry on its own
        clock somewhere in between, so this is the earliest it can be.
        """
        return renewed_at + self.lease_seconds

    def left(self, renewed_at: float, now: float) -> float:
        """Seconds of the lease the holder can count on at ``now`` (negative: it may have run out)."""
        return self.expires_at(renewed_at) - now

    def keeps_renewing(self, now: float, handed_over_at: float | None, claimed: bool) -> bool:
        """Whether the holder renews at ``now``: always while the run holds the slot, or once a hook
        has taken it over; for ``handover_seconds`` after a hand-over no hook has taken."""
        if handed_over_at is None or claimed:
            return True
        return now - handed_over_at < self.handover_seconds
