"""The pieces of `rollway up`, `status`, `promote`, `abort` and the deployments that need no server.

The commands themselves run against a real `prefect server start` in
tests/integration/test_prefect_server.py.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from uuid import uuid4

import pytest
import yaml

from rollway.cli import CREDENTIALS_BLOCK, TARGETS_BLOCK
from rollway.cli.ops import owner_run_id, print_status
from rollway.cli.processes import Child, child_env, free_port, port_is_free
from rollway.clock import ClockSettings
from rollway.ledger import RolloutRecord, Transition, utc
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from rollway.targets import Targets
from tests.unit.alive import alive

ROOT = Path(__file__).resolve().parents[2]
FLOWS = {"canary", "progressive_rollout", "advance_phase", "monitor", "rollback", "finalize", "set-flags",
         "deploy_infrastructure", "verify_infrastructure", "publish_container", "validate_deployment",
         "rollout_report", "cleanup"}
# Flows that act at once or only read: they take no rollout clock.
UNCLOCKED = {"set-flags", "deploy_infrastructure", "verify_infrastructure", "publish_container", "rollout_report",
             "cleanup"}


def record(**changes) -> RolloutRecord:
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=w) for w in (5, 50, 100)])
    base = RolloutRecord(
        service="svc-canary", rollout_id="20261129T063000Z-1a2b3c4d", image=spec.image,
        spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=1, stage_passed=True,
        weights=Weights.canary_at(50), owner=f"flow-run/{uuid4()}", lease_expires=1_800_000_000.0,
        history=(
            Transition(at=1_799_999_000.0, kind="start", actor="alice", comment="rollout of repo/app:2.0.0"),
            Transition(at=1_799_999_100.0, kind="shift", actor="alice", from_weights=Weights.canary_at(5),
                       to_weights=Weights.canary_at(50), comment="shifting to 50%"),
        ),
    )
    return base.model_copy(update=changes)



@pytest.fixture(autouse=True)
def no_temporary_prefect_server(monkeypatch):
    """A command asking the Prefect API with no PREFECT_API_URL makes Prefect start a temporary
    server of its own: seconds per test file, and a timeout on a loaded machine. These tests give
    every API answer they need; one that reaches for the API fails here, naming it."""
    from prefect.server.api.server import SubprocessASGIServer

    def refuse(self, *args, **kwargs):
        raise AssertionError("this test reached the Prefect API (a temporary server would start): give it the answer")

    monkeypatch.setattr(SubprocessASGIServer, "start", refuse)

# --- status and the owner of a rollout ----------------------------------------------------


def test_owner_run_id_reads_the_flow_run_that_owns_the_rollout() -> None:
    run = uuid4()
    assert owner_run_id(record(owner=f"flow-run/{run}")) == run
    assert owner_run_id(record(owner="process/1234")) is None
    assert owner_run_id(record(owner="flow-run/not-a-uuid")) is None
    assert owner_run_id(record(owner=None)) is None
    assert owner_run_id(None) is None


def test_status_shows_stage_weights_drift_the_paused_run_and_transitions(capsys, monkeypatch) -> None:
    paused = SimpleNamespace(name="brave-otter", id=uuid4())
    # Whether the paused run's process still waits is asked of the Prefect API (tested on the harness
    # in tests/flows/test_dead_paused_run.py); asked here, with no API set, Prefect started a
    # temporary server of its own for it, which timed out on a loaded machine.
    asked = []
    monkeypatch.setattr("rollway.cli.ops.check_attended", lambda run, look_again: asked.append((run, look_again)))
    print_status(
        SimpleNamespace(name="svc-canary", targets=Targets()), record(), Weights.canary_at(5), paused, limit=10
    )
    out = capsys.readouterr().out
    assert "2/3 (50%), passed" in out
    assert "ledger 50/50, load balancer 95/5" in out
    assert "drift: the load balancer holds 95/5 but the ledger says 50/50" in out
    assert f"brave-otter ({paused.id}) is paused" in out
    assert "95/5 -> 50/50" in out and "shifting to 50%" in out
    assert asked == [(paused, False)], "status asks whether the run is attended, without looking twice"


def test_status_names_the_digest_the_rollout_pinned_its_tag_to(capsys) -> None:
    pinned = "repo/app@sha256:" + "ab" * 32
    target = SimpleNamespace(name="svc-canary", targets=Targets())
    print_status(target, record(pinned_image=pinned), Weights.canary_at(50), None, limit=1)
    assert f"image        repo/app:2.0.0 (pinned as {pinned})\n" in capsys.readouterr().out
    print_status(target, record(), Weights.canary_at(50), None, limit=1)  # recorded before images were pinned
    assert "image        repo/app:2.0.0\n" in capsys.readouterr().out


def test_status_shows_control_characters_from_the_ledger_escaped(capsys) -> None:
    """A reason quoting a crashed process's coloured output, or a name pasted with an escape
    sequence, was printed as it was: on a terminal it coloured the rest of the output, cleared the
    screen or, with a carriage return, wrote over who did what."""
    reason = "run crashed: \x1b[31mFATAL\x1b[0m\r worker lost"
    crashed = record(phase=RolloutPhase.ROLLED_BACK, owner=None, weights=Weights(stable=100, canary=0),
                     history=record().history + (
                         Transition(at=1_800_000_000.0, kind="rollback-start", actor="carol\x1b]0;pwned\x07",
                                    comment=reason),
                         Transition(at=1_800_000_100.0, kind="rollback", actor="carol\x1b]0;pwned\x07",
                                    to_weights=Weights(stable=100, canary=0), comment=reason)))
    stalled = crashed.model_copy(update={"phase": RolloutPhase.ROLLING_BACK, "history": crashed.history[:-1]})
    for shown in (crashed, stalled):
        print_status(SimpleNamespace(name="svc-canary", targets=Targets()), shown, Weights(stable=100, canary=0), None,
                     limit=10)
        out = capsys.readouterr().out
        assert not [c for c in out if c != "\n" and not c.isprintable()], repr(out)
        assert r"run crashed: \x1b[31mFATAL\x1b[0m\r worker lost" in out and r"carol\x1b]0;pwned\x07" in out, out


def test_status_says_aws_and_peoples_words_from_the_ledger_on_one_line_each(capsys) -> None:
    """SNS's error for a refused page, kept in the ledger as it came, and an approver's name typed
    in the UI's text area were printed raw in the lines under status's rows: a line break in
    either began a line of its own ("12:00:00 INFO rollback done") and an escape sequence acted on
    the terminal, where the rows above and the history below show them escaped on one line."""
    error = "AuthorizationError: not allowed\n12:00:00 INFO rollback done\x1b[2K"
    stalled = record(phase=RolloutPhase.ROLLING_BACK, rollback_holder="carol", history=record().history + (
        Transition(at=1_800_000_000.0, kind="rollback-start", actor="carol", comment="judge: canary errors 9/600"),
        Transition(at=1_800_000_050.0, kind="notice-failed", actor="carol",
                   comment="the rollback's notice was not sent: " + error)))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), stalled, Weights(stable=100, canary=0), None,
                 limit=10)
    out = capsys.readouterr().out
    assert not [c for c in out if c != "\n" and not c.isprintable()], repr(out)
    assert not [line for line in out.splitlines() if line.startswith("12:00:00")], out
    assert r"SNS refused the notice: AuthorizationError: not allowed\n12:00:00 INFO rollback done\x1b[2K (carol's" \
        in out, out

    from rollway.approvals import ApprovalAnswer, UnheardAnswer
    from rollway.cli.ops import print_unheard

    answer = ApprovalAnswer(action="approve", approver="dana\n12:00:00 INFO approved by root\x1b[2K")
    print_unheard([UnheardAnswer(run="brave-otter", answer=answer, answered_at=1_800_000_000.0,
                                 silent_since=1_800_000_000.0)])
    out = capsys.readouterr().out
    assert not [c for c in out if c != "\n" and not c.isprintable()], repr(out)
    assert r"by dana\n12:00:00 INFO approved by root\x1b[2K at" in " ".join(out.split()), out


def test_status_says_what_a_paused_run_asks_with_its_control_characters_escaped(capsys, monkeypatch) -> None:
    """The Paused state's message quotes the judge's reason and, asked again, a person's words:
    status folded its line breaks but printed its escape sequences raw, which acted on the
    terminal (here, erased the line saying which run waits)."""
    from rollway.cli.ops import print_paused

    monkeypatch.setattr("rollway.cli.ops.check_attended", lambda run, look_again: None)
    asks = "approval pause: hold by dana (\x1b[2K\rall clear); answer by 20:35 UTC (wall clock) the rollout rolls back"
    print_paused(SimpleNamespace(name="brave-otter", id=uuid4(), state=SimpleNamespace(message=asks)))
    out = capsys.readouterr().out
    assert not [c for c in out if c != "\n" and not c.isprintable()], repr(out)
    assert r"is paused (approval pause: hold by dana (\x1b[2K all clear); answer by" in " ".join(out.split()), out


def test_piped_status_keeps_each_transition_and_digest_on_one_line(capsys) -> None:
    """Piped (a runbook, a ticket), status wrapped at 80 columns and folded each image digest over
    many lines of the history table: one line a transition now, the digest whole."""
    pinned = "123456789012.dkr.ecr.us-west-2.amazonaws.com/repo/app@sha256:" + "ab12" * 16
    long = record(history=(Transition(at=1_799_999_000.0, kind="start", actor="alice",
                                      comment=f"rollout of repo/app:2.0.0, pinned as {pinned}"),
                           Transition(at=1_799_999_100.0, kind="rollback", actor="guardrail", to_weights=Weights(stable=100, canary=0),
                                      comment="5%: canary error rate 30.00% (4,500/15,000) is over the 1% guardrail")))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), long, Weights(stable=100, canary=0), None,
                 limit=10)
    lines = capsys.readouterr().out.splitlines()
    [start] = [line for line in lines if " start " in line]
    assert start.endswith(f"rollout of repo/app:2.0.0, pinned as {pinned}"), lines
    [back] = [line for line in lines if " rollback " in line]
    assert " guardrail " in back and "100/0" in back and back.endswith("is over the 1% guardrail"), lines


def test_status_says_which_of_its_times_are_on_the_wall_clock(capsys) -> None:
    """Under `rollway up`'s 60x the history (rollout clock) runs hours ahead of the wall clock, on
    which leases and pause timeouts run: status showed "lease until 19:45 UTC" and a pause
    "unanswered by 20:35 UTC" under transitions at 20:42, as if both had long passed."""
    from flows.approvals import pause_question
    from rollway.decide import Pause
    from rollway.spec import Approvals

    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), record(), Weights.canary_at(50), None, limit=1)
    out = capsys.readouterr().out
    assert "lease until 2027-01-15 08:00:00 UTC (wall clock)" in out and "at (rollout clock)" in out, out
    asked = pause_question(Pause(stage_index=1, cause="approval", reason="approval needed before 100%"), Approvals(),
                           datetime(2026, 12, 1, 19, 35, 31, tzinfo=timezone.utc))
    assert "unanswered by 2026-12-01 20:35:31 UTC (wall clock) the rollout rolls back" in asked, asked


def test_status_between_weekly_phases_says_when_the_next_is_due_and_when_it_is_overdue(capsys) -> None:
    """Status said "weekly phase 1, passed" of a rollout holding for the schedule: when the next
    phase was due, or that it was overdue, only the report, `promote` and `hold` told."""
    from rollway import weekly
    from rollway.ledger import utc

    spec = RolloutSpec(image="repo/app:2.0.0", weekly_timezone="Europe/Berlin")  # week 2 runs 25 % then 50 %
    started = datetime(2027, 1, 11, 9, 0, tzinfo=timezone.utc).timestamp()  # a Monday's cron
    held = record(spec_json=spec.model_dump_json(), phase=RolloutPhase.PAUSED, stage_index=0, weights=Weights.canary_at(5),
                  owner=None, phased=True, weekly_phase_index=0, weekly_phase_passed=True,
                  weekly_phase_started_at=started)
    due = weekly.next_phase_due(started, **spec.phase_calendar())
    target = SimpleNamespace(name="svc-canary", targets=Targets())
    print_status(target, held, Weights.canary_at(5), None, limit=1, now=due - 3.5 * 86400)
    out = capsys.readouterr().out
    assert (f"next phase   week 2 (25% -> 50%) due {utc(due)} (rollout clock; {weekly.describe(due, 'Europe/Berlin')}), "
            "in 3.5 days: the first advance_phase run from then on starts it") in out, out
    # On `rollway up`'s 60x clock, also how long that is on the wall.
    print_status(target, held, Weights.canary_at(5), None, limit=1, now=due - 3600, speed=60)
    assert "in 60.0 min (the rollout clock runs 60x wall time: about 60 wall seconds from now)" in capsys.readouterr().out
    print_status(target, held, Weights.canary_at(5), None, limit=1, now=due + 2 * 86400)
    out = capsys.readouterr().out
    assert f"next phase   week 2 (25% -> 50%) OVERDUE: due since {utc(due)} (rollout clock; " in out, out
    assert "2.0 days ago, and no advance_phase run has started it" in out
    # Not between phases (a phase running), or not told the rollout clock: no such row.
    print_status(target, held.model_copy(update={"weekly_phase_passed": False, "phase": RolloutPhase.PROGRESSING}),
                 Weights.canary_at(5), None, limit=1, now=due)
    print_status(target, held, Weights.canary_at(5), None, limit=1)
    assert "next phase" not in capsys.readouterr().out


def test_status_of_a_promotion_whose_window_no_run_closed_says_so_and_what_closes_it(capsys) -> None:
    """A weekly rollout's last phase promoted, but too few of its monitoring checks read the
    metrics: the run ended saying "run the monitor again", and status showed "promoted", "week 3
    (3 of 3), passed" and "owner none", as if all were done. Only `rollway finalize`, refused,
    and the report said the window was owed, that the previous version still runs and what to run."""
    from rollway.ledger import utc

    spec = RolloutSpec(image="repo/app:2.0.0")  # the default plan: week 3 decommissions after an hour's window
    promoted_at = 1_800_000_200.0
    ends = promoted_at + spec.monitor_seconds
    promoted = record(spec_json=spec.model_dump_json(), phase=RolloutPhase.PROMOTED, stage_index=4, owner=None,
                      weights=Weights(stable=0, canary=100), monitor_until=ends, phased=True, weekly_phase_index=2,
                      history=record().history + (
                          Transition(at=promoted_at, kind="promote", actor="alice", to_weights=Weights(stable=0, canary=100),
                                     comment="100%: pass"),))
    target = SimpleNamespace(name="svc-canary", targets=Targets())
    print_status(target, promoted, Weights(stable=0, canary=100), None, limit=1, now=ends + 600)
    out = " ".join(capsys.readouterr().out.split())
    assert (f"monitoring not recorded as closed: its window was due to end {utc(ends)} (rollout clock) and no run "
            "closed it") in out, out
    assert "run `progressive_rollout` of repo/app:2.0.0 again" in out and "`rollway finalize` refuses" in out, out
    assert "`rollway abort` can still roll the release back" in out, out
    # While the window runs, it says until when; once it is closed, nothing.
    print_status(target, promoted, Weights(stable=0, canary=100), None, limit=1, now=ends - 60, speed=60)
    out = " ".join(capsys.readouterr().out.split())
    assert f"monitoring open until {utc(ends)} (rollout clock) (the rollout clock runs 60x wall time: about 1 wall" in out, out
    watched = promoted.model_copy(update={"history": promoted.history + (
        Transition(at=ends, kind="watched", actor="alice", comment="window clean"),)})
    print_status(target, watched, Weights(stable=0, canary=100), None, limit=1, now=ends + 600)
    assert "monitoring " not in capsys.readouterr().out


def test_status_of_a_promotion_says_whether_it_is_finalized_and_what_finalizes_it(capsys) -> None:
    """A promotion whose window closed and that nobody finalized showed "promoted", its last stage
    "passed" and "owner none", as if the release were done; the next rollout was then refused until
    `rollway finalize` ran, which only the report said. A finalize that stopped part-way looked the same."""
    from rollway.ledger import utc

    promoted = record(phase=RolloutPhase.PROMOTED, stage_index=2, owner=None, weights=Weights(stable=0, canary=100),
                      history=record().history + (
                          Transition(at=1_800_000_200.0, kind="promote", actor="alice",
                                     to_weights=Weights(stable=0, canary=100), comment="100%: pass"),
                          Transition(at=1_800_000_900.0, kind="watched", actor="alice", comment="window clean")))
    target = SimpleNamespace(name="svc-canary", targets=Targets())
    print_status(target, promoted, Weights(stable=0, canary=100), None, limit=1, now=1_800_001_000.0)
    out = " ".join(capsys.readouterr().out.split())
    assert "finalize not run: run `rollway finalize` (or the finalize deployment)" in out, out
    assert "a new rollout of the service is refused until then" in out, out
    began = promoted.model_copy(update={"history": promoted.history + (
        Transition(at=1_800_001_000.0, kind="finalize-start", actor="carol", comment="finalizing"),)})
    print_status(target, began, Weights(stable=0, canary=100), None, limit=1, now=1_800_001_100.0)
    out = " ".join(capsys.readouterr().out.split())
    assert (f"finalize began (carol, {utc(1_800_001_000.0)}) and is not recorded as finished: run `rollway finalize` "
            "(or the finalize deployment) again, which carries on from where it stopped") in out, out
    done = began.model_copy(update={"weights": Weights(stable=100, canary=0), "history": began.history + (
        Transition(at=1_800_001_300.0, kind="finalized", actor="carol", to_weights=Weights(stable=100, canary=0)),)})
    print_status(target, done, Weights(stable=100, canary=0), None, limit=1, now=1_800_001_400.0)
    out = " ".join(capsys.readouterr().out.split())
    assert f"finalize done by carol at {utc(1_800_001_300.0)}: the next rollout of the service can start" in out, out
    # Not promoted: no such row.
    print_status(target, record(), Weights.canary_at(50), None, limit=1)
    assert "finalize " not in capsys.readouterr().out


def _status_of_a_window_left_open(capsys, **end) -> tuple[str, float]:
    """Status of a promotion whose window's run recorded ``end`` (an unverified one, or one kept for
    traffic) a minute after the window's end, read ten minutes after it; and when the window ended."""
    spec = RolloutSpec(image="repo/app:2.0.0")
    promoted_at = 1_800_000_200.0
    ends = promoted_at + spec.monitor_seconds
    promoted = record(spec_json=spec.model_dump_json(), phase=RolloutPhase.PROMOTED, stage_index=4, owner=None,
                      weights=Weights(stable=0, canary=100), monitor_until=ends, phased=True, weekly_phase_index=2,
                      history=record().history + (
                          Transition(at=promoted_at, kind="promote", actor="alice",
                                     to_weights=Weights(stable=0, canary=100), comment="100%: pass"),),
                      **{name: made(ends + 60) for name, made in end.items()})
    target = SimpleNamespace(name="svc-canary", targets=Targets())
    print_status(target, promoted, Weights(stable=0, canary=100), None, limit=1, now=ends + 600)
    out = " ".join(capsys.readouterr().out.split())
    assert "the next monitor run or weekly tick looks again" in out and "`rollway finalize` refuses" in out, out
    assert "no run closed it" not in out, out
    return out, ends


