"""Helpers for tests on the embedded AWS: a rollout environment with traffic from the simulator, and
the blocks, images, stacks and queues tests set up or look for."""

from __future__ import annotations

import hashlib
import json
import math
import time
from contextlib import contextmanager
from typing import Callable, TypeVar
from uuid import uuid4

from botocore.exceptions import ClientError
from prefect import flow
from prefect.settings import PREFECT_API_URL

from blocks.credentials import credentials_for_endpoint
from blocks.targets import RollwayTargets
from rollway.aws.environment import aws_environment
from rollway.clock import ClockSettings, ScaledClock
from rollway.sim.profiles import BehaviourProfile
from rollway.sim.topology import put_release_image
from rollway.sim.traffic import TrafficSimulator

HEALTHY = BehaviourProfile(error_probability=0.001, median_ms=120, sigma=0.5)
SPEED = 240.0  # simulated seconds per wall second
T = TypeVar("T")


# How long a read of the paced clock waits for the simulator before it reads as if it had kept
# up (wall seconds): far past any lag under load, short of hanging a test on a dead simulator.
CATCH_UP_SECONDS = 60.0


class PacedClock(ScaledClock):
    """The rollout clock of a test on the simulator: a read never passes a period it has not published.

    At SPEED a period of the simulator is half a wall second. Its thread publishes a period once
    the clock has passed its end, and under load (CI's three workers on two cores) it fell more than
    a period behind: a judge tick read settled periods that held nothing yet, "no data", and the
    test's verdict changed. Here ``now()`` waits until the simulator has published every period
    ending by then, and answers the time it was asked at; a sleep is a sleep of the scaled clock.
    Readings stay the scaled clock's (those of every other clock on the same settings, the run's
    hooks' and ledger stamps), only later when the simulator lags.
    """

    def __init__(self, settings: ClockSettings, simulator: TrafficSimulator) -> None:
        super().__init__(speed=settings.speed, anchor=settings.anchor)
        self._simulator = simulator
        self.paced = True  # off once the simulator stops: nothing would publish the next period
        self.waited = 0.0  # wall seconds reads waited for the simulator, for a test to see

    def now(self) -> float:
        asked = super().now()
        began = time.monotonic()
        while self.paced and time.monotonic() - began < CATCH_UP_SECONDS:
            published_until = self._simulator.next_tick_end
            # A period ending at ``asked`` is read as whole: it must be out too.
            if published_until is not None and published_until > asked:
                break
            time.sleep(0.005)
        self.waited += time.monotonic() - began
        return asked


@contextmanager
def simulated(aws, canary_error_rate: float, *, tag: str = "2.0.0", rps: float = 1000.0, seed: int = 3):
    """Yields (env, image) with the simulator running; the image fails at ``canary_error_rate``.

    ``env``'s clock is a PacedClock: what the rollout reads of the metrics does not depend on how
    busy the machine is."""
    with simulation(aws, canary_error_rate, tag=tag, rps=rps, seed=seed) as (env, image, _):
        yield env, image


@contextmanager
def simulation(aws, canary_error_rate: float, *, tag: str = "2.0.0", rps: float = 1000.0, seed: int = 3):
    """As ``simulated``, yielding the simulator too (env, image, simulator): a test may change how
    the image behaves while the rollout runs (``TrafficSimulator.set_profile``)."""
    settings = ClockSettings(speed=SPEED, anchor=time.time())
    image = put_release_image(aws.get_client, aws.targets, tag)  # in ECR, where the rollout pins it
    simulator = TrafficSimulator(
        aws.get_client, aws.targets, aws.topology, settings.build(),
        profiles={image: HEALTHY.model_copy(update={"error_probability": canary_error_rate})},
        default_profile=HEALTHY, total_rps=rps, seed=seed,
        # Its first period is the one the clock is in now: none the rollout can read goes unpublished.
        start=math.floor(settings.build().now() / 60) * 60,
    )
    with paced_environment(aws.get_client, aws.targets, settings, simulator) as env, simulator:
        yield env, image, simulator


@contextmanager
def paced_environment(get_client, targets, settings: ClockSettings, simulator: TrafficSimulator):
    """The rollout environment on ``get_client`` whose clock is a PacedClock on ``simulator``: a
    test that runs its own simulator reads the metrics it would read on an idle machine. Enter the
    simulator inside it (its pacing ends before the simulator stops)."""
    clock = PacedClock(settings, simulator)
    try:
        yield aws_environment(get_client, targets, clock)
    finally:
        clock.paced = False


