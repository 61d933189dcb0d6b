"""A RegisterTaskDefinition whose answer is lost leaves one revision, the one rollway uses.

RegisterTaskDefinition is not idempotent: a registration that went through but whose answer was
lost failed the deploy while its revision stayed, unused; one that botocore sent again made two
revisions, of which rollway recorded one. Each registration now carries a token of its own
(tag rollway:request), by which its revisions are found.
"""
from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from rollway.aws.ecs import REQUEST_TAG, EcsDeployer
from tests.adapters.test_ecs import ecs_tag_limit, fifty_tagged  # noqa: F401 - ecs_tag_limit: the fixture
from tests.botocore_events import on_operation

IMAGE_TAG = "2.0.0"


# A handler on the ECS client's RegisterTaskDefinition, for the test only (clients are shared).
hooked = partial(on_operation, operation="RegisterTaskDefinition")


def active_revisions(aws) -> list[str]:
    family = aws.topology.task_definition_arn.rsplit("/", 1)[1].rsplit(":", 1)[0]
    return aws.get_client("ecs").list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]


def request_tags(aws, arn: str) -> list[str]:
    tags = aws.get_client("ecs").describe_task_definition(taskDefinition=arn, include=["TAGS"])["tags"]
    return [t["value"] for t in tags if t["key"] == REQUEST_TAG]


def test_a_registration_whose_answer_is_lost_uses_the_revision_it_made(aws, watch_calls):
    ecs = aws.get_client("ecs")
    base = aws.topology.task_definition_arn

    def lose_answer(**_):  # the revision is registered on moto; its answer never arrives
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    calls = watch_calls(ecs)
    with hooked(ecs, "after-call", lose_answer):
        arn = EcsDeployer(ecs, aws.targets).register_revision(f"{aws.topology.repository_uri}:{IMAGE_TAG}", base)
    assert sorted(active_revisions(aws)) == sorted([base, arn]), "exactly one new revision, the one returned"
    assert calls.count("RegisterTaskDefinition") == 1, calls
    assert ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"][0][
        "image"].endswith(f":{IMAGE_TAG}")


def test_a_registration_botocore_sent_twice_leaves_one_revision(aws, independent_client):
    """The first copy registers, its connection drops before the answer, botocore sends it again."""
    plain = independent_client("ecs")
    ecs = boto3.client("ecs", endpoint_url=aws.endpoint_url, region_name=aws.targets.region,
                       aws_access_key_id="testing", aws_secret_access_key="testing",
                       config=Config(retries={"mode": "standard", "total_max_attempts": 3}))
    base = aws.topology.task_definition_arn
    sent = []

    def send_then_drop(request, **_):
        sent.append(request.url)
        if len(sent) == 1:
            ecs._endpoint.http_session.send(request)  # it arrives, and registers
            raise ConnectionClosedError(endpoint_url=request.url)
        return None  # botocore sends it itself

    with hooked(ecs, "before-send", send_then_drop):
        arn = EcsDeployer(ecs, aws.targets).register_revision(f"{aws.topology.repository_uri}:{IMAGE_TAG}", base)
    assert len(sent) == 2
    assert sorted(active_revisions(aws)) == sorted([base, arn]), "the copy botocore sent first is left ACTIVE"
    inactive = plain.list_task_definitions(status="INACTIVE")["taskDefinitionArns"]
    assert len(inactive) == 1 and request_tags(aws, inactive[0]) == request_tags(aws, arn)


