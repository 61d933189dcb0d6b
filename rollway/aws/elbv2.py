"""TrafficRouter on an Application Load Balancer: one listener rule forwarding to two groups.

The rule's ForwardConfig weights are the traffic split. Every lookup (load balancer,
listener, target groups, rule) is a read-only Describe call made once and cached (with the
routers for its bounded reads, ``reading``), so that a flow can call ``resolve()`` within a
bound to fail on a bad name before any write. ``set_weights`` reads the
rule and writes it back with only the forward action's weights changed: ModifyRule replaces
the whole list of actions, and an authentication step in front of the forward must survive.
It gives back the weights that read found: what the write moved the traffic from. The read is
judged once (``_judged``): the weights it holds, or why a rollout refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from botocore.exceptions import ClientError

from rollway.aws.errors import (AdapterError, OtherGroupsForwarded, RuleForwardsNowhere, RulesOnPath, TargetNotFound,
                                WeightMismatch, asked_while_throttled, error_code)
from rollway.model import ShiftedRule, TargetGroup, Weights
from rollway.pinning import CheckRequest, Pin, Unpinned, find_pin, forwards_alone, is_pin_rule
from rollway.targets import Targets
from rollway.weights_read import FirstRead

# Error codes elbv2 answers for a name or ARN that does not exist (ValidationError: for an
# ARN it cannot parse; Targets already refuses malformed target group ARNs).
_NOT_FOUND = {
    "LoadBalancerNotFound",
    "ListenerNotFound",
    "TargetGroupNotFound",
    "RuleNotFound",
    "ValidationError",
}

# Where a person gives a rule its weights by hand, as a refused rollback's move says.
_BY_HAND = "the EC2 console: the load balancer's listener, its rules, that rule's forward action"

# Tag on the listener rule holding the operator's stickiness (DurationSeconds) while a shift
# to 0 % has it off; see AlbRouter._split_stickiness.
_STICKINESS_TAG = "rollway:stickiness-seconds"


@dataclass(frozen=True)
class _Resolved:
    load_balancer_arn: str
    listener_arn: str
    rule_arn: str
    # The groups as DescribeTargetGroups answered the lookup: their health checks come with it.
    stable: TargetGroup
    canary: TargetGroup

    @property
    def stable_arn(self) -> str:
        return self.stable.arn

    @property
    def canary_arn(self) -> str:
        return self.canary.arn


class _Gone(Exception):
    """The rule ``looked_up`` names is not there (RuleNotFound): said as ``AlbRouter._rule_gone`` says
    it, unless a rollback's move finds the rule again (``AlbRouter._found_again``)."""

    # Raised as ``_Gone(looked_up)`` and caught within this module; no constructor of its own, so
    # it pickles as any exception does, should one ever cross a process.
    @property
    def looked_up(self) -> _Resolved:
        return self.args[0]


class _Lookups:
    """What a router and the routers for its bounded reads (``AlbRouter.reading``) have looked up.

    A rollback's (``AlbRouter.rolling_back``) keeps with them the rule the rollout recorded
    (``recorded``; None: none recorded), and whether its rule was taken from that record rather than
    looked up by this run (``from_record``). ``shifted``: a shift of this router's own wrote the rule
    it holds, which is then the rollout's (a lookup that only read it may have found another service's
    rule on the path)."""

    resolved: _Resolved | None = None
    rollback: bool = False
    recorded: ShiftedRule | None = None
    from_record: bool = False
    shifted: bool = False


