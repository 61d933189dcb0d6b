"""Bound flags against what people and other tools do to them: a kill switch during a rollout,
a schedule at 0 %, items written outside rollway, and text that is not UTF-8."""

from __future__ import annotations

import io
import json
import logging
from decimal import Decimal

import pytest

from rollway.fakes import FakeFlagStore
from rollway.flag_binding import FlagChange, apply_bindings, disable_bindings, flag_transition, set_flag
from rollway.flags import (
    FlagEvaluator,
    FlagState,
    InvalidFlagInput,
    MalformedFlag,
    evaluate,
    flag_from_item,
    validate_actor,
    validate_reason,
    validate_user_id,
)
from rollway.flags_commands import EXIT_INVALID, flags_eval, flags_set
from rollway.spec import FlagBinding, RolloutSpec

SQS = "use_sqs_architecture"
INTERRUPTS = "enable_interrupt_handling"
BAD_BYTE = "user-\udcff"  # what Linux hands Python for the byte 0xff in argv


def seeded(*features: str) -> FakeFlagStore:
    store = FakeFlagStore()
    for feature in features or (SQS,):
        store.put(FlagState(feature=feature), expected_version=0, actor="seed", now=1.0)
    return store


def settings(store: FakeFlagStore, feature: str = SQS) -> tuple[bool, float]:
    flag = store.get(feature)
    return flag.enabled, flag.percentage


# --- 1. a person's change to a bound flag wins over the rollout's next stage -------------------

def test_a_kill_switch_during_a_rollout_is_left_off_warned_and_reported(caplog):
    store, bindings = seeded(), [FlagBinding(feature=SQS)]
    assert [u.after.percentage for u in apply_bindings(store, bindings, 5, actor="alice", now=2.0, rollout="r1")] == [5.0]
    set_flag(store, FlagChange(feature=SQS, enabled=False, reason="kill switch: bad writes"), actor="oncall", now=3.0)

    with caplog.at_level(logging.WARNING, logger="rollway.flags"):
        updates = apply_bindings(store, bindings, 25, actor="alice", now=4.0, rollout="r1")

    assert settings(store) == (False, 5.0), "the rollout turned the kill switch back on"
    assert [(u.feature, u.changed) for u in updates] == [(SQS, False)], "the flow is told about the flag"
    line = updates[0].describe()
    assert "left off 5%" in line and "oncall" in line and "kill switch: bad writes" in line, line
    assert "oncall" in flag_transition(updates[0], at=4.0, actor="alice").comment
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert SQS in warning and "oncall" in warning, warning
    # Every later stage leaves it too, and the rollback's disable goes through whatever happened.
    apply_bindings(store, bindings, 100, actor="alice", now=5.0, rollout="r1")
    assert settings(store) == (False, 5.0)
    set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=40), actor="oncall", now=6.0)
    assert [u.after.enabled for u in disable_bindings(store, bindings, actor="judge", reason="5xx", now=7.0)] == [False]


def test_a_person_lowering_the_percentage_is_not_raised_again():
    store, bindings = seeded(), [FlagBinding(feature=SQS)]
    apply_bindings(store, bindings, 25, actor="rollway", now=2.0, rollout="r1")
    set_flag(store, FlagChange(feature=SQS, percentage=10, reason="too many tickets"), actor="dana", now=3.0)
    assert apply_bindings(store, bindings, 50, actor="rollway", now=4.0, rollout="r1")[0].kept is not None
    assert settings(store) == (True, 10.0)


def test_the_rollouts_own_writes_follow_each_other_and_a_flag_set_back_is_handed_back():
    store, bindings = seeded(), [FlagBinding(feature=SQS)]
    for weight in (5, 25, 50):
        assert apply_bindings(store, bindings, weight, actor="rollway", now=float(weight), rollout="r1")[0].changed
    assert settings(store) == (True, 50.0)
    set_flag(store, FlagChange(feature=SQS, enabled=False), actor="oncall", now=60.0)
    apply_bindings(store, bindings, 75, actor="rollway", now=70.0, rollout="r1")
    assert settings(store) == (False, 50.0)
    set_flag(store, FlagChange(feature=SQS, enabled=True), actor="oncall", now=80.0)  # as the rollout left it
    apply_bindings(store, bindings, 100, actor="rollway", now=90.0, rollout="r1")
    assert settings(store) == (True, 100.0)


