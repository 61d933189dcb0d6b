"""Runs refused before any write are left alone by their rollback hooks (on the real Prefect API).

A refusal (an unknown bound flag, a misnamed target, another rollout holding the service)
moved nothing; the traffic belongs to whatever rollout holds it, maybe a promoted version.
"""

from __future__ import annotations

import pytest
from prefect import flow

import flows.env
import flows.rollback
from flows.hooks import PARAMETERS_FAILED
from flows.canary import RolloutRefused, canary
from flows.progressive import progressive_rollout, run_progressive
from rollway.approvals import auto_approve
from rollway.fakes import FakeFlagStore, FakeLedger
from rollway.flags import FlagState
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import FlagBinding, RolloutSpec, Stage, WeeklyPhase
from tests.flows.fake_env import fake_environment, rollout_flows_see

IMAGE = "webordinary/edit-container:2.0.0"
NEWER = "webordinary/edit-container:3.0.0"


def ledger_env():
    env = fake_environment()
    env.ledger = FakeLedger()
    return env


def hooks_and_flows_see(monkeypatch, env) -> None:
    """The flows, their hooks and the rollback flow build their environment from blocks: give them the fakes."""
    for module in (flows.env, flows.rollback):
        monkeypatch.setattr(module, "load_environment", lambda *a, **k: env)
    rollout_flows_see(monkeypatch, env)


@flow
def promote(env, spec):
    return run_progressive(env, spec, auto_approve("alice"), owner="run-1", phased=False)


def test_a_run_refused_for_an_unknown_bound_flag_does_not_revert_the_promoted_version(monkeypatch):
    """2.0.0 was promoted and the old service decommissioned: the canary service is production.
    A progressive run of 3.0.0 whose spec binds a flag that does not exist (a typo) is refused
    before any write, and its on_failure hook leaves it alone. It used to run the rollback
    flow: the old service scaled back up, all traffic moved to it, production scaled to zero,
    and a Rollback alert for a rollout that never started."""
    env = ledger_env()
    env.flags = FakeFlagStore([FlagState(feature="use_sqs_architecture")])
    hooks_and_flows_see(monkeypatch, env)
    done = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=600,
                       phases=[WeeklyPhase(name="all", weights=(5, 100), decommission=True)])
    assert promote(env, done).outcome == "promoted"
    assert env.router.weights == Weights(stable=0, canary=100)
    assert env.deployer.services[env.targets.stable_service].desired == 0  # decommissioned
    alerts_before = len(env.notifier.messages)

    typo = RolloutSpec(image=NEWER, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)],
                       flags=[FlagBinding(feature="use_sqs_architecure")])
    with pytest.raises(RolloutRefused, match="use_sqs_architecure"):
        progressive_rollout(spec=typo.model_dump(mode="json"), phased=False)

    new_alerts = [s for s, _ in env.notifier.messages[alerts_before:]]
    assert env.router.weights == Weights(stable=0, canary=100), (env.router.weights, new_alerts)
    assert env.deployer.services[env.targets.canary_service].desired > 0
    assert not [s for s in new_alerts if s.startswith("Rollback")], new_alerts


def test_a_canary_run_refused_for_an_unknown_bound_flag_does_not_roll_back_the_rollout_holding_at_5_percent(monkeypatch):
    """Week 1 of a progressive rollout ended: it holds at 5% until week 2. A canary run started
    by mistake, with a flag name typo, is refused before any write; its hook must not roll
    back the progressive rollout that run never touched."""
    env = week_one_holding_at_5(monkeypatch, flags=FakeFlagStore([FlagState(feature="use_sqs_architecture")]))

    typo = RolloutSpec(image=NEWER, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)],
                       flags=[FlagBinding(feature="use_sqs_architecure")])
    with pytest.raises(RolloutRefused, match="use_sqs_architecure"):
        canary(spec=typo.model_dump(mode="json"))

    record = env.ledger.get(env.targets.canary_service)
    assert record.image == IMAGE and record.phase is RolloutPhase.PAUSED, [t.kind for t in record.history]
    assert env.router.weights == Weights.canary_at(5)


