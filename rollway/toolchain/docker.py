"""The docker CLI as an adapter: build, tag, log in, push, log out.

Every call goes through ``rollway.toolchain.process.run_tool`` (an argument list, output
streamed line by line, secrets masked), except ``remote_digest``, which asks the registry's
API (``rollway.toolchain.registry``). Each ``DockerCli`` works in a docker config directory
of its own (``DOCKER_CONFIG``), made by ``docker_session`` and removed when the session ends,
so the registry credentials ``docker login`` stores never land in ``~/.docker`` and do not
outlive the run. A consequence: the caller's ``~/.docker`` (its logins, credential helpers and
contexts) is not used, only its CLI plugins (buildx); name the daemon with ``docker_host``.

No credential helper is used either: when a config file holds no credentials, the docker CLI
looks for a platform default (on Linux ``docker-credential-pass`` when ``pass`` is on PATH,
else ``docker-credential-secretservice``) and would hand it the login to keep in a keyring
that outlives the session; ``"credsStore": ""`` reads as unset and does not stop that. A
config that already names a registry in ``auths`` does (the CLI then keeps what the file
says), so each session's config starts with one that never resolves (``PINNED_CONFIG``). It
names the worker's CLI plugin directories (``worker_plugin_dirs``: buildx), nothing else of its config.

A process killed outright (SIGKILL, the OOM killer) never runs the session's cleanup, and the
login token in its directory stays valid for hours (an ECR token: 12 h). Each directory's name
carries the pid of the process that made it and its pid namespace, so the next session removes
those whose maker is gone (``remove_stale_configs``); a live run's directory is never touched,
nor one made in another pid namespace (a container sharing this /tmp), whose pids mean nothing here.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from pydantic import SecretStr

from rollway.errors_pickle import PicklableError
from rollway.image import plain_tcp_elsewhere
from rollway.one_line import shown
from rollway.toolchain.leftovers import owned_prefix, remove_stale
from rollway.toolchain.process import MASK, TOOL_ENVIRONMENT, ToolError, ToolFailed, ToolResult, resolve, run_tool
from rollway.toolchain.registry import (
    RegistryUnanswered, manifest_config_digest, manifest_digest, manifest_platforms_of, put_tag, split_reference,
)

_INSTALL_HINT = "install the docker CLI (Debian: apt-get install docker.io) or pass its path"
# The daemon's words when the CLI cannot reach it (the socket is missing, or nothing listens).
_UNREACHABLE = ("Cannot connect to the Docker daemon", "error during connect", "Is the docker daemon running")
_PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
# What the CLI inherits from this process: enough to run and to reach a registry through a
# proxy (and an ssh:// daemon through the ssh agent, docker_environment), and nothing else (no
# AWS keys, no DOCKER_* pointing it somewhere it was not told).
_INHERITED = TOOL_ENVIRONMENT | {"XDG_RUNTIME_DIR", "SSL_CERT_FILE", "SSL_CERT_DIR"}


class DockerError(ToolError):
    """Base of every error this adapter raises on purpose."""


# Where the docker CLI looks for its daemon when no DOCKER_HOST is handed to it (on Linux).
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# A password in a daemon's address (scheme://user:password@host): up to the host's @, the last one,
# a / included (a generated password holds one). Not a port and the path after it: tcp://'s path
# is the API's base path, and an @ in it (tcp://127.0.0.1:2375/build@1) read as a password, the
# address refused and said "tcp://127.0.0.1:****@1". A host in brackets (an IPv6 address) is
# the host's, its colons included. unix:// and npipe:// have no host: their path has no colon before it.
_HOST_PASSWORD = re.compile(r"^([a-z]+://(?:\[[^\]/@]*\]|[^/:@\[])*):(?!\d*(?:/|$)).*@", re.DOTALL)


def host_said(host: str) -> str:
    """A daemon's address as said to a person, in a log, a run's state or its artifact: a
    password in it as ``****``, control characters (a line break, an escape) escaped. The
    worker's DOCKER_HOST is quoted as it was set, which rollway never checked."""
    return shown(_HOST_PASSWORD.sub(rf"\1:{MASK}@", host), keep="")


