"""The Ledger contract, run here against FakeLedger and in tests/adapters/test_ledger.py against DynamoDB.

``LedgerContract`` holds every behaviour a Ledger must show; a test class inherits it and
provides a ``ledger`` fixture. Time is passed in as ``now``, so leases expire without sleeps.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import pytest

from rollway.fakes import FakeLedger
from rollway.ledger import (
    LedgerError,
    LockHeld,
    RollbackClaimed,
    NotOwner,
    RolloutClosed,
    RolloutEnded,
    RolloutInProgress,
    RolloutNotFound,
    RolloutRecord,
    RolloutSuperseded,
    Transition,
    begin_rollback,
    new_rollout_id,
    utc,
)
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage, WeeklyPhase

SERVICE = "webordinary-edit-service"
START = 1_800_000_000.25  # a fraction, so numbers must survive the storage round trip exactly
LEASE = 60.0


SPEC_JSON = RolloutSpec(image="webordinary/edit-container:v2").model_dump_json()
"""A recorded spec, as a flow records it (the DynamoDB ledger refuses to read one it cannot)."""

WINDOWED_SPEC = RolloutSpec(image="webordinary/edit-container:v2", stages=[Stage(weight=w) for w in (5, 100)],
                            monitor_seconds=600,
                            phases=[WeeklyPhase(name="all", weights=(5, 100), decommission=True)]).model_dump_json()
"""A recorded spec whose promotion owes a monitoring window (until a decommission closes it)."""


def rollout(now: float = START, service: str = SERVICE, **fields: Any) -> RolloutRecord:
    """A new rollout as a flow would build it, with an id made at ``now``."""
    fields.setdefault("spec_json", SPEC_JSON)
    return RolloutRecord(
        service=service, rollout_id=new_rollout_id(now), image="webordinary/edit-container:v2", **fields,
    )


def step(at: float, kind: str = "shift", actor: str = "run-1", **fields: Any) -> Transition:
    return Transition(at=at, kind=kind, actor=actor, **fields)


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` in threads released at the same instant; each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            outcomes[index] = call()
        except Exception as err:  # the outcome under test
            outcomes[index] = err

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def started(ledger: Any, now: float = START, owner: str = "run-1", **fields: Any) -> RolloutRecord:
    return ledger.create(rollout(now, **fields), owner=owner, now=now, lease_seconds=LEASE)


def recorded(answer: Any, after: int | None = 0) -> Any:
    """The refused ``answer`` as the ledger records it while the history holds ``after`` entries
    (``RefusedAnswer.recorded_after``: which pause it answered is told by it; None: recorded before it was kept)."""
    return answer.model_copy(update={"recorded_after": after})


def finish(ledger: Any, at: float, phase: RolloutPhase = RolloutPhase.PROMOTED) -> RolloutRecord:
    return ledger.record(SERVICE, owner=None, now=at, transition=step(at, "promote", "ops"), phase=phase)


class LedgerContract:
    """What every Ledger does. Subclasses provide a ``ledger`` fixture on an empty store."""

    def refused_already(self, ledger, rollout_id: str, answers: list[Any]) -> None:
        """``answers`` refused on rollout ``rollout_id`` of SERVICE, as ``refuse`` appends them one by
        one. A subclass whose store is slow to append to may store the same list in one write."""
        for answer in answers:
            ledger.refuse(SERVICE, rollout=rollout_id, answer=answer)

    def count_made_stale(self, ledger, rollout_id: str) -> None:
        """Rollout ``rollout_id``'s count of refused answers dropped no longer telling every drop, as a
        rollway from before the count leaves it (dropping the oldest beside it, uncounted): read as
        not known (None), those counted the least there were (``refused_dropped_least``)."""
        rollouts = ledger._rollouts[SERVICE]
        index = next(i for i, r in enumerate(rollouts) if r.rollout_id == rollout_id)
        held = rollouts[index]
        rollouts[index] = held.model_copy(update={"refused_dropped": None,
                                                  "refused_dropped_least": held.refused_dropped or None})

    def test_a_service_without_rollouts_has_none(self, ledger):
        assert ledger.get(SERVICE) is None
        assert ledger.history(SERVICE) == []
        ledger.release(SERVICE, owner="run-1")  # nothing to release is not an error
        with pytest.raises(RolloutNotFound, match=SERVICE):
            ledger.acquire(SERVICE, owner="run-1", now=START, lease_seconds=LEASE)
        with pytest.raises(RolloutNotFound, match=SERVICE):
            ledger.record(SERVICE, owner=None, now=START, transition=step(START))

    def test_create_then_get_round_trips_every_field(self, ledger):
        asked = rollout(
            weights=Weights.canary_at(5), stage_index=0, stage_passed=True,
            canary_task_definition="arn:aws:ecs:us-west-2:123456789012:task-definition/webordinary-edit-task:7",
            stable_desired=3, history=(step(START, "start", to_weights=Weights.canary_at(5), verdict="ok"),),
        )
        created = ledger.create(asked, owner="run-1", now=START, lease_seconds=LEASE)

        assert created.owner == "run-1"
        assert (created.lease_expires, created.lease_seconds) == (START + LEASE, LEASE)
        assert (created.version, created.created_at, created.updated_at) == (1, START, START)
        written = {"owner", "lease_expires", "lease_seconds", "version", "created_at", "updated_at"}
        assert created.model_dump(exclude=written) == asked.model_dump(exclude=written)
        assert ledger.get(SERVICE) == created
        assert ledger.history(SERVICE) == [created]

    def test_a_lease_renewed_with_changes_sets_them_and_appends_nothing(self, ledger):
        """A pause asked again records its new deadline so, without a history entry per asking."""
        first = started(ledger)
        renewed = ledger.acquire(SERVICE, owner="run-1", now=START + 5, lease_seconds=LEASE, wall=START + 1,
                                 asked_until=START + 601.5)
        assert renewed.asked_until == START + 601.5 and renewed.history == first.history
        assert renewed.lease_expires == START + 1 + LEASE and ledger.get(SERVICE) == renewed
        assert renewed.lease_seconds == LEASE  # the length the holder took, for a tick judging it hung
        with pytest.raises(ValueError, match="history"):
            ledger.acquire(SERVICE, owner="run-1", now=START + 6, lease_seconds=LEASE, history=())

    def test_a_refused_answer_is_appended_lease_free_and_moves_nothing_else(self, ledger):
        """`rollway promote` refusing an answer it could not send (the pause was answered first,
        timed out) holds no lease, and the paused run holds one: its refusal is appended beside the
        run's own, the run's lease, version and history untouched, so the run's next write and its
        check that nobody moved the rollout while it waited both stand."""
        from rollway.ledger import RefusedAnswer

        first = started(ledger)
        by_run = RefusedAnswer(at=START + 1, actor="dana", action="approve", next_weight=5, to_stage=1,
                               reason="5% is no later stage", run="brave-otter (1)")
        by_cli = RefusedAnswer(at=START + 2.5, actor="erin", action="reject", reason="answered first by dana: approve")
        ledger.refuse(SERVICE, rollout=first.rollout_id, answer=by_run)
        stored = ledger.refuse(SERVICE, rollout=first.rollout_id, answer=by_cli)
        assert stored.refused_answers == (recorded(by_run), recorded(by_cli)) and ledger.get(SERVICE) == stored
        assert (stored.owner, stored.lease_expires, stored.version, stored.history, stored.updated_at) == (
            first.owner, first.lease_expires, first.version, first.history, first.updated_at)
        written = ledger.record(SERVICE, owner="run-1", now=START + 3, transition=step(START + 3))
        assert written.refused_answers == stored.refused_answers  # the run's next write keeps both
        # Set whole, a list read before another's append drops it: only ``refuse`` writes it.
        with pytest.raises(ValueError, match="refused_answers"):
            ledger.acquire(SERVICE, owner="run-1", now=START + 4, lease_seconds=LEASE, refused_answers=())
        # An answer refused after the rollout closed (its pause timed out and it rolled back) is kept too.
        finish(ledger, START + 5, RolloutPhase.ROLLED_BACK)
        late = RefusedAnswer(at=START + 6, actor="frank", action="approve", reason="timed out")
        closed = ledger.refuse(SERVICE, rollout=first.rollout_id, answer=late)
        # Recorded after every entry of the history as the ledger read it, whatever its caller said: which
        # pause an answer was given to is told by that order, its time being its writer's clock.
        assert closed.refused_answers[-1] == recorded(late, len(closed.history)) and len(closed.history) >= 2
        told = late.model_copy(update={"actor": "gina", "recorded_after": 0})
        assert ledger.refuse(SERVICE, rollout=first.rollout_id, answer=told).refused_answers[-1] == recorded(
            told, len(closed.history))
        with pytest.raises(RolloutNotFound):
            ledger.refuse(SERVICE, rollout="20200101T000000Z-00000000", answer=late)

    def test_a_refused_answer_past_the_bound_is_kept_the_oldest_dropped_and_the_rollout_writes_on(self, ledger):
        """A script answering `rollway promote` in a loop appended without end, growing the item towards
        DynamoDB's 400 KB limit, past which every write of the rollout (its rollback's too) failed.
        Bounded, the newest answer was the one lost: the refusal of an answer to the pause asked now,
        which the run resuming the rollout reads to ask it anew, while the oldest stayed. The oldest
        goes instead."""
        from rollway.ledger import REFUSED_KEPT, RefusedAnswer

        first = started(ledger)
        kept = [RefusedAnswer(at=START + 1, actor=f"bot-{i}", action="approve", reason="timed out")
                for i in range(REFUSED_KEPT)]
        self.refused_already(ledger, first.rollout_id, kept[:-1])
        ledger.refuse(SERVICE, rollout=first.rollout_id, answer=kept[-1])  # the last one the bound lets in
        full = ledger.get(SERVICE)
        assert full.refused_answers == tuple(map(recorded, kept)) and full.refused_dropped == 0
        one_more = RefusedAnswer(at=START + 2, actor="bot", action="approve", reason="timed out")
        rotated = ledger.refuse(SERVICE, rollout=first.rollout_id, answer=one_more)
        assert rotated.refused_answers == tuple(map(recorded, (*kept[1:], one_more)))
        # Counted with the answers it kept, in the same write: status and the report say how many went,
        # and, by the history's length then, which pauses they may have answered (those recorded before).
        assert rotated == ledger.get(SERVICE) == full.model_copy(update={"refused_answers": rotated.refused_answers,
                                                                         "refused_dropped": 1,
                                                                         "refused_dropped_before": 0})
        assert full.history == () and full.refused_dropped_before is None
        # The count is the ledger's alone, as the list is.
        with pytest.raises(ValueError, match="refused_dropped"):
            ledger.acquire(SERVICE, owner="run-1", now=START + 2.5, lease_seconds=LEASE, refused_dropped=0)
        written = ledger.record(SERVICE, owner="run-1", now=START + 3, transition=step(START + 3))
        assert written.refused_answers == rotated.refused_answers and written.history[-1] == step(START + 3)

    def test_a_drop_while_the_count_is_not_known_records_no_history_length_for_it(self, ledger, monkeypatch):
        """How long the history was at the newest drop (``refused_dropped_before``) is written with a
        count alone: while the count is not known, answers dropped uncounted may have been recorded
        after any entry, and the ledger removes it. A fake that wrote it had a flow test read a pause
        as given none of those dropped, which the ledger itself leaves any pause may have been."""
        from rollway.ledger import RefusedAnswer

        monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 2)
        first = started(ledger)
        for i in range(3):
            ledger.refuse(SERVICE, rollout=first.rollout_id, answer=RefusedAnswer(
                at=START + 1 + i, actor=f"p{i}", action="hold", reason="timed out"))
        counted = ledger.get(SERVICE)
        assert (counted.refused_dropped, counted.refused_dropped_before) == (1, 0)
        self.count_made_stale(ledger, first.rollout_id)
        ledger.record(SERVICE, owner="run-1", now=START + 5, transition=step(START + 5))
        stored = ledger.refuse(SERVICE, rollout=first.rollout_id, answer=RefusedAnswer(
            at=START + 6, actor="p6", action="hold", reason="timed out"))
        assert stored == ledger.get(SERVICE)
        assert (stored.refused_dropped, stored.refused_dropped_least, stored.refused_dropped_before) == (None, 2, None)

    def test_refused_answers_with_long_comments_are_bounded_by_their_size_the_newest_kept(self, ledger):
        """200 answers with 2,000-character comments (3 bytes a character) take 1.2 MB: the count alone
        would not keep the item under DynamoDB's 400 KB. The newest are kept, as many as fit."""
        from rollway.ledger import REFUSED_BYTES, RefusedAnswer

        first = started(ledger)
        said = [RefusedAnswer(at=START + 1, actor=f"bot-{i}", action="approve", comment="€" * 2000, reason="timed out")
                for i in range(60)]
        for answer in said:
            ledger.refuse(SERVICE, rollout=first.rollout_id, answer=answer)
        stored = ledger.get(SERVICE)
        kept = stored.refused_answers
        assert 0 < len(kept) < 60 and kept == tuple(map(recorded, said[-len(kept):]))
        assert stored.refused_dropped == 60 - len(kept)
        size = sum(len(r.model_dump_json().encode()) for r in kept)
        assert size <= REFUSED_BYTES < size + len(recorded(said[0]).model_dump_json().encode())

    def test_a_refused_answer_larger_than_the_bound_is_not_recorded(self, ledger, monkeypatch):
        """One answer alone past the bound fits in no list: it is refused, and those kept stay."""
        from rollway.ledger import RefusalsFull, RefusedAnswer

        first = started(ledger)
        small = RefusedAnswer(at=START + 1, actor="erin", action="approve", reason="timed out")
        ledger.refuse(SERVICE, rollout=first.rollout_id, answer=small)
        monkeypatch.setattr("rollway.ledger.REFUSED_BYTES", 1_000)
        large = RefusedAnswer(at=START + 2, actor="bot", action="approve", comment="x" * 1_000, reason="timed out")
        with pytest.raises(RefusalsFull, match="was not recorded"):
            ledger.refuse(SERVICE, rollout=first.rollout_id, answer=large)
        assert ledger.get(SERVICE).refused_answers == (recorded(small),)

    def test_an_unverified_window_is_stored_beside_the_history_and_read_back(self, ledger):
        """The monitor records how an unverified window ended on the lease's renewal: stored and read
        back whole (status says it), with nothing appended to the history its resume reads."""
        from rollway.ledger import UnverifiedWindow

        first = started(ledger)
        seen = UnverifiedWindow(at=START + 3600.5, actor="run-1", counted=3, looks=29, failed=2)
        renewed = ledger.acquire(SERVICE, owner="run-1", now=START + 3601, lease_seconds=LEASE,
                                 unverified_window=seen)
        assert renewed.history == first.history and ledger.get(SERVICE).unverified_window == seen

    def test_a_window_kept_for_traffic_is_stored_beside_the_history_and_read_back(self, ledger):
        """The monitor records why a clean window kept the old service (traffic was back on it) on the
        lease's renewal, as an unverified end: read back whole, the history as it was; a record
        written before it read back with none."""
        from rollway.ledger import KeptForTraffic

        first = started(ledger)
        assert first.kept_for_traffic is None
        kept = KeptForTraffic(at=START + 3600.5, actor="run-1", stable=20)
        renewed = ledger.acquire(SERVICE, owner="run-1", now=START + 3601, lease_seconds=LEASE, kept_for_traffic=kept)
        assert renewed.history == first.history and ledger.get(SERVICE).kept_for_traffic == kept
        cleared = ledger.acquire(SERVICE, owner="run-1", now=START + 3602, lease_seconds=LEASE, kept_for_traffic=None)
        assert cleared.kept_for_traffic is None and ledger.get(SERVICE).kept_for_traffic is None

    @pytest.mark.parametrize("phase", list(RolloutPhase))
    def test_a_second_rollout_starts_only_once_the_newest_is_terminal(self, ledger, phase):
        first = started(ledger)
        ledger.record(SERVICE, owner="run-1", now=START + 1, transition=step(START + 1), phase=phase)
        later = rollout(START + 10)

        if phase.terminal:
            second = ledger.create(later, owner="run-2", now=START + 10, lease_seconds=LEASE)
            assert ledger.get(SERVICE) == second
            assert [r.rollout_id for r in ledger.history(SERVICE)] == [second.rollout_id, first.rollout_id]
        else:
            with pytest.raises(RolloutInProgress) as refused:
                ledger.create(later, owner="run-2", now=START + 10, lease_seconds=LEASE)
            for named in (SERVICE, first.rollout_id, phase.value, "run-1"):
                assert named in str(refused.value)
            assert [r.rollout_id for r in ledger.history(SERVICE)] == [first.rollout_id]

    def test_the_same_create_again_returns_the_record_it_stored(self, ledger):
        """A retried create whose first attempt committed (its answer lost, or a Prefect task
        retry) gets the stored record back; any other create of an unfinished service is refused."""
        asked = rollout()
        first = ledger.create(asked, owner="run-1", now=START, lease_seconds=LEASE)
        assert ledger.create(asked, owner="run-1", now=START, lease_seconds=LEASE) == first
        assert ledger.history(SERVICE) == [first]
        with pytest.raises(RolloutInProgress):
            ledger.create(asked, owner="run-2", now=START, lease_seconds=LEASE)
        ledger.record(SERVICE, owner="run-1", now=START + 1, transition=step(START + 1))
        with pytest.raises(RolloutInProgress):  # the stored record moved on: no longer a retry
            ledger.create(asked, owner="run-1", now=START, lease_seconds=LEASE)

    def test_rollouts_of_other_services_do_not_block(self, ledger):
        started(ledger)
        other = started(ledger, service="webordinary-other-service")
        assert ledger.get("webordinary-other-service") == other
        assert len(ledger.history(SERVICE)) == 1

    def test_a_new_rollout_id_must_sort_after_the_newest(self, ledger):
        first = started(ledger, now=START + 100)
        finish(ledger, START + 101)
        with pytest.raises(ValueError, match=first.rollout_id):
            started(ledger, now=START)  # an id from earlier would never be found as the newest
        reserved = rollout(START + 200).model_copy(update={"rollout_id": "~active"})
        with pytest.raises(ValueError, match="reserved"):
            ledger.create(reserved, owner="run-2", now=START + 200, lease_seconds=LEASE)
        assert ledger.history(SERVICE) == [ledger.get(SERVICE)]

    def test_of_racing_creates_exactly_one_wins(self, ledger):
        for race in range(3):
            service = f"webordinary-race-{race}"
            outcomes = together(
                lambda: started(ledger, service=service, owner="run-a"),
                lambda: started(ledger, service=service, owner="run-b"),
            )
            won = [o for o in outcomes if isinstance(o, RolloutRecord)]
            lost = [o for o in outcomes if isinstance(o, RolloutInProgress)]
            assert (len(won), len(lost)) == (1, 1), outcomes
            assert ledger.get(service) == won[0]
            assert ledger.history(service) == won[0:1]
            assert won[0].rollout_id in str(lost[0])

    def test_the_lease_renews_for_its_owner_and_passes_on_only_after_it_expires(self, ledger):
        started(ledger)  # run-1 holds the lease until START + 60
        renewed = ledger.acquire(SERVICE, owner="run-1", now=START + 30, lease_seconds=LEASE)
        assert (renewed.owner, renewed.lease_expires) == ("run-1", START + 90)

        with pytest.raises(LockHeld) as held:
            ledger.acquire(SERVICE, owner="run-2", now=START + 90, lease_seconds=LEASE)  # not yet past
        assert "run-1" in str(held.value) and utc(START + 90) in str(held.value)
        assert ledger.get(SERVICE) == renewed

        taken = ledger.acquire(SERVICE, owner="run-2", now=START + 90.5, lease_seconds=LEASE)
        assert (taken.owner, taken.lease_expires, taken.version) == ("run-2", START + 150.5, renewed.version + 1)

    def test_leases_are_stamped_and_judged_on_the_wall_clock_given_and_the_rest_on_now(self, ledger):
        """Writers on rollout clocks of different speeds pass ``wall``: the lease is stamped and
        judged on it, while ``now`` (the writer's rollout clock) keeps the bookkeeping."""
        fast = START + 200_000  # a 60x rollout clock, far ahead of the wall
        created = ledger.create(rollout(), owner="run-1", now=fast, lease_seconds=LEASE, wall=START)
        assert (created.lease_expires, created.created_at, created.updated_at) == (START + LEASE, fast, fast)
        kept = ledger.record(SERVICE, owner="run-1", now=fast + 30, transition=step(fast + 30), lease_seconds=LEASE,
                             wall=START + 1)
        assert (kept.lease_expires, kept.updated_at) == (START + 1 + LEASE, fast + 30)
        with pytest.raises(LockHeld):  # a writer whose own clock is far past the stamp judges on the wall
            ledger.acquire(SERVICE, owner="run-2", now=fast + 31, lease_seconds=LEASE, wall=START + 2)
        taken = ledger.acquire(SERVICE, owner="run-2", now=START + 62, lease_seconds=LEASE, wall=START + 61.5)
        assert (taken.owner, taken.lease_expires, taken.updated_at) == ("run-2", START + 121.5, START + 62)

    def test_the_previous_owner_cannot_write_after_a_takeover(self, ledger):
        started(ledger)
        ledger.acquire(SERVICE, owner="run-2", now=START + 61, lease_seconds=LEASE)
        with pytest.raises(NotOwner) as refused:
            ledger.record(SERVICE, owner="run-1", now=START + 62, transition=step(START + 62), stage_index=1)
        assert "run-1" in str(refused.value) and "run-2" in str(refused.value)
        written = ledger.record(SERVICE, owner="run-2", now=START + 62, transition=step(START + 62, actor="run-2"))
        assert written.stage_index == -1 and [t.kind for t in written.history] == ["takeover", "shift"]

    def test_an_owner_whose_lease_expired_writes_and_renews_until_another_run_takes_over(self, ledger):
        """A run blocked past its lease (ECS slow to place the canary) still records what it did;
        only a takeover, which makes another run the owner, stops its writes."""
        started(ledger)
        kept = ledger.record(SERVICE, owner="run-1", now=START + 30, transition=step(START + 30), lease_seconds=LEASE)
        assert kept.lease_expires == START + 90
        late = ledger.record(SERVICE, owner="run-1", now=START + 700, transition=step(START + 700),
                             lease_seconds=LEASE, stage_index=1)
        assert (late.owner, late.lease_expires, late.stage_index) == ("run-1", START + 760, 1)
        with pytest.raises(LockHeld):  # renewed: nobody may take it now
            ledger.acquire(SERVICE, owner="run-2", now=START + 701, lease_seconds=LEASE)
        ledger.acquire(SERVICE, owner="run-2", now=START + 761, lease_seconds=LEASE)  # expired again: taken over
        with pytest.raises(NotOwner, match="owned by 'run-2'"):
            ledger.record(SERVICE, owner="run-1", now=START + 762, transition=step(START + 762), lease_seconds=LEASE)
        assert ledger.get(SERVICE).owner == "run-2"
        assert [t.kind for t in ledger.get(SERVICE).history] == ["shift", "shift", "takeover"]

    def test_a_takeover_of_a_lapsed_lease_is_in_the_history_and_a_renewal_is_not(self, ledger):
        """A run that took a dead run's rollout over left no trace in the history: the reports could
        not show that the rollout changed hands, to whom, when, nor whose run had died."""
        started(ledger)  # run-1 holds the lease until START + 60
        renewed = ledger.acquire(SERVICE, owner="run-1", now=START + 30, lease_seconds=LEASE)
        assert renewed.history == ()  # its own lease renewed: nothing happened worth a line
        taken = ledger.acquire(SERVICE, owner="run-2", now=START + 91, lease_seconds=LEASE)
        (entry,) = taken.history
        assert (entry.kind, entry.actor, entry.at) == ("takeover", "run-2", START + 91)
        assert entry.comment == f"took the rollout over from run-1, whose lease lapsed at {utc(START + 90)} (wall clock)"
        assert ledger.get(SERVICE) == taken
        assert ledger.acquire(SERVICE, owner="run-2", now=START + 100, lease_seconds=LEASE).history == (entry,)
        ledger.release(SERVICE, owner="run-2")
        free = ledger.acquire(SERVICE, owner="run-3", now=START + 101, lease_seconds=LEASE)
        assert free.history == (entry,)  # a lease nobody held is taken from no one

    def test_of_two_runs_taking_over_a_lapsed_lease_one_does_and_it_alone_is_recorded(self, ledger):
        started(ledger)
        outcomes = together(*(lambda owner=owner: ledger.acquire(SERVICE, owner=owner, now=START + 61,
                                                                 lease_seconds=LEASE) for owner in ("run-a", "run-b")))
        won = [o for o in outcomes if isinstance(o, RolloutRecord)]
        assert len(won) == 1 and sum(isinstance(o, LockHeld) for o in outcomes) == 1, outcomes
        assert [(t.kind, t.actor) for t in ledger.get(SERVICE).history] == [("takeover", won[0].owner)]

    def test_release_frees_the_lease_only_for_its_owner(self, ledger):
        created = started(ledger)
        ledger.release(SERVICE, owner="run-2")
        assert ledger.get(SERVICE) == created
        ledger.release(SERVICE, owner="run-1")
        released = ledger.get(SERVICE)
        assert (released.owner, released.version) == (None, 2)
        taken = ledger.acquire(SERVICE, owner="run-2", now=START + 1, lease_seconds=LEASE)
        assert taken.owner == "run-2"

    def test_record_applies_changes_appends_in_order_and_returns_what_it_stored(self, ledger):
        started(ledger)
        kinds = ["shift", "verdict", "approve"]
        for offset, kind in enumerate(kinds, start=1):
            written = ledger.record(
                SERVICE, owner="run-1", now=START + offset, transition=step(START + offset, kind),
                stage_index=offset - 1, weights={"stable": 100 - 5 * offset, "canary": 5 * offset},
            )
            assert written == ledger.get(SERVICE)
        assert [t.kind for t in written.history] == kinds
        assert (written.version, written.updated_at, written.stage_index) == (4, START + 3, 2)
        assert written.weights == Weights.canary_at(15)
        assert (written.owner, written.lease_expires) == ("run-1", START + LEASE)

    def test_transitions_that_belong_together_are_appended_in_one_write(self, ledger):
        """A shift and the flag moves made inside it: no kill can keep one without the others."""
        started(ledger)
        flags = (step(START + 1, "flag", comment="a -> on 50%"), step(START + 1, "flag", comment="b -> on 50%"))
        written = ledger.record(SERVICE, owner="run-1", now=START + 1, transition=step(START + 1),
                                followed_by=flags, weights=Weights.canary_at(50))
        assert written.history == (step(START + 1), *flags) and written.version == 2
        assert ledger.get(SERVICE) == written

    def test_lease_free_writes_act_whoever_holds_the_lease(self, ledger):
        started(ledger)
        rolled = ledger.record(
            SERVICE, owner=None, now=START + 5, transition=step(START + 5, "rollback", "ops"),
            phase=RolloutPhase.ROLLED_BACK, weights=Weights.canary_at(0), canary_task_definition=None,
        )
        assert (rolled.phase, rolled.owner, rolled.version) == (RolloutPhase.ROLLED_BACK, "run-1", 2)
        assert rolled.history[-1].actor == "ops"

    def test_a_write_meant_for_one_rollout_never_lands_on_the_next(self, ledger):
        """A late lease-free write (a rollback still acting on rollout 1) names its rollout: once
        rollout 2 is the newest, it is refused instead of ending rollout 2."""
        first = started(ledger)
        begun = begin_rollback(ledger, SERVICE, actor="ops", reason="5xx", now=START + 1, rollout=first.rollout_id)
        assert begun.phase is RolloutPhase.ROLLING_BACK
        ledger.record(SERVICE, owner=None, now=START + 2, transition=step(START + 2, "rollback", "ops"),
                      phase=RolloutPhase.ROLLED_BACK, rollout=first.rollout_id)
        second = started(ledger, now=START + 10, owner="run-2")
        with pytest.raises(RolloutSuperseded) as refused:
            ledger.record(SERVICE, owner=None, now=START + 11, transition=step(START + 11, "rollback", "hook"),
                          phase=RolloutPhase.ROLLED_BACK, rollout=first.rollout_id)
        assert first.rollout_id in str(refused.value) and second.rollout_id in str(refused.value)
        with pytest.raises(RolloutSuperseded):
            begin_rollback(ledger, SERVICE, actor="hook", reason="late", now=START + 11, rollout=first.rollout_id)
        assert ledger.get(SERVICE) == second
        assert ledger.record(SERVICE, owner="run-2", now=START + 12, transition=step(START + 12, actor="run-2"),
                             rollout=second.rollout_id).version == 2

    def test_a_lease_meant_for_one_rollout_is_never_taken_on_the_next(self, ledger):
        """A monitor watching promoted rollout 1 renews its lease after rollout 2 started and its
        run's lease ran out: it must not become rollout 2's owner (it would block that run, and its
        hooks would treat rollout 2 as its own)."""
        first = started(ledger)
        finish(ledger, START + 1)
        watching = START + LEASE + 1  # run-1's lease has run out
        assert ledger.acquire(SERVICE, owner="monitor-1", now=watching, lease_seconds=LEASE,
                              rollout=first.rollout_id).owner == "monitor-1"
        second = started(ledger, now=watching + 10, owner="run-2")
        with pytest.raises(RolloutSuperseded) as refused:
            ledger.acquire(SERVICE, owner="monitor-1", now=watching + 10 + 2 * LEASE, lease_seconds=LEASE,
                           rollout=first.rollout_id)
        assert first.rollout_id in str(refused.value) and second.rollout_id in str(refused.value)
        assert ledger.get(SERVICE).owner == "run-2"

    @pytest.mark.parametrize("phase", [RolloutPhase.ROLLING_BACK, RolloutPhase.ROLLED_BACK])
    def test_once_a_rollback_begins_the_owner_can_neither_write_nor_renew(self, ledger, phase):
        """A run still going must not shift traffic back onto a rollout someone rolled back."""
        started(ledger)  # run-1 holds the lease until START + 60
        begun = ledger.record(
            SERVICE, owner=None, now=START + 5, transition=step(START + 5, "rollback-start", "ops"), phase=phase,
        )
        with pytest.raises(RolloutEnded, match=f"is {phase.value} by ops"):
            ledger.record(SERVICE, owner="run-1", now=START + 10, transition=step(START + 10), stage_index=1)
        for owner in ("run-1", "run-2"):
            with pytest.raises(RolloutEnded):
                ledger.acquire(SERVICE, owner=owner, now=START + 10, lease_seconds=LEASE)
        assert ledger.get(SERVICE) == begun
        # The rollback itself (lease-free) still finishes.
        done = ledger.record(SERVICE, owner=None, now=START + 20, transition=step(START + 20, "rollback", "ops"),
                             phase=RolloutPhase.ROLLED_BACK)
        assert done.phase is RolloutPhase.ROLLED_BACK

    @pytest.mark.parametrize("kinds, phase, by_hand, refused", [
        (["rollback-start", "rollback"], RolloutPhase.ROLLED_BACK, False, "was already rolled back by judge at"),
        (["promote", "decommission"], RolloutPhase.PROMOTED, False, "monitoring window has closed"),
        (["rollback-start"], RolloutPhase.ROLLING_BACK, False, None),  # half done: a rollback finishes it
        (["promote"], RolloutPhase.PROMOTED, False, None),  # the window is owed: the old service still runs
        (["promote", "watched"], RolloutPhase.PROMOTED, False, "monitoring window has closed"),
        # The `rollback` flow run by hand on a promotion whose window closed, with a decommission
        # (the stable service at 0 on the same revision) or without, and that no finalize touched:
        # the stable service runs the previous version, so it begins.
        (["promote", "watched"], RolloutPhase.PROMOTED, True, None),
        (["promote", "decommission"], RolloutPhase.PROMOTED, True, None),
        # A finalize begun or done (recorded since the flow's read): history.
        (["promote", "watched", "finalize-start"], RolloutPhase.PROMOTED, True, "monitoring window has closed"),
        (["promote", "watched", "finalize-start", "finalized"], RolloutPhase.PROMOTED, True,
         "monitoring window has closed"),
        (["rollback-start", "rollback"], RolloutPhase.ROLLED_BACK, True, "was already rolled back by judge at"),
    ])
    def test_a_rollback_begins_only_on_a_rollout_still_open_for_one(self, ledger, kinds, phase, by_hand, refused):
        """A rollback that read the rollout open (`rollway abort`) and records its start after the
        judge's own rollback finished used to reopen it, then move the traffic and page again."""
        first = started(ledger, spec_json=WINDOWED_SPEC, previous_task_definition="webordinary-edit-task:1")
        for n, kind in enumerate(kinds, start=1):
            ledger.record(SERVICE, owner=None, now=START + n, transition=step(START + n, kind, "judge"), phase=phase)
        before = ledger.get(SERVICE)

        def begin():
            return begin_rollback(ledger, SERVICE, actor="erin", reason="errors", now=START + 9,
                                  rollout=first.rollout_id, by_hand=by_hand)

        if refused is None:
            begun = begin()
            assert begun.phase is RolloutPhase.ROLLING_BACK and begun.history[-1].kind == "rollback-start"
            return
        with pytest.raises(RolloutClosed, match=refused) as closed:
            begin()
        assert isinstance(closed.value, RolloutEnded) and first.rollout_id in str(closed.value)
        assert ledger.get(SERVICE) == before

    @pytest.mark.parametrize("comment, said", [(None, " UTC"), ("all stages passed", " UTC: all stages passed")])
    def test_a_refused_rollback_names_who_closed_the_rollout_without_a_comment_it_never_had(self, ledger, comment,
                                                                                            said):
        """A promotion recorded without a comment was said "promoted by judge at <time>: None and its
        monitoring window has closed": the word None read as something the person or the judge wrote."""
        first = started(ledger, spec_json=WINDOWED_SPEC)
        for n, kind in enumerate(["promote", "watched"], start=1):
            ledger.record(SERVICE, owner=None, now=START + n, phase=RolloutPhase.PROMOTED,
                          transition=step(START + n, kind, "judge", comment=comment if kind == "promote" else None))
        with pytest.raises(RolloutClosed) as closed:
            begin_rollback(ledger, SERVICE, actor="erin", reason="errors", now=START + 9, rollout=first.rollout_id)
        assert "None" not in str(closed.value) and "was promoted by judge at " in str(closed.value)
        assert f"{said} and its monitoring window has closed" in str(closed.value)

    @pytest.mark.parametrize(
        "changes, named",
        [
            ({"stage": 1}, "stage"),  # not a field
            ({"lease_expires": START + 999}, "lease_expires"),  # the lease is acquire's
            ({"rollout_id": "x"}, "rollout_id"),
            ({"history": ()}, "history"),  # append-only
            ({"version": 9}, "version"),
            ({"weights": {"stable": 50, "canary": 60}}, "100"),  # not a valid value
        ],
    )
    def test_invalid_changes_are_refused_before_anything_is_written(self, ledger, changes, named):
        before = started(ledger)
        with pytest.raises(ValueError, match=named):
            ledger.record(SERVICE, owner="run-1", now=START + 1, transition=step(START + 1), **changes)
        assert ledger.get(SERVICE) == before

    def test_leases_are_never_negative_nor_renewed_by_nobody(self, ledger):
        with pytest.raises(ValueError, match="negative"):
            ledger.create(rollout(), owner="run-1", now=START, lease_seconds=-1)
        before = started(ledger)
        with pytest.raises(ValueError, match="owner"):
            ledger.record(SERVICE, owner=None, now=START, transition=step(START), lease_seconds=LEASE)
        assert ledger.get(SERVICE) == before

    @pytest.mark.parametrize("nobody", ["", "  "])
    def test_an_owner_that_names_nobody_is_refused_at_every_write_before_anything_is_written(self, ledger, nobody):
        """Stored, an owner "" read as nobody to status, the reports and the hooks (``lease_held``),
        and as a holder to the writes (``lease_free``, DynamoDB's conditions): "no run drives the
        rollout" beside a lease no run could take."""
        with pytest.raises(ValueError, match="owner names nobody"):
            ledger.create(rollout(), owner=nobody, now=START, lease_seconds=LEASE)
        assert ledger.get(SERVICE) is None
        before = started(ledger)
        for write in (lambda: ledger.acquire(SERVICE, owner=nobody, now=START + LEASE + 1, lease_seconds=LEASE),
                      lambda: ledger.record(SERVICE, owner=nobody, now=START + 1, transition=step(START + 1))):
            with pytest.raises(ValueError, match="owner names nobody"):
                write()
        assert ledger.get(SERVICE) == before

    def test_concurrent_writers_lose_no_history_entry(self, ledger):
        started(ledger)
        per_writer = 8

        def writer(actor: str) -> Callable[[], None]:
            def write() -> None:
                for n in range(per_writer):
                    ledger.record(SERVICE, owner=None, now=START + n, transition=step(START + n, actor=actor))
            return write

        assert together(writer("ops-a"), writer("ops-b")) == [None, None]
        final = ledger.get(SERVICE)
        assert final.version == 1 + 2 * per_writer
        for actor in ("ops-a", "ops-b"):
            assert [t.at for t in final.history if t.actor == actor] == [START + n for n in range(per_writer)]


