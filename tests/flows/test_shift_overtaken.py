"""A run's shift overtaken by a rollback someone else began (flows/engine.py, ``journal.overtaken``).

The run claimed the rollout for its tick, moved the weights, and found the rollout rolling back
when it came to record the shift (RolloutEnded). Its shift may have landed after that rollback
put the traffic back, so the run must take the traffic off the canary before it stops. It used
to call its own rollback directly, which paged people a second time (and, with the rollback
still to be carried out, its hook then rolled back again and paged a third). Now it goes
through the rollback's claim: people get one page, the rollout one rollback record.
"""
from __future__ import annotations

import logging
from typing import Callable

import pytest

from flows.progressive import progressive_rollout
from flows.rollback import CLAIM_WAIT_SECONDS
from rollway.fakes import FakeLedger
from rollway.ledger import CLAIM_SECONDS, RollbackClaimed, RolloutEnded, Transition, begin_rollback
from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.flows.fake_env import STABLE_TD, fake_environment, pages
from tests.flows.test_refusals import hooks_and_flows_see
from tests.flows.test_rollback_claim import SPEC, FinishesWhileWatched, OtherRollback

ERIN = "erin (flow run calm-heron, 7f1c...)"


def shift_raced_by(monkeypatch, ledger, erin_acts, prepare=None, spec=SPEC):
    """A progressive rollout of ``spec`` on fakes whose first shift to the canary meets erin's
    rollback: ``erin_acts(env, rollout_id)`` runs just before the run's weights reach the load
    balancer. ``prepare(env)``, if given, runs first (to give the fakes a fault). The run stops on
    a RolloutEnded; returns the env."""
    return raced_run(monkeypatch, ledger, erin_acts, prepare, spec=spec)[0]


def raced_run(monkeypatch, ledger, erin_acts, prepare=None, raises=RolloutEnded, spec=SPEC):
    """As ``shift_raced_by``, the run stopping on ``raises``; returns the env and that error."""
    env = fake_environment()
    env.ledger = ledger
    hooks_and_flows_see(monkeypatch, env)
    if prepare is not None:
        prepare(env)
    real_set = env.router.set_weights
    raced: list[bool] = []

    def set_weights(weights):
        if weights.canary > 0 and not raced:
            raced.append(True)
            erin_acts(env, env.ledger.get(env.targets.canary_service).rollout_id)
        return real_set(weights)

    env.router.set_weights = set_weights
    with pytest.raises(raises) as stopped:
        progressive_rollout(spec=spec.model_dump(mode="json"), phased=False)
    assert raced, "the rollout never shifted"
    return env, stopped.value


def rollback_pages(env) -> list[str]:
    """The full rollback pages sent (not the follow-up a quiet restore may send)."""
    return [subject for subject, _ in env.notifier.messages if subject.startswith("Rollback: ")]


def follow_ups(env) -> list[str]:
    return [body for subject, body in env.notifier.messages if subject.startswith("Rollback follow-up: ")]


def ended_once(env):
    """The traffic is off the canary and the rollout holds one rollback record."""
    record = env.ledger.get(env.targets.canary_service)
    assert env.router.weights == Weights(stable=100, canary=0), env.router.calls
    assert env.deployer.services[env.targets.canary_service].desired == 0
    assert record.phase is RolloutPhase.ROLLED_BACK
    assert [t.kind for t in record.history].count("rollback") == 1, [t.kind for t in record.history]
    assert [t.kind for t in record.history].count("rollback-start") == 1, [t.kind for t in record.history]
    return record


def test_a_shift_landing_after_a_finished_rollback_is_put_back_without_a_second_page(monkeypatch):
    """Erin's rollback began, moved the traffic back, paged and ended; then the run's shift set
    5% on the canary again. The run puts it back, quietly: erin's page is the only one."""

    def erin_rolls_back(env, rollout_id):
        service = env.targets.canary_service
        begin_rollback(env.ledger, service, actor="erin", reason="aborted by erin", now=env.clock.now(),
                       rollout=rollout_id, holder=ERIN)
        OtherRollback(env, ERIN).finish(env.ledger, service, rollout_id)

    env = shift_raced_by(monkeypatch, FakeLedger(), erin_rolls_back)

    assert rollback_pages(env) == ["Rollback: " + env.targets.canary_service], env.notifier.messages
    assert ended_once(env).history[-1].actor == "erin"
    assert env.router.calls.count("set_weights 100/0") == 2, env.router.calls  # erin's, and the run's put-back


