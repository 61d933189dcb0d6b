"""A rollback that stops part-way: the ledger keeps what it did and what it did not, and the
incident report says so.

Only a finished rollback's end was recorded, so a rollback whose notice SNS refused (the traffic
back on stable, the canary at 0) read in the incident report as "Which steps were done is not
recorded", the traffic's return "not confirmed": on-call could not tell from the report whether
users were still on the version rolled back, nor what running it again had left to do.
"""
from __future__ import annotations

import time

import pytest

import rollway.cli.ops as ops
from flows.rollback import RollbackIncomplete, rollback
from rollway.fakes import FakeLedger, FlakyFlagStore
from rollway.flags import FlagState
from rollway.aws.ecs import EcsDeployer
from rollway.aws.environment import aws_environment
from rollway.clock import ClockSettings
from rollway.ledger import ROLLBACK_STOPPED, RolloutRecord, Transition, new_rollout_id, utc
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.reports import incident_report
from rollway.spec import FlagBinding, RolloutSpec, Stage
from tests.flows.test_abort_failed_rollback import RefusingNotifier
from tests.flows.test_rollback_claim import rolling_back
from tests.flows.moto_env import saved_blocks
from tests.flows.test_canary_moto import read_back


def open_rollout(aws):
    """A rollout at 5 % on the embedded AWS that no live run owns (its process died), for `rollway abort`."""
    t = aws.targets
    deployer = EcsDeployer(aws.get_client("ecs"), t)
    env = aws_environment(aws.get_client, t, ClockSettings().build())
    before = deployer.describe(t.stable_service)
    spec = RolloutSpec(image=f"{aws.topology.repository_uri}:2.0.0", stages=[Stage(weight=5), Stage(weight=100)])
    release = deployer.register_revision(spec.image, before.task_definition)
    aws.get_client("ecs").update_service(cluster=t.cluster, service=t.canary_service, taskDefinition=release,
                                         desiredCount=1)
    env.router.set_weights(Weights.canary_at(5))
    now = env.clock.now()
    shifted = Transition(at=now - 590, kind="shift", actor="run-1", from_weights=Weights(stable=100, canary=0),
                         to_weights=Weights.canary_at(5), from_stage=-1, to_stage=0)
    env.ledger.create(RolloutRecord(
        service=t.canary_service, rollout_id=new_rollout_id(now - 600), image=spec.image,
        spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0, weights=Weights.canary_at(5),
        previous_task_definition=before.task_definition, canary_task_definition=release,
        stable_desired=before.desired, history=[shifted]), owner="process/gone", now=now - 600, lease_seconds=0)
    return env


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_rollback_whose_notice_failed_is_reported_with_the_traffic_back_and_the_notice_not_sent(monkeypatch):
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    env.notifier = RefusingNotifier()
    t = env.targets

    with pytest.raises(RollbackIncomplete):
        rollback(reason="5xx on the canary")

    record = env.ledger.get(t.canary_service)
    assert record.phase is RolloutPhase.ROLLING_BACK
    stopped = record.last_transition(ROLLBACK_STOPPED)
    assert stopped is not None and stopped.to_weights == Weights(stable=100, canary=0), record.history
    report = flat(incident_report(record, alert_topic=t.alert_topic))
    assert "Which steps were done is not recorded" not in report, report
    assert (f"by {utc(stopped.at)}: the load balancer read back **100/0** (stable/canary), by operator, whose "
            "rollback then stopped before it finished") in report, report
    assert "**Done:** weights 100/0 verified; webordinary-edit-service-canary scaled to 0 on" in report, report
    assert "**Not done:** notify (AWS refused sns:Publish (AuthorizationError" in report, report