def test_status_of_an_unverified_window_says_how_many_of_its_looks_counted_requests(capsys) -> None:
    """A window that ended with too few looks counting requests wrote nothing, and status could
    only say that no run had closed it ("the run watching it stopped, or too few of its looks
    ..."). Its look counts, recorded beside the history, are said, and what looks again."""
    from rollway.ledger import UnverifiedWindow, utc

    out, ends = _status_of_a_window_left_open(capsys, unverified_window=lambda at: UnverifiedWindow(
        at=at, actor="run-7", counted=3, looks=29, failed=2))
    assert (f"monitoring unverified: 3 of 29 looks counted requests to the new version (2 could not read the "
            f"metrics; run-7's run, window ended {utc(ends + 60)}); the old service is kept") in out, out


def test_status_of_a_clean_window_kept_for_traffic_says_so_not_that_no_run_closed_it(capsys) -> None:
    """A window that passed cleanly but kept the old service, 20 % of the traffic having been put
    back on it by hand, wrote nothing: status said "no run closed it (the run watching it stopped,
    or too few of its looks ...)". The reason its run recorded beside the history is said instead."""
    from rollway.ledger import KeptForTraffic, utc

    out, ends = _status_of_a_window_left_open(capsys, kept_for_traffic=lambda at: KeptForTraffic(
        at=at, actor="run-7", stable=20))
    assert (f"monitoring passed cleanly, but the old service still carried 20% of traffic (put back on it by hand) "
            f"when run-7's run ended the window at {utc(ends + 60)}: not decommissioned") in out, out


@pytest.mark.parametrize(("held_by", "lease_left", "again"), [
    ("run-8", 300.0, True),  # another run holds a live lease: it watches again
    ("run-7", 300.0, False),  # the run that recorded the end, its lease not yet released
    ("run-8", -300.0, False),  # another run's lease has lapsed: nobody watches
    (None, 0.0, False),  # nobody holds it
])
def test_status_of_a_window_left_open_says_whose_end_it_shows_while_another_run_watches(capsys, held_by, lease_left,
                                                                                        again) -> None:
    """Status said the recorded end of a window left open (its counts, "the next monitor run or weekly
    tick looks again") while another run held the lease watching it again: read as that run's counts,
    or as nobody looking. It says which run watches now and that the end shown is the previous run's,
    only while another run's lease is live."""
    from rollway.ledger import UnverifiedWindow

    spec = RolloutSpec(image="repo/app:2.0.0")
    promoted_at = 1_800_000_200.0
    ends, wall = promoted_at + spec.monitor_seconds, 1_900_000_000.0
    promoted = record(spec_json=spec.model_dump_json(), phase=RolloutPhase.PROMOTED, stage_index=4, owner=held_by,
                      lease_expires=wall + lease_left, weights=Weights(stable=0, canary=100), monitor_until=ends,
                      history=record().history + (Transition(at=promoted_at, kind="promote", actor="alice",
                                                             to_weights=Weights(stable=0, canary=100)),),
                      unverified_window=UnverifiedWindow(at=ends + 60, actor="monitor", counted=3, looks=29,
                                                         owner="run-7", stable_service="svc"))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), promoted, Weights(stable=0, canary=100), None,
                 limit=1, now=ends + 600, wall=wall)
    out = " ".join(capsys.readouterr().out.split())
    assert "unverified: 3 of 29 looks counted requests to the new version" in out, out
    assert "the old service (svc) is kept" in out, out
    assert ("monitoring being watched again now by run-8 (lease until" in out) is again, out
    assert ("whose end replaces the previous run's: unverified: 3 of 29" in out) is again, out
    assert ("the next monitor run or weekly tick looks again" in out) is not again, out


@pytest.mark.parametrize(("lease_left", "watching"), [(300.0, True), (-300.0, False)])
def test_status_of_a_window_past_its_end_that_a_run_watches_now_does_not_say_no_run_closed_it(capsys, lease_left,
                                                                                             watching) -> None:
    """A window whose run died is resumed after its end by the next run (the weekly tick, a monitor
    run), which watches what is left of it and the wait for its last period. Meanwhile status said
    "no run closed it (the run watching it stopped ...): run `progressive_rollout` ... again",
    while a run held the lease doing just that. Said only while that run's lease is live."""
    from rollway.ledger import utc

    spec = RolloutSpec(image="repo/app:2.0.0")
    promoted_at = 1_800_000_200.0
    ends, wall = promoted_at + spec.monitor_seconds, 1_900_000_000.0
    promoted = record(spec_json=spec.model_dump_json(), phase=RolloutPhase.PROMOTED, stage_index=4, owner="run-8",
                      lease_expires=wall + lease_left, weights=Weights(stable=0, canary=100), monitor_until=ends,
                      history=record().history + (Transition(at=promoted_at, kind="promote", actor="alice",
                                                             to_weights=Weights(stable=0, canary=100)),))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), promoted, Weights(stable=0, canary=100), None,
                 limit=1, now=ends + 120, wall=wall)
    out = " ".join(capsys.readouterr().out.split())
    assert (f"monitoring its window was due to end {utc(ends)} (rollout clock) and run-8 (lease until" in out) is watching, out
    assert ("is watching what is left of it now, and closes it" in out) is watching, out
    assert ("no run closed it" in out) is not watching, out
    assert "`rollway finalize` refuses" in out and "`rollway abort` can still roll the release back" in out, out


@pytest.mark.parametrize(("owner", "why"), [
    ("run-7", "(run-7's lease lapsed at {lapsed}: its run stopped or died)"),
    (None, "(no run holds the rollout's lease)"),
])
def test_status_of_a_window_no_run_recorded_an_end_of_says_only_what_the_record_holds(capsys, owner, why) -> None:
    """Past its end, a window no run closed and none recorded an end of was said closed by nobody
    "(the run watching it stopped, or too few of its looks counted requests to the new version or
    could read the metrics)": a run that counted too few records so (its unverified end, said
    instead), so that guess fits only records from before runs did, or a write the ledger refused.
    Said instead: that none recorded watching it to its end, and who last held its lease."""
    from rollway.ledger import utc, wall_utc

    spec = RolloutSpec(image="repo/app:2.0.0")
    promoted_at, wall = 1_800_000_200.0, 1_900_000_000.0
    ends = promoted_at + spec.monitor_seconds
    promoted = record(spec_json=spec.model_dump_json(), phase=RolloutPhase.PROMOTED, stage_index=4, owner=owner,
                      lease_expires=wall - 300, weights=Weights(stable=0, canary=100), monitor_until=ends,
                      history=record().history + (Transition(at=promoted_at, kind="promote", actor="alice",
                                                             to_weights=Weights(stable=0, canary=100)),))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), promoted, Weights(stable=0, canary=100), None,
                 limit=1, now=ends + 600, wall=wall)
    out = " ".join(capsys.readouterr().out.split())
    assert "too few" not in out and "could read the metrics" not in out, out
    said = why.format(lapsed=wall_utc(wall - 300))
    assert (f"monitoring not recorded as closed: its window was due to end {utc(ends)} (rollout clock) and no run "
            f"closed it, and none recorded watching it to its end {said}: run `progressive_rollout` of repo/app:2.0.0 "
            "again") in out, out


@pytest.mark.parametrize("phase", [RolloutPhase.PROMOTED, RolloutPhase.PROGRESSING])
def test_status_says_a_lapsed_lease_lapsed_whether_the_rollout_is_under_way_or_promoted(capsys, phase) -> None:
    """A promoted rollout whose run's lease had lapsed showed "owner run-7, lease until <a time
    long past>": read as a run still holding it (watching its window, say), where nobody does and
    the next run to act on it takes it over at once. Only a rollout under way said its lease lapsed;
    both say it in the same words now, each with what it leaves."""
    from rollway.ledger import wall_utc

    spec = RolloutSpec(image="repo/app:2.0.0")
    wall = 1_900_000_000.0
    history = record().history
    if phase is RolloutPhase.PROMOTED:
        history += (Transition(at=1_800_000_200.0, kind="promote", actor="alice",
                               to_weights=Weights(stable=0, canary=100)),)
    held = record(spec_json=spec.model_dump_json(), phase=phase, owner="run-7", lease_expires=wall - 300,
                  history=history)
    target = SimpleNamespace(name="svc-canary", targets=Targets())
    print_status(target, held, held.weights, None, limit=1, now=1_800_000_200.0 + 600, wall=wall)
    out = " ".join(capsys.readouterr().out.split())
    assert f"owner run-7, whose lease lapsed at {wall_utc(wall - 300)}: no run " in out, out
    assert "lease until" not in out, out
    if phase is RolloutPhase.PROMOTED:
        assert "no run holds the rollout" in out and "takes it over at once" in out, out
        assert "no run drives the rollout" not in out and "nothing judges the canary" not in out, out
    # Its lease live: who holds it and until when.
    print_status(target, held.model_copy(update={"lease_expires": wall + 300}), held.weights, None, limit=1,
                 now=1_800_000_200.0 + 600, wall=wall)
    out = " ".join(capsys.readouterr().out.split())
    assert f"owner run-7, lease until {wall_utc(wall + 300)}" in out and "lapsed" not in out, out


@pytest.mark.parametrize(("phase", "waiting", "said"), [
    # Its run died before its first stage: nothing on the canary yet to judge.
    (RolloutPhase.PENDING, False, "no run drives the rollout (its run stopped or died); once that run has ended, a "
                                  "progressive_rollout run of the same image takes it over and resumes it"),
    # Between weekly phases, its run ended without giving the lease back.
    (RolloutPhase.PAUSED, False, "no run holds the rollout (its run stopped or died, or ended without giving the "
                                 "lease back); the next run to act on it takes it over at once"),
    # Runs paused for an answer, none known to be its own (a paused run renews no lease).
    (RolloutPhase.PROGRESSING, True, "a run waiting for an answer (below) renews no lease, and no other run takes "
                                     "the rollout over while it waits"),
])
def test_status_says_a_lapsed_lease_lapsed_in_every_phase_it_holds_one(capsys, phase, waiting, said) -> None:
    """A pending rollout whose run died, one holding between weekly phases whose run ended without
    giving its lease back, and one whose run waits for an answer showed "owner run-7, lease until
    <a time long past>": read as a run renewing it, where none does. Said as for a rollout under
    way or promoted, with what each leaves."""
    from rollway.ledger import wall_utc

    wall = 1_900_000_000.0
    spec = RolloutSpec(image="repo/app:2.0.0")
    held = record(spec_json=spec.model_dump_json(), phase=phase, owner="run-7", lease_expires=wall - 300,
                  stage_index=-1 if phase is RolloutPhase.PENDING else 0, weights=Weights.canary_at(5),
                  weekly_phase_index=0, weekly_phase_passed=phase is RolloutPhase.PAUSED,
                  weekly_phase_started_at=1_799_999_000.0)
    paused = (SimpleNamespace(name="run-a", id=uuid4()), SimpleNamespace(name="run-b", id=uuid4())) if waiting else None
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), held, held.weights, paused, limit=1,
                 wall=wall)
    out = " ".join(capsys.readouterr().out.split())
    assert f"owner run-7, whose lease lapsed at {wall_utc(wall - 300)}: {said}" in out, out
    assert "lease until" not in out, out


