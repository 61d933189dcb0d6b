"""Deleting old CloudFormation stacks: describe, refuse what must stay, delete and wait.

A stack already gone is reported as gone, not as an error, so a cleanup that stopped part-way
can simply be run again; ``describe`` tells one deleted before (listed as ``DELETE_COMPLETE``)
from a name no stack had. The wait is botocore's ``stack_delete_complete`` waiter, run in slices
so that a deletion taking many minutes reports its newest stack events as it goes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from itertools import takewhile
from typing import Any, Literal

import yaml
from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from rollway.aws.ecs import waiter_schedule
from rollway.aws.errors import AdapterError, asked_while_throttled, aws_message, failed_in_passing
from rollway.bounds import wait_said
from rollway.cleanup import (Holding, StackState, close_names, nested_changed, retained_by, stack_changed,
                             stack_name)
from rollway.errors_pickle import PicklableError

DeleteOutcome = Literal["deleted", "already_gone"]

# The resource type of a nested stack (its physical id is the nested stack's id).
_NESTED_STACK = "AWS::CloudFormation::Stack"
# DeletionPolicy values that leave the resource in place when its stack is deleted (CDK's
# RemovalPolicy.RETAIN, the default of its tables, buckets and log groups, is "Retain").
_KEPT_POLICIES = frozenset({"Retain", "RetainExceptOnCreate"})

# A progress line at least this often while a deletion runs (one waiter slice).
PROGRESS_SECONDS = 60.0

# How many pages of a failed deletion's events (about 100 each) are read back looking for its
# start: a stack with years of events and no deletion start among them was read to its first,
# page after page, each one more call for AWS to throttle. A deletion of the most resources a
# stack may hold (500: each deleting, then deleted or failed) fits in a dozen. The read also stops
# at the events read before DeleteStack (``CloudFormationStacks._failed``), older than this deletion
# unless it was under way then: the bound is for a deletion of more events than it holds.
FAILED_EVENT_PAGES = 20


class StackNotDeleted(PicklableError, AdapterError):
    """The stack was not deleted, nor was its deletion asked of CloudFormation: ``why`` says why, in words.

    Attributes:
        name: the stack.
        why: the reason, as the message says it after "was not deleted: ".
    """

    def __init__(self, name: str, why: str) -> None:
        self.name, self.why = name, why
        super().__init__(f"stack {name!r} was not deleted: {why}")


class StackProtected(StackNotDeleted):
    """The stack must not be deleted: termination protection is on, or it is a live stack."""


class StackChanged(StackNotDeleted):
    """The stack is not the one judged safe to delete any more (updated, made again, protected):
    not deleted. ``why`` says how, in words (``rollway.cleanup.stack_changed``)."""


class StackDeleteFailed(PicklableError, AdapterError):
    """CloudFormation could not delete the stack (DELETE_FAILED, or another failure state).

    Attributes:
        name: the stack.
        status: its status after the attempt.
        reasons: what its events say about the resources that could not be deleted (its events
            unread, ``unread``: CloudFormation's reason for the stack's status, if it gave one).
        failed: the logical ids of those resources.
        unread: why its events could not be read ("" when they were).
        read_back: how many of its newest events, all of this deletion, were read when the read
            stopped short of its start (``FAILED_EVENT_PAGES``); None when it reached it, the events
            read before DeleteStack (of a deletion not under way then), or the stack's first.
    """

    def __init__(self, name: str, status: str, reasons: list[str], failed: list[str] | None = None, *,
                 unread: str = "", read_back: int | None = None) -> None:
        self.name, self.status, self.reasons, self.failed = name, status, tuple(reasons), tuple(failed or ())
        self.unread, self.read_back = unread, read_back
        why = "; ".join(self.reasons) or "its events give no reason"
        if read_back is not None:
            # The reasons and the resources named are those of the events read, which may be fewer
            # than this deletion's: said, not taken as all there is. None is an earlier attempt's: the
            # read stops at the events read before DeleteStack (``CloudFormationStacks._failed``), or
            # at the start of a deletion under way then, which began before DeleteStack was sent.
            why = (f"{why} (read from its newest {read_back} events only, all of this deletion, which do not reach "
                   "back to its start: a resource that failed before them is not named; `aws cloudformation "
                   f"describe-stack-events --stack-name {name}` shows them all)")
        if unread:
            # The events went unread: ``reasons`` holds CloudFormation's reason for the stack, if any.
            why = (f"{why} (its events, which name each resource's reason, could not be read: {unread})"
                   if self.reasons else
                   f"CloudFormation gave no reason of its own, and its events, which name each resource's reason, "
                   f"could not be read ({unread}); `aws cloudformation describe-stack-events --stack-name {name}` "
                   "shows them")
        # Cleanup has no way to keep them: "retain those resources" left a person to find out how.
        keep = (f"; or, to delete the stack and keep those resources, `aws cloudformation delete-stack --stack-name "
                f"{name} --retain-resources {' '.join(self.failed)}`, after which cleanup reports the stack gone"
                if self.failed and status == "DELETE_FAILED" else "")
        super().__init__(
            f"stack {name!r} ended in {status}: {why}. Fix what is named, then run cleanup again: the deletion is "
            f"retried{keep}"
        )


class StackDeleteTimeout(PicklableError, AdapterError):
    """The deletion was still going when the wait ended; CloudFormation carries on with it."""

    def __init__(self, name: str, status: str, timeout_seconds: float) -> None:
        self.name, self.status, self.timeout_seconds = name, status, timeout_seconds
        # Said as the progress lines before it said the time left ("45 s left to wait"), not "45s".
        super().__init__(
            f"stack {name!r} is still {status} after {wait_said(timeout_seconds)}; CloudFormation goes on deleting it. "
            "Run cleanup again to wait for it (a stack gone by then is reported as gone)"
        )


class StackDeleteUnfollowed(PicklableError, AdapterError):
    """DeleteStack was sent and taken, but the deletion could not be followed to its end: the reads
    of its progress (its status, its events) failed in passing (throttled, AWS's own side
    failing, no connection) until the wait ended, or one failed as asking again would not
    get past (refused): whether the stack is gone, still deleting or stopped at DELETE_FAILED is not
    known. CloudFormation carries on with it.

    Attributes:
        name: the stack.
        last_status: its status when last read (``seen_seconds_ago`` None: right before DeleteStack).
        seen_seconds_ago: how long before the wait ended it was last read (None: before DeleteStack).
        why: what the last read that failed got (AWS's words, or botocore's).
        timeout_seconds: the wait.
        passing: True: the reads failed in passing until the wait ended; False: one failed for good,
            ending the wait then.
    """

    def __init__(self, name: str, last_status: str, seen_seconds_ago: float | None, why: str,
                 timeout_seconds: float, *, passing: bool = True) -> None:
        self.name, self.last_status, self.why, self.timeout_seconds = name, last_status, why, timeout_seconds
        self.seen_seconds_ago, self.passing = seen_seconds_ago, passing
        seen = ("right before DeleteStack was sent" if seen_seconds_ago is None
                else f"{wait_said(seen_seconds_ago)} before the wait ended")
        how = (f"the reads of its progress were throttled, failed on AWS's side or got no connection until the wait "
               f"ended after {wait_said(timeout_seconds)}, the last with {why}" if passing else
               f"a read of its progress failed, as asking again would too: {why}")
        # Last seen right before DeleteStack, or DELETE_IN_PROGRESS after it: a failure state read ends
        # the wait as StackDeleteFailed instead, its events read or not.
        super().__init__(
            f"stack {name!r}: DeleteStack was sent and CloudFormation took it, but the deletion could not be followed: "
            f"{how}. It was last seen {last_status}, {seen}; whether it is deleted now is not known. CloudFormation "
            "goes on with the deletion: run cleanup again to see how it ended (a stack gone by then is reported as "
            "gone)"
        )


class CloudFormationStacks:
    """Describes and deletes stacks.

    Args:
        client: a boto3 ``cloudformation`` client.
        keep: stacks this adapter never deletes (the live stacks, ``Targets.stacks``): a second
            guard behind the plan's refusal.
        sleep: how a read throttled (or failing in passing while the deletion is followed) waits
            to be asked again (None: ``time.sleep``, looked up at each wait, as ``errors.tried``
            does, so that a test patching it is the one that waits).
    """

    def __init__(self, client: Any, keep: Collection[str] = (), *,
                 sleep: Callable[[float], None] | None = None) -> None:
        self._client = client
        self._keep = {name.lower() for name in keep}
        self._sleep = sleep

    def describe(self, name: str) -> StackState:
        """The stack as CloudFormation shows it, with its newest event and what it holds; ``status``
        ``DELETE_COMPLETE`` for one deleted before, None when CloudFormation has no record of one of
        that name (``_not_there``)."""
        found = self._describe(name)
        if found is None:
            return self._not_there(name)
        root = found.get("RootId")
        gone = found["StackStatus"] == "DELETE_COMPLETE"
        # What deleting it would delete: the plan refuses a stack holding what production uses.
        stacks: set[str] = set()
        holdings: list[Holding] = []
        resources = () if gone else self._resources(found["StackId"], seen=stacks, holdings=holdings)
        return _judged(name, found).model_copy(update=dict(
            # By id: a stack made again under the name meanwhile has events of its own.
            last_event=None if gone else self._newest_event(found["StackId"]),
            root_stack=stack_name(root) if root else None,
            resources=resources,
            retained=retained_by(resources, holdings),
            holdings=tuple(holdings),
            imported_by={} if gone else self._imported_by({stack_name(stack) for stack in stacks}),
            nested_events={} if gone else self._nested_events(stacks - {found["StackId"]}),
        ))

    def _not_there(self, name: str) -> StackState:
        """A stack DescribeStacks does not know by name: deleted before (``DELETE_COMPLETE``, as
        ListStacks lists it for 90 days), or a name no stack had, with the live stacks of close
        names (the targets' own left out: the plan refuses them). The pages of ListStacks, once.

        "Does not exist" alone could not tell a re-run's stack deleted before, nothing to do,
        from a misspelt name, the old stack still there under its own.
        """
        deleted: list[Any] = []
        live: set[str] = set()
        for page in self._client.get_paginator("list_stacks").paginate():
            for summary in page.get("StackSummaries", []):
                if summary.get("StackStatus") == "DELETE_COMPLETE":
                    if summary.get("StackName") == name:
                        deleted.append(summary.get("DeletionTime"))
                elif summary.get("StackName", "").lower() not in self._keep:
                    live.add(summary["StackName"])
        if deleted:
            # The newest deletion, when CloudFormation dates them (a name deleted, made again, deleted).
            times = sorted((when for when in deleted if when is not None), reverse=True)
            when = times[0] if times else None
            return StackState(name=name, status="DELETE_COMPLETE",
                              deleted_at=when.isoformat() if hasattr(when, "isoformat") else when)
        return StackState(name=name, similar=close_names(name, live))

    def _imported_by(self, exporting: set[str]) -> dict[str, tuple[str, ...]]:
        """Export name -> the other stacks importing it, for every export of the stacks ``exporting``
        (a stack and its nested stacks, by name) that another stack imports.

        CloudFormation does not delete a stack while another imports one of its exports: the
        deletion fails, after the run has already deleted what came before it.
        """
        found: dict[str, tuple[str, ...]] = {}
        for page in self._client.get_paginator("list_exports").paginate():
            for export in page.get("Exports", []):
                if stack_name(export.get("ExportingStackId", "")) not in exporting:
                    continue
                importers = sorted(set(self._importers(export["Name"])) - exporting)
                if importers:
                    found[export["Name"]] = tuple(importers)
        return found

    def _importers(self, export: str) -> list[str]:
        names: list[str] = []
        try:
            for page in self._client.get_paginator("list_imports").paginate(ExportName=export):
                names += page.get("Imports", [])
        except ClientError as err:
            # ListImports answers a ValidationError "Export 'X' is not imported by any stack."
            if err.response.get("Error", {}).get("Code") == "ValidationError" and "not imported" in str(err):
                return []
            raise
        return names

    def status(self, name: str) -> str | None:
        """The stack's status (``CREATE_COMPLETE``, ...), None when there is no such stack: one
        DescribeStacks, nothing else read (what a resumed deploy asks of the stacks it skips)."""
        return self.state(name).status

    def state(self, name: str) -> StackState:
        """The stack's id, status and LastUpdatedTime (``status`` None: no such stack), from one
        DescribeStacks, its resources not read (what ``seen`` adds the newest event to)."""
        found = self._describe(name)
        return StackState(name=name) if found is None else _judged(name, found)

    def bootstrap_version(self, name: str) -> int | None:
        """The ``BootstrapVersion`` output of the CDK toolkit stack ``name`` (what cdk checks a
        stack's ``requiresBootstrapStackVersion`` against), None when there is no such stack or it
        gives none that is a number. One DescribeStacks."""
        found = self._describe(name)
        for output in (found or {}).get("Outputs") or ():
            if output.get("OutputKey") == "BootstrapVersion":
                value = str(output.get("OutputValue", ""))
                return int(value) if value.isdigit() else None
        return None

    def seen(self, name: str) -> StackState:
        """The stack's ``state`` with the id of its newest event: what a deploy compares before and
        after to tell whether CloudFormation changed the stack (``rollway.cleanup.stack_moved``).
        One DescribeStacks and, of a stack that exists, one page of DescribeStackEvents."""
        state = self.state(name)
        if state.stack_id is None:
            return state
        # By id: a stack made again under the name meanwhile has events of its own.
        return state.model_copy(update={"last_event": self._newest_event(state.stack_id)})

    def _newest_event(self, stack_id: str) -> str | None:
        """The id of the stack's newest event, None when it has none (newest first: the first page
        holding an event is enough)."""
        return _newest_id(self._newest_events(stack_id))

    def _newest_events(self, stack_id: str) -> list[dict[str, Any]]:
        """The stack's newest page of events, newest first (empty: it has none)."""
        return self._events(stack_id, until=lambda event: True)

    def _resources(self, stack_id: str, holdings: list[Holding], within: str | None = None,
                   seen: set[str] | None = None, all_kept: bool = False) -> tuple[str, ...]:
        """The physical ids of the stack's resources (every page; not those an earlier deletion
        deleted), and of its nested stacks' resources.

        Deleting a stack deletes its nested stacks and all they made, and ListStackResources
        names a nested stack only by its own id: the resources inside it (a queue production
        reads) are read here too. Each id's resource type, whether its template's DeletionPolicy keeps
        it (a nested stack kept keeps all it holds: the stack's deletion leaves them in place) and the
        nested stack listing it (``within``) are added to ``holdings``, in the same order: a log group's
        physical id is its bare name, as a table's or a role's is, and one id may be listed twice.
        """
        seen = set() if seen is None else seen
        seen.add(stack_id)
        ids: list[str] = []
        nested: list[tuple[str, bool]] = []
        try:
            listed: list[tuple[str, str | None, str | None]] = []  # physical id, logical id, resource type
            for page in self._client.get_paginator("list_stack_resources").paginate(StackName=stack_id):
                for summary in page.get("StackResourceSummaries", []):
                    physical = summary.get("PhysicalResourceId")
                    # A stack left DELETE_FAILED still lists what its deletion deleted: gone, that
                    # is not what deleting it again deletes (a queue of its name made since is not).
                    if physical and summary.get("ResourceStatus") != "DELETE_COMPLETE":
                        listed.append((physical, summary.get("LogicalResourceId"), summary.get("ResourceType")))
            # Only a stack holding something has a template worth reading (one REVIEW_IN_PROGRESS has none).
            kept = set() if all_kept or not listed else self._kept_logical_ids(stack_id)
        except ClientError as err:
            # A nested stack deleted since its parent was listed holds nothing any more.
            if within is None or not _no_such_stack(err):
                raise
            listed, kept = [], set()
        for physical, logical, kind in listed:
            ids.append(physical)
            stays = all_kept or logical in kept
            holdings.append(Holding(type=kind or "", retained=stays, nested_in=within))
            if kind == _NESTED_STACK and physical not in seen:
                nested.append((physical, stays))
        for child, stays in nested:
            ids += self._resources(child, within=stack_name(child), seen=seen, holdings=holdings,
                                   all_kept=stays)
        return tuple(ids)

    def _kept_logical_ids(self, stack_id: str) -> set[str]:
        """The logical ids of the resources the stack's template keeps when the stack is deleted."""
        body = self._client.get_template(StackName=stack_id, TemplateStage="Processed")["TemplateBody"]
        template = body if isinstance(body, dict) else parse_template(body)
        resources = template.get("Resources") if isinstance(template, dict) else None
        return {logical for logical, resource in (resources or {}).items()
                if isinstance(resource, dict) and resource.get("DeletionPolicy") in _KEPT_POLICIES}

    def delete(
        self, name: str, *, timeout_seconds: float, on_progress: Callable[[str], None] = lambda line: None,
        judged: StackState | None = None,
    ) -> DeleteOutcome:
        """Delete ``name`` and wait until it is DELETE_COMPLETE.

        Args:
            name: the stack.
            timeout_seconds: how long to wait for the deletion.
            on_progress: called with a line for each new stack event and each minute of waiting.
            judged: the stack as it was judged safe to delete (``describe``): one that differs from
                it in the DescribeStacks and DescribeStackEvents made right before DeleteStack
                (another stack id, status, LastUpdatedTime or newest event, protection turned on,
                or a nested stack's newest event) is not deleted. DeleteStack takes no condition:
                a change after those reads is not seen. Each of those reads AWS throttles is
                asked again (``asked_while_throttled``, the line said through ``on_progress``).

        Returns:
            "deleted", or "already_gone" when there is no such stack (safe to re-run).

        Raises:
            ValueError: ``timeout_seconds`` is not positive (before any call).
            StackProtected: a kept (live) stack, or termination protection is on (nothing is deleted).
            StackChanged: it is not the stack ``judged`` any more (nothing is deleted).
            StackDeleteFailed: CloudFormation could not delete it; the events' reasons are given
                (CloudFormation's reason for the stack when its events cannot be read).
            StackDeleteTimeout: still deleting when the wait ended.
            StackDeleteUnfollowed: the reads of its progress failed in passing until the wait
                ended, or one failed as asking again would too (refused).
        """
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
        if name.lower() in self._keep:
            raise StackProtected(name, "it is a live stack (Targets.stacks)")
        # The reads right before DeleteStack, throttled past botocore's retries, stopped the run on
        # a busy account, the stack not asked to go: asked again, bounded (never the DeleteStack).
        def read(call: Callable[[], Any], what: str) -> Any:
            return asked_while_throttled(call, f"stack {name}: {what}", say=on_progress, sleep=self._sleep)

        found = read(lambda: self._describe(name), "DescribeStacks")
        if found is None or found["StackStatus"] == "DELETE_COMPLETE":
            on_progress(f"stack {name} does not exist: already gone")
            return "already_gone"
        # The id, not the name: the wait must follow this stack, not one created later under its name.
        stack_id = found["StackId"]
        # The newest page is enough: every later event lands on top of it. Read before the
        # comparison too: an update that left the status and LastUpdatedTime as they were shows
        # in the newest event alone.
        newest = read(lambda: self._newest_events(stack_id), "DescribeStackEvents")
        now = _judged(name, found).model_copy(update={"last_event": _newest_id(newest)})
        changed = None if judged is None else stack_changed(judged, now) or read(
            lambda: self._nested_changed(judged), "the reads of its nested stacks")
        if changed is not None:
            raise StackChanged(name, changed)
        if found.get("EnableTerminationProtection"):
            raise StackProtected(name, (
                "termination protection is on; if it really is to go, lift it with `aws cloudformation "
                f"update-termination-protection --no-enable-termination-protection --stack-name {name}`"))
        earlier = frozenset(e["EventId"] for e in newest)
        self._client.delete_stack(StackName=stack_id)
        on_progress(f"stack {name}: deletion requested (was {found['StackStatus']})")
        self._wait_deleted(name, stack_id, timeout_seconds, earlier, on_progress, found["StackStatus"])
        on_progress(f"stack {name}: DELETE_COMPLETE")
        return "deleted"

    def _nested_changed(self, judged: StackState) -> str | None:
        """How the nested stacks of ``judged`` moved since it was judged (``nested_changed``), read
        now: each one's DescribeStacks and newest event, by id. One deleted on its own since (or
        being deleted) is left out: what it held goes, as the plan had it go."""
        there = [stack_id for stack_id in judged.nested_events if (found := self._describe(stack_id)) is not None
                 and found["StackStatus"] not in ("DELETE_IN_PROGRESS", "DELETE_COMPLETE")]
        return nested_changed(judged, self._nested_events(there))

    def _nested_events(self, stack_ids: Collection[str]) -> dict[str, str | None]:
        """Each of the nested stacks ``stack_ids`` still there -> the id of its newest event."""
        found: dict[str, str | None] = {}
        for stack_id in sorted(stack_ids):
            try:
                found[stack_id] = self._newest_event(stack_id)
            except ClientError as err:
                if not _no_such_stack(err):  # one deleted since it was listed holds nothing any more
                    raise
        return found

    def _wait_deleted(self, name: str, stack_id: str, timeout_seconds: float, earlier: frozenset[str],
                      on_progress: Callable[[str], None], before: str) -> None:
        """Wait for the stack ``stack_id``, ``before`` (its status) when DeleteStack was sent, to be gone
        (``earlier``: the ids of its newest page of events read before DeleteStack)."""
        seen = set(earlier)  # the events not to say: those before DeleteStack, then each one said
        waiter = self._client.get_waiter("stack_delete_complete")
        delay, _ = waiter_schedule(timeout_seconds)
        deadline = time.monotonic() + timeout_seconds
        # Its status as last read, and when (None: before DeleteStack), for a wait whose reads fail to the end.
        last: tuple[str, float | None] = (before, None)
        # Slices in a row whose reads failed (the status or the events: either counts), each waited on
        # twice as long as the one before: a busy API is let be.
        failed_reads = 0
        while True:
            remaining = deadline - time.monotonic()
            # One slice of polls, about PROGRESS_SECONDS long, then a progress line.
            attempts = max(1, int(min(remaining, PROGRESS_SECONDS) // delay) + 1)
            try:
                try:
                    waiter.wait(StackName=stack_id, WaiterConfig={"Delay": delay, "MaxAttempts": attempts})
                    return
                except WaiterError as err:
                    # A failure state or the slice's end: the poll's answer says which, read once. A
                    # poll AWS refused or throttled is a failed read: asked again at once, it was
                    # throttled again, and a DELETE_FAILED the poll had read was never acted on.
                    polled = err.last_response or {}
                    if "Error" in polled:
                        raise ClientError(polled, "DescribeStacks") from err
                found = (polled.get("Stacks") or [None])[0] or self._describe(stack_id)
                status = found["StackStatus"] if found else "DELETE_COMPLETE"
                last = (status, time.monotonic())
                if status not in ("DELETE_COMPLETE", "DELETE_IN_PROGRESS"):
                    # Ends the wait, its reasons read or not: CloudFormation has stopped the deletion.
                    # One under way before DeleteStack (a run that stopped waiting for it), which
                    # DeleteStack joined, began before it: the events read then are its own.
                    raise self._failed(name, stack_id, found, status, seen, on_progress,
                                       frozenset() if before == "DELETE_IN_PROGRESS" else earlier)
                for line in self._new_events(stack_id, seen):
                    on_progress(f"stack {name}: {line}")
                # Both reads answered: only now does the count start again. Reset on the status's
                # answer alone, each throttled events read after it waited the plain poll interval.
                failed_reads = 0
            except (ClientError, BotoCoreError) as err:
                if last[0] == "DELETE_COMPLETE":
                    return  # read gone: only its last events go unsaid
                # Throttled, AWS's own side failing or no connection, past botocore's retries: the
                # deletion goes on, and a read a few seconds later most often gets through. Any
                # other failure, or one lasting to the wait's end, ends the wait saying that
                # DeleteStack was sent and what was last seen: the read's own error (AccessDenied
                # on DescribeStackEvents, say) said neither, and could be taken to mean nothing was done.
                passing = failed_in_passing(err)
                left = deadline - time.monotonic()
                if not passing or left <= 0:
                    status, at = last
                    raise StackDeleteUnfollowed(name, status, None if at is None else time.monotonic() - at,
                                                aws_message(err, call=True), timeout_seconds,
                                                passing=passing) from err
                failed_reads += 1
                pause = min(delay * 2 ** (failed_reads - 1), PROGRESS_SECONDS, left)
                on_progress(f"stack {name}: CloudFormation did not answer the read of its progress "
                            f"({aws_message(err, call=True)}); still waiting, asking again in {wait_said(pause)}, "
                            f"{wait_said(left)} left")
                (self._sleep or time.sleep)(pause)
                continue
            if status == "DELETE_COMPLETE":
                return
            if time.monotonic() >= deadline:
                raise StackDeleteTimeout(name, status, timeout_seconds)
            on_progress(f"stack {name}: still {status}, {wait_said(deadline - time.monotonic())} left to wait")

    def _describe(self, name_or_id: str) -> dict[str, Any] | None:
        try:
            stacks = self._client.describe_stacks(StackName=name_or_id)["Stacks"]
        except ClientError as err:
            if _no_such_stack(err):
                return None
            raise
        return stacks[0] if stacks else None

    def _events(self, stack_id: str, until: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The stack's events, newest first, page after page up to the first page holding an
        event ``until`` accepts (or the last page).

        One page is only the newest 100 or so: a stack of many resources makes more than that in
        one progress slice, and the failure of a resource deleted early sits pages back.
        """
        return self._events_back(stack_id, until)[0]

    def _events_back(self, stack_id: str, until: Callable[[dict[str, Any]], bool],
                     pages: int | None = None) -> tuple[list[dict[str, Any]], bool]:
        """``_events``, ``pages`` pages at most (None: no bound), and whether the read stopped
        short: the bound reached, more pages left and no event ``until`` accepts read."""
        events: list[dict[str, Any]] = []
        for read, page in enumerate(self._client.get_paginator("describe_stack_events").paginate(StackName=stack_id),
                                    start=1):
            batch = page.get("StackEvents", [])
            events += batch
            if any(until(e) for e in batch):
                break
            if read == pages:
                return events, bool(page.get("NextToken"))
        return events, False

    def _new_events(self, stack_id: str, seen: set[str]) -> list[str]:
        """Lines for the events not reported yet, oldest first."""
        return _fresh_lines(self._events(stack_id, until=lambda event: event["EventId"] in seen), seen)

    def _failed(self, name: str, stack_id: str, found: dict[str, Any] | None, status: str, seen: set[str],
                on_progress: Callable[[str], None], earlier: frozenset[str]) -> StackDeleteFailed:
        """The failure of the deletion CloudFormation stopped at ``status``, its events' new lines
        said and their reasons given; each read throttled is asked again (``asked_while_throttled``),
        and events that cannot be read leave the stack's own reason (``found``'s) to say why.
        ``earlier``: the ids of events older than this deletion (the stack's newest page read before
        DeleteStack; none when a deletion was under way then, its start behind them)."""
        own = ((found or {}).get("StackStatusReason") or "").strip() or None

        def start_or_earlier(event: dict[str, Any]) -> bool:
            return _deletion_start(event) or event["EventId"] in earlier

        try:
            # One read for the new lines and the reasons: newest first, the events back to this
            # deletion's start hold every one not said yet (``seen`` holds the newest page read right
            # before DeleteStack and each said since), and a second read of the same pages was one
            # more call for AWS to throttle. The events read before DeleteStack end it as its start
            # does: with no start among them, the pages behind were earlier operations' (the stack's
            # creation, its updates), said as this deletion's progress and searched for its reasons.
            events, short = asked_while_throttled(
                lambda: self._events_back(stack_id, until=start_or_earlier, pages=FAILED_EVENT_PAGES),
                f"stack {name}: DescribeStackEvents", say=on_progress, sleep=self._sleep)
        except (ClientError, BotoCoreError) as err:
            unread = StackDeleteFailed(name, status, [own] if own else [], unread=aws_message(err, call=True))
            # The read's own error kept as its cause: a refused one is named as the statement of the
            # policy granting it (tasks.cleanup.delete_stack), as a refused read of the progress is.
            unread.__cause__ = err
            return unread
        events = list(takewhile(lambda event: event["EventId"] not in earlier, events))
        for line in _fresh_lines(events, seen):
            on_progress(f"stack {name}: {line}")
        return StackDeleteFailed(name, status, failure_reasons(events, own), failed=failed_resources(events),
                                 read_back=len(events) if short else None)


def _judged(name: str, found: dict[str, Any]) -> StackState:
    """What DescribeStacks says of the stack that tells it changed: its id, status (and CloudFormation's
    reason for it), last update and protection."""
    updated = found.get("LastUpdatedTime")
    return StackState(name=name, status=found["StackStatus"], status_reason=found.get("StackStatusReason"),
                      stack_id=found.get("StackId"),
                      last_updated=updated.isoformat() if hasattr(updated, "isoformat") else updated,
                      termination_protection=bool(found.get("EnableTerminationProtection")))


def failure_reasons(events_newest_first: list[dict[str, Any]], stack_reason: str | None = None) -> list[str]:
    """Why the latest deletion failed: each resource event of it in DELETE_FAILED, with its reason.

    Args:
        events_newest_first: DescribeStackEvents' StackEvents (newest first).
        stack_reason: the stack's own StackStatusReason, if any.
    """
    reasons = []
    own: str | None = None  # the stack's own DELETE_FAILED event's reason, newest
    for event in events_newest_first:
        if _deletion_start(event):
            break  # the start of this deletion: older events belong to earlier attempts
        if event.get("ResourceStatus") != "DELETE_FAILED":
            continue
        if not _is_stack(event):
            reasons.append(f"{event.get('LogicalResourceId')} ({event.get('ResourceType')}): "
                           f"{event.get('ResourceStatusReason') or 'no reason given'}")
        elif own is None:
            own = event.get("ResourceStatusReason")
    # A deletion refused as a whole (an export another stack imports, a role CloudFormation can no
    # longer assume) fails no resource, and the stack goes back to its COMPLETE status, whose own
    # reason is empty: the stack's DELETE_FAILED event is where the reason is.
    if not reasons and (own or stack_reason):
        reasons.append(own or stack_reason)
    return list(reversed(reasons))


class _TemplateLoader(yaml.SafeLoader):
    """YAML that takes CloudFormation's short forms (``!Ref``, ``!Sub``, ``!GetAtt``...) as plain
    values: only the resources' DeletionPolicy, a literal, is read."""


_TemplateLoader.add_multi_constructor("!", lambda loader, suffix, node: (
    loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
    else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
    else loader.construct_mapping(node)))


def parse_template(body: str) -> Any:
    """A template body as GetTemplate returns it (JSON, or YAML with short-form functions)."""
    try:
        return json.loads(body)
    except ValueError:
        return yaml.load(body, Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader, with tags as plain values


def failed_resources(events_newest_first: list[dict[str, Any]]) -> list[str]:
    """The logical ids of the resources the latest deletion could not delete, oldest first."""
    found: list[str] = []
    for event in events_newest_first:
        if _deletion_start(event):
            break
        logical = event.get("LogicalResourceId")
        if not _is_stack(event) and event.get("ResourceStatus") == "DELETE_FAILED" and logical and logical not in found:
            found.append(logical)
    return list(reversed(found))


def _no_such_stack(err: ClientError) -> bool:
    # CloudFormation answers a ValidationError "Stack with id X does not exist" for a name it
    # does not know (and for a deleted stack asked by name).
    return err.response.get("Error", {}).get("Code") == "ValidationError" and "does not exist" in str(err)


def _is_stack(event: dict[str, Any]) -> bool:
    """Whether the event is the stack's own (not one of its resources')."""
    return event.get("ResourceType") == "AWS::CloudFormation::Stack" and \
        event.get("PhysicalResourceId") == event.get("StackId")


def _deletion_start(event: dict[str, Any]) -> bool:
    return _is_stack(event) and event.get("ResourceStatus") == "DELETE_IN_PROGRESS"


def _newest_id(events: Sequence[dict[str, Any]]) -> str | None:
    """The id of the newest of ``events`` (DescribeStackEvents' order: newest first), None when
    there are none."""
    return events[0]["EventId"] if events else None


def _fresh_lines(events_newest_first: list[dict[str, Any]], seen: set[str]) -> list[str]:
    """Lines for those of ``events_newest_first`` whose ids are not in ``seen``, oldest first; their
    ids are added to ``seen``, so that none is said twice."""
    fresh = [e for e in events_newest_first if e["EventId"] not in seen]
    seen.update(e["EventId"] for e in fresh)
    return [_event_line(e) for e in reversed(fresh)]


def _event_line(event: dict[str, Any]) -> str:
    reason = event.get("ResourceStatusReason")
    return (f"{event.get('LogicalResourceId')} ({event.get('ResourceType')}) {event.get('ResourceStatus')}"
            + (f": {reason}" if reason else ""))
