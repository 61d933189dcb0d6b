"""Which listener rule pins the validation's HTTP checks to the canary target group (rollway.pinning), table-driven."""

from __future__ import annotations

import pydantic
import pytest

from rollway.pinning import SESSION_ID, CheckRequest, Pin, Unpinned, find_pin, is_pin_rule
from rollway.validation import CheckResult, ValidationSpec, check_requests, http_reach, pinned, validation_seconds

STABLE, CANARY, OTHER = "arn:tg/stable", "arn:tg/canary", "arn:tg/other"
PATH = {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}
HOST = {"Field": "host-header", "Values": ["API.example.com"]}


def header(*values: str, name: str = "X-Rollway-Target") -> dict:
    return {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": name, "Values": list(values)}}


def rule(arn: str, priority: str, conditions: list, *groups: str) -> dict:
    forward = {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": g, "Weight": 1} for g in groups]}}
    return {"RuleArn": arn, "Priority": priority, "Conditions": conditions, "Actions": [forward], "IsDefault": False}


WEIGHTED = rule("weighted", "10", [PATH, {**HOST, "HostHeaderConfig": {"Values": ["api.example.com"]}}],
                STABLE, CANARY)
DEFAULT = {"RuleArn": "default", "Priority": "default", "Conditions": [], "Actions": [], "IsDefault": True}


def found(*rules: dict, sent: str = "X-Rollway-Target: canary") -> Pin | str:
    return find_pin([*rules, WEIGHTED, DEFAULT], header=sent, weighted_arn="weighted", canary_arn=CANARY,
                    canary_group="canary-tg")


@pytest.mark.parametrize("conditions", [
    [header("canary")],                # the header alone: every path and host
    [header("CAN?RY"), PATH],          # wildcards, without regard to case; one of the weighted rule's conditions
    [header("canary"), HOST, PATH],    # the host as DescribeRules may give it, in its other form and case
])
def test_a_header_rule_ahead_of_the_weighted_one_forwarding_to_the_canary_alone_pins(conditions):
    pin = found(rule("pin", "5", conditions, CANARY))
    assert isinstance(pin, Pin), pin
    assert pin.said() == ("pinned to target group canary-tg by header `X-Rollway-Target: canary` (rule pin, priority "
                          "5, ahead of the weighted rule's 10)")


@pytest.mark.parametrize("rules, why", [
    ((), "no listener rule ahead of the weighted rule weighted (priority 10) sends requests carrying "
         "`X-Rollway-Target: canary` anywhere: create one"),
    ((rule("pin", "11", [header("canary")], CANARY),), "no listener rule ahead"),      # evaluated after it
    ((rule("pin", "5", [header("stable")], CANARY),), "no listener rule ahead"),       # another value
    ((rule("pin", "5", [header("canary", name="X-Other")], CANARY),), "no listener rule ahead"),
    # A path the weighted rule does not have: not every request it matches would meet the pin rule.
    ((rule("pin", "5", [header("canary"), {"Field": "path-pattern", "Values": ["/api/*"]}], CANARY),),
     "no listener rule ahead"),
    ((rule("pin", "5", [header("canary")], STABLE),), "rule pin (priority 5) meets requests carrying "
                                                      "`X-Rollway-Target: canary` first, and sends them to arn:tg/stable"),
    ((rule("pin", "5", [header("canary")], CANARY, OTHER),), "sends them to arn:tg/canary, arn:tg/other, not to"),
    # The first rule met decides: a later one forwarding to the canary does not pin past it.
    ((rule("first", "3", [header("c*")], STABLE), rule("pin", "5", [header("canary")], CANARY)), "rule first"),
])
def test_a_header_the_rules_do_not_pin_to_the_canary_alone_is_said_with_the_rule_to_create(rules, why):
    said = found(*rules)
    assert isinstance(said, str) and why in said, said


def test_only_a_header_rule_forwarding_to_the_canary_alone_is_a_pin_rule():
    assert is_pin_rule(rule("pin", "5", [header("canary"), PATH], CANARY), CANARY)
    assert not is_pin_rule(rule("w", "10", [header("canary"), PATH], STABLE, CANARY), CANARY)  # names both
    assert not is_pin_rule(rule("w", "10", [PATH], CANARY), CANARY)  # no header condition


def test_a_check_pinned_says_its_target_group_and_one_not_pinned_says_nothing_of_one():
    result = CheckResult(name="health", outcome="passed", reason="HTTP 200 from GET https://x/health")
    pin = found(rule("pin", "5", [header("canary")], CANARY))
    assert pinned(result, None) == result
    said = pinned(result, pin)
    assert said.pinned_to == "canary-tg" and said.reason == f"HTTP 200 from GET https://x/health; {pin.said()}"
    assert http_reach({"svc": 95, "svc-canary": 5}, pin).endswith(f"was {pin.said()}, whatever the weights.")
    assert "which one is not known" in http_reach({"svc": 95, "svc-canary": 5})


@pytest.mark.parametrize("value, said", [
    ("X-Rollway-Target", "must be 'Name: value'"),
    ("X-Rollway-Target:  ", "must be 'Name: value'"),
    ("Host: canary", "other than Host"),
    ("X Target: canary", "must be an HTTP header name"),
    ("X-" + "a" * 40 + ": canary", "of at most 40"),
    ("X-Rollway-Target: can*", "without * or ?"),
    ("X-Rollway-Target: canäry", "printable ASCII"),
])
def test_a_canary_header_no_rule_could_match_is_refused_when_the_spec_is_built(value, said):
    with pytest.raises(pydantic.ValidationError, match=None) as refused:
        ValidationSpec(canary_header=value)
    assert said in str(refused.value), str(refused.value)


def test_a_canary_header_is_kept_as_sent():
    assert ValidationSpec(canary_header=" X-Rollway-Target :canary ").canary_header == "X-Rollway-Target: canary"
    assert ValidationSpec().canary_header is None


def test_the_whole_validation_bound_counts_the_read_of_the_listeners_rules_when_pinned():
    # The run's first line said the same "about 5 min 40 s" with a fourth read of up to timeout_seconds.
    plain = validation_seconds(ValidationSpec(timeout_seconds=30))
    assert validation_seconds(ValidationSpec(timeout_seconds=30, canary_header="X-Rollway-Target: canary")) == plain + 30


def test_a_header_rule_also_naming_the_stable_group_at_weight_0_is_no_pin_as_a_rollout_would_take_it_for_weighted():
    """Accepted as the pin, while a rollout, which skips only a rule naming the canary group alone,
    took it for a second weighted rule on the path: refused, or shifted in place of the real one."""
    both = rule("pin", "5", [header("canary")], CANARY, STABLE)
    both["Actions"][0]["ForwardConfig"]["TargetGroups"][1]["Weight"] = 0
    said = found(both)
    assert isinstance(said, str), said
    assert ("rule pin (priority 5) meets requests carrying `X-Rollway-Target: canary` first, and sends them to "
            "arn:tg/canary (and names arn:tg/stable at weight 0, as a weighted rule does), not to the canary target "
            "group canary-tg alone") in said, said
    assert not is_pin_rule(both, CANARY)
    # The canary named alone, at weight 0, sends the requests nowhere: neither a pin nor skipped as one.
    idle = rule("pin", "5", [header("canary")], CANARY)
    idle["Actions"][0]["ForwardConfig"]["TargetGroups"][0]["Weight"] = 0
    assert "sends them to no target group" in found(idle) and not is_pin_rule(idle, CANARY)


def test_a_header_rule_ahead_with_conditions_of_its_own_is_named_not_said_to_be_missing():
    """It was said that no rule sends the requests anywhere, while one matching the header stood
    ahead of the weighted rule: a reader looked for a rule to create and found it there."""
    said = found(rule("pin", "5", [header("canary"), {"Field": "path-pattern", "Values": ["/api/*"]}], CANARY))
    assert isinstance(said, str) and "anywhere" not in said, said
    assert said.startswith("no listener rule ahead of the weighted rule weighted (priority 10) meets every request it "
                           "matches carrying `X-Rollway-Target: canary`: rule pin (priority 5) matches the header with "
                           "a path-pattern condition (/api/*) that does not match every request the weighted rule's "
                           "(path-pattern /*) matches, and sends those it meets to canary-tg alone, so some of them "
                           "may pass it by: give it the weighted rule's own "
                           "conditions, wider ones (a path-pattern or host-header matching all of the weighted rule's), "
                           "or none, or create one"), said


EDIT = {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/edit/*"]}}
EDIT_WEIGHTED = rule("weighted", "10", [EDIT], STABLE, CANARY)


def found_on_edit(*rules: dict) -> Pin | str:
    return find_pin([*rules, EDIT_WEIGHTED, DEFAULT], header="X-Rollway-Target: canary", weighted_arn="weighted",
                    canary_arn=CANARY, canary_group="canary-tg")


def path(*values: str) -> dict:
    return {"Field": "path-pattern", "PathPatternConfig": {"Values": list(values)}}


@pytest.mark.parametrize("wider", [
    path("/*"),                # every path: /edit/* among them
    path("/ed*"),
    path("/edit/*"),           # the weighted rule's own
    path("/api/*", "/edit*"),  # one of its values covers the weighted rule's
    {"Field": "path-pattern", "Values": ["*"]},
])
def test_a_pin_rule_whose_path_matches_every_path_of_the_weighted_rule_pins(wider):
    """A pin on /* ahead of a weighted rule on /edit/* was refused ("some of them may pass it by"),
    though every request the weighted rule matches, carrying the header, matches it."""
    pin = found_on_edit(rule("pin", "5", [header("canary"), wider], CANARY))
    assert isinstance(pin, Pin), pin


@pytest.mark.parametrize("narrower, paths", [
    (path("/edit/a*"), "/edit/a*"),    # /edit/b is the weighted rule's, not the pin's
    (path("/api/*"), "/api/*"),
    (path("/Edit/*"), "/Edit/*"),      # paths match with regard to case
    (path("/edit/?*"), "/edit/?*"),    # /edit/ itself is the weighted rule's
])
def test_a_pin_rule_whose_path_misses_some_of_the_weighted_rules_is_refused_saying_which_paths(narrower, paths):
    said = found_on_edit(rule("pin", "5", [header("canary"), narrower], CANARY))
    assert isinstance(said, str), said
    assert (f"rule pin (priority 5) matches the header with a path-pattern condition ({paths}) that does not match "
            "every request the weighted rule's (path-pattern /edit/*) matches, and sends those it meets to canary-tg "
            "alone, so some of them may pass it by") in said, said


def test_a_pin_rule_on_a_condition_the_weighted_rule_has_none_of_is_refused_saying_so():
    said = found_on_edit(rule("pin", "5", [header("canary"), HOST], CANARY))
    assert isinstance(said, str) and "a host-header condition the weighted rule does not have" in said, said
    # A host wider than the weighted rule's, without regard to case, pins.
    assert isinstance(found(rule("pin", "5", [header("canary"), {"Field": "host-header", "Values": ["*.EXAMPLE.com"]}],
                                 CANARY)), Pin)


REGEX_EDIT = {"Field": "path-pattern", "PathPatternConfig": {"RegexValues": ["^/edit/.*"]}}


@pytest.mark.parametrize("pin_path", [
    path("/api/*"),                                                       # no path of the weighted rule's
    {"Field": "path-pattern", "PathPatternConfig": {"RegexValues": ["^/api/.*"]}},
    {"Field": "path-pattern", "RegexValues": ["^/api/.*"]},
])
def test_a_pin_rule_is_not_taken_for_one_covering_a_weighted_rule_whose_path_is_a_regular_expression(pin_path):
    """A weighted rule's path-pattern given as RegexValues has no Values: the pin's /api/* was said
    to match every one of its (none), and a pin on ^/api/.* was taken for the weighted rule's own
    condition, both pinning the checks while requests to /edit/... carrying the header met the
    weighted rule, and its 95/5 split, instead."""
    weighted = rule("weighted", "10", [REGEX_EDIT], STABLE, CANARY)
    said = find_pin([rule("pin", "5", [header("canary"), pin_path], CANARY), weighted, DEFAULT],
                    header="X-Rollway-Target: canary", weighted_arn="weighted", canary_arn=CANARY,
                    canary_group="canary-tg")
    assert isinstance(said, str), said
    assert ("that may not match every request the weighted rule's (path-pattern regex ^/edit/.*) matches "
            "(regular expressions are not compared), and sends those it meets to canary-tg alone, so some of them "
            "may pass it by") in said, said


def test_a_pin_rule_with_the_weighted_rules_own_regular_expression_pins():
    weighted = rule("weighted", "10", [REGEX_EDIT], STABLE, CANARY)
    pin = find_pin([rule("pin", "5", [header("canary"), dict(REGEX_EDIT)], CANARY), weighted, DEFAULT],
                   header="X-Rollway-Target: canary", weighted_arn="weighted", canary_arn=CANARY,
                   canary_group="canary-tg")
    assert isinstance(pin, Pin), pin


@pytest.mark.parametrize("ahead", [
    rule("admin", "3", [header("canary"), path("/edit/admin/*")], STABLE),  # some of /edit/* first, to stable
    rule("admin", "3", [header("canary"), path("/e?it/?", "/api/*")], STABLE, CANARY),
    rule("admin", "3", [header("canary"), {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}],
         STABLE),
])
def test_a_header_rule_ahead_of_the_pin_taking_some_of_the_weighted_rules_requests_elsewhere_is_refused(ahead):
    """A rule matching the header on part of the weighted rule's requests (/edit/admin/...), ahead of
    the pin and forwarding to the stable group, was passed over: the pin was said to hold every
    check while those requests met that rule first and reached the old version."""
    said = found_on_edit(ahead, rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, str), said
    assert said.startswith("rule admin (priority 3) matches requests carrying `X-Rollway-Target: canary` ahead of "
                           "rule pin (priority 5), the one pinning them, and sends those it meets among the weighted "
                           "rule's to "), said


@pytest.mark.parametrize("ahead", [
    rule("other", "3", [header("canary"), path("/api/*")], OTHER),        # another service's pin: no path of /edit/*
    rule("other", "3", [header("canary"), path("/edit")], OTHER),
    rule("other", "3", [header("canary"), {"Field": "host-header", "Values": ["api.example.com"]}, path("/x*")],
         OTHER),
    rule("narrow", "3", [header("canary"), path("/edit/a*")], CANARY),    # the canary alone: pinned all the same
])
def test_a_header_rule_ahead_of_the_pin_on_none_of_the_weighted_rules_requests_leaves_the_pin(ahead):
    pin = found_on_edit(ahead, rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(pin, Pin) and pin.rule_arn == "pin", pin


def test_a_header_rule_ahead_of_the_pin_matching_the_header_by_a_regular_expression_is_refused_as_may_match():
    """Its condition's RegexValues were not read: it matched nothing, and the pin was said to hold
    every check while requests carrying the header met it first, forwarded to the stable group."""
    regex = {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "x-rollway-target", "RegexValues": ["^can"]}}
    said = found_on_edit(rule("regex", "3", [regex], STABLE), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, str), said
    assert said.startswith("rule regex (priority 3) may match requests carrying `X-Rollway-Target: canary` (by a "
                           "regular expression on X-Rollway-Target, ^can, not compared) ahead of rule pin (priority 5)"), said
    # On another header the checks send, it may meet them too; on one they never send, or on paths apart
    # from the weighted rule's, it leaves the pin.
    other = {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "User-Agent", "RegexValues": ["^rollway"]}}
    said = found_on_edit(rule("regex", "3", [other], STABLE), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, Unpinned) and said.unknown == (
        "which of them rule regex (priority 3) meets, by headers other than X-Rollway-Target, whose values on the "
        "checks' requests are not compared"), said
    other = {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Other", "RegexValues": ["^can"]}}
    assert isinstance(found_on_edit(rule("regex", "3", [other], STABLE),
                                    rule("pin", "5", [header("canary")], CANARY)), Pin)
    assert isinstance(found_on_edit(rule("regex", "3", [regex, path("/api/*")], STABLE),
                                    rule("pin", "5", [header("canary")], CANARY)), Pin)


def regex_header(*regexes: str, name: str = "X-Rollway-Target") -> dict:
    return {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": name, "RegexValues": list(regexes)}}


def test_a_pin_rule_matching_the_header_by_a_regular_expression_is_refused_as_not_compared_not_said_missing():
    """A rule forwarding to the canary alone whose header condition is a regular expression was read
    as matching nothing: the checks were refused with "no listener rule ... sends requests carrying
    `X-Rollway-Target: canary` anywhere: create one", and a person went to make the rule they had."""
    said = found(rule("pin", "5", [regex_header("^canary$")], CANARY))
    assert isinstance(said, str), said
    assert "anywhere" not in said, said
    assert said.startswith("rule pin (priority 5) matches the header X-Rollway-Target by a regular expression "
                           "(^canary$), which is not compared with `canary`, so whether it meets requests carrying "
                           "`X-Rollway-Target: canary` is not known, though it forwards to canary-tg alone: give its "
                           "http-header condition the value canary (Values: the value, or a pattern with * and ?) in "
                           "place of the regular expression, or create one on the weighted rule's listener"), said


def test_a_rule_matching_the_header_by_a_regular_expression_and_forwarding_elsewhere_says_where():
    said = found(rule("regex", "5", [regex_header("^can")], STABLE))
    assert isinstance(said, str) and "anywhere" not in said, said
    assert ("rule regex (priority 5) matches the header X-Rollway-Target by a regular expression (^can), which is "
            "not compared with `canary`, so whether it meets requests carrying `X-Rollway-Target: canary` is not "
            "known, and it sends those it meets to arn:tg/stable, not to the canary target group canary-tg alone: "
            "create one") in said, said
    # On another header, behind the weighted rule, or on paths apart from the weighted rule's, it is not the one.
    for apart in (rule("regex", "5", [regex_header("^can", name="X-Other")], CANARY),
                  rule("regex", "11", [regex_header("^can")], CANARY)):
        assert "sends requests carrying `X-Rollway-Target: canary` anywhere" in found(apart)
    assert "anywhere" in found_on_edit(rule("regex", "5", [regex_header("^can"), path("/api/*")], CANARY))


def test_a_regex_pin_rule_on_part_of_the_weighted_rules_paths_is_told_to_widen_them_too():
    """A pin rule matching the header by a regular expression, on /edit/admin/* of the weighted rule's
    /edit/*, was told only to give its header the value: done, it was refused again for its path."""
    said = found_on_edit(rule("pin", "5", [regex_header("^canary$"), path("/edit/admin/*")], CANARY))
    assert isinstance(said, str), said
    assert ("give its http-header condition the value canary (Values: the value, or a pattern with * and ?) in place "
            "of the regular expression, and, as it also has a path-pattern condition (/edit/admin/*) that does not "
            "match every request the weighted rule's (path-pattern /edit/*) matches, give it the weighted rule's own "
            "conditions, wider ones (a path-pattern or host-header matching all of the weighted rule's), or none, "
            "or create one") in said, said
    # Both done, it pins.
    assert isinstance(found_on_edit(rule("pin", "5", [header("canary"), path("/edit/*")], CANARY)), Pin)


@pytest.mark.parametrize("elsewhere", [
    rule("regex", "5", [regex_header("^can")], STABLE),   # may meet them, by a regular expression
    rule("regex", "5", [header("canary")], STABLE),       # meets them all first
])
def test_a_rule_sending_the_header_elsewhere_asks_for_the_new_pin_ahead_of_it(elsewhere):
    """The rule to create was asked "below the weighted rule's 10": made at 7, behind the rule at 5
    sending the header elsewhere, it was refused for that rule meeting the requests first."""
    said = found(elsewhere)
    assert isinstance(said, str) and "create one on the weighted rule's listener with a priority number below 5," in said, said
    assert isinstance(found(elsewhere, rule("new", "4", [header("canary")], CANARY)), Pin)


def test_a_regex_header_rule_ahead_of_the_pin_is_named_with_its_regular_expression_and_how_to_make_it_compared():
    said = found_on_edit(rule("regex", "3", [regex_header("^beta$")], STABLE), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, str), said
    assert said.startswith("rule regex (priority 3) may match requests carrying `X-Rollway-Target: canary` (by a "
                           "regular expression on X-Rollway-Target, ^beta$, not compared) ahead of rule pin"), said
    assert said.endswith("or give it a priority number above 5; or, if that regular expression cannot match `canary`, "
                         "give its http-header condition Values (patterns with * and ?) that do not match it in place "
                         "of the regular expression"), said
    assert isinstance(found_on_edit(rule("regex", "3", [header("beta")], STABLE),
                                    rule("pin", "5", [header("canary")], CANARY)), Pin)


def test_two_rules_each_on_part_of_the_weighted_rules_requests_are_each_said_with_where_they_send_them():
    """Two header rules on parts of /edit/*, one to the stable group, one to the canary: only the first
    was named, and the pin rule was not said to exist."""
    said = found_on_edit(rule("admin", "3", [header("canary"), path("/edit/admin/*")], STABLE),
                         rule("pin", "4", [header("canary"), path("/edit/a*")], CANARY))
    assert isinstance(said, str), said
    assert ("rule admin (priority 3) matches the header with a path-pattern condition (/edit/admin/*) that does not "
            "match every request the weighted rule's (path-pattern /edit/*) matches, and sends those it meets to "
            "arn:tg/stable; rule pin (priority 4) matches the header with a path-pattern condition (/edit/a*) that "
            "does not match every request the weighted rule's (path-pattern /edit/*) matches, and sends those it "
            "meets to canary-tg alone, so some of them may pass them all by: give rule pin a priority number below 3 "
            "and the weighted rule's own conditions, wider ones (a path-pattern or host-header matching all of the "
            "weighted rule's), or none, or create one on the weighted rule's listener with a priority number below 3,"
            ) in said, said
    assert isinstance(found_on_edit(rule("admin", "3", [header("canary"), path("/edit/admin/*")], STABLE),
                                    rule("pin", "2", [header("canary"), path("/edit/*")], CANARY)), Pin)


@pytest.mark.parametrize("rules", [
    # The first rule meeting them all sends them to the stable group; one on /edit/admin/* ahead of it does too.
    (rule("admin", "3", [header("canary"), path("/edit/admin/*")], STABLE),
     rule("first", "5", [header("canary")], STABLE)),
    # The first rule that may meet them is a pin by a regular expression; one behind it, ahead of the weighted
    # rule, may send them to the stable group.
    (rule("admin", "3", [regex_header("^canary$")], CANARY), rule("regex", "5", [regex_header("^can")], STABLE)),
])
def test_the_rule_to_create_is_asked_ahead_of_every_rule_that_may_send_the_header_elsewhere(rules):
    """Asked below the first rule sending them elsewhere, or below the weighted rule, the new rule was
    made behind another rule sending some of them elsewhere, and refused for that rule."""
    said = found_on_edit(*rules)
    assert isinstance(said, str) and "create one on the weighted rule's listener with a priority number below " in said
    below = said.split("with a priority number below ")[-1].split(",")[0]
    made = rule("new", str(int(below) - 1), [header("canary")], CANARY)
    assert isinstance(found_on_edit(*rules, made), Pin), (said, found_on_edit(*rules, made))


def test_another_services_header_rule_on_paths_apart_from_the_weighted_rules_is_not_said_to_be_changed():
    """Another service's rule on /api/*, forwarding to its own group, meets none of the weighted rule's
    /edit/* requests: with no pin, a person was told to give it the weighted rule's conditions and make
    it forward to this service's canary group, taking that service's requests."""
    other = rule("other", "3", [header("canary"), path("/api/*")], OTHER)
    said = found_on_edit(other)
    assert said == ("no listener rule ahead of the weighted rule weighted (priority 10) sends requests carrying "
                    "`X-Rollway-Target: canary` anywhere: create one on the weighted rule's listener with a priority "
                    "number below 10, the http-header condition X-Rollway-Target = canary beside the weighted rule's "
                    "own conditions (or none), and one action forwarding to canary-tg alone; or clear "
                    "spec.canary_header"), said
    # Beside a pin of this service's on part of /edit/*, only that one is named.
    said = found_on_edit(other, rule("pin", "5", [header("canary"), path("/edit/a*")], CANARY))
    assert isinstance(said, str) and "rule pin (priority 5)" in said and "rule other" not in said, said


@pytest.mark.parametrize("admin, meets", [
    (rule("admin", "3", [header("canary"), path("/edit/admin/*")], STABLE), "meets"),
    (rule("admin", "3", [regex_header("^can")], STABLE), "may meet (by a regular expression on X-Rollway-Target, ^can, "
                                                         "not compared)"),
])
def test_a_rule_sending_them_all_elsewhere_behind_one_taking_some_first_names_both(admin, meets):
    """Said to meet them "first" and told only to forward to the canary alone, the rule at 5 was
    changed so, and the checks refused again for the rule at 3 ahead of it, never named."""
    said = found_on_edit(admin, rule("first", "5", [header("canary")], STABLE))
    assert said == (f"rule first (priority 5) meets requests carrying `X-Rollway-Target: canary` first but for those "
                    f"rule admin (priority 3) {meets} ahead of it, and sends them to arn:tg/stable (rule admin: to "
                    f"arn:tg/stable), not to the canary target group canary-tg alone: make both forward to canary-tg "
                    f"alone (or give rule admin a path-pattern or host-header none of the weighted rule's requests "
                    f"match), or create one on the weighted rule's listener with a priority number below 3, the "
                    f"http-header condition X-Rollway-Target = canary beside the weighted rule's own conditions (or "
                    f"none), and one action forwarding to canary-tg alone; or clear spec.canary_header"), said
    both = [{**admin, "Actions": rule("", "", [], CANARY)["Actions"]}, rule("first", "5", [header("canary")], CANARY)]
    assert isinstance(found_on_edit(*both), Pin)


def test_a_regex_header_rule_ahead_of_a_partial_pin_is_named_as_the_rule_the_new_one_goes_ahead_of():
    """A rule matching the header by a regular expression, forwarding to the stable group, ahead of
    a pin on part of /edit/*: the refusal named the pin alone, and asked for the new rule "below 3"
    with no rule at 3 said; the pin, widened as told, was refused again for the rule at 3."""
    regex = rule("regex", "3", [regex_header("^can")], STABLE)
    said = found_on_edit(regex, rule("pin", "5", [header("canary"), path("/edit/admin/*")], CANARY))
    assert isinstance(said, str), said
    assert said.startswith(
        "no listener rule ahead of the weighted rule weighted (priority 10) is known to meet every request it matches "
        "carrying `X-Rollway-Target: canary`: rule regex (priority 3) may match the header (by a regular expression "
        "on X-Rollway-Target, ^can, not compared), and sends those it meets to arn:tg/stable; rule pin (priority 5) "
        "matches the header with a path-pattern condition (/edit/admin/*)"), said
    assert ("so some of them may pass rule pin by: give rule pin a priority number below 3 and the weighted rule's own "
            "conditions, wider ones") in said, said
    assert "or create one on the weighted rule's listener with a priority number below 3," in said, said
    # Done as told, it pins.
    assert isinstance(found_on_edit(regex, rule("pin", "2", [header("canary"), path("/edit/*")], CANARY)), Pin)


@pytest.mark.parametrize("rules, unknown", [
    # A pin by a regular expression alone: pinned if it matches the value.
    ((rule("pin", "5", [regex_header("^canary$")], CANARY),), "which of them rule pin (priority 5) meets"),
    # A rule by a regular expression ahead of the pin, sending them elsewhere: pinned if it does not match.
    ((rule("regex", "3", [regex_header("^beta$")], STABLE), rule("pin", "5", [header("canary")], CANARY)),
     "which of them rule regex (priority 3) meets"),
    # Both.
    ((rule("regex", "3", [regex_header("^beta$")], STABLE), rule("pin", "5", [regex_header("^canary$")], CANARY)),
     "which of them rule regex (priority 3) and rule pin (priority 5) meet"),
    # Known not to be, whatever the regular expressions: nothing forwards to the canary alone ...
    ((rule("regex", "5", [regex_header("^can")], STABLE),), None),
    # ... one meeting some of them first sends them elsewhere ...
    ((rule("admin", "3", [header("canary"), path("/edit/admin/*")], STABLE),
      rule("pin", "5", [regex_header("^canary$")], CANARY)), None),
    # ... or the pin misses some, by a path compared.
    ((rule("regex", "3", [regex_header("^can")], STABLE),
      rule("pin", "5", [header("canary"), path("/edit/admin/*")], CANARY)), None),
    ((), None),
])
def test_a_refusal_says_when_whether_the_checks_are_pinned_turns_on_a_regular_expression(rules, unknown):
    said = found_on_edit(*rules)
    assert isinstance(said, Unpinned), said
    assert said.unknown == (f"{unknown}, by regular expressions that are not compared" if unknown else None), said


def test_a_pin_whose_path_is_compared_with_a_weighted_rules_regular_expression_is_not_known_to_miss_some():
    weighted = rule("weighted", "10", [REGEX_EDIT], STABLE, CANARY)
    said = find_pin([rule("pin", "5", [header("canary"), path("/edit/*")], CANARY), weighted, DEFAULT],
                    header="X-Rollway-Target: canary", weighted_arn="weighted", canary_arn=CANARY,
                    canary_group="canary-tg")
    assert isinstance(said, Unpinned) and said.unknown is not None and "rule pin (priority 5)" in said.unknown, said


@pytest.mark.parametrize("pin, weighted", [
    # The pin's path given as a regular expression ...
    (rule("pin", "5", [header("canary"), {"Field": "path-pattern", "PathPatternConfig": {"RegexValues": ["^/edit/.*"]}}],
          CANARY), EDIT_WEIGHTED),
    # ... or the weighted rule's.
    (rule("pin", "5", [header("canary"), path("/edit/*")], CANARY), rule("weighted", "10", [REGEX_EDIT], STABLE, CANARY)),
])
def test_a_pin_whose_path_a_regular_expression_decides_is_not_said_to_miss_any_of_them(pin, weighted):
    """Its path compared with a regular expression, a pin may meet every request of the weighted
    rule's: the refusal said no rule "meets every request it matches", after the checklist's item
    said whether they are all pinned is not known."""
    said = find_pin([pin, weighted, DEFAULT], header="X-Rollway-Target: canary", weighted_arn="weighted",
                    canary_arn=CANARY, canary_group="canary-tg")
    assert isinstance(said, Unpinned) and said.unknown is not None, said
    assert said.startswith("no listener rule ahead of the weighted rule weighted (priority 10) is known to meet every "
                           "request it matches carrying `X-Rollway-Target: canary`: rule pin (priority 5) matches the "
                           "header with a path-pattern condition"), said
    assert "may not match every request the weighted rule's" in said, said


@pytest.mark.parametrize("pin, meets", [
    (rule("pin", "3", [regex_header("^canary$")], CANARY), "may meet"),
    (rule("pin", "3", [header("canary"), path("/edit/admin/*")], CANARY), "meets"),
])
def test_a_rule_sending_them_elsewhere_behind_a_pin_rule_is_not_said_to_meet_them_first(pin, meets):
    """A pin ahead of the rule sending them all to the stable group meets some, or by a regular
    expression may meet all, first: that rule was said to meet them "first", the pin unnamed."""
    said = found_on_edit(pin, rule("first", "5", [header("canary")], STABLE))
    assert said.startswith(f"rule first (priority 5) meets requests carrying `X-Rollway-Target: canary` first but for "
                           f"those rule pin (priority 3) {meets} ahead of it, sending them to canary-tg alone, and "
                           "sends them to arn:tg/stable, not to the canary target group canary-tg alone"), said
    # With a rule ahead sending some elsewhere too, both are named.
    said = found_on_edit(rule("admin", "2", [header("canary"), path("/edit/admin/*")], STABLE), pin,
                         rule("first", "5", [header("canary")], STABLE))
    assert said.startswith(f"rule first (priority 5) meets requests carrying `X-Rollway-Target: canary` first but for "
                           f"those rule admin (priority 2) meets and rule pin (priority 3) {meets} ahead of it, "
                           f"sending them to canary-tg alone (rule pin), and sends them to arn:tg/stable (rule admin: "
                           "to arn:tg/stable)"), said


HOST_WEIGHTED = rule("weighted", "10", [{"Field": "host-header", "HostHeaderConfig": {"Values": ["api.example.com"]}}],
                     STABLE, CANARY)


def found_on_host(*rules: dict) -> Pin | str:
    return find_pin([*rules, HOST_WEIGHTED, DEFAULT], header="X-Rollway-Target: canary", weighted_arn="weighted",
                    canary_arn=CANARY, canary_group="canary-tg")


@pytest.mark.parametrize("every", [
    path("/*"),
    path("*"),
    path("/api/*", "*/*"),                                # every path has a /
    {"Field": "path-pattern", "Values": ["/*"]},          # as DescribeRules may give it
])
def test_a_pin_on_every_path_ahead_of_a_weighted_rule_with_no_path_condition_pins(every):
    """A weighted rule with no path-pattern matches every path, each of which begins with /: a pin on
    /* was refused for "a path-pattern condition the weighted rule does not have", though it meets
    every request the weighted rule matches, carrying the header."""
    pin = found_on_host(rule("pin", "5", [header("canary"), every], CANARY))
    assert isinstance(pin, Pin) and pin.rule_arn == "pin", pin


@pytest.mark.parametrize("narrower", [path("/api/*"), path("/?*"), path("/*/"), path("/A*", "/a*")])
def test_a_pin_on_some_paths_ahead_of_a_weighted_rule_with_no_path_condition_is_still_refused(narrower):
    said = found_on_host(rule("pin", "5", [header("canary"), narrower], CANARY))
    assert isinstance(said, str), said
    assert "matches the header with a path-pattern condition the weighted rule does not have" in said, said


@pytest.mark.parametrize("regex", [
    {"Field": "path-pattern", "PathPatternConfig": {"RegexValues": ["^/.*"]}},  # every path, unread
    {"Field": "path-pattern", "RegexValues": ["^/edit/.*"]},                     # as DescribeRules may give it
])
def test_a_pin_whose_path_is_a_regular_expression_ahead_of_a_weighted_rule_with_no_path_is_not_known_to_miss_some(
        regex):
    """A weighted rule with no path-pattern matches every path, and ^/.* may too: the pin was said
    surely to miss some of its requests ("a path-pattern condition the weighted rule does not
    have", no rule "meets every request it matches"), the checklist's item that the listener does
    not pin them, of a rule that may pin every one."""
    said = found_on_host(rule("pin", "5", [header("canary"), regex], CANARY))
    assert isinstance(said, Unpinned), said
    assert said.unknown == ("which of them rule pin (priority 5) meets, by regular expressions that are not "
                            "compared"), said
    regexes = regex.get("PathPatternConfig", regex)["RegexValues"][0]
    assert said.startswith("no listener rule ahead of the weighted rule weighted (priority 10) is known to meet every "
                           "request it matches carrying `X-Rollway-Target: canary`: rule pin (priority 5) matches the "
                           f"header with a path-pattern condition (regex {regexes}) that may not match every path the "
                           "weighted rule, with none, matches (regular expressions are not compared), and sends those "
                           "it meets to canary-tg alone"), said
    assert "does not have" not in said, said


def test_a_pin_whose_host_is_a_regular_expression_ahead_of_a_weighted_rule_with_no_host_is_not_known_to_miss_some():
    """Said surely to miss some ("a host-header condition the weighted rule does not have", the
    listener said not to pin them), for a request with no Host header: the checks' requests all carry
    one, and ^.*$ may match every host they name."""
    said = found_on_edit(rule("pin", "5", [header("canary"), {"Field": "host-header",
                                                             "HostHeaderConfig": {"RegexValues": ["^.*$"]}}], CANARY))
    assert isinstance(said, Unpinned), said
    assert said.unknown == ("which of them rule pin (priority 5) meets, by regular expressions that are not "
                            "compared"), said
    assert ("matches the header with a host-header condition (regex ^.*$) that may not match every host the weighted "
            "rule, with none, matches (regular expressions are not compared)") in said, said
    assert "does not have" not in said and "is known to meet every request" in said, said
    # A host given as values still misses a request naming another host.
    said = found_on_edit(rule("pin", "5", [header("canary"), HOST], CANARY))
    assert said.unknown is None and "a host-header condition the weighted rule does not have" in said, said


@pytest.mark.parametrize("host", [{"Field": "host-header", "Values": ["*"]},
                                  {"Field": "host-header", "HostHeaderConfig": {"Values": ["*"],
                                                                                "RegexValues": ["^x$"]}}])
def test_a_pin_on_every_host_ahead_of_a_weighted_rule_with_no_host_pins_every_check(host):
    """Refused for "a host-header condition the weighted rule does not have", for a request with no
    Host header, and told to widen it to the very condition it had: every check carries the Host
    of its URL, which * matches."""
    pin = found_on_edit(rule("pin", "5", [header("canary"), host], CANARY))
    assert isinstance(pin, Pin) and pin.rule_arn == "pin", pin


def test_several_rules_matching_the_header_by_regular_expressions_are_each_named():
    """Only the first was named: a pin by ^canary$ behind a rule by ^beta$ went unsaid, and so did
    the rule at 5 below which the new one was asked."""
    said = found_on_edit(rule("beta", "3", [regex_header("^beta$")], STABLE),
                         rule("pin", "5", [regex_header("^canary$")], CANARY))
    assert said == ("2 rules ahead of the weighted rule weighted (priority 10) match the header X-Rollway-Target by "
                    "regular expressions alone, which are not compared with `canary`, so whether they meet requests "
                    "carrying `X-Rollway-Target: canary` is not known: rule beta (priority 3) may match the header (by a "
                    "regular expression on X-Rollway-Target, ^beta$, not compared), and sends those it meets to "
                    "arn:tg/stable; rule pin (priority 5) may match the header (by a regular expression on "
                    "X-Rollway-Target, ^canary$, not compared), and sends those it meets to canary-tg alone: create one "
                    "on the weighted rule's listener with a priority number below 3, the http-header condition "
                    "X-Rollway-Target = canary beside the weighted rule's own conditions (or none), and one action "
                    "forwarding to canary-tg alone; or clear spec.canary_header"), said


def test_several_rules_by_regular_expressions_the_first_a_pin_say_how_to_make_it_pin_them_all():
    rules = (rule("pin", "3", [regex_header("^canary$"), path("/edit/admin/*")], CANARY),
             rule("regex", "5", [regex_header("^can")], STABLE))
    said = found_on_edit(*rules)
    assert said.startswith("2 rules ahead of the weighted rule weighted (priority 10) match the header "
                           "X-Rollway-Target by regular expressions alone"), said
    assert ("rule pin (priority 3) may match the header (by a regular expression on X-Rollway-Target, ^canary$, not "
            "compared) with a path-pattern condition (/edit/admin/*) that does not match every request the weighted "
            "rule's (path-pattern /edit/*) matches, and sends those it meets to canary-tg alone; rule regex (priority "
            "5) may match the header (by a regular expression on X-Rollway-Target, ^can, not compared), and sends "
            "those it meets to arn:tg/stable: give rule pin's http-header condition the value canary (Values: the "
            "value, or a pattern with * and ?) in place of the regular expression, and, as it also has a path-pattern "
            "condition (/edit/admin/*) that does not match every request the weighted rule's (path-pattern /edit/*) "
            "matches, give it the weighted rule's own conditions, wider ones (a path-pattern or host-header matching "
            "all of the weighted rule's), or none, or create one on the weighted rule's listener with a priority "
            "number below 5,") in said, said
    # Done as told, it pins.
    assert isinstance(found_on_edit(rule("pin", "3", [header("canary"), path("/edit/*")], CANARY), rules[1]), Pin)


TWO_HOSTS = rule("weighted", "10", [{"Field": "host-header", "HostHeaderConfig": {"Values": ["a.example.com",
                                                                                          "b.example.com"]}}],
                 STABLE, CANARY)


def found_on_two_hosts(*rules: dict) -> Pin | str:
    return find_pin([*rules, TWO_HOSTS, DEFAULT], header="X-Rollway-Target: canary", weighted_arn="weighted",
                    canary_arn=CANARY, canary_group="canary-tg")


def on_host(arn: str, priority: str, host: str, *groups: str) -> dict:
    return rule(arn, priority, [header("canary"), {"Field": "host-header", "Values": [host]}], *groups)


def test_pin_rules_each_on_one_of_the_weighted_rules_hosts_together_pin():
    """One pin rule per host of the weighted rule's: each was refused for missing the other host's
    requests, though every request the weighted rule matches, carrying the header, meets one of them
    first and is forwarded to the canary group alone."""
    pin = found_on_two_hosts(on_host("a", "3", "a.example.com", CANARY), on_host("b", "5", "B.example.com", CANARY))
    assert isinstance(pin, Pin), pin
    assert pin.said() == ("pinned to target group canary-tg by header `X-Rollway-Target: canary` (rules a (priority 3) "
                          "and b (priority 5), each on part of the weighted rule's requests and together on every one, "
                          "ahead of the weighted rule's 10)")
    # On paths: one per value of the weighted rule's path-pattern, with a regular expression's pin between.
    weighted = rule("weighted", "10", [path("/edit/*", "/api/*")], STABLE, CANARY)
    pin = find_pin([rule("edit", "3", [header("canary"), path("/edit/*")], CANARY),
                    rule("regex", "4", [regex_header("^can")], CANARY),
                    rule("api", "5", [header("canary"), path("/a*")], CANARY), weighted, DEFAULT],
                   header="X-Rollway-Target: canary", weighted_arn="weighted", canary_arn=CANARY,
                   canary_group="canary-tg")
    assert isinstance(pin, Pin) and "rules edit (priority 3) and api (priority 5)" in pin.said(), pin


@pytest.mark.parametrize("rules", [
    # One host alone.
    (on_host("a", "3", "a.example.com", CANARY),),
    # The other host's requests meet a rule sending them to the stable group first ...
    (on_host("a", "3", "a.example.com", CANARY), on_host("x", "4", "b.example.com", STABLE),
     on_host("b", "5", "b.example.com", CANARY)),
    # ... or may, by a regular expression ...
    (on_host("a", "3", "a.example.com", CANARY), rule("x", "4", [regex_header("^can")], STABLE),
     on_host("b", "5", "b.example.com", CANARY)),
    # ... or the other host's pin misses some of them by a path too ...
    (on_host("a", "3", "a.example.com", CANARY),
     rule("b", "5", [header("canary"), {"Field": "host-header", "Values": ["b.example.com"]}, path("/x/*")], CANARY)),
    # ... or is behind the weighted rule ...
    (on_host("a", "3", "a.example.com", CANARY), on_host("b", "11", "b.example.com", CANARY)),
    # ... or matches the header by a regular expression, which may not match `canary` ...
    (on_host("a", "3", "a.example.com", CANARY),
     rule("b", "5", [regex_header("^beta$"), {"Field": "host-header", "Values": ["b.example.com"]}], CANARY)),
    # ... or one narrows them by a path, the other by a host: values of two fields are no one condition.
    (rule("a", "3", [header("canary"), path("*.example.com")], CANARY), on_host("b", "5", "b.example.com", CANARY)),
])
def test_pin_rules_that_together_may_miss_some_of_the_weighted_rules_requests_do_not_pin(rules):
    said = found_on_two_hosts(*rules)
    assert isinstance(said, Unpinned), said


def test_a_pin_on_every_request_ahead_of_pin_rules_one_per_host_is_named_alone():
    """The rule meeting every one first pins them: named with pin rules behind it, the result named
    rules no request reaches."""
    pin = found_on_two_hosts(rule("all", "2", [header("canary")], CANARY), on_host("a", "3", "a.example.com", CANARY),
                             on_host("b", "5", "b.example.com", CANARY))
    assert isinstance(pin, Pin) and not pin.together, pin
    assert pin.said() == ("pinned to target group canary-tg by header `X-Rollway-Target: canary` (rule all, "
                          "priority 2, ahead of the weighted rule's 10)")


def test_a_pin_rule_on_a_host_by_a_regular_expression_is_not_named_among_those_pinning_together():
    """Its regular expression is not compared: said "on part of the weighted rule's requests", it may
    be on none of them, and the rules meeting every one were the others."""
    by_regex = rule("regex", "2", [header("canary"),
                                   {"Field": "host-header", "HostHeaderConfig": {"RegexValues": ["^a"]}}], CANARY)
    pin = found_on_two_hosts(by_regex, on_host("a", "3", "a.example.com", CANARY),
                             on_host("b", "5", "b.example.com", CANARY))
    assert isinstance(pin, Pin), pin
    assert "(rules a (priority 3) and b (priority 5), each on part" in pin.said(), pin.said()


def test_a_pin_rule_duplicating_one_ahead_of_it_is_not_named_among_those_pinning_together():
    """A second rule on the same host, forwarding to the canary alone, meets none of them: the one
    ahead of it takes each first. It was named among "each on part of the weighted rule's requests"."""
    pin = found_on_two_hosts(on_host("a", "3", "a.example.com", CANARY), on_host("again", "4", "A.example.com", CANARY),
                             on_host("b", "5", "b.example.com", CANARY))
    assert isinstance(pin, Pin), pin
    assert "(rules a (priority 3) and b (priority 5), each on part" in pin.said(), pin.said()
    assert "again" not in pin.said(), pin.said()


def test_a_pin_rule_duplicating_one_ahead_of_it_on_part_of_the_requests_is_said_to_repeat_it():
    """Two rules on host a alone: the second meets none of the checks, the first taking each. Said to
    "send those it meets to canary-tg alone" as the first was, it read as pinning some of them."""
    said = found_on_two_hosts(on_host("a", "3", "a.example.com", CANARY), on_host("again", "4", "A.example.com", CANARY))
    assert isinstance(said, Unpinned) and said.unknown is None, said
    assert ("; rule again (priority 4) repeats the conditions of rule a (priority 3), ahead of it: it meets none of "
            "them, so some of them may pass them all by: give rule a ") in said, said
    assert "rule again (priority 4) matches the header" not in said, said


def test_a_pin_rule_whose_values_miss_the_weighted_rules_hosts_beside_a_regular_expression_is_not_named():
    """A host condition with both Values and RegexValues is counted by its values: values on none of
    the weighted rule's hosts count for nothing, and the rule, on them "by a regular expression"
    alone, was named "on part of the weighted rule's requests", which is not known."""
    mixed = rule("mixed", "2", [header("canary"), {"Field": "host-header", "HostHeaderConfig": {
        "Values": ["c.example.com"], "RegexValues": ["^a"]}}], CANARY)
    pin = found_on_two_hosts(mixed, on_host("a", "3", "a.example.com", CANARY), on_host("b", "5", "b.example.com", CANARY))
    assert isinstance(pin, Pin), pin
    assert "(rules a (priority 3) and b (priority 5), each on part" in pin.said(), pin.said()
    # Values on one of the weighted rule's hosts count, the regular expression beside them or not.
    mixed = rule("mixed", "2", [header("canary"), {"Field": "host-header", "HostHeaderConfig": {
        "Values": ["a.example.com"], "RegexValues": ["^c"]}}], CANARY)
    pin = found_on_two_hosts(mixed, on_host("b", "5", "b.example.com", CANARY))
    assert isinstance(pin, Pin) and "(rules mixed (priority 2) and b (priority 5), each on part" in pin.said(), pin


SOURCE_IP = {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}
QUERY = {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "debug", "Value": "1"}]}}


