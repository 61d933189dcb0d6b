"""Set-ups no stage of a rollout could pass, told from what the preflight read (pure).

Each check returns why the rollout must not start, naming what it read and the way out, or
None. A set-up they refuse used to pass the preflight and fail later, after the canary was
deployed and took traffic: a health wait that timed out at every shift and rolled back, or a
canary the load balancer never sent a request to, every stage inconclusive for hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from rollway.bounds import seconds_said
from rollway.model import ServiceState, TargetGroup
from rollway.targets import Targets

Version = Literal["stable", "canary"]


def health_check_refusal(group: TargetGroup, named: str, healthy_timeout_seconds: float) -> str | None:
    """Why ``healthy_timeout_seconds`` is too short for the canary target group's health check.

    A new target takes traffic once it has passed one health check (the ALB guide), which comes
    up to HealthCheckIntervalSeconds after its registration and is waited for up to
    HealthCheckTimeoutSeconds. A wait for the canary's new targets shorter than that passes only
    when the check happens to come early: a shift that times out rolls the rollout back, so a
    rollout run on luck is refused. (AWS's ECS guide counts HealthyThresholdCount checks, which
    the ALB guide applies only to a target that was unhealthy: refusing on that count would
    refuse waits that pass.)

    Args:
        group: the canary target group as the router looked it up.
        named: the group as the targets name it (a name or an ARN).
        healthy_timeout_seconds: the spec's wait for the canary's new targets.
    """
    needed = group.seconds_to_healthy
    if needed is None or healthy_timeout_seconds >= needed:
        return None
    return (
        f"healthy_timeout_seconds is {seconds_said(healthy_timeout_seconds)}, but the canary target group {named} "
        f"checks a new target's health up to HealthCheckIntervalSeconds {group.interval_seconds} s after it registers "
        f"and waits HealthCheckTimeoutSeconds {group.timeout_seconds} s for the answer: a new target may need {needed} s to "
        f"pass the one check that makes it healthy, and a shift whose wait times out first rolls back. Either raise "
        f"healthy_timeout_seconds to at least {needed} (with room for a task to start answering: the default is "
        "300), or shorten the group's health check (a smaller HealthCheckIntervalSeconds or "
        "HealthCheckTimeoutSeconds). Nothing was changed"
    )


def stable_health_check_refusal(group: TargetGroup, named: str, rollback_wait_seconds: float,
                                healthy_timeout_seconds: float) -> str | None:
    """Why a rollback's wait for a healthy stable target is too short for the stable target
    group's health check.

    A rollback waits up to ``rollback_wait_seconds`` for the stable group to have a healthy
    target before it moves the traffic back. The stable service's running targets pass at once;
    one that has none by then (scaled to 0 by a decommission, its tasks replaced or crashed)
    waits for new targets, each passing one health check (``health_check_refusal``). A wait
    shorter than that check fails such a rollback with users left on the canary, when a
    rollback is most needed: a longer ``healthy_timeout_seconds`` lengthens it, and costs
    nothing where the targets are healthy already.

    Args:
        group: the stable target group as the router looked it up.
        named: the group as the targets name it (a name or an ARN).
        rollback_wait_seconds: the rollback's wait (``flows.rollback.rollback_healthy_seconds``).
        healthy_timeout_seconds: the spec's wait, which lengthens the rollback's.
    """
    needed = group.seconds_to_healthy
    if needed is None or rollback_wait_seconds >= needed:
        return None
    return (
        f"the stable target group {named} checks a new target's health up to HealthCheckIntervalSeconds "
        f"{group.interval_seconds} s after it registers and waits HealthCheckTimeoutSeconds {group.timeout_seconds} s "
        f"for the answer: a new target may need {needed} s to pass the one check that makes it healthy, but a "
        f"rollback waits {seconds_said(rollback_wait_seconds)} for a healthy stable target before it moves the traffic back "
        f"(the longer of 300 s and healthy_timeout_seconds, {seconds_said(healthy_timeout_seconds)}). A rollback that finds "
        "none (the stable service scaled to 0, or its tasks replaced) would time out and leave users on the canary. "
        f"Either raise healthy_timeout_seconds to at least {needed}, which lengthens the rollback's wait too, or "
        "shorten the stable group's health check (a smaller HealthCheckIntervalSeconds or "
        "HealthCheckTimeoutSeconds). Nothing was changed"
    )


# What goes wrong when a service is not registered in its own group, and when it is in the other's too.
_NOT_IN_OWN = {
    "canary": "the share of the traffic the rule sends to that group would never reach the version rolled out, and "
              "no stage could judge it",
    "stable": "the traffic the rule keeps on that group (and a rollback moves back to it) would not reach it",
}
_IN_OTHER = {
    "canary": "it would serve part of the stable group's traffic too, which the judge counts as the old version's",
    "stable": "the canary group's share would reach the old version too, which the judge counts as the canary's",
}


def attachment_refusal(service: ServiceState, version: Version, own: TargetGroup, own_named: str,
                       other: TargetGroup, other_named: str) -> str | None:
    """Why ``service`` (the ``version`` service) is not attached as the rollout needs it: its
    tasks registered in its own target group ``own``, and not in the other version's ``other``.

    A service attached to other groups as well (a second listener, an internal load balancer)
    is let through. None also when the service's groups were not read (``target_groups`` None).

    Args:
        service: the service as ECS described it.
        version: which of the rollout's services it is.
        own, other: its target group and the other version's, as the router looked them up.
        own_named, other_named: the same groups as the targets name them (names or ARNs).
    """
    groups = service.target_groups
    if groups is None:
        return None
    other_version = "stable" if version == "canary" else "canary"
    fix = (f"attach {service.name} to {own_named} (its loadBalancers, in its stack or with ECS UpdateService), or "
           f"name the group it is attached to as the targets' {version}_target_group. Nothing was changed")
    if own.arn not in groups:
        names = ", ".join(TargetGroup(arn=arn).name for arn in groups)
        where = (f"attached to target group{'s' if len(groups) > 1 else ''} {names}" if groups
                 else "attached to no load balancer target group")
        return (f"the {version} service {service.name} is {where}, not to the {version} target group {own_named} "
                f"({own.arn}): {_NOT_IN_OWN[version]}. Either {fix}")
    if other.arn in groups:
        return (f"the {version} service {service.name} is also attached to the {other_version} target group "
                f"{other_named} ({other.arn}): {_IN_OTHER[version]}. Detach it from {other_named}, or {fix}")
    return None


def account_refusal(targets: Targets, account: str | None) -> str | None:
    """Why the targets cannot be reached with credentials of ``account``: a target given as an
    ARN of another account (``Targets.arns``).

    Every AWS call is made with the credentials, in their account: a cluster's ARN is used by its
    name, which ECS looked up in the caller's account (a same-named cluster there was acted on,
    or ClusterNotFound came after the first writes), and a target group of another account was
    refused (AccessDenied, or not found) only once the run had begun. None when ``account`` is
    not known (STS was not reached): the calls say then.

    Args:
        targets: the run's targets.
        account: the credentials' account (STS GetCallerIdentity's, or the assumed role's).
    """
    if account is None:
        return None
    others = [(field, arn) for field, arn in targets.arns if arn.split(":")[4] != account]
    if not others:
        return None
    named = "; ".join(f"{field} {arn} is in account {arn.split(':')[4]}" for field, arn in others)
    return (f"{named}, but the AWS credentials are of account {account}: rollway makes every call in the "
            f"credentials' account, and would not reach {'them' if len(others) > 1 else 'it'}. Either run with "
            f"credentials of that account (the AWS credentials block, or its assume_role_arn), or name a target of "
            f"account {account}. Nothing was changed")


@dataclass(frozen=True)
class QueueSeen:
    """One queue of ``Targets.queues`` as SQS answered for it in the rollout's region.

    Attributes:
        arn: its QueueArn; None when SQS has no queue of that name there.
        redrive_target: a work queue's RedrivePolicy deadLetterTargetArn ("" when it has none).
        failed: why it could not be read (throttled past the retries, no answer); "" when it was.
    """

    arn: str | None = None
    redrive_target: str = ""
    failed: str = ""


def dead_letters_unseen(targets: Targets, seen: Mapping[str, QueueSeen]) -> tuple[str, bool] | None:
    """Why the watched dead-letter queues cannot be trusted to show dead letters (``dead_letter_refusal``
    says what it means), and whether that is for a queue SQS did not find; None when they can.

    Args:
        targets: the run's targets (their queues and region).
        seen: queue name -> what SQS answered for it (each work queue and each DLQ).
    """
    region = targets.region
    failed = sorted({f"{name}: {s.failed}" for name, s in seen.items() if s.failed})
    if failed:
        return f"SQS did not answer the check that the watched queues exist in {region} ({'; '.join(failed)})", False
    problems: list[str] = []
    for queue in targets.queues:
        work, dlq = seen.get(queue.name, QueueSeen()), seen.get(queue.dlq_name, QueueSeen())
        if dlq.arn is None and work.arn is None:
            problems.append(f"SQS found neither the work queue {queue.name} nor its dead-letter queue "
                            f"{queue.dlq_name} in {region}")
        elif dlq.arn is None:
            problems.append(f"SQS did not find the dead-letter queue {queue.dlq_name} (dlq_name of work queue "
                            f"{queue.name}) in {region}")
        elif work.arn is None:
            problems.append(f"SQS did not find the work queue {queue.name} in {region}")
        elif work.redrive_target != dlq.arn:
            sends = (f"redrives its failures to {work.redrive_target}" if work.redrive_target
                     else "has no RedrivePolicy (its failures never reach a dead-letter queue)")
            problems.append(f"the work queue {queue.name} {sends}, not to its dlq_name {queue.dlq_name} "
                            f"({dlq.arn}), whose depth the guardrail watches")
    if not problems:
        return None
    unfound = any(seen.get(name, QueueSeen()).arn is None for q in targets.queues for name in (q.name, q.dlq_name))
    if unfound:
        # Its error says "does not exist" for a queue the credentials may not reach as well:
        # claimed as missing, it sent people to look for a queue that is there.
        problems.append("SQS says a queue does not exist both when it is not there and when these credentials may not "
                        "reach it (a queue policy that does not let them, a queue of another account)")
    return "; ".join(problems), unfound


def dead_letter_refusal(targets: Targets, seen: Mapping[str, QueueSeen], *, run_again: str | None = None) -> str | None:
    """Why the dead-letter queues the rollout watches cannot be trusted to show dead letters: a
    work queue or its DLQ that does not exist in ``Targets.region``, a work queue whose
    RedrivePolicy sends its failures elsewhere, or a queue SQS did not answer for; None if none.

    CloudWatch answers a queue it has no metrics of (a misspelt ``dlq_name``, a deleted queue, a
    queue of another region) with no data, which the guardrail reads as an empty DLQ: it would
    watch nothing for the whole rollout, and say nothing.

    Checked again before each later weekly phase and on each resume (``run_again``): a week
    passes between phases, and a queue deleted or re-deployed meanwhile left the guardrail
    blind for the rest of the rollout, the start's check long passed.

    Args:
        targets: the run's targets (their queues and region).
        seen: queue name -> what SQS answered for it (each work queue and each DLQ).
        run_again: the flow the refusal says to run again, for a rollout under way (whose start
            may have checked its queues, or not: one started before that check); None at a rollout's start.
    """
    region = targets.region
    again = "start the rollout again" if run_again is None else f"run {run_again} again (the traffic stays where it is)"
    unseen = dead_letters_unseen(targets, seen)
    if unseen is None:
        return None
    found, unfound = unseen
    if any(s.failed for s in seen.values()):
        return (f"{found}: a dead-letter queue that is not there reads as an empty one, and the DLQ-depth guardrail "
                f"would watch nothing. Nothing was changed; {again} once SQS answers")
    said = (f"{found}. CloudWatch has no messages to show for a dead-letter queue that is not there "
            "or that no failure reaches, which reads as an empty one: the DLQ-depth guardrail would watch nothing "
            f"for the {'whole' if run_again is None else 'rest of the'} rollout. ")
    way_out = (f"fix the queue names in the targets block's queues (a typo, or a queue of another region: the "
               f"rollout's region is {region}), or deploy the queues (the infra flow) with that redrive policy"
               f"{', or let the credentials reach them' if unfound else ''}")
    none = "a service that reads no queue lists none (queues: [] in the targets block)"
    if run_again is None:
        return f"{said}Either {way_out}; {none}. Nothing was changed"
    # Not said to have passed at the start: a rollout started before the start checked its queues
    # (weekly ones run for weeks) meets this check first here, its dlq_name maybe misspelt all along.
    return (f"{said}Nothing was changed, and the traffic stays where it is. Since the rollout started a queue may have "
            "been deleted, had its policy changed or been deployed again without that redrive policy, or the targets "
            "block's queues were edited; a rollout started before rollway checked the queues at a rollout's start may "
            f"have named them wrong from the start. Either {way_out}, and run {run_again} again; or roll the rollout "
            f"back (`rollway abort`); {none}")
