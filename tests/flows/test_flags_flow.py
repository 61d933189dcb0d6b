"""The set-flags flow against the embedded AWS, and the flag tasks on the fake store."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pytest
from prefect import flow
from prefect.exceptions import ParameterTypeError

from blocks.credentials import credentials_for_endpoint
from flows.env import AccountNotLoaded
from flows.flags import set_flags
from rollway.aws.flags import DynamoFlagStore
from rollway.fakes import FakeFlagStore, FakeLedger, FlakyFlagStore
from rollway.flag_binding import FlagChange
from rollway.flags import FlagState, FlagStoreUnavailable, InvalidFlagInput, InvalidPercentage, MalformedFlag, UnknownFlag
from rollway.spec import FlagBinding
from tasks import flags as flag_tasks

SQS = "use_sqs_architecture"
INTERRUPTS = "enable_interrupt_handling"
CREDENTIALS = "flags-test-embedded-aws"


@pytest.fixture
def dynamo(aws) -> DynamoFlagStore:
    """The embedded flags table with two seed flags, and a saved credentials block for it."""
    credentials_for_endpoint(aws.endpoint_url, aws.targets.region).save(CREDENTIALS, overwrite=True)
    store = DynamoFlagStore(aws.get_client("dynamodb"), aws.targets)
    for feature in (SQS, INTERRUPTS):
        store.put(FlagState(feature=feature), expected_version=0, actor="seed", now=1.0)
    return store


def test_set_flags_enables_disables_and_creates_with_an_audit_trail(dynamo):
    updates = set_flags(
        changes=[
            FlagChange(feature=SQS, enabled=True, percentage=5, reason="week 1"),
            FlagChange(feature=INTERRUPTS, enabled=False),
            FlagChange(feature="new_editor", enabled=True, percentage=1, create=True),
        ],
        actor="alice",
        aws_credentials_block=CREDENTIALS,
    )
    assert [(u.feature, u.changed) for u in updates] == [(SQS, True), (INTERRUPTS, False), ("new_editor", True)]
    stored = dynamo.get(SQS)
    assert (stored.enabled, stored.percentage, stored.version, stored.updated_by) == (True, 5.0, 2, "alice")
    assert dynamo.audit(SQS)[0].reason == "week 1"
    assert dynamo.get("new_editor").percentage == 1.0


def test_a_flag_created_by_an_earlier_change_of_the_run_is_not_refused_as_unknown(dynamo):
    """Created off in one change and enabled in the next, the flag was refused as misspelt ("check
    the spelling, or tick create"), nothing written: the check read the table as it was before the
    run, where no change had created it yet."""
    updates = set_flags(changes=[FlagChange(feature="new_editor", create=True),
                                 FlagChange(feature="new_editor", enabled=True, percentage=1)],
                        actor="alice", aws_credentials_block=CREDENTIALS)
    assert [u.describe() for u in updates] == ["new_editor: absent -> off 0% (v1)", "new_editor: off 0% -> on 1% (v2)"]


def test_set_flags_writes_nothing_when_one_change_is_bad(dynamo):
    with pytest.raises(UnknownFlag, match="typo_flag"):
        set_flags(
            changes=[FlagChange(feature=SQS, enabled=True), FlagChange(feature="typo_flag", enabled=True)],
            aws_credentials_block=CREDENTIALS,
        )
    with pytest.raises(InvalidPercentage, match="percentage 150 is outside 0..100"):
        set_flags(changes=[{"feature": SQS, "percentage": 150}], aws_credentials_block=CREDENTIALS)
    assert [f.version for f in dynamo.list()] == [1, 1]


def test_an_unknown_flag_is_refused_on_one_line_saying_what_to_do_from_the_form(dynamo, caplog):
    """A misspelt flag failed the run with "create it first", which named no way to from the form,
    under the tracebacks of the task and of the flow, as if rollway had crashed."""
    import logging

    with caplog.at_level(logging.INFO):
        state = set_flags(changes=[FlagChange(feature="use_sqs_architectur", enabled=True)],
                          aws_credentials_block=CREDENTIALS, return_state=True)

    assert state.is_failed()
    with pytest.raises(UnknownFlag) as refused:
        state.result()
    message = str(refused.value)
    assert "'use_sqs_architectur'" in message and "check the spelling (`rollway flags list`" in message, message
    assert "tick `create` in its change" in message and "nothing was written" in message
    assert "Traceback" not in caplog.text, caplog.text
    assert [f.version for f in dynamo.list()] == [1, 1]


def test_set_flags_refuses_credentials_for_another_region_before_any_call(aws, _get_client_for_region):
    """The flow once built its clients in the credentials' region: it wrote into eu-west-1's
    flags table while the targets (and every rollout flow) are in us-west-2."""
    other = _get_client_for_region("eu-west-1")
    other("dynamodb").create_table(
        TableName=aws.targets.flags_table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "feature", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "feature", "AttributeType": "S"}],
    )
    credentials_for_endpoint(aws.endpoint_url, "eu-west-1").save("flags-test-eu-west-1", overwrite=True)
    with pytest.raises(AccountNotLoaded, match="eu-west-1"):
        set_flags(changes=[FlagChange(feature="new_editor", enabled=True, create=True)],
                  aws_credentials_block="flags-test-eu-west-1")
    assert other("dynamodb").scan(TableName=aws.targets.flags_table)["Items"] == []


def test_set_flags_with_a_block_without_region_acts_in_the_targets_region(aws, _get_client_for_region, monkeypatch):
    """Not in the worker's AWS_DEFAULT_REGION."""
    other = _get_client_for_region("eu-west-1")
    other("dynamodb").create_table(
        TableName=aws.targets.flags_table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "feature", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "feature", "AttributeType": "S"}],
    )
    credentials_for_endpoint(aws.endpoint_url, aws.targets.region).model_copy(
        update={"region_name": None}).save("flags-test-no-region", overwrite=True)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    set_flags(changes=[FlagChange(feature="new_editor", enabled=True, create=True)],
              aws_credentials_block="flags-test-no-region")
    assert other("dynamodb").scan(TableName=aws.targets.flags_table)["Items"] == []
    assert DynamoFlagStore(aws.get_client("dynamodb"), aws.targets).get("new_editor").enabled


