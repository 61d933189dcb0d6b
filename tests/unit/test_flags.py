"""Feature flags without AWS: bucketing, evaluation, the cached evaluator, bindings, commands."""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import re
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollway.fakes import FakeFlagStore, FlakyFlagStore
from rollway.flag_binding import (
    FlagChange,
    FlagsNotDisabled,
    apply_bindings,
    disable_bindings,
    flag_transition,
    set_flag,
)
from rollway.flags import (
    BASIS_POINTS,
    FlagConflict,
    FlagEvaluator,
    FlagState,
    FlagStoreUnavailable,
    InvalidFlagInput,
    InvalidPercentage,
    MalformedFlag,
    MissingUserId,
    UnknownFlag,
    bucket,
    evaluate,
    flag_from_item,
    validate_feature,
    validate_salt,
)
from rollway.flags_commands import (
    EXIT_CONFLICT,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    flags_eval,
    flags_get,
    flags_list,
    flags_release,
    flags_set,
)
from rollway.spec import FlagBinding

SQS = "use_sqs_architecture"
INTERRUPTS = "enable_interrupt_handling"
RESUMPTION = "enable_session_resumption"
USERS = [f"user-{i}" for i in range(100_000)]


def flag(feature: str = SQS, **settings) -> FlagState:
    return FlagState(feature=feature, **settings)


def seeded_store(*flags: FlagState) -> FakeFlagStore:
    """A store holding the seed's three flags (off), or the given ones, at version 1."""
    store = FakeFlagStore()
    for f in flags or (flag(SQS), flag(INTERRUPTS), flag(RESUMPTION)):
        store.put(f, expected_version=0, actor="seed", now=1.0)
    store.reads = store.writes = 0
    return store


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# --- bucketing ------------------------------------------------------------------------


def chi_square_statistic(buckets: list[int], bins: int = 100) -> float:
    counts = Counter(b * bins // BASIS_POINTS for b in buckets)
    expected = len(buckets) / bins
    return sum((counts.get(i, 0) - expected) ** 2 / expected for i in range(bins))


def chi_square_critical(df: int, z: float = 3.09) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile; z=3.09 is p=0.001."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


@functools.cache
def sqs_buckets() -> tuple[int, ...]:
    return tuple(bucket("v1", SQS, u) for u in USERS)


def test_buckets_are_uniform_over_100000_ids():
    statistic = chi_square_statistic(list(sqs_buckets()))
    assert statistic < chi_square_critical(99), statistic


def test_the_uniformity_check_rejects_a_skewed_bucketing():
    # The seed-style "sum of character codes" hash clusters ids: the check must catch it.
    statistic = chi_square_statistic([sum(map(ord, u)) * 7 % BASIS_POINTS for u in USERS])
    assert statistic > chi_square_critical(99)


@pytest.mark.parametrize("percentage", [1, 5, 25, 50, 75])
def test_share_of_users_on_matches_the_percentage(percentage):
    threshold = flag(enabled=True, percentage=percentage).threshold
    share = sum(b < threshold for b in sqs_buckets()) / len(USERS)
    p = percentage / 100
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / len(USERS))


def test_bucketing_is_deterministic_and_depends_on_salt_and_feature():
    assert bucket("v1", SQS, "user-7") == bucket("v1", SQS, "user-7")
    assert 0 <= bucket("v1", SQS, "user-7") < BASIS_POINTS
    first = {u for u in USERS[:20_000] if bucket("v1", SQS, u) < 5000}
    other_salt = {u for u in USERS[:20_000] if bucket("v2", SQS, u) < 5000}
    other_feature = {u for u in USERS[:20_000] if bucket("v1", INTERRUPTS, u) < 5000}
    # Independent halves overlap on about a quarter of the users, not on all of them.
    for other in (other_salt, other_feature):
        assert 0.22 < len(first & other) / 20_000 < 0.28


@pytest.mark.parametrize("salt,feature,user,expected", [
    ("v1", SQS, "user-7", 9431),
    ("v1", SQS, "alice@example.com", 348),
    ("v1", SQS, "42", 7885),
    ("v1", SQS, "m\u00fcller", 9972),  # a user id's UTF-8 bytes are hashed
    ("v1", INTERRUPTS, "user-7", 3225),
    ("v2", SQS, "user-7", 6121),
])
def test_a_users_bucket_is_pinned_so_a_change_of_the_hash_fails_here(salt, feature, user, expected):
    """Golden values. A refactor that changes the hash (its algorithm, digest size, the prefix's
    form, the encoding or the modulo) keeps every property above, yet moves users in and out of
    every live rollout and kill switch at once, and makes the services' own evaluations disagree
    with rollway's: the same (salt, flag, user) must give the same bucket in every release."""
    assert bucket(salt, feature, user) == expected
    on = flag(feature, enabled=True, percentage=5, salt=salt)
    assert evaluate(on, user) is (expected < 500)


@given(
    user=st.text(min_size=1, max_size=40),
    salt=st.from_regex(r"[A-Za-z0-9_.-]{1,16}", fullmatch=True),
    p=st.floats(min_value=0, max_value=100),
    q=st.floats(min_value=0, max_value=100),
)
def test_a_user_on_at_p_stays_on_at_every_higher_percentage(user, salt, p, q):
    low, high = sorted((p, q))
    if evaluate(flag(enabled=True, percentage=low, salt=salt), user):
        assert evaluate(flag(enabled=True, percentage=high, salt=salt), user)


def test_without_a_user_a_flag_follows_enabled_and_disabled_is_off_for_everyone():
    assert evaluate(flag(enabled=True, percentage=0)) is True
    assert evaluate(flag(enabled=False, percentage=100)) is False
    assert not any(evaluate(flag(enabled=False, percentage=100), u) for u in USERS[:1000])
    assert all(evaluate(flag(enabled=True, percentage=100), u) for u in USERS[:1000])
    assert not any(evaluate(flag(enabled=True, percentage=0), u) for u in USERS[:1000])


def test_an_empty_user_id_is_an_error():
    with pytest.raises(MissingUserId, match="user id ''"):
        evaluate(flag(enabled=True, percentage=50), "")


@pytest.mark.parametrize("bad", [-0.01, 100.01, float("nan"), float("inf"), "lots", True, None])
def test_a_percentage_outside_0_to_100_is_refused_by_name(bad):
    with pytest.raises(InvalidPercentage, match="percentage"):
        flag(percentage=bad)


@pytest.mark.parametrize("given,message", [
    ("50%", "percentage '50%' is not a number: give 50 (without the % sign)"),
    (" 12.5 % ", "is not a number: give 12.5 (without the % sign)"),
    ("150%", "percentage '150%' is not a number: give a percentage 0..100"),
    ("lots", "percentage 'lots' is not a number: give a percentage 0..100"),
    (150, "percentage 150 is outside 0..100"),
])
def test_a_percentage_with_its_sign_is_refused_saying_what_to_give(given, message):
    """"50%" was refused as "outside 0..100", which 50 is not: the message now says to drop the sign."""
    with pytest.raises(InvalidPercentage) as refused:
        FlagChange.model_validate({"feature": SQS, "percentage": given})
    assert message in str(refused.value), str(refused.value)


def test_minus_zero_percent_is_zero_percent():
    """It was stored, shown and audited as "-0%"."""
    assert str(flag(percentage=-0.0).percentage) == "0.0"
    assert str(FlagChange.model_validate({"feature": SQS, "percentage": "-0"}).percentage) == "0.0"


def test_percentages_have_basis_point_resolution():
    # A flag as stored (an item written outside rollway, say) is read at the basis point it acts on;
    # a change asking for a finer one is refused instead (below).
    assert flag(percentage=33.333).percentage == 33.33
    assert flag(percentage=33.333).threshold == 3333
    assert flag(percentage="12.5").threshold == 1250


@pytest.mark.parametrize("given,message", [
    (0.004, "percentage 0.004: flags are stored in basis points, so the finest step is 0.01 % (it would be stored "
            "as 0%); give 0 or 0.01; nothing was read or changed"),
    ("12.345", "percentage 12.345: flags are stored in basis points, so the finest step is 0.01 % (it would be "
               "stored as 12.35%); give 12.34 or 12.35; nothing was read or changed"),
])
def test_a_change_finer_than_a_basis_point_is_refused_not_rounded(given, message):
    """A change is what a person asked for: 0.004 was stored as 0 % (off for every user) and reported
    as done. Every way of changing a flag builds a FlagChange, so each refuses it in these words."""
    with pytest.raises(InvalidFlagInput) as refused:
        FlagChange.model_validate({"feature": SQS, "percentage": given})
    assert str(refused.value) == message
    assert FlagChange(feature=SQS, percentage="33.33").percentage == 33.33


