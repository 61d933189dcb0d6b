"""A failed rollout run's hook rolls back the rollout its run held, and no other.

The hook used to run the rollback on whatever rollout was the service's newest and open when
it acted. A `progressive_rollout` run that stopped after waiting for erin's rollback of its
rollout (RollbackClaimed), whose hook acted once erin's rollback had ended and frank's next
rollout had begun, judged frank's record ("not rolled back yet") and rolled his rollout back:
his traffic moved, his flags went off, people were paged. Now the run tags itself with its
rollout (in this process, and on the Prefect API for a hook run elsewhere) and its hook judges
and rolls back that one.
"""
from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError
from prefect.client.orchestration import get_client

import flows.env
import flows.hooks
import flows.rollback
from flows.params import MAX_ROLLBACK_REASON
from flows.progressive import progressive_rollout
from rollway.fakes import FakeFlagStore, FakeLedger
from rollway.flags import FlagState
from rollway.ledger import NotOwner, RollbackClaimed, RolloutEnded, RolloutRecord, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.rollout_tags import rollout_tag
from rollway.spec import FlagBinding, RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment, pages
from tests.flows.test_refusals import hooks_and_flows_see
from tests.flows.test_rollback_claim import SPEC
from tests.flows.test_shift_overtaken import ERIN, ErinStillActing, erin_ends, erin_moves_the_traffic_first, raced_run

FRANK_FLAG = "new_editor"
FRANK = RolloutSpec(image="webordinary/edit-container:3.0.0", stages=[Stage(weight=5), Stage(weight=100)],
                    flags=[FlagBinding(feature=FRANK_FLAG)])


class Forgetful(dict):
    """An in-process store that keeps nothing: the hook then knows only what the Prefect API
    says, as a hook run in another process after a crash does."""

    def __setitem__(self, key, value) -> None:
        pass


def frank_begins_before_the_hook_acts(monkeypatch, seen: list) -> None:
    """Just before the hook judges the failed run, erin's rollback of its rollout ends (her page)
    and frank's next rollout begins: 5% on his canary, his flag on for 5% of users. ``seen`` gets
    his record and how many messages had been sent by then."""
    real = flows.hooks.leave_alone

    def leave_alone(state, params, *args, **kwargs):
        env = seen[0]
        service = env.targets.canary_service
        ended = env.ledger.get(service)
        if not ended.phase.terminal:  # erin's rollback (or her abort) of the run's rollout ends
            erin_ends(env, env.ledger, service, ended.rollout_id)
        now = env.clock.now()
        frank = RolloutRecord(
            service=service, rollout_id=new_rollout_id(now, after=ended.rollout_id), image=FRANK.image,
            spec_json=FRANK.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
            weights=Weights.canary_at(5), previous_task_definition=STABLE_TD, stable_desired=4)
        env.ledger.create(frank, owner="run-2 (frank)", now=now, lease_seconds=600, wall=env.wall())
        env.router.weights = Weights.canary_at(5)
        env.flags.flags[FRANK_FLAG] = FlagState(feature=FRANK_FLAG, enabled=True, percentage=5.0)
        seen.extend([env.ledger.get(service), len(pages(env))])
        return real(state, params, *args, **kwargs)

    monkeypatch.setattr(flows.hooks, "leave_alone", leave_alone)


@pytest.mark.parametrize("where", ["in the run's process", "elsewhere, from the API tag"])
def test_the_hook_of_a_run_whose_rollout_was_followed_by_the_next_leaves_that_one_alone(monkeypatch, caplog, where):
    if where.startswith("elsewhere"):
        monkeypatch.setattr(flows.env, "_rollout_here", Forgetful(), raising=False)
    ledger = ErinStillActing()
    seen: list = []
    real_acts = erin_moves_the_traffic_first(ledger)

    def erin_acts(env, rollout_id):
        seen[:] = [env, rollout_id]
        real_acts(env, rollout_id)

    frank_begins_before_the_hook_acts(monkeypatch, seen)
    with caplog.at_level(logging.INFO):
        env, stopped = raced_run(monkeypatch, ledger, erin_acts, raises=RollbackClaimed,
                                 prepare=lambda env: setattr(env, "flags", FakeFlagStore()))

    _env, ours, frank, messages = seen
    record = env.ledger.get(env.targets.canary_service)
    assert record.rollout_id == frank.rollout_id != ours
    assert record.phase is RolloutPhase.PROGRESSING and record.stage_index == 0, (
        f"the hook acted on frank's rollout: {record.phase.value}, history {[t.kind for t in record.history]}")
    assert record.history == frank.history and record.weights == Weights.canary_at(5)
    assert env.router.weights == Weights.canary_at(5), env.router.calls
    assert env.flags.flags[FRANK_FLAG].enabled and env.flags.flags[FRANK_FLAG].percentage == 5.0
    assert len(pages(env)) == messages, pages(env)[messages:]
    said = [r.getMessage() for r in caplog.records if "not rolling back after run" in r.getMessage()]
    assert any("no longer the newest" in m and ours in m and frank.rollout_id in m for m in said), said


