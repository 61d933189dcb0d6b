"""Pinning the validation's HTTP checks to the canary target group, judged from the listener's rules. Pure.

Through the weighted rule, at 95/5 the health, session and message requests may all reach the old
version and pass for the new one. Sent with a header (``ValidationSpec.canary_header``), they are
pinned to the canary group by a listener rule that matches that header, is evaluated before the
weighted rule and forwards to the canary group alone, as header routes do in Argo Rollouts and
Flagger. ``find_pin`` says whether the listener has such a rule, from DescribeRules' answer.

The rule is the infrastructure's, not made by rollway around the checks. A rule rollway created
and deleted around each run would outlive a run killed in between (a crash, a lost worker, a
deadline), pinned to whatever the canary group held next, and with nothing left to remove it but
a later run that might never come; its worker would also need CreateRule and DeleteRule on the
listener, rights to route any of its traffic anywhere. Kept in the stack beside the weighted rule,
it is reviewed, never left half-made by a crash, and the validation only reads it (DescribeRules,
which the rollout already may).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence
from urllib.parse import unquote, unquote_plus

from rollway.one_line import on_one_line

HEADER_NAME_MAX = 40
HEADER_VALUE_MAX = 128
"""The longest header name and value an ALB http-header condition matches (AWS's limits)."""

CHECK_HEADERS = frozenset({"accept", "accept-encoding", "authorization", "connection", "content-length",
                           "content-type", "user-agent"})
"""The headers the validation's checks may carry besides the pin header and Host (``http_checks.client``'s
and httpx's own). A rule with an http-header condition on any other meets none of them: read as one
they "may carry or not", a rule on X-Debug ahead of the pin made their pinning "not known", and
they were not sent. A proxy between them and the load balancer may add one all the same: a pin
behind such a rule says so (``Pin.unsent``), where the checks' results are read."""

CHECK_METHODS = frozenset({"GET", "POST"})
"""The methods the validation's checks send (health: GET; session and message: POST). A rule ahead
of the pin whose http-request-method condition names neither meets none of them: read as on some
of the weighted rule's requests, a rule on PUT was said to keep the pin from holding every check."""

CHECK_USER_AGENT = "rollway-validate"
"""The User-Agent every check sends (``http_checks.client``). A rule ahead of the pin whose
User-Agent condition, given as patterns (``Values``), this does not match meets none of them; one
it matches meets them all, as far as that condition goes. Read as a header whose value on them is
not compared, a rule on ``*bot*`` made their pinning "not known", and they were not sent."""

SESSION_ID = "…"
"""Where a ``CheckRequest``'s path or query holds the message check's session id, any text (``_sent``): no
path or query as sent holds it (it is not ASCII, and would be percent-encoded). Read as ``*``, a real ``*``
in a check's URL (/he*lth) was taken for a session id: a rule on /health was said perhaps to meet it."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True)
class CheckRequest:
    """One of the validation's HTTP checks' requests as a listener rule's conditions see it
    (``rollway.validation.check_requests``): a rule ahead of the pin whose path, host, method or
    query string none of them meets takes none of them. Judged against the weighted rule's requests
    instead, a rule on /edit/admin/* kept checks on /health and /sessions from being sent."""

    method: str
    host: str
    """As the Host header carries it, lower case (``host:port`` when the URL names a port)."""
    path: str
    """As sent, percent-encoded, ``SESSION_ID`` where it holds what is not known before the check
    (the message check's session id); any ``*`` or ``?`` in it is that character, as sent."""
    query: str = field(default="", repr=False)
    """As sent, without its ``?``, ``SESSION_ID`` where it holds the session id, as ``path``; never
    shown (it may carry a token)."""


def header_parts(text: str) -> tuple[str, str]:
    """``"X-Rollway-Target: canary"`` as (name, value), each without the spaces around it.

    Raises:
        ValueError: not ``Name: value``, a name that is no HTTP header name (or ``Host``, which a
            listener rule matches with host-header, not http-header) or longer than an ALB rule
            matches, or a value blank, longer than that, with a wildcard (``*``, ``?``: a rule's
            are patterns, a request's are not) or a character a header line cannot carry.
    """
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name or not value:
        raise ValueError(f"canary_header {text!r} must be 'Name: value', e.g. 'X-Rollway-Target: canary'")
    if not _TOKEN.fullmatch(name) or len(name) > HEADER_NAME_MAX or name.lower() == "host":
        raise ValueError(f"canary_header's name {name!r} must be an HTTP header name other than Host, of at most "
                         f"{HEADER_NAME_MAX} letters, digits or -_.!#$%&'*+^`|~, as a listener rule's http-header "
                         "condition matches")
    if len(value) > HEADER_VALUE_MAX or any(not c.isascii() or not c.isprintable() or c in "*?" for c in value):
        raise ValueError(f"canary_header's value {value!r} must be at most {HEADER_VALUE_MAX} printable ASCII "
                         "characters without * or ? (a listener rule reads those as wildcards)")
    return name, value


def header_line(text: str) -> str:
    """``text`` as the validation sends it, ``Name: value`` (``header_parts``), for those that take
    the header whole: the infrastructure's checklist, its flows.

    Raises:
        ValueError: as ``header_parts``.
    """
    return "%s: %s" % header_parts(text)


@dataclass(frozen=True)
class Pin:
    """The rule that forwards requests carrying ``header`` to the canary target group alone (or the
    rules, each on part of the weighted rule's requests or of the checks', that together do:
    ``together``)."""

    header: str
    """As sent: ``X-Rollway-Target: canary``."""
    rule_arn: str
    priority: str
    weighted_priority: str
    target_group: str
    """The canary target group, as the targets block names it."""
    together: tuple[tuple[str, str], ...] = ()
    """The other pin rules (ARN, priority), behind ``rule_arn``, when no one rule meets every
    request of the weighted rule's (of the checks', ``by_checks``) and these together do
    (``_pinned_together``)."""
    by_checks: bool = False
    """Whether ``together`` are on parts of the checks' requests (``find_pin``'s ``checks``), not of
    the weighted rule's: said on part of the weighted rule's, a pin on /health was, beside a
    weighted rule on /edit/*."""
    unheaded: tuple[tuple[str, str], ...] = ()
    """The rules (ARN, priority) ahead of a pin rule that the header alone does not meet
    (``_unheaded_ahead``'s: with no condition on it, or one on another header beside it), forwarding
    to the canary group alone, that the checks they meet reach it through, not through the pin."""
    headed: tuple[tuple[str, str], ...] = ()
    """The other pin rules (ARN, priority) on the header ahead of a pin rule, each on part of the
    weighted rule's requests or matching the header by a regular expression, that the checks they
    meet reach the canary group through, not through the pin."""
    unsent: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    """The rules (ARN, priority, the headers) ahead of a pin rule, forwarding elsewhere, that the
    checks would meet but for a header condition on one they do not send (``_unsent_ahead``): taken
    to meet none of them, which holds unless a proxy on their way adds it, as ``said`` tells."""
    sourced: tuple[tuple[str, str, str], ...] = ()
    """The pin rules (ARN, priority, its addresses said) with a source-ip condition, each matching
    every address the weighted rule's does (``_sources_cover``): a check sent from elsewhere meets
    neither that rule nor the weighted rule, as ``said`` tells, and no more: "not pinned" would be
    untrue of one another pin rule behind them meets. Only judged by the weighted rule's requests
    (the checklist given the header alone): judged by the checks', sent from an address not known,
    such a rule is not known to meet them (``_sourced_only``)."""

    def said(self) -> str:
        """ "pinned to target group <tg> by header `...` (rule <arn>, priority 5, ahead of the weighted rule's 10)";
        rules pinning ``together`` each named, "each on part of the weighted rule's (``by_checks``: the checks')
        requests and together on every one"; the ``headed`` and ``unheaded`` ones after, as sending those they meet
        there themselves; the ``unsent`` last, as taken to meet none of them."""
        if not self.together:
            by = f"rule {self.rule_arn}, priority {self.priority}"
        else:
            named = [f"{arn} (priority {priority})"
                     for arn, priority in ((self.rule_arn, self.priority), *self.together)]
            whose = "the checks'" if self.by_checks else "the weighted rule's"
            by = f"rules {', '.join(named[:-1])} and {named[-1]}, each on part of {whose} requests and together on " \
                 "every one"
        where = "one of them" if self.together else "it"
        ahead = (_sourced_said(self.sourced, alone=not self.together)
                 + _sending_there(self.headed, f"ahead of {where} on the header")
                 + _sending_there(self.unheaded, f"ahead of {where} and not met by the header alone")
                 + _unsent_said(self.unsent, where))
        return (f"pinned to target group {self.target_group} by header `{self.header}` ({by}, ahead of the weighted "
                f"rule's {self.weighted_priority}{ahead})")


def _unsent_said(rules: Sequence[tuple[str, str, tuple[str, ...]]], where: str) -> str:
    """``Pin.said``'s "; rule <arn> (priority 3), ahead of ``where`` on X-Debug, a header the checks
    do not send, is taken to meet none of them ..." of ``Pin.unsent``, all named at once; empty for none."""
    if not rules:
        return ""
    one = len(rules) == 1
    named = " and ".join(f"{arn} (priority {priority})" for arn, priority, _ in rules)
    # Each header once, as the first rule naming it spells it (names match without regard to case).
    spelt: dict[str, str] = {}
    for _, _, names in rules:
        for header in names:
            spelt.setdefault(header.lower(), header)
    headers = list(spelt.values())
    single = len(headers) == 1
    on = headers[0] if single else f"{', '.join(headers[:-1])} and {headers[-1]}"
    return (f"; rule{'' if one else 's'} {named}, ahead of {where} on {on}, {'a header' if single else 'headers'} "
            f"the checks do not send, {'is' if one else 'are'} taken to meet none of them, as "
            f"{'it does' if one else 'they do'} unless a proxy between them and the load balancer adds "
            f"{'it' if single else 'those'}")


def _sourced_said(rules: Sequence[tuple[str, str, str]], *, alone: bool) -> str:
    """``Pin.said``'s "; it meets only requests sent from 10.0.0.0/8, among which are all the weighted
    rule takes: ..." of ``Pin.sourced``, each pin rule named unless it is the one (``alone``); empty for none."""
    return "".join(f"; {'it' if alone else f'rule {arn} (priority {priority})'} meets only requests sent from "
                   f"{sources}, among which are all the weighted rule takes: a check sent from elsewhere meets neither"
                   for arn, priority, sources in rules)


def _sending_there(rules: Sequence[tuple[str, str]], how: str) -> str:
    """``Pin.said``'s "; rule <arn> (priority 3), ``how``, sends those it meets there itself" of
    ``rules`` (ARN, priority), all named at once; empty for none."""
    if not rules:
        return ""
    one = len(rules) == 1
    named = " and ".join(f"{arn} (priority {priority})" for arn, priority in rules)
    return (f"; rule{'' if one else 's'} {named}, {how}, send{'s' if one else ''} those "
            f"{'it meets' if one else 'they meet'} there {'itself' if one else 'themselves'}")


class Unpinned(str):
    """Why ``find_pin`` found no rule pinning the checks' requests, with the rule to create; and
    ``unknown``: when whether they are all pinned turns on regular expressions, which are not
    compared, or on headers other than the pin's the checks' requests may carry, the rules it turns
    on (``_turns_on``, ``_unsure_said``); None when they are known not all to be."""

    unknown: str | None

    def __new__(cls, why: str, unknown: str | None = None) -> Unpinned:
        said = super().__new__(cls, why)
        said.unknown = unknown
        return said


def unpinned_said(why: str, *, not_pinned: str, whether: str) -> str:
    """``why`` (``find_pin``'s refusal, or another reason there is no pin) after ``not_pinned``
    ("listener X does not pin all ..."); or, when whether the requests are all pinned turns on
    regular expressions (``Unpinned.unknown``), after "whether ``whether`` is not known" and the
    rules it turns on: said not to pin them, a pin by ``^canary$`` was denied, which may pin every one."""
    unknown = why.unknown if isinstance(why, Unpinned) else None
    if unknown is None:
        return f"{not_pinned}: {why}"
    return f"whether {whether} is not known: it turns on {unknown}; {why}"


def find_pin(rules: Sequence[Mapping[str, Any]], *, header: str, weighted_arn: str, canary_arn: str,
             canary_group: str, checks: Sequence[CheckRequest] = ()) -> Pin | Unpinned:
    """The rule of ``rules`` (a listener's, as DescribeRules gives them) that a request matching
    the weighted rule ``weighted_arn`` and carrying ``header`` meets first, when it forwards to
    ``canary_arn`` alone; otherwise why the requests would not be pinned, with the rule to create.

    A rule meets such a request when its http-header conditions match ``header`` (name and value
    without regard to case, ``*`` and ``?`` as wildcards, as a load balancer matches them) and each
    of its other conditions is one of the weighted rule's or wider (``_beyond``: so every request
    that rule matches, with the header, matches it too), and its priority number is below the
    weighted rule's.

    A rule ahead of the pin with no http-header condition the header meets (``_unheaded_ahead``: a
    path of its own, a source address, a query string, another header) meets those of the weighted
    rule's requests it matches, carrying the header or not, first: one sending them anywhere but to
    the canary group alone keeps the pin from holding every check, and is named with its share of
    them and where it sends them. A rollout's lookup refuses (``RulesOnPath``) only more than one
    rule on the weighted rule's own path (and host) forwarding to its groups, unless one alone of
    them names the canary group; any other such rule reaches this.

    ``checks``: the checks' own requests, when known (the validation's): a rule ahead of the pin is
    then judged by what they send (``_reach``), one none of them meets left out, one with a
    source-ip condition or that only some may meet (a session id in a path) "may meet" them; so
    are the rules on the header, pin rules or not (``_misses``), whatever addresses a source-ip
    condition matches: a check sent from outside those of a pin rule covering the weighted rule's
    meets neither rule, and is answered by whatever the listener does next (``_answered_by``);
    a rule ahead on
    none of the weighted rule's requests but some of theirs is named (``_meets_some``): a check the
    weighted rule does not match (/health beside /edit/*) is still sent, and met first by whichever
    rule ahead it meets; one whose checks all meet a pin rule ahead of it first is left out
    (``_shielded_by_pins``).
    Without them (the infrastructure's checklist, which knows the header alone), by the weighted
    rule's requests: a source-ip condition matching every address the weighted rule's does
    (``_sources_cover``) meets every one, any other "may meet" them: where they are sent from is not known.
    """
    name, value = header_parts(header)
    weighted = next((rule for rule in rules if rule.get("RuleArn") == weighted_arn), None)
    if weighted is None:
        return Unpinned(f"the weighted rule {weighted_arn} is not among the listener's rules")
    # Read once, in priority order: the pin, each refusal and whether it turns on regular expressions
    # are all judged from these rules.
    # A rule every check it may meet reaches a pin rule ahead of it first takes none of them (``_shielded_by_pins``).
    header_rules = [r for r in _header_rules_ahead(rules, weighted, name, value, canary_arn, checks)
                    if is_pin_rule(r, canary_arn) or not _shielded_by_pins(r, rules, name, value, canary_arn, checks)]
    every_unheaded = [r for r in _unheaded_ahead(rules, weighted, name, value, checks)
                      if not _shielded_by_pins(r, rules, name, value, canary_arn, checks)]
    # Those forwarding to the canary group alone send the checks they meet where the pin would.
    unheaded = [rule for rule in every_unheaded if not forwards_alone(rule, canary_arn)]
    found = _found(rules, header_rules, unheaded, weighted, header, name, value, canary_arn, canary_group, checks)
    # Whether they are all pinned turns on these rules, read in order: a pin by a regular expression
    # ahead of a rule taking some of them may meet every one first.
    turns_on = _turns_on(sorted([*header_rules, *unheaded], key=_priority), weighted, name, value, canary_arn,
                         checks)
    if isinstance(found, Pin):
        # Each pin rule behind a rule with no condition on the header is passed over by those that
        # rule meets: judged by header rules alone, the pin was said to hold every check.
        pins = [(found.rule_arn, found.priority), *found.together]
        last = max(float(priority) for _, priority in pins)
        taking = [r for r in unheaded if _priority(r) < last]
        if not taking:
            # Named beside the pin: said pinned by it alone, those checks were never its. Those on the
            # header ahead of it are all pin rules (one that is not was ``_found``'s refusal), named
            # but for one meeting none of the checks: the same conditions as one ahead, or methods
            # none of theirs.
            headed = [r for r in header_rules if _priority(r) < last and (r["RuleArn"], str(r["Priority"])) not in pins
                      and _twin(r, header_rules) is None and not _meets_no_check(r, name, checks)]
            # Passed over for a header the checks do not send, said so: a proxy on their way may add it.
            unsent = tuple((r["RuleArn"], str(r["Priority"]), tuple(_unsent(r, name)))
                           for r in _unsent_ahead(rules, weighted, name, value, canary_arn, checks)
                           if _priority(r) < last)
            # A pin rule on addresses of its own takes no check sent from elsewhere (``_sources_cover``):
            # said pinned without them, such a check read as pinned too.
            by_arn = {r.get("RuleArn"): r for r in rules}
            sourced = tuple((arn, priority, _said_values(c)) for arn, priority in pins
                            for c in by_arn[arn].get("Conditions", []) if c.get("Field") == "source-ip")
            return replace(found, headed=tuple((r["RuleArn"], str(r["Priority"])) for r in headed), sourced=sourced,
                           unheaded=tuple((r["RuleArn"], str(r["Priority"])) for r in every_unheaded
                                          if _priority(r) < last), unsent=unsent)
        # Asked of those taking some alone, a pin by ^canary$ ahead of them went unread, and the
        # checks were said surely not pinned. ``_turns_on`` reads no rules pinning together: there,
        # those taking some decide alone.
        return Unpinned(_unheaded_taking_said(taking, pins, weighted, header, name, canary_arn, canary_group, checks),
                        turns_on or (_unsure_said(taking, weighted, name, checks)
                                     if all(_unheaded_unsure(r, weighted, name, checks) for r in taking) else None))
    if unheaded:
        # Whatever the refusal asks changed or created, a pin behind this rule is passed over by
        # those it meets: unsaid, the rule made as told was refused again for it.
        # One that only may meet some of them (``_unheaded_unsure``) needs the pin ahead of it only if
        # it does: "must be ahead" alone read as a rule surely taking some.
        first = unheaded[0]
        need = " if it meets any of them: it" if _unheaded_unsure(first, weighted, name, checks) else ", which"
        found += (f"; whatever pins them must be ahead of rule {first['RuleArn']} (priority {first['Priority']})"
                  f"{need}, {_unheaded_meets(first, weighted, header, name, checks)}, and sends those it meets to "
                  f"{_unheaded_goes(first, weighted, canary_arn)}")
    return Unpinned(found, turns_on)


def _shielded_by_pins(rule: Mapping[str, Any], rules: Sequence[Mapping[str, Any]], name: str, value: str,
                      canary_arn: str, checks: Sequence[CheckRequest]) -> bool:
    """Whether each of the checks' requests (known: ``checks``) that may meet ``rule`` surely meets
    a pin rule ahead of it first (its header surely met, its other conditions by ``_reach``): then
    ``rule`` takes none of them, wherever it sends what it meets. Judged as taking them, a rule on
    /health behind a pin on /health and ahead of the pin on every path had the checks refused,
    though every one reached the canary group alone."""
    if not checks:
        return False
    pins = [r for r in rules if not r.get("IsDefault") and _priority(r) < _priority(rule)
            and is_pin_rule(r, canary_arn) and _header_met(r, name, value)]
    return all(any(_reach(pin, check) == _SURELY for pin in pins) for check in checks if _reach(rule, check) != _NONE)


def _found(rules: Sequence[Mapping[str, Any]], header_rules: Sequence[Mapping[str, Any]],
           unheaded: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any], header: str, name: str, value: str,
           canary_arn: str, canary_group: str, checks: Sequence[CheckRequest]) -> Pin | str:
    """``find_pin``'s answer, its refusal as a bare text, judged by header rules (``header_rules``:
    ``_header_rules_ahead``'s); ``unheaded`` (``_unheaded_ahead``'s, those forwarding to the canary
    group alone apart) only set where a rule to create
    or change must go. A pin found is ``find_pin``'s to judge against them."""
    weighted_arn = weighted["RuleArn"]
    # A rule forwarding elsewhere is kept only as ``header_rules`` keep it. One on none of the weighted
    # rule's requests (``_apart``) is another service's: named, a person was told to widen it and send
    # its requests to this canary group. One on PUT, or on a path none of the checks asks for, meets
    # none of them: named as letting some pass it by, it was to be made to forward to the canary
    # group alone. One forwarding to the canary alone is kept: its path is this pin's, most likely mistyped.
    matching = sorted((rule for rule in rules if not rule.get("IsDefault")
                       and _priority(rule) < _priority(weighted) and _header_met(rule, name, value)
                       and (is_pin_rule(rule, canary_arn) or rule in header_rules)), key=_priority)
    ahead = [rule for rule in matching if not _beyond(rule, weighted, checks)]
    # Pin rules, each on part of them, that together meet every one first: each refused for missing
    # the others' requests, the checks were refused though every one was pinned.
    together = _pinned_together(header_rules, weighted, name, value, canary_arn, checks)
    if together:
        return Pin(header=f"{name}: {value}", rule_arn=together[0]["RuleArn"], priority=str(together[0]["Priority"]),
                   weighted_priority=str(weighted["Priority"]), target_group=canary_group,
                   together=tuple((r["RuleArn"], str(r["Priority"])) for r in together[1:]), by_checks=bool(checks))

    # Below the first rule ahead of the weighted rule that meets, or may meet, some of them and sends
    # them elsewhere (of ``header_rules``, as the pin is judged): created behind any such rule, the
    # new one was refused for that rule taking some of them first.
    elsewhere = next((rule for rule in header_rules if not is_pin_rule(rule, canary_arn)), None)
    # The rule a new or changed pin must be ahead of: that one, or one with no condition on the
    # header meeting some of them first (``find_pin`` names it).
    before = min([r for r in (elsewhere, *unheaded[:1]) if r is not None], key=_priority, default=None)
    # Those that may match the header by a regular expression alone (``RegexValues``), in priority
    # order. Read as matching nothing, a pin rule given as ``^canary$`` was said missing ("sends them
    # nowhere: create one"), sending a person to make the rule they had.
    regex = [rule for rule in header_rules if not _header_met(rule, name, value)]
    # A check the weighted rule does not surely match (``_misses`` of its own, by the checks') needs
    # conditions of the pin's own: told to take the weighted rule's, a pin on /edit/* missing the
    # health check on /health was told to take what it had.
    through = not _misses(weighted, weighted, checks)
    own = "the weighted rule's own conditions" if through else _CHECKS_MEET
    wider = _WIDER if through else f"{_CHECKS_MEET}, or none"
    create = (f"create one on the weighted rule's listener with a priority number below "
              f"{(before or weighted)['Priority']}, the http-header condition {name} = {value} beside {own} (or "
              f"none), and one action forwarding to {canary_group} alone; or clear spec.canary_header")
    if not ahead and matching:
        # Said "sends them nowhere", a reader went looking for a rule to create and found this one.
        return _partly_said(rules, matching, regex, before, weighted, header, name, value, canary_arn, canary_group,
                            create, checks, wider)
    if not ahead and regex:
        return _regex_header_said(regex, weighted, header, name, value, canary_arn, canary_group, create, checks,
                                  wider)
    if not ahead:
        behind = _behind_said(rules, weighted, name, value, canary_arn, canary_group, before, wider, checks)
        return (f"no listener rule ahead of the weighted rule {weighted_arn} (priority {weighted['Priority']}) sends "
                f"requests carrying `{header}` anywhere: {behind}{create}")
    first = ahead[0]
    # The rule a rollout skips as the pin (``is_pin_rule``), and no other: one taken here that a
    # rollout did not skip was a second weighted rule on its path, refused or shifted instead.
    if not is_pin_rule(first, canary_arn):
        pins = [rule for rule in header_rules if is_pin_rule(rule, canary_arn) and _priority(rule) < _priority(first)]
        # Known, the checks' requests are what every rule here was kept for (``_meets_some``): told of
        # the weighted rule's, a rule on /health and /sessions under a weighted /sessions* was narrowed
        # to /health, which still takes the health check.
        return _first_elsewhere_said(first, elsewhere, pins, header, name, value, canary_group, create,
                                     elsewhere is not None and bool(checks))
    # A header rule ahead of the pin on part of the weighted rule's requests (/edit/admin/*) meets
    # those first: passed over for not meeting them all, the pin was said to hold every check.
    # One matching the header by a regular expression (RegexValues) may meet them too. The pin
    # being ahead of the weighted rule, the first such rule ahead of the pin is ``elsewhere`` (the
    # first ahead of the weighted rule) when that one is ahead of the pin, and there is none otherwise.
    taking = elsewhere if elsewhere is not None and _priority(elsewhere) < _priority(first) else None
    if taking is not None:
        return _taking_said(taking, first, header, name, value, canary_group, bool(checks))
    return Pin(header=f"{name}: {value}", rule_arn=first["RuleArn"], priority=str(first["Priority"]),
               weighted_priority=str(weighted["Priority"]), target_group=canary_group)


def _behind_said(rules: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any], name: str, value: str,
                 canary_arn: str, canary_group: str, before: Mapping[str, Any] | None, wider: str,
                 checks: Sequence[CheckRequest]) -> str:
    """The first pin rule behind ``weighted`` on the header (surely met), named as meeting none of
    its requests, and moved ahead of ``before`` (or of ``weighted``), with ``wider`` conditions too
    where it misses some of them: "rule late (priority 11), ... is behind it ...: give rule late a
    priority number below 10, or "; empty for none. Unnamed, a person told to create one found the
    rule they had, with no word of why it did not count."""
    late = next((r for r in sorted(rules, key=_priority) if not r.get("IsDefault")
                 and _priority(r) > _priority(weighted) and is_pin_rule(r, canary_arn) and _header_met(r, name, value)),
                None)
    if late is None:
        return ""
    also = f" and {wider}" if _beyond(late, weighted, checks) else ""
    return (f"rule {late['RuleArn']} (priority {late['Priority']}), which sends those it meets to {canary_group} "
            "alone, is behind it, and meets none of the requests the weighted rule matches (a listener meets its rules in "
            "priority order): "
            f"give rule {late['RuleArn']} a priority number below {(before or weighted)['Priority']}{also}, or ")


def _turns_on(header_rules: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any], name: str, value: str,
              canary_arn: str, checks: Sequence[CheckRequest]) -> str | None:
    """When whether every request ``weighted`` matches, carrying ``name: value``, meets a pin rule
    first turns on regular expressions (``RegexValues``, not compared) or on other headers the
    checks' requests may carry: the rules whose meeting them it turns on, said (``_unsure_said``);
    None when no outcome of those pins them all.

    The rules ahead of ``weighted`` that meet, or may meet, such requests (``header_rules``:
    ``_header_rules_ahead``'s and ``_unheaded_ahead``'s, in priority order) are read in order, as a
    load balancer does: one sending them
    elsewhere that surely meets some of them (its header and other conditions compared, and not
    apart from the weighted rule's) settles it, not pinned; a pin rule that may meet them all
    settles it, pinned if the rules left unsure before it let them by and it meets them all; a pin
    rule surely missing some pins only those it meets. Refused with a text saying it "does not
    pin" them, a pin by ``^canary$`` was denied, which may pin every one.
    """
    unsure: list[Mapping[str, Any]] = []
    for rule in header_rules:
        met = _header_met(rule, name, value)
        if not is_pin_rule(rule, canary_arn):
            unheaded = not _header_met(rule, name, value, maybe=True)  # ``_unheaded_ahead``'s
            surely_unheaded = unheaded and not _unheaded_unsure(rule, weighted, name, checks)
            # One on the header whose meeting the checks turns on a source address, or a session id,
            # may let them by as one on another header may. Judged by the weighted rule's requests, one
            # on that rule's addresses (``_shielded``) meets every one, as ``_found`` says: read as
            # unsure, the refusal said it met them first and that whether it did was not known. The
            # checks' own are sent from an address not known: it may let them by, as ``_found`` says.
            surely_met = (met and not _regex_between(rule, weighted)
                          and not _reach_unsure(rule if checks else _shielded(rule, weighted), checks))
            if surely_met or surely_unheaded:
                return None  # some of them go elsewhere, whatever the regular expressions
            unsure.append(rule)
            continue
        misses = _misses(rule, weighted, checks)
        if any(known for _, known in misses):
            continue  # pins those it meets; the rest go on to the next rule
        if not met or misses:
            unsure.append(rule)
        break
    else:
        return None  # none may pin them all
    if not unsure:
        return None
    return _unsure_said(unsure, weighted, name, checks)


def _regex_between(rule: Mapping[str, Any], weighted: Mapping[str, Any]) -> bool:
    """Whether one of ``rule``'s path-pattern or host-header conditions, not one of ``weighted``'s
    own, or ``weighted``'s of the same field, is given as regular expressions: then whether ``rule``
    meets any of ``weighted``'s requests is not known (``_apart`` never tells such ones apart)."""
    own = {_condition_key(c) for c in weighted.get("Conditions", [])}
    for condition in rule.get("Conditions", []):
        field = condition.get("Field")
        if field not in _PATTERNED or _condition_key(condition) in own:
            continue
        if _regexes(condition) or any(_regexes(c) for c in weighted.get("Conditions", []) if c.get("Field") == field):
            return True
    return False


def _header_rules_ahead(rules: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any], name: str, value: str,
                        canary_arn: str, checks: Sequence[CheckRequest]) -> list[Mapping[str, Any]]:
    """The rules ahead of ``weighted`` that match, or by a regular expression may match, requests
    carrying ``name: value`` on some of its requests (not ``_apart``), in priority order; of those
    forwarding elsewhere, only those some check's request may meet (not ``_meets_no_check``), as
    ``_unheaded_ahead``'s: one on the header and PUT was said to take the checks ahead of the pin.
    A pin rule on PUT is kept: named, it is told to widen its conditions, where left out, a rule by
    a regular expression on the header and PUT alone was said to be no rule at all."""
    return [rule for rule in sorted(rules, key=_priority) if not rule.get("IsDefault")
            and _priority(rule) < _priority(weighted) and _header_met(rule, name, value, maybe=True)
            and (_meets_some(rule, weighted, name, checks)
                 or is_pin_rule(rule, canary_arn) and not _apart(rule, weighted))]


def _unheaded_ahead(rules: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any], name: str,
                    value: str, checks: Sequence[CheckRequest]) -> list[Mapping[str, Any]]:
    """The rules ahead of ``weighted`` that a request carrying ``name: value`` may meet though no
    http-header condition of theirs is met by that header alone (none, or one on another header the
    checks may carry, ``CHECK_HEADERS``, beside any ``name: value`` meets; one on User-Agent given as
    patterns their own, ``CHECK_USER_AGENT``, matches), on some of its requests (not ``_apart``) and
    of the checks' (not ``_meets_no_check``), in priority order:
    each meets those of the weighted rule's requests its other conditions let by, carrying the header
    or not. Those forwarding to the canary group alone among them: the checks meeting one reach it anyway."""
    return [rule for rule in sorted(rules, key=_priority) if not rule.get("IsDefault")
            and _priority(rule) < _priority(weighted) and not _header_met(rule, name, value, maybe=True)
            and _name_may_match(rule, name, value) and not _unsent(rule, name)
            and _meets_some(rule, weighted, name, checks)]


def _unsent_ahead(rules: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any], name: str, value: str,
                  canary_arn: str, checks: Sequence[CheckRequest]) -> list[Mapping[str, Any]]:
    """The rules ahead of ``weighted``, forwarding elsewhere than the canary group alone, that a
    request carrying ``name: value`` would meet, on some of its requests (not ``_apart``) and of the
    checks' (not ``_meets_no_check``), were it not for an http-header condition on a header the
    checks do not send (``_unsent``), in priority order. ``_unheaded_ahead`` and ``_header_rules_ahead``
    leave them out: read as "may meet", a rule on X-Debug made the checks' pinning "not known" and
    they were never sent, on every listener with such a rule. A proxy between the checks and the
    load balancer may add such a header all the same: ``Pin.unsent`` names them."""
    return [rule for rule in sorted(rules, key=_priority) if not rule.get("IsDefault")
            and _priority(rule) < _priority(weighted) and _unsent(rule, name) and _name_may_match(rule, name, value)
            and _meets_some(rule, weighted, name, checks) and not forwards_alone(rule, canary_arn)]


def _meets_some(rule: Mapping[str, Any], weighted: Mapping[str, Any], name: str,
                checks: Sequence[CheckRequest]) -> bool:
    """Whether ``rule`` may meet some of the checks' requests (not ``_meets_no_check``) and, their
    requests not known, some of the weighted rule's (not ``_apart``). Known, a check the weighted
    rule does not match (/health beside /edit/*) is theirs too: left out for being apart from the
    weighted rule, a rule on /health sending it elsewhere went unnamed, and the checks said pinned."""
    return (bool(checks) or not _apart(rule, weighted)) and not _meets_no_check(rule, name, checks)


def _unsent(rule: Mapping[str, Any], name: str) -> list[str]:
    """The headers of ``rule``'s http-header conditions that the checks do not send (neither ``name``
    nor one of ``CHECK_HEADERS``), each once, as the rule spells it."""
    unsent: dict[str, str] = {}
    for condition in _other_headers(rule, name):
        header = _header_name(condition)
        if header.lower() not in CHECK_HEADERS:
            unsent.setdefault(header.lower(), header)
    return list(unsent.values())


def _name_may_match(rule: Mapping[str, Any], name: str, value: str) -> bool:
    """Whether each of ``rule``'s http-header conditions on ``name`` matches ``value``, or may by a
    regular expression (true of a rule with none)."""
    return all(_header_matches(c, name, value) or _regex_on(c, name) for c in _other_headers(rule, name, on=True))


def _meets_no_check(rule: Mapping[str, Any], name: str, checks: Sequence[CheckRequest] = ()) -> bool:
    """Whether every request of the checks' fails one of ``rule``'s conditions: a User-Agent given
    as patterns their own (``CHECK_USER_AGENT``) does not match; or, their requests known
    (``checks``), none of them meets its path, host, method and query string (``_reach``);
    otherwise, whatever its path and host, methods none of theirs (``CHECK_METHODS``; a load
    balancer compares them with regard to case)."""
    if any(_agent_compared(c) and not _header_matches(c, "User-Agent", CHECK_USER_AGENT)
           for c in _other_headers(rule, name)):
        return True
    if checks:
        return max(_reach(rule, check) for check in checks) == _NONE
    return any(c.get("Field") == "http-request-method" and _values(c) and CHECK_METHODS.isdisjoint(_values(c))
               for c in rule.get("Conditions", []))


_NONE, _MAYBE, _SURELY = 0, 1, 2
"""Whether a request meets a rule's condition (``_reach``): surely not, may, surely."""


def _reach(rule: Mapping[str, Any], check: CheckRequest) -> int:
    """Whether ``check`` meets ``rule``'s path-pattern, host-header, http-request-method,
    query-string and source-ip conditions (``_NONE``, ``_MAYBE``, ``_SURELY``), its http-header ones
    apart (judged by the pin header's rules): the least of them (``_condition_reaches``)."""
    return min((met for met, _ in _condition_reaches(rule, check)), default=_SURELY)


def _condition_reaches(rule: Mapping[str, Any], check: CheckRequest) -> list[tuple[int, list[str]]]:
    """Whether ``check`` meets each of ``rule``'s conditions ``_reach`` reads, each with why it may
    (``_reach_why``'s words): a source address is not known, nor what a ``*`` of the check's path
    holds, nor whether the load balancer compares a path or query as sent or decoded, a host with
    its port or without (read both ways: where the two differ, it may meet)."""
    reaches: list[tuple[int, list[str]]] = []
    for condition in rule.get("Conditions", []):
        kind = condition.get("Field")
        if kind == "source-ip":
            reaches.append((_MAYBE, [_source_said(condition)]))
        elif kind == "http-request-method":
            reaches.append((_SURELY if check.method in _values(condition) else _NONE, []))
        elif kind == "path-pattern":
            reaches.append(_either(_pattern_reach(condition, _sent(check.path, str), str),
                                   _pattern_reach(condition, _sent(check.path, unquote), str),
                                   "a percent-encoded path, which the load balancer may read decoded or not"))
        elif kind == "host-header":
            # Compared with the port the Host header carries, or the name alone: not said.
            reaches.append(_either(_pattern_reach(condition, _sent(check.host, str.lower), str.lower),
                                   _pattern_reach(condition, _sent(re.sub(r":\d+$", "", check.host), str.lower),
                                                  str.lower),
                                   "the port their Host header carries, which a host-header condition may be "
                                   "compared with or not"))
        elif kind == "query-string":
            reaches.append(_either(_query_reach(condition, check.query, str),
                                   _query_reach(condition, check.query, unquote_plus),
                                   "a percent-encoded query string, which the load balancer may read decoded or not"))
    return reaches


def _either(one: tuple[int, list[str]], other: tuple[int, list[str]], differ: str) -> tuple[int, list[str]]:
    """Two readings of a request (as sent, decoded), each whether it meets a condition and why it
    may, as one: the same, or "may" where they differ, for ``differ``."""
    return one if one[0] == other[0] else (_MAYBE, list(dict.fromkeys([*one[1], *other[1], differ])))


def _sent(text: str, read: Any) -> list[Any]:
    """A check's path or host (``CheckRequest``'s) as ``_pattern_covers`` and ``_patterns_meet`` read
    a text: each character itself, a ``*`` or ``?`` too, each ``SESSION_ID`` any characters
    (``_ANY``); each part between them read by ``read`` (as sent, decoded, lower case)."""
    sent: list[Any] = []
    for i, part in enumerate(text.split(SESSION_ID)):
        sent.extend([_ANY] * bool(i) + list(read(part)))
    return sent


def _pattern_reach(condition: Mapping[str, Any], text: Sequence[Any], fold: Any) -> tuple[int, list[str]]:
    """Whether ``text`` (``_sent``'s: its ``_ANY`` stands for what is not known, the message check's
    session id) meets a path-pattern or host-header ``condition``: one of its values matching all
    it may be, surely; sharing some, or given as regular expressions (not compared), may, with
    which of those it turns on; none, surely not."""
    values = [fold(v) for v in _values(condition)]
    if any(_pattern_covers(v, text) for v in values):
        return _SURELY, []
    why = [*(["regular expressions that are not compared"] if _regexes(condition) else []),
           *(["a session id in the message check's path, which is not known before the check"]
             if any(_patterns_meet(_wild(v), text) for v in values) else [])]
    return (_MAYBE, why) if why else (_NONE, [])


def _query_reach(condition: Mapping[str, Any], query: str, decode: Any) -> tuple[int, list[str]]:
    """Whether the query string ``query`` (``CheckRequest.query``'s: ``SESSION_ID`` where it holds
    the message check's session id), each key and value read by ``decode``, meets a query-string
    ``condition``: one of its values, a key and value or a value alone (patterns, a backslash
    escaping ``*`` and ``?``, without regard to case), found among the query's items, whatever
    the session id (surely), for some (may, with why), or for none. Read with the stand-in the
    query was built with for the id, a rule on session=a* was said to meet none of them."""
    # A session id is percent-encoded (``messages_url``): it holds no & or =, and splits no item.
    read = _folded(decode)
    items = [(_sent(key, read), _sent(item, read)) if eq else (None, _sent(key, read))
             for key, eq, item in (part.partition("=") for part in query.split("&") if part)]
    met = _NONE
    for wanted in _config(condition).get("Values") or condition.get("Values") or []:
        key = None if wanted.get("Key") is None else _query_pattern(wanted["Key"])
        value = _query_pattern(wanted.get("Value", ""))
        for k, v in items:
            if key is not None and k is None:
                continue
            if (key is None or _pattern_covers(key, k)) and _pattern_covers(value, v):
                return _SURELY, []
            if (key is None or _patterns_meet(key, k)) and _patterns_meet(value, v):
                met = _MAYBE
    return (met, ["a session id in the message check's query string, which is not known before the check"]
            if met == _MAYBE else [])


def _folded(decode: Any) -> Any:
    """``decode``, then lower case: query-string conditions match without regard to case."""
    return lambda text: decode(text).lower()


def _query_pattern(pattern: str) -> list[Any]:
    """A query-string condition's ``pattern`` as ``_pattern_covers`` and ``_patterns_meet`` read it,
    lower case: ``*`` as ``_ANY``, ``?`` as ``_ONE``, each itself after a backslash (a ``*`` the
    character, as a check's own is), every other character itself."""
    parts = re.findall(r"\\[*?]|[*?]|[^*?\\]+|\\", pattern.lower())
    return [token for p in parts
            for token in ([p[1]] if p.startswith("\\") and len(p) == 2 else [_ANY] if p == "*" else [_ONE] if p == "?"
                          else list(p))]


def _reach_why(rule: Mapping[str, Any], checks: Sequence[CheckRequest]) -> list[str]:
    """Why ``rule`` may meet the checks or not (``_reach_unsure``), each reason once, as "may meet" is
    said: of the conditions that only may meet those checks that only may meet it (with none
    known, its source address). One list for every case sent a person whose rule a regular
    expression decided looking for a session id in a path that holds none."""
    if not checks:
        return [_source_said(c) for c in rule.get("Conditions", []) if c.get("Field") == "source-ip"]
    return list(dict.fromkeys(why for check in checks if _reach(rule, check) == _MAYBE
                              for met, whys in _condition_reaches(rule, check) if met == _MAYBE for why in whys))


def _source_said(condition: Mapping[str, Any]) -> str:
    """A source-ip ``condition`` as why a rule may meet the checks."""
    return f"a source-ip condition on {_said_values(condition)}, where the checks are sent from " \
           "not being known"


def _reach_unsure(rule: Mapping[str, Any], checks: Sequence[CheckRequest]) -> bool:
    """Whether whether some of the checks meet ``rule`` turns on what is not known: with their
    requests (``checks``), none meets it surely and some may (``_reach``); without, it has a
    source-ip condition."""
    if checks:
        return max(_reach(rule, check) for check in checks) == _MAYBE
    return any(c.get("Field") == "source-ip" for c in rule.get("Conditions", []))


def _other_headers(rule: Mapping[str, Any], name: str, *, on: bool = False) -> list[Mapping[str, Any]]:
    """``rule``'s http-header conditions on headers other than ``name`` (``on``: those on ``name``)."""
    return [c for c in rule.get("Conditions", []) if c.get("Field") == "http-header"
            and (_header_name(c).lower() == name.lower()) == on]


def _agent_compared(condition: Mapping[str, Any]) -> bool:
    """Whether the http-header ``condition`` is on User-Agent given as patterns alone (``Values``, no
    ``RegexValues``): compared with the checks' own, ``CHECK_USER_AGENT``."""
    return _header_name(condition).lower() == "user-agent" and bool(_values(condition)) and not _regexes(condition)


def _unsure_headers(rule: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    """``rule``'s http-header conditions on other headers than ``name`` whose values on the checks'
    requests are not compared: all but one on User-Agent given as patterns (``_agent_compared``),
    which an ``_unheaded_ahead`` rule's the checks' own matches."""
    return [c for c in _other_headers(rule, name) if not _agent_compared(c)]


def _header_name(condition: Mapping[str, Any]) -> str:
    """The header an http-header ``condition`` is on, as DescribeRules gives it."""
    return str(condition.get("HttpHeaderConfig", {}).get("HttpHeaderName", ""))


def _unheaded_unsure(rule: Mapping[str, Any], weighted: Mapping[str, Any], name: str,
                     checks: Sequence[CheckRequest]) -> bool:
    """Whether an ``_unheaded_ahead`` rule meeting some of the checks' requests turns on what is not
    compared: a header other than ``name`` (the checks' values of it are not compared, their
    User-Agent apart: ``_unsure_headers``) or regular expressions (``_unheaded_regex``)."""
    return bool(_unsure_headers(rule, name)) or _unheaded_regex(rule, weighted, name) or _reach_unsure(rule, checks)


def _unheaded_regex(rule: Mapping[str, Any], weighted: Mapping[str, Any], name: str) -> bool:
    """Whether whether an ``_unheaded_ahead`` rule meets some of the weighted rule's requests turns on
    regular expressions: a path's or host's (``_regex_between``), or its condition's on ``name``."""
    return _regex_between(rule, weighted) or any(_regexes(c) for c in _other_headers(rule, name, on=True))


def _unsure_said(unsure: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any], name: str,
                 checks: Sequence[CheckRequest]) -> str:
    """``Unpinned.unknown``: which of the checks' requests the rules of ``unsure`` meet is not known, and why."""
    named = " and ".join(f"rule {r['RuleArn']} (priority {r['Priority']})" for r in unsure)
    meet = "meets" if len(unsure) == 1 else "meet"
    # Each reason that holds of one of them: "by regular expressions" alone, of a rule on X-Debug,
    # sent a person looking for an expression the listener does not have.
    others = any(_unsure_headers(r, name) for r in unsure)
    regex = any(_unheaded_regex(r, weighted, name) or not (_unsure_headers(r, name) or _reach_unsure(r, checks))
                for r in unsure)
    why = [*(["regular expressions that are not compared"] if regex else []),
           # Not "may carry or not": the checks always carry User-Agent, with a value of their own.
           *([f"headers other than {name}, whose values on the checks' requests are not compared"] if others else []),
           *(reason for r in unsure if _reach_unsure(r, checks) for reason in _reach_why(r, checks))]
    return f"which of them {named} {meet}, by {' and '.join(dict.fromkeys(why))}"


def _unheaded_meets(rule: Mapping[str, Any], weighted: Mapping[str, Any], header: str, name: str,
                    checks: Sequence[CheckRequest]) -> str:
    """What of the weighted rule's requests (``checks``: of the checks', as it is judged) an
    ``_unheaded_ahead`` rule meets: with which conditions, its share of them (every one, some, or
    some that may be), as a refusal names it."""
    others = _unsure_headers(rule, name)
    # A User-Agent the checks' own matches (``_unheaded_ahead`` keeps no other): said "with no
    # http-header condition", the rule read as one without it.
    agent = [c for c in _other_headers(rule, name) if _agent_compared(c)]
    with_ = (f"with an http-header condition on another header than {name}" if others else
             f"with an http-header condition on User-Agent ({_said(agent[0])}) that the checks' own, "
             f"{CHECK_USER_AGENT}, matches" if agent else "with no http-header condition")
    # Judged by the checks' requests when known (``_reach``), said of theirs: "some of the weighted
    # rule's", with a condition missing some of those, named what the refusal was not about.
    theirs = "the checks' requests" if checks else "the weighted rule's requests"
    if others or _unheaded_regex(rule, weighted, name) or _reach_unsure(rule, checks):
        why = [*(f"those carrying {_header_name(c)} as it asks: {_said(c)}" for c in others),
               *(["by regular expressions that are not compared"] if _unheaded_regex(rule, weighted, name) else []),
               *(f"by {reason}" for reason in (_reach_why(rule, checks) if _reach_unsure(rule, checks) else []))]
        return f"{with_}, may meet some of {theirs} carrying `{header}` ({'; '.join(dict.fromkeys(why))})"
    if checks:
        missed = _beyond(rule, weighted, checks)
        # None of them going through the weighted rule, its weights say nothing of them.
        gets = (", none of which the weighted rule matches" if _apart(rule, weighted) else
                "" if missed else " (the weighted rule, behind it, gets none of them, whatever its weights)")
        return (f"{with_}, meets {'some' if missed else 'every one'} of the checks' requests, carrying `{header}` or "
                f"not{gets}" + (f" (it has {' and '.join(missed)})" if missed else ""))
    beyond = _beyond(rule, weighted)
    if agent:
        # Those of the checks alone: other requests carry another User-Agent, or none.
        if not beyond:
            return (f"{with_}, meets every one of the checks' requests the weighted rule matches (the weighted rule, "
                    "behind it, gets none of them, whatever its weights)")
        return f"{with_}, meets some of the checks' requests (it has {' and '.join(beyond)})"
    if not beyond:
        return (f"with no http-header condition, meets every request the weighted rule matches, carrying `{header}` or "
                "not (the weighted rule, behind it, gets none of them, whatever its weights)")
    return (f"with no http-header condition, meets some of the weighted rule's requests, carrying `{header}` or not "
            f"(it has {' and '.join(beyond)})")


def _unheaded_goes(rule: Mapping[str, Any], weighted: Mapping[str, Any], canary_arn: str) -> str:
    """Where an ``_unheaded_ahead`` rule sends those it meets, with which version that is when it
    forwards to the weighted rule's groups: the stable alone, or both by weights of its own."""
    theirs = set(_forwarded(weighted))
    sent = {arn for arn, weight in _forwarded(rule).items() if weight > 0}
    # The weighted rule's group beside the canary's, when it names one alone (a third makes it no split of two).
    stable = theirs - {canary_arn} if len(theirs - {canary_arn}) == 1 else None
    version = (" (the stable version alone, whatever the weights)" if sent == stable else
               " (by its own weights, not the weighted rule's)" if len(sent) > 1 and sent == theirs else "")
    return _goes(rule) + version


def _unheaded_taking_said(taking: Sequence[Mapping[str, Any]], pins: Sequence[tuple[str, str]],
                          weighted: Mapping[str, Any], header: str, name: str, canary_arn: str,
                          canary_group: str, checks: Sequence[CheckRequest]) -> str:
    """Why the pin found by header rules (``pins``: its rule, or the rules pinning together, ARN and
    priority) does not hold every check: the rules of ``taking`` (``_unheaded_ahead``'s ahead of one
    of them) meet some of them first, each said with its share and where it sends them; what to
    change: the pin rules behind the first of them, given a priority number below it."""
    first = taking[0]
    states = "; ".join(f"rule {r['RuleArn']} (priority {r['Priority']}), "
                       f"{_unheaded_meets(r, weighted, header, name, checks)}, "
                       f"and sends those it meets to {_unheaded_goes(r, weighted, canary_arn)}" for r in taking)
    behind = [(arn, priority) for arn, priority in pins if float(priority) > _priority(first)]
    said = " and ".join(f"{arn} (priority {priority})" for arn, priority in behind)
    rules = f"rule {said}" if len(behind) == 1 else f"rules {said}"
    if len(pins) == 1:
        pinning = f"{rules}, the one pinning them to the canary target group {canary_group} alone"
    elif len(behind) == len(pins):
        pinning = f"{rules}, which together pin them to the canary target group {canary_group} alone"
    else:
        every = " and ".join(f"{arn} (priority {priority})" for arn, priority in pins)
        pinning = f"{rules}, of rules {every}, which together pin them to the canary target group {canary_group} alone"
    moved = " and ".join(arn for arn, _ in behind)
    give = (f"give rule {moved} a priority number below {first['Priority']}" if len(behind) == 1 else
            f"give rules {moved} priority numbers below {first['Priority']}")
    # Of the first alone: one behind it may be ahead of fewer of the pins ("each is" was untrue of it).
    return (f"{states}; {'it is' if len(taking) == 1 else 'the first of them is'} ahead of {pinning}: {give} (a "
            "listener meets its rules in priority order)")


_WIDER = ("the weighted rule's own conditions, wider ones (a path-pattern or host-header matching all of the weighted "
          "rule's), or none")
"""The conditions a header rule on part of the weighted rule's requests may take to meet them all."""

_CHECKS_MEET = "conditions every one of the checks' requests meets"
"""The conditions a pin rule may take when some of the checks' requests are not the weighted rule's."""


def _partly_said(rules: Sequence[Mapping[str, Any]], matching: Sequence[Mapping[str, Any]],
                 regex: Sequence[Mapping[str, Any]], elsewhere: Mapping[str, Any] | None, weighted: Mapping[str, Any],
                 header: str, name: str, value: str, canary_arn: str, canary_group: str, create: str,
                 checks: Sequence[CheckRequest], wider: str) -> str:
    """Why the rules of ``matching`` (those matching ``header`` ahead of ``weighted``, each on part of
    its requests: ``_beyond``) do not pin them all: each rule with the conditions it misses requests
    by and where it sends those it meets, and each of ``regex`` (those of ``_header_rules_ahead`` that
    may match the header by a regular expression alone) among them, then what to change. Said of the
    first alone, a second pinning the rest, or taking them elsewhere, went unnamed; a rule by a
    regular expression unnamed, the rule to create was asked below a priority nothing said was taken.
    ``elsewhere``: ``_found``'s ``before``, the first rule ahead of the weighted rule that may send
    some of them elsewhere (one of these, or one with no condition on the header). ``wider``: the
    conditions the rule changed is told to take (``_WIDER``, or ``_CHECKS_MEET``'s). A pin rule every
    check would meet but for its source-ip condition on the weighted rule's addresses
    (``_sourced_only``) is said with what answers one sent from elsewhere (``_answered_by``, of the
    listener's ``rules``) and told to drop that condition: told to take conditions every check
    meets, a person saw none it lacked."""
    said = sorted([*matching, *regex], key=_priority)
    sourced = [r for r in matching if is_pin_rule(r, canary_arn) and _sourced_only(r, weighted, checks)]

    def state(r: Mapping[str, Any]) -> str:
        # A rule on the same conditions as one ahead of it meets none of them: said to send "those
        # it meets" to the canary, it read as pinning some.
        twin = _twin(r, said)
        if twin is not None:
            return (f"rule {r['RuleArn']} (priority {r['Priority']}) repeats the conditions of rule {twin['RuleArn']} "
                    f"(priority {twin['Priority']}), ahead of it: it meets none of them")
        goes = _sent_to(r, canary_arn, canary_group)
        if r in regex:
            return _regex_stated(r, weighted, name, goes, checks)
        if r in sourced:
            addresses = ", ".join(_said_values(c) for c in r.get("Conditions", []) if _sources_cover(c, weighted))
            return (f"rule {r['RuleArn']} (priority {r['Priority']}) matches the header with a source-ip condition on "
                    f"{addresses}, matching every address the weighted rule's does, and sends those it meets to "
                    f"{goes}, but the checks are sent from an address the run does not know: one sent from outside "
                    f"{addresses} meets neither rule {r['RuleArn']} nor the weighted rule, and is answered by "
                    f"{_answered_by(rules, (r, weighted), weighted, name, value, canary_arn, checks)}")
        return (f"rule {r['RuleArn']} (priority {r['Priority']}) matches the header with "
                f"{' and '.join(_beyond(r, weighted, checks))}, and sends those it meets to {goes}")

    states = "; ".join(state(r) for r in said)
    pins = [r for r in matching if is_pin_rule(r, canary_arn)]
    # The rule to change: the one matching rule, else the first pinning some, else the first of all.
    changed = matching[0] if len(matching) == 1 or not pins else pins[0]
    # Changed behind a rule that may send some of them elsewhere first, it was refused again for that one.
    ahead = (f"a priority number below {elsewhere['Priority']} and "
             if elsewhere is not None and _priority(elsewhere) < _priority(changed) else "")
    which = "it" if len(matching) == 1 and not regex else f"rule {changed['RuleArn']}"
    change = f"give {which} {ahead}{wider}" + (
        "" if is_pin_rule(changed, canary_arn) else f", and make it forward to {canary_group} alone")
    if changed in sourced:
        whose = "its" if which == "it" else f"{which}'s"
        change = (f"remove {whose} source-ip condition (the header alone narrows what it meets)"
                  + (f" and give it a priority number below {elsewhere['Priority']}" if ahead else ""))
    # "Meets" only when each rule surely misses some of them: one whose path a regular expression
    # decides (``_misses``) may meet them all, and "meets" denied it after "is not known" (``_turns_on``).
    known = not regex and all(any(surely for _, surely in _misses(r, weighted, checks)) for r in matching)
    # Judged by the checks' requests when known (``_misses``), said of theirs.
    every = "every one of the checks' requests" if checks else "every request it matches"
    return (f"no listener rule ahead of the weighted rule {weighted['RuleArn']} (priority {weighted['Priority']}) "
            f"{'meets' if known else 'is known to meet'} {every} carrying `{header}`: {states}, so "
            f"some of them may pass {which if len(matching) == 1 else 'them all'} by: {change}, or {create}")


def _twin(rule: Mapping[str, Any], rules: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first of ``rules`` ahead of ``rule`` on the same conditions (``_condition_key``'s): it
    takes every request ``rule`` would meet first. None when there is none."""
    same = {_condition_key(c) for c in rule.get("Conditions", [])}
    return next((o for o in rules if _priority(o) < _priority(rule)
                 and {_condition_key(c) for c in o.get("Conditions", [])} == same), None)


def _first_elsewhere_said(first: Mapping[str, Any], elsewhere: Mapping[str, Any] | None,
                          pins: Sequence[Mapping[str, Any]], header: str, name: str, value: str, canary_group: str,
                          create: str, outside: bool = False) -> str:
    """Why ``first``, the first rule meeting every request of the weighted rule's carrying
    ``header``, does not pin them: where it sends them, where ``elsewhere`` (the first rule
    ahead of it sending some of them elsewhere, ``find_pin``'s), when not ``first``, sends those it
    meets first, and the pin rules of ``pins`` ahead of it, which pin those they meet (or by a
    regular expression may meet) first; what to change. Told only to make ``first`` forward to the
    canary, a person did, and the checks were refused for a rule on /edit/admin/* ahead of it, never
    named; said to meet them "first", it was, behind a pin by ``^canary$`` that may meet them all.
    ``outside``: the checks' requests are known, and ``elsewhere`` is told of them."""
    def meets(rule: Mapping[str, Any]) -> str:
        return f"rule {rule['RuleArn']} (priority {rule['Priority']}) " + (
            "meets" if _header_met(rule, name, value) else
            "may meet" if rule in pins else
            f"may meet (by a regular expression on {name}, {_regexes_on(rule, name)}, not compared)")

    others = [] if elsewhere is None or elsewhere is first else [elsewhere]
    but = ""
    if others or pins:
        pinned = "" if not pins else f", sending them to {canary_group} alone" + (
            "" if not others else f" ({' and '.join('rule ' + r['RuleArn'] for r in pins)})")
        those = " and ".join(meets(r) for r in sorted([*others, *pins], key=_priority))
        but = f" but for those {those} ahead of it{pinned}"
    if not others:
        return (f"rule {first['RuleArn']} (priority {first['Priority']}) meets requests carrying `{header}` "
                f"first{but}, and sends them to {_goes(first)}, not to the canary target group {canary_group} alone: "
                f"make it forward to {canary_group} alone, or {create}")
    other = others[0]["RuleArn"]
    whose = "the checks'" if outside else "the weighted rule's"
    return (f"rule {first['RuleArn']} (priority {first['Priority']}) meets requests carrying `{header}` first{but}, "
            f"and sends them to {_goes(first)} (rule {other}: to {_goes(others[0])}), not to the canary target group "
            f"{canary_group} alone: make both forward to {canary_group} alone (or give rule {other} a path-pattern or "
            f"host-header none of {whose} requests match), or {create}")


def _taking_said(taking: Mapping[str, Any], first: Mapping[str, Any], header: str, name: str, value: str,
                 canary_group: str, outside: bool = False) -> str:
    """Why ``taking``, a header rule ahead of the pin ``first`` on some of the weighted rule's
    requests (one of ``_header_rules_ahead``), keeps the pin from holding every check: the requests it
    matches, or by a regular expression may match, and where it sends them; what to change.
    ``outside``: the checks' requests are known, and ``taking`` is told of them: told to take a path
    or host none of the weighted rule's requests match, a person was told what it had, or narrowed
    it to a check it still takes."""
    if _header_met(taking, name, value):
        matches = f"matches requests carrying `{header}`"
        compare = ""
    else:
        # Its regular expression may well not match the value: then the way out is to say so in a
        # form that is compared, not to reroute a rule that never meets the checks.
        matches = (f"may match requests carrying `{header}` (by a regular expression on {name}, "
                   f"{_regexes_on(taking, name)}, not compared)")
        compare = (f"; or, if that regular expression cannot match `{value}`, give its http-header condition "
                   f"Values (patterns with * and ?) that do not match it in place of the regular expression")
    among = "the checks'" if outside else "the weighted rule's"
    return (f"rule {taking['RuleArn']} (priority {taking['Priority']}) {matches} ahead "
            f"of rule {first['RuleArn']} (priority {first['Priority']}), the one pinning them, and sends those it "
            f"meets among {among} to {_goes(taking)}, not to the canary "
            f"target group {canary_group} alone: make it forward to {canary_group} alone, give it a path-pattern or "
            f"host-header none of {among} requests match, or give it a priority number above "
            f"{first['Priority']}{compare}")


def _regexes_on(rule: Mapping[str, Any], name: str) -> str:
    """The regular expressions of ``rule``'s http-header conditions on ``name``, on one line."""
    return on_one_line(", ".join(r for c in rule.get("Conditions", []) if c.get("Field") == "http-header"
                                 and _regex_on(c, name) for r in _regexes(c)))


def _regex_header_said(regex: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any], header: str, name: str,
                       value: str, canary_arn: str, canary_group: str, create: str,
                       checks: Sequence[CheckRequest], wider: str) -> str:
    """Why the rules of ``regex`` (those of ``_header_rules_ahead``, each matching the header by a
    regular expression alone, in priority order) are not taken as the pin: their regular
    expressions are not compared (as a weighted rule's are not, ``_covers``), so whether they meet
    the checks' requests is not known; each with where it sends those it meets, and what to change,
    by the first: for a rule forwarding to the canary alone, its other conditions too when they
    miss some of the weighted rule's requests (given the value alone, it was refused again for
    those); for one forwarding elsewhere, a rule to create ahead of it (behind it, it was refused
    for this one meeting the requests first). Said of the first alone, a pin by ``^canary$``
    behind a rule by ``^beta$`` went unnamed, and so did the rule the new one was asked ahead of.
    ``wider``: as ``_partly_said``'s."""
    rule = regex[0]
    narrower = _beyond(rule, weighted, checks)
    also = f", and, as it also has {' and '.join(narrower)}, give it {wider}" if narrower else ""
    give = (f"http-header condition the value {value} (Values: the value, or a pattern with * and ?) in place of the "
            f"regular expression{also}, or {create}")
    if len(regex) > 1:
        known = (f"{len(regex)} rules ahead of the weighted rule {weighted['RuleArn']} (priority "
                 f"{weighted['Priority']}) match the header {name} by regular expressions alone, which are not "
                 f"compared with `{value}`, so whether they meet requests carrying `{header}` is not known: "
                 + "; ".join(_regex_stated(r, weighted, name, _sent_to(r, canary_arn, canary_group), checks)
                             for r in regex))
        # Changed as told, the first of them meets every one first; created, the new one does.
        return f"{known}: give rule {rule['RuleArn']}'s {give}" if is_pin_rule(rule, canary_arn) else (
            f"{known}: {create}")
    known = (f"rule {rule['RuleArn']} (priority {rule['Priority']}) matches the header {name} by a regular "
             f"expression ({_regexes_on(rule, name)}), which is not compared with `{value}`, so whether it "
             f"meets requests carrying `{header}` is not known")
    if is_pin_rule(rule, canary_arn):
        return f"{known}, though it forwards to {canary_group} alone: give its {give}"
    return (f"{known}, and it sends those it meets to {_goes(rule)}, not to the canary target group {canary_group} "
            f"alone: {create}")


def _regex_stated(rule: Mapping[str, Any], weighted: Mapping[str, Any], name: str, goes: str,
                  checks: Sequence[CheckRequest]) -> str:
    """``rule``, matching the header ``name`` by a regular expression, as a refusal names it among
    others: its regular expressions, the other conditions it misses some of ``weighted``'s
    requests by, and where it sends those it meets (``goes``)."""
    narrower = _beyond(rule, weighted, checks)
    return (f"rule {rule['RuleArn']} (priority {rule['Priority']}) may match the header (by a regular expression on "
            f"{name}, {_regexes_on(rule, name)}, not compared)"
            + (f" with {' and '.join(narrower)}" if narrower else "") + f", and sends those it meets to {goes}")


def _sent_to(rule: Mapping[str, Any], canary_arn: str, canary_group: str) -> str:
    """Where ``rule`` sends the requests it meets, a pin rule's said by the canary group's name."""
    return canary_group + " alone" if is_pin_rule(rule, canary_arn) else _goes(rule)


def _goes(rule: Mapping[str, Any]) -> str:
    """Where ``rule`` sends the requests it meets, as a refusal names it."""
    named = _forwarded(rule)
    idle = sorted(arn for arn, weight in named.items() if weight <= 0)
    goes = ", ".join(sorted(arn for arn in named if arn not in idle)) or (
        "no target group (its actions: " + ", ".join(str(a.get("Type")) for a in rule.get("Actions", [])) + ")")
    if idle and len(idle) < len(named):
        goes += f" (and names {', '.join(idle)} at weight 0, as a weighted rule does)"
    return goes


def is_pin_rule(rule: Mapping[str, Any], canary_arn: str) -> bool:
    """Whether ``rule`` is a header rule forwarding to the canary group alone (a pin rule, never
    the weighted rule a rollout shifts, though it is on the same path and names the canary group)."""
    # Named alone, not only weighted alone: the weighted rule names both groups at 0/100 too. At
    # weight 0 it forwards nowhere: no pin.
    has_header = any(c.get("Field") == "http-header" for c in rule.get("Conditions", []))
    return has_header and forwards_alone(rule, canary_arn)


def forwards_alone(rule: Mapping[str, Any], arn: str) -> bool:
    """Whether ``rule`` forwards to the target group ``arn`` and to no other (a weight of 0 to
    another is one), with a weight above 0: at 0 it sends it nothing."""
    forwarded = _forwarded(rule)
    return set(forwarded) == {arn} and forwarded[arn] > 0


def _priority(rule: Mapping[str, Any]) -> float:
    said = str(rule.get("Priority", "default"))
    return float(said) if said.isdigit() else float("inf")


def _header_met(rule: Mapping[str, Any], name: str, value: str, *, maybe: bool = False) -> bool:
    """Whether ``rule`` has http-header conditions and a request carrying ``name: value`` meets each
    (``maybe``: or may, a condition on ``name`` given as regular expressions, which are not compared)."""
    headers = [c for c in rule.get("Conditions", []) if c.get("Field") == "http-header"]
    return bool(headers) and all(_header_matches(c, name, value) or maybe and _regex_on(c, name) for c in headers)


def _regex_on(condition: Mapping[str, Any], name: str) -> bool:
    """Whether the http-header ``condition`` is on the header ``name`` and has regular expressions."""
    return _header_name(condition).lower() == name.lower() and bool(_regexes(condition))


def _beyond(rule: Mapping[str, Any], weighted: Mapping[str, Any], checks: Sequence[CheckRequest] = ()) -> list[str]:
    """``rule``'s other conditions that some request ``weighted`` matches (``checks``: some of the
    checks' requests) may fail, each said with why (none: every one of those, carrying the header
    ``_header_met`` matched, matches ``rule``): ``_misses``, said."""
    return [said for said, _ in _misses(rule, weighted, checks)]


def _misses(rule: Mapping[str, Any], weighted: Mapping[str, Any],
            checks: Sequence[CheckRequest] = ()) -> list[tuple[str, bool]]:
    """``_beyond``'s conditions, each with whether some request ``weighted`` matches is known to
    fail it (False: a regular expression, not compared, decides). The checks' requests known
    (``checks``), judged by theirs instead (``_checks_miss``), as the rules ahead of it are.
    Otherwise, one of the weighted rule's own passes, and so does a path-pattern or host-header whose values match every value of the
    weighted rule's (``/*`` over ``/edit/*``), or a path-pattern matching every path when the
    weighted rule has none (``_EVERY_PATH``): refused for not being the same, a pin on ``/*`` was
    said to let requests pass it by. A path-pattern or host-header given as regular expressions is
    not known to fail any, the weighted rule's or every path or host (``^/.*`` may match them all)."""
    if checks:
        return _checks_miss(rule, checks)
    said: list[tuple[str, bool]] = []
    for condition in _narrowing(rule, weighted):
        field = str(condition.get("Field"))
        theirs = [c for c in weighted.get("Conditions", []) if c.get("Field") == field]
        if field in _PATTERNED and theirs:
            # A regular expression's matches are not compared: "does not match" would claim more than is known.
            regex = any(_regexes(c) for c in (condition, *theirs))
            said.append((f"a {field} condition ({_said(condition)}) that {'may' if regex else 'does'} not match every "
                         f"request the weighted rule's ({'; '.join(f'{field} ' + _said(c) for c in theirs)}) matches"
                         + (" (regular expressions are not compared)" if regex else ""), not regex))
        elif field in _PATTERNED and _regexes(condition):
            # The weighted rule matches every path (``_EVERY_PATH``), which ^/.* may too: said surely
            # to miss some, a pin that may meet every one was denied after "is not known". A host's
            # too: said surely to miss some for a request with no Host header, the checks' (which
            # all carry one) were said not pinned by ^.*$, which may match every host they name.
            said.append((f"a {field} condition ({_said(condition)}) that may not match every "
                         f"{'path' if field == 'path-pattern' else 'host'} the weighted rule, with none, matches "
                         "(regular expressions are not compared)", False))
        else:
            said.append((f"a {field} condition the weighted rule does not have", True))
    return said


def _sources_cover(condition: Mapping[str, Any], weighted: Mapping[str, Any]) -> bool:
    """Whether ``condition`` is a source-ip one matching every address ``weighted``'s own source-ip
    condition matches (the same, or wider networks): every request the weighted rule takes meets
    it; one sent from elsewhere meets neither rule. Not the checks, then, whose address is not
    known (``_sourced_only``); read as narrowing the weighted rule's requests, a pin on its own
    networks and more was refused."""
    theirs = [c for c in weighted.get("Conditions", []) if c.get("Field") == "source-ip"]
    if condition.get("Field") != "source-ip" or not theirs:
        return False
    try:
        wide = [ipaddress.ip_network(v, strict=False) for v in _values(condition)]
        narrow = [ipaddress.ip_network(v, strict=False) for c in theirs for v in _values(c)]
    except ValueError:
        return False  # not an address AWS would take: not known to match any
    return bool(narrow) and all(any(n.version == w.version and n.subnet_of(w) for w in wide)  # type: ignore[arg-type]
                                for n in narrow)


def _shielded(rule: Mapping[str, Any], weighted: Mapping[str, Any]) -> Mapping[str, Any]:
    """``rule`` as a request the weighted rule takes meets it: without its source-ip condition when
    that matches every address the weighted rule's does (``_sources_cover``), as each such request is
    sent from one of them. Never the checks' own: where they are sent from is not known, and one
    sent from elsewhere meets neither rule (``_sourced_only``)."""
    kept = [c for c in rule.get("Conditions", []) if not _sources_cover(c, weighted)]
    return rule if len(kept) == len(rule.get("Conditions", [])) else {**rule, "Conditions": kept}


def _sourced_only(rule: Mapping[str, Any], weighted: Mapping[str, Any], checks: Sequence[CheckRequest]) -> bool:
    """Whether every one of the checks' requests (``checks``, known) would meet ``rule`` but for a
    source-ip condition of its matching every address the weighted rule's does (``_sources_cover``):
    sent from an address not known, a check may meet neither."""
    return (bool(checks) and any(_sources_cover(c, weighted) for c in rule.get("Conditions", []))
            and not _checks_miss(_shielded(rule, weighted), checks))


def _answered_by(rules: Sequence[Mapping[str, Any]], passed: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any],
                 name: str, value: str, canary_arn: str, checks: Sequence[CheckRequest]) -> str:
    """What answers a check meeting none of ``passed`` (a pin rule and the weighted rule, for the
    address it is sent from): the listener's default action, said with where it sends it, when no
    other rule of ``rules`` may meet any of the checks (``_meets_no_check``, or a condition on
    ``name`` another value); else "another rule or the listener's default action"."""
    others = [r for r in rules if not r.get("IsDefault") and r not in passed and _name_may_match(r, name, value)
              and not _meets_no_check(r, name, checks)]
    default = next((r for r in rules if r.get("IsDefault")), None)
    if others or default is None:
        return "another rule or the listener's default action"
    if _forwarded(default):
        return f"the listener's default action, which sends it to {_unheaded_goes(default, weighted, canary_arn)}"
    kinds = ", ".join(str(a.get("Type")) for a in default.get("Actions", []))
    return "the listener's default action" + (f" ({kinds})" if kinds else "")


def _checks_miss(rule: Mapping[str, Any], checks: Sequence[CheckRequest]) -> list[tuple[str, bool]]:
    """``_misses`` of ``rule`` judged by the checks' requests: each of its conditions, its
    http-header ones apart, that some check's request may fail (``_condition_reaches``), with whether
    one is known to. Judged by the weighted rule's requests, a pin on /health and /sessions* under
    a weighted rule on /* was refused though every check meets it."""
    said: list[tuple[str, bool]] = []
    for condition in rule.get("Conditions", []):
        field = str(condition.get("Field"))
        if field == "http-header":
            continue
        reaches = [_condition_reaches({"Conditions": [condition]}, check) for check in checks]
        # A field ``_reach`` does not read is not known to let any of them by.
        met = [reach[0] if reach else (_MAYBE, []) for reach in reaches]
        least = min(m for m, _ in met)
        if least == _SURELY:
            continue
        values = f" ({_said(condition)})" if field in (*_PATTERNED, "http-request-method") else ""
        why = list(dict.fromkeys(w for m, whys in met if m == _MAYBE for w in whys))
        may = least == _MAYBE
        said.append((f"a {field} condition{values} that {'may' if may else 'does'} not match every one of the checks' "
                     f"requests" + (f" ({'; '.join(why)})" if may and why else ""), not may))
    return said


def _narrowing(rule: Mapping[str, Any], weighted: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``rule``'s conditions, its http-header ones apart, that some request ``weighted`` matches may
    fail (``_misses``' conditions): neither one of ``weighted``'s own nor a path-pattern or
    host-header matching all of its (``_matched``)."""
    own = {_condition_key(c) for c in weighted.get("Conditions", [])}
    return [condition for condition in rule.get("Conditions", [])
            if condition.get("Field") != "http-header" and _condition_key(condition) not in own
            and not _sources_cover(condition, weighted)
            and not (condition.get("Field") in _PATTERNED
                     and any(_covers(condition, c) for c in _matched(str(condition.get("Field")), weighted)))]


def _matched(field: str, weighted: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``weighted``'s conditions on ``field``, a request it matches meeting each; with no
    path-pattern, ``_EVERY_PATH``: it matches every path, and one on /* narrows nothing; with no
    host-header, ``_EVERY_HOST``: one on * narrows none of the checks' requests."""
    theirs = [c for c in weighted.get("Conditions", []) if c.get("Field") == field]
    return theirs or [{"path-pattern": _EVERY_PATH, "host-header": _EVERY_HOST}[field]]


def _pinned_together(header_rules: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any], name: str, value: str,
                     canary_arn: str, checks: Sequence[CheckRequest] = ()) -> list[Mapping[str, Any]]:
    """Pin rules of ``header_rules`` (``_header_rules_ahead``'s, in priority order), each on part of
    ``weighted``'s requests, that together meet every one carrying ``name: value`` first (one per
    host of the weighted rule's); empty when none are known to, or one rule alone does (``find_pin``
    says that one).

    The checks' requests known (``checks``), judged by theirs instead (``_checks_pinned_together``),
    as each pin rule is (``_misses``).

    Sound, not complete. Read in order, as a load balancer does, up to the first rule that is no
    pin rule (it may send those left elsewhere). A pin rule whose header is surely met and which
    narrows the weighted rule's requests by one path-pattern or host-header alone (``_narrowing``)
    is counted by its values that share a text with the weighted rule's there (not its regular
    expressions, nor values those counted ahead of it already match: it would meet none of them
    first), when it has any; once the values of those counted on
    one field, as one condition, match all of the weighted rule's there (``_covers``), they are
    taken: a request the weighted rule matches meets
    each one's other conditions and one of their values on that field, so one of them, and every
    rule ahead of that one it may meet is a pin rule too. Any other pin rule pins those it meets
    (or may) and lets the rest by."""
    if checks:
        return _checks_pinned_together(header_rules, name, value, canary_arn, checks)
    counted: dict[str, list[tuple[Mapping[str, Any], list[str]]]] = {}  # field -> (rule, values counted)
    for rule in header_rules:
        if not is_pin_rule(rule, canary_arn):
            return []
        narrowing = _narrowing(rule, weighted)
        met = _header_met(rule, name, value)
        if met and not narrowing:
            return []  # it alone meets every one
        # One narrowing by regular expressions alone adds no value to the union: named among them, it
        # was said to be on part of the weighted rule's requests, which is not known.
        if not met or len(narrowing) != 1 or narrowing[0].get("Field") not in _PATTERNED or not _values(narrowing[0]):
            continue
        field = str(narrowing[0].get("Field"))
        theirs = _matched(field, weighted)
        # Its values on some of the weighted rule's: beside a regular expression (a condition may
        # hold both), values on none of them were named "on part of the weighted rule's requests",
        # which only the regular expression, not compared, may be.
        fold = str.lower if field == "host-header" else str
        on_theirs = [v for v in _values(narrowing[0])
                     if any(_patterns_meet(_wild(fold(v)), _wild(fold(w))) for c in theirs for w in _values(c))]
        members = counted.setdefault(field, [])
        counted_so_far = {"Field": field, "Values": [v for _, values in members for v in values]}
        # One whose values those counted ahead of it already match (the same host again) meets none
        # of them first: named, it was said to be on part of them.
        if not on_theirs or _covers(counted_so_far, {"Field": field, "Values": on_theirs}):
            continue
        members.append((rule, on_theirs))
        union = {"Field": field, "Values": [v for _, values in members for v in values]}
        if any(_covers(union, c) for c in theirs):
            return [member for member, _ in members]
    return []


def _checks_pinned_together(header_rules: Sequence[Mapping[str, Any]], name: str, value: str, canary_arn: str,
                            checks: Sequence[CheckRequest]) -> list[Mapping[str, Any]]:
    """``_pinned_together`` judged by the checks' requests: pin rules of ``header_rules``, in
    priority order, each the first surely meeting some of them (its header surely met, its other
    conditions by ``_reach``), that together surely meet every one; empty when one alone does
    (``_found`` takes it) or none are known to. Read up to the first rule that is no pin rule, as
    ``_pinned_together``: every rule ahead of one of them that may meet a check sends it to the
    canary group alone too. Judged by the weighted rule's requests, a pin on /health beside one on
    /sessions*, which every check meets one of, was refused."""
    members: list[Mapping[str, Any]] = []
    left = list(checks)
    for rule in header_rules:
        if not is_pin_rule(rule, canary_arn):
            return []
        if not _header_met(rule, name, value):
            continue  # by a regular expression: those it meets reach the canary group all the same
        met = [check for check in checks if _reach(rule, check) == _SURELY]
        if len(met) == len(checks):
            return []  # it alone meets every one
        if any(check in left for check in met):
            members.append(rule)
            left = [check for check in left if check not in met]
        if not left:
            return members
    return []


_PATTERNED = ("path-pattern", "host-header")
"""The conditions whose values are patterns (``*``, ``?``), told wider or not by ``_covers``."""

_EVERY_PATH = {"Field": "path-pattern", "Values": ["/*"]}
"""The paths a rule with no path-pattern condition matches: every one, each beginning with ``/``
(a load balancer compares the path of the request's URL, its query string apart; the checks'
URLs are sent by httpx, an empty path as ``/``). Covered by ``/*``, ``*`` or ``*/*`` (``_covers``),
not by ``/?*``, which misses ``/``: patterns are case-sensitive, ``*`` any characters or none."""

_EVERY_HOST = {"Field": "host-header", "Values": ["*"]}
"""The hosts of the checks' requests a rule with no host-header condition matches: every one.
Each carries the Host of its URL (httpx writes it), which * matches; a request with no Host header
(HTTP/1.0), which misses even *, is never one of them. Read as possibly theirs, a pin on * was refused
as missing some and its author told to widen it to the condition it had."""


def _config(condition: Mapping[str, Any]) -> Mapping[str, Any]:
    """A condition's ``...Config`` (``PathPatternConfig``...), empty when DescribeRules gave none."""
    return next((v for k, v in condition.items() if k.endswith("Config")), None) or {}


def _values(condition: Mapping[str, Any], key: str = "Values") -> list[str]:
    """A condition's values (``key``: or its ``RegexValues``), whichever form DescribeRules gives
    them in (at the top or in its ``...Config``)."""
    return [str(v) for v in (_config(condition).get(key) or condition.get(key) or [])]


def _regexes(condition: Mapping[str, Any]) -> list[str]:
    """A path-pattern's, host-header's or http-header's regular expressions (``RegexValues``)."""
    return _values(condition, "RegexValues")


def _said_values(condition: Mapping[str, Any]) -> str:
    """A condition's values, on one line, as a text names them."""
    return on_one_line(", ".join(_values(condition)))


def _said(condition: Mapping[str, Any]) -> str:
    """A patterned condition's values as a refusal names them, its regular expressions as ``regex ...``."""
    return on_one_line(", ".join([*_values(condition), *(f"regex {r}" for r in _regexes(condition))]))


def _covers(wide: Mapping[str, Any], narrow: Mapping[str, Any]) -> bool:
    """Whether every request ``narrow`` (a condition of the same field) matches, ``wide`` matches:
    each of ``narrow``'s values is matched by one of ``wide``'s as a pattern over patterns
    (``_pattern_covers``). Host headers without regard to case, as a load balancer matches them.
    ``narrow`` given as regular expressions (``RegexValues``, no ``Values``) is never covered: "every
    one of its values" was every one of none, and a pin on ``/api/*`` was taken ahead of a weighted
    rule matching ``^/edit/.*``. ``wide``'s own regular expressions only widen it: unread, it is
    refused at worst."""
    if _regexes(narrow) or not _values(narrow):
        return False
    fold = str.lower if wide.get("Field") == "host-header" else str
    return all(any(_pattern_covers(fold(w), _wild(fold(n))) for w in _values(wide)) for n in _values(narrow))


def _apart(rule: Mapping[str, Any], weighted: Mapping[str, Any]) -> bool:
    """Whether no request ``weighted`` matches meets ``rule``: a path-pattern or host-header of
    ``rule``'s none of whose values shares a text with any of ``weighted``'s same condition
    (another service's pin on ``/api/*`` beside a weighted rule on ``/edit/*``). Sound, not
    complete: regular expressions and other fields are never told apart."""
    for condition in rule.get("Conditions", []):
        field = condition.get("Field")
        if field not in _PATTERNED or _regexes(condition):
            continue
        fold = str.lower if field == "host-header" else str
        for theirs in (c for c in weighted.get("Conditions", []) if c.get("Field") == field):
            if not _regexes(theirs) and not any(_patterns_meet(_wild(fold(a)), _wild(fold(b)))
                                                for a in _values(condition) for b in _values(theirs)):
                return True
    return False


_ANY, _ONE = object(), object()
"""A pattern's ``*`` (any characters) and ``?`` (one), as ``_wild`` reads them: apart from the
characters, so that a request's own ``*`` (``_sent``) is one."""


def _wild(pattern: str) -> list[Any]:
    """A rule's pattern as ``_pattern_covers`` and ``_patterns_meet`` read it: ``*`` as ``_ANY``,
    ``?`` as ``_ONE``, every other character itself."""
    return [_ANY if c == "*" else _ONE if c == "?" else c for c in pattern]


def _patterns_meet(a: Sequence[Any], b: Sequence[Any]) -> bool:
    """Whether some text matches both patterns (``_wild``'s or ``_sent``'s; ``_ANY``: any characters,
    ``_ONE``: one): read side by side, an ``_ANY`` reading each character and staying, or reading none."""
    seen: set[tuple[int, int]] = set()
    todo = [(0, 0)]
    while todo:
        i, j = todo.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] is _ANY:
            todo.append((i + 1, j))
        if j < len(b) and b[j] is _ANY:
            todo.append((i, j + 1))
        if i < len(a) and j < len(b) and (a[i] is _ANY or a[i] is _ONE or b[j] is _ANY or b[j] is _ONE
                                          or a[i] == b[j]):
            todo.append((i if a[i] is _ANY else i + 1, j if b[j] is _ANY else j + 1))
    return False