def test_status_says_when_a_decommission_page_is_still_owed_and_who_sent_a_late_one(capsys) -> None:
    """The run that decommissioned died before paging: status listed the decommission as done and
    said nothing of the page nobody had received, nor, once it went out late, who sent it."""
    spec = RolloutSpec(image="repo/app:2.0.0")
    gone = Transition(at=1_800_000_300.0, kind="decommission", actor="monitor", wall=1_800_000_300.0,
                      comment="60 minutes of monitoring passed; webordinary-edit-service scaled to 0")
    owed = record(spec_json=spec.model_dump_json(), phase=RolloutPhase.PROMOTED, owner=None,
                  weights=Weights(stable=0, canary=100), history=(*record().history, gone))
    target = SimpleNamespace(name="svc-canary", targets=Targets())
    print_status(target, owed, Weights(stable=0, canary=100), None, limit=10)
    out = " ".join(capsys.readouterr().out.split())
    assert ("whether the \"Old version decommissioned\" page of webordinary-edit-service was sent is not known (the "
            "run that decommissioned recorded no page sent: it died before paging or before recording its page, or "
            "the ledger refused that record)") in out, out
    assert "the next run that looks at the rollout sends it late" in out, out
    paged = owed.model_copy(update={"history": (*owed.history, Transition(
        at=1_800_000_400.0, kind="decommission-paged", actor="schedule", message_id="sns-9",
        comment="the decommission's page was sent"))})
    print_status(target, paged, Weights(stable=0, canary=100), None, limit=10)
    out = " ".join(capsys.readouterr().out.split())
    assert "never sent" not in out and "was sent is not known" not in out, out
    assert ("the decommission's page went out at 2027-01-15 08:06:40 UTC (SNS message sns-9, sent by schedule)"
            in out), out


def test_status_without_drift_or_pause_says_neither(capsys) -> None:
    print_status(
        SimpleNamespace(name="svc-canary", targets=Targets()), record(phase=RolloutPhase.PROMOTED, owner=None),
        Weights.canary_at(50), None, limit=1,
    )
    out = capsys.readouterr().out
    assert "drift" not in out and "waiting for an answer" not in out
    assert "owner        none" in out
    assert "last 1 transition\n" in out and "shifting to 50%" in out and "rollout of repo/app" not in out


@pytest.mark.parametrize("phase", [RolloutPhase.PROGRESSING, RolloutPhase.ROLLED_BACK])
def test_status_of_a_record_past_its_specs_stages_says_what_it_knows_not_a_traceback(capsys, phase) -> None:
    """A record whose stage is past its recorded spec's stages (written by an older rollway, or its
    spec edited by hand between runs) made status raise IndexError: the command on-call runs before
    `rollway abort`."""
    print_status(
        SimpleNamespace(name="svc-canary", targets=Targets()), record(stage_index=4, phase=phase, owner=None),
        Weights.canary_at(50), None, limit=1,
    )
    out = capsys.readouterr().out
    assert "5 (past the 3 stages of its recorded spec: 5%, 50%, 100%)" in out
    assert "ledger 50/50" in out


@pytest.mark.parametrize("terminal", [True, False])
def test_status_of_a_rollout_with_no_history_says_so_not_an_empty_table(monkeypatch, capsys, terminal) -> None:
    """A record whose history holds nothing printed "last 0 transitions" over a table with no rows."""
    import io

    from rich.console import Console

    from rollway.cli import ops

    out = io.StringIO()
    monkeypatch.setattr(ops, "console", Console(file=out, force_terminal=terminal, width=200, highlight=False,
                                                soft_wrap=True))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), record(history=()), Weights.canary_at(50),
                 None, limit=10)
    said = out.getvalue()
    assert "last 0 transitions" not in said and "at (rollout clock)" not in said, said
    assert said.rstrip().endswith("history      none recorded"), said


def test_status_names_a_canary_flow_run_that_moved_the_weights_not_drift(capsys) -> None:
    """A `canary` flow run (no ledger) at 5 % after the ledger's newest rollout was rolled back:
    status said "drift: the load balancer holds 95/5 but the ledger says 100/0", as if someone
    had moved the traffic by hand, and named the run only once it paused."""
    ended = record(phase=RolloutPhase.ROLLED_BACK, weights=Weights(stable=100, canary=0), owner=None)
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), ended, Weights.canary_at(5), None, limit=10,
                 canary_runs=["calm-heron (1234, Running)"])
    out = capsys.readouterr().out
    assert "drift" not in out
    assert "calm-heron (1234, Running)" in out and "`canary` flow keeps no ledger" in out


def test_status_of_a_rolled_back_rollout_names_its_incident_report_and_how_to_start_again(capsys) -> None:
    """On-call paged by a rollback ran `rollway status` and read "rolled_back" and the history:
    nothing named the command that prints the incident report, nor how to try the release again."""
    started = Transition(at=1_800_000_100.0, kind="rollback-start", actor="judge", comment="canary errors 9/600")
    ended = Transition(at=1_800_000_130.0, kind="rollback", actor="judge", to_weights=Weights(stable=100, canary=0))
    rolled_back = record(phase=RolloutPhase.ROLLED_BACK, weights=Weights(stable=100, canary=0), owner=None,
                         history=(*record().history, started, ended))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), rolled_back, Weights(stable=100, canary=0),
                 None, limit=10)
    out = " ".join(capsys.readouterr().out.split())
    assert ("rolled back (judge: canary errors 9/600); `rollway report --rollout 20261129T063000Z-1a2b3c4d` "
            "prints its incident report; once the cause is fixed, a new rollout tries again: start one from the "
            "`progressive_rollout` deployment") in out, out
    assert "drift" not in out


@pytest.mark.parametrize("phase", [RolloutPhase.ROLLED_BACK, RolloutPhase.ROLLING_BACK])
@pytest.mark.parametrize("said", ["aborted by root: 500s on save", "rejected by root: 500s on save"])
def test_status_of_a_rollback_begun_by_hand_names_its_person_once(capsys, phase, said) -> None:
    """`rollway abort` records its person as the actor and in the reason: status read
    "rolled back (root: aborted by root: 500s on save)"."""
    started = Transition(at=1_800_000_100.0, kind="rollback-start", actor="root", comment=said)
    ended = Transition(at=1_800_000_130.0, kind="rollback", actor="root", to_weights=Weights(stable=100, canary=0))
    history = (*record().history, started, *((ended,) if phase is RolloutPhase.ROLLED_BACK else ()))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()),
                 record(phase=phase, weights=Weights(stable=100, canary=0), owner=None, history=history),
                 Weights(stable=100, canary=0), None, limit=10)
    out = " ".join(capsys.readouterr().out.split())
    opening = "rolled back" if phase is RolloutPhase.ROLLED_BACK else "a rollback was started"
    assert f"{opening} ({said})" in out, out
    assert "root: aborted" not in out and "root: rejected" not in out, out


def test_status_of_an_unfinished_rollback_says_how_to_finish_it_not_drift(capsys) -> None:
    started = Transition(at=1_800_000_100.0, kind="rollback-start", actor="judge", comment="canary errors 9/600")
    unfinished = record(phase=RolloutPhase.ROLLING_BACK, history=(*record().history, started))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), unfinished, Weights(stable=100, canary=0),
                 None, limit=10)
    out = capsys.readouterr().out
    assert "rolling_back" in out
    assert "a rollback was started (judge: canary errors 9/600)" in out and "`rollway abort`" in out
    assert "drift" not in out
    assert "carried out by" not in out, "nobody holds this rollback's claim"


def test_status_of_an_unfinished_rollback_that_paged_says_finishing_it_pages_nobody_again(capsys) -> None:
    started = Transition(at=1_800_000_100.0, kind="rollback-start", actor="judge", comment="canary errors 9/600")
    told = Transition(at=1_800_000_160.0, kind="notified", actor="judge", message_id="sns-7")
    unfinished = record(phase=RolloutPhase.ROLLING_BACK, history=(*record().history, started, told))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), unfinished, Weights(stable=100, canary=0),
                 None, limit=10)
    out = " ".join(capsys.readouterr().out.split())
    assert ("its notice went out at 2027-01-15 08:02:40 UTC (SNS message sns-7, sent by judge): finishing it does "
            "not page people again") in out, out


def test_status_of_a_rollback_whose_run_stopped_while_paging_says_people_may_not_have_been_paged(capsys) -> None:
    started = Transition(at=1_800_000_100.0, kind="rollback-start", actor="judge", comment="canary errors 9/600")
    sending = Transition(at=1_800_000_160.0, kind="notifying", actor="carol")
    unfinished = record(phase=RolloutPhase.ROLLING_BACK, history=(*record().history, started, sending),
                        rollback_holder="carol (flow run brave-otter, 1234)", rollback_expires=1_800_000_220.0)
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), unfinished, Weights(stable=100, canary=0),
                 None, limit=10, wall=1_800_000_221.0)  # carol's claim has lapsed: her run stopped
    out = " ".join(capsys.readouterr().out.split())
    assert ("the rollback's notice may not have been sent: carol's run stopped after 2027-01-15 08:02:40 UTC, "
            "between sending it and recording whether SNS took it; check with the topic's subscribers") in out, out
    assert "it pages, its notice opening with a line saying it may repeat that one" in out, out
    assert "its notice went out" not in out


def test_status_without_the_time_says_the_same_of_the_claim_and_the_notice(capsys) -> None:
    """Without the wall clock status named carol as carrying the rollback out, her claim renewed,
    and on the line above said her run had stopped while paging: no lapse is claimed without the
    time, on either line."""
    started = Transition(at=1_800_000_100.0, kind="rollback-start", actor="judge", comment="canary errors 9/600")
    sending = Transition(at=1_800_000_160.0, kind="notifying", actor="carol")
    unfinished = record(phase=RolloutPhase.ROLLING_BACK, history=(*record().history, started, sending),
                        rollback_holder="carol (flow run brave-otter, 1234)", rollback_expires=1_800_000_220.0)
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), unfinished, Weights(stable=100, canary=0),
                 None, limit=10)
    out = " ".join(capsys.readouterr().out.split())
    assert "carried out by carol (flow run brave-otter, 1234), its claim renewed until" in out, out
    assert ("the rollback's claim is renewed until 2027-01-15 08:03:40 UTC (wall clock), so its run may be sending it "
            "now") in out, out
    assert "stopped" not in out, out


def status_after_notifying(capsys, kind: str, comment: str) -> str:
    """`rollway status` of a rollback whose run set out to page at 08:02:40 and recorded ``kind``
    (with ``comment``) ten seconds later, on one line."""
    started = Transition(at=1_800_000_100.0, kind="rollback-start", actor="judge", comment="canary errors 9/600")
    sending = Transition(at=1_800_000_160.0, kind="notifying", actor="carol")
    after = Transition(at=1_800_000_170.0, kind=kind, actor="carol", comment=comment)
    unfinished = record(phase=RolloutPhase.ROLLING_BACK, history=(*record().history, started, sending, after))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), unfinished, Weights(stable=100, canary=0),
                 None, limit=10)
    return " ".join(capsys.readouterr().out.split())


def test_status_of_a_rollback_whose_notice_sns_refused_says_so_as_the_incident_report(capsys) -> None:
    """SNS refused the page: status said nothing of the notice, where the incident report names the
    refusal, so a person took people as paged."""
    out = status_after_notifying(capsys, "notice-failed",
                                 "the rollback's notice was not sent: NotFound: Topic does not exist")
    assert ("SNS refused the notice: NotFound: Topic does not exist (carol's run, at 2027-01-15 08:02:50 UTC): "
            "nobody was paged by it") in out, out
    assert "may not have been sent" not in out and "its notice went out" not in out, out


def test_status_of_a_rollback_whose_notice_lost_snss_answer_says_people_may_have_been_paged(capsys) -> None:
    """The publish was sent and SNS's answer lost: status said SNS refused it and nobody was paged."""
    out = status_after_notifying(capsys, "notice-unanswered",
                                 "the rollback's notice may have been sent, SNS's answer was lost: Read timeout")
    assert ("people may have been paged: carol's run sent the rollback's notice at 2027-01-15 08:02:40 UTC and SNS's "
            "answer was lost (Read timeout)") in out, out
    assert "SNS refused" not in out and "nobody was paged" not in out, out


def test_status_of_a_rollback_no_revision_can_finish_names_what_can(capsys) -> None:
    started = Transition(at=1_800_000_100.0, kind="rollback-start", actor="judge", comment="canary errors 9/600")
    unfinished = record(phase=RolloutPhase.ROLLING_BACK, history=(*record().history, started))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), unfinished, Weights(stable=100, canary=0),
                 None, limit=10, unrestorable="app:3 is INACTIVE [deregistered]: run the rollback flow")
    out = " ".join(capsys.readouterr().out.split())
    assert "`rollway abort` cannot finish it (app:3 is INACTIVE [deregistered]: run the rollback flow)" in out, out
    assert "`rollway abort` does" not in out, out


def test_status_of_a_rollback_under_way_names_who_carries_it_out(capsys) -> None:
    started = Transition(at=1_800_000_100.0, kind="rollback-start", actor="on-call", comment="errors")
    claimed = record(phase=RolloutPhase.ROLLING_BACK, history=(*record().history, started),
                     rollback_holder="on-call (flow run brave-otter, 1234)", rollback_expires=1_800_000_160.0)
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), claimed, Weights(stable=100, canary=0),
                 None, limit=10)
    out = " ".join(capsys.readouterr().out.split())
    # The claim is on the wall clock; the history printed beside it is on the rollout clock.
    assert ("carried out by on-call (flow run brave-otter, 1234), its claim renewed until 2027-01-15 08:02:40 UTC "
            "(wall clock; a rollback started meanwhile waits for it)") in out, out
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), claimed, Weights(stable=100, canary=0),
                 None, limit=10, wall=1_800_000_150.0)
    assert "its claim renewed until 2027-01-15 08:02:40 UTC" in " ".join(capsys.readouterr().out.split())


def test_status_of_a_rollback_whose_claim_lapsed_says_so_and_what_finishes_it(capsys) -> None:
    """The holder's run died and stopped renewing its claim: status still said its claim was
    renewed until a time already past, as if that run were finishing the rollback, where the
    incident report says the claim lapsed and a rollback started now takes it over at once. The
    rollback's line above it said what finishes it too, one way and then the other."""
    started = Transition(at=1_800_000_100.0, kind="rollback-start", actor="on-call", comment="errors")
    claimed = record(phase=RolloutPhase.ROLLING_BACK, history=(*record().history, started),
                     rollback_holder="on-call (flow run brave-otter, 1234)", rollback_expires=1_800_000_160.0)
    service = SimpleNamespace(name="svc-canary", targets=Targets())
    print_status(service, claimed, Weights(stable=100, canary=0), None, limit=10, wall=1_800_000_161.0)
    out = " ".join(capsys.readouterr().out.split())
    assert ("carried out by on-call (flow run brave-otter, 1234), whose claim lapsed at 2027-01-15 08:02:40 UTC "
            "(wall clock; it stopped renewing it: its run stopped or died); a rollback started now takes it over at "
            "once: run `rollway abort` (or the rollback flow) to finish it") in out, out
    assert "renewed until" not in out and "waits for it" not in out, out
    assert "a rollback was started (on-call: errors) and is not recorded as finished" in out, out
    assert "if no run is finishing it" not in out and out.count("`rollway abort`") == 1, out
    # No revision `rollway abort` would restore is ACTIVE: it names what finishes it instead.
    print_status(service, claimed, Weights(stable=100, canary=0), None, limit=10, wall=1_800_000_161.0,
                 unrestorable="app:3 is INACTIVE [deregistered]: run the rollback flow")
    out = " ".join(capsys.readouterr().out.split())
    assert ("a rollback started now takes it over at once: `rollway abort` cannot finish it (app:3 is INACTIVE "
            "[deregistered]: run the rollback flow)") in out, out
    assert out.count("`rollway abort` cannot finish it") == 1, out


