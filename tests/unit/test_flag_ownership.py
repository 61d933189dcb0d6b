"""Whose change is a bound flag's last one? A person's kill switch must hold against every
rollout that was under way when it was thrown, and no text a person types can pass for a
rollout's own write."""

from __future__ import annotations

import pytest

from rollway.fakes import FakeFlagStore
from rollway.flag_binding import (
    FlagChange, FlagHeld, HoldNotNamed, RolloutRolledBack, apply_bindings, check_bindings, disable_bindings,
    release_hold, set_flag,
)
from rollway.flags import FlagState, FlagStoreUnavailable
from rollway.spec import FlagBinding

SQS = "use_sqs_architecture"
BOUND = [FlagBinding(feature=SQS)]


def seeded() -> FakeFlagStore:
    store = FakeFlagStore()
    store.put(FlagState(feature=SQS), expected_version=0, actor="seed", now=1.0)
    return store


def settings(store: FakeFlagStore) -> tuple[bool, float]:
    flag = store.get(SQS)
    return flag.enabled, flag.percentage


def kill(store: FakeFlagStore, now: float, reason: str = "kill switch: bad writes") -> None:
    set_flag(store, FlagChange(feature=SQS, enabled=False, reason=reason), actor="oncall", now=now)


# --- two services' rollouts bound to one flag ------------------------------------------------

def test_a_kill_switch_thrown_during_one_services_rollout_holds_against_the_others_next_stage():
    store = seeded()
    apply_bindings(store, BOUND, 5, actor="alice", now=2.0, rollout="edit-r1")
    apply_bindings(store, BOUND, 5, actor="bob", now=3.0, rollout="billing-r7")
    apply_bindings(store, BOUND, 25, actor="alice", now=4.0, rollout="edit-r1")
    kill(store, 5.0)

    updates = apply_bindings(store, BOUND, 25, actor="bob", now=6.0, rollout="billing-r7")

    assert settings(store) == (False, 25.0), "billing's stage turned the kill switch back on"
    line = updates[0].describe()
    assert "left off 25%" in line and "oncall" in line and "kill switch: bad writes" in line, line
    assert "\n" not in line
    # The service whose rollout the kill switch was thrown under holds it too, at every stage.
    assert apply_bindings(store, BOUND, 50, actor="alice", now=7.0, rollout="edit-r1")[0].kept
    assert apply_bindings(store, BOUND, 100, actor="bob", now=8.0, rollout="billing-r7")[0].kept
    assert settings(store) == (False, 25.0)


def test_a_stage_that_found_the_flag_already_set_still_knows_a_later_kill_switch_was_thrown_under_it():
    """billing's 5 % stage found the flag where edit's 5 % stage had put it and wrote nothing,
    so its trail held no mark of billing's: its next stage took the kill switch over."""
    store = seeded()
    apply_bindings(store, BOUND, 5, actor="alice", now=2.0, rollout="edit-r1")
    apply_bindings(store, BOUND, 5, actor="bob", now=3.0, rollout="billing-r7")
    kill(store, 4.0)

    assert apply_bindings(store, BOUND, 25, actor="bob", now=5.0, rollout="billing-r7")[0].kept
    assert settings(store) == (False, 5.0)


def test_a_rollout_that_first_sets_the_flag_after_the_kill_switch_takes_it_over():
    """The next release is the hand-back the README describes; so is setting the flag back."""
    store = seeded()
    apply_bindings(store, BOUND, 5, actor="alice", now=2.0, rollout="edit-r1")
    kill(store, 3.0)
    assert apply_bindings(store, BOUND, 5, actor="bob", now=4.0, rollout="billing-r8")[0].kept is None
    assert settings(store) == (True, 5.0)


def test_a_kill_switch_set_back_as_the_other_rollout_left_it_hands_the_flag_back():
    store = seeded()
    apply_bindings(store, BOUND, 5, actor="bob", now=2.0, rollout="billing-r7")
    apply_bindings(store, BOUND, 25, actor="alice", now=3.0, rollout="edit-r1")
    kill(store, 4.0)
    assert apply_bindings(store, BOUND, 50, actor="bob", now=5.0, rollout="billing-r7")[0].kept
    set_flag(store, FlagChange(feature=SQS, enabled=True), actor="oncall", now=6.0)
    apply_bindings(store, BOUND, 50, actor="bob", now=7.0, rollout="billing-r7")
    assert settings(store) == (True, 50.0)


# --- no rollout mark in the trail --------------------------------------------------------------

