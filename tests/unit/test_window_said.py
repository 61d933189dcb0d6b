"""How `rollway status` says a monitoring window left open, on records an older rollway wrote.

A window's recorded end (``UnverifiedWindow``, ``KeptForTraffic``) names the lease owner of the
run that recorded it, so that status tells that run, its lease not yet given back, from another
run watching the window again. Ends recorded before they named it read with no owner: the record
alone cannot tell which the lease holder is.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from rollway.cli.ops import print_status
from rollway.ledger import RolloutRecord, utc, wall_utc
from rollway.model import Weights
from rollway.spec import RolloutSpec
from rollway.targets import Targets

SPEC = RolloutSpec(image="repo/app:2.0.0")
PROMOTED_AT = 1_800_000_200.0
ENDS = PROMOTED_AT + SPEC.monitor_seconds
WALL = 1_900_000_000.0


def older_record(end: str, end_at: float, lease_left: float) -> RolloutRecord:
    """A promoted rollout as the ledger stores it (JSON, None fields left out), its window's ``end``
    recorded ``end_at`` by an older rollway (no "owner", no "stable_service"), while run-7 holds
    the rollout's lease for ``lease_left`` more seconds of the wall clock."""
    counts = {"counted": 3, "looks": 29} if end == "unverified_window" else {"stable": 20}
    stored = f"""{{
        "service": "svc-canary", "rollout_id": "20270115T080000Z-1a2b3c4d", "image": "repo/app:2.0.0",
        "spec_json": {json.dumps(SPEC.model_dump_json())}, "phase": "promoted", "stage_index": 4,
        "stage_passed": true, "weights": {{"stable": 0, "canary": 100}}, "monitor_until": {ENDS},
        "owner": "run-7", "lease_expires": {WALL + lease_left}, "version": 12,
        "created_at": {PROMOTED_AT - 3600}, "updated_at": {end_at},
        "history": [
            {{"at": {PROMOTED_AT - 3600}, "kind": "start", "actor": "alice", "comment": "rollout of repo/app:2.0.0"}},
            {{"at": {PROMOTED_AT}, "kind": "promote", "actor": "alice", "to_weights": {{"stable": 0, "canary": 100}}}}
        ],
        "{end}": {json.dumps({"at": end_at, "actor": "monitor", **counts})}
    }}"""
    return RolloutRecord.model_validate(json.loads(stored))


def status_of(record: RolloutRecord, now: float, capsys) -> str:
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), record, Weights(stable=0, canary=100), None,
                 limit=1, now=now, wall=WALL)
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("end", ["unverified_window", "kept_for_traffic"])
def test_an_end_an_older_rollway_recorded_is_not_said_to_be_replaced_by_the_lease_holder(capsys, end) -> None:
    """Status said "being watched again now by run-7, whose end replaces the previous run's" of an
    end recorded without its run's name, while run-7 held the lease: run-7 may be the very run that
    recorded it, its lease not yet given back (a release the ledger refused, a process killed), and
    then nobody watches until the lease lapses. Status says what it can tell: who holds the lease,
    and that it may be either."""
    out = status_of(older_record(end, ENDS + 60, lease_left=300.0), ENDS + 600, capsys)
    assert "watched again now by run-7" not in out and "whose end replaces" not in out, out
    assert (f"run-7 (lease until {wall_utc(WALL + 300.0)}) holds the rollout's lease: it may be watching the window "
            "again, or be the run that recorded this end, its lease not yet given back (an older rollway recorded "
            "the end without naming its run)") in out, out
    assert "`rollway finalize` refuses" in out and "`rollway abort` can still roll the release back" in out, out


def test_a_lapsed_lease_beside_an_end_an_older_rollway_recorded_is_not_said(capsys) -> None:
    """Once run-7's lease has lapsed nobody watches, whoever recorded the end: the next run looks again."""
    out = status_of(older_record("unverified_window", ENDS + 60, lease_left=-300.0), ENDS + 600, capsys)
    assert "run-7 (lease until" not in out.split("monitoring", 1)[1], out
    assert "the next monitor run or weekly tick looks again" in out, out


def test_counts_so_far_an_older_rollway_recorded_say_the_lease_holder_may_be_either(capsys) -> None:
    """A run that stopped watching before the window's end (a monitor run given a shorter window)
    recorded its counts so far: past the window's end, status said run-7 "is watching what is left
    of it now" while run-7 may be that very run, its lease not yet given back."""
    out = status_of(older_record("unverified_window", ENDS - 600, lease_left=300.0), ENDS + 600, capsys)
    assert "run-7 (lease until" in out and "is watching what is left of it now" not in out, out
    assert ("holds the rollout's lease: it may be watching the window again, or be the run that recorded this end"
            in out), out
    assert "so far: a run that stopped watching before the window's end counted requests" in out, out