@pytest.mark.parametrize("failure", ["CloudWatch: an AWS error mid-bake", "CloudWatch: " + "a long error " * 1000])
def test_a_run_failing_mid_rollout_is_rolled_back_by_its_hook_as_its_own_rollout(monkeypatch, failure):
    """Its rollout is the newest: the hook rolls it back, naming it to the rollback (which acts
    only while it is the newest), and the run is tagged with it on the Prefect API. A failure
    however long is rolled back: the hook cuts the reason it passes to the rollback flow's limit."""
    env = fake_environment()
    env.ledger = FakeLedger()
    env.flags = FakeFlagStore([FlagState(feature=FRANK_FLAG)])
    hooks_and_flows_see(monkeypatch, env)
    asked: list[dict] = []
    real_rollback = flows.rollback.hook_rollback

    def rollback(**kwargs):
        asked.append(kwargs)
        return real_rollback(**kwargs)

    monkeypatch.setattr(flows.rollback, "hook_rollback", rollback)
    real_observe = env.metrics.observe

    def observe(start, end):
        if env.router.weights.canary == 5:
            raise RuntimeError(failure)
        return real_observe(start, end)

    env.metrics.observe = observe
    spec = SPEC.model_copy(update={"flags": (FlagBinding(feature=FRANK_FLAG),)})
    state = progressive_rollout(spec=spec.model_dump(mode="json"), phased=False, return_state=True)

    assert state.is_failed(), state
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK and env.router.weights == Weights(stable=100, canary=0)
    assert not env.flags.flags[FRANK_FLAG].enabled
    assert [subject for subject, _ in env.notifier.messages if subject.startswith("Rollback: ")], env.notifier.messages
    assert [a.get("rollout") for a in asked] == [record.rollout_id], asked
    assert "CloudWatch: " in record.last_transition("rollback-start").comment
    assert len(asked[0]["reason"]) <= MAX_ROLLBACK_REASON
    with get_client(sync_client=True) as client:
        tags = client.read_flow_run(state.state_details.flow_run_id).tags
    assert rollout_tag(record.rollout_id) in tags, tags


def test_a_run_the_prefect_api_will_not_tag_gives_its_lease_back_and_moves_nothing(monkeypatch):
    """Going on untagged, a crash later would leave a hook run elsewhere unable to tell the run's
    rollout from the next one. The run stops before its first change to AWS, as a refusal its
    hook leaves alone, with the rollout recorded and free to resume."""
    import flows.progressive
    from flows.canary import RolloutRefused

    env = fake_environment()
    env.ledger = FakeLedger()
    hooks_and_flows_see(monkeypatch, env)
    canary_before = env.deployer.services[env.targets.canary_service]

    def api_down(rollout_id):
        raise RuntimeError("PrefectHTTPStatusError: 503 Service Unavailable")

    monkeypatch.setattr(flows.progressive, "mark_rollout", api_down, raising=False)
    with pytest.raises(RolloutRefused, match="could not tag this run with rollout .*503.*nothing was changed on AWS"):
        progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False)

    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.PENDING and record.canary_task_definition is None and record.owner is None
    assert env.router.weights == Weights(stable=100, canary=0) and "set_weights" not in " ".join(env.router.calls)
    assert env.deployer.services[env.targets.canary_service] == canary_before
    assert pages(env) == []


