"""A refused AWS call named as the IAM action and the statement of rollway's policies granting it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from rollway.aws.denied import CREDENTIALS, is_denied, pass_role_denied, permission_denied
from rollway.targets import Targets


def refusal(operation: str, message: str, code: str = "AccessDenied") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize(("operation", "message", "action", "grant"), [
    # AWS named the action.
    ("DescribeImages", "User: u is not authorized to perform: ecr:DescribeImages on resource: r", "ecr:DescribeImages",
     "statement CleanupDeletesOldImages"),
    # It did not: the one service whose action of that name a policy grants.
    ("DeleteStack", "not authorized to perform this operation", "cloudformation:DeleteStack",
     "statement CleanupDeletesOldStacks"),
])
def test_a_refusal_names_its_action_and_the_jobs_statement(operation, message, action, grant):
    named = permission_denied(refusal(operation, message), job="iam-policy-infrastructure.json")
    assert named.action == action
    assert named.grant == f"deployments/iam-policy-infrastructure.json, {grant}"
    assert str(named).startswith(f"AWS refused {action} (AccessDenied: {message}): ")


@pytest.mark.parametrize("action", ["cloudformation:GetTemplate", "cloudformation:DescribeStacks"])
@pytest.mark.parametrize("job", ["iam-policy-infrastructure.json", None])
def test_a_refused_read_of_the_stacks_names_one_statement_saying_deploys_and_cleanup_read_them(action, job):
    """GetTemplate was granted on "*" by two statements of the infrastructure policy (the
    checklist's and cleanup's): its refusal named both, and a person extended one of them for
    nothing. A deploy's refused DescribeStacks named a statement for cleanup, which puzzled
    anyone who only runs deploys."""
    stack = "arn:aws:cloudformation:us-west-2:123456789012:stack/WebordinarySQSStack/1a2b"
    message = DENIED_ON.format(action=action, arn=stack)
    named = permission_denied(refusal(action.split(":")[1], message), job=job)
    assert named.grant == ("deployments/iam-policy-infrastructure.json, statement "
                           "DeployChecklistAndCleanupReadTheStacks"), named.grant
    assert f"it is granted by {named.grant}: add that statement (with your names)" in str(named)


def test_without_the_policies_it_says_what_to_grant(tmp_path: Path):
    named = permission_denied(refusal("DescribeStacks", "no"), policies=tmp_path / "none")
    assert named.action == "DescribeStacks" and named.grant is None
    assert "grant DescribeStacks to that role or user" in str(named)


def test_the_refusal_speaks_of_the_credentials_not_only_the_workers_role():
    """A person running a rollway command or report with their own credentials was told to fix
    "the worker's role", which their call never used."""
    said = str(permission_denied(refusal("DescribeStacks", "no"), job="iam-policy-infrastructure.json"))
    assert ": the role or user these credentials belong to (the worker's role, for a flow run) may not call it, " in said
    assert said.endswith(": add that statement (with your names) to that role or user, then run again"), said


def test_a_refused_pass_role_no_policy_grants_names_the_roles_and_whose_permission_it_is(tmp_path: Path):
    """Without rollway's policies (an installed package has none), the refusal said to grant
    PassRole "on them to the worker's role", where every other refusal names the credentials'
    role or user, and sent the reader to "that statement", of which there was none."""
    roles = ("arn:aws:iam::123456789012:role/Stack-ExecutionRole-1A2B", "arn:aws:iam::123456789012:role/Stack-TaskRole-3C4D")
    message = ("User: arn:aws:sts::123456789012:assumed-role/ops/alice is not authorized to perform: iam:PassRole "
               f"on resource: {roles[1]} because no identity-based policy allows the iam:PassRole action")
    refused = pass_role_denied(refusal("RegisterTaskDefinition", message, "AccessDeniedException"), "edit-task", roles,
                               policies=tmp_path / "none")
    assert refused is not None and refused.grant is None
    said = str(refused)
    assert f"edit-task: {CREDENTIALS} may not pass {roles[1]}, {roles[0]} to ECS tasks" in said, said
    assert (f"Grant iam:PassRole on {roles[1]}, {roles[0]} to that role or user, for ecs-tasks.amazonaws.com "
            "(the iam:PassedToService condition), then run again") in said, said
    assert "worker's role may" not in said and "that statement" not in said, said
    assert said.endswith("Nothing was registered"), said


def test_only_refusals_count():
    assert is_denied(refusal("DescribeStacks", "no", "AccessDeniedException"))
    assert not is_denied(refusal("DescribeStacks", "slow down", "Throttling"))
    # A refusal of another action than PassRole is no PassRole refusal.
    assert pass_role_denied(refusal("RegisterTaskDefinition", "not authorized to perform: ecs:Register"),
                            "family", ()) is None


# AWS's words for a refused call on a resource, and moto's (which names no resource).
DENIED_ON = ("User: arn:aws:sts::123456789012:assumed-role/rollway-worker/i-0abc is not authorized to perform: "
             "{action} on resource: {arn} because no identity-based policy allows the {action} action")
MOTO = "User: arn:aws:iam::123456789012:user/worker is not authorized to perform: {action}"
TABLE = "arn:aws:dynamodb:us-west-2:123456789012:table/{}"


@pytest.mark.parametrize(("message", "grant"), [
    # The table AWS names picks the statement on it, the account filling in ACCOUNT_ID.
    (DENIED_ON.format(action="dynamodb:PutItem", arn=TABLE.format("webordinary-feature-flags")), "Flags"),
    (DENIED_ON.format(action="dynamodb:PutItem", arn=TABLE.format("webordinary-rollouts")), "Ledger"),
    # A table of the user's own names matches neither: both are named, as when no resource is known.
    (DENIED_ON.format(action="dynamodb:PutItem", arn=TABLE.format("acme-rollouts")), "Ledger; Flags"),
    (MOTO.format(action="dynamodb:PutItem"), "Ledger; Flags"),
])
def test_a_refusal_on_a_resource_names_the_statement_granting_it_there(message, grant):
    named = permission_denied(refusal("PutItem", message, "AccessDeniedException"), job="iam-policy.json")
    assert named.action == "dynamodb:PutItem"
    assert named.grant == "; ".join(f"deployments/iam-policy.json, statement {sid}" for sid in grant.split("; "))


@pytest.mark.parametrize(("resource", "grant"), [
    # The table the caller read stands for the resource moto's refusal does not name.
    ("webordinary-feature-flags", "Flags"),
    ("webordinary-rollouts", "Ledger"),
    (TABLE.format("webordinary-feature-flags"), "Flags"),
    # The user's own table names match no statement: every one granting the action, as before.
    ("acme-feature-flags", "Ledger; Flags"),
    (None, "Ledger; Flags"),
])
def test_a_refusal_naming_no_resource_names_the_statement_on_the_one_the_caller_read(resource, grant):
    named = permission_denied(refusal("GetItem", MOTO.format(action="dynamodb:GetItem"), "AccessDeniedException"),
                              job="iam-policy.json", resource=resource)
    assert named.grant == "; ".join(f"deployments/iam-policy.json, statement {sid}" for sid in grant.split("; "))


# A run of the user's own names, in another region than the policies were written for.
ACME = Targets(region="eu-west-1", rollouts_table="acme-rollouts", flags_table="acme-flags")
ACME_TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/{}"


@pytest.mark.parametrize(("arn", "grant"), [
    (ACME_TABLE.format("acme-flags"), "Flags"),
    (ACME_TABLE.format("acme-rollouts"), "Ledger"),
    # An index of a table: the statement on its table, the one to extend to it.
    (ACME_TABLE.format("acme-rollouts/index/by-service"), "Ledger"),
    (ACME_TABLE.format("acme-flags/index/by-owner"), "Flags"),
])
def test_a_refusal_on_a_table_of_the_users_names_names_that_tables_statement(arn, grant):
    """The policies spell Webordinary's table names: a refusal on the user's own table named both
    the Ledger and the Flags statement, whichever table it was."""
    message = DENIED_ON.format(action="dynamodb:GetItem", arn=arn)
    named = permission_denied(refusal("GetItem", message, "AccessDeniedException"), job="iam-policy.json",
                              targets=ACME)
    assert named.grant == "; ".join(f"deployments/iam-policy.json, statement {sid}" for sid in grant.split("; "))
    assert f"it is granted by {named.grant}: add that statement (with your names)" in str(named)


def test_a_refusal_on_a_resource_no_statement_is_on_says_to_extend_their_resource_to_it():
    """A table of the user's that the run's names do not stand for either (a name only beginning
    with the run's is not its table): every statement granting the action is named, and, added as
    they are, they are refused the same way, where the message said only to add one."""
    arn = ACME_TABLE.format("acme-flags-old")
    named = permission_denied(refusal("GetItem", DENIED_ON.format(action="dynamodb:GetItem", arn=arn),
                                      "AccessDeniedException"), job="iam-policy.json", targets=ACME)
    assert named.grant == "deployments/iam-policy.json, statement Ledger; deployments/iam-policy.json, statement Flags"
    assert named.uncovered == arn
    assert (f"it is granted by {named.grant}, but not on {arn}: add the statement meant to that role or user with "
            f"{arn} (or a pattern of your names) in its Resource, then run again") in str(named), named
    # A resource a statement is on (the run's own table, in its region) is no such refusal.
    on_its_table = permission_denied(refusal("GetItem", DENIED_ON.format(action="dynamodb:GetItem",
                                                                         arn=ACME_TABLE.format("acme-flags"))),
                                     job="iam-policy.json", targets=ACME)
    assert on_its_table.uncovered is None and "(with your names)" in str(on_its_table)


@pytest.mark.parametrize(("resource", "grant"), [("acme-flags", "Flags"), ("acme-rollouts", "Ledger")])
def test_a_refusal_naming_no_resource_names_the_statement_on_the_users_table_the_caller_read(resource, grant):
    named = permission_denied(refusal("GetItem", MOTO.format(action="dynamodb:GetItem"), "AccessDeniedException"),
                              job="iam-policy.json", resource=resource, targets=ACME)
    assert named.grant == f"deployments/iam-policy.json, statement {grant}"


def test_the_resource_aws_names_wins_over_the_callers():
    message = DENIED_ON.format(action="dynamodb:GetItem", arn=TABLE.format("webordinary-rollouts"))
    named = permission_denied(refusal("GetItem", message, "AccessDeniedException"), job="iam-policy.json",
                              resource="webordinary-feature-flags")
    assert named.grant == "deployments/iam-policy.json, statement Ledger"


@pytest.mark.parametrize(("arn", "grant"), [
    # REGISTRY_REGION and REGISTRY_ACCOUNT stand for any region and account: another's registry is
    # the shared one's statement only; Webordinary's own (us-west-2) is granted by both.
    ("arn:aws:ecr:eu-central-1:210987654321:repository/webordinary/edit-container", "PinImagesOfASharedRegistry"),
    ("arn:aws:ecr:us-west-2:123456789012:repository/webordinary/edit-container",
     "PinTheImageToItsDigest; PinImagesOfASharedRegistry"),
    # Another repository: no statement is on it, so every one granting the action is named.
    ("arn:aws:ecr:us-west-2:123456789012:repository/acme/web", "PinTheImageToItsDigest; PinImagesOfASharedRegistry"),
])
def test_placeholders_of_the_policies_match_any_account_or_region(arn, grant):
    named = permission_denied(refusal("DescribeImages", DENIED_ON.format(action="ecr:DescribeImages", arn=arn)),
                              job="iam-policy.json")
    assert named.grant == "; ".join(f"deployments/iam-policy.json, statement {sid}" for sid in grant.split("; "))


def test_wildcards_match_as_iam_matches_them(tmp_path: Path):
    """``*`` spans any characters, ``?`` one; ``[`` is a character of the name, not a set as in fnmatch."""
    (tmp_path / "iam-policy.json").write_text(json.dumps({"Statement": [
        {"Sid": "Star", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:*:ACCOUNT_ID:jobs-*"},
        {"Sid": "One", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-west-2:ACCOUNT_ID:q?"},
        {"Sid": "Bracket", "Effect": "Allow", "Action": "sqs:SendMessage",
         "Resource": "arn:aws:sqs:us-west-2:ACCOUNT_ID:[ab]"},
    ]}))

    def grant(queue: str) -> str | None:
        arn = f"arn:aws:sqs:us-west-2:123456789012:{queue}"
        return permission_denied(refusal("SendMessage", DENIED_ON.format(action="sqs:SendMessage", arn=arn)),
                                 policies=tmp_path).grant

    assert grant("jobs-eu/dlq") == "deployments/iam-policy.json, statement Star"
    assert grant("q1") == "deployments/iam-policy.json, statement One"
    assert grant("[ab]") == "deployments/iam-policy.json, statement Bracket"
    # "a" is no match of "[ab]", nor "q12" of "q?": no statement on it, so every one granting the action.
    assert grant("a") == grant("q12") == ("deployments/iam-policy.json, statement Star; deployments/iam-policy.json, "
                                          "statement One; deployments/iam-policy.json, statement Bracket")


@pytest.mark.parametrize(("field", "grant"), [("rollouts_table", "Ledger"), ("flags_table", "Flags")])
def test_a_report_refused_on_a_table_of_the_users_name_names_that_tables_statement(field, grant):
    """`rollway report` and the report flow name the table they could not read and its statement."""
    from flows.reports import unreadable_table

    refused = unreadable_table(refusal("GetItem", MOTO.format(action="dynamodb:GetItem"), "AccessDeniedException"),
                               ACME, field)
    assert f"{getattr(ACME, field)} (region eu-west-1) cannot be read: AWS refused dynamodb:GetItem" in str(refused)
    assert f"it is granted by deployments/iam-policy.json, statement {grant}: add that statement" in str(refused)
