"""Keeps a run's lease on its rollout while one long step lasts.

A run renews its lease at each analysis tick, and a shift can outlast one: it waits for ECS to
start the stage's tasks (``scale_timeout_seconds``) and for them to pass their health checks
(``healthy_timeout_seconds``), up to an hour each. Past the lease, another run could take the
rollout over while this one still scaled the canary and moved its traffic. The step is bounded by
its own timeouts, and the renewals end with it: a run that goes silent after it still loses the
rollout one lease later.
"""

from __future__ import annotations

import logging
from typing import Callable

from prefect import get_run_logger

from flows.renewing import Renewals, recovered_said, trouble_said
from rollway.environment import Environment
from rollway.ledger import LedgerError

LOOK_SECONDS = 1.0
"""How often (real seconds) the keeper looks whether a third of the lease has passed: leases are on
``Environment.wall``, which a test's or a sped-up clock may move faster than real time."""


class LeaseKeeper:
    """A context manager renewing the lease (``renew``: one write, raising a LedgerError once the
    rollout is no longer the run's) from a thread, every third of ``lease_seconds`` on the wall clock.

    A renewal DynamoDB refuses is logged and tried again a tenth of the period later (``Renewals``,
    as a rollback's claim is); a lease lost (taken over, the rollout rolled back) stops the
    renewals, and the step's next write says so."""

    def __init__(self, env: Environment, renew: Callable[[], object], lease_seconds: float,
                 log: logging.Logger | logging.LoggerAdapter | None = None) -> None:
        # The run's logger, taken here for the thread (which has no run context).
        self._log = log if log is not None else get_run_logger()
        self._targets = getattr(env, "targets", None)  # the run's names, for a refused permission
        self._renewals = Renewals(renew, lease=lease_seconds, clock=lambda: env.wall(), look=LOOK_SECONDS,
                                  lost=self._lost, trouble=self._trouble, recovered=self._recovered,
                                  name="rollway-lease")

    def _lost(self, lost: LedgerError) -> None:
        self._log.warning("this run no longer holds the rollout's lease: %s", lost)

    def _trouble(self, err: Exception, retry: float, left: float, failures: int) -> None:
        self._log.warning("%s", trouble_said("the rollout's lease", err, self._targets, retry, left, failures,
                                             "another run may take the rollout over", during="while the shift waits"))

    def _recovered(self, failures: int, lapsed: float) -> None:
        self._log.log(*recovered_said("the rollout's lease", failures, lapsed, "run"))

    def __enter__(self) -> LeaseKeeper:
        self._renewals.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._renewals.stop()
