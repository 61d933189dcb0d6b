"""A shift whose ModifyRule answer is lost reads the weights back, on the embedded AWS, with no
flags bound (flows/engine.shift_to's set_and_verify) and with flags bound (its transaction's
write, tasks/undoable.set_weights): when the shift landed, the rollout goes on.

It used to fail the stage on the lost answer, and the flow's failure hook rolled back a shift
that had in fact gone through.
"""
from __future__ import annotations

from functools import partial

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ReadTimeoutError
from prefect import flow

from flows.engine import shift_to
from rollway.aws.elbv2 import AlbRouter
from rollway.fakes import FakeFlagStore
from rollway.flags import FlagState
from rollway.model import Weights
from rollway.spec import FlagBinding, RolloutSpec, Stage
from tests.botocore_events import on_operation
from tests.flows.fake_env import fake_environment

BEFORE, SHIFTED = Weights(stable=100, canary=0), Weights.canary_at(5)


@flow
def first_stage(env, spec):
    return shift_to(env, spec, 5, 4, BEFORE, actor="operator", rollout="r-1")


def spec(**fields) -> RolloutSpec:
    return RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[Stage(weight=5), Stage(weight=100)],
                       monitor_seconds=0, **fields)


def on_moto(aws):
    """The fakes' environment with the load balancer on moto, a canary task registered in its group
    (moto reports every registered target healthy)."""
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    elbv2.register_targets(TargetGroupArn=router._lookups().canary_arn, Targets=[{"Id": "10.0.1.10", "Port": 8080}])
    env = fake_environment()
    env.targets, env.router = aws.targets, router
    return env, elbv2


# A handler on the load balancer client's ModifyRule, for the test only (clients are shared).
hooked = partial(on_operation, operation="ModifyRule")


def test_a_shift_that_landed_with_its_answer_lost_goes_on(aws, watch_calls):
    env, elbv2 = on_moto(aws)
    assert env.router.get_weights() == BEFORE

    def lose_answer(**_):  # ModifyRule went through on moto; its answer never arrives
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    calls = watch_calls(elbv2)
    with hooked(elbv2, "after-call", lose_answer):
        verified, updates = first_stage(env, spec())
    assert verified == SHIFTED and updates == []
    assert env.router.get_weights() == SHIFTED
    assert calls.count("ModifyRule") == 1, calls  # read back, not written again


def test_a_shift_that_did_not_land_with_its_answer_lost_fails(aws):
    """The connection dropped before ModifyRule reached AWS: the read-back shows the old weights."""
    env, elbv2 = on_moto(aws)

    def lost_before_sending(**_):
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    with hooked(elbv2, "before-call", lost_before_sending), pytest.raises(ReadTimeoutError):
        first_stage(env, spec(verify_timeout_seconds=0.2))
    assert env.router.get_weights() == BEFORE


def test_a_refused_shift_fails_at_once(aws, watch_calls):
    """AWS answered that it did not act: nothing to read back."""
    env, elbv2 = on_moto(aws)

    def refuse(**_):
        body = {"Error": {"Code": "AccessDenied", "Message": "not allowed"}, "ResponseMetadata": {"HTTPStatusCode": 403}}
        return AWSResponse(aws.endpoint_url, 403, {}, None), body

    calls = watch_calls(elbv2)
    with hooked(elbv2, "before-call", refuse), pytest.raises(ClientError, match="AccessDenied"):
        first_stage(env, spec())
    assert "DescribeRules" not in calls[calls.index("ModifyRule"):], calls
    assert env.router.get_weights() == BEFORE


def test_an_error_not_from_aws_is_not_read_back(aws, watch_calls):
    """Only an AWS call's failure can be a lost answer: anything else is raised at once."""
    env, elbv2 = on_moto(aws)

    def broken(weights):
        raise RuntimeError("a bug before the write")

    env.router.set_weights = broken
    calls = watch_calls(elbv2)
    with pytest.raises(RuntimeError, match="a bug"):
        first_stage(env, spec())
    assert "DescribeRules" not in calls, calls


