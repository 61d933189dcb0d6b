"""A name pasted with its line break ("webordinary-edit-cluster\n", from a terminal or a file) is
refused where it is read, like any other malformed name: Python's ``$`` also matches before a
final line break, so the checks passed it, and AWS (or docker, or cdk) was asked about a name
that does not exist, or one a flag's readers never use."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rollway.cleanup import CleanupSpec
from rollway.image import registry_problem, repository_problem
from rollway.publish import PublishRequest
from rollway.targets import Targets

ARN = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/webordinary-edit-stable/0123456789abcdef"


@pytest.mark.parametrize(("field", "said"), [
    ("cluster", "is not a valid AWS resource name"), ("stable_service", "is not a valid AWS resource name"),
    ("canary_service", "is not a valid AWS resource name"),
    ("ecr_repository", r"'webordinary-edit-name\\n' has a repository path component"),
])
def test_a_targets_name_with_a_final_line_break_is_refused(field, said):
    Targets(**{field: "webordinary-edit-name"})  # the same name without it is taken
    with pytest.raises(ValidationError, match=said):
        Targets(**{field: "webordinary-edit-name\n"})


@pytest.mark.parametrize(("field", "value", "said"), [
    ("stacks", ("EditStack\n",), "is not a valid CloudFormation stack name"),
    ("stable_target_group", ARN + "\n", "is not a well-formed target group ARN"),
])
def test_a_targets_stack_or_group_arn_with_a_final_line_break_is_refused(field, value, said):
    Targets(**{field: tuple(v.rstrip("\n") for v in value) if isinstance(value, tuple) else value.rstrip("\n")})
    with pytest.raises(ValidationError, match=said):
        Targets(**{field: value})


def test_a_repository_path_or_registry_with_a_final_line_break_is_refused():
    assert repository_problem("webordinary/edit-container") is None
    assert "repository path component" in (repository_problem("webordinary/edit-container\n") or "")
    assert registry_problem("localhost:5000") is None
    assert "is not a host name" in (registry_problem("localhost:5000\n") or "")


@pytest.mark.parametrize(("field", "value", "said"), [
    ("git_commit", "0123abc\n", "is not a commit id"),
    ("docker_host", "unix:///var/run/docker.sock\n", "is not unix://"),
    ("labels", {"org.example.team\n": "edit"}, "is not a label name"),
])
def test_a_publish_parameter_with_a_final_line_break_is_refused(tmp_path, field, value, said):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    taken = {k.rstrip("\n"): v for k, v in value.items()} if isinstance(value, dict) else value.rstrip("\n")
    PublishRequest(version="1.2.3", context_dir=str(tmp_path), **{field: taken})
    with pytest.raises(ValidationError, match=said):
        PublishRequest(version="1.2.3", context_dir=str(tmp_path), **{field: value})


@pytest.mark.parametrize(("field", "value", "said"), [
    ("old_stacks", ("WebordinaryOldStack\n",), "is not a CloudFormation stack name"),
    ("old_image_tags", ("1.0.0\n",), "tag"),
])
def test_a_cleanup_name_with_a_final_line_break_is_refused(field, value, said):
    CleanupSpec(**{field: tuple(v.rstrip("\n") for v in value)})
    with pytest.raises(ValidationError, match=said):
        CleanupSpec(**{field: value})
