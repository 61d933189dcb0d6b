"""A canary run that fails mid-rollout is rolled back by its on_failure hook, on the embedded AWS."""

from __future__ import annotations

import gc

import pytest

from blocks.credentials import credentials_for_endpoint
from flows.canary import canary
from rollway.failure_words import writable
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage
from tests.flows.moto_env import inbox, received_subjects, saved_blocks, simulated
from tests.flows.test_canary_moto import read_back


@pytest.fixture
def no_gc_callbacks():
    """Prefect raises a flow's timeout into the running thread asynchronously. When it lands
    while a gc callback runs (hypothesis installs one, in a worker that ran its tests before
    this one), Python ignores it ("Exception ignored in gc_callback") and the run never times
    out: the test then failed one run in many for a reason no user has."""
    saved = list(gc.callbacks)
    gc.callbacks.clear()
    yield
    gc.callbacks.extend(saved)


def test_flow_timeout_mid_stage_rolls_back_through_the_hook(new_account, no_gc_callbacks):
    # Prefect delivers a flow's timeout once, as an exception raised asynchronously into the
    # run's thread; landing inside a weakref callback (a cache entry dying), Python ignores it
    # ("Exception ignored in ... WeakValueDictionary ... CancelledError") and the run carries on
    # to the end. That is Prefect's, and rare; the scenario is then started over on a fresh
    # account, at most three times, so that what is tested is the hook, not the delivery.
    for _attempt in range(3):
        aws = new_account()
        credentials_for_endpoint(aws.endpoint_url, aws.targets.region).save("test-embedded", overwrite=True)
        url = inbox(aws)
        with simulated(aws, canary_error_rate=0.001) as (env, image):
            clock = env.clock
            settings = {"speed": clock.speed, "anchor": clock.anchor}
            spec = RolloutSpec(image=image, stages=[Stage(weight=5, bake_seconds=3600), Stage(weight=100)])
            # The bake outlasts the run's timeout: the run fails at 5% with traffic on the canary.
            try:
                canary.with_options(timeout_seconds=4)(spec=spec, aws_credentials_block="test-embedded",
                                                       clock=settings)
            except Exception:  # noqa: BLE001 - the timeout, as Prefect raises it
                break
    else:
        pytest.fail("Prefect lost the run's timeout three times in a row: the hook was never exercised")
    weights, stable, canary_service = read_back(aws)
    assert weights == Weights(stable=100, canary=0)
    assert canary_service.desired == 0 and canary_service.task_definition == stable.task_definition
    subjects = received_subjects(aws, url)
    assert any(s.startswith("Rollback") for s in subjects), subjects


# A byte that is not UTF-8 (in a name AWS echoes back, a path) decoded with surrogateescape, as
# Python does under the C locales: a lone surrogate.
NOT_UTF8 = b"web\xff".decode("utf-8", "surrogateescape")