def holds_password(host: str) -> bool:
    """Whether a daemon's address has a password in it (scheme://user:password@host)."""
    return _HOST_PASSWORD.match(host) is not None


class DaemonUnreachable(PicklableError, DockerError):
    """The docker CLI runs but no docker daemon answers where it looked."""

    def __init__(self, host: str | None, detail: str, *, ignored: str | None = None) -> None:
        self.host = host
        where = host_said(host) if host else f"the default socket ({DEFAULT_SOCKET})"
        # A DOCKER_HOST naming the default socket names where docker looked: no other daemon.
        ignored = host_said(ignored) if ignored and ignored != DEFAULT_SOCKET else None
        # ``ignored``: the worker's own DOCKER_HOST, which docker is not handed (docker_environment):
        # a CI runner's docker-in-docker daemon is named there, and the operator's shell reaches it.
        unused = f"the worker's DOCKER_HOST ({ignored}) is not used (docker is given only the daemon the run is told)"
        if host is not None or not ignored:
            remedy = "pass docker_host (e.g. unix:///run/docker.sock)"
        elif plain_tcp_elsewhere(ignored):
            # Passed as docker_host, it was refused for an ECR release (PublishRequest): docker
            # hands the daemon ECR's login, and would send it there unencrypted.
            remedy = (f"{unused}, and a release to ECR is not told it: it is plain TCP to another machine, to which "
                      "docker would hand ECR's login unencrypted (rollway gives docker no TLS settings); name that "
                      "daemon as ssh://<user>@<host>, or pass it as docker_host with registry=... (a registry that "
                      "takes pushes without a login)")
        else:
            remedy = f"{unused}: pass docker_host={ignored!r} if that is the daemon"
        super().__init__(f"no docker daemon answers at {where}: start dockerd, or {remedy}; docker said: {detail}")


class BuildFailed(PicklableError, DockerError):
    """``docker build`` failed; ``tail`` holds docker's last lines (the reason is there)."""

    def __init__(self, context: str, tail: Sequence[str]) -> None:
        self.context = context
        self.tail = tuple(tail)
        shown = "\n".join(buildkit_failure(self.tail) or _meaningful(self.tail)[-12:]) or "(no output)"
        super().__init__(f"docker build of {context} failed; docker's last output:\n{shown}")


_SOLVE_FAILED = "ERROR: failed to solve:"
_SEPARATOR = re.compile(r"^-{6,}$")


def buildkit_failure(lines: Sequence[str], most: int = 10) -> list[str]:
    """What a failed BuildKit build says of its failure, in docker's ``lines``: the failing step
    (BuildKit's `` > [4/5] RUN ...:``) with its last ``most`` lines of output, where it is in the
    Dockerfile (``Dockerfile:4: >>> RUN ...``) and BuildKit's ``ERROR: failed to solve:`` line;
    empty for output with no such step (the legacy builder's, a failure of no step).

    After the step's output BuildKit prints the Dockerfile around the failing line (up to a dozen
    lines): docker's last lines, all a person was shown, could be that snippet alone.
    """
    lines = [line.rstrip() for line in _meaningful(lines)]
    solve = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith(_SOLVE_FAILED)), None)
    if solve is None:
        return []
    # BuildKit's block for the failing step: "------", " > [step]:", its last lines, "------".
    step = next((i for i in range(solve - 1, -1, -1) if lines[i].startswith(" > [")), None)
    if step is None:  # a failure of no step (an unreadable Dockerfile): docker's last lines say it
        return []
    after = next((i for i in range(step + 1, solve) if _SEPARATOR.match(lines[i].strip())), solve)
    shown = [lines[step].strip()] + lines[step + 1:after][-most:]
    # The Dockerfile's name as given (Dockerfile, build/app.Dockerfile...) and the failing line's number.
    where = next((line.strip() for line in lines[after + 1:solve] if re.fullmatch(r"\S+:\d+", line.strip())), None)
    marked = next((line.strip() for line in lines[after:solve] if ">>>" in line), None)
    if where is not None:
        shown.append(f"{where}: {marked}" if marked is not None else where)
    return shown + lines[solve:]


