"""Every rollway exception with a constructor of its own survives pickling.

Python pickles an exception as ``type(e)(*e.args)`` plus its ``__dict__``; one whose
``__init__`` takes other arguments than the message it stores could not be rebuilt. Prefect
pickles a failed run's exception when its result is persisted, and a hook or the UI reading it
in another process then got an unknown failure instead of the named one with its fields.
``rollway.errors_pickle.PicklableError`` fixes that for all of them; this table checks each one
as its raise sites build it, and the completeness test keeps a new one from slipping by.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from prefect.states import Cancelled

from flows.approvals import LeftElsewhere
from flows.engine import RefusedAfterLostAnswer, TakenNotReadBack, TooFewHealthyTargets
from flows.flags import UnknownFlagInChanges
from flows.infra import ChecklistFailed
from flows.rollback import MoveNotReadBack, RollbackClaimLost, RollbackIncomplete, TrafficMoveFailed
from flows.validate import SecretUnread, ValidationFailed
from rollway.api_error import ApiError
from rollway.aws.cloudformation import (StackChanged, StackDeleteFailed, StackDeleteTimeout, StackDeleteUnfollowed,
                                        StackNotDeleted, StackProtected)
from rollway.aws.denied import PassRoleDenied, PermissionDenied
from rollway.aws.errors import (AnswerLost, NoDatapoints, OtherGroupsForwarded, RoleRenewalRefused, ServiceGone,
                                ServiceNotStable, TargetNotFound,
                                TaskDefinitionInactive, WeightMismatch)
from rollway.aws.ledger import _Refused
from rollway.checklist import Checklist, CheckItem
from rollway.cleanup import CleanupIncomplete, CleanupReadUnanswered, CleanupRefused, Refusal
from rollway.deadline import ReadBackUnanswered, Unanswered
from rollway.cli.processes import Child, ProcessFailed
from rollway.finalize import FinalizeIncomplete
from rollway.flag_binding import BoundFlagGone, FlagHeld, FlagsNotDisabled, FlagUpdate, HoldNotNamed, UnknownBoundFlag
from rollway.flags import (
    FlagAuditEntry, FlagConflict, FlagNotAtVersion, FlagState, FlagStoreUnavailable, FlagWriteUnanswered,
    InvalidPercentage, MalformedFlag, MalformedFlags, PercentageTooFine, UnknownFlag, UnreadableAudit,
)
from rollway.image import image_references
from rollway.infra import AppNotListed, StackDeployFailed
from rollway.judge.strict_json import DuplicateKey
from rollway.ledger import RollbackClaimed, RollbackUnrecorded, RolloutRecord
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.publish import PublishIncomplete, PublishProgress
from rollway.report import RollbackResult
from rollway.toolchain.docker import BuildFailed, DaemonUnreachable, LoginRefused, PushRefused
from rollway.toolchain.process import ToolFailed, ToolMissing, ToolTimeout
from rollway.validation import CheckResult, evaluate
from tasks.validation import CheckFailed

PACKAGES = ("rollway", "flows", "tasks")

THROTTLED = ClientError(
    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
     "ResponseMetadata": {"RequestId": "8a1c", "HTTPStatusCode": 400}},
    "ModifyRule",
)
REFUSED = ClientError(
    {"Error": {"Code": "ValidationError", "Message": "the rule refused the weights"},
     "ResponseMetadata": {"RequestId": "8a1d", "HTTPStatusCode": 400}},
    "ModifyRule",
)
CLAIMED = RollbackClaimed(
    "rollout '20261201-0312-ab12' of service 'edit-canary' is being rolled back by erin (flow run calm-heron), its "
    "claim held until 2026-12-01 03:20:00 UTC (wall clock) unless renewed; frank neither moves the traffic nor pages "
    "anyone",
    holder="erin (flow run calm-heron)", expires=1796095200.0, waited=900.0,
)
ROLLED_BACK = RollbackResult(
    reason="error rate 4.1% > 2%", weights=Weights(stable=100, canary=0), stable_desired=2, canary_desired=0,
    canary_task_definition="arn:aws:ecs:us-east-2:123456789012:task-definition/edit:42", scaled_stable=True,
    flags_disabled=("use_sqs_architecture",), steps=("weights 100/0 verified", "canary scaled to 0"),
)
ON = FlagState(feature="use_sqs_architecture", enabled=True, percentage=25.0, version=3)
OFF = FlagState(feature="use_sqs_architecture", enabled=False, percentage=25.0, version=4)
MALFORMED = MalformedFlag("beta_editor", ["percentage 'lots' is not a number"],
                          {"feature": "beta_editor", "percentage": "lots", "version": 2}, 2)
REFS = image_references("123456789012.dkr.ecr.us-east-2.amazonaws.com", "webordinary/edit", "v2")
PROGRESS = PublishProgress(refs=REFS, image_id="sha256:5d1f", digests={REFS.versioned: "sha256:9e0a"},
                           steps=["built", f"pushed {REFS.versioned}"])
DOWN = CheckResult(name="health", outcome="failed", reason="GET /health answered 503", seconds=1.5, attempts=3,
                   retryable=True)
TAIL = ["#7 [3/4] RUN npm ci", "npm ERR! code ENOTFOUND", "npm ERR! network request failed"]

# One realistic instance of every exception class that defines __init__, built as its raise sites do.
CASES: list[BaseException] = [
    # The base of the two below (never raised itself): their constructor is its.
    StackNotDeleted("WebordinaryOldStack", "it is a live stack (Targets.stacks)"),
    StackProtected("EditCanaryStack", "it is a live stack (Targets.stacks)"),
    StackChanged("WebordinaryOldStack", "it changed after the plan judged it (termination protection was turned on)"),
    StackDeleteFailed("WebordinaryOldStack", "DELETE_FAILED",
                      ["EditBucket (AWS::S3::Bucket): The bucket you tried to delete is not empty"]),
    StackDeleteFailed("WebordinaryOldStack", "DELETE_FAILED", ["The following resource(s) failed to delete: [Logs]."],
                      unread="Throttling on DescribeStackEvents: Rate exceeded"),
    StackDeleteTimeout("WebordinaryOldStack", "DELETE_IN_PROGRESS", 1800.0),
    StackDeleteUnfollowed("WebordinaryOldStack", "DELETE_IN_PROGRESS", 42.0,
                          "Throttling on DescribeStacks: Rate exceeded", 1800.0),
    WeightMismatch(expected=Weights(stable=90, canary=10), actual=Weights(stable=100, canary=0), seconds=30.0),
    ReadBackUnanswered("the load balancer's weights", 20.0, "Elastic Load Balancing", "verify_timeout_seconds"),
    ReadBackUnanswered("the load balancer's weights", 20.0, "Elastic Load Balancing", "verify_timeout_seconds",
                       "InternalFailure: An internal error occurred", server_side=True),
    ReadBackUnanswered("the load balancer's weights", 20.0, "Elastic Load Balancing", "verify_timeout_seconds",
                       "SomethingNew: a new answer", for_now=False),
    # A rejected run's failure is read back from its stored result by `rollway abort` (``_run_failure``):
    # it must come back as the move that may have landed, not as a read that moved nothing.
    MoveNotReadBack("the load balancer's weights", 20.0, "Elastic Load Balancing", "verify_timeout_seconds"),
    MoveNotReadBack("the load balancer's weights", 20.0, "Elastic Load Balancing", "verify_timeout_seconds",
                    lost='Read timeout on endpoint URL: "https://elasticloadbalancing.eu-west-1.amazonaws.com/"'),
    # Sent again and refused for good: the refusal comes back with it, ``when_again`` says what to put right.
    MoveNotReadBack("the load balancer's weights", 5.0, "Elastic Load Balancing", "verify_timeout_seconds",
                    lost='Read timeout on endpoint URL: "https://elasticloadbalancing.eu-west-1.amazonaws.com/"',
                    refused=PermissionDenied("elasticloadbalancing:ModifyRule", "AccessDenied: not authorized",
                                             "deployments/iam-policy.json, statement ShiftTheWeightsOfItsListenerRules")),
    MoveNotReadBack("the load balancer's weights", 5.0, "Elastic Load Balancing", "verify_timeout_seconds",
                    lost='Read timeout on endpoint URL: "https://elasticloadbalancing.eu-west-1.amazonaws.com/"',
                    refused=REFUSED),
    # Its read-back's connection dropped as well: what the read got instead of an answer comes back with it.
    MoveNotReadBack("the load balancer's weights", 5.0, "Elastic Load Balancing", "verify_timeout_seconds",
                    lost='Read timeout on endpoint URL: "https://elasticloadbalancing.eu-west-1.amazonaws.com/"',
                    no_answer="ConnectionClosedError: Connection was closed before we received a valid response"),
    RefusedAfterLostAnswer(ReadTimeoutError(endpoint_url="https://elasticloadbalancing.eu-west-1.amazonaws.com/"),
                           REFUSED),
    # Taken, its read-back refused, no earlier send in doubt: it comes back as the move taken.
    TakenNotReadBack(Weights(stable=100, canary=0), REFUSED),
    # Its answer lost, its read-back refused, no earlier send in doubt: it comes back as a move whose
    # answer was lost, not one the load balancer took.
    TakenNotReadBack(Weights(stable=100, canary=0), REFUSED,
                     lost=ReadTimeoutError(endpoint_url="https://elasticloadbalancing.eu-west-1.amazonaws.com/")),
    # Sent again and taken, its read-back refused: it comes back as a move taken, not one refused.
    RefusedAfterLostAnswer(ReadTimeoutError(endpoint_url="https://elasticloadbalancing.eu-west-1.amazonaws.com/"),
                           REFUSED, taken=True),
    MoveNotReadBack("the load balancer's weights", 5.0, "Elastic Load Balancing", "verify_timeout_seconds",
                    lost='Read timeout on endpoint URL: "https://elasticloadbalancing.eu-west-1.amazonaws.com/"',
                    refused=REFUSED, taken=True),
    # Sent again, its answer lost too and its read-back refused: it comes back as such, not as a move refused.
    RefusedAfterLostAnswer(ReadTimeoutError(endpoint_url="https://elasticloadbalancing.eu-west-1.amazonaws.com/"),
                           REFUSED, again_lost=True),
    MoveNotReadBack("the load balancer's weights", 5.0, "Elastic Load Balancing", "verify_timeout_seconds",
                    lost='Read timeout on endpoint URL: "https://elasticloadbalancing.eu-west-1.amazonaws.com/"',
                    refused=REFUSED, again_lost=True),
    # No __init__ of their own, but a run that fails with them now persists them (as a TimeoutError
    # Prefect took them for its own timeout and kept no result).
    Unanswered("CloudWatch did not answer within 30 s"),
    ApiError("Client error '403 Forbidden' for url 'https://api.prefect.cloud/api/flow_runs/1/set_state'",
             status_code=403, method="POST", url="https://api.prefect.cloud/api/flow_runs/1/set_state"),
    SecretUnread("authorization_secret_block 'edit-api-token' could not be read: the Prefect API did not answer "
                 "within 30 s; no request was sent; run again once the Prefect API answers"),
    TargetNotFound("listener rule", "on listener :443 forwarding to edit-stable-tg, edit-canary-tg",
                   "no rule forwards to both"),
    OtherGroupsForwarded("arn:rule/1", "target group arn:tg/shadow (weight 10 of 100)", 1),
    ServiceNotStable(["edit-stable", "edit-canary"], 600.0, "edit-canary runs 1 of 2 tasks"),
    ServiceNotStable(["edit-canary"], 600.0, "the deployment of task definition edit:42 failed: tasks stopped",
                     timed_out=False),
    ServiceGone(["edit-stable", "edit-canary"], "edit-canary", "in cluster webordinary: it is DRAINING"),
    NoDatapoints("HTTPCode_Target_5XX_Count of edit-canary-tg", "no requests in the last 5 minutes"),
    AnswerLost("SNS Publish", ReadTimeoutError(endpoint_url="https://sns.us-west-2.amazonaws.com/")),
    _Refused(RolloutRecord(service="edit-canary", rollout_id="20261201-0312-ab12", image="webordinary/edit:v2",
                           spec_json="{}", phase=RolloutPhase.ROLLING_BACK, version=7)),
    CleanupRefused([Refusal(kind="stack", name="EditCanaryStack", reason="it is a live stack (Targets.stacks)"),
                    Refusal(kind="image tag", name="v2", reason="the canary runs it")]),
    CleanupReadUnanswered("ECS", "ListServices", 30.0, "what production runs", "nothing was deleted (nor archived)"),
    CleanupIncomplete("delete image tag v1", "ClientError: An error occurred (AccessDenied)",
                      ["stack WebordinaryOldStack deleted"], ["image tag v1", "archive tag archive/v1"]),
    ProcessFailed("the Prefect server did not answer within 60 s"),
    ProcessFailed("prefect server exited with code 1 (its log: .rollway/logs/server.log)",
                  Child("prefect server", ["prefect", "server", "start"], {"PREFECT_HOME": "/tmp/p"},
                        Path(".rollway/logs/server.log"))),
    FinalizeIncomplete("scale the old stable service to 0", "ServiceNotStable: not stable after 600s",
                       "The canary carries all the traffic.", unrecorded=True),
    FlagsNotDisabled([FlagUpdate(feature=ON.feature, before=ON, after=OFF, reason="rollback")],
                     [("beta_editor", FlagConflict("beta_editor", 2, 3)),
                      ("new_nav", FlagStoreUnavailable("flag table rollway-flags: AccessDeniedException"))]),
    UnknownFlag("beta_editor", "new_nav"),
    FlagWriteUnanswered("beta_editor", "feature flag table 'rollway-flags': PutItem on 'beta_editor' sent, and its "
                        "answer lost (ReadTimeoutError: Read timeout)"),
    UnknownFlagInChanges("beta_editr"),
    BoundFlagGone("use_sqs_architecture", weight=50),
    UnknownBoundFlag("use_sqs_architecure", "new_nav"),
    FlagHeld([("use_sqs_architecture", FlagAuditEntry(
        feature="use_sqs_architecture", version=4, at=1.0, actor="alice", reason="rollout edit-r1 stage 25%",
        enabled=True, percentage=25.0, salt="v1", writer="rollout", rollout="edit-r1"))]),
    HoldNotNamed("use_sqs_architecture", "billing-r7", FlagAuditEntry(
        feature="use_sqs_architecture", version=4, at=1.0, actor="alice", reason="rollout edit-r1 stage 25%",
        enabled=True, percentage=25.0, salt="v1", writer="rollout", rollout="edit-r1"), None),
    HoldNotNamed("use_sqs_architecture", "billing-r7", None, "held it no more: its 100% stage ended its hold"),
    FlagConflict("use_sqs_architecture", 3, None),
    FlagNotAtVersion("beta_editor", 3, 0, exists=False).named("--expected-version"),
    InvalidPercentage("lots"),
    PercentageTooFine(0.004).named("--percentage"),
    MALFORMED,
    MalformedFlags([ON], [MALFORMED]),
    UnreadableAudit("use_sqs_architecture", [FlagAuditEntry(feature="use_sqs_architecture", version=1, at=1.0,
                                                            actor="seed", enabled=False, percentage=0.0, salt="v1")],
                    ["the 1st newest: 7 problem(s), first: feature: Field required"]),
    AppNotListed("the CDK app in infra did not synthesize: `cdk ls` exited with 1", TAIL),
    StackDeployFailed("EditCanaryStack", "cdk did not finish within 900 s and was stopped", TAIL, timed_out=True),
    DuplicateKey("errors"),
    CLAIMED,
    RollbackUnrecorded("edit-canary", ROLLED_BACK, "the end of the rollback (ProvisionedThroughputExceeded)",
                       rollout_id="20261201-0312-ab12", phase=RolloutPhase.ROLLING_BACK),
    RollbackUnrecorded("edit-canary", ROLLED_BACK, "the start of the rollback (ResourceNotFoundException)",
                       rollout_id=None, phase=None),
    PublishIncomplete(f"push {REFS.latest}", "PushRefused: denied", PROGRESS),
    DaemonUnreachable(None, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock"),
    BuildFailed("/work/app", TAIL),
    PushRefused(REFS.versioned, ["denied: requested access to the resource is denied"]),
    LoginRefused("123456789012.dkr.ecr.us-east-2.amazonaws.com", ["Error response from daemon: login denied"]),
    ToolMissing("cdk", "run `make .rollway/.tools-installed`"),
    ToolFailed(["cdk", "deploy", "EditCanaryStack", "--parameters", "Token=***"], 1, TAIL),
    ToolTimeout(["docker", "build", "/work/app"], 900.0, TAIL),
    ChecklistFailed(Checklist(items=(
        CheckItem(kind="stack", name="EditCanaryStack", passed=True, reason="UPDATE_COMPLETE"),
        CheckItem(kind="table", name="rollway-rollouts", passed=False, reason="not found"),
    ))),
    RollbackIncomplete(["disable bound feature flags: FlagsNotDisabled: beta_editor", "notify: 503"]),
    RollbackIncomplete(["restore edit-canary's task definition: task definition edit-task:1 is INACTIVE"],
                       "register an ACTIVE revision, then run the rollback flow with previous_task_definition"),
    TooFewHealthyTargets("the stable target group has 2 healthy target(s) after 300 s, of the 4 needed",
                         healthy=2, needed=4),
    TaskDefinitionInactive("edit-task:1", "edit-canary", "edit-stable runs it too: no other revision to restore"),
    TrafficMoveFailed(["stable scaled to 2"], THROTTLED, None),
    TrafficMoveFailed(["stable scaled to 2"], WeightMismatch(Weights(stable=100, canary=0), Weights(stable=90,
                                                                                                      canary=10)),
                      Weights(stable=90, canary=10)),
    RollbackClaimLost(["weights 100/0 verified"], "page people", "erin (flow run calm-heron)", CLAIMED),
    ValidationFailed(evaluate([DOWN, CheckResult(name="session", outcome="skipped", reason="not run: health",
                                                 attempts=0)])),
    CheckFailed(DOWN),
    RoleRenewalRefused(ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole"),
                       "arn:aws:iam::123456789012:role/rollway-release", "elbv2 DescribeRules",
                       "grant the credentials' identity sts:AssumeRole on that role"),
    PermissionDenied("cloudformation:DescribeStacks", "AccessDenied: not authorized",
                     "deployments/iam-policy-infrastructure.json, statement DeployChecklistAndCleanupReadTheStacks"),
    PermissionDenied("cloudformation:DeleteStack", "AccessDenied: not authorized",
                     "deployments/iam-policy-infrastructure.json, statement CleanupDeletesOldStacks",
                     "arn:aws:cloudformation:us-west-2:123456789012:stack/AcmeOldStack/*"),
    PassRoleDenied("edit-task", ("arn:aws:iam::123456789012:role/Stack-TaskRole-1A2B",), "AccessDeniedException: no",
                   None),
    # The server's refusal of a proposal, with where the run was read to be after it.
    LeftElsewhere("Run is already in terminal state CANCELLED.", state=Cancelled(message="stopped from the UI")),
    LeftElsewhere("Run is already in terminal state CANCELLED.", state=None),
]


def _same(got: Any, sent: Any) -> bool:
    """Equal values, exceptions compared by type, args and fields (they do not compare equal)."""
    if isinstance(sent, BaseException):
        return type(got) is type(sent) and _same(got.args, sent.args) and _same(vars(got), vars(sent))
    if isinstance(sent, (list, tuple)):
        return type(got) is type(sent) and len(got) == len(sent) and all(map(_same, got, sent))
    if isinstance(sent, dict):
        return got.keys() == sent.keys() and all(_same(got[k], sent[k]) for k in sent)
    if isinstance(sent, Child):  # a plain object: what it was started with
        return type(got) is Child and _same(vars(got), vars(sent))
    return got == sent


def _case_id(error: BaseException) -> str:
    return type(error).__qualname__


@pytest.mark.parametrize("sent", CASES, ids=_case_id)
def test_an_exception_comes_back_from_pickling_as_itself(sent: BaseException) -> None:
    got = pickle.loads(pickle.dumps(sent))

    assert type(got) is type(sent)
    assert str(got) == str(sent)
    assert _same(got, sent), (vars(got), vars(sent))


def test_arguments_changed_after_the_raise_do_not_change_what_comes_back() -> None:
    """The cleanup flow hands its live lists of done and not-done items: what the error said when
    raised is what a reader in another process gets."""
    done, left = ["stack WebordinaryOldStack deleted"], ["image tag v1"]
    sent = CleanupIncomplete("delete image tag v1", "AccessDenied", done, left)
    done.append("image tag v1 deleted")
    left.clear()

    got = pickle.loads(pickle.dumps(sent))

    assert str(got) == str(sent) and "Not done: image tag v1." in str(got)
    assert (got.done, got.not_done) == (("stack WebordinaryOldStack deleted",), ("image tag v1",))


def _own_init_exceptions() -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules = [package] + [importlib.import_module(info.name)
                               for info in pkgutil.walk_packages(package.__path__, f"{name}.")]
        for module in modules:
            found.update(obj for obj in vars(module).values()
                         if inspect.isclass(obj) and issubclass(obj, BaseException)
                         and obj.__module__ == module.__name__ and "__init__" in vars(obj))
    return found


def test_every_exception_with_its_own_constructor_is_in_the_table() -> None:
    """A new exception with an ``__init__`` of its own gets a row in CASES (and PicklableError first
    in its bases, or its row fails)."""
    covered = {type(case) for case in CASES}
    found = _own_init_exceptions()
    missing = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in found - covered)

    assert not missing, f"exception classes with their own __init__ and no row in CASES: {', '.join(missing)}"
    assert len(found) >= 38  # the walk found them at all (38 when this was written)