class AlbRouter:
    """Shifts traffic between the stable and the canary target group of one ALB rule.

    Args:
        client: a boto3 ``elbv2`` client.
        targets: names of the load balancer, listener port and target groups (a target
            group may be given by name or by ARN).
        reads: seconds -> an ``elbv2`` client whose calls end within them, for the reads of a
            bounded wait (``reading``); None: those reads use ``client``.
    """

    def __init__(self, client: Any, targets: Targets, reads: Callable[[float], Any] | None = None) -> None:
        self._client = client
        self._targets = targets
        self._reads = reads
        self._lookups_made = _Lookups()
        self._move: FirstRead | None = None  # a rollback's move (``dropping_others``)

    @property
    def _resolved(self) -> _Resolved | None:
        return self._lookups_made.resolved

    def reading(self, seconds: float) -> AlbRouter:
        """This router for the reads of a wait bounded by ``seconds`` (a weight read-back, a
        health wait, the lookups themselves): on a client whose calls end within the bound, where
        this router was given one (``reads``). It shares this router's lookups: those it makes
        are this router's too, so the writes that follow look nothing up again. Its writes are
        not for it."""
        if self._reads is None:
            return self
        router = AlbRouter(self._reads(seconds), self._targets, self._reads)
        router._lookups_made = self._lookups_made
        return router

    def dropping_others(self, move: FirstRead) -> AlbRouter:
        """This router for a rollback's move to stable: its ``set_weights`` writes over a rule that
        also forwards to a target group other than stable and canary, dropping that group from the
        rule, or with weight 0 to both; and before each ModifyRule it tells ``move`` what its
        DescribeRules found (``FirstRead.read``) and what it drops: "target group <arn> (weight 10
        of 100) from rule <arn>" (``FirstRead.dropping``). A rollback that could not move users back
        to stable would leave them on the version being rolled back. It shares this router's
        lookups and clients."""
        router = AlbRouter(self._client, self._targets, self._reads)
        router._lookups_made, router._move = self._lookups_made, move
        return router

    def rolling_back(self, recorded: ShiftedRule | None) -> AlbRouter:
        """This router for a rollback of the rollout that recorded ``recorded`` as its own (the
        ledger's ``shifted_rule``; None: none recorded, by a ledger from before it was kept, or no
        ledger): a rollback whose lookup finds the rule by listener and path alone (a hook's, `rollway
        abort`'s, one finishing a rollback that died) would write over another service's rule left on
        that path, and send its users to this service's stable group.

        Its rule is the recorded one, by ARN (gone since, the move looks for it again on its path and
        takes one only if it forwards to both recorded groups: ``_found_again``); with none recorded, the
        rule on the path if it forwards to both the stable and the canary group, or to the stable group
        alone (which the move leaves as it is), and any other is refused before any write. A router
        keeps the rule it holds when that is the recorded one, with the same groups, or, with none
        recorded, when its own shifts wrote it (the rollout's own run): one that only looked it up
        (a monitoring window's reads) may hold another service's rule found on the path. It shares
        this router's clients, not its lookups."""
        router = AlbRouter(self._client, self._targets, self._reads)
        lookups = router._lookups_made
        lookups.rollback, lookups.recorded = True, recorded
        held = self._resolved
        if held is not None and (_recorded(held) == recorded if recorded is not None else self._lookups_made.shifted):
            lookups.resolved = held
        return router

    def check_move(self) -> None:
        """Refuse now, with reads alone, the rule a rollback's move to stable (``dropping_others``)
        would refuse at its write, for a rollback that writes something else first (the stable service
        scaled up to carry all the traffic): its lookup (``resolve``: with none recorded, another
        service's rule on the path; a recorded rule whose groups are not the targets'), then the rule
        it holds read (DescribeRules) and judged as the move judges it (``_moved_over``: one forwarding to
        no target group, a maintenance page or a redirect put on it by hand) and, gone, looked for again
        on its path as the move looks for it (``_found_again``: none there, or another service's). The
        lookup is kept, as any router's (``resolve``: the load balancer, listener, groups and rule, shared
        with the router it reads for), and the move writes over the rule it names; the look for a rule
        gone is not: the move looks for itself, and says which rule it went over. Made before any write
        of the rollback, a refusal left it scaled up for a move it would never make.

        Raises:
            TargetNotFound, AdapterError: what the move would refuse.
        """
        r = self._lookups()
        try:
            rule = self._described(r)
        except _Gone as gone:
            self._found_on_path(gone)  # one found forwards to both groups, which the move writes over
            return
        _moved_over(_judged(rule, r))

    def shifted_rule(self) -> ShiftedRule:
        """The rule this router's shifts write and the two groups they shift between, by ARN, for the
        ledger to keep with a shift (``rolling_back`` takes it back); resolved on first use."""
        return _recorded(self._lookups())

    def resolve(self) -> None:
        """Look up the load balancer, listener, target groups and rule, and cache them.

        Raises:
            TargetNotFound: one of them does not exist; the message names it.
        """
        if self._resolved is not None:
            return
        t = self._targets
        lb_arn = self._load_balancer_arn(t.load_balancer)
        listener_arn = self._listener_arn(lb_arn)
        stable = self._target_group(t.stable_target_group)
        canary = self._target_group(t.canary_target_group)
        if self._lookups_made.rollback:
            self._lookups_made.resolved = self._rollbacks_rule(_Resolved(lb_arn, listener_arn, "", stable, canary))
            return
        rule_arn = self._rule_on_path(listener_arn, stable.arn, canary.arn)["RuleArn"]
        self._lookups_made.resolved = _Resolved(lb_arn, listener_arn, rule_arn, stable, canary)

    def _rollbacks_rule(self, r: _Resolved) -> _Resolved:
        """``r`` with the rule a rollback's router moves the traffic over (``rolling_back``).

        Raises:
            TargetNotFound: none recorded, and the rule on the path forwards to neither both groups
                nor the stable group alone (``_not_the_rollouts``), or no rule on it forwards to them;
                or the rollout recorded other groups than the targets name now (``_other_groups_recorded``).
        """
        lookups = self._lookups_made
        if lookups.recorded is not None:
            if (lookups.recorded.stable_arn, lookups.recorded.canary_arn) != (r.stable_arn, r.canary_arn):
                # The move writes the targets' groups: over the recorded rule, it would drop the
                # rule's own and send its users to a group it does not forward to.
                raise _other_groups_recorded(lookups.recorded, r, self._targets)
            # No call: a rule gone since is looked for again by the move (``_found_again``), which
            # reads it anyway.
            lookups.from_record = True
            return replace(r, rule_arn=lookups.recorded.rule_arn)
        rule = self._rule_on_path(r.listener_arn, r.stable_arn, r.canary_arn)
        found = replace(r, rule_arn=rule["RuleArn"])
        if _stable_alone(rule, found):
            return found
        refusal = _not_the_rollouts(rule, found, self._targets, (
            "the rollout recorded no rule of its own (its ledger is from before rollway kept one, or there is none), "
            "and the rule looked up"), put_back=False)
        if refusal is not None:
            raise refusal
        return found

    @property
    def load_balancer_arn(self) -> str:
        """The ALB's ARN (resolved on first use)."""
        return self._lookups().load_balancer_arn

    @property
    def listener_arn(self) -> str:
        """The ARN of the listener on ``Targets.listener_port`` (resolved on first use)."""
        return self._lookups().listener_arn

    @property
    def rule_arn(self) -> str:
        """The ARN of the rule that forwards to the two target groups (resolved on first use)."""
        return self._lookups().rule_arn

    @property
    def stable_target_group_arn(self) -> str:
        return self._lookups().stable_arn

    @property
    def canary_target_group_arn(self) -> str:
        return self._lookups().canary_arn

    def target_group(self, version: str) -> TargetGroup:
        """The ``stable`` or ``canary`` target group and its health check, as looked up (no call
        of its own once resolved).

        Raises:
            ValueError: ``version`` is neither "stable" nor "canary".
        """
        if version not in ("stable", "canary"):
            raise ValueError(f"version must be 'stable' or 'canary', got {version!r}")
        return getattr(self._lookups(), version)

    def get_weights(self) -> Weights:
        """The weights the rule holds now, read back with DescribeRules.

        Raises:
            AdapterError: the rule no longer forwards to the two groups alone, or forwards with
                weight 0 to both (OtherGroupsForwarded: to another group as well).
        """
        r = self._lookups()
        held = _judged(self._rule(r), r)
        if held.refusal is not None:
            raise held.refusal
        return held.weights

    def set_weights(self, weights: Weights) -> Weights | None:
        """Write ``weights`` to the rule: DescribeRules, then one ModifyRule.

        Returns the weights the rule held just before the write, read by its DescribeRules as
        ``get_weights`` reads them (a rollback records them as what it moved the traffic from, and
        makes no read of its own for them). A router for a rollback's move (``dropping_others``)
        tells them to its move before the ModifyRule as well, so that a call that fails after the
        DescribeRules leaves them known.

        A rule ``get_weights`` refuses is refused before the ModifyRule, as it reads it: one that
        also forwards to a target group other than stable and canary (one added since the run
        looked the rule up) would lose it, as the write names the two groups alone (the traffic it
        took taken away from it, and nobody told), and one forwarding with weight 0 to both would
        start sending requests where someone stopped them. A router for a rollback's move to stable
        writes over either all the same (users off the version rolled back come first), says what
        it drops, and gives back None, but refuses one forwarding to no target group as a rollout
        does (``_moved_over``: the forward's weights have no action to go in); and over a rule found
        gone (deleted, or replaced by a stack update under a new ARN) it looks the rule up again as
        ``resolve`` does and writes over the one it finds, which the reads and writes after it use as
        well, if it forwards to both groups (another host's or service's left on the path is refused:
        ``_not_the_rollouts``). A rule forwarding to the stable group alone it leaves as it is: all its
        requests go to stable already.

        The rule's other actions (authenticate-oidc, authenticate-cognito) are written back as
        they are now, so a shift never opens an endpoint that required a login.

        The rule's target-group stickiness is kept while both versions get traffic, so a
        session stays on its version. A split that gives one version 0 % turns it off: a
        sticky session would keep reaching a group at weight 0, and rollway relies on 0 %
        meaning no requests (a rollback moves every user at once; the old service is scaled
        down after a promotion). The next rollout's first split turns it back on: see
        ``_split_stickiness``.
        """
        try:
            return self._write_weights(self._lookups(), weights)
        except _Gone as gone:
            if self._move is None:
                raise self._rule_gone(gone.looked_up) from gone.__cause__
            # A rollback's move: a rule deleted since the run looked it up is looked for again,
            # as a fresh run's lookup (the hook's, `rollway abort`'s) finds it, and the users are
            # moved over the rule a stack update put in its place, now, not after a failed run.
            r = self._found_again(gone)
        try:
            return self._write_weights(r, weights)
        except _Gone as gone:
            raise self._rule_gone(gone.looked_up) from gone.__cause__

    def _write_weights(self, r: _Resolved, weights: Weights) -> Weights | None:
        """``set_weights`` over the rule ``r`` names: its DescribeRules and ModifyRule.

        Raises:
            _Gone: the rule is not there (DescribeRules or ModifyRule said RuleNotFound).
        """
        rule = self._described(r)
        held = _judged(rule, r)
        if self._move is None:
            if held.refusal is not None:
                raise held.refusal
        else:
            _moved_over(held)
            if _stable_alone(rule, r):
                # A rule forwarding to the stable group alone sends it everything already, whether it is
                # the rollout's (before its first shift) or another host's on the path that a fresh run's
                # lookup (the hook's, `rollway abort`'s) found by path alone, the rollout's being gone:
                # written over, the other's would be given the canary group and lose its stickiness. It
                # is read back as all on stable, as it is.
                self._move.read(held.weights)
                return held.weights
            if held.dropped is not None:
                self._move.dropping(f"{held.dropped} from rule {r.rule_arn}")
            # Told now: a lost answer may have landed, and the write is sent again; only this read
            # is from before it, and the failure, which may be stored and loaded again, is no place for it.
            self._move.read(held.weights)
        split = weights.stable and weights.canary
        sticky = self._split_stickiness(rule) if split else {"Enabled": False}
        forward = {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": r.stable_arn, "Weight": weights.stable},
                    {"TargetGroupArn": r.canary_arn, "Weight": weights.canary},
                ],
                "TargetGroupStickinessConfig": sticky,
            },
        }
        try:
            self._client.modify_rule(RuleArn=r.rule_arn, Actions=_with_forward(rule, forward))
        except ClientError as err:
            # Deleted since the DescribeRules above: said as that read says it, not as AWS's bare
            # RuleNotFound, which a rollback paged as a stable service not yet able to take the traffic.
            if error_code(err) != "RuleNotFound":
                raise
            raise _Gone(r) from err
        if self._move is None:
            self._lookups_made.shifted = True
        return held.weights

    def verify(self, expected: Weights) -> Weights:
        """Read the weights back and check they are ``expected``.

        Returns:
            The weights read back.

        Raises:
            WeightMismatch: the rule holds other weights.
        """
        actual = self.get_weights()
        if actual != expected:
            raise WeightMismatch(expected, actual)
        return actual

    def healthy_targets(self, version: str) -> int:
        """Targets of the ``stable`` or ``canary`` group whose health state is ``healthy``.

        moto reports every registered target as ``healthy`` (it runs no health checks), so
        against the embedded AWS this counts registered targets.

        Raises:
            ValueError: ``version`` is neither "stable" nor "canary".
        """
        r = self._lookups()
        arns = {"stable": r.stable_arn, "canary": r.canary_arn}
        if version not in arns:
            raise ValueError(f"version must be 'stable' or 'canary', got {version!r}")
        health = self._call(
            "describe_target_health", "target group", arns[version], TargetGroupArn=arns[version]
        )
        return sum(
            1
            for d in health["TargetHealthDescriptions"]
            if d.get("TargetHealth", {}).get("State") == "healthy"
        )

    def pin(self, header: str, *, checks: Sequence[CheckRequest] = (), say: Callable[[str], None] = lambda _: None,
            sleep: Callable[[float], None] | None = None) -> Pin | Unpinned:
        """The listener rule that pins requests carrying ``header`` (``Name: value``) to the canary
        target group ahead of the weighted rule, or why there is none (``rollway.pinning.find_pin``'s
        ``Unpinned``):
        DescribeRules of the listener, read-only, asked again while throttled
        (``asked_while_throttled``, the one retry of it: a caller bounds it in time, as the validation's
        ``_elb_read`` does, and asks nothing again; ``say``, ``sleep``: its line and its wait, None:
        ``time.sleep`` as it is at each wait). ``checks``: the requests the validation's checks send
        (``rollway.validation.check_requests``), which rules ahead of the pin are judged by; none:
        the weighted rule's requests are (``find_pin``)."""
        def read() -> tuple[_Resolved, list[dict[str, Any]]]:
            r = self._lookups()
            pages = self._client.get_paginator("describe_rules").paginate(ListenerArn=r.listener_arn)
            return r, [rule for page in pages for rule in page["Rules"]]

        # Said by the call throttled: the load balancer, listener and target groups are looked up
        # first, and a throttled DescribeLoadBalancers was said "DescribeRules was throttled".
        r, rules = asked_while_throttled(read, lambda err: getattr(err, "operation_name", None) or "DescribeRules",
                                         say=say, sleep=sleep)
        return find_pin(rules, header=header, weighted_arn=r.rule_arn, canary_arn=r.canary_arn,
                        canary_group=self._targets.canary_target_group, checks=checks)

    def _split_stickiness(self, rule: dict[str, Any]) -> dict[str, Any]:
        """The stickiness of a split in which both versions serve, remembered across rollouts.

        A shift to 0 % turns stickiness off, so the rule alone would forget the operator's
        setting after the first rollout. A split that has it tags the rule with it (before
        the ModifyRule: a forward shift is not in a hurry, a rollback is and writes no tag),
        and a split starting from one version with stickiness off puts the tagged one back.
        Stickiness off at a split is the operator's choice: the tag goes, so it stays off.
        DescribeTags is only made when stickiness is off, to keep the calls per shift low.
        """
        arn, sticky = rule["RuleArn"], _stickiness(rule)
        if sticky["Enabled"]:
            tag = {"Key": _STICKINESS_TAG, "Value": str(sticky["DurationSeconds"])}
            self._client.add_tags(ResourceArns=[arn], Tags=[tag])
            return sticky
        tags = self._client.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
        seconds = next((t["Value"] for t in tags if t["Key"] == _STICKINESS_TAG), None)
        if seconds is None:
            return sticky
        if sum(1 for weight in _forward_weights(rule).values() if weight) > 1:
            self._client.remove_tags(ResourceArns=[arn], TagKeys=[_STICKINESS_TAG])
            return sticky
        if not seconds.isdigit():
            raise AdapterError(f"rule {arn} has tag {_STICKINESS_TAG}={seconds!r}, not a number of seconds")
        return {"Enabled": True, "DurationSeconds": int(seconds)}

    # --- lookups -------------------------------------------------------------------------

    def _lookups(self) -> _Resolved:
        self.resolve()
        assert self._resolved is not None
        return self._resolved

    def _rule(self, r: _Resolved) -> dict[str, Any]:
        """The rule as DescribeRules gives it now.

        Raises:
            TargetNotFound: the rule looked up is gone (``_rule_gone``).
        """
        try:
            return self._described(r)
        except _Gone as gone:
            raise self._rule_gone(r) from gone.__cause__

    def _described(self, r: _Resolved) -> dict[str, Any]:
        """``_rule``, its absence raised as _Gone, for a rollback's move to look the rule up again."""
        try:
            return self._call("describe_rules", "listener rule", r.rule_arn, RuleArns=[r.rule_arn])["Rules"][0]
        except TargetNotFound as err:
            if getattr(err.__cause__, "response", {}).get("Error", {}).get("Code") != "RuleNotFound":
                raise
            raise _Gone(r) from err

    def _found_again(self, gone: _Gone) -> _Resolved:
        """The rule on the path forwarding to the groups, looked up again on the listener as ``resolve``
        looks it up (``_rule_on_path``), and kept for the reads and writes that follow (the read-back's
        among them). None found: the rule is said gone (``_rule_gone``), as before the look.

        Raises:
            TargetNotFound: no rule on the path forwards to the groups now, or the one found does
                not forward to both (``_not_the_rollouts``).
        """
        r = gone.looked_up
        deleted = _deleted_since(self._lookups_made)  # said of where the rule came from, before the look below
        found = self._found_on_path(gone)
        # Looked up by this run now, whatever the rule gone was: a failure over it says so.
        self._lookups_made.resolved, self._lookups_made.from_record = found, False
        if self._move is not None:
            self._move.moving_over(f"the move to stable went over rule {found.rule_arn}, found again on "
                                   f"{self._targets.rule_where}: rule {r.rule_arn} {deleted}")
        return found

    def _found_on_path(self, gone: _Gone) -> _Resolved:
        """``_found_again``'s look, reads alone, keeping nothing: the rule gone (``gone``) with the ARN
        of the one found on its path in its place.

        Raises:
            TargetNotFound: as ``_found_again``.
        """
        r = gone.looked_up
        try:
            rule = self._rule_on_path(r.listener_arn, r.stable_arn, r.canary_arn)
        except RulesOnPath as err:
            # Which of them took its place is not known: "put back a rule" would add one more, and
            # "a rule it did not find" was untrue of several.
            raise TargetNotFound("listener rule", r.rule_arn, f"it {_deleted_since(self._lookups_made)}, and {err}") \
                from err
        except AdapterError as err:
            raise self._rule_gone(r) from err
        except ClientError as err:
            if error_code(err) not in _NOT_FOUND:
                raise  # a throttle: the move is sent again, and looks again
            raise self._rule_gone(r) from err
        # Found by path and host alone: another host's or another service's rule left on the path
        # would be written over, and the users of the rule gone said moved to stable.
        refusal = _not_the_rollouts(rule, r, self._targets, f"rule {r.rule_arn} {_deleted_since(self._lookups_made)}, "
                                    "and the rule looked up again")
        if refusal is not None:
            raise refusal from gone.__cause__
        return replace(r, rule_arn=rule["RuleArn"])

    def _rule_gone(self, r: _Resolved) -> TargetNotFound:
        """The rule looked up is gone (deleted by hand, or replaced by a stack update since), found
        so by DescribeRules or by ModifyRule alike: said as such, with where the path's requests go
        now and what to put back, since a rollback finds no rule to move them with until there is
        one again."""
        t, where = self._targets, self._targets.rule_where
        return TargetNotFound("listener rule", r.rule_arn, (
            f"it {_deleted_since(self._lookups_made)}, so the "
            f"requests on {where} of listener {r.listener_arn} now go by the listener's other rules or its default "
            f"action, whatever weights rollway set, and rollway writes none over a rule it did not find. To move "
            f"users back to stable, put back a rule on {where} forwarding to {t.stable_target_group} and "
            f"{t.canary_target_group}, then roll the rollout back"))

    def _call(self, operation: str, kind: str, name: str, **arguments: Any) -> dict[str, Any]:
        """A read-only call whose not-found error becomes TargetNotFound naming ``name``."""
        try:
            return getattr(self._client, operation)(**arguments)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in _NOT_FOUND:
                raise TargetNotFound(kind, name, code) from err
            raise

    def _load_balancer_arn(self, name: str) -> str:
        found = self._call("describe_load_balancers", "load balancer", name, Names=[name])
        return found["LoadBalancers"][0]["LoadBalancerArn"]

    def _listener_arn(self, lb_arn: str) -> str:
        port = self._targets.listener_port
        for page in self._client.get_paginator("describe_listeners").paginate(LoadBalancerArn=lb_arn):
            for listener in page["Listeners"]:
                if listener["Port"] == port:
                    return listener["ListenerArn"]
        raise TargetNotFound("listener", f"{self._targets.load_balancer}:{port}")

    def _target_group(self, ref: str) -> TargetGroup:
        if ref.startswith("arn:"):
            found = self._call("describe_target_groups", "target group", ref, TargetGroupArns=[ref])
        else:
            found = self._call("describe_target_groups", "target group", ref, Names=[ref])
        group = found["TargetGroups"][0]
        # A group whose checks are off (only a Lambda target's may be) marks its targets healthy unchecked.
        checked = group.get("HealthCheckEnabled", True)
        return TargetGroup(arn=group["TargetGroupArn"],
                           interval_seconds=group.get("HealthCheckIntervalSeconds") if checked else None,
                           timeout_seconds=group.get("HealthCheckTimeoutSeconds") if checked else None)

    def _rule_on_path(self, listener_arn: str, stable_arn: str, canary_arn: str) -> dict[str, Any]:
        """The listener's (non-default) rule on ``targets.rule_path`` that forwards to our groups,
        as DescribeRules gives it.

        The path chooses the rule, not its weights: before the first rollout the rule forwards
        to the stable group alone, and a rule on another path (an admin page) may forward to
        both; shifting that one would judge the canary on the wrong traffic. No rule, or more
        than one, on the path is refused naming the rules found, not guessed at.
        """
        ours = {stable_arn, canary_arn}
        path, host = self._targets.rule_path, self._targets.rule_host
        found = [
            rule
            for page in self._client.get_paginator("describe_rules").paginate(ListenerArn=listener_arn)
            for rule in page["Rules"]
            if not rule.get("IsDefault") and ours & set(_forward_weights(rule))
            # The validation's header rule (``rollway.pinning``) forwards to the canary group on
            # the same path: it is never the rule a rollout shifts.
            and not is_pin_rule(rule, canary_arn)
        ]
        # Host headers match without regard to case on a load balancer, and so do they here.
        on_path = [rule for rule in found if path in _paths(rule) and (
            host is None or host.casefold() in {h.casefold() for h in _values(rule, "host-header")})]
        if len(on_path) > 1:
            # A listener that routes by host on one path, with no rule_host given: the rule that
            # names the canary group is the one rollway shifted before (a rollback mid-rollout
            # must find it); the other hosts' rules forward to the stable group alone.
            naming_canary = [rule for rule in on_path if canary_arn in _forward_weights(rule)]
            if len(naming_canary) == 1:
                on_path = naming_canary
        if len(on_path) == 1:
            # One that also forwards to a third group is taken: a rollback moves users to stable
            # over it (``dropping_others``); a rollout's reads and shifts refuse it.
            return on_path[0]
        groups = f"{self._targets.stable_target_group} and/or {self._targets.canary_target_group}"
        where = self._targets.rule_where
        if on_path:
            raise RulesOnPath(
                f"{len(on_path)} rules on {where} of listener {listener_arn} forward to {groups}, and rollway "
                f"shifts one: name its host (rule_host) or give it a path of its own: {_listed(on_path)}"
            )
        elsewhere = f"rules forwarding to them: {_listed(found)}" if found else "no rule forwards to them"
        detail = f"on listener {listener_arn}; {elsewhere}"
        raise TargetNotFound("listener rule", f"on {where} forwarding to {groups}", detail)