class RollbackClaimContract:
    """Two rollbacks of one rollout (`rollway abort` and a cancelled run's hook) both find it
    rolling back: the claim lets one act and page, and keeps the other out while its holder lives."""

    def test_of_racing_rollbacks_one_takes_the_claim_and_the_other_is_told_who(self, ledger):
        first = started(ledger)

        def begin(holder: str) -> Callable[[], RolloutRecord]:
            return lambda: begin_rollback(ledger, SERVICE, actor=holder, reason="errors", now=START + 5,
                                          rollout=first.rollout_id, holder=holder, lease_seconds=LEASE)

        outcomes = together(begin("hook (run a)"), begin("erin (run b)"))
        won = [o for o in outcomes if isinstance(o, RolloutRecord)]
        lost = [o for o in outcomes if isinstance(o, RollbackClaimed)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        holder = won[0].rollback_holder
        assert lost[0].holder == holder and holder in str(lost[0]) and lost[0].expires == START + 5 + LEASE
        stored = ledger.get(SERVICE)
        assert (stored.rollback_holder, stored.rollback_expires) == (holder, START + 5 + LEASE)
        assert [t.actor for t in stored.history if t.kind == "rollback-start"] == [holder]

    @pytest.mark.parametrize("nobody", ["", "  "])
    def test_a_claim_holder_that_names_nobody_is_refused_before_anything_is_written(self, ledger, nobody):
        """A holder "" named nobody to ``check_rollback_claim`` and the reports, and held the claim
        for DynamoDB's conditions: the next rollback was refused "for no known reason"."""
        first = started(ledger)
        with pytest.raises(ValueError, match="holder names nobody"):
            begin_rollback(ledger, SERVICE, actor="hook", reason="cancelled", now=START + 1, rollout=first.rollout_id,
                           holder=nobody, lease_seconds=LEASE)
        assert ledger.get(SERVICE) == first
        begun = begin_rollback(ledger, SERVICE, actor="hook", reason="cancelled", now=START + 1,
                               rollout=first.rollout_id)
        with pytest.raises(ValueError, match="holder names nobody"):
            ledger.claim_rollback(SERVICE, holder=nobody, now=START + 2, lease_seconds=LEASE, rollout=first.rollout_id)
        assert ledger.get(SERVICE) == begun

    def test_the_holder_renews_its_claim_and_another_takes_it_only_once_it_lapsed(self, ledger):
        first = started(ledger)
        begin_rollback(ledger, SERVICE, actor="hook", reason="cancelled", now=START + 1, rollout=first.rollout_id,
                       holder="hook", lease_seconds=LEASE)
        renewed = ledger.claim_rollback(SERVICE, holder="hook", now=START + 50, lease_seconds=LEASE,
                                        rollout=first.rollout_id)
        assert renewed.rollback_expires == START + 50 + LEASE and len(renewed.history) == 1  # nothing appended
        for claim in (lambda: ledger.claim_rollback(SERVICE, holder="erin", now=START + 100, lease_seconds=LEASE),
                      lambda: begin_rollback(ledger, SERVICE, actor="erin", reason="abort", now=START + 100,
                                             holder="erin")):
            with pytest.raises(RollbackClaimed, match="being rolled back by hook") as refused:
                claim()
            # The claim is on the wall clock (the rollout clock may run hours ahead under `rollway up`).
            assert f"its claim held until {utc(START + 50 + LEASE)} (wall clock) unless renewed" in str(refused.value)
        assert ledger.get(SERVICE) == renewed
        # The hook died: its claim lapses, and the next rollback takes it over to finish the work.
        taken = ledger.claim_rollback(SERVICE, holder="erin", now=START + 50 + LEASE + 1, lease_seconds=LEASE)
        assert taken.rollback_holder == "erin"
        with pytest.raises(RollbackClaimed, match="by erin"):
            ledger.claim_rollback(SERVICE, holder="hook", now=START + 50 + LEASE + 2, lease_seconds=LEASE)
        # A lease of 0 gives the claim up (a rollback that failed a step): the next one need not wait.
        released = ledger.claim_rollback(SERVICE, holder="erin", now=START + 120, lease_seconds=0)
        assert (released.rollback_holder, released.rollback_expires) == (None, 0.0)
        assert ledger.claim_rollback(SERVICE, holder="hook", now=START + 121, lease_seconds=LEASE).rollback_holder == "hook"

    def test_a_takeover_of_a_lapsed_claim_is_in_the_history_and_a_renewal_is_not(self, ledger):
        """A rollback that finished the work of one that died (its claim lapsed) left no trace in
        the history: the reports could not show who finished the rollback, nor whose had stopped."""
        first = started(ledger)
        begin_rollback(ledger, SERVICE, actor="hook", reason="cancelled", now=START + 1, rollout=first.rollout_id,
                       holder="hook (run a)", lease_seconds=LEASE)
        renewed = ledger.claim_rollback(SERVICE, holder="hook (run a)", now=START + 20, lease_seconds=LEASE,
                                        rollout=first.rollout_id, at=START + 20)
        assert [t.kind for t in renewed.history] == ["rollback-start"]  # its own claim renewed: nothing to say
        taken = ledger.claim_rollback(SERVICE, holder="erin (run b)", now=START + 20 + LEASE + 1,
                                      lease_seconds=LEASE, rollout=first.rollout_id, at=START + 500)
        entry = taken.history[-1]
        assert (entry.kind, entry.actor, entry.at) == ("takeover", "erin (run b)", START + 500)  # the rollout clock
        assert entry.comment == (f"took the rollback over from hook (run a), whose claim lapsed at "
                                 f"{utc(START + 20 + LEASE)} (wall clock)")
        assert taken.rollback_holder == "erin (run b)" and ledger.get(SERVICE) == taken
        renewed = ledger.claim_rollback(SERVICE, holder="erin (run b)", now=START + 90, lease_seconds=LEASE)
        assert renewed.history == taken.history
        released = ledger.claim_rollback(SERVICE, holder="erin (run b)", now=START + 91, lease_seconds=0)
        free = ledger.claim_rollback(SERVICE, holder="carol (run c)", now=START + 92, lease_seconds=LEASE)
        assert free.history == released.history == taken.history  # a claim given up is taken from no one

    def test_of_two_rollbacks_taking_over_a_lapsed_claim_one_does_and_it_alone_is_recorded(self, ledger):
        first = started(ledger)
        begin_rollback(ledger, SERVICE, actor="hook", reason="cancelled", now=START + 1, holder="hook",
                       lease_seconds=LEASE)
        outcomes = together(*(lambda holder=holder: ledger.claim_rollback(
            SERVICE, holder=holder, now=START + 2 + LEASE, lease_seconds=LEASE, rollout=first.rollout_id)
            for holder in ("erin", "carol")))
        won = [o for o in outcomes if isinstance(o, RolloutRecord)]
        assert len(won) == 1 and sum(isinstance(o, RollbackClaimed) for o in outcomes) == 1, outcomes
        assert [(t.kind, t.actor) for t in ledger.get(SERVICE).history if t.kind == "takeover"] == [
            ("takeover", won[0].rollback_holder)]

    def test_intent_without_a_holder_leaves_a_live_claim_alone(self, ledger):
        """`rollway abort` records the person's intent before it stops the owning run; the claim stays whose it was."""
        first = started(ledger)
        begin_rollback(ledger, SERVICE, actor="hook", reason="failed", now=START + 1, holder="hook",
                       lease_seconds=LEASE)
        intent = begin_rollback(ledger, SERVICE, actor="erin", reason="aborted by erin", now=START + 2,
                                rollout=first.rollout_id)
        assert (intent.rollback_holder, intent.rollback_expires) == ("hook", START + 1 + LEASE)

    def test_a_rollback_begun_again_after_its_holder_died_takes_it_over_and_keeps_the_first_start(self, ledger):
        """The hook's rollback died after recording its start; the monitor, which read the rollout
        before that, began its own once the hook's claim lapsed: a second rollback-start, by the
        monitor, made both reports name the monitor as what triggered the rollback."""
        first = started(ledger)
        begin_rollback(ledger, SERVICE, actor="state hook on_failure", reason="run failed", now=START + 1,
                       rollout=first.rollout_id, holder="hook (run a)", lease_seconds=LEASE)
        taken = begin_rollback(ledger, SERVICE, actor="monitor", reason="5xx over 5%", now=START + 500,
                               rollout=first.rollout_id, holder="monitor (run b)", lease_seconds=LEASE,
                               wall=START + 2 + LEASE)
        assert [(t.kind, t.actor) for t in taken.history] == [("rollback-start", "state hook on_failure"),
                                                               ("takeover", "monitor (run b)")]
        assert taken.history[-1].at == START + 500 and taken.history[-1].comment == (
            f"took the rollback over from hook (run a), whose claim lapsed at {utc(START + 1 + LEASE)} (wall clock)")
        assert (taken.rollback_holder, taken.rollback_expires) == ("monitor (run b)", START + 2 + 2 * LEASE)
        assert ledger.get(SERVICE) == taken
        # A claim nobody holds (given up after a failed step) is taken from no one: nothing to record.
        released = ledger.claim_rollback(SERVICE, holder="monitor (run b)", now=START + 3 + LEASE, lease_seconds=0)
        again = begin_rollback(ledger, SERVICE, actor="judge", reason="errors", now=START + 600,
                               holder="judge (run c)", lease_seconds=LEASE, wall=START + 4 + LEASE)
        assert again.history == released.history and again.rollback_holder == "judge (run c)"

    def test_intent_on_a_rollback_under_way_records_no_second_start(self, ledger):
        """`rollway abort` read the rollout just before the hook's rollback began: its intent is not
        what triggered the rollback, and writes nothing (its rollback flow takes the claim after)."""
        first = started(ledger)
        begun = begin_rollback(ledger, SERVICE, actor="state hook on_failure", reason="failed", now=START + 1,
                               holder="hook", lease_seconds=LEASE)
        intent = begin_rollback(ledger, SERVICE, actor="erin", reason="aborted by erin", now=START + 2,
                                rollout=first.rollout_id)
        assert intent == begun == ledger.get(SERVICE)

    def test_only_a_rollback_under_way_can_be_claimed(self, ledger):
        first = started(ledger)
        with pytest.raises(LedgerError, match="no rollback has begun"):
            ledger.claim_rollback(SERVICE, holder="erin", now=START + 1, lease_seconds=LEASE)
        begin_rollback(ledger, SERVICE, actor="hook", reason="failed", now=START + 1, holder="hook")
        done = ledger.record(SERVICE, owner=None, now=START + 2, transition=step(START + 2, "rollback", "hook"),
                             phase=RolloutPhase.ROLLED_BACK, rollback_holder=None)
        assert done.rollback_holder is None
        with pytest.raises(RolloutClosed, match="already rolled back by hook"):
            ledger.claim_rollback(SERVICE, holder="erin", now=START + 3, lease_seconds=LEASE, rollout=first.rollout_id)
        assert ledger.get(SERVICE) == done

    def test_a_rollbacks_end_keeps_its_message_id_and_restored_task_definition(self, ledger):
        started(ledger)
        end = step(START + 1, "rollback", "erin", to_weights=Weights(stable=100, canary=0), message_id="sns-1",
                   task_definition="webordinary-edit-task:3")
        stored = ledger.record(SERVICE, owner=None, now=START + 1, transition=end, phase=RolloutPhase.ROLLED_BACK)
        assert ledger.get(SERVICE).history[-1] == end == stored.history[-1]


class TestFakeLedger(LedgerContract, RollbackClaimContract):
    @pytest.fixture
    def ledger(self) -> FakeLedger:
        return FakeLedger()

    def test_it_lists_the_operations_made(self, ledger):
        started(ledger)
        ledger.record(SERVICE, owner="run-1", now=START, transition=step(START, "shift"))
        assert [c.split()[0] for c in ledger.calls] == ["create", "record"]


def test_a_new_rollout_id_sorts_after_the_newest_even_from_a_clock_behind_it():
    newest = new_rollout_id(START + 3600)  # stamped by a clock an hour ahead of this one
    assert newest.startswith("20270115T090000Z")
    for now in (START, START + 3600, START + 3600.5):
        made = new_rollout_id(now, after=newest)
        assert made > newest and made.startswith("20270115T090001Z"), made
    assert new_rollout_id(START + 7200, after=newest).startswith("20270115T100000Z")  # ahead: its own time
    assert new_rollout_id(START, after="legacy-7").startswith("20270115T080000Z")  # not ours: left to the ledger


@pytest.mark.parametrize("phase,kinds,decommission,expected", [
    (RolloutPhase.PROGRESSING, ["start"], True, True),
    (RolloutPhase.PAUSED, ["start"], True, True),
    (RolloutPhase.ROLLING_BACK, ["start", "rollback-start"], True, True),
    (RolloutPhase.ROLLED_BACK, ["start", "rollback"], True, False),
    # Promoted, monitoring owed: the old service still runs, so abort and hooks may roll back.
    (RolloutPhase.PROMOTED, ["start", "promote"], True, True),
    (RolloutPhase.PROMOTED, ["start", "promote", "decommission"], True, False),
    (RolloutPhase.PROMOTED, ["start", "promote"], False, False),  # no window in this plan
])
def test_open_for_rollback(phase, kinds, decommission, expected):
    from rollway.ledger import open_for_rollback

    spec = RolloutSpec(image="webordinary/edit-container:v2", stages=[Stage(weight=w) for w in (5, 100)],
                       phases=[WeeklyPhase(name="all", weights=(5, 100), decommission=decommission)])
    record = rollout(phase=phase, history=tuple(step(START + i, kind) for i, kind in enumerate(kinds)))
    assert open_for_rollback(spec, record) is expected


@pytest.mark.parametrize("phase,kinds,expected", [
    (RolloutPhase.ROLLING_BACK, ["rollback-start"], None),
    (RolloutPhase.ROLLING_BACK, ["rollback-start", "notifying"], 1),  # died between the publish and its record
    (RolloutPhase.ROLLING_BACK, ["rollback-start", "notifying", "takeover", "notifying"], 3),  # the newest
    (RolloutPhase.ROLLING_BACK, ["rollback-start", "notifying", "notified"], None),  # sent, and recorded
    (RolloutPhase.ROLLING_BACK, ["rollback-start", "notifying", "notice-failed"], None),  # SNS refused it
    (RolloutPhase.ROLLING_BACK, ["rollback-start", "notifying", "notice-unanswered"], 1),  # SNS's answer lost
    # A later run's notice SNS refused paged nobody; the earlier one, whose answer was lost, may have.
    (RolloutPhase.ROLLING_BACK, ["rollback-start", "notifying", "notice-unanswered", "notifying", "notice-failed"], 1),
    (RolloutPhase.ROLLING_BACK, ["rollback-start", "notifying", "notice-unanswered", "notifying", "notified"], None),
    (RolloutPhase.ROLLED_BACK, ["rollback-start", "notifying", "rollback"], None),  # that rollback is over
])
def test_notice_unconfirmed(phase, kinds, expected):
    from rollway.ledger import notice_unconfirmed

    record = rollout(phase=phase, history=tuple(step(START + i, kind) for i, kind in enumerate(kinds)))
    assert notice_unconfirmed(record, record.rollout_id) == (None if expected is None else record.history[expected])
    assert notice_unconfirmed(record, "another-rollout") is None


@pytest.mark.parametrize("holder,expires,now,lapsed", [
    ("erin (flow run calm-heron)", START + 60, START + 61, True),  # ran out before now: its run stopped renewing it
    ("erin (flow run calm-heron)", START + 60, START + 60, False),  # runs out at now: still live
    ("erin (flow run calm-heron)", START + 60, START + 59, False),  # renewed past now
    ("erin (flow run calm-heron)", START + 60, None, False),  # the time not told: no lapse is claimed
    (None, 0.0, START + 61, False),  # nobody holds it (given up, or released): nothing to lapse
    (None, START + 60, START + 61, False),
    ("", START + 60, START + 61, False),
    (None, 0.0, None, False),
])
def test_claim_has_lapsed(holder, expires, now, lapsed):
    """One answer to "has this rollback's claim lapsed at ``now``" for the rollback that would take
    it over (``check_rollback_claim``), the incident report and `rollway status`."""
    from rollway.ledger import check_rollback_claim, claim_has_lapsed

    record = rollout(phase=RolloutPhase.ROLLING_BACK, rollback_holder=holder, rollback_expires=expires)
    assert claim_has_lapsed(record, now) is lapsed
    if holder and now is not None:
        # Another rollback is turned away exactly while the claim is live.
        if lapsed:
            check_rollback_claim(record, "frank (flow run bold-wren)", now)
        else:
            with pytest.raises(RollbackClaimed, match="being rolled back by erin"):
                check_rollback_claim(record, "frank (flow run bold-wren)", now)


def test_a_rollback_claimed_error_survives_pickling_with_its_holder_and_wait() -> None:
    """A failed run's result may be persisted (pickled) and read back by its hook: a
    RollbackClaimed could not be rebuilt (its keyword-only fields), and the hook would take it for
    an unknown failure, rolling back and waiting for the same claim all over again."""
    import pickle

    from rollway.ledger import RollbackClaimed, RolloutEnded

    sent = RollbackClaimed("held by erin", holder="erin (flow run calm-heron)", expires=1234.5, waited=900.0)
    got = pickle.loads(pickle.dumps(sent))
    assert isinstance(got, RollbackClaimed) and isinstance(got, RolloutEnded)
    assert (str(got), got.holder, got.expires, got.waited) == ("held by erin", "erin (flow run calm-heron)", 1234.5,
                                                               900.0)
