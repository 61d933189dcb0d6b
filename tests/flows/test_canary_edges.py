"""Edges of the canary flow and its rollback hooks: bad parameters, failed deploys, rollbacks by hand."""

from __future__ import annotations

import pytest

import flows.env
import flows.rollback
from flows.canary import canary
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment, rollout_flows_see

IMAGE = "webordinary/edit-container:2.0.0"


def _hooks_see(monkeypatch, env) -> None:
    """The hooks (and the rollback flow they run) build their environment from blocks: give them the fakes."""
    monkeypatch.setattr(flows.env, "load_environment", lambda *a, **k: env)
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)


def test_a_run_with_invalid_parameters_does_not_roll_back_someone_elses_rollout(monkeypatch):
    """A canary run started (from the UI) with stages that are not increasing fails parameter
    validation before any AWS call; its on_failure hook does not then run a rollback that would
    take the traffic off another rollout live at 25%."""
    env = fake_environment()
    env.router.weights = Weights(stable=75, canary=25)  # a rollout in progress, owned by someone else
    _hooks_see(monkeypatch, env)
    bad = {"image": IMAGE, "stages": [{"weight": 25}, {"weight": 5}]}
    with pytest.raises(Exception):
        canary(spec=bad)
    assert env.router.weights == Weights(stable=75, canary=25), env.router.calls
    assert not [c for c in env.router.calls if c.startswith("set_weights")], env.router.calls
    assert not [c for c in env.deployer.calls if not c.startswith("describe")], env.deployer.calls


def test_a_run_stopped_by_a_rollback_by_hand_is_not_rolled_back_again_by_its_hook(monkeypatch):
    """On-call rolls the rollout back while its run waits at an approval. When the answer
    comes, the run finds the rollout ended (RolloutEnded) and stops without moving traffic;
    its on_failure hook runs no second rollback (a second Rollback alert, and a rollback that
    would hit whatever rollout owns the service by then)."""
    import flows.progressive
    from flows.progressive import progressive_rollout
    from flows.rollback import rollback_recorded
    from rollway.approvals import ApprovalAnswer
    from rollway.fakes import FakeLedger
    from rollway.ledger import RolloutEnded

    env = fake_environment()
    env.ledger = FakeLedger()
    _hooks_see(monkeypatch, env)
    rollout_flows_see(monkeypatch, env)

    def approver(pause, summary):
        rollback_recorded(env, "on-call: support tickets up", actor="oncall")
        return ApprovalAnswer(action="approve", approver="dana", comment="go")

    monkeypatch.setattr(flows.progressive, "prefect_approver", lambda *a, **k: approver)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=100, bake_seconds=120, approval=True)], monitor_seconds=0)
    with pytest.raises(RolloutEnded):
        progressive_rollout(spec=spec, phased=False)
    rollbacks = [s for s, _ in env.notifier.messages if s.startswith("Rollback")]
    assert len(rollbacks) == 1, rollbacks
    assert env.router.calls.count("set_weights 100/0") == 1, env.router.calls


@pytest.mark.parametrize("phases", [
    [{"name": "week 1", "weights": [5]}, {"name": "week 2", "weights": [50, 100]}],
    [{"name": "all", "weights": [5, 50, 100], "decommission": True}],
], ids=["weekly", "decommission"])
def test_a_canary_run_given_a_phase_plan_it_would_ignore_is_refused_before_any_aws_call(monkeypatch, phases):
    """The canary flow runs every stage in one run and never decommissions: it used to accept
    weekly phases and run 5 -> 50 -> 100 in one go, without a word."""
    from flows.canary import RolloutRefused

    env = fake_environment()
    _hooks_see(monkeypatch, env)
    rollout_flows_see(monkeypatch, env)
    spec = {"image": IMAGE, "stages": [{"weight": w, "bake_seconds": 120} for w in (5, 50, 100)], "phases": phases}

    with pytest.raises(RolloutRefused, match="canary flow .*use the progressive flow") as refused:
        canary(spec=spec)

    assert "\n" not in str(refused.value)
    assert env.router.calls == [] and env.deployer.calls == [] and env.notifier.messages == []


@pytest.mark.parametrize("given", [{}, {"phases": [{"name": "all", "weights": [5, 50, 100]}]}],
                         ids=["no phases", "one phase"])
def test_a_canary_run_of_stages_without_weekly_phases_is_not_refused(given):
    from flows.canary import phase_plan_refusal

    spec = RolloutSpec.model_validate({"image": IMAGE, "stages": [{"weight": w} for w in (5, 50, 100)], **given})
    assert phase_plan_refusal(spec) is None
    assert phase_plan_refusal(RolloutSpec(image=IMAGE)) is None  # the default plan every spec carries