def _stable_alone(rule: dict[str, Any], r: _Resolved) -> bool:
    """``rule`` forwards to the stable group and to no other (a weight of 0 to the canary is another),
    with a weight above 0: at 0 it sends stable nothing, and is written over as a rule forwarding with
    weight 0 to both groups is."""
    return forwards_alone(rule, r.stable_arn)


def _recorded(r: _Resolved) -> ShiftedRule:
    """The rule ``r`` names and its two groups, as the ledger records them (``shifted_rule``)."""
    return ShiftedRule(rule_arn=r.rule_arn, stable_arn=r.stable_arn, canary_arn=r.canary_arn)


def _deleted_since(lookups: _Lookups) -> str:
    """That a rollback's rule was found gone, with where it came from (the rollout's record, or this
    run's lookup): the one wording of it, for its refusal (``_rule_gone``), the refusal of another
    rule found on its path, and a move over the rule found again in its place."""
    since = "since the rollout recorded it" if lookups.from_record else "since this run looked it up"
    return f"was deleted {since} (by hand, or replaced by a stack update)"


def _not_the_rollouts(rule: dict[str, Any], r: _Resolved, targets: Targets, why: str, *,
                      put_back: bool = True) -> TargetNotFound | None:
    """Why a rollback's move writes no weights over ``rule``, found on the path by a lookup ``why``
    says (a rule the run or the rollout had was deleted, or the rollout recorded none), or None when it
    forwards to both the stable and the canary group, as the rule a stack update puts in the place of
    the rollout's does. Found by path and host alone, a rule that does not is another host's or another
    service's: the move would write over it (dropping the other service's group), and say the users of
    the rollout's rule moved to stable. ``put_back``: the advice is to put back a rule (the rollout's is
    gone), else to name its host (the rollout's may be there, and the lookup found another first)."""
    forwarded = _forward_weights(rule)
    if {r.stable_arn, r.canary_arn} <= set(forwarded):
        return None
    total = sum(forwarded.values())
    to = ", ".join(f"{arn} (weight {weight} of {total})" for arn, weight in forwarded.items()) or "no target group"
    where, stable, canary = targets.rule_where, targets.stable_target_group, targets.canary_target_group
    fix = (f"put back a rule on {where} forwarding to {stable} and {canary} (name its host in rule_host if the "
           f"listener routes by host)" if put_back else
           f"name the host of the rollout's rule in rule_host if the listener routes by host (or put back a rule on "
           f"{where} forwarding to {stable} and {canary}, if it was deleted)")
    return TargetNotFound("listener rule", f"on {where} forwarding to {stable} and {canary}", (
        f"{why} on {where} of listener {r.listener_arn} is {_listed([rule])}, which forwards to {to}, not to both "
        f"{stable} and {canary}: it is not the rollout's rule (another host's or another service's, say), and rollway "
        f"writes no weights over it. To move users back to stable, {fix}, then roll the rollout back; or, by hand, "
        f"give the rollout's own rule weight 100 to {stable} and 0 to {canary} ({_BY_HAND})"))