@pytest.mark.parametrize("name", ["", "has space", "a:b", "x" * 129])
def test_bad_feature_names_are_refused(name):
    with pytest.raises(InvalidFlagInput, match="feature flag name"):
        flag(name)


def test_a_name_or_salt_with_a_trailing_line_break_is_refused():
    """``$`` matches before a final line break: "newflag\n" (a name read from a file's line, a
    form's multi-line field) was created as a flag of its own, listed as "newflag" over two lines,
    while the application's ``is_enabled("newflag")`` read the flag nobody had set."""
    for name in ("newflag\n", "new\nflag"):
        with pytest.raises(InvalidFlagInput, match="feature flag name"):
            validate_feature(name)
        with pytest.raises(InvalidFlagInput, match="feature flag name"):
            FlagChange(feature=name, enabled=True, create=True)
    with pytest.raises(InvalidFlagInput, match="salt"):
        validate_salt("v2\n")
    with pytest.raises(MalformedFlag, match="no flag can have that name"):
        flag_from_item({"feature": "newflag\n", "enabled": True, "percentage": 5})


def test_the_seeds_items_read_as_version_0():
    legacy = flag_from_item({"feature": SQS, "enabled": True, "percentage": 5, "updatedAt": "2024-05-01T00:00:00Z"})
    assert (legacy.enabled, legacy.percentage, legacy.version, legacy.salt) == (True, 5.0, 0, "v1")
    assert legacy.updated_at == 1714521600.0
    rolled_back = flag_from_item({"feature": SQS, "enabled": False})
    assert (rolled_back.enabled, rolled_back.percentage) == (False, 100.0)


# --- the cached evaluator -------------------------------------------------------------


def evaluator(store: FakeFlagStore, clock: Clock, **options) -> FlagEvaluator:
    return FlagEvaluator(store, ttl_seconds=30, retry_seconds=5, clock=clock, **options)


def test_the_evaluator_agrees_with_evaluate():
    f = flag(enabled=True, percentage=37.5, salt="abc")
    flags = evaluator(seeded_store(f), Clock())
    stored = flags._store.get(SQS)  # noqa: SLF001 - the stored version, to compare answers
    assert [flags.is_enabled(SQS, u) for u in USERS[:5000]] == [evaluate(stored, u) for u in USERS[:5000]]


def test_cached_flags_are_read_again_only_after_the_ttl():
    store, clock = seeded_store(flag(enabled=True, percentage=0)), Clock()
    flags = evaluator(store, clock)
    assert flags.is_enabled(SQS, "user-1") is False
    set_flag(store, FlagChange(feature=SQS, percentage=100), actor="ops", now=2.0)
    clock.t += 29.9
    assert flags.is_enabled(SQS, "user-1") is False, "served from the cache within the TTL"
    assert store.reads == 2  # the first evaluation and set_flag's own read
    clock.t += 0.1
    assert flags.is_enabled(SQS, "user-1") is True, "read again once the TTL has passed"
    assert store.reads == 3


@pytest.mark.parametrize("first", ["read", "failed read"])
def test_a_slow_read_that_answers_after_a_later_one_does_not_replace_its_answer(first):
    """Two request threads read an expired flag: the first read is slow, a rollback disables the
    flag, and the second read (begun later, answered first) caches "off". The first answered last,
    and its answer replaced the newer one for a whole TTL (or retry_seconds): its "on" from before
    the rollback, past the bound the README gives (a disable reaches a process within ttl_seconds),
    or its failure, which answered the outage default though the flag had just been read."""
    store, clock = seeded_store(flag(enabled=True, percentage=100)), Clock()
    flags = evaluator(store, clock, on_unavailable="open")
    read = store.get

    def slow_then_overtaken(feature):
        store.get = read
        before_the_rollback = read(feature)  # the first thread's read, taken before the disable
        set_flag(store, FlagChange(feature=SQS, enabled=False), actor="rollback", now=2.0)
        clock.t += 0.5  # the second thread's request comes in while the first read is in flight
        assert flags.is_enabled(SQS, "user-1") is False, "the second thread reads the rollback's disable"
        if first == "failed read":
            raise FlagStoreUnavailable("read timeout")
        return before_the_rollback

    store.get = slow_then_overtaken
    flags.is_enabled(SQS, "user-1")  # the first thread
    clock.t += 1
    assert flags.is_enabled(SQS, "user-1") is False, "the newer read's off stays cached"
    assert store.reads == 3, "served from the cache: the seed's read, the two threads' reads"


def test_while_one_thread_reads_an_expired_flag_the_others_answer_from_the_cache_for_retry_seconds():
    """Every request thread that met the expired flag read the store itself: with the table slow or
    out, each of them waited on its own read (botocore's timeouts, retried) every time the TTL or
    retry_seconds ran out, instead of one read while the others answered. Not for longer than
    retry_seconds: a read that hangs must not keep a kill switch from the process."""
    store, clock = seeded_store(flag(enabled=True, percentage=100)), Clock()
    flags = evaluator(store, clock)
    assert flags.is_enabled(SQS, "user-1") is True
    set_flag(store, FlagChange(feature=SQS, enabled=False), actor="on-call", now=2.0)
    clock.t += 30  # expired
    read, answers = store.get, []

    def slow(feature):
        reads = store.reads
        answers.append(flags.is_enabled(SQS, "user-1"))  # another thread, while this read is in flight
        assert store.reads == reads, "the other thread answered from the cache, without a read of its own"
        clock.t += 5  # the read has taken retry_seconds: the next thread reads for itself
        store.get = read
        answers.append(flags.is_enabled(SQS, "user-1"))
        return read(feature)

    store.get = slow
    assert flags.is_enabled(SQS, "user-1") is False
    assert answers == [True, False], "the cached answer while the read is young, a read of its own after"


@pytest.mark.parametrize("setting", ["ttl_seconds", "retry_seconds"])
@pytest.mark.parametrize("value", [math.nan, math.inf, 0.0, -1.0])
def test_a_ttl_or_retry_that_is_not_a_positive_finite_number_is_refused(setting, value):
    """``nan <= 0`` is False: a NaN TTL once passed the check and the cached flag never expired,
    so a kill switch never took effect in that process."""
    with pytest.raises(ValueError, match=setting):
        FlagEvaluator(FakeFlagStore([]), **{setting: value})


def test_invalidate_makes_the_next_evaluation_read_the_store():
    store, clock = seeded_store(flag(enabled=False), flag(INTERRUPTS, enabled=False)), Clock()
    flags = evaluator(store, clock)
    assert not flags.is_enabled(SQS) and not flags.is_enabled(INTERRUPTS)
    set_flag(store, FlagChange(feature=SQS, enabled=True), actor="ops", now=2.0)
    set_flag(store, FlagChange(feature=INTERRUPTS, enabled=True), actor="ops", now=2.0)
    flags.invalidate(SQS)
    assert flags.is_enabled(SQS) is True
    assert flags.is_enabled(INTERRUPTS) is False, "only the invalidated flag was read again"
    flags.invalidate()
    assert flags.is_enabled(INTERRUPTS) is True


@pytest.mark.parametrize("first", ["read", "failed read"])
@pytest.mark.parametrize("everything", [False, True])
def test_invalidate_during_a_read_in_flight_is_not_undone_by_that_read(everything, first):
    """A request thread's read was in flight when the application, told of a kill switch, called
    invalidate: the read, taken before the disable, answered after it and cached its "on" for a whole
    TTL, so the invalidation was lost and the next evaluations answered the flag as it was before."""
    store, clock = seeded_store(flag(enabled=True, percentage=100)), Clock()
    flags = evaluator(store, clock, on_unavailable="open")
    read = store.get

    def overtaken(feature):
        store.get = read
        before_the_kill_switch = read(feature)
        set_flag(store, FlagChange(feature=SQS, enabled=False), actor="on-call", now=2.0)
        flags.invalidate(None if everything else SQS)  # the application, told of the change
        if first == "failed read":  # its outage answer (fail open) was cached for retry_seconds
            raise FlagStoreUnavailable("read timeout")
        return before_the_kill_switch

    store.get = overtaken
    flags.is_enabled(SQS, "user-1")  # the request thread whose read was in flight: its answer is its own
    clock.t += 0.1
    assert flags.is_enabled(SQS, "user-1") is False, "the evaluation after the invalidation reads the store"
    assert flags.is_enabled(SQS, "user-1") is False
    assert store.reads == 3, "the two reads, and set_flag's own: the newer answer is cached"