class ForgetfulApi:
    """A Prefect client whose database no longer has the run the ledger names (a new server)."""

    api_url = "http://127.0.0.1:4200/api"

    def read_flow_run(self, run_id):
        from prefect.exceptions import ObjectNotFound

        raise ObjectNotFound(http_exc=None, help_message=f"flow run {run_id} not found")

    def read_flow_runs(self, **kwargs):
        return []


def test_a_ledger_owner_the_api_no_longer_has_is_not_a_crash() -> None:
    from rollway.cli.ops import NoPausedRun, find_paused_run

    service = SimpleNamespace(name="svc-canary", targets_block="rollway-targets")
    with pytest.raises(NoPausedRun, match="no paused rollout run"):
        find_paused_run(ForgetfulApi(), service, record())
    missing = uuid4()
    with pytest.raises(NoPausedRun, match=f"flow run {missing} is not on the Prefect API"):
        find_paused_run(ForgetfulApi(), service, record(), missing)


class FinishedRunApi(ForgetfulApi):
    """A Prefect client whose run is there, and finished."""

    def read_flow_run(self, run_id):
        from prefect.states import Completed

        return SimpleNamespace(id=run_id, name="calm-heron", state=Completed())


@pytest.mark.parametrize("api,what", [(ForgetfulApi(), "is not on the Prefect API"), (FinishedRunApi(), "not paused")],
                         ids=["unknown run", "finished run"])
def test_a_flow_run_option_naming_no_paused_run_says_what_to_do_next(api, what) -> None:
    """`promote --flow-run ID` on a run that is gone or finished said only that, and the person was
    left to guess another id."""
    from rollway.cli.ops import NoPausedRun, find_paused_run

    service = SimpleNamespace(name="svc-canary", targets_block="rollway-targets")
    with pytest.raises(NoPausedRun) as refused:
        find_paused_run(api, service, record(), uuid4())
    message = str(refused.value)
    assert what in message and "`rollway status`" in message and "nothing was answered" in message, message


@pytest.mark.parametrize("weight,ok", [(100, True), (50, False), (33, False), (5, False)])
def test_promote_refuses_a_weight_the_run_would_refuse(weight, ok) -> None:
    from rollway.cli.ops import OpsError, check_next_weight

    at_50 = record()  # stages 5, 50, 100; at 50%
    if ok:
        check_next_weight(at_50, weight)
    else:
        with pytest.raises(OpsError, match="nothing was approved"):
            check_next_weight(at_50, weight)


def test_commands_answer_bad_input_and_an_unreachable_api_in_one_line(capsys) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from rollway.cli import app

    def run(*args: str) -> int:
        try:
            return app(list(args), result_action="return_value")
        except SystemExit as stop:
            return int(stop.code)

    # A usage error, exit code 2 as every other refused option (it was 1, as a failure to read).
    assert run("status", "--history", "0") == 2
    assert "show at least 1 transition" in capsys.readouterr().err
    assert run("promote", "--flow-run", "crimson-fox") == 2  # a run's name, as the UI shows it first
    assert ("--flow-run 'crimson-fox' is not a flow run id (a UUID, not the run's name): `rollway status` names the "
            "paused run with its id, or leave --flow-run out") in " ".join(capsys.readouterr().err.split())
    assert run("demo", "--speed", "0") == 2
    assert "not a usable rollout clock speed" in capsys.readouterr().err
    # Refused before the embedded AWS starts: no traffic would leave both scenarios to fail.
    for rps in ("-5", "0", "nan"):
        assert run("demo", "--rps", rps) == 2
        assert "--rps" in capsys.readouterr().err
    with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{free_port(None)}/api"}):
        assert run("status") == 1
    err = capsys.readouterr().err
    assert "cannot reach the Prefect API" in err and "Traceback" not in err


def test_status_reports_a_block_that_fails_validation_in_one_line(monkeypatch, capsys, an_api_url) -> None:
    """A block saved before a rule existed (region "us west 2", an empty metrics namespace) no
    longer validates: Prefect's Block.load raises a RuntimeError for it, which status printed
    as a traceback."""
    import flows.env
    from rollway.cli import app

    def unloadable(targets_block):
        raise RuntimeError(f"Unable to load {targets_block!r} of block type 'rollway-targets' due to failed validation.")

    monkeypatch.setattr(flows.env, "load_targets", unloadable)
    try:
        code = app(["status", "--targets-block", "old-block"], result_action="return_value")
    except SystemExit as stop:
        code = int(stop.code)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "Unable to load 'old-block'" in err and "failed validation" in err


@pytest.mark.parametrize("command", ["promote", "abort"])
@pytest.mark.parametrize("name", ["", "   "])
def test_an_explicitly_blank_approver_is_refused_not_replaced_by_the_os_user(command, name, capsys) -> None:
    """`--approver ''` recorded the OS user's name (``approver or getpass.getuser()``): only an
    omitted --approver defaults to it. Refused before any block, API or AWS call."""
    from rollway.cli import app

    try:
        code = app([command, "--approver", name], result_action="return_value")
    except SystemExit as stop:
        code = int(stop.code)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--approver" in err and "blank" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["promote", "hold", "abort"])
@pytest.mark.parametrize("name", ["eve\n01:02:03 INFO approved by the-cto", "mallory\x1b[2K"])
def test_an_approver_with_control_characters_is_refused_before_anything_is_read(command, name, capsys) -> None:
    """The run's log prints the name as typed: a line break in it forged a line there. The form
    refuses it, and so does the command, in words, before any block, API or AWS call."""
    from rollway.cli import app

    try:
        code = app([command, "--approver", name], result_action="return_value")
    except SystemExit as stop:
        code = int(stop.code)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "--approver" in err and "no control characters" in err and "nothing was done" in err, err
    assert "pattern" not in err and "Traceback" not in err, err


@pytest.mark.parametrize("command", ["promote", "abort"])
def test_an_omitted_approver_where_the_os_has_no_user_name_says_to_pass_one(command, monkeypatch, capsys) -> None:
    """A container run under a uid with no passwd entry and no USER/LOGNAME: getpass.getuser()
    raises, and the command died with a KeyError traceback. Refused before anything is read."""
    import pwd

    from rollway.cli import app

    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    try:
        code = app([command], result_action="return_value")
    except SystemExit as stop:
        code = int(stop.code)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "pass --approver" in err and "Traceback" not in err


@pytest.mark.parametrize("args, option", [
    (["abort", "--reason", "x" * 1001], "--reason"),
    (["promote", "--comment", "x" * 1001], "--comment"),
    (["promote", "--weight", "0"], "--weight"),
    (["abort", "--approver", "a" * 201], "--approver"),
])
def test_an_answer_the_form_would_refuse_is_refused_before_anything_is_read(args, option, capsys) -> None:
    """The server checks a resume against the form's schema: a 1,001-character reason was refused
    only there, after the paused run was found, and the abort did not abort. Refused up front
    now, before any block, API or AWS call (none is set up here), naming the option."""
    from rollway.cli import app

    try:
        code = app(args, result_action="return_value")
    except SystemExit as stop:
        code = int(stop.code)
    err = capsys.readouterr().err
    assert code == 2, err
    assert option in err and "nothing was done" in err and "Traceback" not in err


def test_command_defaults_name_the_blocks_that_up_saves() -> None:
    from blocks import register

    assert (TARGETS_BLOCK, CREDENTIALS_BLOCK) == (register.TARGETS_BLOCK, register.CREDENTIALS_BLOCK)


def _commands(app, path=()):
    for name in app:
        if not name.startswith("-"):
            if app[name].default_command is not None:
                yield " ".join((*path, name)), app[name].default_command
            yield from _commands(app[name], (*path, name))


def test_every_option_of_every_command_says_what_it_is_in_its_help() -> None:
    """`rollway flags list|get|set|eval --help` showed --json, --targets-block and
    --credentials-block with a default and no word on what they are, while every other command
    described them. cyclopts takes each option's help from its function's Args section."""
    import inspect

    import docstring_parser

    from rollway.cli import app

    undocumented = {}
    for command, function in _commands(app):
        described = {p.arg_name for p in docstring_parser.parse(function.__doc__ or "").params if p.description}
        missing = [name for name in inspect.signature(function).parameters if name not in described]
        if missing:
            undocumented[command] = missing
    assert not undocumented


def test_promote_help_says_weight_skips_to_a_later_stage(capsys) -> None:
    """`--weight` read "a different next canary weight, within the spec's stages", so an earlier
    stage (or the current one) looked allowed; the command refuses both, approving nothing."""
    _cli("promote", "--help")
    shown = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "skip to this later stage's canary weight" in shown and "nothing approved" in shown, shown


# --- deployments: serve.py and prefect.yaml ----------------------------------------------


@pytest.fixture(scope="module")
def served():
    from deployments.serve import build_deployments

    clock = ClockSettings(speed=60, anchor=1_795_000_000.0)
    spec = RolloutSpec(image="repo/app:2.0.0")
    return {d.flow_name: d for d in build_deployments(
        targets_block="t", aws_credentials_block="c", clock=clock, spec=spec, phased=False,
    )}, clock, spec


def test_every_flow_is_served_with_the_blocks_and_clock_as_defaults(served) -> None:
    deployments, clock, spec = served
    assert set(deployments) == FLOWS
    assert {d.name for d in deployments.values()} == {"rollway"}
    for name, deployment in deployments.items():
        assert deployment.parameters["targets_block"] == "t", name
        assert deployment.parameters["aws_credentials_block"] == "c", name
    for name in FLOWS - UNCLOCKED:
        assert deployments[name].parameters["clock"] == clock.model_dump(mode="json"), name
    # The one destructive flow: a click from the UI shows its plan before anything is deleted.
    assert deployments["cleanup"].parameters["dry_run"] is True
    # The jobs that change the account outside the rollout run one at a time.
    assert {name for name, d in deployments.items() if d.concurrency_limit == 1} == {
        "deploy_infrastructure", "publish_container", "cleanup"}
    progressive = deployments["progressive_rollout"]
    assert progressive.parameters["spec"] == spec.model_dump(mode="json")
    # The README has a person start `monitor` by hand from the UI: its form starts with the spec too.
    assert deployments["monitor"].parameters["spec"] == spec.model_dump(mode="json")
    assert deployments["monitor"].entrypoint == "flows.monitor.monitor"
    assert progressive.parameters["phased"] is False
    assert progressive.entrypoint == "flows.progressive.progressive_rollout"


def test_only_advance_phase_runs_on_the_weekly_schedule(served) -> None:
    deployments, _, _ = served
    scheduled = {name: d.schedules for name, d in deployments.items() if d.schedules}
    assert list(scheduled) == ["advance_phase"]
    (weekly,) = scheduled["advance_phase"]
    assert (weekly.schedule.cron, weekly.schedule.timezone, weekly.active) == ("0 9 * * MON", "UTC", True)


def test_a_prefilled_spec_counts_weeks_where_the_weekly_cron_fires() -> None:
    """A rollout started from the form with the pre-filled spec must count its calendar weeks in
    the cron's zone, or the Monday run would compare Berlin's Monday with UTC weeks. A zone the
    spec names itself stands. advance_phase gets the spec too: its hook's flags when the ledger
    cannot be read."""
    from deployments.serve import build_deployments

    def served_with(spec):
        return {d.flow_name: d for d in build_deployments(spec=spec, weekly_timezone="Europe/Berlin")}

    berlin = served_with(RolloutSpec(image="repo/app:2.0.0"))
    for name in ("canary", "progressive_rollout", "advance_phase"):
        assert berlin[name].parameters["spec"]["weekly_timezone"] == "Europe/Berlin", name
    (weekly,) = berlin["advance_phase"].schedules
    assert weekly.schedule.timezone == "Europe/Berlin"
    own = served_with(RolloutSpec(image="repo/app:2.0.0", weekly_timezone="Asia/Kolkata"))
    assert own["progressive_rollout"].parameters["spec"]["weekly_timezone"] == "Asia/Kolkata"


def test_prefect_yaml_describes_the_same_flows_and_schedule_as_serve(served) -> None:
    from prefect.cli.deploy._models import PrefectYamlModel

    deployments, _, _ = served
    model = PrefectYamlModel.model_validate(yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text()))
    by_entrypoint = {d.entrypoint: d for d in model.deployments}
    # The same module paths as serve.py (see test_a_work_pool_run_that_refused_to_start_is_not_rolled_back).
    assert set(by_entrypoint) == {d.entrypoint for d in deployments.values()}
    for entrypoint, deployment in by_entrypoint.items():
        assert deployment.work_pool.name == "rollway-process", entrypoint
        assert {"targets_block", "aws_credentials_block"} <= set(deployment.parameters), entrypoint
    assert by_entrypoint["flows.cleanup.cleanup"].parameters["dry_run"] is True
    assert {e for e, d in by_entrypoint.items() if d.concurrency_limit == 1} == {
        "flows.infra.deploy_infrastructure", "flows.container.publish_container", "flows.cleanup.cleanup"}
    (weekly,) = by_entrypoint["flows.progressive.advance_phase"].schedules
    assert (weekly.cron, weekly.timezone, weekly.active) == ("0 9 * * MON", "UTC", True)


def test_prefect_yaml_and_serve_describe_each_deployment_alike() -> None:
    """One truth for a deployment served by serve.py or deployed from prefect.yaml: the same
    description, schedule and run parameters (a parameter one of them leaves out has the flow's
    own default, which the other must then give). advance_phase's descriptions had drifted apart:
    "does nothing twice in a week" in the yaml, a calendar week of the rollout's zone in serve.py."""
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.flows import load_flow_from_entrypoint

    from deployments.serve import build_deployments

    model = PrefectYamlModel.model_validate(yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text()))
    blocks = {"targets_block": "rollway-targets", "aws_credentials_block": "rollway-aws"}
    served = {d.entrypoint: d for d in build_deployments(**blocks)}
    for declared in model.deployments:
        entrypoint, serve = declared.entrypoint, served[declared.entrypoint]
        assert " ".join(declared.description.split()) == serve.description, entrypoint
        defaults = {name: schema["default"] for name, schema in
                    load_flow_from_entrypoint(entrypoint).parameters.properties.items() if "default" in schema}
        assert {**defaults, **declared.parameters} == {**defaults, **serve.parameters}, entrypoint
        assert [(s.cron, s.timezone, s.active) for s in declared.schedules or []] == [
            (s.schedule.cron, s.schedule.timezone, s.active) for s in serve.schedules or []], entrypoint
        assert declared.concurrency_limit == serve.concurrency_limit and declared.tags == serve.tags, entrypoint