def _other_groups_recorded(recorded: ShiftedRule, r: _Resolved, targets: Targets) -> TargetNotFound:
    """The refusal of a rollback's move over the rule ``recorded`` names, whose groups are not the ones
    the targets name now (``r``'s): the move writes the targets' groups, which would drop the rule's
    own and send its users to a group it may not forward to."""
    stable, canary = targets.stable_target_group, targets.canary_target_group
    return TargetNotFound("listener rule", f"on {targets.rule_where} forwarding to {stable} and {canary}", (
        f"the rollout recorded rule {recorded.rule_arn} forwarding to target groups {recorded.stable_arn} (stable) "
        f"and {recorded.canary_arn} (canary), and the targets name {stable} ({r.stable_arn}) and {canary} "
        f"({r.canary_arn}) now (the targets were changed, or a stack update replaced the groups), and rollway writes "
        f"no weights over that rule: the move would put the targets' groups in place of its own. To move users back "
        f"to stable, roll the rollout back with the targets it ran with; or, by hand, give rule {recorded.rule_arn} "
        f"weight 100 to its stable group and 0 to its canary group (the recorded ones, or the groups that replaced "
        f"them; {_BY_HAND})"))


def _forward_weights(rule: dict[str, Any]) -> dict[str, int]:
    """Target group ARN -> weight of a rule's forward action (empty if it does not forward).

    A forward action naming a single group without a ForwardConfig sends it everything.
    """
    for action in rule.get("Actions", []):
        if action.get("Type") != "forward":
            continue
        groups = action.get("ForwardConfig", {}).get("TargetGroups")
        if groups:
            # AWS treats an omitted weight in a ForwardConfig as 1.
            return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
        if action.get("TargetGroupArn"):
            return {action["TargetGroupArn"]: 100}
    return {}