def test_a_flag_a_person_set_to_the_first_stage_is_claimed_so_a_later_kill_switch_holds():
    """Erin had the flag on at 5 % (dogfood); the rollout's 5 % stage found it so and wrote
    nothing, so the trail held no rollout mark and its 25 % stage took on-call's kill switch over."""
    store = seeded()
    set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=5, reason="dogfood"), actor="erin", now=2.0)
    apply_bindings(store, BOUND, 5, actor="alice", now=3.0, rollout="r1")
    kill(store, 4.0)

    assert apply_bindings(store, BOUND, 25, actor="alice", now=5.0, rollout="r1")[0].kept
    assert settings(store) == (False, 5.0)


def test_claiming_a_flag_is_written_once_and_never_reported_as_a_change():
    store = seeded()
    set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=5), actor="erin", now=2.0)
    assert apply_bindings(store, BOUND, 5, actor="alice", now=3.0, rollout="r1") == []
    assert apply_bindings(store, BOUND, 5, actor="alice", now=4.0, rollout="r1") == []  # a resume
    assert [(e.actor, e.rollout) for e in store.audit(SQS)] == [("alice", "r1"), ("erin", None), ("seed", None)]


# --- a person's words are never a rollout's mark -------------------------------------------------

@pytest.mark.parametrize("reason", ["rollout stage 5%", "rollout stage 25%: back on", "rollout r1 stage 5%",
                                    "rollout r1 undone: broke checkout", "rollway rollback: by hand"])
def test_a_persons_reason_typed_as_a_rollout_mark_does_not_hand_the_flag_back(reason):
    store = seeded()
    apply_bindings(store, BOUND, 5, actor="alice", now=2.0, rollout="r1")
    kill(store, 3.0, reason=reason)

    assert apply_bindings(store, BOUND, 25, actor="alice", now=4.0, rollout="r1")[0].kept
    assert settings(store) == (False, 5.0)


def test_the_audit_trail_records_which_rollout_or_rollback_wrote_each_change():
    store = seeded()
    apply_bindings(store, BOUND, 5, actor="alice", now=2.0, rollout="r1")
    kill(store, 3.0, reason="rollout r1 stage 5%")
    disable_bindings(store, BOUND, actor="judge", reason="5xx", now=4.0)
    set_flag(store, FlagChange(feature=SQS, enabled=True), actor="dana", now=5.0)
    apply_bindings(store, BOUND, 25, actor="erin", now=6.0, rollout="r2")
    disable_bindings(store, BOUND, actor="judge", reason="5xx", now=7.0)
    # The first rollback found the flag off and wrote only to end r1's hold on it.
    assert [(e.actor, e.writer, e.rollout) for e in store.audit(SQS)] == [
        ("judge", "rollback", None), ("erin", "rollout", "r2"), ("dana", "person", None), ("judge", "rollback", None),
        ("oncall", "person", None), ("alice", "rollout", "r1"), ("seed", "person", None),
    ]


def test_a_stage_matching_a_persons_dial_down_does_not_end_the_other_services_hold():
    """On-call dialled edit's 50 % back to 25 %; billing's 25 % stage found the flag there and
    claimed it, which read as the newest rollout write: edit's next stage then set 75 %."""
    store = seeded()
    apply_bindings(store, BOUND, 5, actor="bob", now=2.0, rollout="billing-r7")
    for at, weight in enumerate((5, 25, 50), start=3):
        apply_bindings(store, BOUND, weight, actor="alice", now=float(at), rollout="edit-r1")
    set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=25, reason="errors at 50%"), actor="oncall",
             now=6.0)

    apply_bindings(store, BOUND, 25, actor="bob", now=7.0, rollout="billing-r7")
    updates = apply_bindings(store, BOUND, 75, actor="alice", now=8.0, rollout="edit-r1")

    assert settings(store) == (True, 25.0)
    assert updates and updates[0].kept
    assert apply_bindings(store, BOUND, 50, actor="bob", now=9.0, rollout="billing-r7")[0].kept