def _pattern_covers(wide: str | Sequence[Any], narrow: Sequence[Any]) -> bool:
    """Whether every text the pattern ``narrow`` (``_wild``'s or ``_sent``'s) matches, the pattern
    ``wide`` matches (``*``: any characters, ``?``: one; or read already, ``_query_pattern``'s).
    ``narrow``'s wildcards are met only by what matches anything they may stand for: its ``_ANY``
    by a ``*`` of ``wide``, its ``_ONE`` by a ``?`` or a ``*``. Sound, not complete: a pattern this does not prove wider is refused, never a
    narrower one taken."""
    ends: set[int] = {0}  # how much of ``narrow`` the part of ``wide`` read so far can stand for
    for w in _wild(wide) if isinstance(wide, str) else wide:
        if w is _ANY:
            ends = set(range(min(ends), len(narrow) + 1)) if ends else ends
        else:
            ends = {i + 1 for i in ends
                    if i < len(narrow) and (narrow[i] == w if w is not _ONE else narrow[i] is not _ANY)}
    return len(narrow) in ends


def _header_matches(condition: Mapping[str, Any], name: str, value: str) -> bool:
    config = condition.get("HttpHeaderConfig", {})
    if _header_name(condition).lower() != name.lower():
        return False
    return any(re.fullmatch("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
                            value, re.IGNORECASE | re.DOTALL)
               for pattern in config.get("Values", []))


def _condition_key(condition: Mapping[str, Any]) -> str:
    """A condition as one comparable text: its field and its values, whichever form DescribeRules
    gives them in (``Values`` or the field's own ``...Config``)."""
    field = condition.get("Field")
    config = _config(condition)
    if field in _PATTERNED:
        # Host headers match without regard to case on a load balancer; paths do not. Regular
        # expressions are kept as given: left out, any two (^/api/.* and ^/edit/.*) were one.
        config = {"Values": sorted(v.lower() if field == "host-header" else v for v in _values(condition)),
                  "RegexValues": sorted(_regexes(condition))}
    return json.dumps([field, config], sort_keys=True, default=str)


def _forwarded(rule: Mapping[str, Any]) -> dict[str, int]:
    """Target group ARN -> weight of a rule's forward action (empty if it does not forward)."""
    from rollway.aws.elbv2 import _forward_weights  # one reading of a forward action, the router's

    return _forward_weights(dict(rule))