@dataclass(frozen=True)
class _Judged:
    """A rule (as DescribeRules gives it) judged once, for ``get_weights`` and ``set_weights`` alike.

    Attributes:
        weights: what it holds between the stable and canary groups; None when it holds no split of
            the two alone.
        refusal: why a rollout neither reads it nor writes over it (None: it does not): it also
            forwards to another group (OtherGroupsForwarded), or with weight 0 to both.
        dropped: the other groups a write over it drops, with their weights (``_other_groups``).
    """

    weights: Weights | None
    refusal: AdapterError | None = None
    dropped: str | None = None


def _judged(rule: dict[str, Any], r: _Resolved) -> _Judged:
    """What ``rule`` holds between the stable and canary groups, or why a rollout refuses it."""
    others = _other_groups(rule, r)
    if others is not None:
        return _Judged(None, _refuse_other_groups(rule, r, others), others[0])
    forwarded = _forward_weights(rule)
    if not forwarded:
        # A maintenance page or a redirect put on the rule by hand: "weight 0 to both" sent a
        # person to the console for weights the rule does not have. Said in words as true of a
        # rollout's read as of a rollback's move (``_moved_over``), which refuse it alike.
        kinds = ", ".join(a.get("Type", "?") for a in rule.get("Actions", [])) or "none"
        does, last = _answering(rule)
        return _Judged(None, RuleForwardsNowhere(
            f"rule {r.rule_arn} forwards to no target group (its actions: {kinds}): {does}, so none of them reaches "
            f"either version, and it holds no weights to read or to set: give it back a forward to {r.stable.name} "
            f"and {r.canary.name} in place of its {last} action first"))
    stable, canary = forwarded.get(r.stable_arn, 0), forwarded.get(r.canary_arn, 0)
    if stable + canary == 0:
        # Whoever set it stopped the requests the rule matches: a shift would start them again
        # unasked (and to the canary), and the stage's records would say it moved them from a split.
        return _Judged(None, AdapterError(
            f"rule {r.rule_arn} forwards with weight 0 to both target groups, so no request it matches reaches "
            "either version, and a shift would start sending them requests again: give the rule the weights it "
            "should have first"))
    return _Judged(_as_percent(stable, canary))