def test_flag_binding_tasks_on_the_fake_store():
    store = FakeFlagStore([FlagState(feature=SQS, version=1)])
    bindings = [FlagBinding(feature=SQS)]

    @flow
    def stage_then_rollback() -> tuple[list, list]:
        applied = flag_tasks.apply_bindings(store, bindings, 25, actor="rollout-1", rollout="r1", now=10.0)
        disabled = flag_tasks.disable_patiently(store, bindings, actor="judge", reason="error rate", now=20.0)
        return applied, disabled

    applied, disabled = stage_then_rollback()
    assert [u.describe() for u in applied] == ["use_sqs_architecture: off 0% -> on 25% (v2)"]
    assert [u.describe() for u in disabled] == ["use_sqs_architecture: on 25% -> off 25% (v3)"]


def test_the_flags_a_patient_disable_found_missing_are_named_whatever_its_tries_end_in():
    """The rollback pages a bound flag the table does not hold as NOT FOUND from the disable's
    ``missing`` alone (no read of its own): a try that failed on another flag must not lose it."""
    from rollway.flag_binding import FlagsNotDisabled

    bindings = [FlagBinding(feature=SQS), FlagBinding(feature="gone_flag")]
    done = flag_tasks.disable_patiently(FakeFlagStore([FlagState(feature=SQS, enabled=True)]), bindings,
                                        actor="judge", reason="errors", now=20.0, sleep=lambda _: None)
    assert [u.feature for u in done] == [SQS] and done.missing == ("gone_flag",)

    flaky = FlakyFlagStore([FlagState(feature=SQS, enabled=True)], failing=[SQS])
    with pytest.raises(FlagsNotDisabled) as failed:
        flag_tasks.disable_patiently(flaky, bindings, actor="judge", reason="errors", now=20.0, sleep=lambda _: None)
    assert failed.value.updates.missing == ("gone_flag",)


class FlakyStore(FakeFlagStore):
    """Unreachable for the first ``outages`` reads; every read of a flag in ``malformed`` finds an
    item rollway cannot use."""

    def __init__(self, outages: int, flags=(), malformed=()) -> None:
        super().__init__(flags)
        self.outages = outages
        self.malformed = set(malformed)
        self.attempts = 0

    def get(self, feature):
        self.attempts += 1
        if self.attempts <= self.outages:
            raise FlagStoreUnavailable("throttled")
        if feature in self.malformed:
            raise MalformedFlag(feature, ["enabled 'yes' is not a boolean"], {"feature": feature}, 0)
        return super().get(feature)