FEATURE = "use_sqs_architecture"


def test_a_shift_with_bound_flags_that_landed_with_its_answer_lost_goes_on_with_its_flags(aws, watch_calls):
    """With flags bound, the shift runs in a transaction whose undo was staged before the write:
    the lost answer failed the write, the undo put the weights back, and the run's hook rolled
    back a healthy rollout. The read-back now decides there too."""
    env, elbv2 = on_moto(aws)
    env.flags = FakeFlagStore([FlagState(feature=FEATURE)])

    def lose_answer(**_):
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    calls = watch_calls(elbv2)
    with hooked(elbv2, "after-call", lose_answer):
        verified, updates = first_stage(env, spec(flags=[FlagBinding(feature=FEATURE)]))
    assert verified == SHIFTED and env.router.get_weights() == SHIFTED
    assert [(u.after.enabled, u.after.percentage) for u in updates] == [(True, 5)]
    assert env.flags.flags[FEATURE].percentage == 5
    assert calls.count("ModifyRule") == 1, calls  # read back; neither written again nor undone


def test_a_shift_with_bound_flags_that_did_not_land_fails_with_the_flags_unmoved(aws):
    env, elbv2 = on_moto(aws)
    env.flags = FakeFlagStore([FlagState(feature=FEATURE)])

    def lost_before_sending(**_):
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    with hooked(elbv2, "before-call", lost_before_sending), pytest.raises(ReadTimeoutError):
        first_stage(env, spec(flags=[FlagBinding(feature=FEATURE)], verify_timeout_seconds=0.2))
    assert env.router.get_weights() == BEFORE
    assert not env.flags.flags[FEATURE].enabled


def throttled_after_the_write():
    """Handlers that throttle the first DescribeRules after ModifyRule's answer, as AWS answers
    after botocore's own retries (raised from the event, so botocore does not try it again)."""
    state = {"written": False, "throttled": False}

    def written(**_):
        state["written"] = True

    def throttle(**_):
        if state["written"] and not state["throttled"]:
            state["throttled"] = True
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeRules")

    return written, throttle, state


@pytest.mark.parametrize("flags", [False, True], ids=["no flags", "flags bound"])
def test_a_read_back_throttled_once_reads_again_and_the_shift_goes_on(aws, watch_calls, flags):
    """The shift landed; the first read of its weights was throttled. The read-back is a wait of
    verify_timeout_seconds: it reads again within it, as the checks before a stage do, rather than
    failing the stage over one throttled DescribeRules (the run's hook then rolled back a healthy
    rollout whose shift had landed)."""
    env, elbv2 = on_moto(aws)
    bindings = []
    if flags:
        env.flags = FakeFlagStore([FlagState(feature=FEATURE)])
        bindings = [FlagBinding(feature=FEATURE)]

    written, throttle, state = throttled_after_the_write()
    calls = watch_calls(elbv2)
    # A read is made again only while the bound leaves the second before it, and on a loaded machine
    # moto's reads can take most of a few seconds. Ended by the read that matches, a long bound
    # costs nothing here.
    with hooked(elbv2, "after-call", written), \
            on_operation(elbv2, "before-call", throttle, operation="DescribeRules"):
        verified, _ = first_stage(env, spec(flags=bindings, verify_timeout_seconds=60))
    assert state["throttled"] and verified == SHIFTED and env.router.get_weights() == SHIFTED
    after_write = calls[calls.index("ModifyRule"):]
    assert after_write.count("DescribeRules") >= 1 and calls.count("ModifyRule") == 1, calls


def test_a_read_back_throttled_until_its_bound_fails_with_the_throttling(aws):
    env, elbv2 = on_moto(aws)

    def throttle(**_):
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeRules")

    env.router.resolve()  # the lookups before the write are not what this test throttles
    with hooked(elbv2, "before-call", throttle, operation="DescribeRules"), \
            pytest.raises(ClientError, match="Throttling"):
        first_stage(env, spec(verify_timeout_seconds=1.5))
