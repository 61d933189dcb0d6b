"""Shared fixtures: the embedded AWS (one per session) and a freshly provisioned account per test."""

from __future__ import annotations

import copy
import functools
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest

# Offline machine: Prefect must not try to send analytics (set before anything imports it).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Nobody reads the tests' console in colour: Prefect's console handler ran its highlighter's
# regular expressions over every record (half of the handler's 0.17 ms a record; every task run of
# the flow tests writes at least one, about 5 % of a flow test worker's CPU went to the handler);
# without colours the text is the same.
os.environ.setdefault("PREFECT_LOGGING_COLORS", "false")


def _one_certificate_file() -> str:
    """A CA file holding the first certificate of certifi's bundle, removed when this process exits."""
    import atexit
    import tempfile

    import certifi

    bundle = certifi.contents()
    end = bundle.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    fd, path = tempfile.mkstemp(prefix="rollway-tests-one-ca-", suffix=".pem")
    with os.fdopen(fd, "w") as file:
        file.write(bundle[bundle.index("-----BEGIN CERTIFICATE-----"):end] + "\n")
    atexit.register(os.unlink, path)
    return path


# Every Prefect server the tests talk to is plain HTTP on loopback, so no certificate is ever
# checked; but every Prefect client (one per flow run, per block save or load, per CLI command),
# in the tests and in every process they start (`prefect server start`, the served deployments
# and each run they start, `prefect deploy`), parsed certifi's whole CA bundle into a new SSL
# context first: 20-70 ms each, depending on load. A CA file of one certificate makes that about
# 2 ms, and verification stays on for any TLS the tests never make. Set before Prefect reads its
# settings; the xdist workers and every child process inherit it (the parent's file, removed
# when it exits, after them).
if "PREFECT_API_SSL_CERT_FILE" not in os.environ:
    os.environ["PREFECT_API_SSL_CERT_FILE"] = _one_certificate_file()

from hypothesis import settings  # noqa: E402

# The property tests check what holds, not how fast: Hypothesis's 200-ms deadline per example
# failed one of them at random while the 2-core machine ran other suites alongside.
settings.register_profile("rollway", deadline=None)
settings.load_profile("rollway")

from prefect.blocks.core import Block  # noqa: E402

from blocks.credentials import client_factory, credentials_for_endpoint  # noqa: E402
from rollway.sim.server import EmbeddedAws  # noqa: E402
from rollway.sim.topology import Topology, provision  # noqa: E402
from rollway.targets import Targets  # noqa: E402
from tests.moto_state import MotoState  # noqa: E402
from tests.prefect_db import migrated_template, session_root  # noqa: E402
from tests import stray_requests  # noqa: E402

stray_requests.record_local_senders()


STRAY_THREAD_SECONDS = 30.0


@dataclass(frozen=True)
class AwsAccount:
    """A clean embedded account with Webordinary's topology provisioned."""

    get_client: Callable[[str], Any]
    topology: Topology
    endpoint_url: str
    targets: Targets


