"""`rollway flags release F --rollout R`: freeing a flag another service's rollout holds, on the
embedded DynamoDB. The refusal of a rollout bound to such a flag said how to find the holder and
what frees it, but nothing rollway had could free the hold of a rollout whose run died and that
this service's ledger does not record: every rollout binding the flag was refused for good."""

from __future__ import annotations

import pytest

from rollway.aws.flags import DynamoFlagStore
from rollway.flag_binding import FlagChange, FlagHeld, RolloutRolledBack, apply_bindings, check_bindings, set_flag
from rollway.flags import FlagState
from rollway.flags_commands import EXIT_CONFLICT, EXIT_INVALID, EXIT_OK
from rollway.spec import FlagBinding
from tests.unit.test_cli_streams import rollway

F = "use_sqs_architecture"
BOUND = [FlagBinding(feature=F)]
BILLING = "20261201T000000Z-billing1"  # a rollout of another service, whose run was killed at 25 %
EDIT = "20261202T000000Z-edit0001"


@pytest.fixture
def flags(aws, monkeypatch) -> DynamoFlagStore:
    """The flags table, ``F`` held by BILLING at its 25 % stage; the commands run on it."""
    monkeypatch.setattr("rollway.cli.ops.load_account", lambda targets_block, credentials_block: (aws.targets,
                                                                                                   aws.get_client))
    store = DynamoFlagStore(aws.get_client("dynamodb"), aws.targets)
    store.put(FlagState(feature=F), expected_version=0, actor="seed", now=1.0)
    for step, weight in enumerate((5, 25)):
        apply_bindings(store, BOUND, weight, actor="bob", now=10.0 + step, rollout=BILLING)
    return store


def release(*more: str) -> int:
    return rollway("flags", "release", F, "--rollout", BILLING, "--reason", "billing run killed, INC-42",
                   "--actor", "oncall", *more)


def test_a_release_frees_the_hold_leaving_the_flag_as_it_is_and_says_so(flags, capsys):
    with pytest.raises(FlagHeld):
        check_bindings(flags, BOUND, starting=True)

    assert release() == EXIT_OK

    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"{F}: rollout {BILLING}'s hold freed (it held it since its stage 25%, set by bob at "
                          "1970-01-01T00:00:11Z); left on 25% (v4)\n"), out
    assert f"note: {F} follows no rollout's stages now: the next rollout bound to it sets it from its first" in out, out
    flag = flags.get(F)
    assert (flag.enabled, flag.percentage, flag.version, flag.updated_by) == (True, 25.0, 4, "oncall")
    [entry] = flags.audit(F, limit=1)
    assert (entry.writer, entry.rollout, entry.actor) == ("rollback", BILLING, "oncall")
    assert entry.reason == f"rollway flags release: rollout {BILLING}'s hold freed: billing run killed, INC-42"
    # `flags get` shows who freed it and why.
    assert rollway("flags", "get", F, "--audit", "1") == EXIT_OK
    assert "oncall: on 25% -> on 25%  (rollway flags release: rollout" in capsys.readouterr().out

    # Free: the next rollout binding the flag starts and takes it over; the killed run, were it
    # still going, would not take it back.
    check_bindings(flags, BOUND, starting=True)
    [moved] = apply_bindings(flags, BOUND, 5, actor="alice", now=30.0, rollout=EDIT, exclusive=True)
    assert (moved.after.enabled, moved.after.percentage) == (True, 5.0)
    with pytest.raises(RolloutRolledBack, match=f"rollout {BILLING} had its hold on it freed .v4, by oncall."):
        apply_bindings(flags, BOUND, 50, actor="bob", now=31.0, rollout=BILLING, exclusive=True)


def test_a_release_sets_what_it_is_asked_to_in_the_same_write(flags, capsys):
    assert release("--no-enabled") == EXIT_OK
    assert f"; on 25% -> off 25% (v4)\n" in capsys.readouterr().out
    flag = flags.get(F)
    assert (flag.enabled, flag.percentage, flag.version) == (False, 25.0, 4)
    check_bindings(flags, BOUND, starting=True)


def test_a_flag_held_by_another_rollout_is_refused_naming_it_and_nothing_is_written(flags, capsys):
    assert rollway("flags", "release", F, "--rollout", EDIT, "--reason", "r", "--actor", "oncall") == EXIT_CONFLICT
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, (out, err)
    assert err.startswith(f"error: feature flag '{F}' is held by rollout {BILLING} (its stage 25%, set by bob at "
                          f"1970-01-01T00:00:11Z), not by rollout {EDIT}: nothing was changed."), err
    assert f"`rollway flags release {F} --rollout {BILLING} --reason '<why>'`" in err, err
    assert flags.get(F).version == 3