def test_a_canary_run_binding_a_flag_another_services_rollout_is_moving_is_refused_before_any_write(monkeypatch):
    """billing's rollout had the shared flag at 25 %: the edit canary's stages moved it too (5 %, then
    25 %, 50 %...), each taking it away from the other's stage, and users went on and off with it."""
    from rollway.flag_binding import apply_bindings

    env = ledger_env()
    env.flags = FakeFlagStore([FlagState(feature="use_sqs_architecture")])
    hooks_and_flows_see(monkeypatch, env)
    shared = [FlagBinding(feature="use_sqs_architecture")]
    apply_bindings(env.flags, shared, 25, actor="bob", now=1.0, rollout="billing-r7")
    version = env.flags.get("use_sqs_architecture").version

    spec = RolloutSpec(image=NEWER, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], flags=shared)
    with pytest.raises(RolloutRefused, match=r"follows rollout billing-r7 \(its stage 25%, set by bob"):
        canary(spec=spec.model_dump(mode="json"))

    flag = env.flags.get("use_sqs_architecture")
    assert (flag.version, flag.enabled, flag.percentage) == (version, True, 25.0)
    assert env.router.weights == Weights(stable=100, canary=0)
    assert not [s for s, _ in env.notifier.messages if s.startswith("Rollback")]


def test_a_run_waiting_for_an_approval_keeps_its_rollout_whatever_its_lease_says():
    """Run 1 waits at the approval before 100% longer than its lease (nothing renews a lease
    during a pause). A second run of the same image, started by hand, is refused while run 1
    has not ended: two runs driving one rollout let run 1's timeout undo run 2's promotion."""
    import threading
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    from flows.approvals import prefect_approver
    from flows.env import owner_finished, run_owner
    from rollway.approvals import ApprovalAnswer, scripted
    from rollway.ledger import RolloutInProgress
    from rollway.spec import Approvals

    env = fake_environment()
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120), Stage(weight=100, bake_seconds=120,
                                                                                    approval=True)],
                       approvals=Approvals(timeout_seconds=6, on_timeout="rollback"), monitor_seconds=0)

    @flow(name="waits-for-approval")
    def first(env, rollout):
        return run_progressive(env, rollout, prefect_approver(rollout.approvals, poll_interval=1), owner=run_owner(),
                               phased=False)

    @flow
    def second(env, rollout):
        approve = ApprovalAnswer(action="approve", approver="erin", comment="looks fine")
        return run_progressive(env, rollout, scripted(approve), owner=run_owner(), phased=False,
                               owner_finished=owner_finished)

    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.setdefault("first", first(env, spec).outcome), daemon=True)
    runner.start()
    deadline = time.monotonic() + 20
    paused = []
    while not paused and time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            paused = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
        time.sleep(0.2)
    assert paused, "run 1 never paused for its approval"
    env.clock.sleep(700)  # run 1's lease runs out (600 s on the rollout clock)
    with pytest.raises(RolloutInProgress, match="has not ended"):
        second(env, spec)
    runner.join(30)
    # Nobody answered run 1: its own timeout policy decided, on its own rollout.
    assert outcome.get("first") == "rolled_back"
    assert env.router.weights == Weights(stable=100, canary=0)


def week_one_holding_at_5(monkeypatch, flags=None):
    """A rollout whose week 1 ended holding 5 %: the traffic a refused run must not touch."""
    env = ledger_env()
    env.flags = flags
    hooks_and_flows_see(monkeypatch, env)
    weekly = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 50, 100)],
                         phases=[WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(50, 100))])

    @flow
    def week_one(env, spec):
        return run_progressive(env, spec, auto_approve("alice"), owner="run-1", phased=True)

    assert week_one(env, weekly).outcome == "holding"
    assert env.router.weights == Weights.canary_at(5)
    return env


def assert_left_alone(env) -> None:
    record = env.ledger.get(env.targets.canary_service)
    assert record.image == IMAGE and record.phase is RolloutPhase.PAUSED, [t.kind for t in record.history]
    assert env.router.weights == Weights.canary_at(5)
    assert not [s for s, _ in env.notifier.messages if s.startswith("Rollback")]