def test_a_quiet_put_back_after_a_finished_rollback_sends_one_short_follow_up(monkeypatch):
    """Erin's page said "100% on stable"; the run's shift made that untrue for a while. The run's
    quiet put-back tells people so, once, naming the rollout, what it put back and why; it is
    not the rollback page again."""

    def erin_rolls_back(env, rollout_id):
        service = env.targets.canary_service
        begin_rollback(env.ledger, service, actor="erin", reason="aborted by erin", now=env.clock.now(),
                       rollout=rollout_id, holder=ERIN)
        OtherRollback(env, ERIN).finish(env.ledger, service, rollout_id)

    env = shift_raced_by(monkeypatch, FakeLedger(), erin_rolls_back)

    assert len(rollback_pages(env)) == 1, env.notifier.messages
    record = ended_once(env)
    [notice] = follow_ups(env)
    assert record.rollout_id in notice and "erin" in notice and "msg-2" in notice, notice  # msg-1: "Rollout starting"
    assert "5% of the traffic went to " + env.targets.canary_service in notice, notice
    assert "100/0 read back" in notice and "not a second rollback" in notice, notice
    assert len(pages(env)) == 2, env.notifier.messages


def erin_ends(env, ledger, service, rollout_id) -> None:
    """Erin's rollback, which moved the traffic back long ago, ends: it pages and records its end."""
    message_id = env.notifier.notify(f"Rollback: {service}", f"rolled back by {ERIN}: 100% on stable")
    now = env.clock.now()
    FakeLedger.record(ledger, service, owner=None, now=now, rollout=rollout_id,
                      transition=Transition(at=now, kind="rollback", actor="erin", comment="aborted by erin",
                                            to_weights=Weights(stable=100, canary=0), message_id=message_id,
                                            task_definition=STABLE_TD),
                      phase=RolloutPhase.ROLLED_BACK, weights=Weights(stable=100, canary=0), rollback_holder=None)


class ErinStillActing(FakeLedger):
    """Erin's rollback holds the claim and renews it (at every read, as her claim keeper would)
    past the run's whole wait for her (CLAIM_WAIT_SECONDS on the fake clock). With
    ``ends_after_wait`` it ends just after the run stopped waiting (at its next read)."""

    def __init__(self, ends_after_wait: bool = False) -> None:
        super().__init__()
        self.env, self.ends_after_wait = None, ends_after_wait
        self.refused_at: float | None = None  # when the run was first refused erin's claim
        self.late_reads = 0

    def claim_rollback(self, service, **kwargs):
        try:
            return super().claim_rollback(service, **kwargs)
        except RollbackClaimed:
            if self.refused_at is None:
                self.refused_at = self.env.wall()
            raise

    def get(self, service):
        got = super().get(service)
        if got is None or got.phase is not RolloutPhase.ROLLING_BACK or got.rollback_holder != ERIN:
            return got
        if self.ends_after_wait and self.refused_at is not None \
                and self.env.wall() >= self.refused_at + CLAIM_WAIT_SECONDS:
            self.late_reads += 1
            if self.late_reads == 2:  # the first is the wait's last look, which gives up
                erin_ends(self.env, self, service, got.rollout_id)
                return super().get(service)
        return super().claim_rollback(service, holder=ERIN, now=self.env.wall(), lease_seconds=CLAIM_SECONDS,
                                      rollout=got.rollout_id)


def erin_moves_the_traffic_first(ledger):
    def erin_acts(env, rollout_id):
        ledger.env = env
        begin_rollback(ledger, env.targets.canary_service, actor="erin", reason="aborted by erin",
                       now=env.clock.now(), rollout=rollout_id, holder=ERIN, wall=env.wall())
        env.router.set_weights(Weights(stable=100, canary=0))  # before the run's 5% lands
    return erin_acts


def test_a_shift_outwaited_by_a_rollback_still_under_way_takes_the_traffic_off_the_canary(monkeypatch, caplog):
    """Erin's rollback moved the traffic back, then the run's shift put 5% on the canary, and her
    rollback is still under way (claim renewed) after the run's 15-minute wait. The run used to
    stop there, and its hook to wait again: 5% stayed on the canary. Now the run takes it off
    (stable's capacity and health first), leaves the canary, the flags and the page to erin, and
    says so loudly in its log and its error."""
    ledger = ErinStillActing()
    with caplog.at_level(logging.INFO):
        env, stopped = raced_run(monkeypatch, ledger, erin_moves_the_traffic_first(ledger), raises=RollbackClaimed)

    assert "this run put it back on" in str(stopped), stopped
    assert env.router.weights == Weights(stable=100, canary=0), env.router.calls
    assert env.router.calls.count("set_weights 100/0") == 2, env.router.calls  # erin's, and the run's
    assert ledger.refused_at is not None and env.wall() >= ledger.refused_at + CLAIM_WAIT_SECONDS
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLING_BACK and record.rollback_holder == ERIN  # still erin's to finish
    assert env.deployer.services[env.targets.canary_service].desired > 0  # retiring the canary is erin's step too
    assert pages(env) == []  # erin pages when she ends; the run pages nobody
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("this run put it back on" in m and ERIN in m and "95/5" in m for m in loud), loud