class _KilledWhileKept(logging.Handler):
    """Another thread, told of a kill switch, calls invalidate while this one keeps a read's answer:
    as the failed read's warning is written (a handler's I/O lets other threads run), or as the flag
    read is compiled."""

    def __init__(self, store: FakeFlagStore) -> None:
        super().__init__()
        self.store, self.flags, self.done = store, None, False

    def kill(self) -> None:
        if not self.done:
            self.done = True
            set_flag(self.store, FlagChange(feature=SQS, enabled=False), actor="on-call", now=2.0)
            self.flags.invalidate(SQS)

    def emit(self, record: logging.LogRecord) -> None:
        if "could not be read" in record.getMessage():
            self.kill()


class _Compiled:
    """The flag as read, turned off (``kill``) by another thread as its answer is compiled."""

    def __init__(self, read: FlagState, kill) -> None:
        self._read, self._kill = read, kill

    def __getattr__(self, name: str):
        self._kill()
        return getattr(self._read, name)


@pytest.mark.parametrize("first", ["read", "failed read"])
def test_an_invalidate_after_a_read_answered_and_before_it_was_cached_is_not_undone(first):
    """The read had answered (the flag on, or an outage: fail open) and was being kept when another
    thread's invalidate came: its answer, taken before the kill switch, was cached after it, for a
    whole TTL or retry_seconds, and the flag stayed on for every user after on-call turned it off."""
    store, clock = seeded_store(flag(enabled=True, percentage=100)), Clock()
    flags = evaluator(store, clock, on_unavailable="open")
    other_thread = _KilledWhileKept(store)
    other_thread.flags = flags
    read = store.get

    def answered(feature):
        store.get = read
        if first == "failed read":
            raise FlagStoreUnavailable("read timeout")
        return _Compiled(read(feature), other_thread.kill)

    store.get = answered
    logger = logging.getLogger("rollway.flags")
    logger.addHandler(other_thread)
    try:
        flags.is_enabled(SQS, "user-1")  # its answer is its own
    finally:
        logger.removeHandler(other_thread)
    assert other_thread.done
    clock.t += 0.1
    assert flags.is_enabled(SQS, "user-1") is False, "the evaluation after the invalidation reads the store"


def test_a_slow_read_kept_after_a_later_one_cached_its_answer_does_not_replace_it():
    """The first thread's read had answered (before a rollback's disable) and was being kept when a
    second thread's read, begun later, cached the disable: the first was checked for a newer answer
    before that, and cached its "on" over the "off" for a whole TTL."""
    store, clock = seeded_store(flag(enabled=True, percentage=100)), Clock()
    flags = evaluator(store, clock)
    read = store.get
    overtaken = []

    def second_thread():
        if not overtaken:
            overtaken.append(True)
            set_flag(store, FlagChange(feature=SQS, enabled=False), actor="rollback", now=2.0)
            clock.t += 0.5
            assert flags.is_enabled(SQS, "user-1") is False, "the second thread reads the rollback's disable"

    def answered(feature):
        store.get = read
        return _Compiled(read(feature), second_thread)

    store.get = answered
    flags.is_enabled(SQS, "user-1")  # the first thread
    assert overtaken
    clock.t += 1
    assert flags.is_enabled(SQS, "user-1") is False, "the newer read's off stays cached"


def test_a_flag_read_after_invalidate_is_cached_even_in_the_same_clock_tick():
    """The invalidation holds back only the reads begun before it: one begun after it, at the same
    instant of a coarse (or a test's frozen) clock, is cached as any other."""
    store, clock = seeded_store(flag(enabled=True, percentage=100)), Clock()
    flags = evaluator(store, clock)
    assert flags.is_enabled(SQS) is True
    flags.invalidate(SQS)
    flags.invalidate()
    assert flags.is_enabled(SQS) is True and flags.is_enabled(SQS) is True
    assert store.reads == 2, "the first evaluation's read and the one after the invalidation, cached"


def test_an_unreachable_store_fails_closed_by_default_and_says_so(caplog):
    store, clock = seeded_store(flag(enabled=True, percentage=100)), Clock()
    store.unavailable = "connection refused"
    flags = evaluator(store, clock)
    with caplog.at_level(logging.WARNING, logger="rollway.flags"):
        assert flags.is_enabled(SQS, "user-1") is False
        assert flags.is_enabled(SQS) is False
    assert [r.getMessage() for r in caplog.records] == [
        "feature flag 'use_sqs_architecture' could not be read (connection refused); answering off (fail closed) "
        "for 5 s"
    ]
    store.unavailable = None
    clock.t += 5
    assert flags.is_enabled(SQS, "user-1") is True, "the store is tried again after retry_seconds"


@pytest.mark.parametrize(("retry_seconds", "said"), [(1_234_567, "1234567 s"), (0.25, "0.25 s"), (90, "90 s")])
def test_an_unreachable_store_says_the_retry_seconds_given_as_given(caplog, retry_seconds, said):
    # ``:g`` wrote a retry_seconds of 1234567 as "for 1.23457e+06s": a figure nobody gave.
    store, clock = seeded_store(flag(enabled=True, percentage=100)), Clock()
    store.unavailable = "connection refused"
    flags = FlagEvaluator(store, ttl_seconds=30, retry_seconds=retry_seconds, clock=clock)
    with caplog.at_level(logging.WARNING, logger="rollway.flags"):
        assert flags.is_enabled(SQS, "user-1") is False
    assert [r.getMessage() for r in caplog.records] == [
        f"feature flag 'use_sqs_architecture' could not be read (connection refused); answering off (fail closed) "
        f"for {said}"]


def test_fail_open_and_stale_are_configurable():
    store, clock = seeded_store(flag(enabled=True, percentage=0)), Clock()
    stale = evaluator(store, clock, on_unavailable="stale")
    opened = evaluator(store, clock, on_unavailable="open")
    assert stale.is_enabled(SQS) is True and stale.is_enabled(SQS, "user-1") is False
    store.unavailable = "throttled"
    clock.t += 31
    assert stale.is_enabled(SQS) is True and stale.is_enabled(SQS, "user-1") is False
    assert opened.is_enabled(SQS, "user-1") is True


@pytest.mark.parametrize("on_unknown", ["off", "raise"])
def test_stale_does_not_bring_a_deleted_flag_back_on_in_an_outage(on_unknown):
    """On-call deletes a flag (from the console) that was on for everyone: the evaluator reads it
    as unknown, off. A later outage answered "stale" with the settings from before the deletion,
    on for everyone again; the last value read was that no such flag exists."""
    store, clock = seeded_store(flag(enabled=True, percentage=100)), Clock()
    flags = evaluator(store, clock, on_unavailable="stale", on_unknown=on_unknown)
    assert flags.is_enabled(SQS, "user-1") is True
    del store.flags[SQS]
    clock.t += 31
    if on_unknown == "raise":
        with pytest.raises(UnknownFlag):
            flags.is_enabled(SQS, "user-1")
    else:
        assert flags.is_enabled(SQS, "user-1") is False
    store.unavailable = "throttled"
    clock.t += 31
    assert flags.is_enabled(SQS, "user-1") is False and flags.is_enabled(SQS) is False


def test_an_unknown_flag_is_off_with_a_warning_or_an_error_when_asked(caplog):
    store, clock = seeded_store(), Clock()
    with caplog.at_level(logging.WARNING, logger="rollway.flags"):
        assert evaluator(store, clock).is_enabled("no_such_flag", "user-1") is False
    assert "'no_such_flag' does not exist" in caplog.text
    strict = evaluator(store, clock, on_unknown="raise")
    for _ in range(3):
        with pytest.raises(UnknownFlag, match="no_such_flag"):
            strict.is_enabled("no_such_flag")
    assert store.reads == 2, "an unknown flag is remembered for the TTL too"