def test_a_flag_no_rollout_holds_is_refused_and_says_what_ended_the_hold(flags, capsys):
    assert release() == EXIT_OK
    capsys.readouterr()

    # Run again (its answer lost, say): the hold it freed is named, not a bare "not held".
    assert release() == EXIT_CONFLICT
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, (out, err)
    assert err.startswith(f"error: feature flag '{F}' follows no rollout's stages: rollout {BILLING} held it no "
                          "more: its hold was freed (v4, by oncall at "), err
    assert "nothing to free, and nothing was changed" in err, err
    assert flags.get(F).version == 4


def test_an_unknown_flag_is_refused_as_every_flags_command_refuses_it(flags, capsys):
    assert rollway("flags", "release", "no_such_flag", "--rollout", BILLING, "--reason", "r",
                   "--actor", "oncall") == EXIT_INVALID
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: unknown feature flag 'no_such_flag'"), err


def test_a_hold_taken_between_the_read_and_the_write_is_not_freed(flags, capsys, monkeypatch):
    """The release read the flag held by BILLING; before its write, BILLING's hold ended and EDIT
    took the flag. The write, conditional on the flag as read, is refused; read again, the flag is
    EDIT's, and the release of BILLING's hold frees nothing."""
    real_audit = DynamoFlagStore.audit
    taken = []

    def audit_then_taken(self, feature, limit=None):
        trail = real_audit(self, feature, limit)
        if not taken:
            taken.append(True)
            set_flag(flags, FlagChange(feature=F, enabled=False, reason="billing rolled back"), actor="x", now=20.0)
            apply_bindings(flags, BOUND, 5, actor="alice", now=21.0, rollout=EDIT)
        return trail

    monkeypatch.setattr(DynamoFlagStore, "audit", audit_then_taken)

    assert release() == EXIT_CONFLICT

    err = capsys.readouterr().err
    assert f"is held by rollout {EDIT} (its stage 5%, set by alice" in err, err
    [newest] = flags.audit(F, limit=1)
    assert (newest.writer, newest.rollout) == ("rollout", EDIT), "EDIT's hold stands"
    assert (flags.get(F).enabled, flags.get(F).percentage) == (True, 5.0)


def test_a_rollout_this_services_ledger_records_open_is_refused_naming_abort(flags, aws, capsys):
    """A hold of this service's own rollout, still open in its ledger, is `rollway abort`'s to end
    (its traffic goes back with its flags): freed alone, the rollout's next stage failed over a hold
    it no longer had, with its canary still serving its share."""
    from rollway.aws.ledger import DynamoLedger
    from rollway.ledger import RolloutRecord
    from rollway.phases import RolloutPhase
    from rollway.spec import RolloutSpec, Stage

    spec = RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[Stage(weight=5), Stage(weight=100)],
                       flags=BOUND)
    DynamoLedger(aws.get_client("dynamodb"), aws.targets).create(
        RolloutRecord(service=aws.targets.canary_service, rollout_id=EDIT, image=spec.image,
                      spec_json=spec.model_dump_json(), phase=RolloutPhase.PAUSED), owner="process/edit", now=20.0,
        lease_seconds=0)
    before = flags.get(F)

    assert rollway("flags", "release", F, "--rollout", EDIT, "--reason", "stuck", "--actor", "oncall") == EXIT_CONFLICT

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"error: rollout {EDIT} is {aws.targets.canary_service}'s, and its ledger records it paused: "
                          "nothing was changed"), err
    assert "`rollway abort` rolls it back" in err, err
    assert flags.get(F).version == before.version
    # Another service's rollout, which this ledger does not record, is still freed.
    assert release() == EXIT_OK


def test_a_ledger_that_cannot_be_read_is_said_and_the_release_goes_on(flags, capsys, monkeypatch):
    from rollway.aws.ledger import DynamoLedger

    def unreadable(self, service):
        raise RuntimeError("DynamoDB Query failed: throttled")

    monkeypatch.setattr(DynamoLedger, "get", unreadable)

    assert release() == EXIT_OK

    out, err = capsys.readouterr()
    assert err == (f"warning: could not read this service's ledger (DynamoDB Query failed: throttled): whether rollout "
                   f"{BILLING} is open there was not checked\n"), err
    assert f"rollout {BILLING}'s hold freed" in out, out
