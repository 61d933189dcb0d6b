"""Orchestration overhead and AWS call counts of the canary and rollback flows, on the embedded AWS.

Prints:
  1. orchestration overhead per stage, excluding bake (wall time not spent waiting on the
     rollout clock), for a 4-stage canary on Prefect + moto server + traffic simulator;
  2. the AWS calls a rollback makes before the ALB read-back shows 100% stable, and whether
     ModifyRule is its first write (at most 6 calls);
  3. CloudWatch GetMetricData calls per analysis tick;
  4. `rollway demo` wall time (skip with --no-demo).

Run: .venv/bin/python benchmarks/overhead.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

READ_PREFIXES = ("Describe", "Get", "List")
# DescribeServices x2, DescribeTargetHealth, DescribeRules, ModifyRule, the read-back's DescribeRules.
ROLLBACK_CALLS_GOAL = 6


class MeteredClock:
    """The rollout clock, counting the wall seconds spent sleeping on it (the bake)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.slept_wall = 0.0
        self.ticks = 0

    def now(self) -> float:
        return self.inner.now()

    def sleep(self, seconds: float) -> None:
        started = time.perf_counter()
        self.inner.sleep(seconds)
        self.slept_wall += time.perf_counter() - started
        self.ticks += 1


class CallLog:
    """Every AWS API call made through ``get_client``'s clients of ``services``, in order, those of
    the reads bounded on clients of their own (``get_client.reading``) included: a rollback's
    read-back of the weights goes through one, and without it the log missed it."""

    def __init__(self, get_client, services: tuple[str, ...]) -> None:
        self.calls: list[tuple[str, str]] = []
        self._services = services
        self._attached: set[int] = set()
        self._attach(get_client)
        reading = get_client.reading

        def logged_reading(seconds: float):
            clients = reading(seconds)
            self._attach(clients)
            return clients

        get_client.reading = logged_reading  # before the environment takes it

    def _attach(self, get_client) -> None:
        for client in (get_client(s) for s in self._services):
            if id(client) in self._attached:
                continue
            self._attached.add(id(client))
            service = client.meta.service_model.service_name
            client.meta.events.register(
                f"before-call.{client.meta.service_model.service_id.hyphenize()}.*",
                lambda model, _s=service, **_: self.calls.append((_s, model.name)),
            )

    def clear(self) -> None:
        self.calls.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speed", type=float, default=300.0, help="simulated seconds per wall second")
    parser.add_argument("--no-demo", action="store_true", help="skip timing `rollway demo`")
    args = parser.parse_args()

    from prefect import flow

    from blocks.credentials import client_factory, credentials_for_endpoint
    from flows.canary import run_canary
    from flows.rollback import execute_rollback
    from rollway.approvals import auto_approve
    from rollway.aws.environment import aws_environment
    from rollway.clock import ClockSettings
    from rollway.cli.demo import demo_spec
    from rollway.model import Weights
    from rollway.sim.profiles import BehaviourProfile
    from rollway.sim.server import EmbeddedAws
    from rollway.sim.topology import provision, put_release_image
    from rollway.sim.traffic import TrafficSimulator
    from rollway.spec import Analysis
    from rollway.targets import Targets

    targets = Targets()

    @flow(name="benchmark-canary")
    def canary_run(env, spec):
        # Timed inside the run: the API's start-up and the run's own creation are paid once
        # per run, not per stage.
        started = time.perf_counter()
        # A healthy stage the judge cannot yet call (an unlucky draw) pauses for a person; here
        # the "person" accepts at once, so the figure is orchestration, not the judge's luck.
        result = run_canary(env, spec, auto_approve("benchmark"))
        return result, time.perf_counter() - started

    @flow(name="benchmark-warm-up")
    def warm_up():
        return None

    @flow(name="benchmark-rollback")
    def rollback_run(env):
        return execute_rollback(env, "benchmark", actor="benchmark")

    with EmbeddedAws() as aws:
        get_client = client_factory(credentials_for_endpoint(aws.endpoint_url, targets.region))
        topology = provision(get_client, targets)
        log = CallLog(get_client, ("elbv2", "ecs", "cloudwatch", "sns", "dynamodb"))
        settings = ClockSettings(speed=args.speed, anchor=time.time())
        clock = MeteredClock(settings.build())
        env = aws_environment(get_client, targets, clock)
        per_tick: list[int] = []  # GetMetricData calls made by each observe (one per analysis tick)
        history: list[int] = []  # ... and by each read of the baseline's hour before a stage
        source = env.metrics
        history_seconds = Analysis().calibration_seconds

        class CountingMetrics:
            def observe(self, start: float, end: float):
                before = sum(1 for _, op in log.calls if op == "GetMetricData")
                observation = source.observe(start, end)
                made = sum(1 for _, op in log.calls if op == "GetMetricData") - before
                (history if end - start == history_seconds else per_tick).append(made)
                return observation

        env.metrics = CountingMetrics()
        image = put_release_image(get_client, targets, "2.0.0")  # in ECR, where the rollout pins its tag
        healthy = BehaviourProfile(error_probability=0.001, median_ms=120, sigma=0.5)
        # The post-promotion window is watching, not stage work: leave it out of the per-stage figure.
        spec = demo_spec(image).model_copy(update={"monitor_seconds": 0})
        simulator = TrafficSimulator(get_client, targets, topology, settings.build(), profiles={},
                                     default_profile=healthy, total_rps=1000, seed=1)

        warm_up()  # starts the Prefect API (ephemeral server) outside the measurement
        with simulator:
            log.clear()
            result, wall = canary_run(env, spec)
        stages = len(result.stages)
        overhead = (wall - clock.slept_wall) / stages
        gmd, ticks = sum(per_tick), len(per_tick)
        accepted = sum(1 for s in result.stages if s.decision.startswith("accepted"))
        print(f"canary: {stages} stages, outcome {result.outcome}, wall {wall:.2f} s, "
              f"of which waiting on the rollout clock {clock.slept_wall:.2f} s; "
              f"{accepted} stage(s) ended inconclusive and were accepted at the pause")
        print(f"orchestration overhead per stage (excluding bake): {overhead:.3f} s   (goal < 1 s)")
        print(f"CloudWatch GetMetricData calls per analysis tick: at most {max(per_tick)} "
              f"({gmd} calls over {ticks} ticks; a tick before the first whole period makes none)   (goal 1); "
              f"plus {sum(history)} call(s) in {len(history)} read(s) of the hour before each stage (the judge's calibration, the guardrail's load-balancer 5xx background)")

        # Rollback from 25% canary: which calls happen before the ALB reads back 100/0?
        env.router.set_weights(Weights.canary_at(25))
        log.clear()
        rollback_run(env)
        calls = [op for _, op in log.calls]
        modify = calls.index("ModifyRule")
        readback = calls.index("DescribeRules", modify)
        before = calls[: readback + 1]
        writes = [op for op in before if not op.startswith(READ_PREFIXES)]
        print(f"rollback: {len(before)} AWS calls until the ALB read-back shows 100% stable: {', '.join(before)}")
        print(f"first write of the rollback: {writes[0]}   (goal: ModifyRule)")
        missed = [goal for goal, met in (
            ("the canary was promoted", result.outcome == "promoted"),
            ("overhead per stage < 1 s", overhead < 1.0),
            ("at most 1 GetMetricData per tick", max(per_tick) <= 1),
            ("ModifyRule is the rollback's first write", writes[0] == "ModifyRule"),
            # The write's own DescribeRules gives the weights it moves the traffic from: no read of their own.
            (f"at most {ROLLBACK_CALLS_GOAL} AWS calls before the rollback's read-back", len(before) <= ROLLBACK_CALLS_GOAL),
        ) if not met]

    if not args.no_demo:
        started = time.perf_counter()
        done = subprocess.run([str(ROOT / ".venv" / "bin" / "rollway"), "demo"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        took = time.perf_counter() - started
        print(f"`rollway demo` wall time: {took:.1f} s, exit {done.returncode}   (goal < 60 s)")
        if done.returncode != 0 or took >= 60:
            missed.append("`rollway demo` exits 0 within 60 s")
    # A missed goal fails the run, so nobody reads a figure off a benchmark that did not meet it.
    for goal in missed:
        print(f"MISSED: {goal}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
