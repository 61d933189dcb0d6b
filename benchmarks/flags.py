"""Cached feature-flag evaluations per second on one core, and DynamoDB calls per evaluation.

Run: ``python -m benchmarks.flags`` (or ``python benchmarks/flags.py``). It pins itself to
one CPU, measures a plain sha256 bucketing loop as the baseline in the same run, then
``FlagEvaluator.is_enabled`` on a warm cache over a DynamoFlagStore backed by moto
(in-process), counting every DynamoDB call with a botocore event hook. Goals (issue 5):
>= 500,000 cached evaluations/s and 0 DynamoDB calls per cached evaluation. Exits 1 if a
goal is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from rollway.aws.flags import DynamoFlagStore  # noqa: E402
from rollway.flags import FlagEvaluator, FlagState  # noqa: E402
from rollway.targets import Targets  # noqa: E402

GOAL_PER_SECOND = 500_000
FEATURE = "use_sqs_architecture"


def best_rates(loops: dict[str, Callable[[], None]], evaluations: int, repeats: int) -> dict[str, float]:
    """Evaluations per second of each loop's fastest run.

    The loops take turns, so a burst of load from elsewhere on the machine slows one run of
    each rather than every run of one.
    """
    best = dict.fromkeys(loops, float("inf"))
    for _ in range(repeats):
        for name, loop in loops.items():
            start = time.perf_counter()
            loop()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: evaluations / seconds for name, seconds in best.items()}


def pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to CPU {core}"


def flag_store(targets: Targets) -> tuple[DynamoFlagStore, list[str]]:
    """A DynamoFlagStore on moto with one flag at 25%, and the list its DynamoDB calls fill."""
    client = boto3.client(
        "dynamodb", region_name=targets.region, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    client.create_table(
        TableName=targets.flags_table,
        KeySchema=[{"AttributeName": "feature", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "feature", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    calls: list[str] = []
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    store = DynamoFlagStore(client, targets)
    store.put(FlagState(feature=FEATURE, enabled=True, percentage=25), expected_version=0, actor="bench", now=0.0)
    calls.clear()  # count from here: only what evaluation costs
    return store, calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="distinct user ids")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the user ids per timed run")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each loop; the fastest counts")
    args = parser.parse_args(argv)

    where = pin_to_one_core()
    users = [f"user-{i:07d}" for i in range(args.users)]
    evaluations = len(users) * args.rounds
    threshold = 2500

    def baseline() -> None:
        sha256 = hashlib.sha256
        for _ in range(args.rounds):
            for user in users:
                int.from_bytes(sha256(f"v1:{FEATURE}:{user}".encode()).digest()[:8], "big") % 10_000 < threshold

    with mock_aws():
        store, calls = flag_store(Targets())
        # A TTL longer than the run: this measures the cached path, which is the point.
        flags = FlagEvaluator(store, ttl_seconds=3600)
        flags.is_enabled(FEATURE, users[0])  # warms the cache: one GetItem
        warm_calls = len(calls)
        is_enabled = flags.is_enabled

        def cached() -> None:
            for _ in range(args.rounds):
                for user in users:
                    is_enabled(FEATURE, user)

        rates = best_rates({"baseline": baseline, "cached": cached}, evaluations, args.repeats)
        base_rate, cached_rate = rates["baseline"], rates["cached"]
        timed_calls = len(calls) - warm_calls
        share = sum(is_enabled(FEATURE, u) for u in users) / len(users)

    per_eval = timed_calls / (evaluations * args.repeats)
    print(f"feature-flag benchmark: {len(users):,} user ids x {args.rounds} rounds, best of {args.repeats}, {where}")
    print(f"  baseline, plain sha256 bucketing loop:     {base_rate:>12,.0f} evaluations/s")
    print(f"  cached FlagEvaluator.is_enabled (25% flag): {cached_rate:>12,.0f} evaluations/s "
          f"({cached_rate / base_rate:.2f}x baseline; goal >= {GOAL_PER_SECOND:,}/s)")
    print(f"  DynamoDB calls per cached evaluation:       {per_eval:>12g} "
          f"({timed_calls} calls in {evaluations * args.repeats:,} evaluations; {warm_calls} {calls[:warm_calls]} to warm the cache)")
    print(f"  share of users on at 25%:                   {share:>12.4f}")
    met = cached_rate >= GOAL_PER_SECOND and timed_calls == 0
    print("  goals met" if met else "  GOAL MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
