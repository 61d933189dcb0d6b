"""A run that resumes a rollout long after its stage passed judges the canary at the share of the
alpha of the next window looked at, not of the time since the pass.

The windows a passed stage's looks judge are each a test of their own, each at a smaller share of
the alpha. Counted by the time since the pass, a run resuming the rollout a day after the run that
passed it died judged its first window at the share of the 287th or a later one (an alpha of 1e-9): the windows
nobody looked at in that day had spent their shares, and a canary that went bad meanwhile, five
times the baseline's error rate (under the 1 % guardrail), was never rolled back by the looks.
"""

from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError

from rollway.approvals import ApprovalAnswer
from rollway.fakes import steady
from rollway.spec import Approvals, RolloutSpec, Stage
from tests.flows.test_progressive_fakes import IMAGE, Killed, env_with_ledger, progressive_on

DAY = 86_400.0
SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600),
                                        Stage(weight=25, bake_seconds=600, approval=True),
                                        Stage(weight=100, bake_seconds=600)], monitor_seconds=0,
                   # A pause nobody answers in time is asked again: the resumed run asks it anew, and looks.
                   approvals=Approvals(on_timeout="hold"))
POLL = 2.0
# 600 canary requests a minute at 5 %, 3 of them errors, against the baseline's 0.1 %.
FAILING = steady(200.0, 0.001, 0.005)


def person_away(env, asked_at: list[float], ended: list[float]):
    """A person who answers after an hour, the approver polling the watch as the Prefect pause does;
    when the pause was asked goes in ``asked_at``, when a look ended it in ``ended``."""

    def away(pause, summary, watch=None):
        asked_at.append(env.clock.now())
        while env.clock.now() < asked_at[0] + 3600:
            if watch is not None and watch() is not None:
                ended.append(env.clock.now())
                return None
            env.clock.sleep(POLL)
        return ApprovalAnswer(action="reject", approver="bob", comment="back from lunch")
    return away


def rejects_at_the_first_look(env, first: list):
    """An approver that waits for the pause's first look (the ledger's count of windows changes),
    puts the count it wrote in ``first``, and rejects."""
    service = env.targets.canary_service

    def at_the_first_look(pause, summary, watch=None):
        before = env.ledger.get(service).passed_looks
        while not first:
            assert watch() is None
            if (looks := env.ledger.get(service).passed_looks) != before:  # the pause's first look
                first.append(looks)
            env.clock.sleep(POLL)
        return ApprovalAnswer(action="reject", approver="bob", comment="enough")
    return at_the_first_look


def test_a_canary_failing_after_a_long_gap_is_rolled_back_at_the_first_look_after_the_resume():
    env = env_with_ledger()  # a healthy canary, with traffic enough to pass 5 % on time

    def dies_at_the_approval(pause, summary, watch=None):
        raise Killed("the node running the rollout is lost while it waits for the approval before 25%")

    with pytest.raises(Killed):
        progressive_on(env, SPEC, dies_at_the_approval)
    record = env.ledger.get(env.targets.canary_service)
    assert (record.stage_index, record.stage_passed) == (0, True)
    env.clock.sleep(DAY)  # nobody runs the rollout for a day; meanwhile its canary goes bad
    env.metrics.behaviour = FAILING

    ended: list[float] = []
    asked_at: list[float] = []
    result = progressive_on(env, SPEC, person_away(env, asked_at, ended), owner="run-2")
    assert result.outcome == "rolled_back", result.reason
    assert ended, f"the looks never rolled back the failing canary; the person did: {result.reason}"
    # The first look comes an analysis interval into the pause, and it rolls back.
    assert ended[0] - asked_at[0] <= SPEC.analysis.interval_seconds + POLL, (asked_at, ended)
    assert "judged while the run waited for an answer" in result.reason, result.reason
    looks = env.ledger.get(env.targets.canary_service).passed_looks
    assert (looks.stage, looks.windows) == (0, 1), looks