def test_the_evaluator_refuses_an_empty_user_id():
    flags = evaluator(seeded_store(flag(enabled=True, percentage=50)), Clock())
    with pytest.raises(MissingUserId):
        flags.is_enabled(SQS, "")


def test_a_name_that_can_never_be_a_flag_is_an_error_not_an_outage():
    """A typo such as a space is the caller's mistake: fail open must not turn it on for everyone."""
    store = seeded_store(flag(enabled=True, percentage=100))
    for on_unavailable in ("closed", "open", "stale"):
        flags = evaluator(store, Clock(), on_unavailable=on_unavailable)
        with pytest.raises(InvalidFlagInput, match="feature flag name 'use sqs architecture'"):
            flags.is_enabled("use sqs architecture", "user-1")
    assert store.reads == 0


@pytest.mark.parametrize("settings", [{"enabled": False}, {"enabled": True, "percentage": 5},
                                      {"enabled": True, "percentage": 100}])
def test_a_user_id_that_is_not_a_string_is_refused_at_every_percentage(settings):
    """Refused while the flag is off too, so the mistake shows before a rollout moves the flag."""
    store = seeded_store(flag(**settings))
    with pytest.raises(InvalidFlagInput, match=r"12345 \(int\) must be a string"):
        evaluator(store, Clock()).is_enabled(SQS, 12345)
    assert store.reads == 0  # refused before the table is read, as bad input is everywhere
    with pytest.raises(InvalidFlagInput, match="must be a string"):
        evaluate(store.get(SQS), 12345)


# --- writes, bindings and rollback on the fake store ----------------------------------


def test_a_reason_or_actor_too_long_for_the_audit_trail_is_refused_before_any_read():
    store = seeded_store(flag())
    with pytest.raises(InvalidFlagInput, match="at most 1000 fit the audit trail"):
        FlagChange(feature=SQS, enabled=True, reason="y" * 1_001)
    with pytest.raises(InvalidFlagInput, match="at most 200"):
        set_flag(store, FlagChange(feature=SQS, enabled=True), actor="a" * 201, now=1.0)
    out, err = io.StringIO(), io.StringIO()
    code = flags_set(store, out, SQS, err=err, actor="ops", enabled=True, reason="y" * 410_000, now=5.0)
    assert code == EXIT_INVALID
    assert "at most 1000" in err.getvalue() and out.getvalue() == ""
    assert (store.reads, store.writes) == (0, 0)


def test_a_rollback_disables_every_bound_flag_it_can_and_names_the_rest():
    store = FlakyFlagStore([flag(SQS, enabled=True, percentage=25), flag(INTERRUPTS, enabled=True, percentage=25)],
                           failing=[SQS])
    bindings = [FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)]
    with pytest.raises(FlagsNotDisabled, match="use_sqs_architecture: PutItem") as raised:
        disable_bindings(store, bindings, actor="judge", reason="error rate 7%", now=9.0)
    assert store.get(INTERRUPTS).enabled is False, "a flag after the failing one is still disabled"
    assert [u.feature for u in raised.value.updates] == [INTERRUPTS]
    assert isinstance(raised.value, FlagStoreUnavailable), "a store error: the disabling task retries it"
    # rollway's own long reasons are cut to fit the trail, never refused in a rollback.
    store.failing.clear()
    disable_bindings(store, bindings, actor="judge", reason="e" * 5_000, now=10.0)
    assert store.get(SQS).enabled is False and len(store.audit(SQS)[0].reason) == 1_000


def test_flags_a_stage_moved_go_back_when_a_later_one_cannot_follow():
    store = FlakyFlagStore([flag(SQS), flag(INTERRUPTS)], failing=[INTERRUPTS])
    with pytest.raises(FlagStoreUnavailable, match=INTERRUPTS):
        apply_bindings(store, [FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)], 5, actor="r", rollout="r1", now=1.0)
    sqs = store.get(SQS)
    assert (sqs.enabled, sqs.percentage) == (False, 0.0), "the flags never split between two stages"
    assert store.audit(SQS)[0].reason.startswith("rollout r1 undone: enable_interrupt_handling could not follow to 5%")
    # Whatever the error: a store that raises something other than a FlagError is undone too.
    put = store.put

    def denied(flag, **kwargs):
        if flag.feature == INTERRUPTS:
            raise RuntimeError("AccessDenied: dynamodb:PutItem")
        return put(flag, **kwargs)

    store.failing.clear()
    store.put = denied
    with pytest.raises(RuntimeError, match="AccessDenied"):
        apply_bindings(store, [FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)], 25, actor="r", rollout="r1", now=2.0)
    assert store.get(SQS).enabled is False


def test_a_bound_flag_deleted_as_the_stage_reads_it_is_named_gone_not_recreated_and_the_stage_goes_back():
    """Deleted by hand between the stage's check of every flag and its write of that one: the
    rollout's stage (``exclusive``) says the flag is gone, creates nothing, and puts back the flag it
    had moved."""
    store = FakeFlagStore([flag(SQS), flag(INTERRUPTS)])
    get = store.get

    def deleted_after_the_check(feature):
        if feature == INTERRUPTS and store.flags[SQS].enabled:  # SQS moved: the stage is writing
            store.flags.pop(INTERRUPTS, None)
        return get(feature)

    store.get = deleted_after_the_check
    with pytest.raises(UnknownFlag) as raised:
        apply_bindings(store, [FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)], 25, actor="r", rollout="r1",
                       now=1.0, exclusive=True)
    assert f"bound feature flag {INTERRUPTS!r} is gone from the flags table" in str(raised.value), raised.value
    assert "this rollout's 25% stage does not recreate it" in str(raised.value), raised.value
    assert INTERRUPTS not in store.flags and store.get(SQS).enabled is False


def test_a_bound_flag_gone_after_the_stage_moved_another_does_not_say_the_stage_wrote_nothing():
    """The stage moved SQS, then found INTERRUPTS deleted; on-call changed SQS before its put-back,
    which left it as they set it. The error said the stage "wrote nothing", then that "the flags
    this stage moved were not all put back": of the flag gone, it wrote nothing; of the stage, it
    had written SQS, and it stays."""
    store = FakeFlagStore([flag(SQS), flag(INTERRUPTS)])
    get = store.get

    def deleted_after_the_check(feature):
        if feature == INTERRUPTS and store.flags[SQS].enabled:  # SQS moved: the stage is writing
            store.flags.pop(INTERRUPTS, None)
            moved = store.flags[SQS]
            store.put(moved.model_copy(update={"percentage": 10.0}), expected_version=moved.version, actor="oncall",
                      now=2.0, reason="hold at 10")
        return get(feature)

    store.get = deleted_after_the_check
    with pytest.raises(UnknownFlag) as raised:
        apply_bindings(store, [FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)], 25, actor="r", rollout="r1",
                       now=1.0, exclusive=True)
    said = str(raised.value)
    assert "the flags this stage moved were not all put back" in said and store.get(SQS).percentage == 10.0, said
    assert "this rollout's 25% stage does not recreate it and wrote nothing to it," in said, said


def test_a_stage_whose_second_flag_loses_every_race_says_that_flag_was_not_written_not_that_nothing_was():
    """The stage moved SQS (then put it back), and another writer landed between each of its reads
    of INTERRUPTS and its write: "nothing was written" read as the stage having touched no flag."""
    store = FakeFlagStore([flag(SQS), flag(INTERRUPTS)])
    put = store.put

    def hammered(flag_state, **kwargs):
        if flag_state.feature == INTERRUPTS and kwargs.get("actor") == "r":
            current = store.flags[INTERRUPTS]
            put(current.model_copy(update={"salt": f"s{current.version}"}), expected_version=current.version,
                actor="script", now=1.0)
        return put(flag_state, **kwargs)

    store.put = hammered
    with pytest.raises(FlagConflict) as lost:
        apply_bindings(store, [FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)], 25, actor="r",
                       rollout="r1", now=1.0, exclusive=True)
    said = str(lost.value)
    assert "between each of this 25% stage's 3 reads of the flag and its write: it was not written;" in said, said
    assert "nothing was written" not in said, said


