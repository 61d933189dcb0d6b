"""`rollway flags set --expected-version N` on the embedded DynamoDB: a version that does not match
says what the flag is at (or that it does not exist), not a concurrent change nobody made; a write
that loses a race after the read is still told as the race it is."""

from __future__ import annotations

import io

import pytest

from rollway.aws.flags import DynamoFlagStore
from rollway.flags import FlagState
from rollway.flags_commands import EXIT_CONFLICT, flags_set

SQS = "use_sqs_architecture"


@pytest.fixture
def store(aws) -> DynamoFlagStore:
    """The flags table holding SQS, off, at version 1."""
    flags = DynamoFlagStore(aws.get_client("dynamodb"), aws.targets)
    flags.put(FlagState(feature=SQS), expected_version=0, actor="seed", now=1.0)
    return flags


def set_(store, feature, **kwargs) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = flags_set(store, out, feature, err=err, actor="gina", now=5.0, **kwargs)
    return code, out.getvalue(), err.getvalue()


def test_a_wrong_expected_version_says_the_version_found_not_a_concurrent_change(store):
    code, out, err = set_(store, SQS, enabled=True, expected_version=7)
    assert code == EXIT_CONFLICT and out == ""
    assert "concurrently" not in err, err
    assert "is at version 1" in err and "--expected-version 7" in err and "nothing was written" in err, err
    assert store.get(SQS).version == 1


def test_expected_version_0_on_a_flag_that_exists_says_it_exists(store):
    code, _, err = set_(store, SQS, enabled=True, expected_version=0, create=True)
    assert code == EXIT_CONFLICT and "concurrently" not in err, err
    assert "exists" in err and "is at version 1" in err, err


def test_an_expected_version_on_an_absent_flag_says_it_does_not_exist_and_how_to_create_it(store):
    code, out, err = set_(store, "beta_editor", enabled=True, expected_version=3, create=True)
    assert code == EXIT_CONFLICT and out == ""
    assert "concurrently" not in err and "found version 0" not in err, err
    assert "'beta_editor' does not exist" in err and "--create" in err and "--expected-version 0" in err, err
    assert store.get("beta_editor") is None


def test_a_write_that_loses_a_race_after_its_read_is_told_as_a_race(aws, store):
    """The version matched when read; another writer changed the flag before the write landed."""
    rival = DynamoFlagStore(aws.get_client("dynamodb"), aws.targets)
    put = store.put

    def raced(flag, **kwargs):
        rival.put(FlagState(feature=SQS, enabled=True, percentage=50), expected_version=1, actor="rival", now=4.0)
        return put(flag, **kwargs)

    store.put = raced
    code, _, err = set_(store, SQS, enabled=True, expected_version=1)
    assert code == EXIT_CONFLICT and "changed concurrently" in err and "found version 2" in err, err
    assert "its newest change is v2, by rival" in err and "-> on 50%" in err, err  # who won, read from the table
    assert store.get(SQS).updated_by == "rival"


def test_an_unknown_flag_with_an_expected_version_says_how_to_create_it_in_one_go(store):
    """Adding --create alone to `set beta_editor --enabled --expected-version 3` was refused next for the version."""
    code, _, err = set_(store, "beta_editor", enabled=True, expected_version=3)
    assert "add --create to create it with --expected-version 0 (or none)" in err, err


def test_a_version_moved_on_since_the_one_expected_names_who_changed_it_and_how(aws, store):
    """Gina read the flag at version 1 (`rollway flags get`); Rik turned it on at 50 % before her
    `flags set --expected-version 1`. Refused with "is at version 2, not at --expected-version 1" and
    no word of who had changed it or to what: the loser of a race after the read was told both, the
    far likelier loser of the minutes between a `get` and a `set` neither."""
    rival = DynamoFlagStore(aws.get_client("dynamodb"), aws.targets)
    rival.put(FlagState(feature=SQS, enabled=True, percentage=50), expected_version=1, actor="rik", now=4.0,
              reason="more users")

    code, out, err = set_(store, SQS, enabled=False, expected_version=1)

    assert code == EXIT_CONFLICT and out == "" and err.count("\n") == 1, err
    assert "is at version 2, not at --expected-version 1" in err and "concurrently" not in err, err
    assert ("its newest change is v2, by rik at 1970-01-01T00:00:04Z: off 0% -> on 50% (more users); nothing was "
            "written") in err, err
    assert store.get(SQS).enabled is True