def _answering(rule: dict[str, Any]) -> tuple[str, str]:
    """What a rule forwarding to no target group does with the requests it matches, said by its last
    action (a maintenance page's fixed response, a redirect), and that action's type."""
    actions = sorted(rule.get("Actions", []), key=lambda action: action.get("Order", 0))
    last = actions[-1] if actions else {}
    kind = last.get("Type", "none")
    if kind == "fixed-response":
        status = last.get("FixedResponseConfig", {}).get("StatusCode", "?")
        return f"it answers the requests it matches itself, with HTTP {status} (fixed-response)", kind
    if kind == "redirect":
        # The fields AWS leaves as they came are said as AWS writes them ("#{host}").
        config = last.get("RedirectConfig", {})
        to = (f"{config.get('Protocol', '#{protocol}')}://{config.get('Host', '#{host}')}:"
              f"{config.get('Port', '#{port}')}{config.get('Path', '/#{path}')}")
        query = config.get("Query")
        return (f"it redirects the requests it matches (redirect: {config.get('StatusCode', '?')} to "
                f"{to}{f'?{query}' if query else ''})"), kind
    return f"its {kind} action takes the requests it matches", kind


def _moved_over(held: _Judged) -> None:
    """Refuse the rule judged ``held`` as a rollback's move to stable refuses it, before its write; it
    goes over any other, whatever a rollout's refusal of it (a third group is dropped, weight 0 to both
    written over; a rule forwarding to the stable group alone is left as it is, all on stable already).

    Raises:
        RuleForwardsNowhere: the rule forwards to no target group (a maintenance page, a redirect):
            the move's forward has no action to go in, and its write would leave the rule as it is.
    """
    if isinstance(held.refusal, RuleForwardsNowhere):
        raise held.refusal


