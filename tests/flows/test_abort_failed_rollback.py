"""`rollway abort` whose own rollback cannot move the traffic back (no nothing-paused shortcut).

The stable service would not become steady at the capacity to take the traffic: the rollback
flow paged people and raised, and the command ended in a Python traceback, never saying that
the rollback stays open and that running it again finishes it.
"""
from __future__ import annotations

import threading
import time
from uuid import uuid4

import pytest

import flows.rollback
import rollway.cli.ops as ops
from rollway.aws.errors import RuleForwardsNowhere
from rollway.fakes import FakeLedger, FakeRouter, FlakyFlagStore
from rollway.flags import FlagState
from rollway.ledger import RolloutRecord, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import FlagBinding
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.test_abort_races import SPEC


def open_rollout(monkeypatch, env, block: str, spec=SPEC):
    """A rollout of ``spec`` at 5 % that no live run owns, for `rollway abort` to roll back directly."""
    t = env.targets
    env.router.weights = Weights.canary_at(5)
    now = time.time()
    record = RolloutRecord(service=t.canary_service, rollout_id=new_rollout_id(now - 600), image=spec.image,
                           spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
                           weights=Weights.canary_at(5), previous_task_definition=STABLE_TD, stable_desired=4)
    env.ledger.create(record, owner=f"process/{uuid4()}", now=now - 600, lease_seconds=0)
    service = ops.Service(targets=t, targets_block=f"{block}-{uuid4().hex[:8]}", credentials_block=None,
                          ledger=env.ledger, router=env.router)
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    return service


def test_an_abort_whose_rollback_fails_says_so_in_a_few_lines_and_how_to_finish(monkeypatch, capsys):
    env = fake_environment()
    env.ledger = FakeLedger()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    t = env.targets
    # The stable service runs 1 of the 4 tasks the rollout recorded, and does not come up at 4.
    env.deployer.services[t.stable_service] = env.deployer.services[t.stable_service].model_copy(
        update={"desired": 1, "running": 1})
    env.deployer.unstable.add(t.stable_service)
    service = open_rollout(monkeypatch, env, "abort-fails")

    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)

    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert "rolled back" not in out
    flat = " ".join(err.split())
    assert f"the rollback of {t.canary_service} failed: services {t.stable_service} not stable" in flat, err
    # The refusal says to raise the spec's wait "or the rollback flow's", neither of which `rollway abort`
    # can pass: what the person can do from here, and the flow to run with the longer wait.
    record = env.ledger.get(t.canary_service)
    assert ("`rollway abort` waits as long as the rollout's spec says and cannot be given longer: run it again once "
            f"{t.stable_service}'s tasks are steady (it finishes the rollback from the ledger), or run the rollback "
            "flow with a longer scale_timeout_seconds: `prefect deployment run rollback/rollway --param "
            f"reason=\"<why>\" --param actor=<you> --param rollout={record.rollout_id} --param "
            "scale_timeout_seconds=<seconds, more than 600>`, or its form in the Prefect UI (Deployments -> "
            "rollback/rollway -> Run) with those." in flat), err
    assert record.phase is RolloutPhase.ROLLING_BACK  # open: the next abort finishes it
    assert env.router.weights == Weights.canary_at(5)


def test_an_abort_whose_rollback_finds_no_healthy_stable_target_says_what_abort_can_do(monkeypatch, capsys):
    env = fake_environment()
    env.ledger = FakeLedger()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    monkeypatch.setattr(flows.rollback, "DEFAULT_HEALTHY_SECONDS", 0.2)  # the wait runs out at once
    t = env.targets
    env.router.healthy["stable"] = 0
    service = open_rollout(monkeypatch, env, "abort-unhealthy", spec=SPEC.model_copy(
        update={"healthy_timeout_seconds": 0.1}))

    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)

    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    flat = " ".join(err.split())
    assert f"the rollback of {t.canary_service} failed: the stable target group has no healthy targets" in flat, err
    record = env.ledger.get(t.canary_service)
    # The command as it runs: the flow refuses a run without a reason, and the advice gave none.
    assert (f"run it again once {t.stable_service}'s targets pass their health checks (it finishes the rollback from "
            "the ledger), or run the rollback flow with a longer healthy_timeout_seconds: `prefect deployment run "
            f"rollback/rollway --param reason=\"<why>\" --param actor=<you> --param rollout={record.rollout_id} "
            "--param healthy_timeout_seconds=<seconds>`, or its form in the Prefect UI (Deployments -> "
            "rollback/rollway -> Run) with those." in flat), err
    assert record.phase is RolloutPhase.ROLLING_BACK
    assert env.router.weights == Weights.canary_at(5)


def test_an_abort_whose_rollback_cannot_reach_the_prefect_api_says_that(monkeypatch, capsys):
    """The rollback flow never started (the API is down): the command said the rollback failed and
    to run it again "once the stable service can take the traffic", which has nothing to do with it."""
    import httpx

    env = fake_environment()
    env.ledger = FakeLedger()
    service = open_rollout(monkeypatch, env, "abort-no-api")

    def unreachable(**kwargs):
        raise httpx.ConnectError("All connection attempts failed")

    monkeypatch.setattr(flows.rollback, "rollback", unreachable)
    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "cannot reach the Prefect API" in err and "can take the traffic" not in err, err


