"""The infra flows' listener rule item judged as validate_deployment judges the rule pinning its
checks: by the requests its spec's checks send (``validation_spec``), on the embedded AWS, cdk a
stand-in that writes the manifest and "deploys" by printing (tests/flows/test_infra_regions.py)."""

from __future__ import annotations

import time

import pytest
from prefect.exceptions import ParameterTypeError

from flows.infra import CHECKLIST_ARTIFACT_KEY, ChecklistFailed, InfraRefused, deploy_infrastructure, verify_infrastructure
from rollway.aws.elbv2 import AlbRouter
from rollway.validation import ValidationSpec
from tests.flows.moto_env import deployed_stacks, inbox, saved_blocks
from tests.flows.test_infra_flow import latest
from tests.flows.test_infra_regions import fake_cdk

HEADER = "X-Rollway-Target: canary"
# validate_deployment's spec pinning its checks: GET /health, POST /sessions and POST
# /sessions/<id>/messages (the default URLs' paths).
PINNED = ValidationSpec(canary_header=HEADER)


@pytest.fixture
def narrowed(aws):
    """The provisioned account with its stacks and someone paged, and the rule pinning the checks
    on their paths alone (/health, /sessions*) ahead of the weighted rule on every path (/*):
    the saved blocks' name and the pin's ARN."""
    assert aws.targets.rule_path == "/*"
    deployed_stacks(aws)
    inbox(aws)
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    pin = elbv2.create_rule(
        ListenerArn=router.listener_arn, Priority=5,
        Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Rollway-Target",
                                                                  "Values": ["canary"]}},
                    {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/health", "/sessions*"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": router.canary_target_group_arn}])["Rules"][0]["RuleArn"]
    return saved_blocks(aws, "infra-pinned"), pin


def _pin_item(checklist):
    (item,) = [i for i in checklist.items if i.kind == "listener rule"]
    return item


def test_a_pin_on_the_checks_paths_alone_passes_both_flows_checklists_given_the_validation_spec(narrowed, tmp_path):
    """The validation, judging the pin by the requests its checks send, sends them pinned; the
    flows' checklist, knowing the header alone, judged it by the weighted rule's requests (every
    path) and failed its item: a false alarm. Given the validation's spec, it judges as the
    validation does."""
    blocks, pin = narrowed
    # The header alone: judged by the weighted rule's requests, the pin misses some of them.
    with pytest.raises(ChecklistFailed) as caught:
        verify_infrastructure(targets_block=blocks, aws_credentials_block=blocks, canary_header=HEADER)
    assert [i.kind for i in caught.value.checklist.failed] == ["listener rule"], caught.value.checklist.summary()

    since = time.time()
    checklist = verify_infrastructure(targets_block=blocks, aws_credentials_block=blocks,
                                      validation_spec=PINNED.model_dump(mode="json"))
    item = _pin_item(checklist)
    assert checklist.passed and f"(rule {pin}, priority 5, ahead of the weighted rule's 10)" in item.reason, item
    assert latest(CHECKLIST_ARTIFACT_KEY, since).startswith("# Pre-deployment checklist passed")
    # The same header given twice, as the served deployments give it (its name in any case): judged alike.
    assert verify_infrastructure(targets_block=blocks, aws_credentials_block=blocks,
                                 canary_header="x-rollway-target: canary", validation_spec=PINNED).passed
    # A spec whose checks are not pinned: no rule pins them, none is read.
    unpinned = verify_infrastructure(targets_block=blocks, aws_credentials_block=blocks,
                                     validation_spec=ValidationSpec())
    assert unpinned.passed and "listener rule" not in {i.kind for i in unpinned.items}, unpinned.summary()

    cdk, app = fake_cdk(tmp_path, pinned={})
    result = deploy_infrastructure(cdk_app_dir=app, cdk_executable=cdk, stack_timeout_seconds=60,
                                   targets_block=blocks, aws_credentials_block=blocks, canary_header=HEADER,
                                   validation_spec=PINNED)
    assert result.checklist is not None and result.checklist.passed, result.checklist
    assert f"(rule {pin}, priority 5, " in _pin_item(result.checklist).reason


@pytest.mark.parametrize("given, said", [
    # Judged for another header than the checks carry, the item said nothing of their pin.
    ({"canary_header": "X-Rollway-Target: beta", "validation_spec": PINNED},
     "canary_header `X-Rollway-Target: beta` is not the header validation_spec's checks are pinned by: they carry "
     f"`{HEADER}`; give the same in both, or leave canary_header out (validation_spec's is taken)"),
    ({"canary_header": HEADER, "validation_spec": ValidationSpec()},
     f"canary_header `{HEADER}` is given, but validation_spec's checks carry no header (its canary_header is not "
     f"set): they are not pinned; set its canary_header to `{HEADER}`, or leave canary_header out (then no listener "
     "rule is checked)"),
], ids=["another-header", "unpinned-spec"])
def test_a_validation_spec_the_checklist_cannot_judge_by_is_refused_before_anything_is_read(tmp_path, given, said):
    # The blocks do not exist: refused before they are read, before any AWS call or cdk run.
    since = time.time()
    with pytest.raises(InfraRefused) as caught:
        verify_infrastructure(targets_block="no-such-block", **given)
    assert str(caught.value).startswith(said), str(caught.value)
    shown = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert shown.startswith("# Pre-deployment checklist not checked") and "validation_spec" in shown, shown
    cdk, app = fake_cdk(tmp_path)
    with pytest.raises(InfraRefused) as caught:
        deploy_infrastructure(cdk_app_dir=app, cdk_executable=cdk, targets_block="no-such-block", **given)
    assert str(caught.value).startswith(said), str(caught.value)


def test_a_validation_spec_it_would_refuse_is_refused_by_the_parameters(tmp_path):
    cdk, app = fake_cdk(tmp_path)
    for run in (verify_infrastructure, lambda **given: deploy_infrastructure(cdk_app_dir=app, cdk_executable=cdk,
                                                                              **given)):
        with pytest.raises(ParameterTypeError, match="health_url"):
            run(targets_block="no-such-block", validation_spec={"health_url": "ftp://example.com/health"})
        # A path httpx will not send (a control character): the validation's checks could not be sent.
        with pytest.raises(ParameterTypeError, match="is not a request the checks could send: Invalid non-printable"):
            run(targets_block="no-such-block", validation_spec=PINNED.model_copy(update={"sessions_path": "/sessions\x7f"}))