def test_a_lost_answer_whose_revision_is_past_the_search_says_what_was_not_searched(aws, independent_client, caplog):
    """Others registered revisions of the family while the answer was lost: its ten newest were
    searched, not the revision the call made, and the error was raised as it came, as if nothing
    was registered; the revision stayed, unused, and nothing said what to look for."""
    from rollway.aws.ecs import REQUEST_LOOKBACK

    ecs = aws.get_client("ecs")
    other = independent_client("ecs")
    base = aws.topology.task_definition_arn

    def lose_answer_after_others(**_):
        described = other.describe_task_definition(taskDefinition=base)["taskDefinition"]
        for _ in range(REQUEST_LOOKBACK):  # a CI's registrations, landing meanwhile
            other.register_task_definition(family=described["family"],
                                           containerDefinitions=described["containerDefinitions"])
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    with hooked(ecs, "after-call", lose_answer_after_others), pytest.raises(ReadTimeoutError) as lost:
        EcsDeployer(ecs, aws.targets).register_revision(f"{aws.topology.repository_uri}:{IMAGE_TAG}", base)
    (made,) = [arn for arn in active_revisions(aws) if request_tags(aws, arn) and arn != base]
    (token,) = request_tags(aws, made)
    notes = str(lost.value)  # in the error's message, which a run's failure carries: a note shows in a traceback only
    family = made.rsplit("/", 1)[1].rsplit(":", 1)[0]
    assert (f"no ACTIVE revision of {family} tagged {REQUEST_TAG}={token} among its {REQUEST_LOOKBACK} newest, "
            "which were searched") in notes, notes
    assert "older ones were not" in notes, notes
    assert f"{REQUEST_TAG}={token}" in caplog.text, "said in the run's log too: a note shows in a traceback only"


def test_a_refused_registration_looks_nothing_up(aws, watch_calls):
    ecs = aws.get_client("ecs")

    def refuse(**_):
        raise ClientError({"Error": {"Code": "ClientException", "Message": "too many revisions"}},
                          "RegisterTaskDefinition")

    calls = watch_calls(ecs)
    with hooked(ecs, "before-call", refuse), pytest.raises(ClientError, match="too many revisions"):
        EcsDeployer(ecs, aws.targets).register_revision("repo/app:2", aws.topology.task_definition_arn)
    assert "ListTaskDefinitions" not in calls, calls


def test_a_lost_answer_of_a_registration_that_made_nothing_is_raised(aws):
    ecs = aws.get_client("ecs")

    def drop(request, **_):
        raise ConnectionClosedError(endpoint_url=request.url)

    with hooked(ecs, "before-send", drop), pytest.raises(ConnectionClosedError):
        EcsDeployer(ecs, aws.targets).register_revision("repo/app:2", aws.topology.task_definition_arn)
    assert active_revisions(aws) == [aws.topology.task_definition_arn]


def test_each_registration_carries_a_token_of_its_own(aws):
    """A revision copied from one rollway made carries one token, its own, not its base's too."""
    deployer = EcsDeployer(aws.get_client("ecs"), aws.targets)
    first = deployer.register_revision("repo/app:2", aws.topology.task_definition_arn)
    second = deployer.register_revision("repo/app:3", first)
    (first_token,), (second_token,) = request_tags(aws, first), request_tags(aws, second)
    assert first_token != second_token


def test_a_resent_registration_whose_search_fails_still_returns_its_revision(aws, independent_client):
    """botocore sent it twice, and the search for the first copy is refused: the revision the
    call answered with is still used (the first copy stays, as it did before the search)."""
    ecs = boto3.client("ecs", endpoint_url=aws.endpoint_url, region_name=aws.targets.region,
                       aws_access_key_id="testing", aws_secret_access_key="testing",
                       config=Config(retries={"mode": "standard", "total_max_attempts": 3}))
    sent = []

    def send_then_drop(request, **_):
        sent.append(request.url)
        if len(sent) == 1:
            ecs._endpoint.http_session.send(request)
            raise ConnectionClosedError(endpoint_url=request.url)
        return None

    def refuse(**_):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no ecs:ListTaskDefinitions"}},
                          "ListTaskDefinitions")

    ecs.meta.events.register("before-call.ecs.ListTaskDefinitions", refuse)
    with hooked(ecs, "before-send", send_then_drop):
        arn = EcsDeployer(ecs, aws.targets).register_revision("repo/app:2", aws.topology.task_definition_arn)
    assert arn in active_revisions(aws) and len(active_revisions(aws)) == 3