@pytest.mark.parametrize("conditions, meets", [
    ([path("/edit/admin/*")], "meets some of the weighted rule's requests, carrying `X-Rollway-Target: canary` or not "
                              "(it has a path-pattern condition (/edit/admin/*) that does not match every request the "
                              "weighted rule's (path-pattern /edit/*) matches)"),
    ([QUERY], "meets some of the weighted rule's requests, carrying `X-Rollway-Target: canary` or not (it has a "
              "query-string condition the weighted rule does not have)"),
    ([path("/*")], "meets every request the weighted rule matches, carrying `X-Rollway-Target: canary` or not (the "
                   "weighted rule, behind it, gets none of them, whatever its weights)"),
])
def test_a_rule_with_no_header_condition_ahead_of_the_pin_taking_some_of_its_requests_is_refused(conditions, meets):
    """A rule ahead of the pin with no http-header condition (a path of its own, a source address, a
    query string) meets the weighted rule's requests carrying the header too: passed over for having
    no header condition, the pin was said to hold every check while those met it first."""
    said = found_on_edit(rule("admin", "3", conditions, STABLE), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, Unpinned) and said.unknown is None, said
    assert said == (f"rule admin (priority 3), with no http-header condition, {meets}, and sends those it meets to "
                    "arn:tg/stable (the stable version alone, whatever the weights); it is ahead of rule pin (priority "
                    "5), the one pinning them to the canary target group canary-tg alone: give rule pin a priority "
                    "number below 3 (a listener meets its rules in priority order)"), said
    # Done as told, it pins.
    assert isinstance(found_on_edit(rule("admin", "3", conditions, STABLE), rule("pin", "2", [header("canary")], CANARY)),
                      Pin)


