"""Constrained types for the flows' parameters.

Prefect validates a run's parameters against its flow's signature before the run's body
starts, and fails a run they do not fit as a parameter error, which the rollback hooks leave
alone. A value the signature let through and the body could not use (a negative poll
interval, a blank actor) failed inside the run instead, after it had moved traffic, or where
the hook took it for a failed rollout and rolled back whatever held the service.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field

# The approval form's rule for a name, so that an actor is held to what an approver is.
from flows.approvals import NAME_PATTERN
from rollway.bounds import as_given, bound_said, ranged
# encodable is imported from here too (rollway.cli.ops): the check lives beside the flags' own use of it.
from rollway.flags import MAX_ACTOR, encodable, name_rule
from rollway.one_line import on_one_line
from rollway.deadline import MAX_READ_SECONDS
from rollway.spec import MAX_MONITOR_SECONDS
from rollway.targets import STACK_NAME


def _named(actor: str) -> str:
    actor = actor.strip()  # recorded without surrounding spaces, as approvers are
    if not actor:
        raise ValueError("actor must name who runs the rollout (it is recorded in the ledger and the flags' audit trail)")
    if len(actor) > MAX_ACTOR:
        raise ValueError(f"actor is {len(actor)} characters; at most {MAX_ACTOR} are kept in the audit trail")
    if not re.search(NAME_PATTERN, actor):
        # As `--approver` and the approval form refuse it. Not for the run's log, which shows a name
        # escaped, nor for the notices' escape sequences and overrides (SnsNotifier.notify escapes
        # them): the ledger keeps it as typed, in the entries every later reader takes it from.
        raise ValueError(f"actor must be {name_rule(actor)}: the ledger keeps it as typed")
    return encodable(actor, "actor")


def _typed(limit: int, pattern: str = r"\S") -> Any:
    """The UI form's bounds of a text parameter: not blank (or ``pattern``), at most ``limit``
    characters. Only for the form (it refuses a blank or overlong text as it is typed, and the API
    as the run is created); the parameter's validator gives the message."""
    return Field(json_schema_extra={"pattern": pattern, "maxLength": limit})


Actor = Annotated[str, AfterValidator(_named), _typed(MAX_ACTOR, NAME_PATTERN)]
"""Who runs the flow: not blank, on one line with no control characters, at most MAX_ACTOR characters."""

MAX_POLL_SECONDS = 300

# At most 5 minutes: an answer, and the UI's Cancel, are seen only at a look. A typo (3600 for
# 360) left a person's approval or Cancel unseen for an hour, or until the pause's deadline.
PollSeconds = ranged(int, gt=0, le=MAX_POLL_SECONDS)
"""How often a paused run looks for an answer: every 1 to 300 seconds."""

MAX_LEASE_SECONDS = 24 * 3600.0

# At most a day: a live run renews its lease every analysis tick (at most a day apart), so a longer
# lease only keeps a dead run's rollout from being resumed. A "never" such as 1e12 was accepted, and
# its expiry could not be written as a date: the next run to meet it (a resume, `rollway status`)
# failed with "year 33715 is out of range" instead of saying who held the rollout, and a resume's
# hook then rolled the rollout back.
LeaseSeconds = ranged(float, gt=0, le=MAX_LEASE_SECONDS, allow_inf_nan=False)
"""How long a run may go silent before another run may take its rollout over: positive, at most a day."""

def _window(seconds: float) -> float:
    # A "for ever" such as 1e12 was taken: the run held the rollout for as long, and no next
    # rollout of the service could start. Bounded as a spec's monitor_seconds is.
    if seconds > MAX_MONITOR_SECONDS:
        raise ValueError(f"window_seconds must be at most {bound_said(MAX_MONITOR_SECONDS, seconds=True)}, not {as_given(seconds)}; "
                         "watch for longer with your own alarms after the window")
    return seconds


# The maximum is for the UI's form; the validator gives the message.
WindowSeconds = Annotated[float, Field(ge=0, allow_inf_nan=False, json_schema_extra={"maximum": MAX_MONITOR_SECONDS}),
                          AfterValidator(_window)]
"""A monitoring window; 0 watches nothing, at most 90 days as a spec's ``monitor_seconds``."""

MAX_WAIT_SECONDS = 24 * 3600.0

WaitSeconds = ranged(float, gt=0, le=MAX_WAIT_SECONDS, allow_inf_nan=False)
"""How long to wait for AWS to reach a state: positive, at most a day (a longer wait became a
datetime out of range, after the run had read AWS)."""