def test_a_lost_answer_of_a_registration_without_a_token_is_raised_saying_it_may_have_registered(
        aws, ecs_tag_limit, watch_calls):
    # A base with 50 tags is copied without the token (ECS's limit): nothing can tell its revision
    # from another, so the lost answer is raised as it came, saying the revision may exist
    # (register_existing then finds it as the family's latest), and nothing is searched for.
    ecs = aws.get_client("ecs")
    base = fifty_tagged(aws)

    def lose_answer(**_):
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    calls = watch_calls(ecs)
    with hooked(ecs, "after-call", lose_answer), pytest.raises(ReadTimeoutError) as lost:
        EcsDeployer(ecs, aws.targets).register_revision(f"{aws.topology.repository_uri}:{IMAGE_TAG}", base)
    assert "may have registered a revision all the same" in str(lost.value), str(lost.value)
    assert "ListTaskDefinitions" not in calls, calls


def sibling_pages(aws, family: str, calls: list[str]):
    """ListTaskDefinitions as ECS answers a familyPrefix that other families' names begin with
    (sorted DESC, "<family>-worker" comes first), here one with revisions without end: pages of
    that family's, each with a nextToken. Counts the calls in ``calls``."""
    region, account = aws.targets.region, aws.topology.task_definition_arn.split(":")[4]

    def answer(params, **_):
        calls.append("ListTaskDefinitions")
        start = 100_000 - 100 * len(calls)
        arns = [f"arn:aws:ecs:{region}:{account}:task-definition/{family}-worker:{n}"
                for n in range(start, start - params.get("maxResults", 100), -1)]
        more = {"nextToken": f"t{len(calls)}"} if len(calls) < 500 else {}  # "without end": 500 calls
        return SimpleNamespace(status_code=200, headers={}), {"taskDefinitionArns": arns, **more,
                                                              "ResponseMetadata": {}}
    return answer


def test_a_lost_answer_whose_family_shares_its_prefix_with_a_busy_one_is_searched_a_bounded_number_of_calls(aws):
    """familyPrefix is a prefix: a family beside one whose name begins with its own (and sorts
    after it) had that family's revisions listed first, page after page, without a bound, before
    its own. The search stops at its bound and the error says what was not searched."""
    ecs = aws.get_client("ecs")
    base = aws.topology.task_definition_arn
    family = base.rsplit("/", 1)[1].rsplit(":", 1)[0]
    calls: list[str] = []

    def lose_answer(**_):
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    with hooked(ecs, "after-call", lose_answer), \
            on_operation(ecs, "before-call", sibling_pages(aws, family, calls), operation="ListTaskDefinitions"), \
            pytest.raises(ReadTimeoutError) as lost:
        EcsDeployer(ecs, aws.targets).register_revision(f"{aws.topology.repository_uri}:{IMAGE_TAG}", base)
    assert 1 <= len(calls) <= 10, len(calls)
    said = str(lost.value)
    assert f"other families whose names begin with {family} ({family}-worker), listed first" in said, said
    assert f"the revisions of {family} it would list next were not searched" in said, said
    assert f"{REQUEST_TAG}=" in said and "deregister it" in said, said


def test_the_copy_of_a_revision_beside_a_busy_family_of_the_same_prefix_is_searched_a_bounded_number_of_calls(
        aws, caplog):
    ecs = aws.get_client("ecs")
    deployer = EcsDeployer(ecs, aws.targets)
    gone = deployer.register_revision("repo/app:2", aws.topology.task_definition_arn)
    family = gone.rsplit("/", 1)[1].rsplit(":", 1)[0]
    calls: list[str] = []
    with on_operation(ecs, "before-call", sibling_pages(aws, family, calls), operation="ListTaskDefinitions"):
        assert deployer.copy_of(gone) is None
    assert 1 <= len(calls) <= 10, len(calls)
    assert f"the revisions of {family} it would list next were not searched" in caplog.text, caplog.text