def test_a_put_back_leaves_a_flag_a_person_changed_after_the_stage_set_it():
    """The stage moved SQS, then a person changed it (on-call, mid-incident) before the next
    flag's failure sent the stage's flags back: the put-back must not overwrite the person."""
    store = FlakyFlagStore([flag(SQS), flag(INTERRUPTS)], failing=[INTERRUPTS])
    put = store.put

    def person_first(flag_state, **kwargs):
        if flag_state.feature == INTERRUPTS:
            set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=50, reason="on-call: open to half"),
                     actor="oncall", now=1.5)
        return put(flag_state, **kwargs)

    store.put = person_first
    with pytest.raises(FlagStoreUnavailable) as raised:
        apply_bindings(store, [FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)], 5, actor="r", rollout="r1",
                       now=1.0)
    sqs = store.get(SQS)
    assert (sqs.enabled, sqs.percentage, sqs.updated_by) == (True, 50.0, "oncall")
    # Named, as the flag's item records them: "someone else" sent people to the audit trail to find out who.
    assert f"feature flag {SQS!r} was changed by oncall after this stage set it to on 5%: left as they set it" \
        in str(raised.value), raised.value


def test_versioned_writes_conflict_and_keep_an_audit_trail():
    store = seeded_store()
    set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=5, reason="week 1"), actor="alice", now=10.0)
    with pytest.raises(FlagConflict, match="expected version 1, found version 2"):
        store.put(flag(enabled=False), expected_version=1, actor="bob", now=11.0)
    with pytest.raises(FlagConflict):
        set_flag(store, FlagChange(feature=SQS, enabled=False), actor="bob", now=11.0, expected_version=1)
    latest = store.audit(SQS, limit=1)[0]
    assert (latest.version, latest.actor, latest.reason, latest.previous_percentage, latest.percentage) == (
        2, "alice", "week 1", 0.0, 5.0
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"feature": SQS, "percentage": 150}, InvalidPercentage),
        ({"feature": SQS, "percentage": -1}, InvalidPercentage),
        ({"feature": "no_such_flag", "enabled": True}, UnknownFlag),
        ({"feature": SQS, "enabled": True, "actor": ""}, MissingUserId),
        ({"feature": SQS, "salt": "a:b"}, InvalidFlagInput),
    ],
)
def test_bad_input_writes_nothing(kwargs, error):
    store = seeded_store()
    settings = dict(kwargs)
    actor = settings.pop("actor", "ops")
    with pytest.raises(error):
        set_flag(store, FlagChange(**settings), actor=actor, now=5.0)
    assert store.writes == 0
    assert store.get(SQS).version == 1


def test_bound_flags_follow_the_stages_and_are_disabled_on_rollback():
    store = seeded_store()
    bindings = [
        FlagBinding(feature=SQS),
        FlagBinding(feature=INTERRUPTS, follow="schedule", schedule={25: 10.0, 75: 50.0}),
    ]
    seen = {}
    for weight in (5, 25, 50, 75):
        changes = apply_bindings(store, bindings, weight, actor="rollout-1", rollout="r1", now=float(weight))
        seen[weight] = {c.feature: (c.after.enabled, c.after.percentage) for c in changes}
    assert seen == {
        5: {SQS: (True, 5.0)},  # the schedule's 0% keeps the (off) flag off: nothing to write
        25: {SQS: (True, 25.0), INTERRUPTS: (True, 10.0)},
        50: {SQS: (True, 50.0)},  # the schedule holds 10% until 75
        75: {SQS: (True, 75.0), INTERRUPTS: (True, 50.0)},
    }
    assert apply_bindings(store, bindings, 75, actor="rollout-1", rollout="r1", now=80.0) == [], "re-applying a stage changes nothing"
    rolled_back = disable_bindings(store, bindings, actor="judge", reason="error rate 7%", now=90.0)
    assert {(c.feature, c.after.enabled, c.after.percentage) for c in rolled_back} == {
        (SQS, False, 75.0), (INTERRUPTS, False, 50.0)
    }
    assert disable_bindings(store, bindings, actor="judge", reason="again", now=91.0) == []
    assert not store.get(RESUMPTION).enabled, "unbound flags are left alone"
    assert store.audit(SQS, limit=1)[0].reason == "rollway rollback: error rate 7%"
    transition = flag_transition(rolled_back[0], at=90.0, actor="judge")
    assert transition.kind == "flag" and "on 75% -> off 75%" in transition.comment


def test_an_unknown_bound_flag_stops_the_stage_before_any_write():
    store = seeded_store()
    bindings = [FlagBinding(feature=SQS), FlagBinding(feature="typo_flag")]
    with pytest.raises(UnknownFlag, match="typo_flag"):
        apply_bindings(store, bindings, 5, actor="rollout-1", rollout="r1", now=1.0)
    assert store.writes == 0
    created = apply_bindings(store, bindings, 5, actor="rollout-1", rollout="r1", now=1.0, create_missing=True)
    assert {c.feature for c in created} == {SQS, "typo_flag"}
    store.flags.pop("typo_flag")
    assert [c.feature for c in disable_bindings(store, bindings, actor="ops", reason="r", now=2.0)] == [SQS]


# --- commands ---------------------------------------------------------------------------


def run(command, *args, **kwargs) -> tuple[int, str, str]:
    """The exit code, standard output and standard error of a flags command."""
    out, err = io.StringIO(), io.StringIO()
    code = command(*args[:1], out, *args[1:], err=err, **kwargs)
    return code, out.getvalue(), err.getvalue()


def test_list_get_set_and_eval_commands():
    store = seeded_store()
    code, text, err = run(flags_set, store, SQS, enabled=True, percentage=25, actor="alice", reason="week 2",
                          now=1.7e9)
    assert (code, text, err) == (EXIT_OK, "use_sqs_architecture: off 0% -> on 25% (v2)\n", "")
    code, text, err = run(flags_list, store)
    assert code == EXIT_OK and err == ""
    assert text.splitlines()[1].split()[:4] == ["enable_interrupt_handling", "off", "0", "1"]
    assert "use_sqs_architecture       on          25        2  2023-11-14T22:13:20Z by alice" in text
    code, text, err = run(flags_get, store, SQS)
    assert code == EXIT_OK and "alice: off 0% -> on 25%  (week 2)" in text and err == ""
    on_user = next(u for u in USERS if evaluate(store.get(SQS), u))
    code, text, err = run(flags_eval, store, SQS, [on_user, None])
    assert code == EXIT_OK and err == ""
    assert f"  {on_user}  bucket {bucket('v1', SQS, on_user):>4}  on\n" in text
    assert "(no user)  on" in text and "threshold 2500 of 10000" in text


def test_setting_an_enabled_flag_to_0_percent_says_it_stays_on_without_a_user():
    """On-call dialled a flag to 0 % as its kill switch and read "on 0%" as off: every evaluation with
    a user is off, but one without a user id follows `enabled`, and kept answering on."""
    store = seeded_store(flag(enabled=True, percentage=25))

    code, text, err = run(flags_set, store, SQS, percentage=0, actor="oncall", now=1.7e9)

    assert code == EXIT_OK and err == "", err
    assert text == (f"{SQS}: on 25% -> on 0% (v2)\nnote: {SQS} is on at 0%: off for every user id, but on where it "
                    f"is evaluated without one; `rollway flags set {SQS} --no-enabled` turns it off there too\n"), text
    assert evaluate(store.get(SQS), None) and not evaluate(store.get(SQS), "user-1")
    # Off, or on for some users, it needs no such note.
    assert "note:" not in run(flags_set, store, SQS, enabled=False, actor="oncall", now=1.7e9)[1]