ReadSeconds = ranged(float, gt=0, le=MAX_READ_SECONDS, allow_inf_nan=False)
"""How long one read of AWS a person waits on may take (``rollway.deadline.read_bound``):
positive, at most ten minutes."""

TaskCount = ranged(int, ge=1, le=5000)
"""How many tasks a service runs: at least one, at most ECS's quota of 5,000 tasks per service."""

MAX_REASON = 500


def _optional_reason(name: str, blank: str) -> Any:
    """The check of an optional reason recorded in the ledger: None, or not blank (``blank`` says
    what to do instead), at most MAX_REASON characters, valid UTF-8 (``encodable``); ``name``: the
    parameter, as a person typed it."""

    def checked(reason: str | None) -> str | None:
        if reason is None:
            return None
        reason = reason.strip()
        if not reason:
            raise ValueError(blank)
        if len(reason) > MAX_REASON:
            raise ValueError(f"the reason is {len(reason)} characters; at most {MAX_REASON} are recorded")
        # Recorded in the ledger and the run's parameters, which hold only UTF-8: checked as Reason and Actor are.
        return encodable(reason, name)

    return checked


_reason = _optional_reason("start_early_because",
                           "a reason to start the next phase early must say why (it is recorded in the ledger); "
                           "leave it empty to wait for the weekly calendar")


# Bounded in the form, as Actor is: the API refuses a blank or overlong reason when the run is
# created, where the run used to start and fail on the worker.
EarlyReason = Annotated[Annotated[str, _typed(MAX_REASON)] | None, AfterValidator(_reason)]
"""Why a person starts the next weekly phase before the calendar says it is due: None, or not
blank, at most MAX_REASON characters, valid UTF-8 (``encodable``)."""

BLANK_ACCEPTANCE = ("--accept-breach must say why the breach is accepted (who judged it harmless, and why: it is "
                    "recorded in the ledger beside the breach); leave it out to finalize only a release with no "
                    "breach not rolled back")

# As EarlyReason: a blank acceptance is refused by the form and the API before the run starts.
BreachAcceptance = Annotated[Annotated[str, _typed(MAX_REASON)] | None,
                             AfterValidator(_optional_reason("accept_breach", BLANK_ACCEPTANCE))]
"""Why a person finalizes a release whose monitoring window saw a breach it could not roll back
(``rollway.finalize.unhandled_breach``): None (finalize refuses such a release), or not blank, at
most MAX_REASON characters, valid UTF-8."""


MAX_ROLLBACK_REASON = 4_000
"""The most characters of a rollback's reason. The ledger keeps it twice in the rollout's item (the
rollback's start and its end), which DynamoDB caps at 400 KB together with the spec and the whole
history: a reason of a few hundred KB made the rollback move the traffic and then fail to record it,
and a shorter one still left too little room for the writes after it. 4,000 characters, counted as
typed, are at most 24 KB a copy as the ledger keeps them (16 KB of UTF-8, or 6 bytes for a character
kept as its escape, ``_said``): 48 KB both, an eighth of the item. A long paragraph with a pasted
error, four times what `rollway abort --reason` takes (the Resume form's 1,000)."""