def test_only_an_unreachable_store_is_retried():
    flaky = FlakyStore(outages=1, flags=[FlagState(feature=SQS, enabled=True)])
    missing = FlakyStore(outages=0)
    get_flag = flag_tasks.get_flag.with_options(retry_delay_seconds=0)

    @flow
    def read() -> FlagState | None:
        return get_flag(flaky, SQS)

    @flow
    def set_missing() -> None:
        set_flag = flag_tasks.set_flag.with_options(retry_delay_seconds=0)
        set_flag(missing, FlagChange(feature="no_such_flag", enabled=True), actor="ops", now=1.0)

    assert read().enabled and flaky.attempts == 2
    with pytest.raises(UnknownFlag):
        set_missing()
    assert missing.attempts == 1, "an unknown flag is not retried"


@pytest.mark.parametrize("code", ["AccessDeniedException", "ResourceNotFoundException"])
def test_a_flag_table_the_role_may_not_read_fails_at_once(aws, dynamo, code):
    """A role without dynamodb:GetItem on the flag table (or a table that does not exist) is
    refused the same way a second later: the read was asked three times, 1 s and 5 s apart."""
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    asked: list[str] = []

    def refuse(**_):
        asked.append("GetItem")
        raise ClientError({"Error": {"Code": code, "Message": "not authorized"}}, "GetItem")

    @flow
    def read() -> FlagState | None:
        return flag_tasks.get_flag(dynamo, SQS)

    with on_operation(aws.get_client("dynamodb"), "before-parameter-build", refuse, operation="GetItem"), \
            pytest.raises(FlagStoreUnavailable, match=code):
        read()
    assert asked == ["GetItem"]


def test_a_malformed_bound_flag_fails_the_check_at_once():
    """An item written outside rollway reads the same way every time: the preflight's check used to
    retry it as an outage (two retries, their delays, and "Retry" lines in the log) before failing."""
    malformed = FlakyStore(outages=0, malformed=[SQS])
    check = flag_tasks.check_bindings.with_options(retry_delay_seconds=0)

    @flow
    def preflight() -> None:
        check(malformed, [FlagBinding(feature=SQS)])

    with pytest.raises(MalformedFlag, match="enabled 'yes' is not a boolean"):
        preflight()
    assert malformed.attempts == 1


BOTH = [FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)]


def test_when_one_bound_flag_cannot_follow_a_shift_the_others_go_back_with_the_weights():
    from flows.progressive import run_progressive
    from rollway.approvals import auto_approve
    from rollway.model import Weights
    from rollway.spec import RolloutSpec, Stage
    from tests.flows.fake_env import fake_environment

    @flow
    def rollout(env, spec):
        return run_progressive(env, spec, auto_approve(), owner="run-1", phased=False)

    env = fake_environment()
    env.ledger = FakeLedger()
    env.flags = FlakyFlagStore([FlagState(feature=SQS), FlagState(feature=INTERRUPTS)], failing=[INTERRUPTS])
    spec = RolloutSpec(image="webordinary/edit-container:2.0.0", flags=BOTH, monitor_seconds=0,
                       stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)])
    with pytest.raises(FlagStoreUnavailable, match=INTERRUPTS):
        rollout(env, spec)
    assert env.router.weights == Weights(stable=100, canary=0), "the weights went back"
    sqs = env.flags.get(SQS)
    assert (sqs.enabled, sqs.percentage) == (False, 0.0), "and so did the flag that had followed them"


@flow
def judge_rollback(env):
    from flows.rollback import execute_rollback

    return execute_rollback(env, "error rate 7%", actor="judge", bindings=BOTH)


def both_flags_on(store: type[FlakyFlagStore], failing: str):
    """The fakes' environment with both bound flags on at 25 % in ``store``, ``failing``'s writes failing."""
    from tests.flows.fake_env import fake_environment

    env = fake_environment()
    env.flags = store([FlagState(feature=SQS, enabled=True, percentage=25),
                       FlagState(feature=INTERRUPTS, enabled=True, percentage=25)], failing=[failing])
    return env