def said_left_open(capsys, rollout: str, code: int) -> None:
    """The abort ended 1 saying the API was out of reach, what the ledger records of ``rollout``
    (its rollback begun, not finished), the split read back, and that running it again finishes it."""
    out, err = capsys.readouterr()
    said = " ".join((out + err).split())
    assert code == 1, said
    assert "cannot reach the Prefect API" in said and "can take the traffic" not in said, said
    assert f"the ledger records rollout {rollout} as rolling back, not finished" in said, said
    assert "Run `rollway abort` again once the Prefect API answers: it finishes the rollback" in said, said
    assert "load balancer now 95/5 (stable/canary), read back" in said, said


def test_an_abort_whose_rollback_cannot_reach_the_prefect_api_says_where_it_left_things_and_again_finishes_it(
        monkeypatch, capsys):
    """The rollback is a Prefect flow: with the API gone after the abort's intent was recorded, the
    command said only "cannot reach the Prefect API", and on-call could not tell whether the ledger
    recorded the abort, where the traffic was, or what to run. Running it again once the API answers
    finishes the rollback, as it now says."""
    import httpx

    env = fake_environment()
    env.ledger = FakeLedger()
    service = open_rollout(monkeypatch, env, "abort-api-away")
    rollout = env.ledger.get(env.targets.canary_service).rollout_id
    real_rollback = flows.rollback.rollback

    def unreachable(**kwargs):
        raise httpx.ConnectError("All connection attempts failed")

    monkeypatch.setattr(flows.rollback, "rollback", unreachable)
    said_left_open(capsys, rollout, ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                                              targets_block=service.targets_block, credentials_block=None))
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLING_BACK
    assert env.router.weights == Weights.canary_at(5)

    # The API answers again: the same command finishes it.
    monkeypatch.setattr(flows.rollback, "rollback", real_rollback)
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    assert ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None) == 0, capsys.readouterr()
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK
    assert env.router.weights == Weights(stable=100, canary=0)


def test_an_abort_whose_rollback_flow_finds_the_prefect_api_gone_says_where_it_left_things(monkeypatch, capsys):
    """The API answered the abort's look for a paused run, then went away before its rollback flow
    started: Prefect's flow engine says so as a RuntimeError ("Failed to reach API at ..."), its
    connection error behind it, not as an httpx error. The command said the rollback failed and
    to run it again "once the stable service can take the traffic", which has nothing to do with it."""
    import socket

    from prefect.settings import PREFECT_API_URL, temporary_settings

    env = fake_environment()
    env.ledger = FakeLedger()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    service = open_rollout(monkeypatch, env, "abort-api-gone")
    rollout = env.ledger.get(env.targets.canary_service).rollout_id
    real_rollback = flows.rollback.rollback

    with socket.socket() as nobody:  # bound, never listening: every connection to it is refused
        nobody.bind(("127.0.0.1", 0))

        def api_gone(**kwargs):
            with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{nobody.getsockname()[1]}/api"}):
                return real_rollback(**kwargs)

        monkeypatch.setattr(flows.rollback, "rollback", api_gone)
        code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                         targets_block=service.targets_block, credentials_block=None)
    said_left_open(capsys, rollout, code)
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLING_BACK


class RefusingNotifier:
    """SNS refusing every publish for good (the topic's policy denies it): never retried."""

    def notify(self, subject: str, message: str) -> str:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "AuthorizationError", "Message": "not authorized to publish"}}, "Publish")


@pytest.mark.parametrize("failing, step", [("page", "notify (AWS refused sns:Publish (AuthorizationError"),
                                            ("flag", "disable every bound flag (could not disable bound feature "
                                                     "flag(s) beta_editor: PutItem")])
def test_an_abort_whose_rollback_fails_only_after_the_traffic_says_the_traffic_is_back_and_what_failed(
        monkeypatch, capsys, flow_run_records, failing, step):
    """Only the notification, or only a bound flag, failed: the command printed the bare error and
    told people to run it again "once the stable service can take the traffic", which it already had."""
    env = fake_environment()
    env.ledger = FakeLedger()
    spec = SPEC
    if failing == "page":
        env.notifier = RefusingNotifier()
    else:
        env.flags = FlakyFlagStore([FlagState(feature="beta_editor", enabled=True, percentage=5)],
                                   failing=["beta_editor"])
        spec = SPEC.model_copy(update={"flags": (FlagBinding(feature="beta_editor"),)})
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    t = env.targets
    service = open_rollout(monkeypatch, env, f"abort-no-{failing}", spec)

    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)

    flat = " ".join(capsys.readouterr().err.split())
    assert code == 1, flat
    assert f"the traffic is back on {t.stable_service}, but the rollback did not finish" in flat, flat
    assert step in flat and "can take the traffic" not in flat, flat
    # Those lines, not also the flow engine's traceback above them (as if abort had crashed).
    said = [r for r in flow_run_records if "RollbackIncomplete" in r.getMessage()]
    assert said and not any(r.exc_info for r in said)
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.services[t.canary_service].desired == 0
    # Open: the next abort finishes it.
    assert env.ledger.get(t.canary_service).phase is RolloutPhase.ROLLING_BACK