def _stickiness(rule: dict[str, Any]) -> dict[str, Any]:
    """The forward action's target-group stickiness as the rule has it (off when absent)."""
    for action in rule.get("Actions", []):
        if action.get("Type") == "forward":
            config = action.get("ForwardConfig", {}).get("TargetGroupStickinessConfig")
            if config and config.get("Enabled"):
                return dict(config)
    return {"Enabled": False}


def _with_forward(rule: dict[str, Any], forward: dict[str, Any]) -> list[dict[str, Any]]:
    """The rule's actions with its forward action replaced by ``forward`` (same Order).

    DescribeRules never returns an OIDC client secret, so an OIDC step is written back with
    ``UseExistingClientSecret`` (ModifyRule would otherwise demand the secret).
    """
    actions = []
    for action in rule.get("Actions", []):
        if action.get("Type") == "forward":
            actions.append({**forward, **({"Order": action["Order"]} if "Order" in action else {})})
            continue
        action = dict(action)
        if action.get("Type") == "authenticate-oidc":
            config = {k: v for k, v in action.get("AuthenticateOidcConfig", {}).items() if k != "ClientSecret"}
            action["AuthenticateOidcConfig"] = {**config, "UseExistingClientSecret": True}
        actions.append(action)
    return actions


def _paths(rule: dict[str, Any]) -> list[str]:
    """The path patterns of a rule's conditions."""
    return _values(rule, "path-pattern")


