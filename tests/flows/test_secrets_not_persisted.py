"""A secret a task hands back is never written to Prefect's result storage.

With result persistence on (PREFECT_RESULTS_PERSIST_BY_DEFAULT, a default result storage block on
the server or in the settings) Prefect pickles every task's and flow's result into result storage
(files under PREFECT_LOCAL_STORAGE_PATH by default): pickling a SecretStr keeps its value, so ECR's
docker login token stored there would be readable in the clear long after it was used. In Prefect
3.9 a task's result is written only under a cache key (``cache_policy=NONE`` gives none), so the
login task says ``persist_result=False`` itself: it stays unstored if it is ever given a key.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, PREFECT_RESULTS_PERSIST_BY_DEFAULT, temporary_settings

from rollway.publish import PublishRequest
from tasks import container as container_steps
from tests.flows.test_container_flow import EcrBacked, ecr_password, publish_with
from tests.flows.test_container_flow import tokens_for_12_hours  # noqa: F401 - the fixture


def stored_forms(path: Path) -> Iterator[bytes]:
    """A stored file's bytes, and those of every base64 text in it: Prefect stores a pickled value
    in base64 (the whole file, or a result record's ``result`` in JSON), so the raw bytes alone
    would never show a token."""
    raw = path.read_bytes()
    yield raw
    try:
        record = json.loads(raw)
    except ValueError:
        record = raw.decode("ascii", errors="replace")
    texts = [record] if isinstance(record, str) else [v for v in _values(record) if isinstance(v, str)]
    for text in texts:
        try:
            yield base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            continue


def _values(node) -> Iterator[object]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _values(value)
    else:
        yield node


@pytest.mark.usefixtures("tokens_for_12_hours")
@pytest.mark.parametrize("keyed", [False, True], ids=["as_declared", "given_a_cache_key"])
def test_ecrs_login_token_is_not_in_result_storage_when_results_are_persisted(aws, tmp_path, monkeypatch, keyed):
    if keyed:  # as a cache policy or key added to the task later would: Prefect then writes its result
        monkeypatch.setattr(container_steps, "ecr_login",
                            container_steps.ecr_login.with_options(cache_key_fn=lambda *_: "ecr-login"))
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    storage = tmp_path / "results"
    publisher = EcrBacked(aws)
    password = ecr_password(aws)

    with temporary_settings({PREFECT_RESULTS_PERSIST_BY_DEFAULT: True, PREFECT_LOCAL_STORAGE_PATH: storage}):
        result = publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))

    # The release went out as without persistence: logged in with ECR's token, pushed, registered.
    uri = aws.topology.repository_uri
    assert f"push {uri}:2.0.0" in publisher.calls and result.image == f"{uri}:2.0.0"
    stored = [p for p in storage.rglob("*") if p.is_file()]
    assert stored, "persistence was on: the run's other results are in storage"
    holding = [p.name for p in stored if any(password.encode() in form for form in stored_forms(p))]
    assert holding == []