@pytest.mark.parametrize(("owner", "lease_left", "watched"), [
    ("run-7", 300.0, True),  # its run holds a live lease: it watches
    ("run-7", -300.0, False),  # its run's lease lapsed: it stopped or died (killed, its host gone)
    (None, 0.0, False),  # no run holds it (one that stopped early gave it back)
])
def test_a_window_still_running_that_no_run_holds_says_nobody_is_watching_it(capsys, owner, lease_left,
                                                                             watched) -> None:
    """Inside its window, status said "open until ...: `rollway finalize` waits for it to close" and
    nothing else, whether or not a run held the rollout's lease: the run watching it killed, on-call
    read the release as watched, a failing one to be rolled back by the monitor, while nothing looked
    at it until the window's end (when status first said "no run closed it"). Said while no run holds
    the lease, with what watches what is left of it."""
    from rollway.ledger import utc

    record = older_record("unverified_window", ENDS - 600, lease_left).model_copy(
        update={"unverified_window": None, "owner": owner})
    out = status_of(record, ENDS - 1800, capsys)
    assert f"monitoring open until {utc(ENDS)} (rollout clock)" in out, out
    nobody = ("): a failing release is not rolled back until one does: run `progressive_rollout` of repo/app:2.0.0 "
              "again, which watches what is left of it and closes it (or the weekly advance_phase does); until then "
              "`rollway finalize` refuses, and `rollway abort` can still roll the release back")
    assert ("the ledger shows no run watching it now (" in out and nobody in out) is not watched, out
    # Watched, the window closes at its end and finalize waits for that. Unwatched, "`rollway
    # finalize` waits for it to close" ended the row, where finalize refuses and says waiting
    # does not close it: the row says what does.
    assert ("`rollway finalize` waits for it to close" in out) is watched, out
    if not watched:
        why = (f"run-7's lease lapsed at {wall_utc(WALL + lease_left)}: its run stopped or died" if owner else
               "no run holds the rollout's lease")
        assert f"the ledger shows no run watching it now ({why}{nobody}" in out, out


DAY = 86400


@pytest.mark.parametrize(("last_unread", "unjudged", "unread_said"), [
    # Only aged-out minutes: every read went through.
    ("older than CloudWatch keeps 1-minute data for 15 days", (PROMOTED_AT, PROMOTED_AT + DAY), None),
    # Aged-out minutes, and the final look could not read the window's last period.
    ("older than CloudWatch keeps 1-minute data for 15 days; nor could it read the window's last period "
     "(metrics unavailable: ThrottlingException: Rate exceeded, 4 tries)", (PROMOTED_AT, PROMOTED_AT + DAY),
     "its final look could not read the metrics of the window's last period (metrics unavailable: "
     "ThrottlingException: Rate exceeded, 4 tries), so that period was not judged;"),
    # Aged-out minutes, and the final look could not read the window's other unjudged ones.
    (f"Throttling: Rate exceeded; and from {utc(PROMOTED_AT)} to {utc(PROMOTED_AT + DAY)}, older than CloudWatch "
     "keeps 1-minute data for 15 days", (PROMOTED_AT + DAY, PROMOTED_AT + 2 * DAY),
     f"its final look could not read the metrics of the window's periods from {utc(PROMOTED_AT + DAY)} to "
     f"{utc(PROMOTED_AT + 2 * DAY)}, which no look had judged (Throttling: Rate exceeded), so they were not judged;"),
], ids=["aged-out", "and-the-last-period", "and-other-minutes"])
def test_aged_out_minutes_an_older_rollway_recorded_are_said_as_aged_out(capsys, last_unread, unjudged,
                                                                         unread_said) -> None:
    """An older rollway recorded the minutes CloudWatch kept no more in the final look's failed read
    (``last_unread``, "older than CloudWatch keeps ..."): status said its final look "could not read
    the metrics" of minutes CloudWatch had answered for, sending people to mend a CloudWatch that
    worked, and folded a real failed read into that. Read as they are recorded now: aged out, apart
    from what the final look could not read."""
    record = older_record("unverified_window", ENDS + 60, lease_left=-300.0)
    record = record.model_copy(update={"unverified_window": record.unverified_window.model_copy(update={
        "last_unread": last_unread, "unjudged_from": unjudged[0], "unjudged_to": unjudged[1]})})
    out = status_of(record, ENDS + 600, capsys)
    assert (f"unverified: the window's periods from {utc(PROMOTED_AT)} to {utc(PROMOTED_AT + DAY)}, which no look had "
            "judged, were older than CloudWatch keeps 1-minute data for 15 days, so they were not judged;") in out, out
    assert "older than CloudWatch keeps 1-minute data for 15 days)" not in out, out
    if unread_said is None:
        assert "final look" not in out, out
    else:
        assert unread_said in out, out