def test_flags_get_says_which_rollout_holds_the_flag_and_what_frees_it():
    """A rollout binding the flag was refused as held, and sent to `rollway flags get` to see who moved
    it: the trail showed the changes, not which rollout the refusal meant nor what frees the flag."""
    store = seeded_store()
    apply_bindings(store, [FlagBinding(feature=SQS)], 5, actor="bob", now=1.7e9, rollout="billing-r7")
    run(flags_set, store, SQS, enabled=False, actor="oncall", now=1.7e9 + 1)  # a kill switch keeps the hold

    code, text, err = run(flags_get, store, SQS, audit=1)

    assert (code, err) == (EXIT_OK, "")
    assert text.splitlines()[2] == (
        f"  held by rollout billing-r7 (its stage 5%, set by bob at 2023-11-14T22:13:20Z): a rollout binding it is "
        "refused until that one is promoted or rolled back (`rollway abort --targets-block <its service's block>` while "
        "it is open), or, once its run ended without a rollback, its hold freed (`rollway flags release "
        f"{SQS} --rollout billing-r7 --reason '<why>'`)"), text
    code, text, err = run(flags_get, store, SQS, as_json=True, audit=0)
    assert json.loads(text)["held_by"]["rollout"] == "billing-r7"

    assert run(flags_release, store, SQS, rollout="billing-r7", actor="oncall", reason="killed", now=1.7e9 + 2)[0] == 0
    assert "held by" not in run(flags_get, store, SQS)[1]
    assert json.loads(run(flags_get, store, SQS, as_json=True)[1])["held_by"] is None


def test_flags_get_and_list_show_each_change_on_one_line_whatever_its_text_holds():
    """A reason typed over two lines in the set-flags form (or an actor with a line break) was printed
    as it was: its second line read as another change in the trail, by whoever it named."""
    store = seeded_store()
    forged = "rollback drill\n  v9  2023-11-14T22:13:20Z  carol: on 100% -> off 0%  (kill switch)"
    assert run(flags_set, store, SQS, enabled=True, percentage=25, actor="alice", reason=forged, now=1.7e9)[0] == EXIT_OK
    # A name an older rollway stored as typed (`--actor` refuses one now): written to the store directly.
    set_flag(store, FlagChange(feature=SQS, percentage=30), actor="bob\r\x1b[2K", now=1.7e9 + 1)

    code, text, err = run(flags_get, store, SQS)
    assert (code, err) == (EXIT_OK, "")
    assert len(text.splitlines()) == 2 + 3, text  # the heading, the flag, and its three changes
    assert "alice: off 0% -> on 25%  (rollback drill\\n  v9  2023-11-14T22:13:20Z  carol: " in text, text
    assert "bob\\r\\x1b[2K: on 25% -> on 30%" in text, text
    code, text, err = run(flags_list, store)
    assert code == EXIT_OK and len(text.splitlines()) == 1 + len(store.list()) and "by bob\\r\\x1b[2K" in text, text
    # The data keeps the text as written.
    code, text, err = run(flags_get, store, SQS, as_json=True)
    assert json.loads(text)["audit"][1]["reason"] == forged


@pytest.mark.parametrize("name", ["bob\r\x1b[2K", "bob\nerror: nothing was changed", "bob\tops", "bob\u2028ops"])
def test_flags_set_and_release_refuse_an_actor_with_a_control_character_before_any_read(name):
    """`--actor` went as typed into the flag's audit trail, where a line break read as another change
    by whoever it named and an escape sequence acted on the terminal of whoever read it: refused, as
    `rollway finalize --actor` and every flow's actor are, before the table is read."""
    store = seeded_store()
    code, text, err = run(flags_set, store, SQS, enabled=True, actor=name, now=1.7e9)
    assert (code, text) == (EXIT_INVALID, ""), (code, text, err)
    assert "--actor" in err and "one line" in err and len(err.splitlines()) == 1, err
    assert "\x1b" not in err and "\r" not in err, err
    code, text, err = run(flags_release, store, SQS, rollout="billing-r7", actor=name, reason="killed", now=1.7e9)
    assert (code, text) == (EXIT_INVALID, ""), (code, text, err)
    assert "--actor" in err and "one line" in err and len(err.splitlines()) == 1, err
    assert (store.reads, store.writes) == (0, 0)


def test_flags_eval_shows_each_user_on_one_line_whatever_the_id_holds():
    """A user id pasted from a log with a line break or a terminal escape was printed as it was: its
    second line read as another user's answer ("on"), and an escape sequence acted on the terminal."""
    store = seeded_store(flag(enabled=True, percentage=100))
    forged = "mallory\n  alice  bucket    1  on"

    code, text, err = run(flags_eval, store, SQS, [forged, "bob\r\x1b[2K"])

    assert (code, err) == (EXIT_OK, "")
    assert len(text.splitlines()) == 1 + 2, text  # the flag's line, then one line per user id
    assert "  mallory\\n  alice  bucket    1  on  bucket " in text, text
    assert "  bob\\r\\x1b[2K  bucket " in text, text
    # The data keeps the id as given.
    assert json.loads(run(flags_eval, store, SQS, [forged], as_json=True)[1])["results"][0]["user"] == forged


def test_eval_json_says_a_killed_flag_is_disabled():
    """A flag turned off at 25 % (the kill switch): its JSON gave the threshold (2500) and a user's
    bucket under it, "on": false, and nothing that says why; the table's line says "disabled"."""
    store = seeded_store(flag(enabled=False, percentage=25))
    user = next(u for u in USERS if bucket("v1", SQS, u) < 2500)
    code, text, err = run(flags_eval, store, SQS, [user], as_json=True)
    assert (code, err) == (EXIT_OK, "")
    answer = json.loads(text)
    assert (answer["enabled"], answer["percentage"], answer["threshold"]) == (False, 25.0, 2500)
    assert answer["results"] == [{"user": user, "bucket": bucket("v1", SQS, user), "on": False}]


@pytest.mark.parametrize(
    ("command", "args", "kwargs", "message"),
    [
        (flags_set, (SQS,), {"percentage": 100.5, "actor": "ops"},
         "--percentage 100.5 is not a share of users: it must be from 0 to 100"),
        # Quoted as typed: ":g" said "--percentage 100 is not a share of users", which it is.
        (flags_set, (SQS,), {"percentage": 100.0001, "actor": "ops"},
         "--percentage 100.0001 is not a share of users: it must be from 0 to 100"),
        (flags_set, ("no_such_flag",), {"enabled": True, "actor": "ops"},
         "unknown feature flag 'no_such_flag': add --create to create it"),
        (flags_set, (SQS,), {"enabled": True, "actor": " "}, "needs the id of who makes it"),
        (flags_eval, (SQS, [""]), {}, "user id '' is empty"),
        # A read was told "create it first (nothing was written)": how to, and no write it never tried.
        (flags_get, ("no_such_flag",), {}, "unknown feature flag 'no_such_flag': `rollway flags list` lists the "
                                           "flags there are; `rollway flags set no_such_flag --create` creates it"),
        (flags_eval, ("no_such_flag", ["user-1"]), {}, "`rollway flags set no_such_flag --create` creates it"),
    ],
)
def test_commands_report_bad_input_on_stderr_and_write_nothing(command, args, kwargs, message):
    store = seeded_store()
    code, text, err = run(command, store, *args, **kwargs)
    assert code == EXIT_INVALID
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert text == "", "an error is not data: nothing on standard output"
    assert store.writes == 0


@pytest.mark.parametrize(
    ("command", "args", "kwargs", "message"),
    [
        (flags_eval, (SQS, ["user-1", ""]), {}, "user id '' is empty"),
        (flags_eval, ("bad name", ["user-1"]), {}, "feature flag name 'bad name'"),
        (flags_set, (SQS,), {"enabled": True, "actor": "ops", "expected_version": -1}, "expected version -1"),
        (flags_set, (SQS,), {"enabled": True, "actor": ""}, "needs the id of who makes it"),
        (flags_get, (SQS,), {"audit": -3}, "--audit -3 is negative"),
    ],
    ids=["eval empty user", "eval bad name", "set negative version", "set empty actor", "get negative audit"],
)
def test_commands_refuse_bad_input_before_reading_the_table(command, args, kwargs, message):
    """Input is checked before the table is read: an empty user id once surfaced only after the
    read (as an outage when the table was unreachable), and a negative expected version as a
    concurrent change (exit 3)."""
    store = seeded_store()
    store.unavailable = "the table must not be read"
    code, text, err = run(command, store, *args, **kwargs)
    assert (code, text) == (EXIT_INVALID, "")
    assert err.startswith("error: ") and message in err
    assert (store.reads, store.writes) == (0, 0)


