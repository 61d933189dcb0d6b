"""Tasks called while their flow run is paused."""

from __future__ import annotations


def run_as(task, inline: bool):
    """``task`` as a task run of the flow run, or its function alone when ``inline``: while the
    run is paused for an answer the Prefect server runs none of its tasks ("The flow is paused,
    new tasks can execute after resuming"), and the looks made then read AWS directly."""
    return task.fn if inline else task