def test_a_weekly_tick_that_failed_starting_the_next_phase_leaves_the_next_rollout_alone(monkeypatch, caplog):
    """The tick took the rollout's lease for week 2 and failed recording the phase's start (the
    ledger throttled it); before its hook acted, erin rolled the rollout back and frank's began.
    The tick held the rollout from its lease on: its hook leaves frank's alone."""
    import flows.progressive
    from flows.progressive import advance_phase
    from tests.flows.test_progressive_fakes import env_with_ledger
    from tests.flows.test_weekly_early_start import REASON, TUESDAY, week_1

    env = env_with_ledger()
    env.flags = FakeFlagStore()
    env.clock.t = TUESDAY
    assert week_1(env).outcome == "holding"
    env.clock.t += 2 * 3600
    hooks_and_flows_see(monkeypatch, env)
    ours = env.ledger.get(env.targets.canary_service).rollout_id
    seen: list = [env, ours]
    frank_begins_before_the_hook_acts(monkeypatch, seen)
    real_record = env.ledger.record

    def record(service, **kwargs):
        if kwargs["transition"].comment.startswith("starting week 2"):
            raise RuntimeError("ProvisionedThroughputExceededException: the ledger throttled the write")
        return real_record(service, **kwargs)

    env.ledger.record = record
    with caplog.at_level(logging.INFO), pytest.raises(RuntimeError, match="ProvisionedThroughputExceeded"):
        advance_phase(actor="bob", start_early_because=REASON)

    frank, messages = seen[2:]
    newest = env.ledger.get(env.targets.canary_service)
    assert newest.rollout_id == frank.rollout_id and newest.history == frank.history, (
        f"the hook acted on frank's rollout: {newest.phase.value}, history {[t.kind for t in newest.history]}")
    assert env.router.weights == Weights.canary_at(5) and env.flags.flags[FRANK_FLAG].enabled
    assert len(pages(env)) == messages, pages(env)[messages:]
    said = [r.getMessage() for r in caplog.records if "not rolling back after run" in r.getMessage()]
    assert any("no longer the newest" in m and frank.rollout_id in m for m in said), said


class StoppedThenDown(FakeLedger):
    """A ledger whose ``refusal`` stops the run at its first stage's verdict (another run took the
    rollout over, or someone began its rollback), and which DynamoDB throttles from then on."""

    def __init__(self, refusal: Exception) -> None:
        super().__init__()
        self.refusal, self.down = refusal, False

    def record(self, service, **kwargs):
        if kwargs["transition"].kind == "verdict":
            self.down = True
            raise self.refusal
        return super().record(service, **kwargs)

    def get(self, service):
        if self.down:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Query")
        return super().get(service)


@pytest.mark.parametrize("refusal,then", [
    (NotOwner("'run-1' no longer owns the rollout: it is owned by 'flow-run/other'"),
     "if no run does, `rollway abort` rolls it back"),
    (RolloutEnded("the rollout is rolling_back by carol: INC-7"), "if it did not, `rollway abort` finishes it"),
], ids=["taken over", "rollback begun"])
def test_a_hook_that_cannot_read_the_ledger_to_tell_whose_the_rollout_is_says_so_and_what_to_run(
        monkeypatch, caplog, refusal, then):
    """The run stopped because another run took its rollout over (or someone began its rollback),
    and DynamoDB then throttled the hook's read of the ledger: the hook raised botocore's error,
    and the run's log held only Prefect's "An error was encountered while running hook" and a
    traceback, saying neither whether anything was rolled back nor what to run. The traffic is
    left where the other run (or rollback) has it, and the log says why and what to run."""
    env = fake_environment()
    env.ledger = StoppedThenDown(refusal)
    hooks_and_flows_see(monkeypatch, env)
    with caplog.at_level(logging.INFO):
        state = progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False, return_state=True)

    assert state.is_failed(), state
    assert env.router.weights == Weights.canary_at(5), env.router.calls
    assert not [subject for subject, _ in pages(env) if subject.startswith("Rollback")], pages(env)
    hook_failed = [r for r in caplog.records if "error was encountered while running hook" in r.getMessage()]
    assert not hook_failed, hook_failed[0].exc_info
    said = [r for r in caplog.records if r.getMessage().startswith("not rolling back after run")]
    assert len(said) == 1 and said[0].levelno == logging.ERROR, [(r.levelname, r.getMessage()) for r in said]
    words = said[0].getMessage()
    for part in (str(refusal), "DynamoDB Query failed with ThrottlingException: Rate exceeded", "`rollway status`",
                 then):
        assert part in words, words
