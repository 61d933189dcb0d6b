"""InfraDeployer over the real ``cdk`` CLI: list an app's stacks, deploy one stack at a time.

The app is synthesized once (``cdk synth --quiet --output <dir>``) into a cloud assembly of
this adapter's own; its ``manifest.json`` gives the stacks and their dependencies, and every
deploy then runs ``cdk deploy <Stack> --app <that assembly> --exclusively``, so each stack
deployed is exactly the one listed (and the app is not synthesized again per stack).

Everything goes through ``rollway.toolchain.process``: an argument list, a timeout that stops
cdk and its children, output streamed line by line, and the secret access key masked in
every line kept or shown. Credentials reach cdk as environment variables of its process only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from rollway.bounds import seconds_said
from rollway.infra import (TOOLKIT_STACK, AppNotListed, AppStacks, DeployedStack, PlanRefused, StackDeployFailed,
                           environment_of, named_resources)
from rollway.one_line import on_one_line
from rollway.toolchain.leftovers import owned_prefix, remove_stale
from rollway.toolchain.process import TOOL_ENVIRONMENT, ToolFailed, ToolTimeout, last_lines, resolve, run_tool

_STACK_ARTIFACT = "aws:cloudformation:stack"
_NESTED_ASSEMBLY = "cdk:cloud-assembly"
# The process environment a tool needs to run at all (node finds itself, writes its cache,
# reaches a proxy); AWS_* is never inherited when the credentials are given.
_INHERITED = TOOL_ENVIRONMENT | {"LC_ALL", "TZ", "NODE_OPTIONS", "NODE_EXTRA_CA_CERTS"}
# Where the worker keeps its AWS config and whom it trusts: no credentials, but a profile is
# looked up there and TLS to AWS (a corporate proxy) needs the bundle, whichever credentials.
# Which endpoints to use: with keys given, a worker set to FIPS endpoints (GovCloud, FedRAMP)
# read through them in the flow's boto3 while cdk deployed through the standard ones.
_AWS_SETTINGS = ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CA_BUNDLE", "AWS_USE_FIPS_ENDPOINT",
                 "AWS_USE_DUALSTACK_ENDPOINT")
# The docker daemon the worker uses and how to reach it: cdk runs docker to build and push an app's
# image assets (ContainerImage.fromAsset) and to bundle its functions; without them docker went to
# /var/run/docker.sock, and on a worker reaching its daemon through DOCKER_HOST (CI's docker-in-
# docker, rootless docker, colima, podman) the deploy failed with "Cannot connect to the Docker
# daemon" where `cdk deploy` by hand worked. CDK_DOCKER names another docker-compatible CLI.
_DOCKER_SETTINGS = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
                    "CDK_DOCKER")
# The worker's secrets cdk may inherit (no keys given): its keys, and the container credential
# provider's token (ECS, EKS Pod Identity), which fetches the task role's credentials.
_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                     "AWS_CONTAINER_AUTHORIZATION_TOKEN")
# What the CDK CLI is called: the npm shim on PATH (``cdk``, ``cdk.cmd`` on Windows) or its script.
CDK_NAMES = ("cdk", "cdk.cmd", "cdk.js")
# How the line saying a silent cdk is still running begins (``CdkCli``'s ``quiet_seconds``): a caller
# keeping cdk's own lines out of sight (a synth's, at debug level) still shows these.
STILL_RUNNING = "(still running after "
STALE_REMOVED = "(removed "
"""How the line saying a killed run's assembly was removed starts (not cdk's: logged as notices are)."""
ASSEMBLY_PREFIX = "rollway-cdk-"
"""Where ``list_stacks`` synthesizes the app: a temporary directory named so (``owned_prefix``)."""
_ARN = re.compile(r"^arn:aws[a-z-]*:cloudformation:\S+:stack/\S+$")
_LOOPBACK = {"127.0.0.1", "::1"}


def check_cdk_executable(path: str | os.PathLike[str]) -> None:
    """Refuse a resolved executable that is not named like the CDK CLI.

    A guard against a slip (``cdk_executable=python``, a path to another tool), not against
    someone who may run the deployment: they run the app's code on the worker anyway.

    Raises:
        ValueError: the file's name is not one of ``CDK_NAMES``.
    """
    name = Path(path).name
    if name.lower() not in CDK_NAMES:
        raise ValueError(f"{str(path)!r} is not the AWS CDK CLI: its name is {name!r}, not one of "
                         f"{', '.join(CDK_NAMES)}; pass the path of the cdk CLI (npm install aws-cdk puts it in "
                         "node_modules/.bin/cdk)")


class CdkEnvironment(BaseModel):
    """The account cdk deploys to, as the environment of its process.

    Attributes:
        region: where the stacks go (CDK_DEFAULT_REGION, AWS_REGION).
        account: the 12-digit account id (CDK_DEFAULT_ACCOUNT); None lets cdk ask STS.
        access_key_id / secret_access_key / session_token: the credentials; None inherits
            this process's AWS_* variables (boto3's default chain: an instance role, a profile).
        profile: an AWS profile name instead of keys.
        endpoint_url: an AWS-compatible endpoint (the embedded AWS) instead of AWS.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str
    account: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    profile: str | None = None
    endpoint_url: str | None = None

    @field_validator("account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{12}", value):
            raise ValueError(f"{value!r} is not an AWS account id (12 digits)")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"{value!r} is not an http(s) endpoint URL")
        return value

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values to mask in cdk's output."""
        return tuple(s.get_secret_value() for s in (self.secret_access_key, self.session_token) if s is not None)

    def variables(self, inherit: Mapping[str, str] | None = None) -> dict[str, str]:
        """The whole environment of a cdk process.

        Args:
            inherit: the environment to take PATH, HOME, proxies, the docker daemon settings (and,
                without keys, AWS_*) from; this process's by default.
        """
        inherit = os.environ if inherit is None else inherit
        env = {k: inherit[k] for k in (*_INHERITED, *_AWS_SETTINGS, *_DOCKER_SETTINGS) if k in inherit}
        if self.access_key_id is None and self.profile is None:
            # No credentials given: cdk finds them as boto3 would, from this process's chain.
            env.update({k: v for k, v in inherit.items() if k.startswith("AWS_")})
        env.update({
            "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region, "CDK_DEFAULT_REGION": self.region,
            # Offline-safe and quiet: no version check, no telemetry, no notices fetched.
            "CDK_DISABLE_VERSION_CHECK": "1", "CDK_DISABLE_CLI_TELEMETRY": "true", "CI": "true",
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
            # On node < 22 cdk's AWS SDK printed nine lines about its later versions at every cdk run's first
            # AWS call: in each deploy's log, and most of the last lines a fast failure's error quotes.
            "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true",
        })
        if self.account:
            env["CDK_DEFAULT_ACCOUNT"] = self.account
        if self.access_key_id is not None:
            env["AWS_ACCESS_KEY_ID"] = self.access_key_id
            if self.secret_access_key is not None:
                env["AWS_SECRET_ACCESS_KEY"] = self.secret_access_key.get_secret_value()
            if self.session_token is not None:
                env["AWS_SESSION_TOKEN"] = self.session_token.get_secret_value()
        if self.profile is not None:
            env["AWS_PROFILE"] = self.profile
        if self.endpoint_url is not None:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
            # CloudFormation is handed template URLs on this endpoint; moto takes a URL as one
            # of its S3 buckets only when its host says "localhost" (DESIGN.md, Real components).
            env["AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION"] = _localhost(self.endpoint_url)
        return env