class PushRefused(PicklableError, DockerError):
    """The registry refused a push (no login, denied, an immutable tag already there...), or it
    failed; ``pushes``: how many times it was pushed, the last failing so (``retry_reason``)."""

    def __init__(self, reference: str, tail: Sequence[str], *, pushes: int = 1) -> None:
        self.reference = reference
        self.tail = tuple(tail)
        self.pushes = pushes
        shown = "\n".join(_meaningful(self.tail)[-8:]) or "(no output)"
        again = (f" {pushes} times (pushed again after each failure that passes, as a connection reset or a "
                 "registry's 5xx; docker's words are the last push's)") if pushes > 1 else ""
        super().__init__(f"push of {reference} failed{again}; docker said:\n{shown}")


# Why a failed push (or login) may be made again (``retry_reason``). docker push already retries
# each layer's upload a few times ("Retrying in 5 seconds"); what reaches here failed all of those. Its words,
# as the CLI (classic and containerd image store) prints them:
# ECR's for a push made with a login past its expiry ("denied: Your authorization token has
# expired. Reauthenticate and try again."; before 2020: "Your Authorization Token has expired").
_LOGIN_EXPIRED = "authorization token has expired"
# A refusal the registry would make again: never pushed again.
_FINAL = ("denied", "unauthorized", "not authorized", "no basic auth credentials", "tag invalid", "manifest invalid",
          "immutable", "name unknown", "does not exist locally", "repository does not exist",
          "server gave http response to https client", "x509:", "certificate")
# The network or the registry failing in passing.
_TRANSIENT = re.compile(
    r"connection reset by peer|broken pipe|tls handshake timeout|i/o timeout|unexpected eof"
    r"|client\.timeout exceeded|server sent goaway|toomanyrequests|rate exceeded"
    r"|\b5\d\d (?:internal server error|bad gateway|service unavailable|gateway time-?out)"
    r"|error parsing http 5\d\d response", re.IGNORECASE)


class RetryReason(NamedTuple):
    """Why a failed push (or login: ``transient`` only) is worth making again: ``login`` (ECR's
    login expired during it: log in again first) or ``transient`` (the network or the registry
    failing in passing: wait first), and the line of docker's that says so."""

    kind: str
    said: str


def retry_reason(err: BaseException) -> RetryReason | None:
    """Whether the failed push or login ``err`` is worth making again, and why; None for a
    refusal the registry would make again (denied, not authorized, an immutable tag, an invalid
    manifest), anything but a ``PushRefused`` or ``LoginRefused``, or words it does not know. The
    one place that decides it."""
    if not isinstance(err, (PushRefused, LoginRefused)):
        return None
    lines = [line.strip() for line in _meaningful(err.tail)]
    expired = next((line for line in lines if _LOGIN_EXPIRED in line.lower()), None)
    if expired is not None:
        return RetryReason("login", expired)
    if any(word in line.lower() for line in lines for word in _FINAL):
        return None
    transient = next((line for line in reversed(lines) if _TRANSIENT.search(line)), None)
    return RetryReason("transient", transient) if transient is not None else None


class LoginRefused(PicklableError, DockerError):
    """The registry refused the login (the password is never part of the message)."""

    def __init__(self, registry: str, tail: Sequence[str]) -> None:
        self.registry = registry
        self.tail = tuple(tail)
        shown = "\n".join(_meaningful(self.tail)[-6:]) or "(no output)"
        super().__init__(f"docker login to {registry} failed; docker said:\n{shown}")


class DockerCommandFailed(DockerError):
    """Another docker command failed (tag, logout, inspect)."""


def _meaningful(lines: Sequence[str]) -> list[str]:
    """Docker's lines without the legacy builder's deprecation notice (buildx is not installed
    here), which otherwise fills the tail an error shows."""
    noise = ("DEPRECATED: The legacy builder", "Install the buildx component", "https://docs.docker.com/go/buildx")
    return [line for line in lines if line.strip() and not any(n in line for n in noise)]