def test_a_rollback_that_cannot_disable_a_flag_still_tells_people_and_stays_open_to_finish():
    from flows.rollback import RollbackIncomplete
    from rollway.model import Weights

    rollback = judge_rollback
    env = both_flags_on(FlakyFlagStore, SQS)
    with pytest.raises(RollbackIncomplete, match=f"traffic is back .* could not: disable every bound flag .*{SQS}"):
        rollback(env)
    assert env.router.weights == Weights(stable=100, canary=0)
    subject, body = env.notifier.messages[-1]
    assert subject.startswith("Rollback") and f"Feature flags disabled: {INTERRUPTS}." in body
    assert f"Feature flags NOT disabled: {SQS}" in body and "Run the rollback again" in body
    env.flags.failing.clear()
    again = rollback(env)
    assert again.flags_disabled == (SQS,) and env.flags.get(SQS).enabled is False


def test_a_rollback_whose_flag_write_lost_its_answer_says_the_flag_may_be_off_not_that_it_is_on():
    """A disable whose PutItem answer was lost may have landed: the page listed it under "NOT
    disabled" beside "may have been written", which contradicts itself; on-call reads it as still on."""
    from flows.rollback import RollbackIncomplete
    from rollway.flags import FlagWriteUnanswered

    class LostAnswerStore(FlakyFlagStore):
        landed: set[str] = set()

        def put(self, flag, **kwargs):
            if flag.feature in self.failing:
                super(FlakyFlagStore, self).put(flag, **kwargs)  # it landed; its answer never came
                self.landed.add(flag.feature)
                raise FlagWriteUnanswered(flag.feature, f"PutItem on {flag.feature}: read timeout")
            return super().put(flag, **kwargs)

        def get(self, feature):
            # The table stopped answering for it: the rollback's later tries cannot read the write back.
            if feature in self.landed:
                raise FlagStoreUnavailable(f"GetItem on {feature}: read timeout")
            return super().get(feature)

    env = both_flags_on(LostAnswerStore, SQS)
    with pytest.raises(RollbackIncomplete):
        judge_rollback(env)
    subject, body = env.notifier.messages[-1]
    assert "Feature flags NOT disabled" not in body, body
    assert f"Feature flags that MAY NOT be disabled (the answer to their write was lost): {SQS}" in body, body
    assert f"rollway flags get {SQS}" in body and f"Feature flags disabled: {INTERRUPTS}." in body


def flags_summary(state) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    return next(a.data for a in found if a.key == "set-flags")


def test_a_set_flags_run_ends_with_a_summary_of_each_change(dynamo):
    state = set_flags(changes=[FlagChange(feature=SQS, enabled=True, percentage=5, reason="week 1"),
                               FlagChange(feature=INTERRUPTS, enabled=False)],
                      actor="alice", aws_credentials_block=CREDENTIALS, return_state=True)
    assert state.is_completed()
    text = flags_summary(state)
    assert "# Flag changes by alice" in text and "Stopped" not in text
    assert f"| 1 | {SQS} | enabled True, percentage 5.0 | {SQS}: off 0% -> on 5% (v2) |" in text
    assert f"| 2 | {INTERRUPTS} | enabled False | {INTERRUPTS}: unchanged, off 0% (v1) |" in text


def three_changes_failing_at_the_second() -> str:
    """The summary of a set-flags run whose second change (of three, on SQS and INTERRUPTS) fails."""
    state = set_flags(changes=[FlagChange(feature=SQS, enabled=True, percentage=5),
                               FlagChange(feature=INTERRUPTS, enabled=True),
                               FlagChange(feature=SQS, percentage=25)],
                      actor="alice", aws_credentials_block=CREDENTIALS, return_state=True)
    assert state.is_failed()
    return flags_summary(state)


def test_a_set_flags_run_that_stops_part_way_says_which_flags_were_written(dynamo, monkeypatch):
    """The first change is written before the second one's write fails: the summary must not
    read as if nothing, or everything, was done."""
    import flows.flags

    flaky = FlakyFlagStore([FlagState(feature=SQS), FlagState(feature=INTERRUPTS)], failing=[INTERRUPTS])
    monkeypatch.setattr(flows.flags, "DynamoFlagStore", lambda client, targets, **_: flaky)
    # Retried as ever, without the 1-s and 5-s waits between.
    monkeypatch.setattr(flag_tasks, "set_flag", flag_tasks.set_flag.with_options(retry_delay_seconds=0))
    text = three_changes_failing_at_the_second()
    assert "**Stopped** after 1 of 3 changes" in text and "ProvisionedThroughputExceededException" in text
    assert f"| 1 | {SQS} | enabled True, percentage 5.0 | {SQS}: off 0% -> on 5% (v" in text
    assert f"| 2 | {INTERRUPTS} | enabled True | **not written** |" in text
    assert f"| 3 | {SQS} | percentage 25.0 | **not written** |" in text
    assert flaky.get(SQS).percentage == 5.0  # what the summary says was written, was