def _addressed(text: str) -> list[str]:
    """Every ``<flow>/<deployment>`` that ``text`` names, for a flow rollway deploys."""
    import re

    flows = "|".join(sorted(map(re.escape, FLOWS), key=len, reverse=True))
    # "canary/baseline" is the README's rate ratio, not a deployment.
    return [m.group(0) for m in re.finditer(rf"(?<![\w./-])(?:{flows})/(?!baseline\b)[\w-]+", text)]


def test_every_deployment_is_addressed_by_one_name_wherever_it_was_deployed_from() -> None:
    """prefect.yaml named its deployments `webordinary` (the service: a default, not rollway's) while
    serve.py and `rollway up` name them `rollway`, so the README's "Deployments ->
    progressive_rollout/rollway" and the commands' `prefect deployment run progressive_rollout/rollway`
    were wrong on an account deployed from prefect.yaml. One name, in prefect.yaml, serve.py, the README,
    the commands' messages and prefect.yaml's comments."""
    from deployments.serve import DEPLOYMENT, build_deployments

    declared = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())["deployments"]
    assert {d["name"] for d in declared} == {d.name for d in build_deployments()} == {DEPLOYMENT}
    wrong = {}
    for path in [ROOT / "README.md", ROOT / "deployments" / "prefect.yaml", *sorted((ROOT / "rollway" / "cli").glob("*.py"))]:
        named = _addressed(path.read_text(encoding="utf-8"))
        if off := sorted({n for n in named if n.split("/", 1)[1] != DEPLOYMENT}):
            wrong[path.relative_to(ROOT).as_posix()] = off
    assert not wrong, f"deployments addressed by another name than {DEPLOYMENT!r}: {wrong}"
    said = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"`deployments/prefect.yaml` deploys the same thirteen flows to a process work pool (`rollway-process`) as `<flow>/{DEPLOYMENT}`" in said


@pytest.mark.parametrize(
    ("flow_function", "exception", "message"),
    [
        ("canary", "RolloutRefused", "the canary target group already carries 25% of traffic"),
        ("advance_phase", "PhaseRefused", "phase 1 has not passed"),
        ("progressive_rollout", "DriftDetected", "live 50/50, ledger 95/5"),
    ],
)
def test_a_work_pool_run_that_refused_to_start_is_not_rolled_back(monkeypatch, flow_function, exception, message) -> None:
    """A worker loads each prefect.yaml entrypoint as written. The rollback hook leaves alone a
    run that refused to start (another rollout holds the traffic, drift, a phase not passed),
    by the exception's class; loaded from a file path those classes were other ones, and the
    hook rolled back the rollout the run had refused to touch."""
    from prefect.flows import load_flow_from_entrypoint
    from prefect.states import Failed

    from flows.hooks import leave_alone

    declared = [d["entrypoint"] for d in yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())["deployments"]]
    (entrypoint,) = [e for e in declared if e.replace(":", ".").rsplit(".", 1)[-1] == flow_function]
    monkeypatch.chdir(ROOT)  # `prefect deploy` is run from the project root; the worker runs there
    monkeypatch.setattr(sys, "path", list(sys.path))  # a script entrypoint would prepend its folder
    loaded = load_flow_from_entrypoint(entrypoint)
    refused = getattr(sys.modules[loaded.fn.__module__], exception)(message)
    assert leave_alone(Failed(data=refused), {}) is not None, (
        f"a {loaded.name} run loaded from {entrypoint!r} that raised {exception} would be rolled back"
    )


@pytest.mark.parametrize("options,message", [
    (["--speed", "60"], "needs an anchor"),
    (["--speed", "0"], "speed"),
    (["--speed", "60", "--anchor", "nan"], "anchor"),
    # It became the default of every deployment, and each paused run then failed.
    (["--approval-poll-seconds", "-1"], "--approval-poll-seconds"),
    (["--approval-poll-seconds", "3600"], "--approval-poll-seconds 3600: must be 1..300"),
    (["--poll-seconds", "0"], "--poll-seconds"),
    # Every run started from the UI or a schedule waited until the runner's next look.
    (["--poll-seconds", "1e12"], "--poll-seconds 1e+12: must be a positive number of seconds, at most 300"),
    (["--limit", "0"], "--limit"),
    (["--spec-json", "{}"], "--spec-json"),
    (["--spec-json", "{not json"], "--spec-json"),
    # validate_deployment's default: every run of it would fail on an unusable address.
    (["--validation-url", "ftp://127.0.0.1:5000"], "--validation-url is not a usable base URL"),
    (["--validation-url", "http://127.0.0.1:5000/?q=1"], "--validation-url is not a usable base URL"),
    # The weekly schedule: registered as given, a bad one failed the registration with a traceback.
    # In the spec's words for a zone it does not know, not Prefect's cron validation's.
    (["--weekly-timezone", "Europe/Berln"], "error: --weekly-timezone 'Europe/Berln' is not an IANA time zone this "
                                            "host knows (names are case-sensitive Area/Location keys such as UTC, "),
    (["--weekly-cron", "0 9 * * XYZ"], "--weekly-cron '0 9 * * XYZ'"),
    # What cyclopts refuses itself was drawn in a box several lines high.
    (["--bogus"], "error: Unknown option: --bogus. (see `python deployments/serve.py --help`)"),
    (["--limit", "abc"], "error: Invalid value for --limit: 'abc' is not a whole number"),
])
def test_serve_script_refuses_bad_options_in_one_line(options, message, capsys) -> None:
    """Refused before anything is registered, with the error on stderr and exit code 2, not a
    traceback (or, for the poll interval, a default every deployment's runs would fail on).

    Through ``run``, what the script runs on its command line, in this process: a process of its
    own per case imported Prefect and every flow first, about 2 s of CPU each, for a check made
    before any of them is used. test_the_serve_script_refuses_a_bad_option_as_a_process runs
    the script itself."""
    import deployments.serve as serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # An API that answers nothing, as the script's process had: an option let through fails on it.
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}), pytest.raises(SystemExit) as exited:
        serve.run(options)
    stderr = capsys.readouterr().err
    assert exited.value.code == 2, stderr
    assert message in stderr and "Traceback" not in stderr, stderr


