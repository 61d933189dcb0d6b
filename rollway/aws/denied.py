"""An AWS call the credentials' role or user (the worker's role, in a flow run) may not make, named as
that grants it.

AWS answers the same refusal to every later ask, so retrying one only delays it (a task's
retries waited 6 s on each read before failing with a bare ``ClientError``). ``named_denials``
turns a refusal into ``PermissionDenied``, an adapter error (never retried), whose message says
which action was refused and which statement of rollway's policies (``deployments/iam-policy*.json``)
grants it: what a person adds to the role before running again.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from rollway.aws.errors import DENIED_CODES, AdapterError, RoleRenewalRefused, aws_message, error_code
from rollway.errors_pickle import PicklableError
from rollway.flags import FlagStoreUnavailable

if TYPE_CHECKING:
    from rollway.targets import Targets

T = TypeVar("T")

# Where the project keeps the policies it documents (a checkout; an installed package has none).
POLICIES = Path(__file__).resolve().parents[2] / "deployments"
# The policy of the rollout's role, which the operator commands and the reports name too.
ROLLOUT_POLICY = "iam-policy.json"
# The policy of the infrastructure jobs' role: the deploy's checklist and status reads, and cleanup.
INFRASTRUCTURE_POLICY = "iam-policy-infrastructure.json"
# The policy of the release job's role (publish_container): ECR's reads and login, the revision it registers.
RELEASE_POLICY = "iam-policy-release.json"
# AWS names the action in most refusals: "... is not authorized to perform: ecr:DescribeImages on ...".
_PERFORM = re.compile(r"perform: ([a-z0-9-]+:[A-Za-z0-9]+)")
_RESOURCE = re.compile(r"on resource: (arn:\S+?)(?:\s|$)")
# Whose permission a refusal wants, in every refusal rollway words: a flow run's credentials are the
# worker's role, but a person running a rollway command or report uses their own, which "the
# worker's role" sent them away from.
CREDENTIALS = "the role or user these credentials belong to (the worker's role, for a flow run)"
# Targets' names that no ARN holds: a container's name taken for a repository's segment would
# rename it ("acme/web" for a container named "web").
_NOT_IN_ARNS = frozenset({"container_name", "rule_path", "metrics_namespace"})
# A whole ARN segment in capitals is a placeholder of the documented policies (real regions and accounts are not).
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*[A-Z]$")


class PermissionDenied(PicklableError, AdapterError):
    """AWS refused a call for want of a permission: asking again cannot help.

    Attributes:
        action: the IAM action refused (``cloudformation:DescribeStacks``), or the operation's
            name when neither AWS nor rollway's policies say which service it belongs to.
        grant: where rollway's policies grant it (``iam-policy-infrastructure.json, statement
            DeployChecklistAndCleanupReadTheStacks``), or None.
        uncovered: the resource refused when no statement granting the action is on it, even
            with the run's own names for the policies' (``stack/AcmeOldStack/...``, where they
            grant on ``stack/Webordinary*/*``): the statement, added as it is, is refused the same
            way, so the message says to put it in the statement's Resource. None otherwise.
    """

    def __init__(self, action: str, answer: str, grant: str | None, uncovered: str | None = None) -> None:
        self.action, self.answer, self.grant, self.uncovered = action, answer, grant, uncovered
        if grant and uncovered:
            which = "that statement" if "; " not in grant else "the statement meant"
            where = (f"it is granted by {grant}, but not on {uncovered}: add {which} to that role or user with "
                     f"{uncovered} (or a pattern of your names) in its Resource")
        elif grant:
            where = f"it is granted by {grant}: add that statement (with your names) to that role or user"
        else:
            where = f"grant {action} to that role or user"
        super().__init__(f"AWS refused {action} ({answer}): {CREDENTIALS} may not call it, and asking again cannot "
                         f"help; {where}, then run again")


class PassRoleDenied(PicklableError, AdapterError):
    """ECS would not register a revision because the credentials' role or user (``CREDENTIALS``)
    may not pass its task roles.

    A revision copies the base's execution and task roles, and registering it passes them to ECS
    (``iam:PassRole``). rollway's policies grant that on roles named like the task family
    (``webordinary-edit-*``); a role CDK named (``<stack>-<construct id>-<suffix>``) does not match.

    Attributes:
        family: the task family whose revision was refused.
        roles: the roles the revision passes (the one AWS named first, when it named one).
        grant: the statements granting PassRole to ECS tasks, with their resource patterns.
    """

    def __init__(self, family: str, roles: tuple[str, ...], answer: str, grant: str | None) -> None:
        self.family, self.roles, self.answer, self.grant = family, roles, answer, grant
        passed = ", ".join(roles) or "its task roles"
        if grant:
            where = (f"rollway's policies grant it only on roles matching their patterns ({grant}): a role CDK named "
                     "for you (<stack>-<construct id>-<suffix>) matches only when the pattern is renamed to it, so put "
                     "your task's execution and task role ARNs (or a pattern of yours) in that statement's Resource "
                     "and add the statement to that role or user")
        else:  # no statement to point at (an installed package has no policies): what to grant, on which roles
            where = (f"grant iam:PassRole on {passed} to that role or user, for ecs-tasks.amazonaws.com (the "
                     "iam:PassedToService condition)")
        super().__init__(
            f"ECS refused to register the new revision of {family}: {CREDENTIALS} may not pass {passed} to ECS "
            f"tasks (iam:PassRole; {answer}), and asking again cannot help. {where[0].upper()}{where[1:]}, then run "
            "again. Nothing was registered")


# Refusals named already: final to every retry (their code is no longer a ClientError's to see),
# and not named again (a PassRoleDenied named as a plain PermissionDenied lost the roles to put in
# its statement's Resource).
NAMED_REFUSALS = (PermissionDenied, PassRoleDenied)


def is_denied(err: BaseException) -> bool:
    """Whether ``err`` is AWS refusing the caller's permissions, which one of rollway's statements
    grants: not the credentials' own role refusing its renewal mid-run (``RoleRenewalRefused``),
    whose message says what to change, and which was named as the CDK bootstrap roles' statement."""
    return isinstance(err, ClientError) and error_code(err) in DENIED_CODES and not isinstance(err, RoleRenewalRefused)


def refusal_said(err: Exception, job: str, *, resource: str | None = None, targets: Targets | None = None) -> str:
    """What a failed call says: for a refused permission, the action and the statement of ``job``'s
    policy granting it (``permission_denied``), where AWS's text alone left a person to find the
    statement to add to the role; otherwise AWS's answer (``aws_message``)."""
    if is_denied(err):
        return str(permission_denied(err, job=job, resource=resource, targets=targets))
    return aws_message(err)


def permission_denied(err: ClientError, policies: Path = POLICIES, job: str | None = None,
                      resource: str | None = None, targets: Targets | None = None) -> PermissionDenied:
    """``err`` (a refusal, ``is_denied``) as ``PermissionDenied``, naming its action and grant:
    the statement of ``job``'s policy (``iam-policy-infrastructure.json``, the one its role holds)
    when that policy grants it, else every statement that does. When AWS names the resource it
    refused ("... on resource: arn:..."), only the statements granting the action on it: a refused
    ``dynamodb:PutItem`` on the flags table named the ledger's statement too, half of them wrong.
    When it names none (moto never does), the ``resource`` the caller read stands for it: an ARN,
    or a name (a table's) matched against the name closing each statement's Resource. The policies
    spell the targets' default names: ``targets``, the run's own, tell which of them a resource of
    the user's names stands for (a refused ``table/acme-flags`` is the flags table's statement). An
    ARN that no statement granting the action is on even so is ``uncovered``: the message says to put
    it in the statement's Resource (a user's old stack, where the policies grant on Webordinary's)."""
    operation = getattr(err, "operation_name", "") or "?"
    message = err.response.get("Error", {}).get("Message", "") or ""
    said = _PERFORM.search(message)
    statements = _statements(policies)
    if said:
        action = said.group(1)
    else:  # the operation's name alone: the service is the one whose action of that name a policy grants
        actions = {a for _, _, a in statements if a.split(":", 1)[-1] == operation}
        action = actions.pop() if len(actions) == 1 else operation
    # IAM's action names are case-insensitive, and SQS says its refused one in lowercase ("sqs:getqueueurl"):
    # matched as such, and said as the policies spell it (what a person looks for in them).
    spelt = [granted for _, _, granted, _, _ in _grants(policies) if granted.lower() == action.lower()]
    action = spelt[0] if spelt else action
    granting = [(file, sid, resources) for file, sid, granted, resources, _ in _grants(policies)
                if granted.lower() == action.lower()]
    named = _RESOURCE.search(message)
    uncovered = None
    if on := named.group(1) if named else resource:
        documented = _as_documented(on, targets) if targets is not None else on
        matches = _arn_matches if documented.startswith("arn:") else _name_matches
        # The resource itself, else the table an index or stream of it belongs to; every statement
        # when none is on either: a policy with the user's names in place of the documented ones,
        # whose Resource the message says to extend to the one refused.
        for each in _and_its_table(documented):
            if on_it := [g for g in granting if any(matches(p, each) for p in g[2])]:
                granting = on_it
                break
        else:
            uncovered = on if granting and on.startswith("arn:") else None
    grants = [f"{file}, statement {sid}" for file, sid, _ in granting]
    own = [grant for grant in grants if job is not None and grant.startswith(f"deployments/{job},")]
    grants = own or grants
    return PermissionDenied(action, aws_message(err), "; ".join(dict.fromkeys(grants)) or None, uncovered)


def pass_role_denied(err: ClientError, family: str, roles: tuple[str, ...],
                     policies: Path = POLICIES, job: str | None = None) -> PassRoleDenied | None:
    """``err`` as ``PassRoleDenied`` when it is a refused ``iam:PassRole`` (None otherwise): the
    statements granting it, only ``job``'s policy's when that policy grants it (the release run's
    role holds iam-policy-release.json, not the rollout's policy named beside it)."""
    message = err.response.get("Error", {}).get("Message", "") or ""
    if not is_denied(err) or "iam:PassRole" not in message:
        return None
    named = _RESOURCE.search(message)
    passed = tuple(dict.fromkeys([*([named.group(1)] if named else []), *roles]))
    grants = [f"{file}, statement {sid} ({', '.join(resources)})" for file, sid, action, resources, condition
              in _grants(policies) if action == "iam:PassRole" and "ecs-tasks.amazonaws.com" in condition]
    own = [grant for grant in grants if job is not None and grant.startswith(f"deployments/{job},")]
    return PassRoleDenied(family, passed, aws_message(err), "; ".join(own or grants) or None)


def named_refusal(err: BaseException, job: str, targets: Targets | None = None) -> Exception | None:
    """``err`` as the refusal ``named_denials`` raises (``PermissionDenied`` naming the statement
    of ``job``'s policy that grants the action; a refused PassRole as ``PassRoleDenied`` naming
    ``job``'s statement), or None when it is no refused permission. For a step that reports its
    own failure rather than raising it: a refusal after a release's push reached its error and
    artifact as AWS's bare text. And for a caller that knows its job where the adapter raising
    does not: the rollout's registration (``EcsDeployer.register_revision`` names every policy's
    PassRole statement, the release's beside the rollout's)."""
    if isinstance(err, PassRoleDenied):
        cause = err.__cause__
        again = pass_role_denied(cause, err.family, err.roles, job=job) if isinstance(cause, ClientError) else None
        return again or err
    if isinstance(err, PermissionDenied):
        return err
    denied = _denied_call(err)
    return permission_denied(denied, job=job, targets=targets) if denied is not None else None


def rollout_said(err: BaseException, targets: Targets | None) -> BaseException:
    """``err`` as a rollout's page, log line or step says it: a refused permission as the statement of
    the rollout's policy granting it (``named_refusal``, with the run's own names), anything else as
    it is. For the steps that report a failure and go on (a rollback once its traffic is back, an
    alert, a stage's observation), where no ``names_rollout_denials`` sees the error."""
    return named_refusal(err, ROLLOUT_POLICY, targets) or err


def _denied_call(err: BaseException) -> ClientError | None:
    """The call AWS refused for want of a permission behind ``err``: ``err`` itself, or the cause of
    an adapter's own error over it (one not already named as a PermissionDenied); None otherwise."""
    if isinstance(err, ClientError):
        cause: BaseException | None = err
    elif isinstance(err, (AdapterError, FlagStoreUnavailable)) and not isinstance(err, NAMED_REFUSALS):
        # The flag store's own error is its adapter's (rollway.aws.flags), kept in rollway.flags
        # for the fakes to raise too.
        cause = err.__cause__
    else:
        cause = None
    return cause if isinstance(cause, ClientError) and is_denied(cause) else None


@contextmanager
def named_denials(job: str | None = None, policies: Path = POLICIES, targets: Targets | None = None) -> Iterator[None]:
    """Raise a refused permission inside the block (an adapter's error caused by one too) as
    ``PermissionDenied`` naming the statement of ``job``'s policy that grants it; anything else as it is.
    ``targets``, the run's own, tell which documented resource one of the user's names stands for
    (``permission_denied``)."""
    try:
        yield
    except (ClientError, AdapterError, FlagStoreUnavailable) as err:
        # An adapter's own error over a refusal ("the services ... could not be read (check the
        # targets block)") sent people to the wrong place: the names were right, the role was not.
        denied = _denied_call(err)
        if denied is None:
            raise
        raise permission_denied(denied, policies, job, targets=targets) from err


def names_rollout_denials(run: Callable[..., T]) -> Callable[..., T]:
    """``run(env, ...)``, a rollout's or a rollback's entry point, with every refused permission
    it raises named as ``named_denials`` names it: the statement of the rollout's policy
    (``ROLLOUT_POLICY``) granting it, with ``env.targets``, the run's own names. The failure is
    named where it leaves the run, not in each task: the tasks' retry conditions, undos and
    transactions still see AWS's own error and code (a refusal is final to each of them).

    Its text is left as it is: the flow whose body calls ``run`` writes it as UTF-8 can hold it
    (``failures_writable``, under each ``@flow``), once for the whole run."""

    @functools.wraps(run)
    def named(env: Any, *args: Any, **kwargs: Any) -> T:
        with named_denials(ROLLOUT_POLICY, targets=env.targets):
            return run(env, *args, **kwargs)

    return named


def _arn_matches(pattern: str, arn: str) -> bool:
    """Whether IAM grants a statement's Resource ``pattern`` on ``arn``: ``*`` matches any run of
    characters, ``?`` any one (nothing else is special, unlike fnmatch's ``[``), and a segment the
    policies leave for the user to fill (``ACCOUNT_ID``, ``REGISTRY_REGION``) any value of it."""
    return re.fullmatch(":".join(_glob(segment) for segment in pattern.split(":")), arn) is not None


def _as_documented(resource: str, targets: Targets) -> str:
    """``resource`` (an ARN or a name) as rollway's policies spell it: each of the run's own names
    (``targets``, its region too), a whole ARN segment or part of one between ``/``, in place of the
    default the policies were written with. A refused ``table/acme-flags`` matched no statement, and
    every one granting the action was named (the ledger's beside the flags')."""
    fields = type(targets).model_fields
    own = {value: field.default for name, field in fields.items()
           if name not in _NOT_IN_ARNS and isinstance(field.default, str) and isinstance(value := getattr(targets, name), str)
           and value and value != field.default}
    if not own:
        return resource
    if not resource.startswith("arn:"):
        return own.get(resource, resource)
    # One pass, longest name first: a default put in is not renamed again, nor a name inside a longer one.
    longest_first = sorted(own, key=len, reverse=True)
    names = re.compile("|".join(rf"(?<![^/:]){re.escape(value)}(?![^/:])" for value in longest_first))
    parts = resource.split(":", 5)
    for index in (3, 5):  # the region and the resource (partition, service and account are no targets)
        if index < len(parts):
            parts[index] = names.sub(lambda found: own[found.group(0)], parts[index])
    return ":".join(parts)


def _and_its_table(resource: str) -> tuple[str, ...]:
    """``resource``, and for a DynamoDB index or stream (``table/X/index/Y``) the table ``table/X``
    whose statement is the one to extend to it."""
    table = re.match(r"(arn:[^:]*:dynamodb:[^:]*:[^:]*:table/[^/]+)/(?:index|stream)/", resource)
    return (resource, table.group(1)) if table else (resource,)


def _name_matches(pattern: str, name: str) -> bool:
    """Whether a statement's Resource ``pattern`` grants on the resource called ``name``: the name
    closing its ARN, after the resource type (``table/webordinary-*`` grants on ``webordinary-rollouts``;
    ``*`` on any)."""
    last = pattern.rsplit(":", 1)[-1]
    return re.fullmatch(_glob(last.split("/", 1)[-1]), name) is not None


def _glob(segment: str) -> str:
    """A regular expression of one ARN segment of a policy (``_arn_matches``)."""
    return _PLACEHOLDER.sub(r"[^:]*", re.escape(segment).replace(r"\*", ".*").replace(r"\?", "."))


def _statements(policies: Path) -> list[tuple[str, str, str]]:
    """(policy file, statement id, action) for every action rollway's policies grant."""
    return [(file, sid, action) for file, sid, action, _, _ in _grants(policies)]


def _grants(policies: Path) -> list[tuple[str, str, str, tuple[str, ...], str]]:
    """(policy file, statement id, action, resources, condition as JSON) of every Allow."""
    found = []
    for path in sorted(policies.glob("iam-policy*.json")) if policies.is_dir() else ():
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a message must not fail for a policy it could not read
        for number, statement in enumerate(document.get("Statement", [])):
            if statement.get("Effect") != "Allow":
                continue
            actions, resources = statement.get("Action", []), statement.get("Resource", [])
            resources = tuple([resources] if isinstance(resources, str) else resources)
            condition = json.dumps(statement.get("Condition", {}))
            for action in [actions] if isinstance(actions, str) else actions:
                found.append((f"deployments/{path.name}", str(statement.get("Sid") or f"#{number + 1}"), action,
                              resources, condition))
    return found