def docker_environment(inherited: Mapping[str, str], config_dir: str | os.PathLike[str],
                       docker_host: str | None) -> dict[str, str]:
    """The docker CLI's whole environment: the few variables of ``inherited`` it needs, its
    private config directory, and the daemon it was told (never one DOCKER_* chose)."""
    env = {k: v for k, v in inherited.items() if k in _INHERITED or k.startswith("LC_")}
    env["DOCKER_CONFIG"] = str(config_dir)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    if docker_host and docker_host.startswith("ssh://") and "SSH_AUTH_SOCK" in inherited:
        # docker reaches an ssh:// daemon by running ssh, which finds a key held by an agent (a CI
        # runner's, a forwarded one) only through this socket: without it, "Permission denied".
        env["SSH_AUTH_SOCK"] = inherited["SSH_AUTH_SOCK"]
    # No "What's next" hints in the logs.
    env["DOCKER_CLI_HINTS"] = "false"
    return env


# docker prints no upload or download progress when its output is not a terminal (only each
# layer's "Preparing", "Pushed"...): a layer of a few hundred MB pushes, or a base image pulls,
# for minutes with nothing in the log, as a hung push would look. After this long without a line,
# one says the command is still going.
QUIET_NOTICE_SECONDS = 60.0


class _StillRunning:
    """Passes docker's lines on, and after ``every`` seconds without one says the command is
    still going (from a thread of its own, until ``stop``)."""

    def __init__(self, what: str, on_line: Callable[[str], None], every: float) -> None:
        self._what, self._on_line, self._every = what, on_line, every
        self._started = self._last_line = self._last_notice = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"still-running-{what}", daemon=True)
        self._thread.start()

    def line(self, text: str) -> None:
        self._last_line = time.monotonic()
        self._on_line(text)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(max(0.05, self._every / 4)):
            now = time.monotonic()
            if now - max(self._last_line, self._last_notice) >= self._every:
                self._last_notice = now
                self._on_line(f"{self._what} is still running ({now - self._started:.0f} s so far, nothing printed "
                              f"for {now - self._last_line:.0f} s: docker shows no upload or download progress "
                              "when its output is not a terminal)")