def test_a_rollback_ending_just_after_the_wait_ran_out_gets_the_quiet_put_back(monkeypatch):
    """Erin's rollback ends just after the run stopped waiting for it: the run reads the rollout
    again, finds it rolled back, and puts its 5% back as after any finished rollback (one
    follow-up, not a second page). Its hook used to find the rollout rolled back and leave the
    5% on the canary."""
    ledger = ErinStillActing(ends_after_wait=True)
    env = shift_raced_by(monkeypatch, ledger, erin_moves_the_traffic_first(ledger))

    assert ledger.late_reads >= 2, "erin's rollback did not end after the wait"
    assert ended_once(env).history[-1].actor == "erin"  # and the 5% is off the canary
    assert len(rollback_pages(env)) == 1 and len(follow_ups(env)) == 1, env.notifier.messages


def test_a_shift_overtaken_by_a_rollback_under_way_waits_for_it_and_pages_nobody(monkeypatch, caplog):
    """Erin's rollback holds the claim and is still acting when the run finds its shift
    overtaken: the run waits for it to end (as a second rollback does), then makes sure the
    traffic is off the canary, paging nobody."""
    ledger = FinishesWhileWatched()

    def erin_begins(env, rollout_id):
        ledger.other = OtherRollback(env, ERIN)
        begin_rollback(ledger, env.targets.canary_service, actor="erin", reason="aborted by erin",
                       now=env.clock.now(), rollout=rollout_id, holder=ERIN)

    with caplog.at_level(logging.INFO):
        env = shift_raced_by(monkeypatch, ledger, erin_begins)

    assert rollback_pages(env) == ["Rollback: " + env.targets.canary_service], env.notifier.messages
    assert ended_once(env).history[-1].message_id == "msg-2"  # erin's page, kept with her rollback's end
    said = [r.getMessage() for r in caplog.records]
    assert any(ERIN in m and "waiting up to" in m for m in said), said
    assert follow_ups(env) == []  # erin's rollback moved the run's 5% back itself: her page was true


def test_a_shift_overtaken_by_an_abort_not_yet_carried_out_carries_it_out_and_pages_once(monkeypatch):
    """`rollway abort` recorded erin's intent (no claim yet: its rollback flow has not begun).
    The run takes the claim and carries the rollback out, paging once and recording its end;
    the abort's rollback then finds it done. Its hook rolls back nothing."""

    def erin_aborts(env, rollout_id):
        begin_rollback(env.ledger, env.targets.canary_service, actor="erin", reason="aborted by erin: errors",
                       now=env.clock.now(), rollout=rollout_id)

    env = shift_raced_by(monkeypatch, FakeLedger(), erin_aborts)

    assert len(rollback_pages(env)) == 1, env.notifier.messages
    record = ended_once(env)
    assert record.history[-1].message_id == "msg-" + str(len(env.notifier.messages))



def test_an_overtaken_shift_whose_rollout_was_followed_by_another_moves_nothing():
    """By the time the run handles its overtaken shift, its rollout was rolled back and ended and
    the next one began: the load balancer's traffic may be that rollout's, so the run moves
    nothing and tells nobody (as its journal does when its own write finds the next rollout). It
    used to put "its" shift back, and could take the new rollout's canary traffic away."""
    from prefect import flow

    from flows.progressive import create_rollout
    from flows.rollback import rollback_overtaken
    from rollway.ledger import RolloutSuperseded
    from rollway.spec import RolloutSpec, Stage

    env = fake_environment()
    env.ledger = FakeLedger()
    service = env.targets.canary_service
    first = create_rollout(env, SPEC, owner="run-1", actor="alice", lease_seconds=600)
    begin_rollback(env.ledger, service, actor="erin", reason="aborted by erin", now=env.clock.now(),
                   rollout=first.rollout_id, holder=ERIN)
    OtherRollback(env, ERIN).finish(env.ledger, service, first.rollout_id)
    env.clock.sleep(1)
    create_rollout(env, RolloutSpec(image="app:3", stages=[Stage(weight=5), Stage(weight=100)]), owner="run-2",
                   actor="frank", lease_seconds=600)
    called: list = []

    @flow
    def handle():
        rollback_overtaken(env, "shift overtaken", actor="alice", rollout=first.rollout_id,
                           rollback=lambda *a, **k: called.append((a, k)))

    with pytest.raises(RolloutSuperseded, match="not this run's to move"):
        handle()
    assert called == [] and follow_ups(env) == []