def test_the_serve_script_refuses_a_bad_option_as_a_process() -> None:
    """`python deployments/serve.py --bogus`: one error line on stderr and exit code 2 from the
    script's own process (cyclopts's box, drawn for a terminal, was several lines high)."""
    import subprocess

    done = subprocess.run(
        [sys.executable, str(ROOT / "deployments" / "serve.py"), "--bogus"],
        # PYTHONPATH: the script imports this tree's rollway, not the one installed in the venv.
        env=child_env({"PREFECT_API_URL": "http://127.0.0.1:9/api", "PYTHONPATH": str(ROOT)}),
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "error: Unknown option: --bogus. (see `python deployments/serve.py --help`)" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_serve_script_without_an_api_url_registers_nothing(tmp_path) -> None:
    """Without PREFECT_API_URL serve.py said its deployments were served, on a temporary server
    of its own that no UI, worker or command reached: it is refused on one line instead."""
    import os
    import subprocess

    env = {k: v for k, v in child_env({"PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path)}).items()
           if k not in ("PREFECT_API_URL", "PREFECT_PROFILES_PATH")}
    assert "PREFECT_API_URL" not in env and os.path.isdir(env["PREFECT_HOME"])
    done = subprocess.run(
        [sys.executable, str(ROOT / "deployments" / "serve.py"), "--targets-block", "rollway-targets"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.startswith("error: PREFECT_API_URL is not set") and "nothing was registered" in done.stderr
    assert "served" not in done.stdout and "Traceback" not in done.stderr, (done.stdout, done.stderr)


def test_serve_script_serves_advance_phase_on_the_weekly_cron_and_zone_given(monkeypatch, an_api_url) -> None:
    """serve.py had no options for them: a team whose Monday is Berlin's ran week 2 at 10:00."""
    import deployments.serve as serve

    served: list = []
    monkeypatch.setattr(serve, "serve_all", lambda deployments, **_: served.extend(deployments))
    serve.main(weekly_cron="30 7 * * TUE", weekly_timezone="Europe/Berlin", spec_json=RolloutSpec(
        image="repo/app:2.0.0").model_dump_json(exclude_unset=True))
    by_name = {d.flow_name: d for d in served}
    (weekly,) = by_name["advance_phase"].schedules
    assert (weekly.schedule.cron, weekly.schedule.timezone) == ("30 7 * * TUE", "Europe/Berlin")
    assert by_name["progressive_rollout"].parameters["spec"]["weekly_timezone"] == "Europe/Berlin"


@pytest.mark.parametrize("cron", ["0 9 30 2 *", "0 9 31 4 *", "0 9 31 2 MON"])
def test_serve_script_refuses_a_weekly_cron_that_never_fires(cron, monkeypatch, capsys) -> None:
    """A cron no date matches (30 February) was taken: advance_phase was served on a schedule that
    never ran, and every rollout stopped after its first phase without a word."""
    import deployments.serve as serve

    served: list = []
    monkeypatch.setattr(serve, "serve_all", lambda deployments, **_: served.extend(deployments))
    with pytest.raises(SystemExit) as exited:
        serve.main(weekly_cron=cron)
    assert exited.value.code == 2 and not served
    said = capsys.readouterr().err
    assert f"--weekly-cron {cron!r} never fires" in said and "advance_phase" in said, said


def test_serve_script_refuses_a_prefilled_spec_whose_weeks_are_another_zones_than_the_cron(monkeypatch, capsys) -> None:
    """A pre-filled spec naming America/New_York beside the default Monday 09:00 UTC cron was
    served without a word: every rollout started from the form then started its weekly phases, and
    asked its approvals, at 04:00 or 05:00 New York time, when an unanswered pause rolls back."""
    import deployments.serve as serve

    served: list = []
    monkeypatch.setattr(serve, "serve_all", lambda deployments, **_: served.extend(deployments))
    spec = RolloutSpec(image="repo/app:2.0.0", weekly_timezone="America/New_York").model_dump_json(exclude_unset=True)
    with pytest.raises(SystemExit) as exited:
        serve.main(spec_json=spec)
    assert exited.value.code == 2 and not served
    said = capsys.readouterr().err
    assert said.startswith("error: --spec-json's weekly_timezone America/New_York is not --weekly-timezone UTC: "
                           "advance_phase's weekly schedule ('0 9 * * MON') fires in UTC"), said
    assert " 09:00 UTC is Mon " in said and (" 04:00 EST " in said or " 05:00 EDT " in said), said
    assert "--weekly-timezone America/New_York, or leave weekly_timezone out of the spec" in said, said


def test_serve_script_takes_a_prefilled_spec_whose_zone_keeps_the_crons_clocks(monkeypatch, an_api_url) -> None:
    """Two names of one calendar (Etc/UTC beside UTC, Europe/Paris beside Europe/Berlin) disagree on nothing."""
    import deployments.serve as serve

    served: list = []
    monkeypatch.setattr(serve, "serve_all", lambda deployments, **_: served.extend(deployments))
    for spec_zone, cron_zone in (("Etc/UTC", "UTC"), ("Europe/Paris", "Europe/Berlin")):
        serve.main(weekly_timezone=cron_zone, spec_json=RolloutSpec(
            image="repo/app:2.0.0", weekly_timezone=spec_zone).model_dump_json(exclude_unset=True))
    assert len([d for d in served if d.flow_name == "advance_phase"]) == 2


def test_validate_deployment_defaults_to_the_given_validation_spec_or_else_its_own(served) -> None:
    """Without one, the flow's own default (Webordinary's real addresses) stands; the spec
    parameter of the rollout flows is not mistaken for it."""
    from deployments.serve import build_deployments, validation_spec

    deployments, _, rollout = served
    assert "spec" not in deployments["validate_deployment"].parameters
    validation = validation_spec("http://127.0.0.1:5000")
    pointed = {d.flow_name: d for d in build_deployments(spec=rollout, validation=validation)}
    assert pointed["validate_deployment"].parameters["spec"] == validation.model_dump(mode="json")
    assert validation.health_url == "http://127.0.0.1:5000/health"
    assert validation.sessions_url == "http://127.0.0.1:5000/sessions"
    assert pointed["progressive_rollout"].parameters["spec"] == rollout.model_dump(mode="json")


def test_a_validation_spec_pinning_its_checks_gives_the_infrastructure_flows_its_header_and_its_checks(served) -> None:
    """The checklist checks the listener rule pinning the validation's checks for the header they
    carry: served without it, deploy_infrastructure's checklist passed over a listener with no such rule.
    It judges that rule by the requests the checks send, from the same spec: given the header alone,
    it judged by the weighted rule's requests, and failed a pin on the checks' paths the validation takes."""
    from deployments.serve import build_deployments, validation_spec

    deployments, _, rollout = served
    assert "canary_header" not in deployments["deploy_infrastructure"].parameters
    assert "validation_spec" not in deployments["deploy_infrastructure"].parameters
    pinned = validation_spec("http://127.0.0.1:5000").model_copy(update={"canary_header": "X-Rollway-Target: canary"})
    pointed = {d.flow_name: d for d in build_deployments(spec=rollout, validation=pinned)}
    for name in ("deploy_infrastructure", "verify_infrastructure"):
        assert pointed[name].parameters["canary_header"] == "X-Rollway-Target: canary", name
        assert pointed[name].parameters["validation_spec"] == pinned.model_dump(mode="json"), name
        # The form validates it as the flow's parameter: the spec validate_deployment is given.
        assert pointed[name]._parameter_openapi_schema.properties["validation_spec"]["title"] == (
            "Validation spec (the validation's: its checks' URLs)")
    unpinned = {d.flow_name: d for d in build_deployments(spec=rollout,
                                                          validation=validation_spec("http://127.0.0.1:5000"))}
    for name in ("deploy_infrastructure", "verify_infrastructure"):
        assert not {"canary_header", "validation_spec"} & set(unpinned[name].parameters), name


def test_deploy_infrastructure_is_described_as_it_is_configured() -> None:
    """Its description said "then verify the pre-deployment checklist" of a deployment whose verify
    is off, and named the header's rule only as "with canary_header" of one given the header."""
    from deployments.serve import build_deployments, validation_spec

    def infra(**given):
        (deployment,) = [d for d in build_deployments(**given) if d.flow_name == "deploy_infrastructure"]
        return deployment

    pinned = validation_spec("http://127.0.0.1:5000").model_copy(update={"canary_header": "X-Rollway-Target: canary"})
    verifying = infra(validation=pinned)
    assert "verify" not in verifying.parameters
    assert verifying.description == (
        "Deploy the CDK app's stacks in dependency order (one cdk deploy each), then verify the pre-deployment "
        "checklist (the listener rule pinning validate_deployment's checks carrying `X-Rollway-Target: canary` too, "
        "judged by the requests they send); resume a failed run with from_stack.")
    for given in ({"validation": pinned}, {}):
        unverified = infra(verify_after_deploy=False, **given)
        assert unverified.parameters["verify"] is False
        assert unverified.description == (
            "Deploy the CDK app's stacks in dependency order (one cdk deploy each), without the pre-deployment "
            "checklist (verify is off: run verify_infrastructure for it); resume a failed run with from_stack.")


def test_serve_process_points_validate_deployment_at_the_app(monkeypatch, an_api_url) -> None:
    """serve_process's validation_url (what `rollway up` hands it) becomes validate_deployment's
    default, and the checks it makes answer on the stand-in app up starts; without it the
    serve script gets no --validation-url (Webordinary's real addresses)."""
    import httpx

    import deployments.serve as serve
    from rollway.cli.processes import SERVE_SCRIPT, serve_process
    from rollway.sim.app import ValidationApp
    from rollway.validation import ValidationSpec

    def options(**kwargs) -> list[str]:
        argv = serve_process("http://127.0.0.1:1/api", targets_block="t", credentials_block=None,
                             clock=ClockSettings(), **kwargs).argv
        assert argv[:2] == [sys.executable, str(SERVE_SCRIPT)]
        return argv[2:]

    assert "--validation-url" not in options()
    served: dict = {}
    monkeypatch.setattr(serve, "serve_all", lambda deployments, **kwargs: served.update(
        {d.flow_name: d for d in deployments}))
    with ValidationApp() as app:
        with pytest.raises(SystemExit) as done:
            serve.cli(options(validation_url=app.url))
        assert done.value.code == 0
        spec = ValidationSpec.model_validate(served["validate_deployment"].parameters["spec"])
        assert httpx.get(spec.health_url).status_code == 200
        session = httpx.post(spec.sessions_url, json={"clientId": spec.client_id, "userId": spec.user_id})
        assert session.status_code == 201
        message = httpx.post(spec.messages_url(session.json()["sessionId"]), json={"instruction": spec.instruction})
        assert message.status_code == 202


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_up_leaves_the_weekly_zone_to_serve_py_which_gives_the_schedule_and_the_form_one(zone, monkeypatch,
                                                                                        an_api_url) -> None:
    """`rollway up` handed serve.py its pre-filled spec with every field written out, the zone
    among them: serve.py then took the spec to name its own zone, and its fill-in of the schedule's
    never applied. Under a serve.py whose weekly zone was not UTC, the runner refused to start (the
    spec's UTC weeks against the schedule's), and `rollway up` stopped there."""
    import deployments.serve as serve
    from rollway.cli.processes import serve_process
    from rollway.cli.up import prefilled_spec

    spec_json = prefilled_spec(SimpleNamespace(repository_uri="123456789012.dkr.ecr.us-west-2.amazonaws.com/edit"))
    argv = serve_process("http://127.0.0.1:1/api", targets_block="t", credentials_block=None, clock=ClockSettings(),
                         spec_json=spec_json).argv[2:]
    served: dict = {}
    monkeypatch.setattr(serve, "serve_all", lambda deployments, **_: served.update(
        {d.flow_name: d for d in deployments}))
    with pytest.raises(SystemExit) as done:
        serve.cli([*argv, "--weekly-timezone", zone])
    assert done.value.code == 0
    (weekly,) = served["advance_phase"].schedules
    assert weekly.schedule.timezone == zone
    for flow in ("progressive_rollout", "advance_phase", "monitor"):
        assert served[flow].parameters["spec"]["weekly_timezone"] == zone, flow
    assert served["progressive_rollout"].parameters["spec"]["image"].endswith("/edit:2.0.0")


def test_up_gives_the_embedded_account_what_verify_infrastructure_checks(aws) -> None:
    """provision leaves the alert topic without a subscriber and no stacks (findings the
    checklist's own tests need); `rollway up` adds them, so the checklist passes there, and
    the inbox receives what the alert topic publishes. Running it again changes nothing."""
    from flows.infra import checker_for
    from rollway.cli.up import INBOX_QUEUE, prepare_checklist

    assert not checker_for(aws.get_client, aws.targets).check().passed
    url = prepare_checklist(aws.get_client, aws.targets, aws.topology)
    assert prepare_checklist(aws.get_client, aws.targets, aws.topology) == url
    checklist = checker_for(aws.get_client, aws.targets).check()
    assert checklist.passed, checklist.summary()
    assert url.endswith("/" + INBOX_QUEUE)
    subscriptions = aws.get_client("sns").list_subscriptions_by_topic(TopicArn=aws.topology.topic_arn)
    assert len(subscriptions["Subscriptions"]) == 1
    stacks = aws.get_client("cloudformation").list_stacks()["StackSummaries"]
    assert sorted(s["StackName"] for s in stacks) == sorted(aws.targets.stacks)
    aws.get_client("sns").publish(TopicArn=aws.topology.topic_arn, Subject="rollback", Message="rolled back")
    got = aws.get_client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["Subject"] for m in got] == ["rollback"]


def test_up_takes_a_stack_its_own_retried_create_made_as_recorded(aws) -> None:
    """botocore sends a CreateStack again when the first attempt's answer is late (the embedded
    server's first CloudFormation request imports every service's models); the first attempt
    made the stack, so the resend is refused with AlreadyExistsException. `rollway up` wanted
    the stack there: it goes on, and the checklist passes."""
    from flows.infra import checker_for
    from rollway.cli.up import prepare_checklist

    first = aws.targets.stacks[0]
    lost = []

    def made_by_a_lost_attempt(params, **_):
        if params["StackName"] == first and not lost:
            lost.append(first)  # before the call: it goes through this client's events too
            aws.get_client("cloudformation").create_stack(StackName=first, TemplateBody=params["TemplateBody"])

    def get_client(service: str):
        client = aws.get_client(service)
        if service == "cloudformation":
            client.meta.events.register("provide-client-params.cloudformation.CreateStack", made_by_a_lost_attempt)
        return client

    try:
        prepare_checklist(get_client, aws.targets, aws.topology)
    finally:
        aws.get_client("cloudformation").meta.events.unregister(
            "provide-client-params.cloudformation.CreateStack", made_by_a_lost_attempt)
    assert lost == [first]
    stacks = aws.get_client("cloudformation").list_stacks()["StackSummaries"]
    assert sorted(s["StackName"] for s in stacks) == sorted(aws.targets.stacks)
    checklist = checker_for(aws.get_client, aws.targets).check()
    assert checklist.passed, checklist.summary()


def test_up_serves_with_the_app_it_started_and_names_the_inbox_and_stacks(monkeypatch, tmp_path, capsys) -> None:
    """`rollway up` on the embedded AWS, with stand-ins for the server and the runner: the
    runner is handed --validation-url of an app that answers while up runs (and is stopped
    with everything else), and the instructions name the inbox and the recorded stacks."""
    import urllib.request

    import blocks.register
    import rollway.cli.up as up
    from rollway.cli.processes import serve_process

    class QuietServer(Child):
        def __init__(self, home, port, log=None, pass_fds=()) -> None:
            super().__init__("prefect server", [sys.executable, "-c", "import time; time.sleep(60)"], {}, log,
                             pass_fds)
            self.url = self.api_url = f"http://127.0.0.1:{port}"

        def wait_healthy(self, timeout_seconds: float = 0) -> None:
            pass

    class Nothing:
        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

    # The runner stand-in asks the app it was pointed at for its health, says so and stops.
    probe = ("import sys, urllib.request; url = sys.argv[sys.argv.index('--validation-url') + 1]; "
             "print('validation-url', url, urllib.request.urlopen(url + '/health').status, flush=True); sys.exit(3)")
    monkeypatch.setattr(up, "PrefectServer", QuietServer)
    monkeypatch.setattr(up, "stop_on_signals", lambda: None)
    monkeypatch.setattr(up, "simulator_for", lambda *args, **kwargs: Nothing())
    # ...handed the options the real serve_process makes of what up gives it.
    monkeypatch.setattr(up, "serve_process", lambda api_url, **kwargs: Child(
        "serve", [sys.executable, "-c", probe, *serve_process(api_url, **kwargs).argv[2:]], child_env({}),
        tmp_path / "serve.log"))
    monkeypatch.setattr(blocks.register, "save_blocks", lambda *args, **kwargs: None)
    # No API to register with: the wait for the runner's deployments is test_up_processes's subject.
    monkeypatch.setattr(up, "wait_served", lambda *args, **kwargs: 12)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))

    assert up.run_up(port=None, speed=60.0, rps=0.0, seed=7, poll_seconds=1.0) == 1
    out, err = capsys.readouterr()
    (line,) = [line for line in (tmp_path / "serve.log").read_text().splitlines() if line.startswith("validation-url")]
    _, url, status = line.split()
    assert status == "200"
    assert f"Edit API:        {url}" in out
    assert f"SQS queue {up.INBOX_QUEUE}" in out
    assert "Stacks recorded for the checklist: " + ", ".join(Targets().stacks) in out
    with pytest.raises(OSError):  # stopped with everything else
        urllib.request.urlopen(url + "/health", timeout=5)


def test_up_images_pass_or_fail_validations_success_rate_floor_by_design_not_by_chance() -> None:
    """validate_deployment's SuccessRate check under `rollway up`: the healthy images clear the
    default floor by more than three standard errors of a 5-minute window at 10 requests per
    second (at the floor itself, half the runs failed), and :2.1.0 stays below it."""
    import math

    from rollway.cli.up import HEALTHY, IMAGE_PROFILES
    from rollway.validation import ValidationSpec

    spec = ValidationSpec()
    requests = 10 * 60 * spec.success_rate_window_minutes
    for tag, profile in {"stable": HEALTHY, **IMAGE_PROFILES}.items():
        p = profile.error_probability
        margin = 100 * (1 - p) - spec.success_rate_floor
        noise = 100 * math.sqrt(p * (1 - p) / requests)
        assert (margin > 3 * noise) if tag != "2.1.0" else (margin < -3 * noise), (tag, margin, noise)


# --- child processes ----------------------------------------------------------------------


def test_free_port_prefers_the_given_port_when_nothing_listens_on_it() -> None:
    port = free_port()
    assert port_is_free(port)
    assert free_port(port) == port


def test_stopping_a_child_also_stops_what_it_started(tmp_path: Path) -> None:
    grandchild_pid = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time, pathlib\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"pathlib.Path({str(grandchild_pid)!r}).write_text(str(p.pid))\n"
        "time.sleep(120)\n"
    )
    child = Child("sleeper", [sys.executable, "-c", script], child_env({}), tmp_path / "log").start()
    deadline = time.monotonic() + 30
    while not grandchild_pid.exists() or not grandchild_pid.read_text():
        child.check_running()
        assert time.monotonic() < deadline, "the child never started its own child"
        time.sleep(0.05)
    grandchild = int(grandchild_pid.read_text())
    leader = child.pid

    assert child.stop(timeout_seconds=5) == -signal.SIGTERM
    for pid in (leader, grandchild):
        assert not alive(pid), f"process {pid} outlived stop()"


@pytest.mark.parametrize("answer", [
    Transition(at=1_800_000_200.0, kind="reject", actor="bob", comment="reject: 5xx on checkout"),
    Transition(at=1_800_000_200.0, kind="timeout", actor="timeout", comment="reject: no answer within 3600 s"),
], ids=["a person's reject", "the timeout policy's reject"])
def test_status_says_a_rollback_is_owed_after_a_recorded_reject(answer, capsys):
    """The run that recorded the reject died before it began the rollback: status used to show a
    paused rollout at 50/50 with nobody waiting and no word of the rollback owed."""
    dead = record(phase=RolloutPhase.PAUSED, history=(*record().history, answer))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), dead, Weights.canary_at(50), None, limit=10)
    out = capsys.readouterr().out
    why = f"rejected by {answer.actor}" if answer.kind == "reject" else "no answer within 3600 s"
    assert "a rollback is owed" in out and "rollway abort" in out and why in " ".join(out.split()), out


@pytest.mark.parametrize("comment, owed", [
    ("reject: no answer within 3600 s", True),
    ("reject", True),
    ("hold: no answer within 3600 s", False),
    ("rejected: no answer within 3600 s", False),
    ("rejection pending: no answer within 3600 s", False),
])
def test_a_timeout_owes_a_rollback_only_when_it_records_the_reject_action(comment, owed):
    """A timeout entry's comment is "<action>: <what was waited>": the action is its first word
    whole, not any comment that begins with "reject"."""
    from rollway.ledger import held_by_timeout, owed_rejection

    timeout = Transition(at=1_800_000_200.0, kind="timeout", actor="timeout", comment=comment)
    paused = record(phase=RolloutPhase.PAUSED, history=(*record().history, timeout))
    assert (owed_rejection(paused) == timeout) is owed
    assert held_by_timeout(timeout) is comment.startswith("hold:")


def test_a_takeover_after_a_recorded_reject_does_not_hide_the_rollback_owed(capsys):
    """A run that takes the dead run's lapsed lease over records a takeover after the reject: the
    rejection is still the rollout's last word, and the rollback it asked for is still owed."""
    from rollway.fakes import FakeLedger
    from rollway.ledger import owed_rejection

    reject = Transition(at=1_800_000_200.0, kind="reject", actor="bob", comment="reject: 5xx on checkout")
    ledger = FakeLedger()
    paused = record(phase=RolloutPhase.PAUSED, history=(*record().history, reject))
    ledger.create(paused, owner="flow-run/dead", now=1_800_000_000.0, lease_seconds=60)
    taken = ledger.acquire(paused.service, owner="flow-run/next", now=1_800_000_300.0, lease_seconds=60)
    assert taken.history[-1].kind == "takeover" and owed_rejection(taken) == reject
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), taken, Weights.canary_at(50), None, limit=10)
    out = " ".join(capsys.readouterr().out.split())
    assert "rejected by bob: 5xx on checkout: a rollback is owed" in out, out


def rolled_back_ledger(targets: Targets):
    """A ledger whose newest rollout of the canary service (1.0.0 over 5, 50, 100 %) was rolled
    back weeks ago, its lease given back."""
    from rollway.fakes import FakeLedger

    old = RolloutSpec(image="repo/app:1.0.0", stages=[Stage(weight=w) for w in (5, 50, 100)])
    ledger = FakeLedger()
    ledger.create(RolloutRecord(service=targets.canary_service, rollout_id="20261001T000000Z-1a2b3c4d", image=old.image,
                                spec_json=old.model_dump_json(), phase=RolloutPhase.ROLLED_BACK,
                                weights=Weights(stable=100, canary=0),
                                history=(Transition(at=1.0, kind="start", actor="alice"),)),
                  owner="flow-run/" + str(uuid4()), now=1.0, lease_seconds=0)
    ledger.release(targets.canary_service, owner=ledger.get(targets.canary_service).owner)
    return ledger