def _said(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ValueError("reason must say why (it opens the page on-call gets, and goes in the ledger and the flags' "
                         "audit trail)")
    if len(reason) > MAX_ROLLBACK_REASON:
        raise ValueError(f"reason is {len(reason)} characters; at most {MAX_ROLLBACK_REASON} are kept: the ledger "
                         "records it twice in the rollout's item, which DynamoDB caps at 400 KB. Say it shorter (a "
                         "link to the incident, say); nothing was done")
    # Refused here, before any call: taken, it failed the page and the ledger's writes once the
    # traffic had moved.
    encodable(reason, "reason")
    # On one line, escaped (``on_one_line``), as the page, the ledger and the run's log show it: the
    # page reads "Why: <reason>" then "Requested by: <actor>", and a line break in a typed reason (or
    # a cancellation's message, which a run's hook passes) wrote a "Requested by:" line of its own
    # above the real one; a right-to-left override reordered the words after it. Bounded as typed
    # above: escaped, it is at most six times as long (``MAX_ROLLBACK_REASON`` counts the bytes).
    return on_one_line(reason)


def fit_reason(reason: str) -> str:
    """A reason rollway writes itself (a run's failure, for its hook's rollback), cut to the
    rollback flow's limit: a rollback is never refused over its length."""
    return reason if len(reason) <= MAX_ROLLBACK_REASON else reason[: MAX_ROLLBACK_REASON - 3] + "..."


# Blank, the page on-call got said "Why: " and nothing else. A run's hook passes its run's failure,
# whatever its length, cut to fit (``fit_reason``).
Reason = Annotated[str, AfterValidator(_said), _typed(MAX_ROLLBACK_REASON)]
"""Why a rollback is run: not blank, at most MAX_ROLLBACK_REASON characters."""


def _stack_name(name: str) -> str:
    if not STACK_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a CloudFormation stack name (a letter, then letters, digits and '-', at "
                         "most 128 characters)")
    return name


# The form's pattern is the API's (Python's re.search, where '$' also matches before a final line
# break, which a stack name never holds) and the UI's (JavaScript): the lookahead refuses such a
# break in both. pydantic's regex engine takes no lookahead, so the run's own check is _stack_name.
StackName = Annotated[str, AfterValidator(_stack_name), Field(
    description="a CloudFormation stack name", json_schema_extra={"pattern": STACK_NAME.pattern + r"(?!\n)"})]
"""A CloudFormation stack name (the form refuses anything else as the run is created)."""


RolloutId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")]
"""A rollout id as the ledger records it (``rollway status`` shows it): one word. As the rollback
flow's ``rollout``, a blank or padded id was taken, and the rollback was then refused after reading
the ledger as meant for "rollout '' ... no longer the newest", naming a rollout nobody started."""


# The labels of the flows' run forms in the Prefect UI. Prefect titles each field with its
# parameter's name, overwriting a Field's title given on the signature, so serve.py sets these on
# the schema it registers (``form_titled``); a parameter not named here is said in words by rule.
FORM_TITLES = {
    "spec": "Rollout spec",
    "actor": "Actor (who runs this)",
    "targets_block": "Targets block (its name)",
    "aws_credentials_block": "AWS credentials block (its name)",
    "clock": "Clock",
    "approval_poll_seconds": "Approval poll interval (seconds)",
    "lease_wall_seconds": "Lease length (seconds, wall clock)",
    "claim_wait_seconds": "Wait for a rollback under way (seconds)",
    "window_seconds": "Monitoring window (seconds)",
    "phased": "Weekly phases",
    "adopt_live_weights": "Adopt the live traffic weights",
    "start_early_because": "Start the next phase early, because",
    "finalize": "Finalize after the monitoring window",
    "decommission": "Decommission the old version after the window",
    "previous_task_definition": "Previous task definition (to roll back to)",
    "stable_desired": "Stable service's task count",
    "only_open_rollout": "Only an open rollout",
    "rollout": "Rollout ID",
    "rollout_id": "Rollout ID",
    "unrecorded": "Unrecorded promotion (of the canary flow)",
    "accept_breach": "Accept the breach not rolled back, because",
    "changes": "Flag changes",
    "cdk_app_dir": "CDK app directory",
    "cdk_executable": "CDK executable",
    "direct": "Deploy directly (no change sets)",
    "dry_run": "Dry run (change nothing)",
    "git_commit": "Git commit",
    "validation_spec": "Validation spec (the validation's: its checks' URLs)",
}

# A parameter whose name means another thing in one flow: validate_deployment's spec is its checks'.
_FLOW_FORM_TITLES = {"validate_deployment": {"spec": "Validation spec (URLs and checks)"}}

_WORDS = {"aws": "AWS", "cdk": "CDK", "id": "ID", "ecr": "ECR", "git": "Git"}


def form_title(name: str) -> str:
    """The label a run form shows for the parameter ``name``: FORM_TITLES's, or its words
    ("stack_timeout_seconds": "Stack timeout (seconds)")."""
    if name in FORM_TITLES:
        return FORM_TITLES[name]
    words = name.split("_")
    unit = " (seconds)" if len(words) > 1 and words[-1] == "seconds" else ""
    words = [_WORDS.get(w, w) for w in (words[:-1] if unit else words)]
    said = " ".join(words)
    return said[:1].upper() + said[1:] + unit


def form_titled(properties: dict[str, Any], flow_name: str = "") -> None:
    """Give each field of the run form of the flow ``flow_name`` (``properties``: a registered
    parameter schema's) its label in words (``form_title``), in place."""
    own = _FLOW_FORM_TITLES.get(flow_name, {})
    for name, field in properties.items():
        field["title"] = own.get(name) or form_title(name)
