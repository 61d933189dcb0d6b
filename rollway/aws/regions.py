"""AWS's regions as the installed botocore lists them, read offline from its endpoint data.

A region that does not exist (``us-est-1``) was found only by the first AWS call, as a
connection error to an endpoint no DNS knows, after the run had started; its name is checked
against these lists before any call instead.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

import botocore
import botocore.loaders


@dataclass(frozen=True)
class Partition:
    """One AWS partition (aws, aws-cn, aws-us-gov, ...): the form of its regions' names, and the
    regions botocore lists in it."""

    name: str
    pattern: re.Pattern[str]
    regions: frozenset[str]


@functools.cache
def partitions() -> tuple[Partition, ...]:
    """The partitions of botocore's endpoint rules data (``partitions.json``, from which botocore
    resolves every endpoint): no network, read once per process."""
    data = botocore.loaders.create_loader().load_data("partitions")
    return tuple(Partition(p["id"], re.compile(p["regionRegex"]), frozenset(p["regions"])) for p in data["partitions"])


def unknown_region(region: str, *, custom_endpoint: bool) -> str | None:
    """Why ``region`` is not a region of AWS clients can reach (the reason alone, without the
    name), or None when it is one.

    A name in the form of an AWS partition's regions (``us-est-1`` is of the aws partition's
    form) must be one that partition has, whatever the endpoint: AWS-compatible endpoints (moto,
    LocalStack, a proxy) accept AWS's own names, and a real account's endpoint, such as a VPC
    endpoint, signs for the region given. A name in no partition's form is left to a
    ``custom_endpoint``, which may serve regions of its own; without one, clients would be sent
    to an AWS endpoint that does not exist.

    A region AWS opened after the installed botocore was released is unknown to it: the reason
    says to upgrade boto3 then.
    """
    for partition in partitions():
        if partition.pattern.fullmatch(region):
            if region in partition.regions:
                return None
            hint = _closest(region, partition.regions)
            return (f"the {partition.name} partition has no such region as botocore {botocore.__version__} lists "
                    f"them{hint}; for a region AWS opened since, upgrade boto3")
    if custom_endpoint:
        return None
    return ("its name is of no AWS partition's form (us-west-2, us-gov-west-1, cn-north-1, ...), and only an "
            "AWS-compatible endpoint (the AWS credentials' aws_client_parameters.endpoint_url) could serve it")


def _closest(region: str, regions: frozenset[str]) -> str:
    """" (did you mean us-east-1 or us-west-1?)": the regions closest to ``region``, or "" when
    none is close or more than two are equally so (ap-southeast-9: a guess would be a lottery)."""
    scored = [(difflib.SequenceMatcher(None, region, known).ratio(), known) for known in sorted(regions)]
    best = max((score for score, _ in scored), default=0.0)
    closest = [known for score, known in scored if score == best]
    if best < 0.75 or len(closest) > 2:
        return ""
    return f" (did you mean {' or '.join(closest)}?)"