def test_a_misspelt_setting_in_a_change_is_refused_before_the_run_starts(dynamo):
    """Dropped, "percentag" left the change enabling the flag at the percentage it had stored (here
    100 %), not the 5 % the person asked for. Now Prefect refuses the run's parameters, naming the
    key, before the body (and any AWS call) starts."""
    dynamo.put(FlagState(feature=SQS, percentage=100), expected_version=1, actor="seed", now=2.0)
    with pytest.raises(ParameterTypeError, match="percentag"):
        set_flags(changes=[{"feature": SQS, "enabled": True, "percentag": 5}], aws_credentials_block=CREDENTIALS)
    assert (dynamo.get(SQS).enabled, dynamo.get(SQS).version) == (False, 2)


def test_a_change_that_sets_nothing_is_refused_before_the_table_is_read(dynamo):
    """A change naming only the flag (its setting left out of the form) was read and reported
    "unchanged", and the run succeeded having done nothing; `rollway flags set` refuses the same."""
    with pytest.raises(InvalidFlagInput, match="the change of use_sqs_architecture sets nothing: give its `enabled`"):
        set_flags(changes=[{"feature": SQS, "reason": "week 1"}], aws_credentials_block=CREDENTIALS)
    assert dynamo.get(SQS).version == 1


def test_a_run_with_no_changes_is_refused_before_the_run_starts():
    """`changes: []` loaded the account, wrote nothing and succeeded, saying nothing of it."""
    with pytest.raises(ParameterTypeError, match="changes is empty: give at least one flag to set, enable or disable"):
        set_flags.validate_parameters({"changes": []})
    assert set_flags.parameters.properties["changes"]["minItems"] == 1


@pytest.mark.parametrize("block", [CREDENTIALS, "no-such-credentials-block"])
def test_a_percentage_finer_than_a_basis_point_is_refused_before_any_aws_call(dynamo, block):
    """A change at 0.004 % was rounded to basis points: stored as 0 % (off for every user) and reported
    as done. It is refused as `rollway flags set --percentage 0.004` is, with the same words, before
    the account is loaded (a credentials block that does not exist is never looked for)."""
    with pytest.raises(InvalidFlagInput) as refused:
        set_flags(changes=[{"feature": SQS, "enabled": True, "percentage": 0.004}], aws_credentials_block=block)
    assert str(refused.value) == ("percentage 0.004: flags are stored in basis points, so the finest step is 0.01 % "
                                  "(it would be stored as 0%); give 0 or 0.01; nothing was read or changed")
    assert (dynamo.get(SQS).enabled, dynamo.get(SQS).version) == (False, 1)


def test_a_change_whose_answer_was_lost_is_not_summarised_as_not_written(dynamo, monkeypatch):
    """The second change's PutItem was sent and its answers lost: the summary said "**not written**"
    for it, and a person applied it again or took the flag as unchanged. Only the changes after it
    were provably not sent."""
    import flows.flags
    from rollway.flags import FlagWriteUnanswered

    class Unanswered(FakeFlagStore):
        def put(self, flag, **kwargs):
            if flag.feature == INTERRUPTS:
                raise FlagWriteUnanswered(INTERRUPTS, "feature flag table 'flags': PutItem sent, answer lost "
                                                      "(ReadTimeoutError: Read timeout)")
            return super().put(flag, **kwargs)

    lossy = Unanswered([FlagState(feature=SQS), FlagState(feature=INTERRUPTS)])
    monkeypatch.setattr(flows.flags, "DynamoFlagStore", lambda client, targets, **_: lossy)
    # Retried as ever (a lost answer is a store outage), without the waits between.
    monkeypatch.setattr(flag_tasks, "set_flag", flag_tasks.set_flag.with_options(retry_delay_seconds=0))
    text = three_changes_failing_at_the_second()
    assert f"| 2 | {INTERRUPTS} | enabled True | **may have been written** (its answer was lost: check with " \
           f"`rollway flags get {INTERRUPTS}`) |" in text, text
    assert f"| 3 | {SQS} | percentage 25.0 | **not written** |" in text