def next_rollout_begins_once_rolled_back(env) -> list:
    """Frank's next rollout begins at the first look at stable's health that finds the rollout
    rolled back (a put-back waiting for stable's health checks). Returns the list that then holds
    his rollout's record."""
    from rollway.ledger import RolloutRecord, new_rollout_id
    from rollway.spec import RolloutSpec, Stage

    service, real_healthy = env.targets.canary_service, env.router.healthy_targets
    began: list[RolloutRecord] = []

    def healthy_targets(version):
        record = env.ledger.get(service)
        if version == "stable" and record.phase is RolloutPhase.ROLLED_BACK and not began:
            now = env.clock.now()
            spec = RolloutSpec(image="webordinary/edit-container:3.0.0", stages=[Stage(weight=5), Stage(weight=100)])
            began.append(RolloutRecord(
                service=service, rollout_id=new_rollout_id(now, after=record.rollout_id), image=spec.image,
                spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
                weights=Weights(stable=100, canary=0), previous_task_definition=STABLE_TD, stable_desired=4))
            env.ledger.create(began[0], owner="run-2 (frank)", now=now, lease_seconds=600)
        return real_healthy(version)

    env.router.healthy_targets = healthy_targets
    return began


def test_a_quiet_put_back_stops_before_its_next_step_once_the_next_rollout_begins(monkeypatch, caplog):
    """Erin's rollback ended; the run's shift then put 5% on the canary, and its quiet restore
    waits for stable's health checks before moving it back. Meanwhile frank's next rollout begins:
    the traffic and the canary are his rollout's now. The restore used to go on regardless, moving
    his traffic, retiring his canary and sending a follow-up; now it re-reads the rollout before
    each step, stops before the move, moves nothing, pages nobody and says what it did."""
    from rollway.ledger import RolloutSuperseded

    env = fake_environment()
    env.ledger = FakeLedger()
    hooks_and_flows_see(monkeypatch, env)
    service = env.targets.canary_service
    real_set = env.router.set_weights
    raced: list[bool] = []
    began = next_rollout_begins_once_rolled_back(env)

    def set_weights(weights):
        if weights.canary > 0 and not raced:
            raced.append(True)
            rollout_id = env.ledger.get(service).rollout_id
            begin_rollback(env.ledger, service, actor="erin", reason="aborted by erin", now=env.clock.now(),
                           rollout=rollout_id, holder=ERIN)
            OtherRollback(env, ERIN).finish(env.ledger, service, rollout_id)
        return real_set(weights)

    env.router.set_weights = set_weights
    with caplog.at_level(logging.INFO), pytest.raises(RolloutSuperseded) as stopped:
        progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False)

    assert began, "the next rollout never began during the restore"
    said = " ".join(str(stopped.value).split())
    assert f"rollout {began[0].rollout_id} of {service} began while this run put the traffic back" in said, said
    assert "stopped before it would move the traffic to" in said and "Done before it stopped: nothing" in said, said
    assert env.router.calls.count("set_weights 100/0") == 1, env.router.calls  # erin's only
    assert env.router.weights == Weights.canary_at(5)  # as it stood when frank's rollout began
    assert rollback_pages(env) == ["Rollback: " + service] and follow_ups(env) == [], env.notifier.messages
    newest = env.ledger.get(service)
    assert newest.rollout_id == began[0].rollout_id and newest.phase is RolloutPhase.PROGRESSING
    assert any("not rolling back after run" in r.getMessage() and "no longer the newest" in r.getMessage()
               for r in caplog.records), "the run's hook rolled back frank's rollout"


def test_the_hook_of_a_run_that_outwaited_a_rollback_under_way_does_not_wait_for_it_again(monkeypatch, caplog):
    """The run waited its 15 minutes for erin's rollback (still under way, claim renewed), took
    its 5% off the canary and failed saying so. Its hook used to run a rollback that waited
    another 15 minutes for the same claim before giving up too: the run and its hook ended half
    an hour after the shift. Now the hook waits only a claim's lease and a look (70 s), long
    enough to see erin still renews her claim, and leaves the rollout to her."""
    ledger = ErinStillActing()
    with caplog.at_level(logging.INFO):
        env = shift_raced_by(monkeypatch, ledger, erin_moves_the_traffic_first(ledger))

    said = [r.getMessage() for r in caplog.records]
    waits = [m for m in said if "waiting up to" in m and ERIN in m]
    assert len(waits) == 2 and "waiting up to 900 s" in waits[0] and "waiting up to 70 s" in waits[1], waits
    assert env.wall() - ledger.refused_at <= CLAIM_WAIT_SECONDS + CLAIM_SECONDS + 10, env.wall() - ledger.refused_at
    assert any("waited 900 s for the rollback by " + ERIN + " already" in m for m in said), said
    assert any("not rolling back after run" in m and "still under way after 70 s" in m for m in said), said
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLING_BACK and record.rollback_holder == ERIN  # still erin's to finish
    assert pages(env) == []