def test_a_look_records_its_window_leaving_the_lease_lapsed_and_none_over_a_run_that_took_the_rollout_over():
    """A paused run's look records each new window, its lease left lapsed (a pause renews none:
    status and the runs that take rollouts over read it so). A run that took the rollout over
    meanwhile (this one taken for dead) keeps it, even once its own lease has lapsed (paused in
    turn, say): the look is not judged, and nothing is written."""
    from flows.journal import LedgerJournal
    from rollway.ledger import PassedLooks, WindowUnrecorded
    from tests.unit.test_fake_ledger import rollout

    env = env_with_ledger()
    service = env.targets.canary_service
    first = env.ledger.create(rollout(env.clock.now(), service=service), owner="run-1", now=env.clock.now(),
                              lease_seconds=60)
    env.clock.sleep(120)  # run-1 waits at a pause
    journal = LedgerJournal(env, SPEC, owner="run-1", lease_seconds=60, actor="alice", rollout_id=first.rollout_id)
    journal.looked(PassedLooks(stage=0, window=60.0, windows=1))
    noted = env.ledger.get(service)
    assert (noted.owner, noted.lease_expires, noted.history) == ("run-1", first.lease_expires, first.history)
    assert noted.passed_looks == PassedLooks(stage=0, window=60.0, windows=1)
    env.ledger.acquire(service, owner="run-2", now=env.clock.now(), lease_seconds=60, rollout=first.rollout_id)
    env.clock.sleep(120)
    with pytest.raises(WindowUnrecorded, match="could not be recorded in the ledger .*'run-1' no longer owns rollout "
                                               ".*: it is owned by 'run-2'.*not judged"):
        journal.looked(PassedLooks(stage=0, window=360.0, windows=2))
    held = env.ledger.get(service)
    assert (held.owner, held.passed_looks.windows) == ("run-2", 1), held


def test_a_look_whose_window_the_ledger_cannot_record_says_so_and_the_looks_after_it_judge(monkeypatch, caplog):
    """DynamoDB throttled past botocore's retries as a paused run's look records its new window: that
    look is not judged, and its line says that the ledger's write failed, in the ledger's words, and
    that the window is not judged (botocore's bare "An error occurred" line read as the canary's
    metrics failing to be read); the looks after it, the ledger answering again, roll the failing canary back."""
    env = env_with_ledger()  # a healthy canary, with traffic enough to pass 5 % on time
    note, throttled = env.ledger.note, []

    def throttled_once(*args, **kwargs):
        if not throttled:
            throttled.append(env.clock.now())
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdateItem")
        return note(*args, **kwargs)

    monkeypatch.setattr(env.ledger, "note", throttled_once)
    ended: list[float] = []
    away = person_away(env, [], ended)

    def goes_bad_while_asked(pause, summary, watch=None):
        env.metrics.behaviour = FAILING
        return away(pause, summary, watch)

    with caplog.at_level(logging.WARNING):
        result = progressive_on(env, SPEC, goes_bad_while_asked)
    assert result.outcome == "rolled_back", result.reason
    assert throttled and ended, f"the looks never rolled back the failing canary; the person did: {result.reason}"
    assert "judged while the run waited for an answer" in result.reason, result.reason
    said = [m for r in caplog.records if "could not look at the canary" in (m := r.getMessage())]
    assert len(said) == 1, said
    assert "DynamoDB UpdateItem failed with ThrottlingException: Rate exceeded" in said[0], said
    assert "An error occurred" not in said[0], said
    assert "could not be recorded in the ledger" in said[0] and "not judged" in said[0], said


def test_a_stage_passed_again_after_the_weights_were_moved_back_to_it_counts_its_windows_afresh():
    """The run that passed 5 % looked at two of its windows and died; a person moved the canary to
    7 % by hand, and the run adopting those weights bakes 5 % again from the start, passes it and
    dies as it asks the approval. Its pass is a new pass, after a bake of its own: the windows after
    it are a new family of tests, whose first gets the first share of the alpha, in the run resuming
    it too. Counted on from the first pass's windows, still in the ledger, the resumed run's pause
    judged the canary at the third share (a sixth of the first's alpha): the new bake's pass had
    spent the shares of windows judged before it, on traffic it never saw."""
    from rollway.model import Weights

    env = env_with_ledger()  # a healthy canary, with traffic enough to pass 5 % on time
    service = env.targets.canary_service

    def dies_after_two_windows(pause, summary, watch=None):
        while (looks := env.ledger.get(service).passed_looks) is None or looks.windows < 2:
            assert watch() is None
            env.clock.sleep(POLL)
        raise Killed("the node running the rollout is lost while it waits for the approval before 25%")

    with pytest.raises(Killed):
        progressive_on(env, SPEC, dies_after_two_windows)
    assert env.ledger.get(service).passed_looks.windows == 2
    env.router.weights = Weights(stable=93, canary=7)  # moved by hand; the run adopting them bakes 5 % again

    def dies_as_it_asks(pause, summary, watch=None):
        raise Killed("the node running the rollout is lost as it asks the approval before 25% again")

    with pytest.raises(Killed):
        progressive_on(env, SPEC, dies_as_it_asks, owner="run-2", adopt=True)
    adopted = [t for t in env.ledger.get(service).history if t.kind == "adopt"]
    passes = [t for t in env.ledger.get(service).history if t.kind == "verdict" and t.from_stage == 0]
    assert len(adopted) == 1 and len(passes) == 2 and passes[1].at > adopted[0].at, adopted
    assert env.ledger.get(service).stage_passed

    first: list = []
    at_the_first_look = rejects_at_the_first_look(env, first)
    result = progressive_on(env, SPEC, at_the_first_look, owner="run-3")
    assert result.outcome == "rolled_back", result.reason
    assert (first[0].stage, first[0].windows) == (0, 1), first
    assert first[0].window >= passes[1].at - SPEC.analysis.interval_seconds, (first, passes)