@pytest.mark.parametrize("percentage", [0.004, 12.345, 99.999])
def test_set_refuses_a_percentage_finer_than_a_basis_point_before_reading_the_table(percentage):
    """`flags set --percentage 0.004` was stored as 0 %, off for every user, and reported as done."""
    store = seeded_store()
    store.unavailable = "the table must not be read"
    code, text, err = run(flags_set, store, SQS, percentage=percentage, actor="ops")
    assert (code, text) == (EXIT_INVALID, "") and "the finest step is 0.01 %" in err, err
    assert (store.reads, store.writes) == (0, 0)


@pytest.mark.parametrize("percentage", [0.01, 33.33, 50.5, 100])
def test_set_takes_a_percentage_a_flag_holds_exactly(percentage):
    code, text, err = run(flags_set, seeded_store(), SQS, percentage=percentage, actor="ops")
    assert code == EXIT_OK and f"-> off {percentage:g}%" in text, (text, err)


def test_eval_of_an_empty_user_id_says_what_to_type_not_what_to_pass_in_python():
    # "pass None" means nothing to a person at a shell: the way to evaluate without a user is to
    # give no user id.
    code, _, err = run(flags_eval, seeded_store(), SQS, [""])
    assert code == EXIT_INVALID and "None" not in err and "give no user id" in err, err


def test_commands_report_conflicts_and_outages_with_their_own_codes():
    store = seeded_store()
    code, text, err = run(flags_set, store, SQS, enabled=True, actor="ops", expected_version=7)
    assert code == EXIT_CONFLICT and "is at version 1, not at --expected-version 7" in err and text == ""
    store.unavailable = "table webordinary-feature-flags is gone"
    code, text, err = run(flags_list, store, as_json=True)
    assert (code, text, err) == (EXIT_UNAVAILABLE, "", "error: table webordinary-feature-flags is gone\n")


def _bob_writes_before_each_put():
    """A store of the flag at 25 % where bob's write (one point more) lands before each of its puts."""
    store = seeded_store(flag(enabled=True, percentage=25))
    put = store.put

    def bob_first(flag_state, **kwargs):
        current = store.flags[SQS]
        put(current.model_copy(update={"percentage": current.percentage + 1}), expected_version=current.version,
            actor="bob", now=1.0)
        return put(flag_state, **kwargs)

    store.put = bob_first
    return store


def test_a_change_that_loses_every_race_says_it_read_again_each_time_and_wrote_nothing():
    """Another writer lands between each of set_flag's reads and its write (a script hammering the
    flag). Its three tries used up, the change (the set-flags flow's, a rollout stage's) said "read it
    again and retry", as if it had not, and not that nothing was written."""
    store = _bob_writes_before_each_put()
    with pytest.raises(FlagConflict) as lost:
        set_flag(store, FlagChange(feature=SQS, enabled=False, reason="kill"), actor="ann", now=2.0)
    said = str(lost.value)
    assert said.startswith(f"feature flag {SQS!r} changed concurrently: expected version 3, found version 4"), said
    assert "read it again and retry" not in said, said
    assert ("another write landed between each of this change's 3 reads of the flag and its write: it was not "
            f"written; `rollway flags get {SQS}` shows the flag as it is now") in said, said
    assert store.get(SQS).enabled is True
    # Who kept changing it, as `rollway flags set` says it: the flow's log named nobody.
    assert "found version 4: its newest change is v4, by bob at 1970-01-01T00:00:01Z: on 27% -> on 28%" in said, said


def test_a_stage_that_loses_every_race_names_who_kept_changing_the_flag():
    """A rollout's stage whose flag someone kept changing: the stage's failure said that the flag
    changed on each of its reads, and not who changed it (`rollway flags set` names them)."""
    store = _bob_writes_before_each_put()
    with pytest.raises(FlagConflict) as lost:
        apply_bindings(store, [FlagBinding(feature=SQS)], 50, actor="ann", now=2.0, rollout="billing-r7")
    said = str(lost.value)
    assert "this 50% stage's 3 reads of the flag" in said, said
    assert ": its newest change is v4, by bob at 1970-01-01T00:00:01Z: on 27% -> on 28%" in said, said


def test_a_set_that_loses_the_race_after_its_read_names_the_change_that_came_first():
    """Bob's change landed between the read `flags set --expected-version 1` made and its write. The
    loser was told "changed concurrently ... read it again and retry": neither who changed it, nor to
    what, nor how to read it (the runbook's next step was to ask around)."""
    store = seeded_store(flag(enabled=True, percentage=25))
    put = store.put

    def bob_first(flag_state, **kwargs):
        store.put = put
        set_flag(store, FlagChange(feature=SQS, percentage=50, reason="more users"), actor="bob", now=1.7e9)
        return put(flag_state, **kwargs)

    store.put = bob_first
    code, text, err = run(flags_set, store, SQS, enabled=False, actor="ann", expected_version=1, now=1.7e9 + 5)
    assert code == EXIT_CONFLICT and text == "", (code, text, err)
    assert err.startswith(f"error: feature flag {SQS!r} changed concurrently: expected version 1, found version 2")
    assert (f"found version 2: its newest change is v2, by bob at 2023-11-14T22:13:20Z: on 25% -> on 50% (more "
            f"users); nothing was written: `rollway flags get {SQS}` shows the flag as it is now") in err, err
    assert err.count("\n") == 1 and store.get(SQS).enabled is True


def _throttle_sqs_once_interrupts_is_written(store: FlakyFlagStore):
    """From the first write of INTERRUPTS on (which fails, throttled, when it is in ``store.failing``),
    SQS's writes fail too: a stage's put-back of SQS fails. Returns the store's own ``put``."""
    put = store.put

    def sqs_fails_once_interrupts_did(flag_state, **kwargs):
        if flag_state.feature == INTERRUPTS:
            store.failing.add(SQS)
        return put(flag_state, **kwargs)

    store.put = sqs_fails_once_interrupts_did
    return put


def test_the_error_people_read_names_the_flags_a_failed_stage_could_not_put_back():
    """The stage moved SQS, INTERRUPTS could not follow, and putting SQS back failed too: that was
    only a note on the error, shown by a traceback but not by its message, which is what the run's
    failure, the rollback's page and the ledger carry. People read that flags were put back."""
    store = FlakyFlagStore([flag(SQS), flag(INTERRUPTS)], failing=[INTERRUPTS])
    _throttle_sqs_once_interrupts_is_written(store)
    with pytest.raises(FlagStoreUnavailable) as raised:
        apply_bindings(store, [FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)], 5, actor="r", rollout="r1",
                       now=1.0)
    said = str(raised.value)
    assert said.startswith(f"PutItem on {INTERRUPTS}: ProvisionedThroughputExceededException"), said
    assert f"feature flag {SQS!r} was left at on 5%: PutItem on {SQS}" in said, said
    assert (store.get(SQS).enabled, store.get(SQS).percentage) == (True, 5.0)


def _stage_whose_put_back_failed() -> tuple[FlakyFlagStore, list[FlagBinding]]:
    """A 25 % stage's first try: SQS moved 5 -> 25 %, INTERRUPTS throttled, and SQS's put-back
    throttled too, so SQS is left at the stage's 25 %."""
    store = FlakyFlagStore([flag(SQS, enabled=True, percentage=5), flag(INTERRUPTS, enabled=True, percentage=5)],
                           failing=[INTERRUPTS])
    put = _throttle_sqs_once_interrupts_is_written(store)
    bindings = [FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)]
    with pytest.raises(FlagStoreUnavailable):
        apply_bindings(store, bindings, 25, actor="r", rollout="r1", now=7.0)
    assert (store.get(SQS).enabled, store.get(SQS).percentage) == (True, 25.0)
    store.put = put
    return store, bindings


def test_a_retried_stage_puts_back_a_flag_its_first_try_moved_and_could_not_put_back():
    """The task tries the stage again (same actor, same instant). The retry found SQS already at
    25 %, written by this rollout, and took it for unmoved: when INTERRUPTS failed again, SQS was not
    put back, and stayed at 25 % with the traffic back at 5 %, the error saying nothing of it."""
    store, bindings = _stage_whose_put_back_failed()
    store.failing = {INTERRUPTS}  # SQS writes again; INTERRUPTS is still throttled
    with pytest.raises(FlagStoreUnavailable) as raised:
        apply_bindings(store, bindings, 25, actor="r", rollout="r1", now=7.0)
    assert (store.get(SQS).enabled, store.get(SQS).percentage) == (True, 5.0), str(raised.value)
    assert store.audit(SQS)[0].reason.startswith("rollout r1 undone: enable_interrupt_handling could not follow")