def in_a_flow_run(name: str, body: Callable[[], T]) -> T:
    """``body()`` called inside a flow run named ``name``, as a deployment's run would call it.

    What the body uses (the embedded account, its clients, a fake publisher) reaches it by
    closure, not as flow parameters: Prefect records a flow run's parameters, and for an account
    holding a client factory that meant deep-copying boto3's session and every client it made,
    0.2-1 s a run (about 40 s of the suite's CPU), only to give up on a lock and record a
    placeholder.
    """
    return flow(name=name)(body)()


def put_image(aws, tag: str, layer: str) -> str:
    """Put an image manifest into the targets' ECR repository under ``tag``.

    Args:
        aws: The embedded account.
        tag: The tag to put it under.
        layer: One hex digit; its layer digest, so the image's digest, differs with it.

    Returns:
        The image's digest (``sha256:...``).
    """
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7,
                   "digest": "sha256:" + "c" * 64},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 7,
                    "digest": "sha256:" + layer * 64}],
    })
    answer = aws.get_client("ecr").put_image(repositoryName=aws.targets.ecr_repository, imageManifest=manifest,
                                             imageTag=tag)
    return answer["image"]["imageId"]["imageDigest"]


def put_image_index(aws, tag: str, platforms: dict[str, str]) -> str:
    """Put a multi-platform image under ``tag``: an index listing one image per platform.

    Args:
        aws: The embedded account.
        tag: The index's tag.
        platforms: each platform image's own tag (``1.0.0-amd64``) -> its layer digit (see ``put_image``).

    Returns:
        The index's digest.
    """
    children = [(put_image(aws, own_tag, layer), own_tag.rsplit("-", 1)[-1]) for own_tag, layer in platforms.items()]
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 7, "digest": digest,
                       "platform": {"architecture": arch, "os": "linux"}} for digest, arch in children],
    })
    answer = aws.get_client("ecr").put_image(repositoryName=aws.targets.ecr_repository, imageManifest=index,
                                             imageTag=tag,
                                             imageDigest=f"sha256:{hashlib.sha256(index.encode()).hexdigest()}")
    return answer["image"]["imageId"]["imageDigest"]


def queue_exists(aws, queue: str) -> bool:
    """Whether an SQS queue named ``queue`` exists in the embedded account."""
    try:
        aws.get_client("sqs").get_queue_url(QueueName=queue)
    except ClientError:
        return False
    return True


_SAVED: dict[tuple[str, ...], str] = {}


def saved_blocks(aws, prefix: str = "test", *, fresh: bool = False) -> str:
    """Targets and credentials blocks for the embedded AWS, saved under one name.

    Blocks of the same content on the same Prefect API are saved once per session and their name
    handed out again: Prefect's Block.save builds the block's whole JSON schema once per field,
    0.3-1 s per pair of blocks on a quiet machine, several seconds under load. No flow writes a
    block; a test that changes the saved blocks asks for ``fresh`` ones, a name no other test uses.

    Returns:
        The name of both blocks: pass it as ``targets_block`` and ``aws_credentials_block``.
    """
    key = (str(PREFECT_API_URL.value()), prefix, aws.endpoint_url, aws.targets.model_dump_json())
    if not fresh and key in _SAVED:
        return _SAVED[key]
    name = f"{prefix}-{uuid4().hex[:8]}"
    RollwayTargets(**aws.targets.model_dump()).save(name, overwrite=True)
    credentials_for_endpoint(aws.endpoint_url, aws.targets.region).save(name, overwrite=True)
    if not fresh:
        _SAVED[key] = name
    return name


def account_blocks(aws, monkeypatch, prefix: str, **endpoints: str) -> str:
    """Targets and credentials blocks as for a real account (no endpoint_url, no client config: the
    rollout's limits), saved under one new name: their calls go to the embedded AWS, those of the
    services named in ``endpoints`` (botocore's service-id suffix: ``CLOUDWATCH="http://..."``) to
    the endpoint given."""
    from prefect_aws import AwsCredentials

    name = f"{prefix}-{uuid4().hex[:8]}"
    RollwayTargets(**aws.targets.model_dump()).save(name)
    AwsCredentials(aws_access_key_id="testing", aws_secret_access_key="testing",
                   region_name=aws.targets.region).save(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint_url)
    for service, url in endpoints.items():
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", url)
    return name


def inbox(aws) -> str:
    """An SQS queue subscribed to the alert topic."""
    sqs = aws.get_client("sqs")
    url = sqs.create_queue(QueueName="test-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.get_client("sns").subscribe(TopicArn=aws.topology.topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def deployed_stacks(aws) -> None:
    """The targets' CloudFormation stacks, each holding one resource (what cdk would have left)."""
    cloudformation = aws.get_client("cloudformation")
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    for stack in aws.targets.stacks:
        cloudformation.create_stack(StackName=stack, TemplateBody=body)


def received_subjects(aws, url: str) -> list[str]:
    sqs = aws.get_client("sqs")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"])["Subject"] for m in got]