@pytest.mark.parametrize("stages", [None, 5, "5,100"])
def test_a_run_whose_spec_stages_are_not_a_list_is_refused_as_a_parameter_error(monkeypatch, stages):
    """A cleared "stages" field in the UI's JSON (null) raised a bare TypeError from the spec's
    before-validator: Prefect failed the run, the hook did not see a refusal, and rolled back
    the rollout holding 5 %."""
    env = week_one_holding_at_5(monkeypatch)
    state = progressive_rollout(spec={"image": NEWER, "stages": stages}, return_state=True)
    assert state.is_failed() and "Validation of flow parameters failed" in (state.message or "")
    assert "stages" in state.message
    assert_left_alone(env)


def test_parameters_of_the_wrong_type_are_said_a_line_a_field_with_what_was_given_and_what_is_expected(
        monkeypatch, caplog):
    """A wrong type in the UI's form: the run's state message and the hook's log said each field
    in pydantic's words ("Input should be a valid integer, unable to parse string as an integer")
    without what was given, and the hook's log repeated the engine's whole message in brackets."""
    import logging

    env = week_one_holding_at_5(monkeypatch)
    spec = {"image": NEWER, "stages": [{"weight": "five", "bake_seconds": 120}, {"weight": 100, "bake_seconds": "x"}]}
    with caplog.at_level(logging.INFO):
        state = progressive_rollout(spec=spec, approval_poll_seconds="abc", return_state=True)
    fields = [" - spec.stages.0.weight: 'five' given, expected a valid integer",
              " - spec.stages.1.bake_seconds: 'x' given, expected a valid number",
              " - approval_poll_seconds: 'abc' given, expected a valid integer"]
    assert state.is_failed() and state.message.splitlines() == [
        "Validation of flow parameters failed with error: ParameterTypeError: Flow run received invalid parameters:",
        *fields], state.message
    hook = [r.getMessage() for r in caplog.records if r.getMessage().startswith("not rolling back after run")]
    assert len(hook) == 1, hook
    assert hook[0].splitlines()[1:] == fields and hook[0].splitlines()[0].endswith(
        ": its parameters failed validation, so it did not start:"), hook
    assert_left_alone(env)


def test_a_refused_url_parameter_is_said_without_its_password_or_token():
    """A health_url with a password (which its validator refuses without quoting it) or a token in
    its query, or a misspelt field holding one: the run's state message, which the UI shows, quoted
    each value as given, the password and token with it."""
    from flows.validate import validate_deployment

    for spec in ({"health_url": "https://ops:hunter2-pw@svc.example/health"},
                 {"health_url": "https://svc.example:99999/health?token=tok-hunter2"},
                 {"helth_url": "https://svc.example/health?token=tok-hunter2"},
                 {"timeout_seconds": "https://svc.example/?token=tok-hunter2"},
                 {"success_rate_services": [["https://ops:hunter2-pw@svc.example"]]}):
        state = validate_deployment(spec=spec, return_state=True)
        assert state.is_failed() and state.message.startswith(PARAMETERS_FAILED), state.message
        field = next(iter(spec))
        assert f"spec.{field}" in state.message, state.message
        assert "hunter2" not in state.message, state.message


def test_a_refused_password_or_token_does_not_reach_the_workers_console(monkeypatch):
    """Prefect's own "prefect.flows" logger printed a refused run's raw parameters and pydantic's
    errors, each value as given, on the console of the process running it (a served deployment's,
    a worker's): the password and token in them too, though the run's state message hid them."""
    import io
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    from flows.validate import validate_deployment

    consoles = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    assert consoles, "no Prefect console handler on the root logger"
    printed = io.StringIO()
    for handler in consoles:
        monkeypatch.setattr(handler.console, "file", printed)
    for spec in ({"health_url": "https://ops:hunter2-pw@svc.example/health"},
                 {"helth_url": "https://svc.example/health?token=tok-hunter2"}):
        assert validate_deployment(spec=spec, return_state=True).is_failed()
    console = printed.getvalue()
    assert "Parameter validation failed for flow 'validate_deployment'" in console, console
    assert "hunter2" not in console, console


def test_any_failure_of_prefects_parameter_validation_is_a_refusal():
    """Prefect reports whatever its parameter validation raises (ParameterTypeError,
    ParameterBindError, a bare TypeError from a validator) under one message: the run's body
    never started, so it moved nothing."""
    from prefect.states import Failed

    from flows.hooks import leave_alone

    for exc in (TypeError("'NoneType' object is not iterable"), ValueError("anything")):
        state = Failed(data=exc, message=f"Validation of flow parameters failed with error: {exc!r}")
        assert leave_alone(state, {}) is not None
    ran = Failed(data=TypeError("boom"), message="Flow run encountered an exception: TypeError('boom')")
    assert leave_alone(ran, {}) is None