class ErinDiesAfterTheWait(ErinStillActing):
    """As ErinStillActing, but erin's process dies just as the run stops waiting for her: her
    claim is no longer renewed, and lapses CLAIM_SECONDS after her last renewal."""

    def get(self, service):
        if self.refused_at is not None and self.env.wall() >= self.refused_at + CLAIM_WAIT_SECONDS:
            return FakeLedger.get(self, service)
        return super().get(service)


def test_the_hook_of_a_run_that_outwaited_a_rollback_whose_holder_then_died_takes_it_over(monkeypatch, caplog):
    """Erin's process dies right after the run gave up waiting for her: the hook's short wait
    sees her claim lapse, takes it over and finishes the rollback, paging once."""
    ledger = ErinDiesAfterTheWait()
    with caplog.at_level(logging.INFO):
        env = shift_raced_by(monkeypatch, ledger, erin_moves_the_traffic_first(ledger))

    said = [r.getMessage() for r in caplog.records]
    assert any("waiting up to 70 s" in m for m in said), said
    assert any("stopped renewing its claim: this one takes it over" in m for m in said), said
    record = ended_once(env)
    assert record.history[-1].actor.startswith("state hook"), record.history[-1]
    assert len(rollback_pages(env)) == 1, env.notifier.messages


def outwaited_and_stuck(monkeypatch, caplog, prepare, spec=SPEC):
    """As above (erin's rollback still under way after the run's wait, 5% on the canary), with a
    fault ``prepare(env)`` gives the fakes: the run's move of the traffic off the canary fails.
    Returns the env, erin's ledger and the log."""
    import flows.engine as engine
    from tests.flows.test_healthy_wait import WallTime

    monkeypatch.setattr(engine, "time", WallTime())  # the health-check wait's wall time, on a fake
    ledger = ErinStillActing()
    with caplog.at_level(logging.INFO):
        env = shift_raced_by(monkeypatch, ledger, erin_moves_the_traffic_first(ledger), prepare, spec)
    return env, ledger, list(caplog.records)


def stuck_on_the_canary(env, ledger, records, why: str) -> str:
    """What a person is told when the run could not move its 5% off the canary, and what it left."""
    errors = [" ".join(r.getMessage().split()) for r in records if r.levelno >= logging.ERROR
              and not r.getMessage().startswith("Encountered exception")]  # Prefect's own line, the same error
    [said] = [m for m in errors if "could NOT move it back" in m]
    assert ERIN in said and "5% of the traffic to" in said and why in said, said
    # Not `rollway abort` once that rollback has ended: it finds the rollout rolled back and moves nothing.
    assert (f"Once that rollback has ended, if `rollway status` shows the load balancer still sending traffic to "
            f"{env.targets.canary_service}, run the `rollback` flow" in said), said
    assert "run `rollway abort` once that rollback has ended" not in said, said
    assert not any("this run put it back on" in m for m in errors), errors  # no success claimed
    # Nothing half-done, nobody paged: the 5% is where it was, the canary and the rollback erin's.
    assert env.router.weights == Weights.canary_at(5), env.router.calls
    assert env.router.calls.count("set_weights 100/0") == 1, env.router.calls  # erin's only
    assert env.deployer.services[env.targets.canary_service].desired > 0
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLING_BACK and record.rollback_holder == ERIN
    assert [t.kind for t in record.history].count("rollback") == 0
    assert pages(env) == []
    said_after = [r.getMessage() for r in records]
    # The hook waited a lease to see erin alive (not 15 minutes again), and left the rollout to her.
    assert any("not rolling back after run" in m and "still under way after 70 s" in m for m in said_after), said_after
    return said


