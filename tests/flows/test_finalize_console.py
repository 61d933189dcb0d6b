"""What `rollway finalize` shows on the terminal while it runs the finalize flow in its process."""

from __future__ import annotations

import logging

from tests.flows.test_finalize import promote_by_hand, saved_blocks


def test_rollway_finalize_leaves_prefect_s_task_completions_off_the_terminal(aws, monkeypatch):
    """Prefect's console printed a "Task run '...' - Finished in state Completed()" line for every
    read and write the flow made, between the flow's own lines that say each step as it happens and
    each wait while it lasts: most of what a person saw was Prefect's bookkeeping. They are left off
    the terminal as the demo leaves them; the run's log in the Prefect API keeps them."""
    from prefect.logging.handlers import PrefectConsoleHandler

    from rollway.cli import app

    blocks = saved_blocks(aws)
    promote_by_hand(aws, "start", "promote", "watched")
    consoles = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    assert consoles, logging.getLogger().handlers
    shown: list[logging.LogRecord] = []
    for console in consoles:
        monkeypatch.setattr(console, "emit", shown.append)
    options = ["--actor", "carol", "--targets-block", blocks, "--credentials-block", blocks]
    assert app(["finalize", *options], result_action="return_value") == 0
    said = [(record.name, record.getMessage()) for record in shown]
    assert not [m for name, m in said if name == "prefect.task_runs" and m.startswith("Finished in state Completed(")], said
    # The flow's own lines stay: each step as it happens.
    assert any(m.startswith("finalize: recorded 'finalize-start'") for _, m in said), said