def test_a_new_rollout_takes_its_flags_over_after_a_rollback_or_a_promotion():
    store, bindings = seeded(), [FlagBinding(feature=SQS)]
    apply_bindings(store, bindings, 5, actor="rollway", now=1.0, rollout="r1")
    disable_bindings(store, bindings, actor="judge", reason="error rate 7%", now=2.0)
    apply_bindings(store, bindings, 10, actor="rollway", now=3.0, rollout="r2")
    assert settings(store) == (True, 10.0)
    apply_bindings(store, bindings, 100, actor="rollway", now=4.0, rollout="r2")
    set_flag(store, FlagChange(feature=SQS, enabled=False), actor="oncall", now=5.0)  # after the promotion
    apply_bindings(store, bindings, 5, actor="rollway", now=6.0, rollout="r3")
    assert settings(store) == (True, 5.0)


def test_a_flag_a_person_set_before_the_rollout_is_taken_over_at_its_first_stage():
    store, bindings = seeded(), [FlagBinding(feature=SQS)]
    set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=1, reason="dogfood"), actor="erin", now=2.0)
    apply_bindings(store, bindings, 5, actor="rollway", now=3.0, rollout="r1")
    assert settings(store) == (True, 5.0)


# --- 2. a schedule at 0 % keeps the flag off -------------------------------------------------

def test_a_schedule_at_zero_percent_disables_the_flag_then_enables_it_at_its_stage():
    spec = RolloutSpec.model_validate({
        "image": "repo:2.0.0",
        "stages": [{"weight": 5}, {"weight": 25}, {"weight": 100}],
        "flags": [{"feature": SQS, "follow": "schedule", "schedule": {25: 10, 100: 100}}],
    })
    store = FakeFlagStore([FlagState(feature=SQS, enabled=True, percentage=30)])
    evaluator = FlagEvaluator(store, ttl_seconds=1e-9)

    apply_bindings(store, spec.flags, 5, actor="rollway", now=1.0, rollout="r1")
    assert settings(store) == (False, 0.0)
    assert evaluator.is_enabled(SQS) is False, "on for every caller without a user while the schedule says 0%"
    # The rollout's own disable is not taken for a person's: the next stage follows the schedule.
    assert [u.kept for u in apply_bindings(store, spec.flags, 25, actor="rollway", now=2.0, rollout="r1")] == [None]
    assert settings(store) == (True, 10.0)


# --- 3. items written outside rollway ---------------------------------------------------------

@pytest.mark.parametrize("enabled", ["false", "true", "0", 2, None, Decimal("0.5")])
def test_enabled_must_be_a_boolean_or_zero_or_one(enabled):
    with pytest.raises(MalformedFlag, match=f"'legacy'.*enabled") as raised:
        flag_from_item({"feature": "legacy", "enabled": enabled, "percentage": Decimal(100)})
    assert raised.value.feature == "legacy"


def test_dynamodb_numbers_zero_and_one_and_the_seeds_items_still_read():
    assert flag_from_item({"feature": "a", "enabled": Decimal(1)}).enabled is True
    assert flag_from_item({"feature": "a", "enabled": Decimal(0)}).enabled is False
    assert flag_from_item({"feature": "a", "enabled": True}).percentage == 100.0  # the seed's items


def test_an_out_of_range_item_names_the_flag_and_what_is_wrong():
    with pytest.raises(MalformedFlag, match=r"'bad_flag'.*percentage 150 is outside 0\.\.100"):
        flag_from_item({"feature": "bad_flag", "enabled": True, "percentage": Decimal(150)})


class MalformedStore(FakeFlagStore):
    """Reads one flag as the DynamoDB store reads a malformed item."""

    def __init__(self, item: dict) -> None:
        super().__init__()
        self.item = item

    def get(self, feature: str):
        if feature == self.item["feature"] and feature not in self.flags:
            return flag_from_item(self.item)
        return super().get(feature)


def test_the_evaluator_answers_a_malformed_flag_as_an_unavailable_store(caplog):
    store = MalformedStore({"feature": "legacy", "enabled": "false", "percentage": Decimal(100)})
    with caplog.at_level(logging.WARNING, logger="rollway.flags"):
        assert FlagEvaluator(store).is_enabled("legacy", "user-1") is False
    assert "'legacy'" in caplog.text and "fail closed" in caplog.text