def test_one_services_rollback_does_not_hand_the_other_a_flag_a_person_took_to_0_percent():
    """On-call took a shared flag to 0 % while edit and billing were under way; edit's rollback
    then disabled it, and its entry ended every hold: billing's next stage turned it on at 50 %."""
    store = seeded()
    apply_bindings(store, BOUND, 5, actor="alice", now=2.0, rollout="edit-r1")
    apply_bindings(store, BOUND, 5, actor="bob", now=3.0, rollout="billing-r7")
    apply_bindings(store, BOUND, 25, actor="alice", now=4.0, rollout="edit-r1")
    set_flag(store, FlagChange(feature=SQS, percentage=0, reason="kill: bad writes"), actor="oncall", now=5.0)
    assert apply_bindings(store, BOUND, 50, actor="bob", now=6.0, rollout="billing-r7")[0].kept

    disable_bindings(store, BOUND, actor="judge", reason="edit: 5xx", now=7.0, rollout="edit-r1")
    assert apply_bindings(store, BOUND, 50, actor="bob", now=8.0, rollout="billing-r7")[0].kept
    assert settings(store) == (False, 0.0)
    # The rollback of billing itself hands the flag to the next release, as before.
    disable_bindings(store, BOUND, actor="judge", reason="billing: 5xx", now=9.0, rollout="billing-r7")
    apply_bindings(store, BOUND, 5, actor="carol", now=10.0, rollout="billing-r8")
    assert settings(store) == (True, 5.0)


# --- one rollout's stages at a time ------------------------------------------------------------

def stages(store: FakeFlagStore, rollout: str, *weights: int, actor: str = "alice", at: float = 2.0) -> None:
    for step, weight in enumerate(weights):
        apply_bindings(store, BOUND, weight, actor=actor, now=at + step, rollout=rollout)


def test_a_rollout_binding_a_flag_another_rollout_is_moving_is_refused_before_its_first_write():
    """Both moved it: billing's 5 % stage took edit's 50 % back to 5 %, and users on at 50 % were
    off again until edit's next stage."""
    store = seeded()
    stages(store, "edit-r1", 5, 25, 50)
    version = store.get(SQS).version

    with pytest.raises(FlagHeld) as refused:
        check_bindings(store, BOUND, starting=True)

    message = str(refused.value)
    assert "follows rollout edit-r1 (its stage 50%, set by alice" in message and "nothing was changed" in message
    # A rollout whose run died without its rollback holds the flag until someone rolls it back: what to run.
    assert ("If that rollout's run ended without rolling it back, the hold lasts until it is rolled back: run "
            "`rollway abort --targets-block <the block of the service rollout edit-r1 rolls out>`") in message, message
    # With no ledger read, the rollout may be another service's, whose end nothing here can tell.
    assert (f"Or, once you know its run ended, free the flag as it is, rolling nothing back: `rollway flags release "
            f"{SQS} --rollout edit-r1 --reason '<why>'` (written only while that rollout still holds it)") in message
    assert store.get(SQS).version == version
    check_bindings(store, BOUND)  # a stage of the holding rollout reads the flags without the refusal


def test_a_hold_by_a_rollout_the_ledger_records_open_names_abort_not_a_release():
    """Open in this service's ledger, the rollout's traffic is split too: `rollway abort` puts it back
    with the flag. Freeing the flag alone would leave the canary serving."""
    from rollway.fakes import FakeLedger
    from rollway.ledger import RolloutRecord

    store, ledger = seeded(), FakeLedger()
    ledger.create(RolloutRecord(service="edit", rollout_id="edit-r1", image="repo/app:2.0.0", spec_json="{}",
                                previous_task_definition="td:1", stable_desired=4),
                  owner="process/edit", now=1.0, lease_seconds=0)
    stages(store, "edit-r1", 5)

    with pytest.raises(FlagHeld) as refused:
        check_bindings(store, BOUND, starting=True, ledger=ledger, service="edit")

    message = str(refused.value)
    assert "`rollway abort --targets-block" in message and "flags release" not in message, message


def test_a_kill_switch_keeps_the_flag_held_by_the_rollout_it_was_thrown_under():
    store = seeded()
    stages(store, "edit-r1", 5, 25)
    kill(store, 9.0)
    with pytest.raises(FlagHeld, match="edit-r1"):
        check_bindings(store, BOUND, starting=True)


@pytest.mark.parametrize("end", ["promoted", "rolled back", "blind rollback"])
def test_the_flag_is_free_once_its_rollout_is_promoted_or_rolled_back(end):
    store = seeded()
    stages(store, "edit-r1", 5, 25)
    if end == "promoted":
        stages(store, "edit-r1", 50, 100, at=5.0)
    else:
        disable_bindings(store, BOUND, actor="judge", reason="5xx", now=9.0,
                         rollout="edit-r1" if end == "rolled back" else None)
    check_bindings(store, BOUND, starting=True)


