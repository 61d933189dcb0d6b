"""Every flow a deployment serves ends Failed, its message written as UTF-8 can hold it, when its
failure's text holds a byte that is not UTF-8 (a lone surrogate: AWS echoing a name back, decoded
with surrogateescape).

Prefect records a failed run's state with the exception's text as its message: one it could not
encode crashed the run instead (UnicodeEncodeError), with no Failed state and, for a rollout, no
rollback by its hook. The flows whose body was not escaped as a whole (the rollback, the
infrastructure, the container, validation, report and flags flows) crashed on any failure raised
before a rollout's run (the only part escaped) or outside one: here, STS refusing the credentials.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from prefect import Flow, flow

import flows
from rollway.failure_words import failures_writable, writable
from rollway.flag_binding import FlagChange
from rollway.spec import RolloutSpec, Stage
from tests.flows.moto_env import saved_blocks
from tests.flows.test_hooks_moto import NOT_UTF8, calls_refused, log_reported_writable  # noqa: F401 - a fixture
from tests.flows.test_infra_regions import fake_cdk

REFUSED = f"the keys of {NOT_UTF8}-deploy are not known"
ESCAPED = "the keys of web\\udcff-deploy are not known"


@pytest.fixture
def sts_refuses_not_utf8(monkeypatch) -> list[str]:
    """STS refuses every GetCallerIdentity with REFUSED, a text holding a lone surrogate, as every
    run asks it first (``flows.env.session_clients``); the returned list gets each refusal."""
    return calls_refused(monkeypatch, "GetCallerIdentity", REFUSED, code="InvalidClientTokenId")


def _runs(aws, tmp_path):
    """Each flow of flows/, as a deployment runs it on the saved blocks, returning its state."""
    from flows.canary import canary
    from flows.cleanup import cleanup
    from flows.container import publish_container
    from flows.finalize import finalize
    from flows.flags import set_flags
    from flows.infra import deploy_infrastructure, verify_infrastructure
    from flows.monitor import monitor
    from flows.progressive import advance_phase, progressive_rollout
    from flows.reports import rollout_report
    from flows.rollback import hook_rollback, rollback
    from flows.validate import validate_deployment
    from rollway.clock import ClockSettings

    blocks = saved_blocks(aws)
    given = {"targets_block": blocks, "aws_credentials_block": blocks, "return_state": True}
    cdk, app = fake_cdk(tmp_path)
    spec = RolloutSpec(image=f"{aws.targets.ecr_repository}:2.0.0", stages=[Stage(weight=5), Stage(weight=100)])
    return {
        "rollback": lambda: rollback(reason="by hand", **given),
        "hook_rollback": lambda: hook_rollback(
            reason="the canary failed", actor="state hook (failed)", bindings=None, fallback_bindings=None,
            clock=ClockSettings(), only_open_rollout=True, rollout=None, claim_wait_seconds=60, **given),
        "set_flags": lambda: set_flags(changes=[FlagChange(feature="new_editor", enabled=True, create=True)], **given),
        "rollout_report": lambda: rollout_report(**given),
        "validate_deployment": lambda: validate_deployment(**given),
        "verify_infrastructure": lambda: verify_infrastructure(**given),
        "deploy_infrastructure": lambda: deploy_infrastructure(cdk_executable=cdk, cdk_app_dir=app, **given),
        "publish_container": lambda: publish_container(version="2.0.0", register_existing=True, **given),
        "canary": lambda: canary(spec=spec, **given),
        "progressive_rollout": lambda: progressive_rollout(spec=spec, phased=False, **given),
        "advance_phase": lambda: advance_phase(actor="dave", **given),
        "monitor": lambda: monitor(spec=spec, **given),
        "finalize": lambda: finalize(**given),
        "cleanup": lambda: cleanup(old_image_tags=["1.0.0"], dry_run=True, **given),
    }


def _served_flows() -> dict[str, Flow]:
    """Every flow object defined in flows/, by its function's name."""
    found: dict[str, Flow] = {}
    for module in pkgutil.iter_modules(flows.__path__):
        for value in vars(importlib.import_module(f"flows.{module.name}")).values():
            if isinstance(value, Flow) and value.fn.__module__.startswith("flows."):
                found[value.fn.__name__] = value
    return found


FLOWS = ["rollback", "hook_rollback", "set_flags", "rollout_report", "validate_deployment", "verify_infrastructure",
         "deploy_infrastructure", "publish_container", "canary", "progressive_rollout", "advance_phase", "monitor",
         "finalize", "cleanup"]


def test_every_flow_is_run_here():
    assert sorted(_served_flows()) == sorted(FLOWS)


@pytest.mark.parametrize("flow_name", FLOWS)
def test_a_refusal_whose_text_is_not_utf8_ends_the_run_failed(aws, tmp_path, sts_refuses_not_utf8, flow_name,
                                                              log_reported_writable):
    run = _runs(aws, tmp_path)[flow_name]
    unrecorded = None
    try:
        state = run()
    except UnicodeEncodeError as err:
        unrecorded = writable(str(err))

    # Asserted outside the except: its traceback would carry the failure's raw text, which
    # pytest-xdist cannot report.
    assert unrecorded is None, f"Prefect could not record the run's state: {unrecorded}"
    assert sts_refuses_not_utf8, "STS was not asked"
    assert state.is_failed(), state
    assert "STS GetCallerIdentity" in state.message and ESCAPED in state.message, state.message


def _escapes(fn) -> int:
    """How many ``failures_writable`` wrap ``fn``, along its ``__wrapped__`` chain."""
    leaving = failures_writable(lambda: None).__code__
    count = 0
    while fn is not None:
        count += getattr(fn, "__code__", None) is leaving
        fn = getattr(fn, "__wrapped__", None)
    return count


@pytest.mark.parametrize("flow_name", FLOWS)
def test_every_flow_body_is_escaped_once(flow_name):
    assert _escapes(_served_flows()[flow_name].fn) == 1


def test_a_subflows_escaped_failure_is_not_escaped_again_by_its_parent(aws, sts_refuses_not_utf8,
                                                                       log_reported_writable):
    """A flow run as another's subflow: its failure, escaped as it left it, is raised again in the
    parent, whose body escapes what it raises too; the text is escaped once, not twice."""
    from flows.rollback import rollback

    blocks = saved_blocks(aws)

    @flow(name="parent_of_a_rollback")
    @failures_writable
    def parent():
        return rollback(reason="by hand", targets_block=blocks, aws_credentials_block=blocks)

    unrecorded = None
    try:
        state = parent(return_state=True)
    except UnicodeEncodeError as err:
        unrecorded = writable(str(err))

    assert unrecorded is None, f"Prefect could not record the run's state: {unrecorded}"
    assert state.is_failed(), state
    assert ESCAPED in state.message and "web\\\\udcff" not in state.message, state.message


def test_a_failed_release_whose_error_is_not_utf8_still_leaves_its_artifact(aws, tmp_path, sts_refuses_not_utf8,
                                                                           log_reported_writable, caplog):
    """The container flow writes the artifact of a run that failed before building from inside its
    body, before the failure leaves it escaped: with the raw text the Prefect API could not take
    it, and the key's newest artifact (the previous release's) read as this run's."""
    from tests.flows.test_container_flow import artifact_markdown

    state = _runs(aws, tmp_path)["publish_container"]()

    assert state.is_failed(), state
    assert "artifact could not be created" not in caplog.text
    assert ESCAPED in artifact_markdown("2.0.0", "failed", containing=ESCAPED)