def test_promote_weight_is_checked_against_the_paused_runs_rollout_not_an_old_record(monkeypatch, capsys):
    """A `canary` flow run keeps no ledger: its --weight used to be checked against the ledger's
    newest rollout (finished weeks ago), and a weight the run accepts was refused."""
    from rollway.cli import ops
    from rollway.fakes import FakeLedger, FakeRouter

    targets = Targets()
    ledger = rolled_back_ledger(targets)
    service = ops.Service(targets=targets, targets_block=None, credentials_block=None, ledger=ledger,
                          router=FakeRouter())
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    # A `canary` flow run (no ledger) paused at its approval before 30%; its spec: 10, 30, 100.
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=w) for w in (10, 30, 100)])
    run = SimpleNamespace(id=uuid4(), name="calm-heron", parameters={"spec": spec.model_dump(mode="json")}, state=None)
    # Found without a Prefect API: under load, starting one made this test fail at random.
    monkeypatch.setattr(ops, "_paused", lambda service, flow_run: (service.ledger.get(service.name), run))
    monkeypatch.setattr(ops, "flow_name", lambda paused: "canary")
    # Nor asked whether its process still waits (tests/flows/test_dead_paused_run.py): that too
    # started a temporary Prefect server here, 8 s and more.
    monkeypatch.setattr(ops, "check_attended", lambda paused, **_: None)
    sent = []
    monkeypatch.setattr(ops, "resume", lambda run_id, answer, **_: sent.append(answer))
    code = ops.promote(approver="alice", comment="", weight=30, flow_run=None, targets_block=None,
                       credentials_block=None)
    _, err = capsys.readouterr()
    assert code == 0 and sent and sent[0]["next_weight"] == 30, err


def _paused_at_5(monkeypatch, *, owned: bool):
    """A run paused at 5 % before the 25 % stage of 5, 25, 50, 75, 100 %, which `promote` finds; with
    ``owned``, the ledger's rollout is that run's (a progressive rollout's). Gives the ledger."""
    from rollway.cli import ops
    from rollway.fakes import FakeLedger, FakeRouter

    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=w, approval=w == 25) for w in (5, 25, 50, 75, 100)])
    run = SimpleNamespace(id=uuid4(), name="calm-heron", parameters={"spec": spec.model_dump(mode="json")}, state=None)
    ledger = FakeLedger()
    if owned:
        ledger.create(record(service=Targets().canary_service, spec_json=spec.model_dump_json(), stage_index=0,
                             weights=Weights.canary_at(5)),
                      owner=f"flow-run/{run.id}", now=1.0, lease_seconds=600)
    service = ops.Service(targets=Targets(), targets_block=None, credentials_block=None, ledger=ledger,
                          router=FakeRouter(Weights.canary_at(5)))
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    monkeypatch.setattr(ops, "_paused", lambda service, flow_run: (service.ledger.get(service.name), run))
    return ledger


@pytest.mark.parametrize("flow,weight,says", [
    ("progressive_rollout", 75, "skipping the stages at 25%, 50%: the rollout goes to 75% next"),
    ("progressive_rollout", 25, "to 25%: the next stage, none skipped"),
    ("canary", 100, "skipping the stages at 25%, 50%, 75%: the rollout goes to 100% next"),
])
def test_promote_with_a_weight_says_which_stages_it_skips(flow, weight, says, monkeypatch, capsys):
    """`promote --weight 75` printed the same "approved ... resumed" as a plain approval, beside
    the pause's own "approval needed before 25%": nothing confirmed the stages it skips."""
    from rollway.cli import ops

    _paused_at_5(monkeypatch, owned=flow == "progressive_rollout")
    monkeypatch.setattr(ops, "flow_name", lambda paused: flow)
    monkeypatch.setattr(ops, "check_attended", lambda paused, **_: None)
    sent = []
    monkeypatch.setattr(ops, "resume", lambda run_id, answer, **_: sent.append(answer))
    code = ops.promote(approver="alice", comment="", weight=weight, flow_run=None, targets_block=None,
                       credentials_block=None)
    out, err = capsys.readouterr()
    assert code == 0 and sent[0]["next_weight"] == weight, err
    assert says in " ".join(out.split()), out


def test_promote_refuses_a_mistyped_weight_before_it_looks_whether_the_run_still_waits(monkeypatch, capsys):
    """The look at whether the paused run still waits takes up to half a minute, and a run found
    silent is marked Crashed: `promote --weight 30` at a rollout of 5, 25, 50, 75, 100 % made the
    person wait for it, then recorded the mistyped weight as a refused approval."""
    from rollway.cli import ops

    ledger = _paused_at_5(monkeypatch, owned=True)
    looked = []

    def slow_look(paused, **_):
        looked.append(paused)
        raise ops.Unattended("flow run calm-heron is paused, but has stopped saying it waits for its answer")

    monkeypatch.setattr(ops, "check_attended", slow_look)
    monkeypatch.setattr(ops, "end_unattended", lambda *a, **k: looked.append("marked Crashed"))
    sent = []
    monkeypatch.setattr(ops, "resume", lambda run_id, answer, **_: sent.append(answer))
    code = ops.promote(approver="alice", comment="", weight=30, flow_run=None, targets_block=None,
                       credentials_block=None)
    _, err = capsys.readouterr()
    said = " ".join(err.split())
    assert code != 0 and not sent, err
    assert "--weight 30 is not a stage after 5% (choose from [25, 50, 75, 100])" in said, err
    assert looked == [], looked  # refused at once: the run neither looked at nor marked Crashed
    assert ledger.get(Targets().canary_service).refused_answers == ()


def _weekly_record(**changes) -> RolloutRecord:
    """A rollout of the default plan's stages in weekly phases, paused before 25 % in week 2."""
    from rollway.spec import WeeklyPhase

    spec = RolloutSpec(
        image="repo/app:2.0.0", stages=[Stage(weight=w, approval=w == 25) for w in (5, 25, 50, 75, 100)],
        phases=[WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(25, 50)),
                WeeklyPhase(name="week 3", weights=(75, 100))],
    )
    return record(spec_json=spec.model_dump_json(), stage_index=0, stage_passed=True, weights=Weights.canary_at(5),
                  weekly_phase_index=1, weekly_phase_passed=False, phased=True).model_copy(update=changes)


@pytest.mark.parametrize("weight,ok", [(25, True), (50, True), (75, False), (100, False)])
def test_promote_refuses_a_weight_past_the_phase_the_run_stops_at(weight, ok) -> None:
    """The run refuses to skip past its weekly phase and asks again; `promote` said "approved",
    and the person who left then found the pause timed out into a rollback."""
    from rollway.cli.ops import OpsError, check_next_weight

    if ok:
        check_next_weight(_weekly_record(), weight)
    else:
        with pytest.raises(OpsError, match="past week 2, which ends at 50%.*nothing was approved"):
            check_next_weight(_weekly_record(), weight)
    check_next_weight(_weekly_record(phased=False), weight)  # a run of every stage may skip to any later one


def test_promote_with_a_weight_past_the_weekly_phases_of_its_recorded_spec_is_refused_not_a_traceback() -> None:
    """A phased record whose weekly phase is past its spec's phases (an older record, a spec
    edited between runs) made `rollway promote --weight` raise IndexError."""
    from rollway.cli.ops import OpsError, check_next_weight

    with pytest.raises(OpsError, match=r"weekly phase 5, past the 3 weekly phases of its recorded spec.*nothing was "
                                       r"approved"):
        check_next_weight(_weekly_record(weekly_phase_index=4), 25)


def test_promote_refuses_a_weight_at_a_stage_the_judge_could_not_pass() -> None:
    """There the run waits to have the stage accepted, and refuses any next weight (README)."""
    from rollway.cli.ops import OpsError, check_next_weight

    with pytest.raises(OpsError, match="could not pass.*without --weight.*nothing was approved") as refused:
        check_next_weight(record(stage_passed=False), 100)
    # The weight given, repeated first, as the command's other refusals of a weight do.
    assert str(refused.value).startswith("--weight 100: "), str(refused.value)


def _cli(*args: str) -> int:
    from rollway.cli import app

    try:
        return app(list(args), result_action="return_value")
    except SystemExit as stop:
        return int(stop.code)


@pytest.mark.parametrize("wait", ["nan", "inf", "-5", "86401"])
def test_abort_refuses_a_wait_it_could_not_keep_before_anything_is_read(wait, capsys) -> None:
    """`--wait-seconds nan` (or inf) was taken: the abort rejected the run or cancelled its owner,
    then waited for ever on a run whose process had died (its deadline never came). Refused now,
    with exit code 2, before any block, API or AWS call (the API here cannot be reached)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{free_port(None)}/api"}):
        code = _cli("abort", "--approver", "ann", "--wait-seconds", wait)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--wait-seconds" in err and "cannot reach the Prefect API" not in err and "Traceback" not in err


@pytest.mark.parametrize("reason", ["", "   "])
def test_abort_refuses_a_blank_reason_before_anything_is_read(reason, capsys) -> None:
    """The rollback's page said "aborted by ann: " and nothing else (the rollback flow's form
    refuses a blank reason; the command did not)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{free_port(None)}/api"}):
        code = _cli("abort", "--approver", "ann", "--reason", reason)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--reason: say why" in err and "cannot reach the Prefect API" not in err and "Traceback" not in err


def test_abort_help_says_the_wait_also_bounds_the_wait_for_the_owning_run(capsys) -> None:
    """With no run paused, the abort cancels the run that owns the rollout and waits up to
    --wait-seconds (at least 1 s) for it to stop before rolling back itself; the help said only
    "the rolled-back run", so `--wait-seconds 0` read as "do not wait" there too."""
    _cli("abort", "--help")
    shown = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "when no run is paused, for the run that owns the rollout to stop" in shown
    assert "at least 1 s" in shown


@pytest.mark.parametrize("command", ["promote", "abort"])
def test_an_empty_flow_run_is_refused_not_taken_as_left_out(command, capsys) -> None:
    """`--flow-run "$RUN"` with RUN unset answered whichever run the ledger pointed at (an abort
    with no paused run went on to roll back directly): an empty id was read as no option."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{free_port(None)}/api"}):
        code = _cli(command, "--approver", "ann", "--flow-run", "")
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--flow-run '' is not a flow run id" in err and "cannot reach the Prefect API" not in err


def test_status_does_not_call_an_unphased_or_ended_rollout_running_or_baking(capsys) -> None:
    """An unphased run (`make up`'s default) records week 1 when it starts and never another:
    status said "weekly phase 1, running" at 75 % (a week-3 stage), and still after the rollout
    was rolled back; a rollout rolled back mid-stage showed that stage as "baking"."""
    service = SimpleNamespace(name="svc-canary", targets=Targets())
    unphased = _weekly_record(phased=False, weekly_phase_index=0, stage_index=3, stage_passed=True,
                              weights=Weights.canary_at(75))
    print_status(service, unphased, Weights.canary_at(75), None, limit=1)
    out = capsys.readouterr().out
    assert "weekly phase 1" not in out and "every stage" in out
    ended = _weekly_record(phase=RolloutPhase.ROLLED_BACK, stage_index=2, stage_passed=False,
                           weights=Weights(stable=100, canary=0))
    print_status(service, ended, Weights(stable=100, canary=0), None, limit=1)
    out = capsys.readouterr().out
    assert "3/5 (50%), not passed" in out and "baking" not in out
    assert "weekly phase week 2 (2 of 3), not passed" in out and "running" not in out
    assert f"none: the rollout has ended (last held by {ended.owner})" in out and "lease until" not in out, out
    print_status(service, _weekly_record(stage_index=2, stage_passed=False), Weights.canary_at(50), None, limit=1)
    out = capsys.readouterr().out
    assert "3/5 (50%), baking" in out and "weekly phase week 2 (2 of 3), running" in out, "a rollout under way still is"
    # A phased rollout promoted at the end of week 3: the promotion does not set weekly_phase_passed.
    promoted = _weekly_record(phase=RolloutPhase.PROMOTED, weekly_phase_index=2, stage_index=4, stage_passed=True,
                              weights=Weights.canary_at(100))
    print_status(service, promoted, Weights.canary_at(100), None, limit=1)
    out = capsys.readouterr().out
    assert "weekly phase week 3 (3 of 3), passed" in out and "not passed" not in out, out


def test_status_names_the_weekly_phase_as_the_plan_names_it(capsys) -> None:
    """Status said "weekly phase 2, running" where the run's log, its summary and SNS say the phase's
    name ("half"): a person matching them had to count the plan's phases."""
    from rollway.spec import WeeklyPhase

    spec = RolloutSpec.model_validate_json(_weekly_record().spec_json).model_copy(update={"phases": (
        WeeklyPhase(name="pilot", weights=(5,)), WeeklyPhase(name="half", weights=(25, 50)),
        WeeklyPhase(name="all", weights=(75, 100)))})
    running = _weekly_record(spec_json=spec.model_dump_json(), stage_index=2, stage_passed=False)
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), running, Weights.canary_at(50), None, limit=1)
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("weekly phase")]
    assert row.split(None, 2)[2] == "half (2 of 3), running", row


def test_status_shows_the_ledgers_words_as_written_brackets_and_all(capsys) -> None:
    """Status printed the ledger's words as rich markup: a comment naming `[/var/log/app]` (a
    closing tag to rich) crashed every `rollway status` with a traceback while the entry was in
    the last --history transitions, and a `[wip]` or an approver `[bold]eve` lost its brackets."""
    said = Transition(at=1_800_000_200.0, kind="approve", actor="[bold]eve", comment="[wip] logs in [/var/log/app] fine")
    started = Transition(at=1_800_000_300.0, kind="rollback-start", actor="[ops]", comment="see [/tmp/trace]")
    service = SimpleNamespace(name="svc-canary", targets=Targets())
    print_status(service, record(history=(*record().history, said)), Weights.canary_at(50), None, limit=1)
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "[bold]eve" in out and "[wip] logs in" in out and "[/var/log/app] fine" in out, out
    rolling = record(phase=RolloutPhase.ROLLING_BACK, history=(*record().history, started),
                     rollback_holder="[ops] (flow run x, 1)", rollback_expires=1_800_000_360.0)
    print_status(service, rolling, Weights(stable=100, canary=0), None, limit=1)
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "([ops]: see [/tmp/trace])" in out and "carried out by [ops] (flow run x, 1)" in out, out


def promote_paused(monkeypatch, capsys, run, approver: str) -> str:
    """`rollway promote --approver approver` answering ``run``; what it printed."""
    from rollway.cli import ops
    from rollway.fakes import FakeLedger, FakeRouter

    service = ops.Service(targets=Targets(), targets_block=None, credentials_block=None, ledger=FakeLedger(),
                          router=FakeRouter())
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    monkeypatch.setattr(ops, "find_paused_run", lambda client, service, record, flow_run=None, nothing_done="": run)
    monkeypatch.setattr(ops, "resume", lambda run_id, answer, **_: None)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # No request reaches this API (the run is found above): it only spares an ephemeral server.
    with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{free_port(None)}/api"}):
        code = ops.promote(approver=approver, comment="", weight=None, flow_run=None, targets_block=None,
                           credentials_block=None)
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_promote_says_who_approved_as_given_not_as_markup(monkeypatch, capsys) -> None:
    """`--approver '[/oncall]'` was recorded, the run resumed, and then the confirmation line
    crashed with a traceback (exit 1): the operator could not tell the approval had landed."""
    run = SimpleNamespace(id=uuid4(), name="calm-heron", parameters={}, state=None)
    out = promote_paused(monkeypatch, capsys, run, "[/oncall]")
    assert f"approved by [/oncall]: flow run calm-heron ({run.id}) resumed" in out


INCONCLUSIVE = ("inconclusive pause: 5%: stage over and no interval had request counts for both versions: "
                "a person must decide; unanswered by 2026-12-01 15:00:00 UTC the rollout rolls back")


