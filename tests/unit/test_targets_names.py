"""Each of the targets' names is held to the rule AWS holds it to, when the targets (or the Rollway
Targets block) are built or loaded. One loose check for all of them took a 40-character load
balancer, a table "ab", a cluster "a/b" or a dashboard with a '.', which only the first AWS call
refused, once the credentials had loaded and a run had begun."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rollway.targets import _NAME_RULES, TableSpec, Targets

_NAME_FIELDS = tuple(_NAME_RULES)


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("load_balancer", "webordinary-edit-load-balancer-production", "1-32 letters, digits and hyphens"),
    ("load_balancer", "webordinary.edit", "1-32 letters, digits and hyphens"),
    ("load_balancer", "webordinary-edit-", "not starting or ending with a hyphen"),
    ("load_balancer", "internal-edit-alb", "not starting with 'internal-'"),
    ("cluster", "webordinary/edit", "1-255 letters, digits, hyphens and underscores"),
    ("stable_service", "edit.service", "1-255 letters, digits, hyphens and underscores"),
    ("canary_service", "edit/canary", "1-255 letters, digits, hyphens and underscores"),
    ("task_family", "edit.task", "1-255 letters, digits, hyphens and underscores"),
    ("container_name", "edit/container", "1-255 letters, digits, hyphens and underscores"),
    ("flags_table", "ab", "3-255 letters, digits, '.', '_' and '-'"),
    ("rollouts_table", "acme/rollouts", "3-255 letters, digits, '.', '_' and '-'"),
    ("alert_topic", "webordinary.alerts", "1-256 letters, digits, hyphens and underscores"),
    ("dashboard", "webordinary.edit", "1-255 letters, digits, hyphens and underscores"),
])
def test_a_name_aws_refuses_for_its_field_is_refused_naming_field_value_and_rule(field, value, rule):
    with pytest.raises(ValidationError) as refused:
        Targets(**{field: value})
    (error,) = refused.value.errors()
    assert error["loc"] == (field,)
    assert field in error["msg"] and repr(value) in error["msg"] and rule in error["msg"], error["msg"]


@pytest.mark.parametrize(("field", "arn", "name"), [
    ("alert_topic", "arn:aws:sns:us-west-2:123456789012:webordinary-alerts", "webordinary-alerts"),
    ("load_balancer", "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/edit-alb/50dc6c495c0c9188",
     "edit-alb"),
    ("canary_service", "arn:aws:ecs:us-west-2:123456789012:service/edit-cluster/edit-canary", "edit-canary"),
    ("task_family", "arn:aws:ecs:us-west-2:123456789012:task-definition/edit-task:7", "edit-task"),
    ("rollouts_table", "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/acme-rollouts", "acme-rollouts"),
    ("dashboard", "arn:aws:cloudwatch::123456789012:dashboard/edit-dash", "edit-dash"),
])
def test_a_name_given_as_its_arn_is_refused_naming_the_name_to_give(field, arn, name):
    """What the console shows and copies is the ARN: refused with AWS's naming rule, nobody could
    tell the ARN was what was wrong, nor what to give instead."""
    with pytest.raises(ValidationError) as refused:
        Targets(**{field: arn})
    (error,) = refused.value.errors()
    assert error["loc"] == (field,)
    assert f"give the name ({name!r}), not the ARN" in error["msg"] and field in error["msg"], error["msg"]
    assert "is not a valid AWS resource name" not in error["msg"], error["msg"]
    Targets(**{field: name})


def test_a_checklist_table_aws_refuses_is_refused_with_dynamodbs_rule():
    with pytest.raises(ValidationError, match=r"'ab' is not a valid AWS resource name.*3-255"):
        TableSpec(name="ab", hash_key="id")


@pytest.mark.parametrize(("field", "longest"), [
    ("load_balancer", "a" * 32), ("cluster", "c" * 255), ("stable_service", "s_" * 127 + "s"), ("task_family", "t" * 255),
    ("container_name", "C" * 255), ("flags_table", "f." * 127 + "f"), ("rollouts_table", "r-_." * 63 + "rrr"),
    ("alert_topic", "a" * 256), ("dashboard", "d" * 255),
])
def test_the_longest_and_oddest_names_aws_takes_are_taken(field, longest):
    assert getattr(Targets(**{field: longest}), field) == longest
    with pytest.raises(ValidationError):
        Targets(**{field: longest + ("a" if field != "load_balancer" else "b")})


def test_webordinarys_names_and_the_names_the_tests_use_are_taken():
    Targets()
    for name in ("acme-alb", "no-such-alb", "a", "web-1"):
        Targets(load_balancer=name)
    for name in ("slot-tests", "prod-eu", "acme-cluster", "payments-cluster", "no_such_cluster"):
        Targets(cluster=name)
    for name in ("acme-flags", "no-such-flags-table", "webordinary-rollouts-text", "acme.flags"):
        Targets(flags_table=name)
    Targets(alert_topic="acme-alerts", dashboard="acme-dash", container_name="app", task_family="acme-task")
    TableSpec(name="it-sessions", hash_key="id")


@pytest.mark.parametrize(("field", "value"), [
    ("stable_target_group", "webordinary-edit-stable-target-group"), ("canary_target_group", "edit.canary"),
    ("canary_target_group", "-edit-canary"), ("stable_target_group", "edit_stable"),
])
def test_a_target_group_name_elbv2_refuses_is_refused_and_its_arn_form_is_unchanged(field, value):
    with pytest.raises(ValidationError) as refused:
        Targets(**{field: value})
    (error,) = refused.value.errors()
    assert field in error["msg"] and repr(value) in error["msg"] and "1-32 letters, digits and hyphens" in error["msg"]
    arn = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/{}/0123456789abcdef"
    assert Targets(**{field: arn.format("t" * 32)})
    assert Targets(**{field: "t" * 32})  # the longest name, as its ARN takes it


@pytest.mark.parametrize(("queue", "refused"), [
    ({"name": "q" * 81, "dlq_name": "dlq"}, "q" * 81),
    ({"name": "edit.input", "dlq_name": "dlq"}, "edit.input"),
    ({"name": "edit-input", "dlq_name": "edit/input-dlq"}, "edit/input-dlq"),
])
def test_a_queue_name_sqs_refuses_is_refused_naming_the_rule(queue, refused):
    with pytest.raises(ValidationError, match=rf"{refused!r} is not a valid AWS resource name: SQS takes 1-80"):
        Targets(queues=(queue,))


def test_the_queue_names_sqs_takes_are_taken():
    for name in ("q" * 80, "acme_jobs-1", "q" * 75 + ".fifo"):
        Targets(queues=({"name": name, "dlq_name": "dlq.fifo" if name.endswith(".fifo") else "dlq"},))


_CLUSTER_ARN = "arn:{partition}:ecs:{region}:123456789012:cluster/{name}"


@pytest.mark.parametrize("partition", ["aws", "aws-us-gov", "aws-cn"])
def test_an_ecs_cluster_given_by_its_arn_is_that_cluster_by_name(partition):
    # The ARN is what the ECS console and `aws ecs list-clusters` show; it was refused as a name
    # ECS does not take. Taken as the cluster's name, it is one cluster everywhere rollway uses
    # it: its ECS calls, the canary's lock, the clean-up's in-use checks, the run's messages.
    region = {"aws": "us-west-2", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1"}[partition]
    arn = _CLUSTER_ARN.format(partition=partition, region=region, name="webordinary-edit-cluster")
    given = Targets(region=region, cluster=arn)
    assert given.cluster == "webordinary-edit-cluster"
    # The ARN is kept, for the account it names: passed on, saved or loaded, it stays the ARN.
    assert given.arns == (("cluster", arn),)
    assert Targets.model_validate(given.model_dump()) == given
    assert Targets.model_validate_json(given.model_dump_json()).arns == (("cluster", arn),)


def test_the_account_of_a_target_given_as_an_arn_is_kept_and_names_are_no_arns():
    cluster = "arn:aws:ecs:us-west-2:111122223333:cluster/edit"
    group = "arn:aws:elasticloadbalancing:us-west-2:111122223333:targetgroup/edit-canary/0123456789abcdef"
    given = Targets(cluster=cluster, canary_target_group=group)
    assert given.arns == (("cluster", cluster), ("canary_target_group", group))
    assert given.model_copy(update={"stable_service": "other"}).arns == given.arns
    # A copy given another cluster by name keeps no ARN of the first.
    other = given.model_copy(update={"cluster": "other-cluster"})
    assert other.arns == (("canary_target_group", group),) and other.model_dump()["cluster"] == "other-cluster"
    assert Targets().arns == ()


@pytest.mark.parametrize(("arn", "said"), [
    ("arn:aws:ecs:eu-west-1:123456789012:cluster/edit",
     "'arn:aws:ecs:eu-west-1:123456789012:cluster/edit' is an ECS cluster in eu-west-1, but region is us-west-2: "
     "rollway reaches the cluster in us-west-2 (set region to eu-west-1, or give a cluster of us-west-2)"),
    ("arn:aws:ecs:us-west-2:123456789012:service/edit/edit-service",
     "is not an ECS cluster's ARN (arn:<partition>:ecs:<region>:<account>:cluster/<name>)"),
    ("arn:aws:ecs:us-west-2:1234:cluster/edit", "is not an ECS cluster's ARN"),
    ("arn:aws:ecs:us-west-2:123456789012:cluster/edit.cluster", "is not an ECS cluster's ARN"),
])
def test_an_ecs_cluster_arn_of_another_region_or_resource_is_refused_saying_why(arn, said):
    with pytest.raises(ValidationError) as refused:
        Targets(cluster=arn)
    (error,) = refused.value.errors()
    assert error["loc"] == ("cluster",)
    assert said in error["msg"], error["msg"]


def test_an_alarm_name_cloudwatch_takes_is_taken_and_one_with_a_control_character_is_refused():
    # CloudWatch takes any UTF-8 in an alarm's name but ASCII control characters: an alarm named
    # in the team's own language was refused, and one with a tab pasted into it taken.
    for name in ("webordinary-édition-erreurs", "編集-エラー率", "a" * 255, "edit errors (5xx)"):
        assert Targets(alarms=(name,)).alarms == (name,)
    for name in ("edit\terrors", "edit\x7ferrors", "a" * 256):
        with pytest.raises(ValidationError, match="is not a CloudWatch alarm name"):
            Targets(alarms=(name,))


@pytest.mark.parametrize(("queue", "dlq"), [("jobs.fifo", "jobs-dlq"), ("jobs", "jobs-dlq.fifo")])
def test_a_queue_and_a_dlq_of_the_other_type_are_refused(queue, dlq):
    # SQS names a FIFO queue, and only a FIFO queue, with .fifo; and moves a queue's failed messages
    # only to a queue of its type. Such a pair was taken: the checklist failed it only once AWS was
    # read, and the DLQ guardrail watched a queue no message could be moved to.
    with pytest.raises(ValidationError, match=(
            rf"the dead-letter queue {dlq!r} of {queue!r} is of the other type: SQS moves a FIFO queue's failed "
            r"messages only to a FIFO queue \(a name ending in \.fifo\), and a standard queue's only to a standard "
            r"queue")):
        Targets(queues=({"name": queue, "dlq_name": dlq},))


@pytest.mark.parametrize("field", [*_NAME_FIELDS, "ecr_repository", "region", "stable_target_group"])
def test_a_name_given_with_surrounding_spaces_is_refused_saying_so_not_that_the_name_is_malformed(field):
    """A name pasted with its spaces (" webordinary-alerts ") was told the naming rule (or, for
    the repository, a path component's), which reads as the name itself being wrong. Refused, not
    stripped, as a queue's or an alarm's is: AWS would take the spaces as part of the name."""
    value = f" {Targets.model_fields[field].default} "
    with pytest.raises(ValidationError) as refused:
        Targets(**{field: value})
    (error,) = refused.value.errors()
    assert error["loc"] == (field,)
    message = error["msg"]
    assert f"{field} {value!r} has surrounding spaces" in message, message
    assert "is not a valid AWS resource name" not in message and "path component" not in message, message


@pytest.mark.parametrize("value", [" webordinary-alerts.fifo ", "webordinary-alerts.fifo\t"])
def test_a_fifo_alert_topic_given_with_surrounding_spaces_is_refused_for_being_fifo_and_the_spaces_named(value):
    with pytest.raises(ValidationError) as refused:
        Targets(alert_topic=value)
    message = refused.value.errors()[0]["msg"]
    assert f"alert_topic {value!r} is a FIFO SNS topic" in message, message
    assert "surrounding spaces" in message and "is not a valid AWS resource name" not in message, message
