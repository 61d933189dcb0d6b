"""The ``rollway`` command. The one part of rollway/ that may reach Prefect (its client, the flows).

Sub-commands import what they need when they run, so ``rollway --help`` is quick and no
command pays for another's imports.
"""

from __future__ import annotations

import os
import sys

from cyclopts import App

app = App(name="rollway", help="Progressive delivery for ECS Fargate behind an ALB, on Prefect.")


@app.command
def demo(speed: float = 120.0, seed: int = 7, rps: float = 200.0) -> int:
    """Run both demo scenarios on the embedded AWS: a healthy canary promoted, a bad one rolled back.

    Args:
        speed: simulated seconds per wall second.
        seed: traffic simulator seed (same seed, same traffic).
        rps: total requests per simulated second across both versions.
    """
    from rollway.cli.demo import run_demo

    return run_demo(speed=speed, seed=seed, rps=rps)


@app.command
def judge(
    replay: str,
    alpha: float = 0.01,
    margin: float = 0.001,
    mode: str = "two-sample",
) -> int:
    """Dry-run the canary judge on recorded metrics (JSON Lines, one interval per line).

    Args:
        replay: the JSON Lines file.
        alpha: probability of rolling back a healthy canary.
        margin: error-rate margin tolerated when passing.
        mode: two-sample (against the baseline) or one-sample (against the SLO).
    """
    from rollway.judge.replay import replay_main

    return replay_main(replay, alpha=alpha, margin=margin, mode=mode, out=sys.stdout)


def main() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    result = app()
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
