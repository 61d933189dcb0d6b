"""The embedded AWS: moto's server on 127.0.0.1, in a thread of this process.

Clients reach it exactly as they would reach a real account, through an endpoint URL, so
nothing outside ``rollway.sim`` and the tests knows it is not AWS.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from types import TracebackType

from moto.moto_server.threaded_moto_server import ThreadedMotoServer

_HOST = "127.0.0.1"


class EmbeddedAwsError(RuntimeError):
    """The embedded AWS could not be started or reached."""


class EmbeddedAws:
    """moto's threaded server bound to loopback, started and stopped by its owner.

    Args:
        port: TCP port to listen on; ``None`` lets the operating system pick a free one when
            the server binds, so two instances (or two test sessions) never collide.
        quiet: keep werkzeug from logging every request (it logs at INFO to stderr); this
            sets the process-wide ``werkzeug`` logger to WARNING.
        ready_timeout_seconds: how long ``start()`` waits for the server to answer.

    Example:
        >>> with EmbeddedAws() as aws:  # doctest: +SKIP
        ...     client = boto3.client("sqs", endpoint_url=aws.endpoint_url, ...)
    """

    def __init__(
        self, port: int | None = None, *, quiet: bool = True, ready_timeout_seconds: float = 30.0
    ) -> None:
        self._requested_port = port
        self._quiet = quiet
        self._ready_timeout = ready_timeout_seconds
        self._server: ThreadedMotoServer | None = None
        self._endpoint_url: str | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server.

        Raises:
            EmbeddedAwsError: the server is not running.
        """
        if self._endpoint_url is None:
            raise EmbeddedAwsError("the embedded AWS is not running: call start() first")
        return self._endpoint_url

    def start(self) -> str:
        """Start the server and wait until it answers HTTP; return its endpoint URL.

        Starting a running instance returns its URL without starting a second server.

        Raises:
            EmbeddedAwsError: the requested port is taken, or the server did not answer in time.
        """
        if self._endpoint_url is not None:
            return self._endpoint_url
        port = self._requested_port or 0
        if port:
            # ThreadedMotoServer.start() waits forever if its thread fails to bind, so a taken
            # port has to be found before handing it over.
            _check_port_free(port)
        if self._quiet:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # moto builds its EC2 backend again after every reset, with thousands of public AMIs (and
        # a snapshot and a volume for each): 0.16 s of CPU per reset of an account that only
        # uses VPCs, subnets and security groups (Fargate launches no instances). moto reads
        # the setting each time it builds the backend; one that the caller set is kept.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        _service_folders_listed_once()
        server = ThreadedMotoServer(ip_address=_HOST, port=port, verbose=False)
        server.start()
        self._server = server
        host, bound_port = server.get_host_and_port()
        url = f"http://{host}:{bound_port}"
        try:
            _wait_until_answering(url, self._ready_timeout)
        except EmbeddedAwsError:
            self.stop()
            raise
        self._endpoint_url = url
        return url

    def stop(self) -> None:
        """Stop the server this instance started (no error if it is not running)."""
        server, self._server, self._endpoint_url = self._server, None, None
        if server is not None:
            server.stop()

    def reset(self) -> None:
        """Forget every resource in every service and region: a clean account.

        moto keeps its state per process, so this also clears state that in-process
        ``mock_aws`` code created in this process.
        """
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=self._ready_timeout) as response:
            if response.status != 200:
                raise EmbeddedAwsError(f"moto reset answered HTTP {response.status}")

    def __enter__(self) -> "EmbeddedAws":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _service_folders_listed_once() -> None:
    """Have moto's server list its service folders once per process, not on every request.

    For each request the server asks whether the Host header names one of moto's service
    folders, and finds out by listing its package's directory and checking each entry's type:
    a Host of ``127.0.0.1:PORT``, every one here, names none, so all of them, about 1.3 ms of
    CPU per request (0.3-2 ms where it names one). The installed package does not change while
    the process runs; the folders are listed once, in moto's own order.
    """
    from moto import backends

    if getattr(backends.list_of_moto_modules, "listed_once", False):
        return
    folders = tuple(backends.list_of_moto_modules())

    def listed() -> Iterator[str]:
        return iter(folders)

    listed.listed_once = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = listed


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((_HOST, port))
        except OSError as err:
            raise EmbeddedAwsError(f"port {port} on {_HOST} is not free: {err}") from err


def _wait_until_answering(url: str, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            # The dashboard page is static; data.json dumps every resource of the process
            # (moto keeps one state per process) and grows slow as tests add resources.
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=5.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as err:
            last_error = err
        # A short pause between polls of a server that is still binding; not a fake of time.
        time.sleep(0.05)
    raise EmbeddedAwsError(
        f"the embedded AWS at {url} did not answer within {timeout_seconds}s: {last_error}"
    )