def _localhost(url: str) -> str:
    parts = urlsplit(url)
    if parts.hostname in _LOOPBACK:
        netloc = "localhost" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class CdkCli:
    """Lists and deploys the stacks of one CDK app with the ``cdk`` CLI.

    Args:
        executable: the cdk CLI (a name on PATH or a path).
        app_dir: the CDK app's directory (where its cdk.json is).
        environment: the account to deploy to; or a callable giving it afresh for each cdk run,
            for temporary credentials that would expire during a long run of deploys.
        direct: deploy with ``--method=direct`` (no change sets: what the embedded AWS needs).
        synth_timeout_seconds: how long synthesizing the app may take.
        quiet_seconds: after this long with no output from cdk, a line saying it is still running
            goes to ``on_line`` (again after every such silence).

    Raises:
        ToolMissing: the executable is not found (at construction, before anything runs).
        ValueError: ``app_dir`` is not a directory with a cdk.json, or the executable is not
            named like the cdk CLI (``check_cdk_executable``).
    """

    def __init__(self, executable: str, app_dir: str | os.PathLike[str],
                 environment: CdkEnvironment | Callable[[], CdkEnvironment], *,
                 direct: bool = False, synth_timeout_seconds: float = 600.0, quiet_seconds: float = 120.0) -> None:
        # Absolute: cdk runs in the app's directory, where a relative path would name nothing.
        self._cdk = os.path.abspath(resolve(executable, "install the AWS CDK CLI (npm install aws-cdk) or pass its path"))
        self._app_dir = Path(app_dir)
        if not (self._app_dir / "cdk.json").is_file():
            raise ValueError(f"{str(app_dir)!r} is not a CDK app directory: it has no cdk.json")
        check_cdk_executable(self._cdk)
        self._environment = environment
        self._direct = direct
        self._synth_timeout = synth_timeout_seconds
        self._quiet_seconds = quiet_seconds
        self._assembly: Path | None = None
        self._stacks: AppStacks | None = None
        self._selectors: dict[str, str] = {}

    @property
    def assembly_dir(self) -> Path | None:
        """Where the app was synthesized, once ``list_stacks`` ran."""
        return self._assembly

    def list_stacks(self, on_line: Callable[[str], None] | None = None) -> AppStacks:
        """Synthesize the app (once) and read its stacks and their dependencies.

        Raises:
            AppNotListed: the app did not synthesize (its last lines say why), or its cloud
                assembly could not be read.
        """
        if self._stacks is not None:
            return self._stacks
        # A run killed outright (SIGKILL, the OOM killer) left its assembly behind, bundled assets
        # and all, one more on the worker's disk for every such run: the next synth removes them.
        for stale in remove_stale(ASSEMBLY_PREFIX):
            if on_line is not None:
                on_line(f"{STALE_REMOVED}{stale}, the CDK app synthesized by a run that was killed before removing it)")
        out = Path(tempfile.mkdtemp(prefix=owned_prefix(ASSEMBLY_PREFIX)))
        try:
            try:
                self._run(["synth", "--quiet", "--output", str(out)], self._synth_timeout, on_line)
            except ToolTimeout as err:
                # An app that bundles its functions' code or builds images while synthesizing can
                # take longer on a cold worker (images to pull): said so, with what gives it more time.
                raise AppNotListed(
                    f"the CDK app in {self._app_dir} did not synthesize within {seconds_said(self._synth_timeout)}: cdk synth "
                    "was stopped (nothing was deployed). If the app bundles assets or builds images as it "
                    "synthesizes, allow it more time with synth_timeout_seconds; its last output:\n"
                    + last_lines(err.tail), err.tail) from err
            except ToolFailed as err:
                why = str(err) if (killed := _killed(err)) is None else (
                    f"cdk synth {killed} (nothing was deployed); its last output:\n{last_lines(err.tail)}")
                raise AppNotListed(f"the CDK app in {self._app_dir} did not synthesize: {why}", err.tail) from err
            stacks = read_assembly(out)
            selectors = stack_selectors(out)
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)  # whatever stopped it, no assembly is left behind
            raise
        stacks = stacks.model_copy(update={"toolkit_stack": toolkit_stack_name(self._app_dir)})
        self._assembly, self._stacks, self._selectors = out, stacks, selectors
        return stacks

    def deploy(self, stack: str, *, timeout_seconds: float,
               on_line: Callable[[str], None] | None = None) -> DeployedStack:
        """``cdk deploy <stack> --require-approval never --exclusively`` of the synthesized app.

        Args:
            stack: one stack of the app.
            timeout_seconds: after this long cdk is stopped and the deploy counts as failed.
            on_line: called with each line cdk prints, as it prints it.

        Returns:
            The stack, how long the deploy took, its ARN and outputs when cdk gave them.

        Raises:
            PlanRefused: the app defines no such stack (nothing ran).
            StackDeployFailed: cdk failed or ran out of time; carries cdk's last lines.
        """
        stacks = self.list_stacks()
        if stack not in stacks.dependencies:
            raise PlanRefused(f"the CDK app defines no stack {stack!r} (its stacks: {', '.join(stacks.names)})")
        assert self._assembly is not None
        outputs_file = self._assembly / f"rollway-outputs-{stack}.json"
        outputs_file.unlink(missing_ok=True)
        # cdk selects stacks by construct id, not by the CloudFormation name the plan speaks:
        # handed the name of a stack whose app set stackName, it answered "No stacks match".
        selector = self._selectors.get(stack, stack)
        command = ["deploy", selector, "--app", str(self._assembly), "--require-approval", "never", "--exclusively",
                   "--outputs-file", str(outputs_file)]
        if self._direct:
            command.append("--method=direct")
        started = time.monotonic()
        try:
            result = self._run(command, timeout_seconds, on_line)
        except ToolTimeout as err:
            raise StackDeployFailed(
                stack, f"cdk did not finish within {seconds_said(timeout_seconds)} and was stopped; CloudFormation may still "
                       f"be working on {stack}: look at its events before deploying it again", err.tail,
                timed_out=True) from err
        except ToolFailed as err:
            raise StackDeployFailed(stack, _failed(err, stack, "deploying it"), err.tail,
                                    interrupted=_asked_to_stop(err)) from err
        # cdk's own word for a stack already up to date ("✅  <stack> (no changes)", by what it was selected by).
        unchanged = any(line.strip() == f"✅  {selector} (no changes)" for line in result.output)
        return DeployedStack(stack=stack, seconds=round(time.monotonic() - started, 3),
                             arn=stack_arn(result.output), outputs=_outputs(outputs_file, stack), unchanged=unchanged)

    def close(self) -> None:
        """Remove the synthesized assembly (the next ``list_stacks`` synthesizes again)."""
        assembly, self._assembly, self._stacks, self._selectors = self._assembly, None, None, {}
        if assembly is not None:
            shutil.rmtree(assembly, ignore_errors=True)

    def __enter__(self) -> "CdkCli":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def bootstrap(self, environment: str | None = None, *, timeout_seconds: float = 600.0,
                  on_line: Callable[[str], None] | None = None) -> None:
        """``cdk bootstrap aws://<account>/<region>``: the toolkit stack the deploys need.

        Args:
            environment: the environment to bootstrap (``aws://<account>/<region>``); by default
                the account and region of this CLI's environment.

        Raises:
            ValueError: no environment given and this CLI's names no account, or a malformed one.
            AppNotListed: the app did not synthesize.
            StackDeployFailed: the bootstrap failed (stack ``<toolkit stack> (aws://account/region)``, the
                toolkit stack named as ``AppStacks.toolkit_stack``).
        """
        if environment is None:
            env = self._current_environment()
            if env.account is None:
                raise ValueError("bootstrapping needs the account id (CdkEnvironment.account)")
            environment = f"aws://{env.account}/{env.region}"
        if environment_of(environment) is None:
            raise ValueError(f"{environment!r} is not an environment to bootstrap (aws://<account>/<region>)")
        # From the synthesized assembly: in the app's directory (whose cdk.json may set the
        # bootstrap qualifier) without running the app a second time.
        # The toolkit stack cdk bootstraps, by the name it gives it (the cdk.json's toolkitStackName):
        # a failure naming CDKToolkit sent a person to the events of a stack cdk was not making.
        toolkit = self.list_stacks(on_line).toolkit_stack
        try:
            self._run(["bootstrap", environment, "--app", str(self._assembly)], timeout_seconds, on_line)
        except ToolTimeout as err:
            # Said as a timeout, as a deploy's is: the reason used to be cdk's last line (a
            # CREATE_IN_PROGRESS event), read as the failure, with nothing saying cdk was stopped
            # while CloudFormation went on creating the toolkit stack.
            raise StackDeployFailed(
                f"{toolkit} ({environment})",
                f"cdk bootstrap did not finish within {seconds_said(timeout_seconds)} and was stopped; CloudFormation may "
                f"still be working on the toolkit stack ({toolkit}) of {environment}: look at its events before "
                "bootstrapping again", err.tail, timed_out=True) from err
        except ToolFailed as err:
            # Named with its environment: with several bootstrapped, which one failed.
            raise StackDeployFailed(f"{toolkit} ({environment})",
                                    _failed(err, f"the toolkit stack ({toolkit}) of {environment}", "bootstrapping"),
                                    err.tail, interrupted=_asked_to_stop(err)) from err

    def _current_environment(self) -> CdkEnvironment:
        # Asked again for every run: an assumed role's credentials last an hour by default, and
        # a run of deploys (each up to its timeout) can outlast them.
        env = self._environment
        return env if isinstance(env, CdkEnvironment) else env()

    def _run(self, arguments: Sequence[str], timeout_seconds: float, on_line: Callable[[str], None] | None):
        environment = self._current_environment()
        variables = environment.variables()
        # Masked: the secrets given, and those inherited from the worker when none were given
        # (its AWS_* variables reach cdk too, and are no less secret).
        secrets = [*environment.secrets, *(variables[k] for k in _SECRET_VARIABLES if k in variables)]
        last = [""]

        def heard(line: str) -> None:
            if line.strip():
                last[0] = line.strip()
            if on_line is not None:
                on_line(line)

        def quiet(elapsed: float, silent: float) -> None:
            # A sign of life in the run's log: CloudFormation waiting on an ECS service to
            # stabilize (or cdk building an image) printed nothing for many minutes.
            assert on_line is not None
            on_line(f"{STILL_RUNNING}{_minutes(elapsed)}, nothing new from cdk for {_minutes(silent)}; "
                    f"its last line: {last[0] or 'none'})")

        return run_tool([self._cdk, *arguments, "--no-color"], timeout_seconds=timeout_seconds, cwd=self._app_dir,
                        env=variables, secrets=secrets, on_line=heard, on_quiet=quiet if on_line is not None else None,
                        quiet_seconds=self._quiet_seconds)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def read_assembly(assembly_dir: str | os.PathLike[str]) -> AppStacks:
    """The stacks of a cloud assembly (``manifest.json``), what each depends on, by stack name,
    the environment (``aws://account/region``) each goes to, and the tables, queues, dashboards,
    alarms and topics its template names.

    Dependencies on non-stack artifacts (asset manifests) are left out. Stacks of nested
    assemblies (CDK Stages) are not deployable by name from the top level and are refused.

    Raises:
        AppNotListed: no readable manifest or template, a stage's nested assembly, or two stacks
            of one CloudFormation name.
    """
    path = Path(assembly_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
        artifacts: dict = manifest.get("artifacts") or {}
    except (OSError, ValueError, AttributeError) as err:
        raise AppNotListed(f"the cloud assembly's manifest {path} could not be read: {err}") from err
    nested = [name for name, a in artifacts.items() if a.get("type") == _NESTED_ASSEMBLY]
    if nested:
        raise AppNotListed(f"the app has CDK stages ({', '.join(nested)}); deploy their stacks by path with cdk "
                           "itself, rollway deploys top-level stacks only")
    stacks = {artifact_id: a for artifact_id, a in artifacts.items() if a.get("type") == _STACK_ARTIFACT}
    # A stack's name is its artifact id unless the app set stackName.
    names = {artifact_id: (a.get("properties") or {}).get("stackName") or artifact_id
             for artifact_id, a in stacks.items()}
    # The plan, the deploys and the checklist know a stack by its CloudFormation name: two stacks
    # of one name (an app deploying `stackName: "Service"` to two regions) collapsed into the
    # last one, so one of them was never deployed while the run reported the name deployed.
    shared: dict[str, list[str]] = {}
    for artifact_id, name in names.items():
        shared.setdefault(name, []).append(artifact_id)
    shared = {name: ids for name, ids in shared.items() if len(ids) > 1}
    if shared:
        raise AppNotListed(
            "the app has stacks sharing a CloudFormation name, which rollway cannot tell apart (it deploys and "
            "checks stacks by name): " + "; ".join(
                f"{name} ({', '.join(f'{i} to {_environment_of(stacks[i])}' for i in ids)})"
                for name, ids in shared.items())
            + "; give each its own stackName, or deploy them with cdk itself (nothing was deployed)")
    return AppStacks(dependencies={
        names[artifact_id]: tuple(names[d] for d in a.get("dependencies") or () if d in names)
        for artifact_id, a in stacks.items()
    }, environments={names[artifact_id]: str(a["environment"]) for artifact_id, a in stacks.items()
                     if a.get("environment")},
        resources={names[artifact_id]: found for artifact_id, a in stacks.items()
                   if (found := _template_resources(path.parent, names[artifact_id], a))},
        construct_ids={alias: names[artifact_id] for artifact_id, a in stacks.items()
                       for alias in dict.fromkeys((artifact_id, a.get("displayName") or artifact_id))
                       if alias != names[artifact_id] and alias not in names.values()},
        bootstrap_versions={names[artifact_id]: version for artifact_id, a in stacks.items()
                            if isinstance(version := (a.get("properties") or {}).get("requiresBootstrapStackVersion"),
                                          int)})


_APP_EXAMPLE = '"app": "python3 app.py"'
"""What an app's cdk.json gives as the command that runs it, for a refusal to show."""
_LINE_SHOWN = 120
"""How much of a cdk.json's ``app`` (or key) a refusal quotes."""
_JSON_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')
"""A key of a JSON object, as written (escapes left as they are)."""


def app_settings_problem(app_dir: str | os.PathLike[str], home: str | os.PathLike[str] | None = None) -> str | None:
    """Why ``cdk synth`` would refuse the app's settings before running anything, or None: its
    cdk.json not JSON (the file, the line and column, what is wrong there, and the line), not a
    JSON object, or no command to run the app: ``app`` of the cdk.json, else of the user's
    ~/.cdk.json (cdk reads both, the app's first), missing or not a command (``_runs_the_app``).

    Read before any AWS call or subprocess: cdk synth said so only after the account was read
    (STS), the app's directory and the credentials checked, in node's words ("Unexpected token").
    """
    path = Path(app_dir) / "cdk.json"
    not_utf8 = ""
    try:
        text, not_utf8 = _settings_text(path)
        settings = json.loads(text)
    except json.JSONDecodeError as err:
        # Where, by the key before it, not by quoting the line: a context value there (a token
        # the app reads) went to the run's error, its log and artifact.
        keys = _JSON_KEY.findall(err.doc[:err.pos])
        key = f", after the key {on_one_line(json.dumps(keys[-1]))[:_LINE_SHOWN]}" if keys else ""
        nor = f" (nor UTF-8 text, which cdk reads it as: {not_utf8})" if not_utf8 else ""
        return f"{path} is not valid JSON{nor}: line {err.lineno}, column {err.colno}: {err.msg}{key}"
    except OSError as err:
        return f"{path} could not be read: {err.strerror or err}"
    except (ValueError, RecursionError):
        # Past what Python's parser takes (an integer of more than 4,300 digits, arrays nested a
        # thousand deep), not node's: cdk reads it, and judges it. It was a traceback.
        return None
    if not isinstance(settings, dict):
        return f"{path} is not a JSON object ({{...}}): cdk reads the app's settings ({_APP_EXAMPLE}, ...) from one"
    if "app" in settings:
        app = settings["app"]
        if _runs_the_app(app):
            return None
        return (f"{path}: its \"app\" is {_app_said(app)}, not the command that runs the CDK app (such as "
                f"{_APP_EXAMPLE}): give it as a string (or a list of words)")
    user = Path(home if home is not None else Path.home()) / ".cdk.json"
    try:
        app = json.loads(_settings_text(user)[0]).get("app")
    except (OSError, ValueError, RecursionError, AttributeError):
        app = None  # none there, or not read: the app's own cdk.json is the one to fix
    if _runs_the_app(app):
        return None
    return f"{path} has no \"app\": the command that runs the CDK app (such as {_APP_EXAMPLE}), which cdk synth runs"


def _app_said(app: object) -> str:
    """A cdk.json's ``app`` that runs nothing, as a refusal names it: a blank string, a number,
    true or null quoted; an object or a list holding more than blank words by its kind, never
    quoted (its values, a token the app reads put there by mistake, went to the run's error, its
    log and artifact, cut at 120 characters mid-value)."""
    if isinstance(app, dict):
        return "a JSON object ({...})"
    if isinstance(app, list) and not all(isinstance(word, str) for word in app):
        return f"a list of {len(app)} value{'s' if len(app) != 1 else ''}, none of them a word"
    return on_one_line(json.dumps(app))[:_LINE_SHOWN]


def _settings_text(path: Path) -> tuple[str, str]:
    """A cdk.json's text as cdk reads it (node's jsonfile): UTF-8, a byte that is not replaced
    (U+FFFD), a byte order mark first dropped; and which byte is not UTF-8 ("" when all is).
    A Latin-1 "é" in a context value was refused as not UTF-8, where cdk runs the app.

    Raises:
        OSError: the file could not be read.
    """
    raw = path.read_bytes()
    try:
        text, not_utf8 = raw.decode("utf-8"), ""
    except UnicodeDecodeError as err:
        text, not_utf8 = raw.decode("utf-8", "replace"), f"byte {err.start} is not"
    return text.removeprefix("\ufeff"), not_utf8


def _runs_the_app(app: object) -> bool:
    """Whether cdk takes ``app`` for a command to run: a string, or a list of words, which cdk
    joins with spaces (cdk.json files of CDK v1's days give it so; refused, every deploy of such an
    app stopped before cdk, which runs it)."""
    words = app if isinstance(app, list) else [app]
    return any(isinstance(word, str) and word.strip() for word in words)


def toolkit_stack_name(app_dir: str | os.PathLike[str], home: str | os.PathLike[str] | None = None) -> str:
    """The toolkit stack cdk deploys the app with: ``toolkitStackName`` of its cdk.json, else of
    the user's ~/.cdk.json (cdk reads both, the app's first), else ``CDKToolkit``. rollway passes
    cdk no ``--toolkit-stack-name``, so this is the one cdk looks up."""
    for settings in (Path(app_dir) / "cdk.json", Path(home if home is not None else Path.home()) / ".cdk.json"):
        try:
            name = json.loads(_settings_text(settings)[0]).get("toolkitStackName")
        except (OSError, ValueError, RecursionError, AttributeError):
            continue  # none there, or not read: cdk's own synth says what is wrong with it
        if isinstance(name, str) and name:
            return name
    return TOOLKIT_STACK


def _environment_of(artifact: Mapping) -> str:
    return str(artifact.get("environment") or "no environment")


def _template_resources(assembly: Path, stack: str, artifact: Mapping) -> dict[str, tuple[str, ...]]:
    """The named tables, queues, dashboards, alarms and topics of one stack's template
    (``rollway.infra.named_resources``): where the checklist reads them.

    Raises:
        AppNotListed: the manifest names a template that cannot be read; read as naming nothing,
            its resources would be looked for in Targets.region, where a same-named one could pass.
    """
    template_file = (artifact.get("properties") or {}).get("templateFile")
    if not template_file:
        return {}
    template = assembly / str(template_file)
    try:
        return named_resources(json.loads(template.read_text()))
    except (OSError, ValueError) as err:
        raise AppNotListed(f"the template of stack {stack} ({template}) could not be read: {err}") from err


def stack_selectors(assembly_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Stack name -> what ``cdk deploy`` selects that stack by (its display name, the construct
    path; its artifact id when the manifest gives none), for the stacks of ``read_assembly``."""
    artifacts = json.loads((Path(assembly_dir) / "manifest.json").read_text()).get("artifacts") or {}
    return {(a.get("properties") or {}).get("stackName") or artifact_id: a.get("displayName") or artifact_id
            for artifact_id, a in artifacts.items() if a.get("type") == _STACK_ARTIFACT}


def stack_arn(lines: Sequence[str]) -> str | None:
    """The stack ARN cdk prints after ``Stack ARN:`` (None when it did not)."""
    for i, line in enumerate(lines):
        if line.strip() == "Stack ARN:" and i + 1 < len(lines) and _ARN.match(lines[i + 1].strip()):
            return lines[i + 1].strip()
    return None


def _failed(err: ToolFailed, working_on: str, again: str) -> str:
    """Why a deploy (or bootstrap) of ``working_on`` failed: cdk's words (``failure_reason``), or,
    when cdk was killed by a signal, that it was, and that CloudFormation may go on without it.

    Killed (the worker's OOM killer, a ``kill -9``), cdk says nothing: its last line, a progress
    event, was given as the failure's reason, and nothing said CloudFormation went on with the stack.
    """
    if (killed := _killed(err)) is None:
        return failure_reason(err.tail)
    said = f"cdk {killed}; CloudFormation may still be working on {working_on}: look at its events before {again} again"
    if _node_fatal(err.tail) is not None:
        return said  # node's own line is quoted: its last, a frame of its native stack, says nothing more
    last = next((line.strip() for line in reversed(err.tail) if line.strip()), "none")
    return f"{said}. cdk's last line: {last}"


# How node begins the one line saying why it aborts itself (SIGABRT): its heap limit reached, most
# often, followed by its native stack, which fills the lines last printed.
_NODE_FATAL = "FATAL ERROR:"


def _node_fatal(tail: Sequence[str]) -> str | None:
    """node's ``FATAL ERROR: ...`` line among cdk's last lines (the last such), else None."""
    return next((line.strip() for line in reversed(tail) if line.strip().startswith(_NODE_FATAL)), None)


# What each signal cdk may end on says of who sent it: said as what it is. All were "killed by
# <signal> (the worker's out-of-memory killer, or someone stopping it)", a SIGSEGV in node too,
# and a SIGTERM of a cancel or a shutdown read as the OOM killer's.
_STOPPED = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT})
_CRASHED = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGSYS, signal.SIGTRAP})


def _asked_to_stop(err: ToolFailed) -> bool:
    """Whether cdk ended on a request to stop (``_STOPPED``: a cancel, a shutdown), not on a
    failure of its own or of the stack."""
    number = _signal_number(err)
    return number in _STOPPED and _node_fatal(err.tail) is None


def _signal_number(err: ToolFailed) -> int | None:
    """The signal cdk ended on: its exit code negative, or 128+N from a shell wrapper; else None."""
    if err.returncode < 0:
        return -err.returncode
    # A cdk_executable that is a shell script running node (not exec'ing it) exits 128+N when
    # node dies of signal N: cdk and node exit 1 on their own errors, never that high.
    return err.returncode - 128 if 128 < err.returncode < 128 + signal.NSIG else None


def _killed(err: ToolFailed) -> str | None:
    """How cdk ended when it ended on a signal (its exit code negative, or 128+N from a shell
    wrapper), after "cdk", else None:
    "exited with -9" left a person to know that is a SIGKILL, the out-of-memory killer's.

    Each signal as what it is: SIGKILL, the OOM killer's or a ``kill -9``; SIGTERM and its kin, a
    request to stop (a cancel, the worker or its machine shutting down), cdk interrupted; SIGSEGV
    and its kin, node crashing; SIGABRT, node aborting itself, after saying why when out of heap
    (it was said killed by someone, "saying nothing of why", its last line a frame of node's stack)."""
    if (number := _signal_number(err)) is None:
        return None
    shell = f" (exit code {err.returncode}, as a shell running it says so)" if err.returncode > 0 else ""
    try:
        sent = signal.Signals(number)
    except ValueError:
        return f"ended on signal {number}{shell} before it finished, saying nothing of why"
    name = sent.name + shell
    if (fatal := _node_fatal(err.tail)) is not None:
        more = (" (give node more heap with NODE_OPTIONS=--max-old-space-size=<MiB> in the worker's environment, "
                "which cdk is run with)") if "heap out of memory" in fatal else ""
        return f"aborted ({name}) before it finished, node saying: {fatal}{more}"
    if sent == signal.SIGKILL:
        return (f"was killed by {name} before it finished (the worker's out-of-memory killer, or someone stopping it), "
                "saying nothing of why")
    if sent in _STOPPED:
        return (f"was interrupted by {name} before it finished: something asked it to stop (the run cancelled, or the "
                "worker or its machine shutting down)")
    if sent in _CRASHED:
        return (f"crashed ({name}) before it finished: node, or a native module the app loads, faulted, saying "
                "nothing of why")
    if sent == signal.SIGABRT:
        return f"aborted ({name}) before it finished, saying nothing of why"
    return f"ended on {name} before it finished, saying nothing of why"


def failure_reason(tail: Sequence[str]) -> str:
    """What cdk said went wrong: from its last ``❌`` line on, or its last non-blank line."""
    lines = [line.rstrip() for line in tail if line.strip()]
    marks = [i for i, line in enumerate(lines) if "❌" in line]
    if marks:
        shown = lines[marks[-1]:][:8]
        return " ".join(s.strip().lstrip("‣ ").strip() for s in shown)
    return lines[-1].strip() if lines else "cdk printed nothing"


def _outputs(path: Path, stack: str) -> dict[str, str]:
    try:
        return {str(k): str(v) for k, v in (json.loads(path.read_text()).get(stack) or {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}
