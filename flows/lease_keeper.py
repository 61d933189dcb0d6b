"""Keeps a run's lease on its rollout while one long step lasts.

A run renews its lease at each analysis tick, and a shift can outlast one: it waits for ECS to
start the stage's tasks (``scale_timeout_seconds``) and for them to pass their health checks
(``healthy_timeout_seconds``), up to an hour each. Past the lease, another run could take the
rollout over while this one still scaled the canary and moved its traffic. The step is bounded by
its own timeouts, and the renewals end with it: a run that goes silent after it still loses the
rollout one lease later.
"""

from __future__ import annotations

import threading
from typing import Callable

from prefect import get_run_logger

from rollway.environment import Environment
from rollway.ledger import LedgerError

LOOK_SECONDS = 1.0
"""How often (real seconds) the keeper looks whether a third of the lease has passed: leases are on
``Environment.wall``, which a test's or a sped-up clock may move faster than real time."""


class LeaseKeeper:
    """A context manager renewing the lease (``renew``: one write, raising a LedgerError once the
    rollout is no longer the run's) from a thread, every third of ``lease_seconds`` on the wall clock.

    A renewal DynamoDB refuses is logged and tried again at the next look; a lease lost (taken
    over, the rollout rolled back) stops the renewals, and the step's next write says so."""

    def __init__(self, env: Environment, renew: Callable[[], object], lease_seconds: float) -> None:
        self.env, self.renew, self.every = env, renew, lease_seconds / 3
        self._stop = threading.Event()
        self._log = get_run_logger()  # the run's logger, for the thread (which has no run context)
        self._thread = threading.Thread(target=self._run, name="rollway-lease", daemon=True)

    def _run(self) -> None:
        renewed = self.env.wall()
        while not self._stop.wait(LOOK_SECONDS):
            if self.env.wall() - renewed < self.every:
                continue
            try:
                self.renew()
            except LedgerError as lost:
                self._log.warning("this run no longer holds the rollout's lease: %s", lost)
                return
            except Exception as err:  # noqa: BLE001 - storage trouble: the next look tries again
                self._log.warning("could not renew the rollout's lease while the shift waits: %s", err)
                continue
            renewed = self.env.wall()

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        # A renewal under way finishes first: none may land after the step's own next write.
        self._thread.join()