def test_a_rollout_recorded_before_windows_were_counted_counts_on_from_the_pause_its_record_shows(monkeypatch):
    """A rollout whose run passed 5 %, paused and judged the canary's windows before this release
    counted them (``passed_looks``, None in its record), resumed after the upgrade: its pause's
    entries (the asking, a timeout that held and asked again) show the windows judged there, and
    the resumed run counts on from them. Counted from none, its first window took the first share of
    the alpha again, on top of what the run before had spent: a rollout in flight across the upgrade
    could spend another alpha at that stage."""
    from flows.journal import LedgerJournal
    from flows.progressive import stage_passed_at
    from rollway.approvals import timed_out
    from rollway.decide import passed_window

    env = env_with_ledger()  # a healthy canary, with traffic enough to pass 5 % on time
    service = env.targets.canary_service
    asked: list[float] = []

    def times_out_then_dies(pause, summary, watch=None):
        if asked:
            raise Killed("the node running the rollout is lost while it asks the approval before 25% again")
        asked.append(env.clock.now())
        while env.clock.now() < asked[0] + 900:  # windows begin every 300 s, each judged until 600 s long
            assert watch() is None
            env.clock.sleep(POLL)
        return timed_out(SPEC.approvals)  # nobody answered: held, and asked again

    with monkeypatch.context() as before_the_release:
        before_the_release.setattr(LedgerJournal, "looked", lambda self, looks: None)  # nothing counted in it
        with pytest.raises(Killed):
            progressive_on(env, SPEC, times_out_then_dies)
    record = env.ledger.get(service)
    assert (record.stage_index, record.stage_passed, record.passed_looks) == (0, True, None)
    entries = [t.at for t in record.history if t.kind in ("pause", "timeout")]
    assert len(entries) == 2, record.history
    passed_at = stage_passed_at(record)
    judged = passed_window(SPEC, 0, passed_at, entries[1])[1] - passed_window(SPEC, 0, passed_at, entries[0])[1] + 1
    assert judged >= 2
    env.clock.sleep(600)  # resumed later, at a window of its own

    first: list = []

    def at_the_first_look(pause, summary, watch=None):
        while not first:
            assert watch() is None
            if (looks := env.ledger.get(service).passed_looks) is not None:
                first.append(looks)
            env.clock.sleep(POLL)
        return ApprovalAnswer(action="reject", approver="bob", comment="enough")

    result = progressive_on(env, SPEC, at_the_first_look, owner="run-2")
    assert result.outcome == "rolled_back", result.reason
    # The windows the pause's entries span were judged by the run before: the resumed run's, a
    # later one, takes the next share.
    assert (first[0].stage, first[0].windows) == (0, judged + 1), (first, judged)


def test_a_shift_to_a_stage_drops_a_count_of_its_windows_left_in_the_ledger():
    """A count of 5 %'s windows left in the ledger as the run shifts to 5 % (stale: a record an
    older rollway or a hand left so) is a count of another pass's tests. The shift drops it: the
    run resuming the rollout after the pass judges its first window at the first share of the
    alpha. Kept, that run counted on from it, at the sixth share, as if tests it never made had
    been made on this pass's traffic."""
    from rollway.ledger import PassedLooks

    env = env_with_ledger()  # a healthy canary, with traffic enough to pass 5 % on time
    service = env.targets.canary_service
    set_weights = env.router.set_weights
    stale = PassedLooks(stage=0, window=env.clock.now() - 3600, windows=5)

    def with_a_stale_count(weights):
        record = env.ledger.get(service)
        if weights.canary == 5 and record.stage_index == -1:  # the shift to 5 %, before it is recorded
            env.ledger.note(service, owner=record.owner, now=env.clock.now(), rollout=record.rollout_id,
                            passed_looks=stale)
        return set_weights(weights)

    env.router.set_weights = with_a_stale_count

    def dies_as_it_asks(pause, summary, watch=None):
        raise Killed("the node running the rollout is lost as it asks the approval before 25%")

    with pytest.raises(Killed):
        progressive_on(env, SPEC, dies_as_it_asks)
    record = env.ledger.get(service)
    assert record.stage_passed and any(t.kind == "shift" and t.to_stage == 0 for t in record.history)
    first: list = []
    at_the_first_look = rejects_at_the_first_look(env, first)
    result = progressive_on(env, SPEC, at_the_first_look, owner="run-2")
    assert result.outcome == "rolled_back", result.reason
    assert (first[0].stage, first[0].windows) == (0, 1), first