class DockerCli:
    """One docker CLI, one daemon, one private config directory.

    Args:
        executable: the resolved ``docker`` executable.
        config_dir: the private ``DOCKER_CONFIG`` (``docker_session`` makes and removes one).
        docker_host: ``DOCKER_HOST`` for the daemon (None: the CLI's default socket).
        on_line: called with every line docker prints, and with a line saying a command is still
            running after ``quiet_notice_seconds`` without one.
        timeout_seconds: how long one build or push may take.
    """

    def __init__(self, executable: str, config_dir: str | os.PathLike[str], *, docker_host: str | None = None,
                 on_line: Callable[[str], None] | None = None, timeout_seconds: float = 1800.0,
                 quiet_notice_seconds: float = QUIET_NOTICE_SECONDS) -> None:
        self.executable = executable
        self.config_dir = Path(config_dir)
        self.docker_host = docker_host
        self._on_line = on_line
        self._timeout = timeout_seconds
        self._quiet_notice = quiet_notice_seconds

    def _env(self) -> dict[str, str]:
        return docker_environment(os.environ, self.config_dir, self.docker_host)

    def _run(self, *args: str, stdin: str | None = None, secrets: Sequence[str] = (),
             timeout_seconds: float | None = None, quiet: bool = False, first_ask: bool = False) -> ToolResult:
        """Run ``docker <args>``; DaemonUnreachable when docker says it cannot reach the daemon,
        the run_tool error as it came otherwise. ``first_ask``: the daemon was not reached yet, so
        the refusal names the worker's DOCKER_HOST; a daemon that answered before is the one that
        stopped (restarted, crashed), and a re-run on another would not build where this one did."""
        watch = None if quiet or self._on_line is None else _StillRunning(f"docker {args[0]}", self._on_line,
                                                                          self._quiet_notice)
        try:
            return run_tool([self.executable, *args], timeout_seconds=timeout_seconds or self._timeout,
                            env=self._env(), stdin=stdin, secrets=secrets,
                            on_line=None if watch is None else watch.line)
        except ToolFailed as err:
            unreachable = next((line for line in err.tail if any(u in line for u in _UNREACHABLE)), None)
            if unreachable is not None:
                raise DaemonUnreachable(self.docker_host, unreachable.strip(),
                                        ignored=os.environ.get("DOCKER_HOST") if first_ask else None) from err
            raise
        finally:
            if watch is not None:
                watch.stop()

    def server_version(self) -> str:
        """The daemon's version: the cheap check that it answers, before anything is built.

        Raises:
            DaemonUnreachable: it does not.
        """
        try:
            result = self._run("version", "--format", "{{.Server.Version}}", timeout_seconds=60, quiet=True,
                               first_ask=True)
        except ToolFailed as err:
            raise DaemonUnreachable(self.docker_host, " ".join(_meaningful(err.tail)[-2:]),
                                    ignored=os.environ.get("DOCKER_HOST")) from err
        return result.output[-1].strip() if result.output else ""

    def build(self, context_dir: str | os.PathLike[str], *, dockerfile: str | os.PathLike[str] | None = None,
              tags: Sequence[str] = (), labels: Mapping[str, str] | None = None) -> str:
        """Build the image of ``context_dir`` and return its id (``sha256:...``).

        Args:
            context_dir: the build context.
            dockerfile: the Dockerfile (default: ``Dockerfile`` in the context); a relative
                path is taken from the context, as the seed's ``cd <dir>; docker build .`` did.
            tags: references to tag the image with.
            labels: image labels (e.g. ``org.opencontainers.image.version``).

        Raises:
            BuildFailed: docker's reason in its last lines.
            DaemonUnreachable: no daemon.
        """
        context = Path(context_dir).resolve()
        iidfile = Path(tempfile.mkdtemp(prefix="build-", dir=self.config_dir)) / "iid"
        args = ["build", "--iidfile", str(iidfile)]
        if dockerfile is not None:
            path = Path(dockerfile)
            args += ["--file", str(path if path.is_absolute() else context / path)]
        for key, value in (labels or {}).items():
            args += ["--label", f"{key}={value}"]
        for tag in tags:
            args += ["--tag", tag]
        args.append(str(context))
        try:
            self._run(*args)
        except ToolFailed as err:
            raise BuildFailed(str(context), err.tail) from err
        image_id = iidfile.read_text().strip()
        shutil.rmtree(iidfile.parent, ignore_errors=True)
        if not _IMAGE_ID.fullmatch(image_id):
            raise DockerCommandFailed(f"docker build of {context} wrote no image id (got {image_id!r})")
        return image_id

    def image_platform(self, image: str) -> str:
        """The platform ``image`` (an id or reference) was built for: ``os/architecture``
        (``linux/amd64``), as the daemon records it."""
        try:
            result = self._run("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image,
                               timeout_seconds=60, quiet=True)
        except ToolFailed as err:
            raise DockerCommandFailed(str(err)) from err
        return result.output[-1].strip() if result.output else ""

    def tag(self, image: str, reference: str) -> None:
        """Tag ``image`` (an id or reference) as ``reference``."""
        try:
            self._run("tag", image, reference, timeout_seconds=60)
        except ToolFailed as err:
            raise DockerCommandFailed(str(err)) from err

    def login(self, registry: str, username: str, password: SecretStr) -> None:
        """Log in to ``registry``; the password goes on stdin and is masked in every line.

        The credentials land in this CLI's private config directory only.

        Raises:
            LoginRefused: the registry said no (or could not be reached).
        """
        secret = password.get_secret_value()
        try:
            self._run("login", "--username", username, "--password-stdin", registry, stdin=secret,
                      secrets=[secret], timeout_seconds=120)
        except ToolFailed as err:
            raise LoginRefused(registry, err.tail) from None  # its command line is harmless, but say only why

    def logout(self, registry: str) -> None:
        """Forget the login to ``registry`` (in this CLI's private config)."""
        try:
            self._run("logout", registry, timeout_seconds=60)
        except ToolFailed as err:
            raise DockerCommandFailed(str(err)) from err

    def push(self, reference: str) -> str:
        """Push ``reference`` and return the digest the registry stored (``sha256:...``).

        Raises:
            PushRefused: the registry refused it; docker's reason is in the message.
            DaemonUnreachable: no daemon.
        """
        try:
            result = self._run("push", reference)
        except ToolFailed as err:
            raise PushRefused(reference, err.tail) from err
        digests = [m.group(1) for line in result.output for m in [_PUSHED_DIGEST.search(line)] if m]
        if not digests:
            raise DockerCommandFailed(f"docker push {reference} printed no digest; its output: {result.output[-5:]}")
        return digests[-1]

    def pushed_as(self, image: str) -> tuple[str, ...]:
        """What ``image`` (an id) was pushed as, as this daemon recorded it (its RepoDigests:
        ``<registry>/<repository>@<digest>``)."""
        try:
            result = self._run("image", "inspect", "--format", "{{json .RepoDigests}}", image,
                               timeout_seconds=60, quiet=True)
            digests = json.loads(result.output[-1]) if result.output else "nothing"
        except ToolFailed as err:
            raise DockerCommandFailed(str(err)) from err
        except ValueError:
            digests = "no JSON"
        if digests is None:  # an image never pushed nor pulled
            return ()
        if not isinstance(digests, list):
            raise DockerCommandFailed(f"docker image inspect {image} gave no RepoDigests list ({digests!r})")
        return tuple(str(d) for d in digests)

    def remote_digest(self, reference: str) -> str | None:
        """The digest the registry holds for ``reference``, or None when it holds no such tag,
        with this CLI's login to the registry when it has one.

        Asked over the registry's API (``rollway.toolchain.registry``), not with ``docker
        manifest inspect``: for an image index (what the containerd image store pushes) that
        shows only the platform manifests' digests, never the index's that ``push`` reported.
        Plain HTTP is allowed only for a registry on this machine (as dockerd allows it).

        Raises:
            DockerCommandFailed: the registry could not be asked (unreachable, unauthorized).
        """
        try:
            registry = split_reference(reference)[0]
            return manifest_digest(reference, login=self._login_for(registry), timeout_seconds=120)
        except RegistryUnanswered as err:
            raise DockerCommandFailed(f"could not ask the registry whether {reference} exists: {err}") from None

    def remote_platforms(self, reference: str) -> tuple[str, ...]:
        """The platforms the image the registry holds for ``reference`` runs on, asked over the
        registry's API as ``remote_digest`` is (nothing is pulled).

        Raises:
            DockerCommandFailed: the registry could not tell (unreachable, unauthorized, no image).
        """
        try:
            registry = split_reference(reference)[0]
            return manifest_platforms_of(reference, login=self._login_for(registry), timeout_seconds=120)
        except RegistryUnanswered as err:
            raise DockerCommandFailed(f"could not ask the registry which platform {reference} runs on: {err}") from None

    def remote_config_digest(self, reference: str) -> str | None:
        """The config blob's digest the manifest the registry holds for ``reference``
        (``<registry>/<repository>@<digest>``) names, None for an image index; asked over the
        registry's API as ``remote_digest`` is. The classic image store's image id is that digest.

        Raises:
            DockerCommandFailed: the registry could not tell (unreachable, unauthorized, no such manifest).
        """
        try:
            registry = split_reference(reference)[0]
            return manifest_config_digest(reference, login=self._login_for(registry), timeout_seconds=120)
        except RegistryUnanswered as err:
            raise DockerCommandFailed(f"could not read the manifest of {reference} from the registry: {err}") from None

    def remote_tag(self, source: str, tag: str) -> str:
        """Tag the image the registry holds for ``source`` as ``tag`` in its repository, over the
        registry's API (its manifest put again under the tag: nothing pulled); returns its digest.

        Raises:
            DockerCommandFailed: the registry could not be asked, or refused.
        """
        try:
            registry = split_reference(source)[0]
            return put_tag(source, tag, login=self._login_for(registry), timeout_seconds=120)
        except RegistryUnanswered as err:
            raise DockerCommandFailed(f"could not tag {source} as {tag} in the registry: {err}") from None

    def _login_for(self, registry: str) -> tuple[str, str] | None:
        """The (username, password) ``login`` left in the private config for ``registry``, if any."""
        try:
            auths = json.loads((self.config_dir / "config.json").read_text()).get("auths", {})
            username, _, password = base64.b64decode(auths[registry]["auth"]).decode().partition(":")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        return (username, password) if username else None


