"""Targets.ecr_repository is a repository name in the account's own ECR: a URI or a name docker
and ECR do not take is refused when the targets are built (a block saved, or loaded), before any
AWS call. Such names were refused only by the container flow, after the credentials were loaded
(STS asked), or were looked up as a repository that does not exist."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rollway.targets import Targets


@pytest.mark.parametrize(("repository", "why"), [
    ("123.dkr.ecr.eu-west-2.amazonaws.com/x",
     "'123.dkr.ecr.eu-west-2.amazonaws.com/x' is a repository URI: give the repository name ('x'); the registry is "
     "this account's ECR in us-west-2 (a repository in another account or region is not supported)"),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/webordinary/edit-container",
     "is a repository URI: give the repository name ('webordinary/edit-container')"),
    ("localhost:5000/edit-container", "is a repository URI: give the repository name ('edit-container')"),
    ("Webordinary/Edit-Container", "'Webordinary/Edit-Container' has a repository path component 'Webordinary' "
                                   "that is not lowercase letters and digits"),
    ("webordinary//edit-container", "has an empty repository path component (a leading, trailing or doubled '/')"),
    ("/edit-container", "has an empty repository path component"),
    ("edit_-container", "has a repository path component 'edit_-container'"),
    ("webordinary/" + "e" * 250, "is not a valid AWS resource name"),
])
def test_a_repository_that_is_not_a_name_of_this_accounts_ecr_is_refused_naming_the_field(repository, why):
    with pytest.raises(ValidationError) as refused:
        Targets(ecr_repository=repository)
    errors = refused.value.errors()
    assert [e["loc"] for e in errors] == [("ecr_repository",)]
    assert why in errors[0]["msg"], errors[0]["msg"]


def test_the_uri_refusal_names_the_targets_region():
    with pytest.raises(ValidationError, match=r"this account's ECR in eu-west-2 \("):
        Targets(region="eu-west-2", ecr_repository="123456789012.dkr.ecr.eu-west-2.amazonaws.com/app")


@pytest.mark.parametrize("repository", [
    "webordinary/edit-container", "edit-container",
    # ECR takes '.' in any component: not a registry host, though docker would read one so.
    "acme.web/edit-container", "a__b/c.d-e",
])
def test_a_repository_name_ecr_takes_is_kept(repository):
    assert Targets(ecr_repository=repository).ecr_repository == repository


@pytest.mark.parametrize("repository", ["e", "a/" + "b" * 255])
def test_a_repository_name_outside_ecrs_length_is_refused_with_ecrs_rule(repository):
    # ECR takes 2-256 characters (CreateRepository's repositoryName): "e" passed, and the container
    # flow failed at ECR once the credentials had loaded and the image was built.
    with pytest.raises(ValidationError) as refused:
        Targets(ecr_repository=repository)
    (error,) = refused.value.errors()
    assert error["loc"] == ("ecr_repository",)
    assert f"ecr_repository {repository!r} is not a valid AWS resource name: ECR takes 2-256 characters" in error["msg"]


@pytest.mark.parametrize("repository", ["ed", "a/" + "b" * 254])
def test_the_shortest_and_longest_repository_names_ecr_takes_are_taken(repository):
    assert Targets(ecr_repository=repository).ecr_repository == repository