@pytest.mark.parametrize("change", [{"enabled": False}, {"percentage": 1}], ids=["kill switch", "dial down"])
def test_a_rollout_promoted_past_a_persons_change_frees_the_flag_for_the_next_release(change):
    """On-call threw the kill switch at 5 %; the rollout's next stages left the flag off up to its
    100 %, so its newest write of the flag was the 5 % stage's: every later rollout bound to the
    flag was refused as held by that rollout, "once that one is promoted", which it was, and told
    to abort it."""
    store = seeded()
    stages(store, "edit-r1", 5)
    set_flag(store, FlagChange(feature=SQS, reason="bad writes", **change), actor="oncall", now=3.0)
    kept = settings(store)
    assert apply_bindings(store, BOUND, 50, actor="alice", now=4.0, rollout="edit-r1")[0].kept
    (last,) = apply_bindings(store, BOUND, 100, actor="alice", now=5.0, rollout="edit-r1")

    assert settings(store) == kept, "the 100 % stage undid the person's change"
    said = last.describe()
    assert "oncall" in said and "the next rollout bound to it sets it from its first stage" in said, said
    assert "hands it back" not in said, said  # the promoted rollout moves it no more
    check_bindings(store, BOUND, starting=True)  # free: the next release may start
    # Its 100 % stage applied again (a resume) leaves the person's change, and records the end once.
    version = store.get(SQS).version
    assert apply_bindings(store, BOUND, 100, actor="alice", now=6.0, rollout="edit-r1")[0].kept
    assert (settings(store), store.get(SQS).version) == (kept, version)
    # The next release takes the flag over at its first stage, as the README says.
    apply_bindings(store, BOUND, 5, actor="alice", now=7.0, rollout="edit-r2")
    assert settings(store) == (True, 5.0)


def test_a_promotion_whose_record_of_the_end_cannot_be_written_still_leaves_the_flag_and_passes(caplog):
    """The write that changes nothing only frees the flag for the next release: the table refusing
    it must not fail the 100 % stage (and move the traffic back) over a flag left as a person set it."""
    store = seeded()
    stages(store, "edit-r1", 5)
    kill(store, 3.0)
    refusing = FakeFlagStore()  # the same flags, whose writes the table refuses
    refusing.flags, refusing.trails = store.flags, store.trails

    def put(*args, **kwargs):
        raise FlagStoreUnavailable("PutItem: ProvisionedThroughputExceededException")

    refusing.put = put
    (update,) = apply_bindings(refusing, BOUND, 100, actor="alice", now=5.0, rollout="edit-r1")

    assert update.kept and settings(store) == (False, 5.0)
    assert "could not be recorded" in caplog.text and "ProvisionedThroughputExceededException" in caplog.text
    assert "will be refused as held" in caplog.text, caplog.text


def test_a_rollback_that_finds_the_flag_already_off_still_ends_its_rollouts_hold():
    """On-call's kill switch had turned it off, so the disable wrote nothing, and the trail showed
    the rolled-back rollout holding the flag: every later rollout bound to it was refused."""
    store = seeded()
    stages(store, "edit-r1", 5)
    kill(store, 3.0)

    assert disable_bindings(store, BOUND, actor="judge", reason="5xx", now=4.0, rollout="edit-r1") == []
    assert disable_bindings(store, BOUND, actor="judge", reason="5xx", now=5.0, rollout="edit-r1") == []

    check_bindings(store, BOUND, starting=True)
    assert [(e.writer, e.rollout) for e in store.audit(SQS)][:3] == [
        ("rollback", "edit-r1"), ("person", None), ("rollout", "edit-r1")], "recorded once, changing nothing"
    assert settings(store) == (False, 5.0)


def test_a_stage_that_lands_after_its_rollouts_rollback_does_not_turn_the_flag_back_on():
    """`rollway abort` rolled edit back (traffic on stable, flag off) while its run was shifting to
    25 %: the run's flag write came after the rollback and left the flag on at 25 % for good."""
    store = seeded()
    stages(store, "edit-r1", 5)
    disable_bindings(store, BOUND, actor="oncall", reason="abort", now=3.0, rollout="edit-r1")

    with pytest.raises(RolloutRolledBack, match="edit-r1 was rolled back"):
        apply_bindings(store, BOUND, 25, actor="alice", now=4.0, rollout="edit-r1")
    assert settings(store) == (False, 5.0)
    # Another rollout's rollback is no reason to stop this one, nor is a rollout's next release.
    stages(store, "edit-r2", 5, at=5.0)
    disable_bindings(store, BOUND, actor="judge", reason="billing: 5xx", now=6.0, rollout="billing-r7")
    stages(store, "edit-r2", 25, at=7.0)
    assert settings(store) == (True, 25.0)


# --- what `rollway flags set` says of a flag a rollout moves -----------------------------------