def test_a_malformed_salt_is_refused_with_a_way_the_command_line_has():
    """The message asked for "a salt", which `rollway flags set` has no option for; the flow has."""
    store = MalformedStore({"feature": "legacy", "enabled": True, "percentage": Decimal(5), "salt": "a:b"})
    out, err = io.StringIO(), io.StringIO()
    assert flags_set(store, out, "legacy", err=err, actor="alice", percentage=10, now=5.0) == EXIT_INVALID
    assert "salt unreadable" in err.getvalue() and "`rollway flags set` has no option for it" in err.getvalue()
    assert "or disable it" in err.getvalue() and out.getvalue() == ""


# --- 4. text that is not UTF-8 ------------------------------------------------------------------

@pytest.mark.parametrize("validate", [validate_user_id, validate_actor, validate_reason])
def test_text_that_is_not_utf8_is_bad_input(validate):
    with pytest.raises(InvalidFlagInput, match="not valid UTF-8"):
        validate(BAD_BYTE)


@pytest.mark.parametrize("percentage", [0, 25, 100])
def test_evaluations_refuse_a_user_id_that_cannot_be_hashed(percentage):
    flag = FlagState(feature=SQS, enabled=percentage > 0, percentage=percentage)
    user = json.loads('"u\\udcff"')
    with pytest.raises(InvalidFlagInput, match="not valid UTF-8"):
        FlagEvaluator(FakeFlagStore([flag])).is_enabled(SQS, user)
    with pytest.raises(InvalidFlagInput, match="not valid UTF-8"):
        evaluate(flag, user)


@pytest.mark.parametrize("given", [{"actor": BAD_BYTE}, {"actor": "gina", "reason": "ticket \udcff"}],
                         ids=["actor", "reason"])
def test_flags_set_refuses_text_that_is_not_utf8_with_one_error_line(given):
    store = seeded()
    out, err = io.StringIO(), io.StringIO()
    assert flags_set(store, out, SQS, err=err, percentage=30, now=5.0, **given) == EXIT_INVALID
    assert err.getvalue().startswith("error: ") and err.getvalue().count("\n") == 1
    assert out.getvalue() == "" and store.get(SQS).version == 1


def test_flags_set_records_the_actor_without_surrounding_spaces():
    """As the set-flags flow and `rollway promote` record names: " alice " and "alice" are one person."""
    store = seeded()
    out, err = io.StringIO(), io.StringIO()
    assert flags_set(store, out, SQS, err=err, actor="  alice ", percentage=30, now=5.0) == 0, err.getvalue()
    assert sorted(entry.actor for entry in store.audit(SQS)) == ["alice", "seed"]


@pytest.mark.parametrize("given", [{}, {"reason": "ticket 42"}], ids=["nothing", "only a reason"])
def test_flags_set_with_nothing_to_set_is_refused_not_reported_unchanged(given):
    """`rollway flags set F` (or with only --reason) read the table, printed "unchanged" with exit 0
    and dropped the reason: it looked like a change that found the flag already so."""
    class Unread(type(seeded())):
        def get(self, feature):
            raise AssertionError("the table was read")

    out, err = io.StringIO(), io.StringIO()
    assert flags_set(Unread(), out, SQS, err=err, actor="gina", now=5.0, **given) == EXIT_INVALID
    assert err.getvalue().startswith(f"error: nothing to set on {SQS}: give --enabled") and out.getvalue() == ""
    created = seeded()
    assert flags_set(created, out, "brand_new", err=err, actor="gina", create=True, now=5.0) == 0, err.getvalue()
    assert created.get("brand_new") is not None


def test_flags_eval_refuses_a_user_id_that_is_not_utf8():
    out, err = io.StringIO(), io.StringIO()
    assert flags_eval(seeded(), out, SQS, [BAD_BYTE], err=err) == EXIT_INVALID
    assert "not valid UTF-8" in err.getvalue() and out.getvalue() == ""


# --- a rollout knows its own writes by its id, not by the order of its weights ----------------

def test_a_kill_switch_holds_when_the_rollout_applies_the_same_or_a_lower_stage_again():
    """A resume re-applies the stage a dead run already set, and an adopt may go down: the
    rule used to read a write at the same or a higher weight as another rollout's and turned
    the kill switch back on."""
    store, bindings = seeded(), [FlagBinding(feature=SQS)]
    apply_bindings(store, bindings, 50, actor="rollway", now=1.0, rollout="r1")
    set_flag(store, FlagChange(feature=SQS, enabled=False, reason="kill switch"), actor="oncall", now=2.0)
    for weight in (50, 25, 5):
        assert apply_bindings(store, bindings, weight, actor="rollway", now=3.0, rollout="r1")[0].kept
        assert settings(store) == (False, 50.0)