def _values(rule: dict[str, Any], field: str) -> list[str]:
    """The values of a rule's ``field`` conditions (in either form DescribeRules gives them)."""
    config = {"path-pattern": "PathPatternConfig", "host-header": "HostHeaderConfig"}[field]
    return [
        value
        for condition in rule.get("Conditions", [])
        if condition.get("Field") == field
        for value in condition.get(config, {}).get("Values") or condition.get("Values", [])
    ]


def _listed(rules: list[dict[str, Any]]) -> str:
    """Rules as "[host ]path (ARN)", for an error message to name them."""
    return "; ".join(
        f"{' '.join(_values(rule, 'host-header') + [''])}{', '.join(_paths(rule)) or 'no path'} ({rule['RuleArn']})"
        for rule in rules
    )


def _other_groups(rule: dict[str, Any], r: _Resolved) -> tuple[str, int] | None:
    """The target groups ``rule`` (as DescribeRules gives it) also forwards to that are neither
    stable nor canary (a shadow or mirror group, added in the console or by another tool), named
    each with its weight (ALB weights are relative: out of the rule's total), and how many there
    are. None: it forwards to the two alone.
    """
    forwarded = _forward_weights(rule)
    others = sorted(set(forwarded) - {r.stable_arn, r.canary_arn})
    if not others:
        return None
    total = sum(forwarded.values())
    named = ", ".join(f"{arn} (weight {forwarded[arn]} of {total})" for arn in others)
    return f"target group{'s' if len(others) > 1 else ''} {named}", len(others)


def _refuse_other_groups(rule: dict[str, Any], r: _Resolved, others: tuple[str, int]) -> OtherGroupsForwarded:
    """The refusal of ``rule``, which also forwards to ``others`` (``_other_groups``): a shift writes
    the two groups alone, so it would silently take their traffic away from them, and the weights
    read back would leave their share out. It names which of stable and canary the rule forwards to
    besides, by name: "as well as to stable and canary" was said of a rule forwarding to stable and a
    shadow group alone."""
    forwarded = _forward_weights(rule)
    ours = [f"{version} ({group.name})" for version, group in (("stable", r.stable), ("canary", r.canary))
            if group.arn in forwarded]
    missing = [version for version, group in (("stable", r.stable), ("canary", r.canary)) if group.arn not in forwarded]
    besides = (f"as well as to {' and '.join(ours)}" + (f", and not to {missing[0]}" if missing else "") if ours
               else "and to neither stable nor canary")
    named, count = others
    return OtherGroupsForwarded(r.rule_arn, named, count, besides)


def _as_percent(stable: int, canary: int) -> Weights:
    """Weights in percent, of a total above 0; ALB weights are relative (0..999), so 1/1 is 50/50."""
    total = stable + canary
    if total == 100:
        return Weights(stable=stable, canary=canary)
    share = round(100 * canary / total)
    if stable and canary:
        # A group with any weight still gets requests: 1/999 must not read as 0/100, or the
        # monitor would scale down a service the load balancer still sends traffic to, and a
        # rollback would verify 100/0 while the canary still serves.
        share = min(max(share, 1), 99)
    return Weights.canary_at(share)