@pytest.mark.parametrize("bad", [
    {"approval_poll_seconds": -1},  # time.sleep(-1) at the first pause, after the rollout moved
    {"approval_poll_seconds": 0},
    {"approval_poll_seconds": 3600},  # an approval or a Cancel unseen for an hour
    {"lease_wall_seconds": -1},  # ValueError in the ledger's acquire, on a resume
    {"lease_wall_seconds": float("nan")},
    # "Never": its expiry is no date, and the next run to meet the lease failed on it and rolled back
    {"lease_wall_seconds": 1e12},
    {"actor": "  "},  # MissingUserId at the first shift of a bound flag, after the deploy
    {"clock": {"speed": 60}},  # a fast clock needs the anchor its metric source shares
    {"clock": {"speed": 60, "anchor": float("nan")}},
])
def test_a_progressive_run_with_an_unusable_parameter_is_refused_before_its_body(monkeypatch, bad):
    """Each of these was accepted by the flow's signature and failed deep in the run, where the
    hook took it for a failed rollout and rolled back the rollout holding the service."""
    env = week_one_holding_at_5(monkeypatch)
    env.flags = FakeFlagStore([FlagState(feature="use_sqs_architecture")])
    spec = {"image": IMAGE, "flags": [{"feature": "use_sqs_architecture"}],
            "stages": [{"weight": w, "bake_seconds": 120} for w in (5, 50, 100)],
            "phases": [{"name": "week 1", "weights": [5]}, {"name": "week 2", "weights": [50, 100]}]}
    state = progressive_rollout(spec=spec, phased=False, return_state=True, **bad)
    assert state.is_failed() and "Validation of flow parameters failed" in (state.message or ""), state.message
    assert_left_alone(env)


@pytest.mark.parametrize("flow_fn,bad", [
    ("canary", {"actor": ""}),
    ("canary", {"clock": {"speed": 60}}),
    ("advance_phase", {"approval_poll_seconds": -1}),
    ("advance_phase", {"lease_wall_seconds": 0}),
    ("advance_phase", {"actor": " "}),
    ("rollback", {"actor": " "}),
    ("rollback", {"stable_desired": -2}),
    ("rollback", {"stable_desired": 40000}),  # a typo for 4: ECS allows 5,000 tasks per service
    ("rollback", {"reason": " "}),  # the page on-call got said "Why: " and nothing else
    # Kept twice in the rollout's ledger item (400 KB at most): over it, the rollback moved the
    # traffic and then could not record it; a shorter one still filled the item for later writes.
    ("rollback", {"reason": "x" * 4001}),
    # Refused only after the ledger's read, as meant for "rollout '' ... no longer the newest".
    ("rollback", {"rollout": ""}),
    ("rollback", {"rollout": " 20261201T120000Z "}),
])
def test_other_flows_refuse_unusable_parameters_before_their_body(monkeypatch, flow_fn, bad):
    from flows.progressive import advance_phase
    from flows.rollback import rollback

    env = week_one_holding_at_5(monkeypatch)
    run = {"canary": canary, "advance_phase": advance_phase, "rollback": rollback}[flow_fn]
    args = {"canary": {"spec": {"image": NEWER}}, "rollback": {"reason": "by hand"}}.get(flow_fn, {})
    state = run(return_state=True, **{**args, **bad})
    assert state.is_failed() and "Validation of flow parameters failed" in (state.message or ""), state.message
    assert_left_alone(env)