@contextmanager
def interrupts_answer_lost(monkeypatch, *, then_refused: bool = False) -> Iterator[list[str]]:
    """The set-flags run's first PutItem of INTERRUPTS goes through on the embedded AWS and its
    answer never arrives (``then_refused``: from then on, the endpoint refuses every connection,
    before botocore's waits to retry); the set-flag task is retried without its waits. Yields the
    writes whose answer was lost."""
    import flows.flags
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    lost: list[str] = []
    clients = []

    def note_feature(params, context, **_):
        context["feature"] = params["Item"]["feature"]["S"]

    def lose_answer(context, **_):
        if context.get("feature") == INTERRUPTS and not lost:
            lost.append(INTERRUPTS)
            raise ReadTimeoutError(endpoint_url="http://dynamodb")

    def refuse(**_):
        if lost and then_refused:
            raise EndpointConnectionError(endpoint_url="http://dynamodb")

    def store(client, targets, **options):
        clients.append(client)
        client.meta.events.register("before-parameter-build.dynamodb.PutItem", note_feature)
        client.meta.events.register("after-call.dynamodb.PutItem", lose_answer)
        client.meta.events.register("before-call.dynamodb", refuse)
        return DynamoFlagStore(client, targets, **options)

    monkeypatch.setattr(flows.flags, "DynamoFlagStore", store)
    monkeypatch.setattr(flag_tasks, "set_flag", flag_tasks.set_flag.with_options(retry_delay_seconds=0))
    try:
        yield lost
    finally:
        for client in clients:  # the embedded AWS's clients are shared between tests
            client.meta.events.unregister("before-parameter-build.dynamodb.PutItem", note_feature)
            client.meta.events.unregister("after-call.dynamodb.PutItem", lose_answer)
            client.meta.events.unregister("before-call.dynamodb", refuse)


def test_a_lost_answer_is_still_summarised_as_maybe_written_when_the_retry_cannot_reach_the_table(dynamo, monkeypatch):
    """The second change's PutItem committed and its answer was lost; Prefect's retry of the task
    then found the endpoint refusing connections before anything was sent. The run ended with the
    table "unreachable" and the change "**not written**", though it was written."""
    with interrupts_answer_lost(monkeypatch, then_refused=True) as lost:
        text = three_changes_failing_at_the_second()
    assert lost == [INTERRUPTS]
    assert "Could not connect to the endpoint URL" in text and "may have been written all the same" in text, text
    assert f"| 2 | {INTERRUPTS} | enabled True | **may have been written** (its answer was lost: check with " \
           f"`rollway flags get {INTERRUPTS}`) |" in text, text
    assert f"| 3 | {SQS} | percentage 25.0 | **not written** |" in text
    assert dynamo.get(INTERRUPTS).enabled is True, "what the summary allows for did happen"


def test_a_change_whose_lost_answer_the_retry_reads_back_is_summarised_as_written(dynamo, monkeypatch):
    """The second change's PutItem committed and its answer was lost; Prefect's retry of the task
    found the flag at the change's settings and the summary said "unchanged": a person read that
    nothing was changed, though the run had changed it."""
    with interrupts_answer_lost(monkeypatch) as lost:
        state = set_flags(changes=[FlagChange(feature=SQS, enabled=True, percentage=5),
                                   FlagChange(feature=INTERRUPTS, enabled=True)],
                          actor="alice", aws_credentials_block=CREDENTIALS, return_state=True)
    assert lost == [INTERRUPTS] and state.is_completed(), state
    text = flags_summary(state)
    # Left on at 0 %: noted as `rollway flags set` notes it.
    assert (f"| 2 | {INTERRUPTS} | enabled True | {INTERRUPTS}: written (its answer was lost; read back): "
            f"off 0% -> on 0% (v2); note: {INTERRUPTS} is on at 0%") in text, text
    assert [e.version for e in dynamo.audit(INTERRUPTS)] == [2, 1], "written once, its trail as it is"


