"""`rollway status` of a rollout whose run stopped renewing its lease (its worker died mid-stage),
on the real ledger (the embedded AWS) and the Prefect harness.

Status said "stage 1/3 (5%), baking" and "owner run-1, lease until <a time long past> (wall
clock)": nothing said that no run drove the rollout any more, with users on the canary and no
judge watching it, nor what to do, where the rollout report said the lease had lapsed.
"""

from __future__ import annotations

import time

import rollway.cli.ops as ops
from rollway.aws.ledger import DynamoLedger
from rollway.ledger import begin_rollback, wall_utc
from tests.flows.moto_env import saved_blocks
from tests.flows.test_reports_flow import start_at_five_percent


def status_out(aws, capsys) -> str:
    """What `rollway status` prints."""
    blocks = saved_blocks(aws, "status-lease")
    capsys.readouterr()
    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
    return capsys.readouterr().out


def status_rows(aws, capsys, out: str | None = None) -> dict[str, str]:
    """`rollway status`'s rows (of ``out``, what it printed), by name, each on one line."""
    out = status_out(aws, capsys) if out is None else out
    return {line[:13].strip(): " ".join(line[13:].split()) for line in out.splitlines() if line[:13].strip()}


def test_status_says_the_owners_lease_lapsed_and_what_takes_the_rollout_over(aws, capsys):
    record, _ = start_at_five_percent(aws)  # its run's 60 s lease ran out ten minutes ago
    said = status_rows(aws, capsys)
    lapsed = wall_utc(record.created_at + 60)
    assert said["owner"].startswith(f"run-1, whose lease lapsed at {lapsed}: no run drives the rollout (its run "
                                    "stopped or died; nothing judges the canary)"), said
    assert said["owner"].endswith("a progressive_rollout run of the same image takes it over and resumes it, or "
                                  "`rollway abort` rolls it back"), said
    assert said["stage"] == "1/3 (5%), not passed; no run bakes it (its lease lapsed: owner below)", said


def test_status_of_a_rollout_whose_run_renews_its_lease_says_it_bakes(aws, capsys):
    start_at_five_percent(aws)
    now = time.time()
    held = DynamoLedger(aws.get_client("dynamodb"), aws.targets).acquire(
        aws.targets.canary_service, owner="run-1", now=now, lease_seconds=600)
    said = status_rows(aws, capsys)
    assert said["owner"] == f"run-1, lease until {wall_utc(held.lease_expires)}", said
    assert said["stage"] == "1/3 (5%), baking", said


def test_status_of_a_rollback_says_the_owners_lease_lapsed_and_leaves_who_finishes_it_to_the_claim(aws, capsys):
    """Its owner row said "run-1, lease until <a time long past>" alone of every phase, read as a
    run still holding a rollout that a rollback had taken from it."""
    record, _ = start_at_five_percent(aws)
    ledger = DynamoLedger(aws.get_client("dynamodb"), aws.targets)
    now = time.time()
    begin_rollback(ledger, aws.targets.canary_service, actor="erin", reason="aborted by erin: errors", now=now,
                   rollout=record.rollout_id, holder="rollback/run-9", lease_seconds=600)
    out = status_out(aws, capsys)
    said = status_rows(aws, capsys, out)
    assert said["owner"] == (f"run-1, whose lease lapsed at {wall_utc(record.created_at + 60)}: no run drives the "
                             "rollout forward; a rollback of it began, which needs no lease (below: who carries it "
                             "out, and what finishes it)"), said
    # The claim's line, which says who finishes the rollback, is kept.
    assert "carried out by rollback/run-9, its claim renewed until" in " ".join(out.split()), out