def flags_set_text(store: FakeFlagStore, now: float, **settings) -> str:
    import io

    from rollway.flags_commands import EXIT_OK, flags_set

    out, err = io.StringIO(), io.StringIO()
    assert flags_set(store, out, SQS, err=err, actor="oncall", now=now, **settings) == EXIT_OK, err.getvalue()
    assert err.getvalue() == ""
    return " ".join(out.getvalue().split())


def test_flags_set_on_a_flag_a_rollout_moves_says_the_rollout_now_leaves_it_alone_and_how_to_hand_it_back():
    """`flags set --percentage 5` at a rollout's 25 % printed only "on 25% -> on 5%": nothing said
    that rollout edit-r1's next stages would leave it there, nor how to hand it back."""
    store = seeded()
    apply_bindings(store, BOUND, 25, actor="alice", now=2.0, rollout="edit-r1")

    text = flags_set_text(store, 3.0, percentage=5)

    assert "on 25% -> on 5%" in text
    assert ("note: rollout edit-r1 moves use_sqs_architecture with its traffic stages (it set it on 25% at its stage "
            "25%") in text, text
    assert "its next stages leave the flag on 5% as you set it" in text and "rolled back" in text, text
    assert "`rollway flags set use_sqs_architecture --enabled --percentage 25` hands it back" in text, text
    # As said: the next stage leaves it, and setting it back as told hands it back.
    assert apply_bindings(store, BOUND, 50, actor="alice", now=4.0, rollout="edit-r1")[0].kept
    text = flags_set_text(store, 5.0, enabled=True, percentage=25)
    assert "as that rollout left it, so its next stage moves it again" in text, text
    apply_bindings(store, BOUND, 50, actor="alice", now=6.0, rollout="edit-r1")
    assert settings(store) == (True, 50.0)


@pytest.mark.parametrize("end", ["promoted", "rolled back", "never moved"])
def test_flags_set_on_a_flag_no_rollout_moves_adds_no_note(end):
    store = seeded()
    if end != "never moved":
        apply_bindings(store, BOUND, 25, actor="alice", now=2.0, rollout="edit-r1")
    if end == "promoted":
        apply_bindings(store, BOUND, 100, actor="alice", now=3.0, rollout="edit-r1")
    elif end == "rolled back":
        disable_bindings(store, BOUND, actor="alice", reason="bad", now=3.0, rollout="edit-r1")
    assert "note:" not in flags_set_text(store, 4.0, enabled=True, percentage=5)


def test_a_rollback_after_a_release_and_a_persons_change_says_the_hold_was_freed_not_that_it_disabled_the_flag():
    """The rollback of a rollout whose hold `rollway flags release` had freed (the flag left on) kept
    a person's later change, and said the person turned it "back on after rollout R's rollback
    disabled it": no rollback had run, and the flag had never been off."""
    store = seeded()
    stages(store, "edit-r1", 5)
    release_hold(store, SQS, "edit-r1", actor="oncall", now=3.0, reason="run killed, INC-42")
    set_flag(store, FlagChange(feature=SQS, percentage=30, reason="widen by hand"), actor="erin", now=4.0)

    [kept] = disable_bindings(store, BOUND, actor="judge", reason="late hook", now=5.0, rollout="edit-r1")

    assert settings(store) == (True, 30.0), "the person's change after the release is theirs"
    assert kept.kept == (
        "erin set it to on 30% after rollout edit-r1's hold on it was freed (`rollway flags release`, v3 by oncall at "
        "1970-01-01T00:00:03Z: run killed, INC-42) (v4 at 1970-01-01T00:00:04Z: widen by hand); `rollway flags set "
        f"{SQS} --no-enabled` turns it off"), kept.kept


def test_a_release_refused_after_another_rollout_took_the_flag_over_names_that_write_not_a_promotion():
    """Another rollout's write (a tool's, not exclusive) took edit's 5 % over and was promoted: the
    refusal of a release of edit's hold said edit's "100% stage ended its hold", naming its 5 % write."""
    store = seeded()
    stages(store, "edit-r1", 5)
    stages(store, "billing-r7", 50, 100, actor="bob", at=3.0)

    with pytest.raises(HoldNotNamed) as refused:
        release_hold(store, SQS, "edit-r1", actor="oncall", now=9.0, reason="run killed")

    assert str(refused.value) == (
        f"feature flag '{SQS}' follows no rollout's stages: rollout edit-r1 held it no more: rollout billing-r7 set it "
        "after it (v3, by bob at 1970-01-01T00:00:03Z); nothing to free, and nothing was changed"), str(refused.value)