def test_a_retried_stage_that_cannot_reach_the_table_fails_saying_its_lost_write_may_have_moved_the_flag(
        aws, dynamo, monkeypatch):
    """The stage's PutItem moving a bound flag committed and its answer was lost; Prefect's retries
    of the task then found the endpoint refusing connections at their first read. The run failed
    with the table "unreachable" alone, read as "the flag did not move", though it had."""
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    from rollway.flags import FlagWriteUnanswered
    from tests.botocore_events import on_operation

    lost: list[str] = []

    def lose_answer(**_):  # the PutItem went through on the embedded AWS; its answer never arrives
        if not lost:
            lost.append("PutItem")
            raise ReadTimeoutError(endpoint_url="http://dynamodb")

    def refuse(**_):  # from then on, the endpoint refuses every connection
        if lost:
            raise EndpointConnectionError(endpoint_url="http://dynamodb")

    client = aws.get_client("dynamodb")
    store = DynamoFlagStore(client, aws.targets)
    apply_bindings = flag_tasks.apply_bindings.with_options(retry_delay_seconds=0)

    @flow
    def stage() -> list:
        return apply_bindings(store, [FlagBinding(feature=SQS)], 25, actor="rollout-1", rollout="r1", now=10.0)

    with on_operation(client, "after-call", lose_answer, operation="PutItem"), \
            on_operation(client, "before-call", refuse, operation=None):
        state = stage(return_state=True)
    assert lost == ["PutItem"] and state.is_failed()
    with pytest.raises(FlagWriteUnanswered) as failed:
        state.result()
    assert "Could not connect to the endpoint URL" in str(failed.value), failed.value
    assert f"the change to '{SQS}' may have been written all the same" in str(failed.value), failed.value
    assert dynamo.get(SQS).percentage == 25.0, "what the error allows for did happen"


def test_a_change_that_loses_every_race_fails_on_one_line_not_under_tracebacks(aws, dynamo, caplog, monkeypatch):
    """Another writer moves the flag between each read and write: the run fails with the conflict,
    whose line names the flag and what to do; the task's and the flow's tracebacks above it read
    as a crash of rollway, as they did for an unknown flag."""
    import logging

    import flows.flags
    from rollway.flags import FlagConflict

    rival = DynamoFlagStore(aws.get_client("dynamodb"), aws.targets)

    class Contested(DynamoFlagStore):
        def put(self, flag, *, expected_version, **kwargs):
            # The other writer gets in first, every time.
            current = rival.get(flag.feature)
            rival.put(current.model_copy(update={"percentage": current.percentage + 1}),
                      expected_version=current.version, actor="bob", now=2.0)
            return super().put(flag, expected_version=expected_version, **kwargs)

    monkeypatch.setattr(flows.flags, "DynamoFlagStore", Contested)
    with caplog.at_level(logging.INFO):
        state = set_flags(changes=[FlagChange(feature=SQS, enabled=True)], aws_credentials_block=CREDENTIALS,
                          return_state=True)

    assert state.is_failed()
    with pytest.raises(FlagConflict, match=f"feature flag '{SQS}' changed concurrently"):
        state.result()
    assert "changed concurrently" in caplog.text
    assert "Traceback" not in caplog.text, caplog.text
    assert dynamo.get(SQS).updated_by == "bob"


def test_a_set_flags_run_cancelled_part_way_still_says_which_flags_were_written(dynamo, monkeypatch):
    """Cancelled (the UI's Cancel, its process stopped: TerminationSignal; Ctrl-C: KeyboardInterrupt,
    which stands for both here, the engine re-sending the signal to the process) during its second
    change, the run left no summary: the key's newest artifact was then an earlier run's, read as
    this one's, and nothing said the first flag was written, or that the second one's write may
    have been sent."""
    from prefect.runtime import flow_run

    runs: list[str] = []
    written = flag_tasks.set_flag

    def cancelled_at_the_second(store, change, **kwargs):
        runs.append(flow_run.id)
        if change.feature == INTERRUPTS:
            raise KeyboardInterrupt
        return written(store, change, **kwargs)

    monkeypatch.setattr(flag_tasks, "set_flag", cancelled_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        set_flags(changes=[FlagChange(feature=SQS, enabled=True, percentage=5),
                           FlagChange(feature=INTERRUPTS, enabled=True),
                           FlagChange(feature=SQS, percentage=25)],
                  actor="alice", aws_credentials_block=CREDENTIALS)
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[runs[0]])))
    text = next((a.data for a in found if a.key == "set-flags"), None)
    assert text is not None, "the cancelled run left no summary"
    assert "**Interrupted** after 1 of 3 changes" in text, text
    assert f"| 1 | {SQS} | enabled True, percentage 5.0 | {SQS}: off 0% -> on 5% (v" in text
    assert f"| 2 | {INTERRUPTS} | enabled True | **may have been written** (the run was interrupted during it:" in text
    assert f"| 3 | {SQS} | percentage 25.0 | **not written** |" in text