def test_a_traffic_move_that_finds_no_healthy_stable_targets_says_so_and_pages_nobody(monkeypatch, caplog):
    """The run outwaited erin's rollback with 5% on the canary, and stable has no healthy targets
    to take it: it refuses to send traffic there, fails saying the 5% is still on the canary and
    why, and what to run once erin's rollback ends; it moves nothing and pages nobody."""

    def stable_unhealthy(env):
        env.router.healthy["stable"] = 0

    env, ledger, records = outwaited_and_stuck(monkeypatch, caplog, stable_unhealthy)
    stuck_on_the_canary(env, ledger, records, "the stable target group has no healthy targets after 300 s")


def test_a_traffic_move_whose_write_fails_says_so_and_pages_nobody(monkeypatch, caplog):
    """As above, stable healthy, but the load balancer refuses the run's write (ModifyRule throttled)."""

    def refuses_after_erin(env):
        real_set = env.router.set_weights
        moves: list[Weights] = []

        def set_weights(weights):
            if weights == Weights(stable=100, canary=0):
                moves.append(weights)
                if len(moves) > 1:  # erin's went through
                    raise RuntimeError("ModifyRule: Throttling: Rate exceeded")
            return real_set(weights)

        env.router.set_weights = set_weights

    env, ledger, records = outwaited_and_stuck(monkeypatch, caplog, refuses_after_erin)
    stuck_on_the_canary(env, ledger, records, "ModifyRule: Throttling: Rate exceeded")


def read_fails_after_the_runs_move(fail: Callable[[], None]) -> Callable:
    """What ``outwaited_and_stuck`` does to the load balancer: the run's move to stable (after erin's)
    is taken, and the read after it calls ``fail`` (which raises, or waits) first; reads after that
    one are answered."""
    def after_the_runs_move(env):
        real_set, real_get = env.router.set_weights, env.router.get_weights
        moves: list[Weights] = []
        failing: list[bool] = []

        def set_weights(weights):
            held = real_set(weights)
            if weights == Weights(stable=100, canary=0):
                moves.append(weights)
                if len(moves) > 1:  # erin's went through; the run's is taken, its read-back fails
                    failing.append(True)
            return held

        def get_weights():
            if failing:
                failing.clear()  # that read alone: the hook's reads after it are answered
                fail()
            return real_get()

        env.router.set_weights, env.router.get_weights = set_weights, get_weights

    return after_the_runs_move


def sent_back(records) -> str:
    """The run's error line saying it sent the traffic back (one, and none saying it could not)."""
    errors = [" ".join(r.getMessage().split()) for r in records if r.levelno >= logging.ERROR
              and not r.getMessage().startswith("Encountered exception")]  # Prefect's own line, the same error
    assert not any("could NOT move it back" in m for m in errors), errors
    [said] = [m for m in errors if "this run sent it back to" in m]
    return said


def test_a_traffic_move_taken_and_not_read_back_says_it_may_have_landed_and_pages_nobody(monkeypatch, caplog):
    """As above, but the load balancer takes the run's write and does not answer its read-back: the
    move may have landed. Its error said "this run could NOT move it back", beside "done before it
    failed: sent the move of all the traffic to stable (the load balancer took it; not read back)"."""
    import threading

    released = threading.Event()

    # The read-back is given up on after the spec's verify_timeout_seconds, in wall time: 1 s, not 30.
    try:
        env, ledger, records = outwaited_and_stuck(monkeypatch, caplog, read_fails_after_the_runs_move(released.wait),
                                                   spec=SPEC.model_copy(update={"verify_timeout_seconds": 1.0}))
    finally:
        released.set()
    said = sent_back(records)
    t = env.targets
    assert ERIN in said and f"5% of the traffic to {t.canary_service}" in said, said
    assert (f"this run sent it back to {t.stable_service}, which may or may not hold it: the load balancer did not "
            "answer its read-back (the load balancer's weights could not be read back within 1 s "
            "(verify_timeout_seconds): Elastic Load Balancing did not answer; done before it failed: sent the move of "
            f"all the traffic to {t.stable_service} (the load balancer took it; not read back)). It paged nobody."
            in said), said
    assert (f"Once that rollback has ended, if `rollway status` shows the load balancer still sending traffic to "
            f"{t.canary_service}, run the `rollback` flow" in said), said
    assert pages(env) == []
    record = env.ledger.get(t.canary_service)
    assert record.phase is RolloutPhase.ROLLING_BACK and record.rollback_holder == ERIN
    assert env.deployer.services[t.canary_service].desired > 0  # the canary is erin's to retire