def second_shift_refused(monkeypatch, text: str) -> list[str]:
    """The run's second ModifyRule (its shift past the first stage) is refused with ``text``; the
    returned list gets the operation's name for each refusal."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    real = BaseClient._make_api_call
    shifts: list[str] = []
    refused: list[str] = []

    def answered(client, operation, params):
        if operation == "ModifyRule":
            shifts.append(operation)
            if len(shifts) == 2:
                refused.append(operation)
                raise ClientError({"Error": {"Code": "ValidationError", "Message": text}}, operation)
        return real(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", answered)
    return refused


@pytest.fixture
def log_reported_writable(request, monkeypatch):
    """The test's captured log, as pytest reports it, with its lone surrogates escaped. Prefect's
    engines log the failure's traceback with its text as it is, and pytest-xdist could not send
    the report of a test whose log held one to the main process (an INTERNALERROR, not a result)."""
    handler = request.config.pluginmanager.get_plugin("logging-plugin").report_handler
    real = handler.format
    monkeypatch.setattr(handler, "format", lambda record: writable(real(record)))


def test_a_failure_whose_text_is_not_utf8_ends_the_run_failed_and_its_hook_rolls_back(aws, monkeypatch,
                                                                                      log_reported_writable):
    # Prefect could not record the run's Failed state (its message could not be encoded): the
    # run raised UnicodeEncodeError, its on_failure hook never ran, and the traffic stayed on
    # the canary. Served, the run ended Crashed with the runner's reason instead of this one.
    blocks = saved_blocks(aws)
    url = inbox(aws)
    refused = second_shift_refused(monkeypatch, f"target group {NOT_UTF8}-canary is not in the rule's listener")
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        settings = {"speed": env.clock.speed, "anchor": env.clock.anchor}
        spec = RolloutSpec(image=image, stages=[Stage(weight=5, bake_seconds=900, min_bake_seconds=120),
                                                Stage(weight=100)])
        unrecorded = None
        try:
            state = canary(spec=spec, targets_block=blocks, aws_credentials_block=blocks, clock=settings,
                           return_state=True)
        except UnicodeEncodeError as err:
            unrecorded = writable(str(err))

    # Asserted outside the except: its traceback would carry the failure's raw text, which
    # pytest-xdist cannot report.
    assert unrecorded is None, f"Prefect could not record the run's state: {unrecorded}"
    assert refused == ["ModifyRule"]
    assert state.is_failed(), state
    # Readable, with the byte that was not UTF-8 shown for what it is.
    assert "target group web\\udcff-canary is not in the rule's listener" in state.message, state.message
    weights, stable, canary_service = read_back(aws)
    assert weights == Weights(stable=100, canary=0)
    assert canary_service.desired == 0 and canary_service.task_definition == stable.task_definition
    subjects = received_subjects(aws, url)
    assert any(s.startswith("Rollback") for s in subjects), subjects


def calls_refused(monkeypatch, refused_operation: str, text: str, code: str = "ValidationError") -> list[str]:
    """Every call of ``refused_operation`` fails with ``code`` and ``text``; the returned list gets
    the operation's name for each refusal."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    real = BaseClient._make_api_call
    refused: list[str] = []

    def answered(client, operation, params):
        if operation == refused_operation:
            refused.append(operation)
            raise ClientError({"Error": {"Code": code, "Message": text}}, operation)
        return real(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", answered)
    return refused


def ledger_reads_refused(monkeypatch, text: str) -> list[str]:
    """Every read of the ledger (DynamoDB's Query) fails with ``text`` (``calls_refused``)."""
    return calls_refused(monkeypatch, "Query", text)


@pytest.mark.parametrize("flow_name", ["progressive_rollout", "advance_phase"])
def test_a_ledger_read_whose_text_is_not_utf8_ends_the_run_failed_as_a_refusal(aws, monkeypatch, flow_name,
                                                                               log_reported_writable):
    # The ledger is read in the flow's body, before the rollout's run (and its escaping) starts:
    # Prefect could not record the Failed state of a refusal holding a lone surrogate, and the run
    # crashed (a served one ended Crashed, and its on_crashed hook judged it with no exception).
    from flows.progressive import advance_phase, progressive_rollout

    blocks = saved_blocks(aws)
    url = inbox(aws)
    refused = ledger_reads_refused(monkeypatch, f"table {NOT_UTF8}-rollouts cannot be read")
    before = read_back(aws)
    spec = RolloutSpec(image=f"{aws.targets.ecr_repository}:2.0.0", stages=[Stage(weight=5), Stage(weight=100)])
    unrecorded = None
    try:
        if flow_name == "progressive_rollout":
            state = progressive_rollout(spec=spec, phased=False, targets_block=blocks, aws_credentials_block=blocks,
                                        return_state=True)
        else:
            state = advance_phase(actor="dave", targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    except UnicodeEncodeError as err:
        unrecorded = writable(str(err))

    assert unrecorded is None, f"Prefect could not record the run's state: {unrecorded}"
    assert refused and set(refused) == {"Query"}
    assert state.is_failed(), state
    assert "refused before any write" in state.message, state.message
    assert f"table web\\udcff-rollouts cannot be read" in state.message, state.message
    # A refusal: its hooks left the service as it was, and paged no rollback.
    assert read_back(aws) == before
    assert not [s for s in received_subjects(aws, url) if s.startswith("Rollback")]