CONFIG_PREFIX = "rollway-docker-"
# The docker CLI detects a default credential helper only for a config file without credentials
# (config.LoadDefaultConfigFile: "if !configFile.ContainsAuth()"; an empty credsStore counts as
# none). An entry in auths, for a host that never resolves (RFC 6761), makes it keep logins in
# this file: in the session's directory, removed with it.
PINNED_CONFIG = '{"auths": {"rollway.invalid": {}}}\n'


def session_config(inherited: Mapping[str, str]) -> str:
    """The private config.json a session starts with: ``PINNED_CONFIG``'s auths, and the CLI
    plugin directories of the worker's own docker config (``worker_plugin_dirs``)."""
    config: dict[str, object] = json.loads(PINNED_CONFIG)
    plugins = worker_plugin_dirs(inherited)
    if plugins:
        config["cliPluginsExtraDirs"] = plugins
    return json.dumps(config) + "\n"


def worker_plugin_dirs(inherited: Mapping[str, str]) -> list[str]:
    """The docker CLI plugin directories the worker's docker finds besides the system's: its
    config directory's ``cli-plugins`` (where docker's docs install buildx by hand) and the
    ``cliPluginsExtraDirs`` its config.json names (Docker Desktop's), those that exist.

    The CLI looks for plugins in its config directory, and a session's is private: buildx
    installed there was not found, and docker fell back to its deprecated legacy builder, which
    refuses what BuildKit Dockerfiles use (RUN --mount, heredocs, ``# syntax=``). Only the
    directories are taken from the worker's config, never its logins or credential helpers.
    """
    home = inherited.get("HOME")
    given = inherited.get("DOCKER_CONFIG")
    if not given and not home:
        return []
    config_dir = Path(given) if given else Path(str(home)) / ".docker"
    found = [str(config_dir / "cli-plugins")]
    try:
        extra = json.loads((config_dir / "config.json").read_text()).get("cliPluginsExtraDirs") or []
    except (OSError, ValueError, AttributeError):
        extra = []
    if isinstance(extra, list):
        found += [d for d in extra if isinstance(d, str) and d]
    return [d for d in dict.fromkeys(found) if Path(d).is_dir()]