@pytest.mark.parametrize(("code", "status", "read", "read_said"), [
    ("Throttling", 400, "refused its read-back for now", "refused the read for now (Throttling: Rate exceeded)"),
    # Failed on AWS's side (an internal error): "refused its read-back for now" was untrue of it.
    ("InternalFailure", 500, "failed its read-back with an error on its own side",
     "failed the read with an error on its own side (InternalFailure: Rate exceeded)"),
])
def test_a_traffic_move_whose_lost_answer_is_read_back_throttled_says_the_read_back_was_refused(monkeypatch,
                                                                                                caplog, code,
                                                                                                status, read,
                                                                                                read_said):
    """As above, but the answer to the run's move is lost, its read-back throttled (or failed on AWS's
    side), and the sends after it throttled too: the move may have landed. Its error said "the load
    balancer did not answer its read-back" beside the read-back's own words, that the load balancer
    refused the read."""
    from botocore.exceptions import ClientError, ReadTimeoutError

    import flows.engine

    # Shorter than a second: the throttled read is not made again (``tasks.traffic.LOOK_AGAIN_SECONDS``).
    monkeypatch.setattr(flows.engine, "LOST_ANSWER_READ_BACK_SECONDS", 0.3)

    def lost_then_throttled(env):
        real_set, real_get = env.router.set_weights, env.router.get_weights
        moves: list[Weights] = []
        throttled: list[bool] = []

        def set_weights(weights):
            if weights == Weights(stable=100, canary=0):
                moves.append(weights)
                if len(moves) > 2:  # the run's sends after its first
                    raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "ModifyRule")
                if len(moves) == 2:  # erin's went through; the run's lands, its answer lost
                    real_set(weights)
                    throttled.append(True)
                    raise ReadTimeoutError(endpoint_url="https://elasticloadbalancing.us-west-2.amazonaws.com/")
            return real_set(weights)

        def get_weights():
            if throttled:
                throttled.clear()  # that read alone: the hook's reads after it are answered
                raise ClientError({"Error": {"Code": code, "Message": "Rate exceeded"},
                                   "ResponseMetadata": {"HTTPStatusCode": status}}, "DescribeRules")
            return real_get()

        env.router.set_weights, env.router.get_weights = set_weights, get_weights

    env, ledger, records = outwaited_and_stuck(monkeypatch, caplog, lost_then_throttled)
    said = sent_back(records)
    t = env.targets
    assert "did not answer" not in said, said
    assert (f"this run sent it back to {t.stable_service}, which may or may not hold it: the load balancer {read} "
            "(the answer to the move was lost" in said), said
    assert f"Elastic Load Balancing {read_said}" in said, said
    assert pages(env) == []


def test_a_traffic_move_taken_whose_read_back_is_denied_says_it_was_sent_back(monkeypatch, caplog):
    """As above, but the run's move is taken and its read-back denied (AccessDenied on DescribeRules):
    the error said "this run could NOT move it back" of a move the load balancer took."""
    from botocore.exceptions import ClientError

    def denied():
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "DescribeRules")

    env, ledger, records = outwaited_and_stuck(monkeypatch, caplog, read_fails_after_the_runs_move(denied))
    said = sent_back(records)
    t = env.targets
    assert (f"this run sent it back to {t.stable_service}, which may or may not hold it: the load balancer took it, "
            "but its read-back was refused (the load balancer took the weights 100/0, but their read-back was refused"
            in said), said
    assert pages(env) == []


def stable_scaled_in_as_the_shift_lands(env, unhealthy: bool = False) -> None:
    """Autoscaling scales stable in to 2 tasks as the run's 5% lands: a later move of the traffic
    off the canary scales it back to 4 (the rollout's count) first. With ``unhealthy``, stable has
    no healthy targets from then on."""
    real_set = env.router.set_weights

    def set_weights(weights):
        held = real_set(weights)
        if weights.canary > 0:
            stable = env.targets.stable_service
            env.deployer.services[stable] = env.deployer.services[stable].model_copy(update={"desired": 2,
                                                                                              "running": 2})
            if unhealthy:
                env.router.healthy["stable"] = 0
        return held

    env.router.set_weights = set_weights


def test_a_traffic_move_that_scaled_stable_before_failing_says_it_did(monkeypatch, caplog):
    """Stable had been scaled in to 2 tasks since the rollout began: the run scales it back to 4
    to carry the traffic, then finds no healthy targets. Its error says the 5% is still on the
    canary and that it scaled stable: a person finding stable at 4 tasks knows who did it."""

    env, ledger, records = outwaited_and_stuck(monkeypatch, caplog,
                                               lambda env: stable_scaled_in_as_the_shift_lands(env, unhealthy=True))
    said = stuck_on_the_canary(env, ledger, records, "no healthy targets after 300 s")
    stable = env.targets.stable_service
    assert f"scaled {stable} to 4" in said, said
    assert env.deployer.services[stable].desired == 4