@pytest.mark.parametrize("ahead", [
    rule("api", "3", [path("/api/*")], OTHER),                 # on none of the weighted rule's requests
    rule("admin", "3", [path("/edit/admin/*")], CANARY),       # to the canary alone: the checks reach it all the same
    rule("admin", "7", [path("/edit/admin/*")], STABLE),       # behind the pin
    rule("beta", "3", [header("beta")], STABLE),               # the pin header, another value: never the checks'
])
def test_a_rule_with_no_header_condition_that_takes_none_of_the_checks_leaves_the_pin(ahead):
    pin = found_on_edit(ahead, rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(pin, Pin) and pin.rule_arn == "pin", pin


def test_a_rule_on_another_header_ahead_of_the_pin_may_take_some_and_is_refused_as_not_known():
    token = rule("token", "3", [header("Bearer *", name="Authorization")], STABLE, CANARY)
    said = found_on_edit(token, rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, Unpinned), said
    assert said.unknown == ("which of them rule token (priority 3) meets, by headers other than X-Rollway-Target, "
                            "whose values on the checks' requests are not compared"), said
    assert said == ("rule token (priority 3), with an http-header condition on another header than X-Rollway-Target, "
                    "may meet some of the weighted rule's requests carrying `X-Rollway-Target: canary` (those carrying "
                    "Authorization as it asks: Bearer *), and sends those it meets to arn:tg/canary, arn:tg/stable (by its own "
                    "weights, not the weighted rule's); it is ahead of rule pin (priority 5), the one pinning them to "
                    "the canary target group canary-tg alone: give rule pin a priority number below 3 (a listener "
                    "meets its rules in priority order)"), said


def test_a_rule_with_no_header_condition_to_the_canary_alone_ahead_of_the_pin_is_named_beside_it():
    """The checks on its paths reach the canary group through it, not the pin: said pinned "by
    header (rule pin ...)" alone, a person was sent to the pin for requests it never saw."""
    pin = found_on_edit(rule("admin", "3", [path("/edit/admin/*")], CANARY), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(pin, Pin) and pin.rule_arn == "pin", pin
    assert pin.said() == ("pinned to target group canary-tg by header `X-Rollway-Target: canary` (rule pin, priority "
                          "5, ahead of the weighted rule's 10; rule admin (priority 3), ahead of it and not met by "
                          "the header alone, sends those it meets there itself)"), pin.said()
    pins = (on_host("a", "3", "a.example.com", CANARY), on_host("b", "5", "b.example.com", CANARY))
    pin = found_on_two_hosts(pins[0], rule("ip", "4", [SOURCE_IP], CANARY), pins[1])
    assert isinstance(pin, Pin) and pin.said().endswith(
        "ahead of the weighted rule's 10; rule ip (priority 4), ahead of one of them and not met by the header "
        "alone, sends those it meets there itself)"), pin.said()
    # One on the header too, beside another the checks send: "with no condition on the header" was untrue of it.
    pin = found_on_edit(rule("ours", "3", [header("canary"), header("rollway-*", name="User-Agent")], CANARY),
                        rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(pin, Pin) and pin.unheaded == (("ours", "3"),), pin
    assert pin.said().endswith("rule ours (priority 3), ahead of it and not met by the header alone, sends those it "
                               "meets there itself)"), pin.said()


@pytest.mark.parametrize("debug", [
    [header("1", name="X-Debug")],
    [header("canary"), header("*", name="x-debug")],           # the pin header too, beside one never sent
    [header("Bearer *", name="Authorization"), {"Field": "http-header",
                                                "HttpHeaderConfig": {"HttpHeaderName": "X-Debug", "RegexValues": ["."]}}],
])
def test_a_rule_on_a_header_the_checks_never_send_ahead_of_the_pin_leaves_it(debug):
    """A rule on X-Debug ahead of the pin made whether the checks are pinned "not known", and they
    were not sent, though they never carry that header: the load balancer passes them by it."""
    pin = found_on_edit(rule("debug", "3", debug, STABLE), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(pin, Pin) and pin.rule_arn == "pin", pin


def test_a_rule_with_no_header_condition_ahead_of_pins_pinning_together_is_refused():
    pins = (on_host("a", "3", "a.example.com", CANARY), on_host("b", "5", "b.example.com", CANARY))
    said = found_on_two_hosts(pins[0], rule("ip", "4", [SOURCE_IP], STABLE), pins[1])
    assert isinstance(said, Unpinned), said
    assert said.endswith("and sends those it meets to arn:tg/stable (the stable version alone, whatever the weights); "
                         "it is ahead of rule b (priority 5), of rules a (priority 3) and b (priority 5), which together "
                         "pin them to the canary target group canary-tg alone: give rule b a priority number below 4 (a "
                         "listener meets its rules in priority order)"), said
    assert isinstance(found_on_two_hosts(pins[0], rule("ip", "6", [SOURCE_IP], STABLE), pins[1]), Pin)
    # Two, one ahead of both pins and one between them: "each is ahead of rules a and b" was untrue of
    # the second, and every pin behind the first was named twice.
    said = found_on_two_hosts(rule("query", "2", [QUERY], STABLE), pins[0], rule("ip", "4", [SOURCE_IP], STABLE),
                              pins[1])
    assert said.endswith("; the first of them is ahead of rules a (priority 3) and b (priority 5), which together pin "
                         "them to the canary target group canary-tg alone: give rules a and b priority numbers below 2 "
                         "(a listener meets its rules in priority order)"), said


@pytest.mark.parametrize("rules", [
    (rule("admin", "3", [path("/edit/admin/*")], STABLE),),
    (rule("admin", "3", [path("/edit/admin/*")], STABLE), rule("pin", "5", [header("canary"), path("/edit/a*")], CANARY)),
    (rule("admin", "3", [path("/edit/admin/*")], STABLE), rule("first", "5", [header("canary")], STABLE)),
])
def test_with_no_pin_the_rule_to_create_is_asked_ahead_of_a_rule_with_no_header_condition_taking_some(rules):
    """Asked below the weighted rule's 10, the new rule was made behind the rule at 3, which meets
    some of the checks first and sends them to the stable group."""
    said = found_on_edit(*rules)
    assert isinstance(said, Unpinned), said
    assert "create one on the weighted rule's listener with a priority number below 3," in said, said
    assert said.endswith("; whatever pins them must be ahead of rule admin (priority 3), which, with no http-header "
                         "condition, meets some of the weighted rule's requests, carrying "
                         "`X-Rollway-Target: canary` or not (it has a path-pattern condition (/edit/admin/*) that does "
                         "not match every request the weighted rule's (path-pattern /edit/*) matches), and sends those "
                         "it meets to arn:tg/stable (the stable version alone, whatever the weights)"), said
    assert isinstance(found_on_edit(*rules, rule("new", "2", [header("canary")], CANARY)), Pin)


def test_a_rule_with_no_header_condition_on_a_path_by_a_regular_expression_may_take_some_and_is_not_known():
    by_regex = rule("re", "3", [{"Field": "path-pattern", "PathPatternConfig": {"RegexValues": ["^/edit/a"]}}], STABLE)
    said = found_on_edit(by_regex, rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, Unpinned), said
    assert said.unknown == "which of them rule re (priority 3) meets, by regular expressions that are not compared"
    assert said.startswith("rule re (priority 3), with no http-header condition, may meet some of the weighted rule's "
                           "requests carrying `X-Rollway-Target: canary` (by regular expressions that are not "
                           "compared), and sends those it meets to arn:tg/stable"), said
    # With no pin, one meeting some surely, behind it, settles it: not pinned, whatever the expression.
    said = found_on_edit(by_regex, rule("admin", "4", [path("/edit/admin/*")], STABLE))
    assert isinstance(said, Unpinned) and said.unknown is None, said
    said = found_on_edit(by_regex, rule("pin", "4", [regex_header("^canary$")], CANARY))
    assert said.unknown == ("which of them rule re (priority 3) and rule pin (priority 4) meet, by regular expressions "
                            "that are not compared"), said


def agent(*values: str) -> dict:
    return header(*values, name="User-Agent")


@pytest.mark.parametrize("conditions", [
    [agent("*bot*")],
    [agent("curl/*", "*bot*"), SOURCE_IP],
    [header("canary"), agent("*bot*")],                       # the pin header too, beside an agent not the checks'
])
def test_a_rule_on_a_user_agent_the_checks_do_not_send_ahead_of_the_pin_leaves_it(conditions):
    """Every check sends the User-Agent ``CHECK_USER_AGENT``: a rule on *bot* ahead of the pin meets
    none of them. Read as on a header whose value on them is not compared, it made their pinning "not
    known", and they were not sent."""
    pin = found_on_edit(rule("bots", "3", conditions, STABLE), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(pin, Pin) and pin.rule_arn == "pin" and pin.unheaded == (), pin


def test_a_rule_on_the_checks_own_user_agent_ahead_of_the_pin_is_refused_as_known_to_take_them():
    said = found_on_edit(rule("ours", "3", [agent("rollway-*")], STABLE), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, Unpinned) and said.unknown is None, said
    assert said.startswith("rule ours (priority 3), with an http-header condition on User-Agent (rollway-*) that the "
                           "checks' own, rollway-validate, matches, meets every one of the checks' requests the "
                           "weighted rule matches (the weighted rule, behind it, gets none of them, whatever its "
                           "weights), and sends those it meets to arn:tg/stable"), said
    # Beside a path of its own, some of them; beside a regular expression, which of them is not known.
    said = found_on_edit(rule("ours", "3", [agent("rollway-*"), path("/edit/admin/*")], STABLE),
                         rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, Unpinned) and said.unknown is None, said
    assert said.startswith("rule ours (priority 3), with an http-header condition on User-Agent (rollway-*) that the "
                           "checks' own, rollway-validate, matches, meets some of the checks' requests (it has a "
                           "path-pattern condition (/edit/admin/*)"), said
    by_regex = {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "User-Agent", "RegexValues": ["bot"]}}
    said = found_on_edit(rule("re", "3", [by_regex], STABLE), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, Unpinned) and said.unknown is not None, said


def method(*values: str) -> dict:
    return {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": list(values)}}


@pytest.mark.parametrize("conditions", [
    [method("PUT", "DELETE")],
    [method("PATCH"), path("/edit/admin/*")],
])
def test_a_rule_on_methods_the_checks_never_use_ahead_of_the_pin_leaves_it(conditions):
    """The checks send GET and POST alone (``CHECK_METHODS``): a rule on PUT ahead of the pin meets
    none of them, and was said to keep it from pinning them all."""
    pin = found_on_edit(rule("put", "3", conditions, STABLE), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(pin, Pin) and pin.rule_arn == "pin" and pin.unheaded == (), pin


def test_a_rule_on_a_method_the_checks_use_ahead_of_the_pin_is_still_refused():
    said = found_on_edit(rule("post", "3", [method("PUT", "POST")], STABLE), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, Unpinned) and said.unknown is None, said
    assert said.startswith("rule post (priority 3), with no http-header condition, meets some of the weighted rule's "
                           "requests, carrying `X-Rollway-Target: canary` or not (it has a http-request-method "
                           "condition the weighted rule does not have)"), said


def test_a_regex_pin_ahead_of_a_rule_taking_some_ahead_of_the_pin_makes_it_not_known():
    """A pin by ^canary$ at 2 may meet every check before the rule at 3 on /edit/admin/* takes some:
    said known not to pin them all, a listener that may pin every one was refused as surely not."""
    said = found_on_edit(rule("re", "2", [regex_header("^canary$")], CANARY),
                         rule("admin", "3", [path("/edit/admin/*")], STABLE), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, Unpinned), said
    assert said.unknown == "which of them rule re (priority 2) meets, by regular expressions that are not compared", said
    assert said.startswith("rule admin (priority 3), with no http-header condition, meets some of the weighted rule's "
                           "requests"), said
    # Behind the rule taking some, it settles nothing: known not pinned.
    said = found_on_edit(rule("admin", "3", [path("/edit/admin/*")], STABLE),
                         rule("re", "4", [regex_header("^canary$")], CANARY), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, Unpinned) and said.unknown is None, said


@pytest.mark.parametrize("conditions", [
    [header("canary"), method("PUT")],
    [header("c*"), method("PUT", "DELETE"), path("/edit/admin/*")],
])
def test_a_rule_on_the_pin_header_and_methods_the_checks_never_use_ahead_of_the_pin_leaves_it(conditions):
    """The method test was made of rules without the header alone: one on the pin header and PUT,
    forwarding elsewhere, was said to take the checks ahead of the pin, though it meets none of them."""
    pin = found_on_edit(rule("put", "3", conditions, STABLE), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(pin, Pin) and pin.rule_arn == "pin", pin
    # With no pin, the rule to create is not asked ahead of it: it takes none of them.
    said = found_on_edit(rule("put", "3", conditions, STABLE))
    assert isinstance(said, Unpinned) and "a priority number below 10," in said, said


def test_a_rule_on_the_pin_header_and_a_method_the_checks_use_ahead_of_the_pin_is_still_refused():
    said = found_on_edit(rule("post", "3", [header("canary"), method("POST")], STABLE),
                         rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(said, Unpinned) and said.startswith(
        "rule post (priority 3) matches requests carrying `X-Rollway-Target: canary` ahead of rule pin"), said


def test_a_pin_rule_on_part_of_the_requests_ahead_of_the_pin_is_named_beside_it():
    """The checks on /edit/admin/* reach the canary group through the rule at 3, not the pin: said
    pinned "by header (rule pin ...)" alone, a person was sent to the pin for requests it never saw."""
    admin = rule("admin", "3", [header("canary"), path("/edit/admin/*")], CANARY)
    pin = found_on_edit(admin, rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(pin, Pin) and pin.rule_arn == "pin", pin
    assert pin.said() == ("pinned to target group canary-tg by header `X-Rollway-Target: canary` (rule pin, priority "
                          "5, ahead of the weighted rule's 10; rule admin (priority 3), ahead of it on the header, "
                          "sends those it meets there itself)"), pin.said()
    # Beside one with no condition on the header, and one by a regular expression: each named.
    pin = found_on_edit(admin, rule("re", "4", [regex_header("^can")], CANARY),
                        rule("ip", "4", [SOURCE_IP], CANARY), rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(pin, Pin), pin
    assert pin.said().endswith("; rules admin (priority 3) and re (priority 4), ahead of it on the header, send "
                               "those they meet there themselves; rule ip (priority 4), ahead of it and not met by the "
                               "header alone, sends those it meets there itself)"), pin.said()
    # Between rules pinning together, one on the header ahead of one of them.
    admin = rule("admin", "4", [header("canary"), path("/edit/admin/*")], CANARY)
    pin = found_on_two_hosts(on_host("a", "3", "a.example.com", CANARY), admin,
                             on_host("b", "5", "b.example.com", CANARY))
    assert isinstance(pin, Pin) and pin.together, pin
    assert pin.said().endswith("; rule admin (priority 4), ahead of one of them on the header, sends those it meets "
                               "there itself)"), pin.said()


@pytest.mark.parametrize("ahead, meets", [
    (rule("re", "3", [{"Field": "path-pattern", "PathPatternConfig": {"RegexValues": ["^/edit/a"]}}], STABLE),
     "with no http-header condition, may meet some of the weighted rule's requests carrying `X-Rollway-Target: "
     "canary` (by regular expressions that are not compared)"),
    (rule("token", "3", [header("Bearer *", name="Authorization")], STABLE),
     "with an http-header condition on another header than X-Rollway-Target, may meet some of the weighted rule's "
     "requests carrying `X-Rollway-Target: canary` (those carrying Authorization as it asks: Bearer *)"),
])
def test_with_no_pin_a_rule_that_may_take_some_is_not_said_to_surely_need_the_new_pin_ahead_of_it(ahead, meets):
    """Said "whatever pins them must be ahead of rule re", a rule that may meet none of the checks
    read as one surely taking some."""
    said = found_on_edit(ahead)
    assert isinstance(said, Unpinned), said
    assert said.endswith(f"; whatever pins them must be ahead of rule {ahead['RuleArn']} (priority 3) if it meets any "
                         f"of them: it, {meets}, and sends those it meets to arn:tg/stable (the stable version alone, "
                         "whatever the weights)"), said


def test_a_pin_behind_a_rule_on_a_header_the_checks_never_send_says_it_takes_that_rule_to_meet_none_of_them():
    """A proxy between the checks and the load balancer may add headers of its own: the rule on
    X-Debug ahead of the pin was passed over without a word, and the checks said pinned by the pin
    alone on an assumption nothing named."""
    pin = found_on_edit(rule("debug", "3", [header("1", name="X-Debug")], STABLE),
                        rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(pin, Pin) and pin.rule_arn == "pin", pin
    assert pin.said() == ("pinned to target group canary-tg by header `X-Rollway-Target: canary` (rule pin, priority "
                          "5, ahead of the weighted rule's 10; rule debug (priority 3), ahead of it on X-Debug, a "
                          "header the checks do not send, is taken to meet none of them, as it does unless a proxy "
                          "between them and the load balancer adds it)"), pin.said()
    pin = found_on_edit(rule("debug", "3", [header("canary"), header("*", name="X-Debug"), header("?", name="Via")],
                             STABLE),
                        rule("trace", "4", [header("*", name="X-Amzn-Trace-Id")], STABLE, CANARY),
                        rule("pin", "5", [header("canary")], CANARY))
    assert isinstance(pin, Pin), pin
    assert pin.said().endswith("; rules debug (priority 3) and trace (priority 4), ahead of it on X-Debug, Via and "
                               "X-Amzn-Trace-Id, headers the checks do not send, are taken to meet none of them, as "
                               "they do unless a proxy between them and the load balancer adds those)"), pin.said()
    # Not named: one behind the pin, one forwarding to the canary alone, one on another value of the
    # pin header or on methods the checks never use (it meets none of them whatever headers they carry).
    for passed in (rule("debug", "6", [header("1", name="X-Debug")], STABLE),
                   rule("debug", "3", [header("1", name="X-Debug")], CANARY),
                   rule("debug", "3", [header("beta"), header("1", name="X-Debug")], STABLE),
                   rule("debug", "3", [header("1", name="X-Debug"), method("PUT")], STABLE)):
        pin = found_on_edit(passed, rule("pin", "5", [header("canary")], CANARY))
        assert isinstance(pin, Pin) and "debug" not in pin.said(), pin.said()


CHECKS = check_requests(ValidationSpec(health_url="https://api.example.com/health?probe=1",
                                       api_base_url="https://API.example.com"))
"""The checks' requests on the weighted rule's host (``WEIGHTED``: every path of api.example.com)."""


PIN = rule("pin", "5", [header("canary")], CANARY)
"""The pin rule, at 5, ahead of the weighted rule's 10."""


def found_by(checks: tuple[CheckRequest, ...], *rules: dict, weighted: dict = WEIGHTED) -> Pin | str:
    """``find_pin`` of ``rules`` ahead of ``weighted``, the checks' requests (``checks``) known."""
    return find_pin([*rules, weighted, DEFAULT], header="X-Rollway-Target: canary", weighted_arn="weighted",
                    canary_arn=CANARY, canary_group="canary-tg", checks=checks)


def test_the_checks_requests_are_read_from_the_spec_as_httpx_sends_them():
    assert CHECKS == (CheckRequest("GET", "api.example.com", "/health", "probe=1"),
                      CheckRequest("POST", "api.example.com", "/sessions"),
                      CheckRequest("POST", "api.example.com", f"/sessions/{SESSION_ID}/messages"))
    spec = ValidationSpec(health_url="https://edit.example.com:8443/a b", api_base_url="https://api.example.com/v1")
    health, sessions, message = check_requests(spec)
    assert (health.host, health.path, sessions.path, message.path) == (
        "edit.example.com:8443", "/a%20b", "/v1/sessions", f"/v1/sessions/{SESSION_ID}/messages")
    assert "probe" not in repr(CHECKS[0])  # a query may carry a token: never shown


@pytest.mark.parametrize("conditions", [
    [path("/admin/*")],
    [QUERY],                                         # debug=1: no check sends it
    [method("GET"), path("/sessions*")],             # the session and message checks POST
    [{"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "probe", "Value": "2"}]}}],
])
def test_a_rule_ahead_of_the_pin_that_no_check_meets_leaves_it_when_the_checks_requests_are_known(conditions):
    """Judged against the weighted rule's requests (every path), a rule on /admin/* ahead of the pin
    was said to take some of the checks, which never ask for /admin: refused, they were not sent."""
    rules = (rule("admin", "3", conditions, STABLE), PIN)
    pin = found_by(CHECKS, *rules)
    assert isinstance(pin, Pin) and pin.rule_arn == "pin" and pin.unheaded == (), pin
    # Their requests not known (the infrastructure's checklist), the weighted rule's are judged.
    assert isinstance(found(*rules), Unpinned)


@pytest.mark.parametrize("conditions", [
    [path("/sessions*")],
    [method("GET")],
    [{"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "PROBE", "Value": "?"}]}}],  # any case
])
def test_a_rule_ahead_of_the_pin_that_a_check_meets_is_still_refused_as_known(conditions):
    """Said as judged, by the checks' requests: "some of the weighted rule's requests", with a
    condition missing some of those, named what the refusal was not about."""
    said = found_by(CHECKS, rule("admin", "3", conditions, STABLE), PIN)
    assert isinstance(said, Unpinned) and said.unknown is None, said
    assert said.startswith("rule admin (priority 3), with no http-header condition, meets some of the checks' "
                           "requests, carrying `X-Rollway-Target: canary` or not (it has a "), said
    assert "that does not match every one of the checks' requests), and sends those it meets to" in said, said
    # Every one of them: the weighted rule, behind it, gets none.
    said = found_by(CHECKS, rule("admin", "3", [path("/*")], STABLE), PIN)
    assert said.startswith("rule admin (priority 3), with no http-header condition, meets every one of the checks' "
                           "requests, carrying `X-Rollway-Target: canary` or not (the weighted rule, behind it, gets "
                           "none of them, whatever its weights), and sends"), said


def test_a_rule_ahead_of_the_pin_on_some_session_ids_may_meet_the_message_check_and_is_not_known():
    said = found_by(CHECKS, rule("ids", "3", [path("/sessions/a*")], STABLE), PIN)
    assert isinstance(said, Unpinned), said
    assert said.unknown == ("which of them rule ids (priority 3) meets, by a session id in the message check's path, "
                            "which is not known before the check"), said


@pytest.mark.parametrize("checks", [(), CHECKS])
def test_a_rule_ahead_of_the_pin_on_a_source_address_may_meet_the_checks_and_is_not_known(checks):
    """Where the checks are sent from is not known: a rule on 10.0.0.0/8 ahead of the pin was said
    surely to take some of them."""
    said = found_by(checks, rule("ip", "3", [SOURCE_IP], STABLE), PIN)
    assert isinstance(said, Unpinned), said
    assert said.unknown == ("which of them rule ip (priority 3) meets, by a source-ip condition on 10.0.0.0/8, where "
                            "the checks are sent from not being known"), said
    whose = "the checks'" if checks else "the weighted rule's"
    assert said.startswith(f"rule ip (priority 3), with no http-header condition, may meet some of {whose} "
                           "requests carrying `X-Rollway-Target: canary` (by a source-ip condition on 10.0.0.0/8, "
                           "where the checks are sent from not being known), and sends those it meets to "
                           "arn:tg/stable"), said
    # With no pin, the new one is asked ahead of it if it meets any of them.
    said = found_by(checks, rule("ip", "3", [SOURCE_IP], STABLE))
    assert "; whatever pins them must be ahead of rule ip (priority 3) if it meets any of them: it, " in said, said


@pytest.mark.parametrize("checks", [(), CHECKS])
def test_a_rule_on_the_header_and_a_source_address_ahead_of_the_pin_may_take_them_and_is_not_known(checks):
    said = found_by(checks, rule("ip", "3", [header("canary"), SOURCE_IP], STABLE), PIN)
    assert isinstance(said, Unpinned), said
    assert said.unknown == ("which of them rule ip (priority 3) meets, by a source-ip condition on 10.0.0.0/8, where "
                            "the checks are sent from not being known"), said


def test_a_rule_ahead_of_the_pin_on_the_checks_host_may_meet_them_when_their_urls_name_a_port():
    """Their Host header carries the port (api.example.com:8443); whether a host-header condition is
    compared with it or with the name alone is not said: read as never meeting them, a rule on
    api.example.com ahead of the pin was left out, and the checks said pinned."""
    checks = check_requests(ValidationSpec(health_url="https://api.example.com:8443/health",
                                           api_base_url="https://api.example.com:8443"))
    said = found_by(checks, rule("host", "3", [{"Field": "host-header", "Values": ["API.example.com"]}], STABLE), PIN)
    assert isinstance(said, Unpinned) and said.unknown is not None, said


def test_a_rule_ahead_of_the_pin_on_the_checks_internationalised_host_is_read_as_their_host_header_names_it():
    """A host name that is not ASCII is sent as its IDNA form (xn--...), which is all a host-header
    condition can hold: compared in its Unicode form, a rule on the checks' host ahead of the pin
    met none of them, and the checks were said pinned while it sent them to the stable group."""
    checks = check_requests(ValidationSpec(health_url="https://bücher.example/edit/health",
                                           api_base_url="https://bücher.example/edit"))
    said = found_by(checks, rule("host", "3", [{"Field": "host-header", "Values": ["xn--bcher-kva.example"]}], STABLE),
                    PIN, weighted=EDIT_WEIGHTED)
    assert isinstance(said, Unpinned) and said.unknown is None, said
    assert said.startswith("rule host (priority 3), with no http-header condition, meets every one of the checks' "
                           "requests"), said
    # An IPv6 address as the Host header carries it: in brackets, beside its port.
    health, _, _ = check_requests(ValidationSpec(health_url="https://[::1]:8443/health"))
    assert health.host == "[::1]:8443", health


@pytest.mark.parametrize("ahead, checks", [
    (rule("put", "3", [header("canary"), method("PUT")], STABLE), ()),
    (rule("put", "3", [header("canary"), path("/admin/*")], STABLE), CHECKS),
])
def test_with_no_pin_a_rule_on_the_header_that_no_check_meets_is_not_what_a_person_is_told_to_change(ahead, checks):
    """A rule on the pin header and PUT (or a path none of the checks asks for), forwarding to the
    stable group: it takes none of the checks, yet with no pin it was named as letting some of them
    pass it by, and a person was told to make it forward to the canary group alone (every PUT with
    the header, someone else's route) for checks it never meets."""
    said = found_by(checks, ahead)
    assert isinstance(said, Unpinned) and said.unknown is None, said
    assert said.startswith("no listener rule ahead of the weighted rule weighted (priority 10) sends requests carrying "
                           "`X-Rollway-Target: canary` anywhere: create one on the weighted rule's listener with a "
                           "priority number below 10,"), said
    assert "rule put" not in said, said


@pytest.mark.parametrize("ahead, checks, why", [
    # A regular expression alone decides: no session id, encoding or port is in question.
    (rule("re", "3", [header("canary"), {"Field": "path-pattern", "PathPatternConfig": {"RegexValues": ["^/h"]}}],
          STABLE), CHECKS, "regular expressions that are not compared"),
    (rule("re", "3", [header("canary"), path("/sessions/a*")], STABLE), CHECKS,
     "a session id in the message check's path, which is not known before the check"),
    (rule("re", "3", [{"Field": "host-header", "Values": ["api.example.com"]}], STABLE),
     check_requests(ValidationSpec(health_url="https://api.example.com:8443/health",
                                   api_base_url="https://api.example.com:8443")),
     "the port their Host header carries, which a host-header condition may be compared with or not"),
    (rule("re", "3", [path("/a b")], STABLE),
     check_requests(ValidationSpec(health_url="https://api.example.com/a b", api_base_url="https://api.example.com")),
     "a percent-encoded path, which the load balancer may read decoded or not"),
])
def test_a_rule_ahead_of_the_pin_that_may_meet_the_checks_says_only_what_it_turns_on(ahead, checks, why):
    """Whatever made it "may meet", the same list was said (a session id, a percent-encoded path or
    query, a host's port): a rule whose regular expression alone decides sent a person looking for a
    session id in a path that holds none."""
    said = found_by(checks, ahead, PIN)
    assert isinstance(said, Unpinned), said
    assert said.unknown == f"which of them rule re (priority 3) meets, by {why}", said.unknown


STARRED = check_requests(ValidationSpec(health_url="https://api.example.com/he*lth",
                                        api_base_url="https://api.example.com"))
"""The checks' requests, the health check's path holding a real ``*`` (and its message path a session id)."""


def test_a_real_star_in_a_checks_path_is_read_as_that_character_not_as_a_session_id():
    """A load balancer's path-pattern has wildcards; a request's path has none: read as the session
    id's placeholder, the ``*`` of /he*lth was said perhaps to be "ealth", and a rule on /health ahead
    of the pin made the checks' pinning "not known", by a session id in a path that holds none."""
    pin = found_by(STARRED, rule("health", "3", [path("/health")], STABLE), PIN)
    assert isinstance(pin, Pin) and pin.rule_arn == "pin", pin
    # A rule's ? matches the one character it is: that rule surely takes the health check.
    said = found_by(STARRED, rule("health", "3", [path("/he?lth")], STABLE), PIN)
    assert isinstance(said, Unpinned) and said.unknown is None, said
    assert said.startswith("rule health (priority 3), with no http-header condition, meets some of the checks' "
                           "requests"), said
    # Percent-encoded (%2A), it may be read decoded: a rule on /he?lth may meet it, for that alone.
    encoded = check_requests(ValidationSpec(health_url="https://api.example.com/he%2Alth",
                                            api_base_url="https://api.example.com"))
    said = found_by(encoded, rule("health", "3", [path("/he?lth")], STABLE), PIN)
    assert isinstance(said, Unpinned), said
    assert said.unknown == ("which of them rule health (priority 3) meets, by a percent-encoded path, which the load "
                            "balancer may read decoded or not"), said.unknown
    # A real * beside the session id's place is kept apart from it.
    _, _, message = check_requests(ValidationSpec(health_url="https://api.example.com/health",
                                                  api_base_url="https://api.example.com/v*"))
    assert message.path == f"/v*/sessions/{SESSION_ID}/messages", message
    # The session id is still not known before the check.
    said = found_by(STARRED, rule("ids", "3", [path("/sessions/a*")], STABLE), PIN)
    assert said.unknown == ("which of them rule ids (priority 3) meets, by a session id in the message check's path, "
                            "which is not known before the check"), said


def test_a_pin_rule_on_the_checks_paths_alone_pins_them_when_their_requests_are_known():
    """Judged against the weighted rule's requests (every path), a pin on /health and /sessions*,
    which every check meets, was refused for letting the others pass it by, and the checks were not
    sent; the checks' requests known, it pins them. Their requests not known (the checklist), it is
    refused still."""
    pin_rule = rule("pin", "5", [header("canary"), path("/health", "/sessions*")], CANARY)
    pin = found_by(CHECKS, pin_rule)
    assert isinstance(pin, Pin) and pin.rule_arn == "pin", pin
    assert isinstance(found(pin_rule), Unpinned)
    # One a check misses is refused, said by the checks' requests, not the weighted rule's.
    said = found_by(CHECKS, rule("pin", "5", [header("canary"), path("/sessions*")], CANARY))
    assert isinstance(said, Unpinned) and said.unknown is None, said
    assert said.startswith("no listener rule ahead of the weighted rule weighted (priority 10) meets every one of the "
                           "checks' requests carrying `X-Rollway-Target: canary`: rule pin (priority 5) matches the "
                           "header with a path-pattern condition (/sessions*) that does not match every one of the "
                           "checks' requests, and sends those it meets to canary-tg alone"), said
    # One that may miss the message check, by its session id, is not known to pin them all.
    said = found_by(CHECKS, rule("pin", "5", [header("canary"), path("/health", "/sessions", "/sessions/a*")],
                                 CANARY))
    assert isinstance(said, Unpinned) and said.unknown is not None, said
    assert "that may not match every one of the checks' requests (a session id in the message check's path, which " \
           "is not known before the check)" in said, said


OUTSIDE = check_requests(ValidationSpec(health_url="https://api.example.com/health",
                                        api_base_url="https://api.example.com/edit"))
"""The checks' requests, the health check's outside the weighted rule's paths (``EDIT_WEIGHTED``: /edit/*)."""


@pytest.mark.parametrize("conditions", [[path("/health")], [header("canary"), path("/health")]])
def test_a_rule_ahead_of_the_pin_taking_a_check_the_weighted_rule_does_not_match_is_refused(conditions):
    """The health check on /health never reaches the weighted rule, on /edit/*: a rule ahead of the
    pin on /health, apart from the weighted rule's requests, was left out, and the checks said
    pinned while it sent the health check to another target group."""
    said = found_by(OUTSIDE, rule("health", "3", conditions, OTHER), PIN, weighted=EDIT_WEIGHTED)
    assert isinstance(said, Unpinned) and said.unknown is None, said
    assert "rule health (priority 3)" in said and "arn:tg/other" in said, said
    assert "weighted rule's requests" not in said.split("; it is ahead")[0].split(", the one pinning")[0], said


def test_a_rule_ahead_of_the_pin_on_a_check_outside_the_weighted_rule_says_it_meets_the_checks():
    said = found_by(OUTSIDE, rule("health", "3", [path("/health")], OTHER), PIN, weighted=EDIT_WEIGHTED)
    assert said.startswith("rule health (priority 3), with no http-header condition, meets some of the checks' requests, "
                           "carrying `X-Rollway-Target: canary` or not, none of which the weighted rule matches (it has "
                           "a path-pattern condition (/health) that does not match every one of the checks' requests), "
                           "and sends those it meets to arn:tg/other"), said
    said = found_by(OUTSIDE, rule("health", "3", [header("canary"), path("/health")], OTHER), PIN,
                    weighted=EDIT_WEIGHTED)
    assert said.startswith("rule health (priority 3) matches requests carrying `X-Rollway-Target: canary` ahead of rule "
                           "pin (priority 5), the one pinning them, and sends those it meets among the checks' to "
                           "arn:tg/other, not to the canary target group canary-tg alone: make it forward to canary-tg "
                           "alone, give it a path-pattern or host-header none of the checks' requests match, or give "
                           "it a priority number above 5"), said


def test_a_pin_on_the_weighted_rules_requests_alone_does_not_pin_a_check_outside_them():
    """A pin on the weighted rule's path (/edit/*) misses the health check on /health; pins on each
    of the weighted rule's hosts together miss a check on a third."""
    said = found_by(OUTSIDE, rule("pin", "5", [header("canary"), EDIT], CANARY), weighted=EDIT_WEIGHTED)
    assert isinstance(said, Unpinned) and "path-pattern condition (/edit/*) that does not match every one of the " \
                                          "checks' requests" in said, said
    # Told to take the weighted rule's own conditions, it was told to take what it has; so was the rule to create.
    assert "give it conditions every one of the checks' requests meets, or none, or create one on the weighted " \
           "rule's listener with a priority number below 10, the http-header condition X-Rollway-Target = canary " \
           "beside conditions every one of the checks' requests meets (or none), and one action" in said, said
    third = check_requests(ValidationSpec(health_url="https://c.example.com/health",
                                          api_base_url="https://a.example.com"))
    said = found_by(third, on_host("a", "3", "a.example.com", CANARY), on_host("b", "5", "b.example.com", CANARY),
                    weighted=TWO_HOSTS)
    assert isinstance(said, Unpinned), said


def test_pin_rules_each_on_some_of_the_checks_requests_together_pin_them_when_their_requests_are_known():
    """Each pin rule judged against the weighted rule's requests, a pin on /health beside one on
    /sessions* under a weighted rule on /*, which every check meets one of, was refused ("some of
    them may pass them all by") and the checks were not sent; so was a pin on /health beside one on
    the weighted rule's /edit/*, for the health check the weighted rule does not match."""
    health = rule("health", "3", [header("canary"), path("/health")], CANARY)
    pin = found_by(CHECKS, health, rule("sessions", "4", [header("canary"), path("/sessions*")], CANARY))
    assert isinstance(pin, Pin), pin
    assert pin.said() == ("pinned to target group canary-tg by header `X-Rollway-Target: canary` (rules health "
                          "(priority 3) and sessions (priority 4), each on part of the checks' requests and together "
                          "on every one, ahead of the weighted rule's 10)")
    pin = found_by(OUTSIDE, health, rule("edit", "4", [header("canary"), EDIT], CANARY), weighted=EDIT_WEIGHTED)
    assert isinstance(pin, Pin) and pin.together == (("edit", "4"),), pin
    # One that only may meet the message check (its session id) leaves it unpinned as far as is known.
    said = found_by(CHECKS, health, rule("sessions", "4", [header("canary"), path("/sessions", "/sessions/a*")],
                                         CANARY))
    assert isinstance(said, Unpinned), said
    # A rule sending some elsewhere between them: those it meets are not pinned.
    said = found_by(CHECKS, health, rule("other", "4", [header("canary"), path("/sessions")], OTHER),
                    rule("sessions", "5", [header("canary"), path("/sessions*")], CANARY))
    assert isinstance(said, Unpinned), said


def test_a_rule_ahead_of_the_pin_on_checks_inside_and_outside_the_weighted_rule_is_told_of_the_checks():
    """A header rule ahead of the pin on /health and /sessions, under a weighted rule on /sessions*,
    sends the health check elsewhere too: told to take a path none of the weighted rule's requests
    match, a person narrowed it to /health and was refused again."""
    sessions = rule("weighted", "10", [path("/sessions*")], STABLE, CANARY)
    said = found_by(CHECKS, rule("taking", "3", [header("canary"), path("/health", "/sessions")], OTHER), PIN,
                    weighted=sessions)
    assert isinstance(said, Unpinned), said
    assert "sends those it meets among the checks' to arn:tg/other" in said, said
    assert "give it a path-pattern or host-header none of the checks' requests match" in said, said
    assert "weighted rule's requests match" not in said, said


def query(key: str | None, value: str) -> dict:
    return {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": key, "Value": value} if key else
                                                                      {"Value": value}]}}


IN_QUERY = check_requests(ValidationSpec(messages_path="/messages?session={session_id}&lang=en",
                                         api_base_url="https://api.example.com"))
"""The checks' requests with the message check's session id in its query string."""


@pytest.mark.parametrize("condition", [query("session", "a*"), query(None, "session*"), query("session", "sessionx")])
def test_a_rule_ahead_of_the_pin_on_some_session_ids_in_the_query_may_meet_the_message_check_and_is_not_known(
        condition):
    """Read with the stand-in the query was built with (``session``, ``sessionx``) for the id, a rule
    on session=a* was said to meet none of them, and one on session=sessionx surely to meet one."""
    said = found_by(IN_QUERY, rule("ids", "3", [path("/messages"), condition], STABLE), PIN)
    assert isinstance(said, Unpinned), said
    assert said.unknown == ("which of them rule ids (priority 3) meets, by a session id in the message check's query "
                            "string, which is not known before the check"), said


@pytest.mark.parametrize("condition, pinned", [
    (query("session", "*"), False),   # any session id: the message check surely meets it
    (query("lang", "EN"), False),     # the query's own, without regard to case
    (query("session", "*%*"), None),  # percent-encoded or not, as sent or decoded: not known
    (query("lang", "fr"), True),      # none of them
])
def test_a_rule_ahead_of_the_pin_on_the_message_checks_query_is_judged_by_what_it_sends(condition, pinned):
    said = found_by(IN_QUERY, rule("q", "3", [path("/messages"), condition], STABLE), PIN)
    if pinned:
        assert isinstance(said, Pin), said
    else:
        assert isinstance(said, Unpinned) and (said.unknown is None) == (pinned is False), (said, said.unknown)


FROM_VPC = rule("weighted", "10", [PATH, SOURCE_IP], STABLE, CANARY)
"""A weighted rule on requests from 10.0.0.0/8 alone."""


SOURCES = [["10.0.0.0/8"], ["10.0.0.0/8", "192.168.0.0/16"], ["0.0.0.0/0"]]
"""A source-ip condition's addresses matching every one the weighted rule's (``FROM_VPC``) does."""


@pytest.mark.parametrize("source", SOURCES)
def test_a_pin_on_the_weighted_rules_own_source_address_or_a_wider_one_pins_every_request_that_rule_takes(source):
    """Judged by the weighted rule's requests (the checklist given the header alone): each comes from
    its address, which the pin's source-ip matches too. Read as narrowing them, a pin on the weighted
    rule's networks and more was refused."""
    pin = found_by((), rule("pin", "5", [header("canary"), {**SOURCE_IP, "SourceIpConfig": {"Values": source}}],
                                CANARY), weighted=FROM_VPC)
    assert isinstance(pin, Pin), pin
    # Said of the checks sent from elsewhere, which the weighted rule does not take either.
    assert pin.said() == ("pinned to target group canary-tg by header `X-Rollway-Target: canary` (rule pin, priority "
                          f"5, ahead of the weighted rule's 10; it meets only requests sent from {', '.join(source)}, "
                          "among which are all the weighted rule takes: a check sent from elsewhere meets neither)"
                          ), pin.said()


@pytest.mark.parametrize("checks", [(), CHECKS])
def test_a_pin_on_part_of_the_weighted_rules_source_addresses_is_refused(checks):
    """Some of the weighted rule's requests (from 10.2.0.0/16) miss it: refused by the weighted rule's
    requests; by the checks', not known (where they are sent from is not)."""
    pin = found_by(checks, rule("pin", "5", [header("canary"), {**SOURCE_IP, "SourceIpConfig": {"Values": ["10.1.0.0/16"]}}],
                                CANARY), weighted=FROM_VPC)
    assert isinstance(pin, Unpinned), pin
    assert pin.unknown == ("which of them rule pin (priority 5) meets, by a source-ip condition on 10.1.0.0/16, where "
                           "the checks are sent from not being known" if checks else None), pin.unknown
    assert "rule pin (priority 5) matches the header with a source-ip condition " in pin, pin


@pytest.mark.parametrize("source", SOURCES)
def test_a_pin_on_the_weighted_rules_source_address_is_not_known_to_meet_the_checks_and_says_what_answers_the_rest(
        source):
    """Where the checks are sent from is never known: one sent from outside the pin's addresses meets
    neither the pin nor the weighted rule, and is answered by whatever the listener does next (here
    its default action, the stable version). Taken as pinning every check, the validation passed the
    canary on the stable version's answers."""
    pin = rule("pin", "5", [header("canary"), {**SOURCE_IP, "SourceIpConfig": {"Values": source}}], CANARY)
    stable = {**DEFAULT, "Actions": rule("d", "0", [], STABLE)["Actions"]}
    said = find_pin([pin, FROM_VPC, stable], header="X-Rollway-Target: canary", weighted_arn="weighted",
                    canary_arn=CANARY, canary_group="canary-tg", checks=CHECKS)
    sources = ", ".join(source)
    assert isinstance(said, Unpinned), said
    assert said.unknown == (f"which of them rule pin (priority 5) meets, by a source-ip condition on {sources}, where "
                            "the checks are sent from not being known"), said.unknown
    assert said == ("no listener rule ahead of the weighted rule weighted (priority 10) is known to meet every one of "
                    "the checks' requests carrying `X-Rollway-Target: canary`: rule pin (priority 5) matches the header "
                    f"with a source-ip condition on {sources}, matching every address the weighted rule's does, and "
                    "sends those it meets to canary-tg alone, but the checks are sent from an address the run does not "
                    f"know: one sent from outside {sources} meets neither rule pin nor the weighted rule, and is "
                    "answered by the listener's default action, which sends it to arn:tg/stable (the stable version "
                    "alone, whatever the weights), so some of them may pass it by: remove its source-ip condition (the "
                    "header alone narrows what it meets), or create one on the weighted rule's listener with a "
                    "priority number below 10, the http-header condition X-Rollway-Target = canary beside conditions "
                    "every one of the checks' requests meets (or none), and one action forwarding to canary-tg alone; "
                    "or clear spec.canary_header"), said
    # Another rule the checks may meet (behind the weighted rule, on every path) may answer them instead.
    behind = rule("other", "20", [PATH], OTHER)
    said = found_by(CHECKS, pin, behind, weighted=FROM_VPC)
    assert ("meets neither rule pin nor the weighted rule, and is answered by another rule or the listener's default "
            "action, so some") in said, said
    # Done as told, it pins.
    assert isinstance(found_by(CHECKS, PIN, weighted=FROM_VPC), Pin)


@pytest.mark.parametrize("checks", [(), CHECKS])
def test_a_rule_on_the_header_and_the_weighted_rules_source_address_ahead_of_the_pin_is_said_once(checks):
    """Judged by the weighted rule's requests, it meets every one first, as the pin on that address
    would; judged by the checks', which of them it meets turns on where they are sent from, as for
    the pin: said to meet them first, a check sent from elsewhere met the pin behind it. Either way
    said one way only: the refusal once said it met them first and that whether it did was not known."""
    said = found_by(checks, rule("x", "3", [header("canary"), SOURCE_IP], STABLE), PIN, weighted=FROM_VPC)
    assert isinstance(said, Unpinned), said
    if not checks:
        assert said.unknown is None, said.unknown
        assert said.startswith("rule x (priority 3) meets requests carrying `X-Rollway-Target: canary` first, and "
                               "sends them to arn:tg/stable"), said
    else:
        assert said.unknown == ("which of them rule x (priority 3) meets, by a source-ip condition on 10.0.0.0/8, "
                                "where the checks are sent from not being known"), said.unknown
        assert "first" not in said, said


@pytest.mark.parametrize("between", [
    rule("x", "3", [header("canary"), path("/health")], STABLE),  # on the header, to the stable version
    rule("x", "3", [path("/health")], STABLE),                    # on no header
])
def test_a_rule_between_two_pins_that_the_first_shields_every_check_from_leaves_them_pinned(between):
    """Every check rule x may meet (the health check, on /health) meets the pin on /health ahead of
    it first: x takes none of them. Judged as taking them, the checks were refused, though every one
    of them reached the canary group alone."""
    health = rule("health", "2", [header("canary"), path("/health")], CANARY)
    pin = found_by(CHECKS, health, between, PIN)
    assert isinstance(pin, Pin) and pin.rule_arn == "pin", pin
    assert "rule health (priority 2), ahead of it on the header, sends those it meets there itself" in pin.said(), pin
    # Where the first pin does not meet all of them (/health alone, x on /health and /sessions*), x takes some.
    wider = {**between, "Conditions": [*between["Conditions"][:-1], path("/health", "/sessions*")]}
    assert isinstance(found_by(CHECKS, health, wider, PIN), Unpinned)


@pytest.mark.parametrize("checks", [(), CHECKS])
def test_a_pin_behind_the_weighted_rule_is_named_as_pinning_none_of_its_requests(checks):
    """A listener meets its rules in priority order: behind the weighted rule, the pin meets none of
    the requests that rule matches. Told only to create one, a person looked and found the rule
    they had, with no word of why it did not count."""
    said = found_by(checks, rule("late", "11", [header("canary")], CANARY))
    assert isinstance(said, Unpinned) and said.unknown is None, said
    assert said == ("no listener rule ahead of the weighted rule weighted (priority 10) sends requests carrying "
                    "`X-Rollway-Target: canary` anywhere: rule late (priority 11), which sends those it meets to "
                    "canary-tg alone, is behind it, and meets none of the requests the weighted rule matches (a "
                    "listener meets its rules in priority order): give rule late a priority number below 10, or create one on the "
                    "weighted rule's listener with a priority number below 10, the http-header condition "
                    "X-Rollway-Target = canary beside the weighted rule's own conditions (or none), and one action "
                    "forwarding to canary-tg alone; or clear spec.canary_header"), said
    # On part of the weighted rule's requests, moving it is not enough: said so.
    said = found_by(checks, rule("late", "11", [header("canary"), path("/health")], CANARY))
    assert ": give rule late a priority number below 10 and the weighted rule's own conditions, wider ones" in said, said
    # Done as told, it pins.
    assert isinstance(found_by(checks, rule("late", "9", [header("canary")], CANARY)), Pin)