class SilentAfterWrite(FakeRouter):
    """A load balancer that takes the rollback's write, then never answers a read of its weights."""

    def __init__(self, weights: Weights) -> None:
        super().__init__(weights)
        self.written, self.released = threading.Event(), threading.Event()

    def set_weights(self, weights: Weights) -> Weights:
        held = super().set_weights(weights)
        self.written.set()
        return held

    def get_weights(self) -> Weights:
        if self.written.is_set():
            self.released.wait()
        return super().get_weights()


def test_an_abort_whose_rollback_could_not_read_the_weights_back_says_the_rollback_failed(monkeypatch, capsys):
    """The verification ran out at verify_timeout_seconds. Its error was a TimeoutError, which the
    command took for the Prefect API's: one line saying the weights were not read back, not that
    the rollback failed and stays open for `rollway abort` to finish."""
    env = fake_environment()
    env.ledger = FakeLedger()
    env.router = SilentAfterWrite(Weights.canary_at(5))
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    # A rollback reads back for at least DEFAULT_VERIFY_SECONDS (30 s): lowered with the spec's
    # bound, so that the test waits 3 s for what a person waits 30 s for.
    spec = SPEC.model_copy(update={"verify_timeout_seconds": 3.0})
    monkeypatch.setattr(flows.rollback, "DEFAULT_VERIFY_SECONDS", spec.verify_timeout_seconds)
    t = env.targets
    service = open_rollout(monkeypatch, env, "abort-unread", spec)
    try:
        code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                         targets_block=service.targets_block, credentials_block=None)
    finally:
        env.router.released.set()

    out, err = capsys.readouterr()
    flat = " ".join(err.split())
    assert code == 1 and "rolled back" not in out, (out, err)
    assert (f"the rollback of {t.canary_service} failed: the load balancer's weights could not be read back within "
            f"{spec.verify_timeout_seconds:g} s (verify_timeout_seconds): Elastic Load Balancing did not answer") in flat, err
    # Not "once <stable> can take the traffic": the load balancer took the move, and may show it by now.
    assert "can take the traffic" not in flat, err
    assert (f"It is not recorded as finished (the rollback flow's log says what was done): the load balancer took the "
            f"move to {t.stable_service} but did not answer the read-back of its weights: the traffic may be on "
            f"{t.stable_service} already, or not. Run `rollway abort` again once the load balancer answers (moving the "
            "traffic to stable again does no harm if it is there); `rollway status` shows the split it holds once it "
            "answers." in flat), err
    assert env.ledger.get(t.canary_service).phase is RolloutPhase.ROLLING_BACK  # open: the next abort finishes it


class RefusingMove(FakeRouter):
    """A load balancer refusing the rollback's move for good: ``refusal()`` is raised at each write."""

    def __init__(self, weights: Weights, refusal) -> None:
        super().__init__(weights)
        self.refusal = refusal

    def set_weights(self, weights: Weights) -> Weights:
        raise self.refusal()


def forwarding_nowhere() -> Exception:
    return RuleForwardsNowhere("rule arn:aws:elasticloadbalancing:rule/1 forwards to no target group (its actions: "
                               "fixed-response)")


def modify_rule_denied() -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform ModifyRule"}},
                       "ModifyRule")


@pytest.mark.parametrize("refusal, once", [
    (forwarding_nowhere, "once what the error above says of the listener rule is put right: until then it fails "
                         "the same way, moving no traffic."),
    (modify_rule_denied, "once the permission the error above names is granted: until then AWS refuses it the same "
                         "way."),
], ids=["rule", "permission"])
def test_an_abort_whose_rollback_is_refused_says_what_to_put_right_before_running_it_again(
        monkeypatch, capsys, refusal, once):
    """The load balancer refused the move over the rule (a maintenance page on it), or refused the role
    its ModifyRule: the command said to run it again "once the stable service can take the traffic",
    which it could all along; it fails the same way until the rule, or the role, is put right."""
    env = fake_environment()
    env.ledger = FakeLedger()
    env.router = RefusingMove(Weights.canary_at(5), refusal)
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    t = env.targets
    service = open_rollout(monkeypatch, env, "abort-refused")

    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)

    flat = " ".join(capsys.readouterr().err.split())
    assert code == 1, flat
    assert f"the rollback of {t.canary_service} failed: " in flat, flat
    assert f"It is not recorded as finished (the rollback flow's log says what was done): run `rollway abort` again {once}" \
        in flat, flat
    assert "can take the traffic" not in flat, flat
    assert env.ledger.get(t.canary_service).phase is RolloutPhase.ROLLING_BACK  # open: the next abort finishes it
    assert env.router.weights == Weights.canary_at(5)
