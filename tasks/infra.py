"""Thin tasks over the InfraDeployer and InfraChecker ports: one call each.

No retries on a deploy: a failed ``cdk deploy`` stops the run so a person reads why, and
resumes it with ``from_stack``. The checklist only reads, so it is retried once, unless AWS
refused the role or its credentials: that answer comes again.
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from rollway.aws.errors import REFUSED_CODES
from rollway.checklist import Checklist
from rollway.infra import AppStacks, DeployedStack
from rollway.ports import InfraChecker, InfraDeployer
from rollway.toolchain.cdk import STALE_REMOVED, STILL_RUNNING, CdkCli
from tasks import retry

# A read the role may not make is refused again two seconds later: not asked twice.
_read_again = retry.unless(denied=REFUSED_CODES)


@task(name="list-stacks", cache_policy=NONE)
def list_stacks(deployer: InfraDeployer) -> AppStacks:
    log = get_run_logger()
    # Said before it starts: an app bundling its assets (esbuild, docker) synthesizes for minutes,
    # and with its output at debug level the run's log stood still that long.
    log.info("synthesizing the CDK app to read its stacks (cdk synth; its output is logged at debug level)")
    # Synthesizing prints warnings a person may want; at debug level, not to crowd the run's log.
    # But not that it is still running: an app bundling assets synthesizes for minutes, and the
    # run's log stood still after the line above all that time; nor that a killed run's app was removed.
    return deployer.list_stacks(on_line=lambda line: (
        log.info if line.startswith((STILL_RUNNING, STALE_REMOVED)) else log.debug)("cdk synth: %s", line))


@task(name="deploy-stack", task_run_name="deploy-{stack}", cache_policy=NONE)
def deploy_stack(deployer: InfraDeployer, stack: str, timeout_seconds: float, progress: str) -> DeployedStack:
    """Deploy one stack, logging each line of the tool's output as it comes.

    Args:
        progress: the prefix of every line, e.g. ``stack 3/8 WebordinarySQSStack``.
    """
    log = get_run_logger()
    log.info("%s: deploying", progress)
    deployed = deployer.deploy(stack, timeout_seconds=timeout_seconds, on_line=_logged(log, progress))
    log.info("%s: deployed in %.1f s", progress, deployed.seconds)
    return deployed


def _logged(log, progress: str) -> Callable[[str], None]:
    """Each line cdk prints, in the run's log after ``progress``; not its blank lines, about a
    third of what it prints, which filled the log with rows saying nothing."""
    def line_of_cdk(line: str) -> None:
        if line.strip():
            log.info("%s | %s", progress, line)

    return line_of_cdk


@task(name="cdk-bootstrap", task_run_name="bootstrap-{environment}", cache_policy=NONE)
def bootstrap(cdk: CdkCli, environment: str, timeout_seconds: float, progress: str) -> None:
    """``cdk bootstrap`` of one environment (``aws://account/region``), logging cdk's lines.

    Args:
        progress: the prefix of every line, e.g. ``bootstrap 1/2 aws://123456789012/us-west-2``.
    """
    # CdkCli's own, not a port's: bootstrapping is a CDK matter (the toolkit stack its deploys need).
    log = get_run_logger()
    log.info("%s: bootstrapping", progress)
    cdk.bootstrap(environment, timeout_seconds=timeout_seconds, on_line=_logged(log, progress))
    log.info("%s: bootstrapped", progress)


@task(name="infra-checklist", retries=1, retry_delay_seconds=2, cache_policy=NONE, retry_condition_fn=_read_again)
def run_checklist(checker: InfraChecker) -> Checklist:
    return checker.check()