def test_a_canary_run_is_refused_while_a_progressive_rollout_waits_at_the_approval_before_its_first_stage(monkeypatch):
    """Run 1's policy asks a person before the 5 % stage: it waits with the canary at 0 %, its
    revision of 2.0.0 already on the canary service. A canary run of 3.0.0 started meanwhile
    used to pass its preflight (no traffic on the canary) and deploy 3.0.0 over that revision;
    the approval then sent 5 % of production to 3.0.0 under rollout 1's name. It is refused,
    naming the rollout that holds the service, and run 1 goes on with its own image."""
    env = ledger_env()
    hooks_and_flows_see(monkeypatch, env)
    first = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120, approval=True),
                                            Stage(weight=100, bake_seconds=120)], monitor_seconds=0)
    other = RolloutSpec(image=NEWER, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=0)
    seen: dict = {}

    def meanwhile_someone_starts_a_canary(pause, summary):
        record = env.ledger.get(env.targets.canary_service)
        assert env.router.weights == Weights(stable=100, canary=0) and not record.phase.terminal
        with pytest.raises(RolloutRefused) as refused:
            canary(spec=other.model_dump(mode="json"))
        seen["refusal"] = str(refused.value)
        return auto_approve("alice")(pause, summary)

    @flow
    def waits_before_5(env, spec):
        return run_progressive(env, spec, meanwhile_someone_starts_a_canary, owner="run-1", phased=False)

    assert waits_before_5(env, first).outcome == "promoted"
    assert record_names(seen["refusal"], env)
    canary_td = env.deployer.services[env.targets.canary_service].task_definition
    assert env.deployer.task_definitions[canary_td] == IMAGE
    assert NEWER not in env.deployer.task_definitions.values()
    assert not [s for s, _ in env.notifier.messages if s.startswith("Rollback")]


def record_names(refusal: str, env) -> bool:
    record = env.ledger.history(env.targets.canary_service)[0]
    return record.rollout_id in refusal and IMAGE in refusal


def test_a_canary_run_is_refused_while_a_rollback_that_moved_the_traffic_is_unfinished(monkeypatch):
    """A rollback moved the traffic off the 5 % canary and its run died before scaling the
    canary down: the canary is at 0 % and the ledger says rolling_back. A new canary run is
    refused and told how to finish that rollback; nothing of it changes."""
    from rollway.ledger import begin_rollback

    env = week_one_holding_at_5(monkeypatch)
    service = env.targets.canary_service
    begin_rollback(env.ledger, service, actor="bob", reason="errors up", now=env.clock.now())
    env.router.set_weights(Weights(stable=100, canary=0))
    canary_before = env.deployer.services[service]

    other = RolloutSpec(image=NEWER, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=0)
    with pytest.raises(RolloutRefused, match="rollway abort") as refused:
        canary(spec=other.model_dump(mode="json"))

    assert "rollback was started" in str(refused.value)
    assert env.ledger.get(service).phase is RolloutPhase.ROLLING_BACK
    assert env.deployer.services[service] == canary_before
    assert NEWER not in env.deployer.task_definitions.values()


def test_a_canary_run_refused_after_the_weights_were_moved_to_0_by_hand_says_so(monkeypatch):
    """The rollout holds 5 % in its ledger and someone set the load balancer to 100/0 by hand.
    The refusal used to say "no traffic on it yet" and to let the rollout resume, which then
    stops on drift: it says what happened and to roll back."""
    env = week_one_holding_at_5(monkeypatch)
    env.router.set_weights(Weights(stable=100, canary=0))
    other = RolloutSpec(image=NEWER, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=0)
    with pytest.raises(RolloutRefused, match="at 5% in the ledger\\) while the load balancer sends it no traffic") as refused:
        canary(spec=other.model_dump(mode="json"))
    message = str(refused.value)
    assert "rollway abort" in message and "no traffic on it yet" not in message
    assert "by hand or by a rollback the ledger could not record" in message
    assert message.count("(") == message.count(")"), message
    assert NEWER not in env.deployer.task_definitions.values()


def test_a_rollback_run_by_hand_for_a_rollout_the_ledger_does_not_hold_changes_nothing(monkeypatch):
    """`rollout` means "act only while this rollout is the newest": with no rollout of the service
    recorded (a typo, another service's id, a ledger emptied since), none is, and the rollback used
    to go ahead unchecked, moving the traffic and paging people for a rollout nobody named."""
    from flows.rollback import rollback
    from rollway.ledger import RolloutNotFound

    env = ledger_env()
    hooks_and_flows_see(monkeypatch, env)
    env.router.weights = Weights(stable=50, canary=50)
    with pytest.raises(RolloutNotFound, match="20261101T000000Z-deadbeef.*Nothing was changed"):
        rollback(reason="bad canary", rollout="20261101T000000Z-deadbeef")
    assert env.router.weights == Weights(stable=50, canary=50)
    assert env.notifier.messages == []