def test_status_and_promote_say_what_the_pause_asks(monkeypatch, capsys) -> None:
    """Status said only "flow run X is paused; `rollway promote` approves" and promote "resumed":
    at a stage the judge could not pass, promote accepted that stage while the person at the
    terminal, who sees no form, could take it for the routine approval of the next shift."""
    from rollway.cli.ops import print_paused

    run = SimpleNamespace(id=uuid4(), name="calm-heron", parameters={},
                          state=SimpleNamespace(message=INCONCLUSIVE + " [/x]"))
    monkeypatch.setattr("rollway.cli.ops.check_attended", lambda paused, **_: None)  # its process waits
    print_paused(run)
    out = " ".join(capsys.readouterr().out.split())
    assert f"flow run calm-heron ({run.id}) is paused ({INCONCLUSIVE} [/x]); `rollway promote` approves" in out, out
    out = promote_paused(monkeypatch, capsys, run, "dana")
    assert f"approved by dana: flow run calm-heron ({run.id}) resumed ({INCONCLUSIVE} [/x])" in " ".join(out.split())


def test_a_paused_runs_name_prints_as_written(capsys, monkeypatch) -> None:
    """A run named by its deployment's `flow_run_name` template may hold brackets: printed as
    rich markup, `[week-2]` vanished and `[/x]` crashed status with a traceback."""
    from rollway.cli.ops import print_paused

    monkeypatch.setattr("rollway.cli.ops.check_attended", lambda paused, **_: None)  # its process waits
    print_paused(SimpleNamespace(name="rollout [/x] [week-2]", id="0d6e"))
    out = " ".join(capsys.readouterr().out.split())
    assert "flow run rollout [/x] [week-2] (0d6e) is paused" in out, out


@pytest.mark.parametrize(("command", "exit_code"), [
    (["status"], 1), (["report"], 1), (["finalize", "--actor", "me"], 1),
    # `rollway flags` answered with 2, the exit code of a command line that does not parse.
    (["flags", "list"], 1), (["flags", "set", "sqs", "--enabled", "--actor", "me"], 1),
])
def test_a_command_without_prefect_api_url_says_to_set_it_instead_of_starting_a_temporary_server(
        monkeypatch, capsys, command, exit_code) -> None:
    """With PREFECT_API_URL left unset (the `export` `rollway up` prints skipped), the commands
    had Prefect start a temporary server on PREFECT_HOME's database to read their blocks: minutes
    with no word on a loaded machine, beside the database of the `rollway up` on that home. They
    now say at once which setting to give, as one `error:` line, with the exit code of a block
    they cannot load: 1 for every command."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from rollway.cli import app

    def no_temporary_server(self, *args, **kwargs):
        raise AssertionError("a temporary Prefect server was started")

    monkeypatch.setattr(SubprocessASGIServer, "start", no_temporary_server)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert PREFECT_API_URL.value() is None
        try:
            code = app(command, result_action="return_value")
        except SystemExit as stop:
            code = int(stop.code)
    err = capsys.readouterr().err
    assert code == exit_code, err
    assert err.startswith("error: PREFECT_API_URL is not set") and "export PREFECT_API_URL=" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_finalize_names_the_tag_and_the_digest_the_stable_service_now_runs(monkeypatch, capsys) -> None:
    """It named the tag alone, which may name another image by the time the finalize runs."""
    import flows.finalize
    from rollway.cli import ops
    from rollway.cli.finalize import finalize
    from rollway.fakes import FakeLedger, FakeRouter
    from rollway.finalize import FinalizeResult

    pinned = "123456789012.dkr.ecr.us-west-2.amazonaws.com/app@sha256:" + "ab" * 32
    service = ops.Service(targets=Targets(), targets_block=None, credentials_block=None, ledger=FakeLedger(),
                          router=FakeRouter())
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    monkeypatch.setattr(flows.finalize, "finalize", lambda **_: FinalizeResult(
        outcome="finalized", rollout_id="20270115T080000Z-1a2b3c4d", image="repo/app:2.0.0", pinned_image=pinned,
        task_definition="webordinary-edit-task:4", weights=Weights(stable=100, canary=0), stable_desired=2,
        canary_desired=0))
    assert finalize(actor="carol", targets_block=None, credentials_block=None) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"finalized 20270115T080000Z-1a2b3c4d: repo/app:2.0.0 (pinned as {pinned}) runs on the stable" in out, out


def test_an_answer_refused_after_the_last_accepted_one_is_told_with_its_reason() -> None:
    """Nothing paused: the one who came to answer was told only of the last answer the run took,
    not of a later one it refused (a skip to a weight that is no later stage), and why."""
    from rollway.cli.ops import NoPausedRun, find_paused_run
    from rollway.ledger import RefusedAnswer

    service = SimpleNamespace(name="svc-canary", targets_block="rollway-targets")
    accepted = Transition(at=1_800_000_000.0, kind="approve", actor="ann", comment="approve: looks fine")
    refused = RefusedAnswer(at=1_800_000_600.0, actor="bob", action="approve", next_weight=5, comment="go",
                            reason="5% is no later stage than 50%")
    older = refused.model_copy(update={"at": 1_799_999_900.0, "actor": "carl"})
    with pytest.raises(NoPausedRun) as told:
        find_paused_run(ForgetfulApi(), service, record(history=(*record().history, accepted),
                                                        refused_answers=(older, refused)))
    said = " ".join(str(told.value).split())
    assert ("its last pause was answered by ann at 2027-01-15 08:00:00 UTC (rollout clock): approve: looks fine; "
            "a later answer, by bob at 2027-01-15 08:10:00 UTC (rollout clock), was refused: approve (next_weight "
            "5%): go; refused: 5% is no later stage than 50%") in said, said
    assert "carl" not in said  # refused before the answer taken: that one is the news
    with pytest.raises(NoPausedRun) as told:
        find_paused_run(ForgetfulApi(), service, record(refused_answers=(refused,)))
    assert "; the last answer, by bob at 2027-01-15 08:10:00 UTC (rollout clock), was refused: approve" in \
        " ".join(str(told.value).split())


def test_an_answer_read_only_after_the_look_rolled_back_is_told_as_not_applied_with_why() -> None:
    """Nothing paused: the person whose answer the run read only once its look at the canary had
    rolled the rollout back (``not-applied``), coming back to `promote`, was told only the rollout
    had rolled back, or of an earlier answer: not that theirs had arrived, nor why it was not applied."""
    from rollway.cli.ops import NoPausedRun, find_paused_run
    from rollway.ledger import NOT_APPLIED

    service = SimpleNamespace(name="svc-canary", targets_block="rollway-targets")
    earlier = Transition(at=1_800_000_000.0, kind="approve", actor="ann", comment="approve: looks fine")
    late = Transition(at=1_800_000_600.0, kind=NOT_APPLIED, actor="bob", to_stage=2,
                      comment="approve: ship it; not applied: the run's look at the canary ended the pause before the "
                              "run could read it, and rolled the rollout back while the Prefect API could not be "
                              "reached: error rate 9% over 5%")
    rolled_back = record(phase=RolloutPhase.ROLLED_BACK, weights=Weights(stable=100, canary=0),
                         history=(*record().history, earlier, late))
    with pytest.raises(NoPausedRun) as told:
        find_paused_run(ForgetfulApi(), service, rolled_back)
    said = " ".join(str(told.value).split())
    assert ("its last pause was answered by bob at 2027-01-15 08:10:00 UTC (rollout clock): approve: ship it; that "
            "answer was not applied: the run's look at the canary ended the pause before the run could read it, and "
            "rolled the rollout back while the Prefect API could not be reached: error rate 9% over 5%") in said, said
    assert "answered by ann" not in said, said


def test_the_wait_for_a_run_never_sleeps_past_its_deadline(monkeypatch):
    """`rollway abort --wait-seconds 0.1` slept a whole 0.5-s poll, then took the run's state read
    after its deadline for one within it (a rollback that ended later, reported as the abort's)."""
    import prefect.client.orchestration

    from rollway.cli import ops

    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    running = SimpleNamespace(name="moose", state=SimpleNamespace(is_final=lambda: False, name="Running"))
    client = SimpleNamespace(read_flow_run=lambda run_id: running)

    class Client:
        def __enter__(self):
            return client

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(prefect.client.orchestration, "get_client", lambda **kwargs: Client())
    monkeypatch.setattr(ops, "time", SimpleNamespace(monotonic=lambda: now[0], sleep=sleep, time=time.time))
    with pytest.raises(TimeoutError, match="still Running after 0.1 s"):
        ops.wait_for_run(uuid4(), ops.is_final, timeout_seconds=0.1)
    assert sum(slept) <= 0.1 + 1e-9, slept


def test_status_lines_quoting_a_persons_answer_show_its_control_characters_escaped(capsys) -> None:
    """The rows and the history showed a reason's escape sequence as ``\\x1b``, but the lines below
    them (a reject whose rollback is owed, an answer refused at the open pause) printed a person's
    comment and name as typed: on a terminal they coloured the rest of the output, or a carriage
    return wrote over who rejected the rollout."""
    from rollway.ledger import RefusedAnswer

    reject = Transition(at=1_800_000_200.0, kind="reject", actor="bob\x1b]0;pwned\x07",
                        comment="reject: \x1b[31m5xx\x1b[0m\r on checkout")
    owed = record(phase=RolloutPhase.PAUSED, history=(*record().history, reject))
    pause = Transition(at=1_800_000_200.0, kind="pause", actor="judge", comment="approve 50%?")
    refused = RefusedAnswer(at=1_800_000_300.0, actor="carol\x1b[2J", action="approve", next_weight=5,
                            comment="go", reason="5% is no later stage\r than 50%")
    waiting = record(phase=RolloutPhase.PAUSED, history=(*record().history, pause), refused_answers=(refused,))
    for shown in (owed, waiting):
        print_status(SimpleNamespace(name="svc-canary", targets=Targets()), shown, Weights.canary_at(50), None,
                     limit=10)
        out = capsys.readouterr().out
        assert not [c for c in out if c != "\n" and not c.isprintable()], repr(out)
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), owed, Weights.canary_at(50), None, limit=10)
    out = " ".join(capsys.readouterr().out.split())
    assert r"bob\x1b]0;pwned\x07" in out and r"\x1b[31m5xx\x1b[0m\r on checkout" in out, out


@pytest.mark.parametrize("lapsed", [False, True])
def test_status_shows_each_name_from_the_ledger_on_one_line_whatever_it_holds(capsys, lapsed) -> None:
    """A name the ledger keeps as typed (who began a rollback, who sent its notice, who carries it
    out, whose answer was refused) printed its line break as it was: its second line read as a line
    of status's own ("rollback finished", say). Shown escaped, as `rollway finalize` shows them, each
    line reads as it does with the escape written out by hand."""
    from rollway.ledger import RefusedAnswer

    def stalled(name: str) -> RolloutRecord:
        started = Transition(at=1_800_000_100.0, kind="rollback-start", actor=name, comment="canary errors 9/600")
        told = Transition(at=1_800_000_160.0, kind="notified", actor=name, message_id="sns-7")
        refused = RefusedAnswer(at=1_800_000_300.0, actor=name, action="approve", next_weight=5, comment="go",
                                reason="5% is no later stage than 50%")
        return record(phase=RolloutPhase.ROLLING_BACK, history=(*record().history, started, told), owner="flow-run/1",
                      rollback_holder=f"{name} (flow run brave-otter, 1234)", rollback_expires=1_800_000_220.0,
                      refused_answers=(refused,))

    def waiting(name: str) -> RolloutRecord:  # an answer refused at the pause still open
        pause = Transition(at=1_800_000_200.0, kind="pause", actor="judge", comment="approve 50%?")
        refused = RefusedAnswer(at=1_800_000_300.0, actor=name, action="approve", next_weight=5, comment="go",
                                reason="5% is no later stage than 50%")
        return record(phase=RolloutPhase.PAUSED, history=(*record().history, pause), refused_answers=(refused,),
                      owner="flow-run/1")

    for held in (stalled, waiting):
        def status(name: str) -> str:
            print_status(SimpleNamespace(name="svc-canary", targets=Targets()), held(name),
                         Weights(stable=100, canary=0), None, limit=10,
                         wall=1_800_000_221.0 if lapsed else 1_800_000_200.0)
            return capsys.readouterr().out

        out = status("carol\nrollback finished\u2028ok")
        assert out == status(r"carol\nrollback finished\u2028ok"), out
        assert "rollback finished" in out and not [line for line in out.splitlines() if line.startswith("rollback")]


HELD_ASKS = ("inconclusive pause: 50%: the judge passes it now (canary healthy), but a person held this stage: it goes "
             "on once a person approves; unanswered by 20:35 UTC (wall clock) the rollout asks again")


def held_status(capsys, monkeypatch, history) -> str:
    from rollway.cli.ops import print_status

    monkeypatch.setattr("rollway.cli.ops.check_attended", lambda run, look_again: None)
    paused = SimpleNamespace(name="brave-otter", id=uuid4(), state=SimpleNamespace(message=HELD_ASKS))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), record(stage_passed=False, history=history),
                 Weights.canary_at(50), paused, limit=0)
    return capsys.readouterr().out


def test_status_names_the_person_who_held_the_stage_from_the_ledger(capsys, monkeypatch) -> None:
    """The paused run's question says "a person held this stage": status named nobody outside the
    history rows (here, none shown), and whoever read it could not tell whom to ask."""
    history = (*record().history,
               Transition(at=1_799_999_200.0, kind="hold", actor="dana", to_stage=1, comment="hold: partner test first"))
    out = held_status(capsys, monkeypatch, history)
    held = [line for line in out.splitlines() if line.startswith("held by")]
    assert held == [f"held by      dana at {utc(1_799_999_200.0)} (rollout clock): partner test first"], out


def test_status_says_who_held_is_not_recorded_when_the_ledger_has_no_hold(capsys, monkeypatch) -> None:
    out = held_status(capsys, monkeypatch, record().history)
    held = [line for line in out.splitlines() if line.startswith("held by")]
    assert held == ["held by      not recorded: the run's question says a person held this stage, the ledger has "
                    "no such hold"], out


def test_status_names_no_hold_once_a_rollback_of_the_held_stage_began(capsys, monkeypatch) -> None:
    """A rollback begun after the hold (the canary failed, a person cancelled the run) and not yet
    finished: status named the person whose hold the stage waited on beside "a rollback was
    started", and whoever read it went to ask them about a stage nothing waits on any more."""
    from rollway.cli.ops import print_status

    monkeypatch.setattr("rollway.cli.ops.check_attended", lambda run, look_again: None)
    history = (*record().history,
               Transition(at=1_799_999_200.0, kind="hold", actor="dana", to_stage=1, comment="hold: partner test first"),
               Transition(at=1_799_999_300.0, kind="rollback-start", actor="judge", comment="canary error rate 9%"))
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()),
                 record(phase=RolloutPhase.ROLLING_BACK, owner=None, history=history), Weights.canary_at(50), None,
                 limit=0)
    out = capsys.readouterr().out
    assert "a rollback was started" in out, out
    assert not [line for line in out.splitlines() if line.startswith("held by")], out
