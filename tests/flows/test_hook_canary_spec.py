"""A `canary` flow run's state hook rolls back with what the run's spec says: the page names the
image (with the digest the canary ran, when known), and the rollback waits as long as the spec
allows for the load balancer to read back and the stable targets to pass their health checks."""

from __future__ import annotations

import logging

import pytest

import flows.rollback
from flows.canary import canary
from rollway.fakes import FakeImagePinner
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment
from tests.flows.test_refusals import hooks_and_flows_see

IMAGE = "webordinary/edit-container:2.0.0"
DIGEST = "sha256:" + "cd" * 32
PINNED = f"webordinary/edit-container@{DIGEST}"


def failing_mid_stage(monkeypatch, pinner=None):
    """The fakes, on which a `canary` run fails with a bug while 5 % of the traffic is on the canary."""
    env = fake_environment()
    env.images = pinner
    hooks_and_flows_see(monkeypatch, env)
    real_observe = env.metrics.observe

    def observe(start, end):
        if env.router.weights.canary == 5:
            raise RuntimeError("a bug mid-stage")
        return real_observe(start, end)

    env.metrics.observe = observe
    return env


def rollback_waits(monkeypatch) -> dict[str, list[float]]:
    """How long the rollback lets the read-back and the stable service's health take, from here on."""
    waits: dict[str, list[float]] = {"verify": [], "healthy": []}
    set_and_verify, wait_healthy = flows.rollback.set_and_verify, flows.rollback.wait_healthy

    def verifying(env, target, timeout_seconds, **kwargs):
        waits["verify"].append(timeout_seconds)
        return set_and_verify(env, target, timeout_seconds, **kwargs)

    def healthy(env, which, timeout_seconds, *args, **kwargs):
        waits["healthy"].append(timeout_seconds)
        return wait_healthy(env, which, timeout_seconds, *args, **kwargs)

    monkeypatch.setattr(flows.rollback, "set_and_verify", verifying)
    monkeypatch.setattr(flows.rollback, "wait_healthy", healthy)
    return waits


def spec_of(**fields) -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)],
                       monitor_seconds=0, **fields)


def page(env) -> str:
    return next(m for s, m in env.notifier.messages if s.startswith("Rollback"))


def test_the_hooks_page_names_the_image_and_the_digest_the_canary_ran(monkeypatch):
    """It said only "Version: <service> ran <revision>": on-call had to look the image up."""
    env = failing_mid_stage(monkeypatch, FakeImagePinner({IMAGE: DIGEST}))
    state = canary(spec=spec_of().model_dump(mode="json"), return_state=True)
    assert state.is_failed(), state
    assert env.router.weights == Weights(stable=100, canary=0), "the hook rolled back"
    ran = next(td for td, image in env.deployer.task_definitions.items() if image == PINNED)
    assert f"Version: {IMAGE} (pinned as {PINNED}) ({env.targets.canary_service} ran {ran})." in page(env)


def test_the_hooks_page_names_the_tag_alone_when_the_tag_names_another_digest_now(monkeypatch):
    """The tag was pushed again since the run pinned it: the digest the canary ran is not known to
    be this tag's, so the page names the tag (and the revision) without a digest."""
    pinner = FakeImagePinner({IMAGE: DIGEST})
    env = failing_mid_stage(monkeypatch, pinner)
    real_observe = env.metrics.observe

    def pushed_again(start, end):
        if env.router.weights.canary == 5:  # after the run pinned it
            pinner.tags[IMAGE] = "sha256:" + "ef" * 32
        return real_observe(start, end)

    env.metrics.observe = pushed_again
    state = canary(spec=spec_of().model_dump(mode="json"), return_state=True)
    assert state.is_failed(), state
    ran = next(td for td, image in env.deployer.task_definitions.items() if image == PINNED)
    assert f"Version: {IMAGE} ({env.targets.canary_service} ran {ran})." in page(env)


def test_the_hooks_rollback_waits_as_long_as_the_runs_spec_allows(monkeypatch):
    """It waited the defaults (30 s read-back, 300 s healthy) whatever the spec said; the
    progressive flows' hooks take the recorded spec's. Never less than the defaults."""
    env = failing_mid_stage(monkeypatch)
    waits = rollback_waits(monkeypatch)
    spec = spec_of(verify_timeout_seconds=120.0, healthy_timeout_seconds=900.0)
    state = canary(spec=spec.model_dump(mode="json"), return_state=True)
    assert state.is_failed(), state
    assert env.router.weights == Weights(stable=100, canary=0)
    assert waits == {"verify": [120.0], "healthy": [900.0]}
    assert f"Version: {IMAGE} (" in page(env)


def test_a_spec_that_no_longer_validates_falls_back_to_the_default_waits_and_says_so(monkeypatch, caplog):
    """The hook validates the run's spec as the flow does; one that does not validate (here the run's
    parameters were edited to a read-back wait over the limit) gives the defaults, said in the log."""
    from flows.hooks import hook_spec

    log = logging.getLogger("test")
    with caplog.at_level(logging.WARNING):
        spec = hook_spec({"spec": {**spec_of().model_dump(mode="json"), "verify_timeout_seconds": 10 ** 9}}, log)
    assert spec is None
    assert "default" in caplog.text and "verify_timeout_seconds" in caplog.text
    assert hook_spec({"spec": spec_of(verify_timeout_seconds=45.0).model_dump(mode="json")}, log) \
        .verify_timeout_seconds == 45.0
    assert hook_spec({}, log) is None


def test_the_hooks_rollback_gives_the_stable_service_the_runs_own_scale_up_wait(monkeypatch):
    """Two of the stable service's four tasks had stopped: the hook's rollback scales it back up
    and waits for ECS to start them. It waited the default 600 s whatever the run's spec said (a
    `progressive_rollout`'s rollback takes its spec's scale_timeout_seconds): an image that takes
    longer to pull and start failed the rollback with users still on the canary."""
    env = failing_mid_stage(monkeypatch)
    t = env.targets
    stable = env.deployer.services[t.stable_service]
    env.deployer.services[t.stable_service] = stable.model_copy(update={"desired": 4, "running": 2})
    waited: list[float] = []
    real_wait = flows.rollback.ecs.wait_stable

    def wait_stable(deployer, services, timeout_seconds=600, *args, **kwargs):
        if list(services) == [t.stable_service]:
            waited.append(timeout_seconds)
        return real_wait(deployer, services, timeout_seconds, *args, **kwargs)

    monkeypatch.setattr(flows.rollback.ecs, "wait_stable", wait_stable)
    state = canary(spec=spec_of(scale_timeout_seconds=1200.0).model_dump(mode="json"), return_state=True)
    assert state.is_failed(), state
    assert env.router.weights == Weights(stable=100, canary=0)
    assert waited == [1200.0], waited


def test_a_rollback_by_hand_of_no_recorded_rollout_says_which_waits_it_took(monkeypatch, caplog):
    """No open rollout, so no spec: the rollback waits the defaults, and said nothing of it; a person
    whose stable service takes longer to start could not tell which bound ran out, nor that it was
    not their spec's."""
    from flows.rollback import rollback

    env = fake_environment()
    env.router.weights = Weights.canary_at(5)
    hooks_and_flows_see(monkeypatch, env)
    with caplog.at_level(logging.INFO):
        result = rollback(reason="5xx on the canary")
    assert result.weights == Weights(stable=100, canary=0)
    assert ("no open rollout's spec to take the rollback's waits from: the defaults, verify_timeout_seconds 30 s, "
            "healthy_timeout_seconds 300 s, scale_timeout_seconds 600 s") in caplog.text, caplog.text