def test_a_retried_stage_that_succeeds_reports_the_move_its_first_try_made():
    """Found at 25 % by the retry, SQS's move was left out of the stage's updates, and so of the
    ledger's record of the shift."""
    store, bindings = _stage_whose_put_back_failed()
    store.failing = set()
    updates = apply_bindings(store, bindings, 25, actor="r", rollout="r1", now=7.0)
    assert [u.describe() for u in updates] == [f"{SQS}: on 5% -> on 25% (v1)", f"{INTERRUPTS}: on 5% -> on 25% (v1)"]
    # Applied again later (a resume: another instant), the stage moves nothing.
    assert apply_bindings(store, bindings, 25, actor="r", rollout="r1", now=9.0) == []


@pytest.mark.parametrize("argv", [["flags", "set", "--enabled", "--actor", "gina"], ["flags", "get", "--json"],
                                  ["flags", "eval", "--json"]], ids=["set", "get", "eval"])
def test_flags_command_without_its_feature_names_the_positional_argument(monkeypatch, capsys, argv):
    """`rollway flags set --enabled` said "parameter --feature requires an argument" (and `get`, `eval`
    the same): no such option is documented; the flag is the command's first (positional) argument."""
    from rollway.cli import app

    monkeypatch.setattr("rollway.cli.ops.load_account", lambda *blocks: pytest.fail("the account was loaded"))
    with pytest.raises(SystemExit) as stop:
        app(argv)
    said = capsys.readouterr()
    assert stop.value.code != 0 and said.out == ""
    assert "FEATURE requires an argument" in said.err and "--feature" not in said.err, said.err


@pytest.mark.parametrize("at,said", [
    ("put", "interrupted while the change to use_sqs_architecture was being written: it may have been written; "
            "check with `rollway flags get use_sqs_architecture` before setting it again"),
    ("get", "interrupted before the change to use_sqs_architecture was sent: nothing was written"),
])
def test_flags_set_interrupted_says_whether_the_change_may_have_been_written(at, said):
    """Ctrl-C during a write the table was slow to answer (throttled, botocore retrying) ended in a
    traceback from botocore's insides: nothing said whether the flag had been set."""
    store = seeded_store()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    setattr(store, at, interrupted)
    code, text, err = run(flags_set, store, SQS, enabled=True, percentage=25, actor="alice", now=1.7e9)
    assert (code, text) == (130, ""), (code, text)
    assert err == f"error: {said}\n", err


def test_flags_release_interrupted_says_whether_the_release_may_have_been_written():
    store = seeded_store()
    apply_bindings(store, [FlagBinding(feature=SQS)], 5, actor="bob", now=1.7e9, rollout="billing-r7")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    store.put = interrupted
    code, text, err = run(flags_release, store, SQS, rollout="billing-r7", actor="oncall", reason="killed", now=1.8e9)
    assert (code, text) == (130, ""), (code, text)
    assert err == ("error: interrupted while the change to use_sqs_architecture was being written: it may have been "
                   "written; check with `rollway flags get use_sqs_architecture` before freeing it again\n"), err


def test_flags_release_shows_who_moved_the_flag_on_one_line_whatever_the_name_holds():
    """The rollout's actor (a run form's text area) was printed as it was in what `flags release`
    said of the hold it freed, or refused to free: its second line read as a line of the command's
    own, and an escape sequence acted on the terminal. `flags get` escapes it."""
    store = seeded_store()
    apply_bindings(store, [FlagBinding(feature=SQS)], 5, actor="bob\nerror: nothing was freed\x1b[2K", now=1.7e9,
                   rollout="billing-r7")

    code, text, err = run(flags_release, store, SQS, rollout="other-r1", actor="oncall", reason="killed", now=1.8e9)
    assert (code, text) == (EXIT_CONFLICT, ""), (code, text, err)
    assert len(err.splitlines()) == 1 and "set by bob\\nerror: nothing was freed\\x1b[2K at " in err, err

    code, text, err = run(flags_release, store, SQS, rollout="billing-r7", actor="oncall", reason="killed", now=1.8e9)
    assert (code, err) == (EXIT_OK, ""), (code, err)
    assert len(text.splitlines()) == 2, text  # what was freed, and the note of what follows
    assert "set by bob\\nerror: nothing was freed\\x1b[2K at " in text.splitlines()[0], text


def test_a_release_that_loses_every_race_names_the_change_that_came_first_and_what_to_do():
    """Rollout billing-r7 kept moving the flag while oncall freed its hold: after the last try the
    release said only "changed concurrently ... read it again and retry", naming neither who kept
    changing the flag nor that the command is simply run again once they stop."""
    store = seeded_store()
    apply_bindings(store, [FlagBinding(feature=SQS)], 5, actor="bob", now=1.7e9, rollout="billing-r7")
    put, weights = store.put, iter([10, 25, 50, 75])

    def billing_first(flag_state, **kwargs):
        if kwargs.get("writer") == "rollback":  # the release's write: billing's next stage lands first
            store.put = put
            apply_bindings(store, [FlagBinding(feature=SQS)], next(weights), actor="bob", now=1.7e9,
                           rollout="billing-r7")
            store.put = billing_first
        return put(flag_state, **kwargs)

    store.put = billing_first
    code, text, err = run(flags_release, store, SQS, rollout="billing-r7", actor="oncall", reason="killed", now=1.8e9)
    assert (code, text) == (EXIT_CONFLICT, ""), (code, text, err)
    assert err.startswith(f"error: feature flag {SQS!r} changed concurrently: expected version 4, found version 5: "
                          "its newest change is v5, by bob at 2023-11-14T22:13:20Z: on 25% -> on 50%"), err
    assert err.endswith(f"nothing was written: it changed on each of 3 tries to free rollout billing-r7's hold; "
                        f"`rollway flags get {SQS}` shows who is changing it: once they stop, run `rollway flags "
                        "release` again\n"), err
    assert err.count("\n") == 1


def test_the_set_flags_summary_keeps_each_change_on_one_row_of_four_cells():
    """A change's result quotes text read from the table (what was unusable in a malformed item,
    written outside rollway): its cell escaped only "|" and line feeds, so a carriage return
    ended the row, a backslash before a "|" unescaped it (the row split at it), and an escape
    sequence reached the Prefect UI as it was."""
    from rollway.flag_binding import FlagUpdate
    from rollway.flags_commands import changes_markdown

    change = FlagChange(feature=SQS, enabled=True)
    update = FlagUpdate(feature=SQS, before=None, after=flag(enabled=True, version=1),
                        malformed="updated_by 'ops\\|bob'\r| 2 | evil | x | written |\x1b[2J")
    text = changes_markdown([change], [update], actor="alice")

    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 2, text  # the header and the one change
    row = rows[1]
    assert row.startswith("| 1 | use_sqs_architecture | enabled True | "), row
    assert "\r" not in row and "\x1b" not in row and "\\x1b[2J" in row, row
    # Every "|" in the result's text is escaped (an odd number of backslashes before it): the row has four cells.
    cells = re.split(r"(?<!\\)(?:\\\\)*\|", row)
    assert len(cells) == 6, cells  # before the first bar, four cells, after the last bar


def test_the_set_flags_summary_keeps_the_actor_and_the_failure_on_their_own_line():
    """The actor (a flow parameter, as typed) and the failure's text (a store's message, which may
    quote what it was given) went into the summary's markdown as they were: a line break in either
    began a line of its own (a heading, a row of the table), and an escape sequence reached the
    Prefect UI as it was."""
    from rollway.flags import FlagStoreUnavailable
    from rollway.flags_commands import changes_markdown

    change = FlagChange(feature="use_sqs_architecture", enabled=True)
    text = changes_markdown([change], [], actor="alice\n# admin approved",
                            failure=FlagStoreUnavailable("throttled\n\n| 1 | evil | x | written |\x1b[2J"))

    lines = text.splitlines()
    assert lines[0] == "# Flag changes by alice # admin approved", text
    assert "\x1b" not in text and "\\x1b[2J" in text, text
    assert [line for line in lines if line.startswith("| 1 ")] == [
        "| 1 | use_sqs_architecture | enabled True | **not written** |"], text
    assert not any(line.startswith("# admin") for line in lines), text