def test_a_flag_another_service_s_rollout_set_is_taken_over_whatever_its_weight():
    store, bindings = seeded(), [FlagBinding(feature=SQS)]
    apply_bindings(store, bindings, 50, actor="rollway", now=1.0, rollout="billing-r7")
    set_flag(store, FlagChange(feature=SQS, enabled=False, reason="kill switch"), actor="oncall", now=2.0)
    # The kill switch holds for billing's rollout, and a rollout of another service takes it over:
    # the flag is bound to both, and the person's change was made against billing's write.
    assert apply_bindings(store, bindings, 75, actor="rollway", now=3.0, rollout="billing-r7")[0].kept
    assert apply_bindings(store, bindings, 5, actor="rollway", now=4.0, rollout="edit-r1")[0].kept is None
    assert settings(store) == (True, 5.0)


def test_a_new_rollout_takes_over_a_flag_the_last_rollback_found_already_off():
    """The rollback wrote nothing (the flag was already off), so no rollback mark ended the
    old rollout's hold; the new rollout's schedule reached 25 % and was held off."""
    spec = RolloutSpec.model_validate({
        "image": "repo:2.0.0", "stages": [{"weight": 5}, {"weight": 25}, {"weight": 100}],
        "flags": [{"feature": SQS, "follow": "schedule", "schedule": {25: 10, 100: 100}}],
    })
    store, plain = seeded(), [FlagBinding(feature=SQS)]
    apply_bindings(store, plain, 5, actor="rollway", now=1.0, rollout="r1")
    set_flag(store, FlagChange(feature=SQS, enabled=False, percentage=0), actor="oncall", now=2.0)
    assert disable_bindings(store, plain, actor="judge", reason="5xx", now=3.0) == []
    for weight, expected in ((5, (False, 0.0)), (25, (True, 10.0)), (100, (True, 100.0))):
        apply_bindings(store, spec.flags, weight, actor="rollway", now=4.0 + weight, rollout="r2")
        assert settings(store) == expected, weight


def test_a_rollout_id_with_spaces_is_refused_before_any_write():
    store, bindings = seeded(), [FlagBinding(feature=SQS)]
    with pytest.raises(InvalidFlagInput, match="rollout id"):
        apply_bindings(store, bindings, 5, actor="rollway", now=1.0, rollout="r 1")
    assert settings(store) == (False, 0.0)


@pytest.mark.parametrize("old_weight,weight", [(5, 25), (25, 25)])
def test_a_rollout_under_way_across_the_upgrade_still_knows_its_own_unmarked_writes(old_weight, weight):
    """An earlier release applied a stage ('rollout stage 5%', no id); on-call then threw the
    kill switch, and the same rollout, upgraded, turned it back on at its next stage or when
    it applied the same stage again on a resume."""
    store, bindings = seeded(), [FlagBinding(feature=SQS)]
    set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=old_weight, reason=f"rollout stage {old_weight}%"),
             actor="rollway", now=2.0)
    set_flag(store, FlagChange(feature=SQS, enabled=False, reason="kill switch: bad writes"), actor="oncall", now=3.0)
    # That release recorded no writer: its entries are read by their reasons' marks.
    store.trails[SQS] = [e.model_copy(update={"writer": None}) for e in store.trails[SQS]]
    assert apply_bindings(store, bindings, weight, actor="rollway", now=4.0, rollout="20261123T090000Z-1a2b3c4d")[0].kept
    assert settings(store) == (False, float(old_weight))


@pytest.mark.parametrize("reason", ["stage 5%: 500s on checkout, killing", "undone: 5% broke checkout, killing"])
def test_a_persons_reason_that_starts_like_a_rollway_mark_is_not_one(reason):
    store, bindings = seeded(), [FlagBinding(feature=SQS)]
    apply_bindings(store, bindings, 5, actor="rollway", now=2.0, rollout="r1")
    set_flag(store, FlagChange(feature=SQS, enabled=False, reason=reason), actor="oncall", now=3.0)
    apply_bindings(store, bindings, 25, actor="rollway", now=4.0, rollout="r1")
    assert settings(store) == (False, 5.0)