def test_a_rollback_that_could_not_move_the_traffic_is_reported_with_what_it_did_not_do(monkeypatch):
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    t = env.targets
    env.deployer.services[t.stable_service] = env.deployer.services[t.stable_service].model_copy(
        update={"desired": 1, "running": 1})
    env.deployer.unstable.add(t.stable_service)

    state = rollback(reason="5xx on the canary", return_state=True)

    assert state.is_failed()
    record = env.ledger.get(t.canary_service)
    stopped = record.last_transition(ROLLBACK_STOPPED)
    # The weights it read once the move failed: users were still on the canary when it stopped.
    assert stopped is not None and stopped.to_weights == Weights.canary_at(5), record.history
    # Stopped before its move read the rule: what it moved nothing from is what it read back.
    assert stopped.from_weights == Weights.canary_at(5), stopped
    report = flat(incident_report(record, alert_topic=t.alert_topic))
    assert f"by {utc(stopped.at)}: the load balancer read back **95/5** (stable/canary)" in report, report
    assert "**Users get since the rollback:** the canary still takes 5 % (95/5 stable/canary)" in report, report
    # Its UpdateService took: stable stays asked for 4 tasks (ECS keeps trying to start them), and
    # the page and the report said the rollback had done nothing.
    asked = f"set {t.stable_service}'s desired count to 4 (it had 1/1 tasks before taking the traffic), not seen steady"
    assert f"**Done:** {asked}" in report, report
    [(subject, page)] = env.notifier.messages
    assert subject == f"Rollback FAILED: {t.canary_service}" and f"Done before it failed: {asked}." in page, page
    not_done = f"**Not done:** move the traffic to {t.stable_service} (services {t.stable_service} not stable"
    assert not_done in report, report
    assert f"scale {t.canary_service} to 0 and restore its task definition" in report, report


@pytest.mark.parametrize("spec_seconds, waited", [(1500.0, 1500.0), (120.0, 600.0)])
def test_the_stable_scale_up_waits_as_long_as_the_rollouts_spec_gives_ecs_and_never_less_than_ten_minutes(
        monkeypatch, spec_seconds, waited):
    """A large image takes minutes to start on Fargate, and the spec's scale_timeout_seconds says
    how long: the rollback waited 600 s for the old service's tasks all the same, and failed with
    users still on the canary after a decommission had scaled it to 0."""
    from tests.flows.test_rollback_claim import SPEC

    spec = SPEC.model_copy(update={"scale_timeout_seconds": spec_seconds})
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0, spec=spec)
    t = env.targets
    env.deployer.services[t.stable_service] = env.deployer.services[t.stable_service].model_copy(
        update={"desired": 0, "running": 0})
    waits, real = [], env.deployer.wait_stable

    def wait_stable(services, timeout_seconds, expected=None):
        waits.append((list(services), timeout_seconds))
        return real(services, timeout_seconds, expected)

    env.deployer.wait_stable = wait_stable

    result = rollback(reason="5xx on the canary")

    assert result.weights == Weights(stable=100, canary=0)
    assert waits == [([t.stable_service], waited)], waits


def test_an_abort_whose_topic_is_gone_is_reported_with_the_traffic_back_on_aws(aws, capsys):
    """On the embedded AWS: the alert topic was deleted, so the page the abort's rollback sends fails."""
    t = aws.targets
    env = open_rollout(aws)
    blocks = saved_blocks(aws, "stopped")
    aws.get_client("sns").delete_topic(TopicArn=aws.topology.topic_arn)

    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=blocks, credentials_block=blocks)

    assert code == 1, capsys.readouterr()
    assert read_back(aws)[0] == Weights(stable=100, canary=0)
    record = env.ledger.get(t.canary_service)
    report = flat(incident_report(record, alert_topic=t.alert_topic, now=time.time(), targets=t))
    assert "by erin, whose rollback then stopped before it finished" in report, report
    assert "**Not done:** notify (SNS topic 'webordinary-alerts' not found" in report, report
    assert "**Exposed for:** at least" not in report, report


def test_a_rollback_whose_flag_write_failed_does_not_count_the_flag_step_as_done(monkeypatch):
    """The only bound flag's write refused: its step was listed as "flags disabled: none needed"."""
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    env.flags = FlakyFlagStore([FlagState(feature="beta_editor", enabled=True, percentage=5)], failing=["beta_editor"])
    t = env.targets

    with pytest.raises(RollbackIncomplete):
        rollback(reason="5xx on the canary", bindings=[FlagBinding(feature="beta_editor")])

    report = flat(incident_report(env.ledger.get(t.canary_service), alert_topic=t.alert_topic))
    done = report[report.index("**Done:**"):report.index("**Not done:**")]
    assert "flags disabled" not in done, done
    assert "**Not done:** disable every bound flag (could not disable bound feature flag(s) beta_editor" in report, report


