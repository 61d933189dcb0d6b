"""Which of the targets block's names AWS does not know, for a command that found no rollout.

With no rollout in the ledger, `rollway status` and `promote` said only "no rollout recorded" and
how to start one, also when the block named a load balancer, cluster or service that does not
exist (a misspelling, another region): the person started a rollout that could only fail. These
reads are made only then, read-only, a handful of describe calls at most.
"""

from __future__ import annotations

from typing import Any, Callable

from rollway.targets import Targets

# The targets fields whose names the commands act on, in the order a person fixes them.
_NAMED = ("load_balancer", "stable_target_group", "canary_target_group", "cluster", "stable_service",
          "canary_service")


def unknown_targets(targets: Targets, weights: Callable[[], object], deployer: Any) -> list[str]:
    """The names AWS does not know, each with its field: ``load balancer 'x' (load_balancer)``.

    ``weights``: a read of the load balancer's weights (the TrafficRouter port's ``get_weights``; an
    AlbRouter resolves the load balancer, its listener, target groups and rule, stopping at the first
    it does not find, then reads the weights); ``deployer`` (an EcsDeployer, or None) describes the
    two services, which names the cluster when that is what is missing. A read that fails for
    another reason (a refused permission, no connection) says nothing here: the command's own
    message stands.
    """
    from rollway.aws.errors import TargetNotFound

    unknown: list[str] = []
    checks = [weights]
    if deployer is not None:
        checks += [lambda: deployer.describe(targets.stable_service), lambda: deployer.describe(targets.canary_service)]
    for check in checks:
        try:
            check()
        except TargetNotFound as missing:
            # Only a name the block holds: a missing listener rule is not a misspelt name.
            fields = [field for field in _NAMED if getattr(targets, field) == missing.name]
            said = f"{missing.kind} {missing.name!r} ({' and '.join(fields)})"
            if fields and said not in unknown:  # a missing cluster is found by both services' reads
                unknown.append(said)
        except Exception:  # noqa: BLE001 - only what AWS says it does not know is reported here
            continue
    return unknown


def unknown_message(targets: Targets, unknown: list[str], block: str | None, unrecorded: str) -> str:
    """What to say instead of "no rollout recorded" when the block names what AWS does not know."""
    where = f"the targets block {block!r}" if block else "the targets block"
    return (f"AWS does not know {', '.join(unknown)} in region {targets.region}, named by {where}: fix the name (or "
            f"the block's region), or deploy the infrastructure first (the deploy_infrastructure flow); {unrecorded}")