@pytest.fixture(scope="session", autouse=True)
def block_schemas_built_once_per_class() -> Iterator[None]:
    """Prefect's ``Block.model_json_schema``, computed once per block class and arguments.

    Block.save asks for the class's whole JSON schema once per field (to find secret fields)
    and again for the schema document: the same dict every time for a class, about 50 ms each
    build, 0.3-1 s per saved pair of targets and credentials blocks and about 45 s of the
    suite's CPU. Each caller gets a copy of the first build, so what Prefect saves and checks is
    what it would have computed itself.
    """
    build = Block.model_json_schema.__func__
    built: dict[tuple[Any, ...], dict[str, Any]] = {}

    def once(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        key = (cls, args, tuple(sorted(kwargs.items())))
        if key not in built:
            built[key] = build(cls, *args, **kwargs)
        return copy.deepcopy(built[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Block, "model_json_schema", classmethod(once))
        yield


@pytest.fixture(scope="session", autouse=True)
def moto_attribute_names_found_once() -> Iterator[None]:
    """moto writes its answers finding each field's possible attribute names once per kind of value
    and field, and reading a plain dict's fields without raising a KeyError for each absent one.

    To write an answer, moto's serializer asks, for every field of every value, which names the
    value may hold it under (the field's own, its snake_case form, a model or class prefix
    stripped): five alias checks and a snake_case conversion each time, for every field a value
    leaves empty too. A DynamoDB item is a tree of attribute values of ten fields each, and a
    ledger item comes back whole from GetItem and UpdateItem: the refused-answers bound test's 200
    appends to one growing item spent most of its CPU there. Those names depend only on the
    value's class (and its Meta), the field and its shape with its parent, so the first list
    found for them is the list every later one would find: moto writes the same answer.
    """
    import moto.core.utils

    try:
        from moto.core.serialize import XFormedAttributePicker

        find = XFormedAttributePicker.get_possible_keys
        moto.core.utils._get_value_for_key  # noqa: B018 - both seams, or neither
    except (ImportError, AttributeError):
        # A moto whose serializer has moved on: its answers are written its own (slower) way, and
        # every test still runs; this is a speed-up of the suite, not something a test relies on.
        yield
        return

    found: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def once(self: XFormedAttributePicker, context: Any) -> tuple[str, ...]:
        shape = context.shape
        parent = getattr(shape, "parent", None)
        meta = getattr(context.obj, "Meta", None)
        # The objects themselves are kept with their names, so an id here is never a new object's.
        key = (type(context.obj), context.key, id(shape), id(parent), id(meta))
        if key not in found:
            found[key] = (shape, parent, meta, tuple(find(self, context)))
        return found[key][3]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(XFormedAttributePicker, "get_possible_keys", once)
        patch.setattr(moto.core.utils, "_get_value_for_key", functools.partial(_value_for_key,
                                                                               moto.core.utils._get_value_for_key))
        yield


def _value_for_key(find: Callable[[Any, Any, Any], Any], obj: Any, key: Any, default: Any) -> Any:
    """moto's ``_get_value_for_key`` (which tries ``obj[key]`` and answers ``default`` on a KeyError),
    with a plain dict's ``get`` for a plain dict: each of an attribute value's nine empty fields
    raised and caught two KeyErrors, about a third of what the serializer still spent on an item."""
    if type(obj) is not dict:
        return find(obj, key, default)
    try:
        return obj.get(key, default)
    except TypeError:  # an unhashable key: no such item, as moto's own lookup answers
        return default


@pytest.fixture(autouse=True)
def no_thread_left_calling_aws() -> Iterator[None]:
    """The threads a test started that called the embedded AWS have ended when it ends
    (tests/stray_requests.py): a request of theirs after the next test's reset is that test's error."""
    before = set(threading.enumerate())
    yield
    left = stray_requests.senders_started_since(before)
    if not left:
        return
    # Reads a test gave up on (on a load balancer or ledger that never answers) end within about
    # 1.5 s once the test's silent endpoint is gone; STRAY_THREAD_SECONDS leaves room for a busy machine.
    alive = stray_requests.wait_for(left, STRAY_THREAD_SECONDS)
    if alive:
        pytest.fail(f"threads this test started still call the embedded AWS {STRAY_THREAD_SECONDS:g} s after it ended: "
                    + ", ".join(t.name for t in alive))


@pytest.fixture(scope="session")
def prefect_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Prefect database already migrated, to copy under a server a test starts (tests/prefect_db.py).

    A pytest run a test starts (tests/flows/test_harness_start.py) is given its own run's template
    in ROLLWAY_TESTS_PREFECT_TEMPLATE: migrating another cost that test about 8 s of CPU."""
    given = os.environ.get("ROLLWAY_TESTS_PREFECT_TEMPLATE")
    return Path(given) if given else migrated_template(session_root(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="session")
def it_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The integration tests' CDK app (tests/integration/cdk_app: its stacks named It..., one pinned
    to eu-west-1) synthesized by the real cdk once for the whole test run, for the tests whose
    point is not the synth: tests/integration/test_cdk.py and the real-cdk runs of
    tests/flows/test_infra_flow.py, which hand it to cdk through ``presynthesized_copy``.

    A synth costs about 10 s of CPU and each of those files made its own, on the 2-core machine
    whose CPU the suite is bound by. The first worker to ask synthesizes it under a lock, the
    others wait for it and read the same directory. A flow run that synthesizes the app as a
    user's run does (test_the_flow_bootstraps_deploys_in_order_and_checks_with_the_real_cdk)
    still runs the app itself.
    """
    import fcntl
    import shutil

    from tests.integration.test_cdk import synthesized

    root = session_root(tmp_path_factory.getbasetemp())
    made = root / "it-app"
    with open(root / "it-app.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other workers wait here for the first one's synth
        if not made.exists():
            building = root / "it-app-building"
            shutil.rmtree(building, ignore_errors=True)
            synthesized(building, pinned_region="eu-west-1")
            building.rename(made)  # whole: a worker never reads an assembly half copied
    return made / "assembly"


@pytest.fixture(scope="session")
def embedded_aws() -> Iterator[EmbeddedAws]:
    """moto's server on 127.0.0.1, started once per test session.

    Its CloudFormation backend is imported first: the server would import it on the first
    CloudFormation request (every service's models, seconds on a loaded machine, past the
    clients' read timeout), and botocore's resend of that CreateStack found the stack the first
    attempt made (AlreadyExistsException). The server runs in this process: imported here, no
    request waits on it.
    """
    import moto.cloudformation.models  # noqa: F401

    with EmbeddedAws() as aws:
        yield aws


@pytest.fixture
def targets() -> Targets:
    return Targets()


@pytest.fixture(scope="session")
def _get_client_for_region(embedded_aws: EmbeddedAws) -> Callable[[str], Callable[[str], Any]]:
    # Building a client costs ~0.1 s: one factory per region for the whole session, and
    # client_factory keeps one client per service.
    @functools.cache
    def for_region(region: str) -> Callable[[str], Any]:
        return client_factory(credentials_for_endpoint(embedded_aws.endpoint_url, region))

    return for_region


@pytest.fixture
def aws(new_account: Callable[[], AwsAccount]) -> AwsAccount:
    """A reset embedded account with the topology for ``targets`` provisioned."""
    return new_account()


@pytest.fixture(scope="session")
def _provisioned(embedded_aws: EmbeddedAws, _get_client_for_region) -> Callable[[Targets], Topology]:
    """``provisioned(targets)``: the embedded AWS reset, then holding the topology for ``targets``.

    The first time for given targets, ``provision`` creates it through the API; later, the
    state moto held right after that provision is put back (tests/moto_state.py): the same
    account, without its 70 calls.
    """
    provisioned: dict[str, tuple[Topology, MotoState]] = {}

    def reset_and_provision(targets: Targets) -> Topology:
        key = targets.model_dump_json()
        if key in provisioned:
            topology, state = provisioned[key]
            state.reset_and_restore()
            return topology
        embedded_aws.reset()
        topology = provision(_get_client_for_region(targets.region), targets)
        provisioned[key] = (topology, MotoState())
        return topology

    return reset_and_provision


@pytest.fixture
def new_account(embedded_aws: EmbeddedAws, targets: Targets, _get_client_for_region,
                _provisioned: Callable[[Targets], Topology]) -> Callable[[], AwsAccount]:
    """``new_account()``: reset the embedded AWS and provision the topology for ``targets`` again,
    for a test that must start a scenario over on a fresh account."""

    def make() -> AwsAccount:
        topology = _provisioned(targets)
        return AwsAccount(
            get_client=_get_client_for_region(targets.region),
            topology=topology,
            endpoint_url=embedded_aws.endpoint_url,
            targets=targets,
        )

    return make


@pytest.fixture
def independent_client(embedded_aws: EmbeddedAws, targets: Targets) -> Callable[[str], Any]:
    """``independent_client(service)``: a plain boto3 client of its own, shared with nothing.

    For playing a second actor (a person in the console, another run) in a test.
    """

    def make(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=embedded_aws.endpoint_url,
            region_name=targets.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return make


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """A worker with no AWS credentials anywhere boto3 looks: no AWS_* keys, no profile or config
    files, no container or web-identity role, no instance metadata to ask."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def watch_calls() -> Iterator[Callable[[Any], list[str]]]:
    """``watch_calls(client)`` returns a list that fills with the client's operation names.

    The hooks are removed after the test, so shared clients stay clean.
    """
    registered: list[tuple[Any, Callable[..., None]]] = []

    def watch(client: Any) -> list[str]:
        names: list[str] = []

        def record(model: Any, **_: Any) -> None:
            names.append(model.name)

        client.meta.events.register("before-call.*", record)
        registered.append((client, record))
        return names

    yield watch
    for client, record in registered:
        client.meta.events.unregister("before-call.*", record)


@pytest.fixture
def every_call(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], list[str]]:
    """``every_call(service)`` returns a list that fills with the operation names called on
    ``service`` ("ecs", "elbv2", ...) by ANY botocore client in this process, from now on.

    For code under test that builds clients of its own: a flow given block names loads the
    credentials and makes new clients, so ``watch_calls(aws.get_client(...))`` sees none of
    its calls. Recorded before botocore validates or sends anything, in every thread.
    """
    from botocore.client import BaseClient

    watchers: list[tuple[str, list[str]]] = []
    real = BaseClient._make_api_call

    def recorded(client: Any, operation_name: str, api_params: Any) -> Any:
        service = client.meta.service_model.service_name
        for watched, names in list(watchers):
            if watched == service:
                names.append(operation_name)
        return real(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recorded)

    def watch(service: str) -> list[str]:
        names: list[str] = []
        watchers.append((service, names))
        return names

    return watch


@pytest.fixture
def ecs_refuses_inactive_revisions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every botocore client in this process answers UpdateService naming an INACTIVE (deregistered)
    or DELETE_IN_PROGRESS (deleted, still run) task definition as real ECS does ("ClientException:
    TaskDefinition is inactive"); moto points the service at it. Returns the revisions so refused,
    as named, in order.

    At the botocore level, in every thread: a flow given block names makes clients of its own.
    """
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    real = BaseClient._make_api_call
    refused: list[str] = []

    def answered(client: Any, operation_name: str, api_params: Any) -> Any:
        named = api_params.get("taskDefinition") if operation_name == "UpdateService" else None
        if named is not None and client.meta.service_model.service_name == "ecs":
            try:
                status = real(client, "DescribeTaskDefinition", {"taskDefinition": named})["taskDefinition"]["status"]
            except ClientError:
                status = None  # no such revision: moto's own refusal follows
            if status in ("INACTIVE", "DELETE_IN_PROGRESS"):
                refused.append(named)
                raise ClientError({"Error": {"Code": "ClientException", "Message": "TaskDefinition is inactive"}},
                                  operation_name)
        return real(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", answered)
    return refused


@pytest.fixture
def flow_run_records() -> Iterator[list[Any]]:
    """What the ``prefect.flow_runs`` logger hands its handlers (the terminal shows these,
    formatted) while the test runs a flow in-process."""
    yield from _records_of("prefect.flow_runs")


@pytest.fixture
def task_run_records() -> Iterator[list[Any]]:
    """As ``flow_run_records``, for the ``prefect.task_runs`` logger (a failed task's error)."""
    yield from _records_of("prefect.task_runs")


def _records_of(name: str) -> Iterator[list[Any]]:
    import logging

    handed: list[Any] = []
    handler = logging.Handler()
    handler.emit = handed.append  # type: ignore[method-assign]
    logging.getLogger(name).addHandler(handler)
    try:
        yield handed
    finally:
        logging.getLogger(name).removeHandler(handler)


def pytest_sessionstart(session: Any) -> None:
    """Under xdist, each test module's asserts rewritten by one worker for all (tests/rewrite_cache.py)."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if os.environ.get("PYTEST_XDIST_WORKER") and factory is not None:
        from tests.rewrite_cache import share_rewrites

        share_rewrites(session_root(factory.getbasetemp()) / "rewritten")


# Whole-process tests first: pytest-xdist's loadfile hands files to the workers in collection
# order, so a long file collected late (a real server, a demo process) ran while the other worker
# sat idle at the end. The many small unit files come last and fill the workers evenly.
_FIRST = ("tests/integration/", "tests/toolchain/", "tests/flows/", "tests/adapters/", "tests/unit/")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    def rank(item: Any) -> int:
        return next((i for i, prefix in enumerate(_FIRST) if item.nodeid.startswith(prefix)), len(_FIRST))

    items.sort(key=rank)  # stable: a file's tests keep their order


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An endpoint on 127.0.0.1 that takes every connection (the kernel's backlog) and never answers."""
    with unanswering_endpoint() as url:
        yield url


@contextmanager
def unanswering_endpoint() -> Iterator[str]:
    """``silent_endpoint`` for a test that closes it itself: once closed, the calls still waiting
    on it fail at once, as they would once AWS gave up."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def unanswering_client(service: str, endpoint: str, region: str) -> Any:
    """A boto3 client of ``service`` on ``endpoint`` (``silent_endpoint``) that would wait 30 s for
    an answer, once (AWS's default client waits 60 s, and retries)."""
    from botocore.config import Config

    return boto3.client(service, endpoint_url=endpoint, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                        config=Config(read_timeout=30, retries={"mode": "standard", "total_max_attempts": 1}))