def _config_prefix() -> str:
    return owned_prefix(CONFIG_PREFIX)


def remove_stale_configs(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the private docker configs of sessions whose process is gone, and say which
    (``rollway.toolchain.leftovers.remove_stale``: never a live run's).

    Args:
        root: where the sessions make their directories (default: the temporary directory).

    Returns:
        The directories removed.
    """
    return remove_stale(CONFIG_PREFIX, root)


def find_docker(executable: str = "docker") -> str:
    """The docker CLI's full path, or ToolMissing saying how to install it."""
    return resolve(executable, _INSTALL_HINT)


@contextmanager
def docker_session(executable: str = "docker", *, docker_host: str | None = None,
                   on_line: Callable[[str], None] | None = None,
                   timeout_seconds: float = 1800.0) -> Iterator[DockerCli]:
    """A ``DockerCli`` with a private config directory (mode 0700), removed at the end
    whatever happened, with any credentials a login stored in it.

    Its ``config.json`` keeps logins in the file, never in a credential helper
    (``PINNED_CONFIG``). First it removes the directories of sessions whose process was
    killed before it could (``remove_stale_configs``), naming each through ``on_line``.

    Raises:
        ToolMissing: the executable is not installed (before anything runs).
    """
    found = find_docker(executable)
    for stale in remove_stale_configs():
        if on_line is not None:
            on_line(f"removed {stale}, the private docker config of a run that was killed before removing it")
    # mkdtemp makes it 0700 (the umask can only narrow that); the pid tells later sessions whose it is.
    config_dir = tempfile.mkdtemp(prefix=_config_prefix())
    try:
        # Logins stay in this file, never in a credential helper's keyring (PINNED_CONFIG).
        descriptor = os.open(Path(config_dir) / "config.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as config:
            config.write(session_config(os.environ))
        yield DockerCli(found, config_dir, docker_host=docker_host, on_line=on_line,
                        timeout_seconds=timeout_seconds)
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)