def test_a_rollback_that_paged_people_of_its_failed_step_is_reported_as_having_paged_them(monkeypatch):
    """The traffic back, the flag's write refused: the rollback paged people of the failed step and
    stopped. The report's Notification said "Not confirmed ... the finishing run sends it", as if
    nobody had been paged."""
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    env.flags = FlakyFlagStore([FlagState(feature="beta_editor", enabled=True, percentage=5)], failing=["beta_editor"])
    t = env.targets

    with pytest.raises(RollbackIncomplete):
        rollback(reason="5xx on the canary", bindings=[FlagBinding(feature="beta_editor")])

    (subject, page), = env.notifier.messages
    assert subject == f"Rollback: {t.canary_service}" and "Feature flags NOT disabled: beta_editor" in page, page
    record = env.ledger.get(t.canary_service)
    stopped = record.last_transition(ROLLBACK_STOPPED)
    notice = flat(incident_report(record, alert_topic=t.alert_topic).split("## Notification")[1].split("##")[0])
    assert (f"People were paged on `{t.alert_topic}` by {utc(stopped.at)} by operator, whose rollback put the traffic "
            "back and stopped with a step not done") in notice, notice
    assert "SNS message id `msg-1`" in notice and "Not confirmed" not in notice, notice


def test_a_rollback_begun_on_real_time_and_stopped_on_a_faster_clock_says_its_time_to_restore_in_wall_time(
        monkeypatch):
    """`rollway abort` began the rollback on real time; a run on a clock 4 h ahead of the wall moved
    the traffic back and stopped when SNS refused its notice. Its stop, stamped on its own clock
    alone, left the report no way to subtract the two: the time to restore was left out."""
    from rollway.ledger import begin_rollback
    from tests.flows.fake_env import STABLE_TD, fake_environment
    from tests.flows.test_refusals import hooks_and_flows_see
    from tests.flows.test_rollback_claim import SERVICE_TD, SPEC

    env = fake_environment()
    env.ledger = FakeLedger()
    t = env.targets
    ahead = 4 * 3600
    now = env.clock.now()
    first = RolloutRecord(service=t.canary_service, rollout_id=new_rollout_id(now - 100), image=SPEC.image,
                          spec_json=SPEC.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
                          weights=Weights.canary_at(5), previous_task_definition=STABLE_TD, stable_desired=4)
    env.ledger.create(first, owner="process/old", now=now - 100, lease_seconds=0)
    # `rollway abort` with no run owning the rollout: on real time, which it keeps beside it.
    begin_rollback(env.ledger, t.canary_service, actor="erin", reason="aborted by erin: errors",
                   now=now - ahead - 5, rollout=first.rollout_id, wall=now - ahead - 5)
    env.router.weights = Weights.canary_at(5)
    env.deployer.services[t.canary_service] = env.deployer.services[t.canary_service].model_copy(
        update={"task_definition": SERVICE_TD, "desired": 2, "running": 2})
    env.notifier = RefusingNotifier()
    env.wall = lambda: env.clock.now() - ahead  # the rollback's run: its clock 4 h ahead of the wall
    hooks_and_flows_see(monkeypatch, env)

    with pytest.raises(RollbackIncomplete):
        rollback(reason="5xx on the canary")

    record = env.ledger.get(t.canary_service)
    stopped = record.last_transition(ROLLBACK_STOPPED)
    assert stopped is not None and stopped.to_weights == Weights(stable=100, canary=0), record.history
    report = flat(incident_report(record, alert_topic=t.alert_topic))
    assert "**Traffic back on stable:** " in report, report
    said = report.split("**Traffic back on stable:** ", 1)[1]
    assert said.startswith(("5 s after", "6 s after", "7 s after")), said
    assert "on the wall clock" in said.partition(")")[0], said