def test_a_traffic_move_that_fails_after_the_traffic_is_back_says_the_traffic_is_back(monkeypatch, caplog):
    """The run put its 5% back on stable (read back), then found stable scaled in meanwhile and
    could not scale it up again. Its error says the traffic is back and what failed after, not
    that it could not move the traffic."""

    def prepare(env):
        stable = env.targets.stable_service
        real_set, real_update = env.router.set_weights, env.deployer.update_service
        moves: list[Weights] = []

        def set_weights(weights):
            held = real_set(weights)
            if weights == Weights(stable=100, canary=0):
                moves.append(weights)
                if len(moves) == 2:  # the run's move, after erin's: stable is scaled in as it lands
                    env.deployer.services[stable] = env.deployer.services[stable].model_copy(update={"desired": 1})
            return held

        def update_service(service, *, task_definition=None, desired=None):
            if service == stable and len(moves) >= 2:
                raise RuntimeError("UpdateService: Throttling: Rate exceeded")
            return real_update(service, task_definition=task_definition, desired=desired)

        env.router.set_weights, env.deployer.update_service = set_weights, update_service

    env, ledger, records = outwaited_and_stuck(monkeypatch, caplog, prepare)
    errors = [" ".join(r.getMessage().split()) for r in records if r.levelno >= logging.ERROR
              and not r.getMessage().startswith("Encountered exception")]
    [said] = [m for m in errors if "but then failed" in m]
    assert f"this run put it back on {env.targets.stable_service} (100/0, read back), paging nobody" in said, said
    assert "UpdateService: Throttling" in said and "done before it failed: weights 100/0 verified" in said, said
    assert not any("could NOT move it back" in m for m in errors), errors
    assert env.router.weights == Weights(stable=100, canary=0) and pages(env) == []
    assert env.ledger.get(env.targets.canary_service).rollback_holder == ERIN


def test_a_traffic_move_stops_before_moving_once_the_next_rollout_begins(monkeypatch, caplog):
    """The run outwaited erin's rollback with 5% on the canary and scaled stable back to 4 to take
    it; while it waits for stable's health checks, erin's rollback ends and frank's next rollout
    begins: the traffic is his rollout's now. The move used to go on and set 100/0 on his
    rollout, then fail telling people to run `rollway abort`; now it re-reads the rollout before
    the move, stops with RolloutSuperseded saying it scaled stable and moved nothing of frank's,
    and pages nobody."""
    from rollway.ledger import RolloutSuperseded

    ledger = ErinStillActing()
    began: list = []

    def prepare(env):
        service = env.targets.canary_service
        stable_scaled_in_as_the_shift_lands(env)
        began.extend([next_rollout_begins_once_rolled_back(env)])
        real_healthy = env.router.healthy_targets

        def healthy_targets(version):  # the run's wait for stable, after its wait for erin ran out
            if version == "stable" and ledger.refused_at is not None \
                    and env.wall() >= ledger.refused_at + CLAIM_WAIT_SECONDS:
                record = FakeLedger.get(ledger, service)
                if record.phase is RolloutPhase.ROLLING_BACK and record.rollback_holder == ERIN:
                    erin_ends(env, ledger, service, record.rollout_id)
            return real_healthy(version)

        env.router.healthy_targets = healthy_targets

    with caplog.at_level(logging.INFO):
        env, stopped = raced_run(monkeypatch, ledger, erin_moves_the_traffic_first(ledger), prepare,
                                 raises=RolloutSuperseded)

    [frank] = began[0]
    service, stable = env.targets.canary_service, env.targets.stable_service
    said = " ".join(str(stopped).split())
    assert f"rollout {frank.rollout_id} of {service} began while this run" in said, said
    assert f"stopped before it would move the traffic to {stable}" in said, said
    assert f"Done before it stopped: scaled {stable} to 4" in said, said
    assert "moving nothing of that rollout's and notifying nobody" in said and "rollway abort" not in said, said
    assert env.router.weights == Weights.canary_at(5), env.router.calls  # as it stood when frank's rollout began
    assert env.router.calls.count("set_weights 100/0") == 1, env.router.calls  # erin's only
    assert env.deployer.services[stable].desired == 4
    assert rollback_pages(env) == ["Rollback: " + service] and len(pages(env)) == 1, \
        env.notifier.messages  # erin's, as her rollback ended; the run pages nobody
    newest = env.ledger.get(service)
    assert newest.rollout_id == frank.rollout_id and newest.phase is RolloutPhase.PROGRESSING
    assert any("not rolling back after run" in r.getMessage() and "no longer the newest" in r.getMessage()
               for r in caplog.records), "the run's hook rolled back frank's rollout"
