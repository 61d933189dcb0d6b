"""Whether a rollout's lease is held, said the same by everything that reads it, at the same instant.

Status's owner row, the rollout report's holder line, status's monitoring row (``nobody_watching``),
a failed run's hook and the ledger's own ``check_lease`` each compared ``lease_expires`` with the
wall clock in their own words; at the lease's last second one could say "held" while another said
"lapsed". The ledger lets another run take a lease only once it has run out (``lease_expires <
now``): up to and at ``lease_expires`` it is held, everywhere.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from flows.hooks import _someone_else_owns
from rollway.cli.ops import print_status
from rollway.ledger import (LockHeld, RolloutRecord, Transition, check_lease, lease_free, lease_has_lapsed, lease_held,
                            wall_utc)
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.reports import rollout_report
from rollway.spec import RolloutSpec
from rollway.targets import Targets
from rollway.window_said import nobody_watching

EXPIRES = 1_900_000_000.0
SPEC = RolloutSpec(image="repo/app:2.0.0")
HELD = RolloutRecord(
    service="svc-canary", rollout_id="20270115T080000Z-1a2b3c4d", image=SPEC.image, spec_json=SPEC.model_dump_json(),
    phase=RolloutPhase.PROGRESSING, stage_index=0, stage_passed=False, weights=Weights.canary_at(5), owner="run-7",
    lease_expires=EXPIRES,
    history=(Transition(at=1_800_000_000.0, kind="start", actor="alice", comment="rollout of repo/app:2.0.0"),),
)


def owner_row(record: RolloutRecord, wall: float, capsys) -> str:
    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), record, record.weights, None, limit=1,
                 wall=wall)
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("owner")]
    return " ".join(row.split())


def holder_line(record: RolloutRecord, wall: float) -> str:
    (line,) = [x for x in rollout_report(record, now=wall).splitlines() if x.startswith("- **Held by:**")]
    return line


@pytest.mark.parametrize("wall", [EXPIRES - 1, EXPIRES])
def test_a_lease_is_held_up_to_and_at_its_expiry_by_every_reader(capsys, wall) -> None:
    until = wall_utc(EXPIRES)
    assert owner_row(HELD, wall, capsys) == f"owner run-7, lease until {until}"
    assert holder_line(HELD, wall).startswith(f"- **Held by:** run-7, lease until {until[:-1]}; live"), \
        holder_line(HELD, wall)
    assert nobody_watching(HELD, wall) is None
    assert _someone_else_owns(lambda: (HELD, wall)) is True
    assert not lease_free(HELD, wall)  # what a weekly tick asks before it would take the rollout
    with pytest.raises(LockHeld):
        check_lease(HELD, "run-8", wall)


def test_a_lease_past_its_expiry_has_lapsed_for_every_reader(capsys) -> None:
    wall, lapsed = EXPIRES + 1, f"run-7, whose lease lapsed at {wall_utc(EXPIRES)}"
    assert owner_row(HELD, wall, capsys).startswith(f"owner {lapsed}: no run drives the rollout")
    assert holder_line(HELD, wall).startswith(f"- **Held by:** {lapsed}: that run stopped renewing it")
    assert nobody_watching(HELD, wall) == f"{lapsed.replace(', whose', chr(39) + 's')}: its run stopped or died"
    assert _someone_else_owns(lambda: (HELD, wall)) is False
    assert lease_free(HELD, wall)
    check_lease(HELD, "run-8", wall)  # taken over: no LockHeld


def test_a_wall_clock_not_told_claims_neither(capsys) -> None:
    """Without the wall clock nothing says the lease lapsed, nor that a run watches (None: not known)."""
    assert owner_row(HELD, None, capsys) == f"owner run-7, lease until {wall_utc(EXPIRES)}"
    assert holder_line(HELD, None) == f"- **Held by:** run-7, lease until {wall_utc(EXPIRES)}"
    assert nobody_watching(HELD, None) is None


def test_a_rollout_nobody_owns_is_free_to_take_at_any_time() -> None:
    released = HELD.model_copy(update={"owner": None, "lease_expires": 0.0})
    assert lease_free(released, EXPIRES) and not lease_held(released, EXPIRES)
    check_lease(released, "run-8", EXPIRES)


def test_an_empty_owner_holds_the_lease_for_the_writes_though_the_readers_name_nobody() -> None:
    """Every ledger write refuses an empty owner (tests/unit/test_fake_ledger.py), so only an item
    edited by hand holds one; it is judged by the ledgers' writes as any owner is (the DynamoDB
    conditions compare the attribute), so a run that asks whether it could take the rollout asks
    ``lease_free``, the writes' rule, not ``lease_held``."""
    empty = HELD.model_copy(update={"owner": ""})
    assert not lease_free(empty, EXPIRES)
    with pytest.raises(LockHeld):
        check_lease(empty, "run-8", EXPIRES)
    assert not lease_held(empty, EXPIRES) and not lease_has_lapsed(empty, EXPIRES + 1)
    assert lease_free(empty, EXPIRES + 1)
