"""CdkCli's pure parts: the environment handed to cdk, the cloud assembly's stacks, what a
failure says. The real CLI is exercised in tests/integration/test_cdk.py."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest
from pydantic import SecretStr, ValidationError

from rollway.infra import AppNotListed, StackDeployFailed
from rollway.toolchain.cdk import (CdkCli, CdkEnvironment, app_settings_problem, failure_reason, read_assembly,
                                   stack_arn)
from rollway.toolchain.process import MASK, ToolMissing

INHERITED = {"PATH": "/usr/bin", "HOME": "/root", "AWS_ACCESS_KEY_ID": "from-the-worker",
             "AWS_SECRET_ACCESS_KEY": "worker-secret", "AWS_PROFILE": "worker", "UNRELATED": "x"}


def test_given_keys_replace_the_workers_and_nothing_else_leaks_in():
    env = CdkEnvironment(region="eu-west-1", account="123456789012", access_key_id="AKIA1",
                         secret_access_key=SecretStr("s3cret"), session_token=SecretStr("tok"))
    variables = env.variables(INHERITED)
    assert variables["AWS_ACCESS_KEY_ID"] == "AKIA1" and variables["AWS_SECRET_ACCESS_KEY"] == "s3cret"
    assert variables["AWS_SESSION_TOKEN"] == "tok"
    assert "AWS_PROFILE" not in variables and "UNRELATED" not in variables
    assert variables["PATH"] == "/usr/bin" and variables["HOME"] == "/root"
    assert variables["CDK_DEFAULT_ACCOUNT"] == "123456789012"
    assert variables["CDK_DEFAULT_REGION"] == variables["AWS_REGION"] == "eu-west-1"
    assert variables["CDK_DISABLE_VERSION_CHECK"] == "1"
    assert "AWS_ENDPOINT_URL" not in variables
    assert env.secrets == ("s3cret", "tok")
    assert "s3cret" not in repr(env) and "tok'" not in repr(env)


def test_without_credentials_cdk_uses_the_workers_chain():
    variables = CdkEnvironment(region="us-west-2").variables(INHERITED)
    assert variables["AWS_ACCESS_KEY_ID"] == "from-the-worker" and variables["AWS_PROFILE"] == "worker"
    assert "CDK_DEFAULT_ACCOUNT" not in variables


def test_a_profile_is_named_and_the_workers_keys_are_not_inherited():
    variables = CdkEnvironment(region="us-west-2", profile="deploy").variables(INHERITED)
    assert variables["AWS_PROFILE"] == "deploy" and "AWS_ACCESS_KEY_ID" not in variables


@pytest.mark.parametrize("endpoint, s3", [
    ("http://127.0.0.1:5000", "http://localhost:5000"),
    ("http://[::1]:5000", "http://localhost:5000"),
    ("http://localhost:5000", "http://localhost:5000"),
    ("https://aws.example.internal", "https://aws.example.internal"),
])
def test_an_endpoint_reaches_cdk_and_its_s3_templates_name_localhost(endpoint, s3):
    variables = CdkEnvironment(region="us-west-2", endpoint_url=endpoint).variables({})
    assert variables["AWS_ENDPOINT_URL"] == endpoint
    assert variables["AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION"] == s3


@pytest.mark.parametrize("field, value", [("account", "12345"), ("endpoint_url", "ftp://x"), ("region_name", "x")])
def test_bad_environments_are_refused(field, value):
    with pytest.raises(ValidationError):
        CdkEnvironment(region="us-west-2", **{field: value})


def _manifest(tmp_path, artifacts):
    (tmp_path / "manifest.json").write_text(json.dumps({"version": "48.0.0", "artifacts": artifacts}))
    return tmp_path


def test_the_assembly_gives_stacks_by_name_and_their_stack_dependencies(tmp_path):
    stacks = read_assembly(_manifest(tmp_path, {
        "Queues.assets": {"type": "cdk:asset-manifest"},
        "Queues": {"type": "aws:cloudformation:stack", "dependencies": ["Queues.assets"]},
        "Sessions": {"type": "aws:cloudformation:stack", "dependencies": ["Queues", "Sessions.assets"],
                     "properties": {"stackName": "prod-sessions"}},
        "Monitoring": {"type": "aws:cloudformation:stack", "dependencies": ["Sessions"]},
        "Tree": {"type": "cdk:tree"},
    }))
    assert stacks.dependencies == {"Queues": (), "prod-sessions": ("Queues",), "Monitoring": ("prod-sessions",)}
    # What the app's code (and `cdk deploy`) calls the stack named apart: to say which it is when asked.
    assert stacks.construct_ids == {"Sessions": "prod-sessions"}


def test_the_assembly_gives_each_stacks_environment_by_name(tmp_path):
    stacks = read_assembly(_manifest(tmp_path, {
        "Queues": {"type": "aws:cloudformation:stack", "environment": "aws://123456789012/eu-west-1"},
        "Sessions": {"type": "aws:cloudformation:stack", "environment": "aws://unknown-account/unknown-region",
                     "properties": {"stackName": "prod-sessions"}},
        "Old": {"type": "aws:cloudformation:stack"},
    }))
    assert stacks.environments == {"Queues": "aws://123456789012/eu-west-1",
                                   "prod-sessions": "aws://unknown-account/unknown-region"}


def test_the_assembly_gives_the_names_each_stacks_template_gives_its_checked_resources(tmp_path):
    # Where the checklist reads a table or an alarm: the region of the stack whose template names it.
    (tmp_path / "Sessions.template.json").write_text(json.dumps({"Resources": {
        "T": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "prod-sessions"}},
        "Generated": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "Joined": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Join": ["-", ["a", "b"]]}}},
    }}))
    (tmp_path / "Monitoring.template.json").write_text(json.dumps({"Resources": {
        "D": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardName": "prod"}},
        "A": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"AlarmName": "prod-errors"}},
        "T": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "prod-alerts"}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "not-checked"}},
    }}))
    stacks = read_assembly(_manifest(tmp_path, {
        "Sessions": {"type": "aws:cloudformation:stack", "properties": {"stackName": "prod-sessions-stack",
                                                                        "templateFile": "Sessions.template.json"}},
        "Monitoring": {"type": "aws:cloudformation:stack", "properties": {"templateFile": "Monitoring.template.json"}},
        "Old": {"type": "aws:cloudformation:stack"},
    }))
    assert stacks.resources == {"prod-sessions-stack": {"table": ("prod-sessions",)},
                                "Monitoring": {"dashboard": ("prod",), "alarm": ("prod-errors",),
                                               "topic": ("prod-alerts",)}}


def test_two_stacks_of_one_cloudformation_name_are_not_listed(tmp_path):
    # As the real cdk synthesizes an app deploying stackName "ServiceStack" to two regions: listed
    # by name, one of them vanished and was never deployed while the run reported it deployed.
    with pytest.raises(AppNotListed) as caught:
        read_assembly(_manifest(tmp_path, {
            "Svc-us-west-2": {"type": "aws:cloudformation:stack", "environment": "aws://123456789012/us-west-2",
                              "properties": {"stackName": "ServiceStack"}},
            "Svc-eu-west-1": {"type": "aws:cloudformation:stack", "environment": "aws://123456789012/eu-west-1",
                              "properties": {"stackName": "ServiceStack"}},
            "Other": {"type": "aws:cloudformation:stack"},
        }))
    assert ("ServiceStack (Svc-us-west-2 to aws://123456789012/us-west-2, Svc-eu-west-1 to "
            "aws://123456789012/eu-west-1)") in str(caught.value)
    assert "give each its own stackName" in str(caught.value)


def test_a_template_the_manifest_names_but_that_cannot_be_read_is_not_listed(tmp_path):
    # Read as naming nothing, its table would be looked for in Targets.region and a same-named
    # one there could pass.
    with pytest.raises(AppNotListed, match="the template of stack Sessions .* could not be read"):
        read_assembly(_manifest(tmp_path, {"Sessions": {"type": "aws:cloudformation:stack",
                                                        "properties": {"templateFile": "gone.template.json"}}}))


@pytest.mark.parametrize("environment", ["aws://123456789012/us west 2", "aws://1234/us-west-2", "us-west-2",
                                         "aws://123456789012/us-west-2 --force", "aws://123456789012/us-west-2\n",
                                         "aws://123456789012/mars-north-1"])
def test_a_malformed_environment_is_not_bootstrapped(tmp_path, environment):
    (tmp_path / "cdk.json").write_text('{"app": "true"}')
    ran = tmp_path / "ran"
    cdk = tmp_path / "cdk"
    cdk.write_text(f"#!/bin/sh\ntouch {ran}\n")
    cdk.chmod(0o755)
    cli = CdkCli(str(cdk), tmp_path, CdkEnvironment(region="us-west-2", account="123456789012"))
    with pytest.raises(ValueError, match="not an environment to bootstrap"):
        cli.bootstrap(environment, timeout_seconds=5)
    assert not ran.exists()


def test_an_environment_in_the_european_sovereign_cloud_is_bootstrapped(tmp_path):
    """eusc-de-east-1 has a four-letter prefix: the bootstrap refused it as malformed."""
    (tmp_path / "cdk.json").write_text('{"app": "true"}')
    cdk = tmp_path / "cdk"
    cdk.write_text("#!/bin/sh\nexit 0\n")
    cdk.chmod(0o755)
    cli = CdkCli(str(cdk), tmp_path, CdkEnvironment(region="eusc-de-east-1", account="123456789012"))
    with pytest.raises(AppNotListed):  # past the check: this stub synthesizes nothing
        cli.bootstrap("aws://123456789012/eusc-de-east-1", timeout_seconds=5)


def test_an_assembly_with_stages_or_no_manifest_is_not_listed(tmp_path):
    with pytest.raises(AppNotListed, match="could not be read"):
        read_assembly(tmp_path)
    with pytest.raises(AppNotListed, match="CDK stages"):
        read_assembly(_manifest(tmp_path, {"assembly-Prod": {"type": "cdk:cloud-assembly"}}))


def test_failure_reason_is_cdks_last_cross_and_what_follows():
    tail = ["Stack: creating stack...", "", "❌  Stack failed to deploy", "‣ InvalidParameterValue: bad name", ""]
    assert failure_reason(tail) == "❌  Stack failed to deploy InvalidParameterValue: bad name"
    assert failure_reason(["Error: Need to perform AWS calls", "  "]) == "Error: Need to perform AWS calls"
    assert failure_reason([]) == "cdk printed nothing"


def test_stack_arn_is_read_from_the_line_after_its_label():
    arn = "arn:aws:cloudformation:us-west-2:123456789012:stack/S/abc"
    assert stack_arn(["✅  S", "Stack ARN:", arn, ""]) == arn
    assert stack_arn(["Stack ARN:", "not an arn"]) is None
    assert stack_arn(["Stack ARN:"]) is None


def _fake_cdk(tmp_path, body: str):
    """A stand-in for the cdk executable: a Python script (only to test how CdkCli runs a tool)."""
    script = tmp_path / "bin" / "cdk"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def _fake_cdk_app(tmp_path, body: str):
    """The stand-in cdk (``_fake_cdk``) and an app directory for it: (its path, the app)."""
    script = _fake_cdk(tmp_path, body)
    app = tmp_path / "app"
    app.mkdir()
    (app / "cdk.json").write_text("{}")
    return str(script), app


def test_a_missing_executable_or_app_is_refused_before_anything_runs(tmp_path):
    env = CdkEnvironment(region="us-west-2")
    with pytest.raises(ToolMissing, match="no-such-cdk"):
        CdkCli("no-such-cdk", tmp_path, env)
    with pytest.raises(ValueError, match="no cdk.json"):
        CdkCli(sys.executable, tmp_path, env)


@pytest.mark.parametrize("name", ["python3", "rm", "cdk-other", "mycdk", "cdk.sh"])
def test_an_executable_not_named_like_cdk_is_refused_before_anything_runs(tmp_path, name):
    (tmp_path / "cdk.json").write_text('{"app": "true"}')
    tool = tmp_path / name
    ran = tmp_path / "ran"
    tool.write_text(f"#!/bin/sh\ntouch {ran}\n")
    tool.chmod(0o755)
    with pytest.raises(ValueError, match=f"its name is {name!r}, not one of cdk, cdk.cmd, cdk.js"):
        CdkCli(str(tool), tmp_path, CdkEnvironment(region="us-west-2"))
    assert not ran.exists()


@pytest.mark.parametrize("name", ["cdk", "cdk.cmd", "cdk.js", "CDK.CMD"])
def test_the_cdk_clis_names_are_taken(tmp_path, name):
    from rollway.toolchain.cdk import check_cdk_executable

    check_cdk_executable(tmp_path / "node_modules" / ".bin" / name)


FAKE_CDK = """
import json, os, sys
if sys.argv[1] == "synth":  # a cloud assembly with one stack, X
    out = sys.argv[sys.argv.index("--output") + 1]
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"artifacts": {"X": {"type": "aws:cloudformation:stack"}}}, f)
    sys.exit(0)
print("X: creating stack...")
print("❌  X failed to deploy")
print("‣ AccessDenied for key " + os.environ["AWS_SECRET_ACCESS_KEY"])
sys.exit(1)
"""


def test_a_relative_executable_still_runs_from_the_apps_directory(tmp_path, monkeypatch):
    _fake_cdk(tmp_path, FAKE_CDK)
    app = tmp_path / "app"
    app.mkdir()
    (app / "cdk.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    env = CdkEnvironment(region="us-west-2", access_key_id="a", secret_access_key=SecretStr("s3cret"))
    with CdkCli(os.path.join("bin", "cdk"), app, env) as cli:
        assert cli.list_stacks().names == ("X",)
        with pytest.raises(StackDeployFailed) as caught:
            cli.deploy("X", timeout_seconds=30)
    assert caught.value.reason == f"❌  X failed to deploy AccessDenied for key {MASK}"
    assert "s3cret" not in str(caught.value.tail)


def test_a_failed_bootstrap_names_its_environment(tmp_path):
    body = FAKE_CDK.replace('print("X: creating stack...")',
                            'print(" ⏳  Bootstrapping environment " + sys.argv[2] + "...")')
    _fake_cdk(tmp_path, body)
    app = tmp_path / "app"
    app.mkdir()
    (app / "cdk.json").write_text("{}")
    env = CdkEnvironment(region="us-west-2", account="123456789012", access_key_id="a",
                         secret_access_key=SecretStr("s3cret"))
    with CdkCli(str(tmp_path / "bin" / "cdk"), app, env) as cli:
        with pytest.raises(StackDeployFailed) as caught:
            cli.bootstrap("aws://210987654321/eu-west-1", timeout_seconds=30)
    assert caught.value.stack == "CDKToolkit (aws://210987654321/eu-west-1)"
    assert caught.value.tail[0] == " ⏳  Bootstrapping environment aws://210987654321/eu-west-1..."
    assert "s3cret" not in str(caught.value)


def test_a_bootstrap_past_its_time_says_it_was_stopped_not_cdks_last_line(tmp_path):
    # Its reason was cdk's last line, an event read as the failure, with nothing saying cdk was
    # stopped while CloudFormation went on creating the toolkit stack.
    body = FAKE_CDK.replace('print("X: creating stack...")',
                            'print("CDKToolkit | 3/12 | CREATE_IN_PROGRESS | AWS::S3::Bucket", flush=True)\n'
                            'import threading; threading.Event().wait()')
    script, app = _fake_cdk_app(tmp_path, body)
    env = CdkEnvironment(region="us-west-2", account="123456789012")
    with CdkCli(script, app, env) as cli:
        with pytest.raises(StackDeployFailed) as caught:
            # 10 s: the stand-in's interpreter must start and print first, which took more than
            # half a second on a loaded CI machine (the tail asserted below was empty).
            cli.bootstrap("aws://123456789012/eu-west-1", timeout_seconds=10)
    assert caught.value.timed_out
    assert caught.value.reason.startswith("cdk bootstrap did not finish within 10 s and was stopped; CloudFormation "
                                          "may still be working on the toolkit stack (CDKToolkit) of "
                                          "aws://123456789012/eu-west-1")
    assert caught.value.tail == ("CDKToolkit | 3/12 | CREATE_IN_PROGRESS | AWS::S3::Bucket",)


def test_a_deploy_cdk_is_silent_in_says_it_is_still_running_and_what_it_waits_on(tmp_path):
    # CloudFormation waiting on an ECS service to stabilize: cdk prints nothing for many minutes,
    # and the run's log stood still all that time. The stand-in stays silent until the second
    # note is out (not for a fixed time, which a loaded machine stretched past a third note).
    go = tmp_path / "go"
    body = FAKE_CDK.replace('print("X: creating stack...")',
                            'print("X | 3/7 | CREATE_IN_PROGRESS | AWS::ECS::Service | Service", flush=True)\n'
                            f'import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.05)\n'
                            'print("✅  X"); sys.exit(0)')
    script, app = _fake_cdk_app(tmp_path, body)
    seen: list[str] = []

    progress = "X | 3/7 | CREATE_IN_PROGRESS | AWS::ECS::Service | Service"

    def after_progress() -> list[str]:
        # A loaded machine may start the stand-in more slowly than a note's half second: the
        # notes before its first line rightly say it printed none (asserted below).
        return seen[seen.index(progress) + 1:] if progress in seen else []

    def heard(line: str) -> None:
        seen.append(line)
        if sum(said.startswith("(still running after") for said in after_progress()) == 2:
            go.touch()

    with CdkCli(script, app, CdkEnvironment(region="us-west-2"), quiet_seconds=0.5) as cli:
        cli.deploy("X", timeout_seconds=60, on_line=heard)
    notes = [line for line in after_progress() if line.startswith("(still running after")]
    assert len(notes) >= 2, seen
    assert all(note.endswith(f"; its last line: {progress})") for note in notes), notes
    early = [line for line in seen[:seen.index(progress)] if line.startswith("(still running after")]
    assert all(note.endswith("; its last line: none)") for note in early), early
    assert seen[-1] == "✅  X"


def test_a_deploy_past_its_time_is_stopped_and_says_cloudformation_may_still_be_working(tmp_path):
    # The stand-in prints, then waits on its standard input (closed: it would block on a pipe
    # it never gets) -- it never finishes on its own, so only the timeout ends it.
    body = FAKE_CDK.replace('print("X: creating stack...")', 'print("X: creating stack...", flush=True)\n'
                            'import threading; threading.Event().wait()')
    _fake_cdk(tmp_path, body)
    app = tmp_path / "app"
    app.mkdir()
    (app / "cdk.json").write_text("{}")
    with CdkCli(str(tmp_path / "bin" / "cdk"), app, CdkEnvironment(region="us-west-2")) as cli:
        cli.list_stacks()
        with pytest.raises(StackDeployFailed) as caught:
            # 10 s: under CI's load the stand-in's interpreter took more than half a second to
            # start and print, and the tail asserted below would be empty.
            cli.deploy("X", timeout_seconds=10)
    assert caught.value.timed_out
    assert "did not finish within 10 s" in caught.value.reason and "CloudFormation may still" in caught.value.reason
    assert caught.value.tail == ("X: creating stack...",)


def test_an_app_that_is_not_listed_leaves_no_assembly_behind(tmp_path, monkeypatch):
    made = tmp_path / "tmp"
    made.mkdir()
    monkeypatch.setenv("TMPDIR", str(made))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    app = tmp_path / "app"
    app.mkdir()
    (app / "cdk.json").write_text("{}")
    _fake_cdk(tmp_path, "import sys; sys.exit(0 if sys.argv[1] == 'synth' else 1)")  # synthesizes no manifest
    with CdkCli(str(tmp_path / "bin" / "cdk"), app, CdkEnvironment(region="us-west-2")) as cli:
        with pytest.raises(AppNotListed, match="could not be read"):
            cli.list_stacks()
    assert list(made.iterdir()) == []


@pytest.mark.parametrize(("printed", "worker"), [
    # Its secret key and session token were handed to cdk but not masked in what it printed.
    ("AWS_SECRET_ACCESS_KEY", {"AWS_ACCESS_KEY_ID": "from-the-worker", "AWS_SECRET_ACCESS_KEY": "worker-s3cret"}),
    # On ECS or EKS Pod Identity its chain is a token and an endpoint, and the token printed as it was.
    ("AWS_CONTAINER_AUTHORIZATION_TOKEN", {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
                                           "AWS_CONTAINER_AUTHORIZATION_TOKEN": "worker-s3cret"}),
], ids=["secret-key", "container-token"])
def test_the_workers_own_secrets_are_masked_too(tmp_path, monkeypatch, printed, worker):
    # Without keys in the block cdk inherits the worker's AWS_* variables (boto3's chain).
    _fake_cdk(tmp_path, FAKE_CDK.replace('os.environ["AWS_SECRET_ACCESS_KEY"]', f'os.environ["{printed}"]'))
    app = tmp_path / "app"
    app.mkdir()
    (app / "cdk.json").write_text("{}")
    for name, value in worker.items():
        monkeypatch.setenv(name, value)
    seen: list[str] = []
    with CdkCli(str(tmp_path / "bin" / "cdk"), app, CdkEnvironment(region="us-west-2")) as cli:
        with pytest.raises(StackDeployFailed) as caught:
            cli.deploy("X", timeout_seconds=30, on_line=seen.append)
    assert caught.value.reason == f"❌  X failed to deploy AccessDenied for key {MASK}"
    assert "worker-s3cret" not in f"{caught.value.tail} {seen} {caught.value}"


def test_a_callable_environment_is_asked_again_for_every_cdk_run(tmp_path):
    # Temporary credentials (an assumed role's, an hour by default) frozen once at the start
    # expired in the middle of a long run of deploys: each cdk run now gets them afresh.
    body = FAKE_CDK.replace('print("X: creating stack...")',
                            'print("key " + os.environ["AWS_ACCESS_KEY_ID"]); sys.exit(0)')
    _fake_cdk(tmp_path, body)
    app = tmp_path / "app"
    app.mkdir()
    (app / "cdk.json").write_text("{}")
    issued = iter(range(1, 10))

    def fresh() -> CdkEnvironment:
        n = next(issued)
        return CdkEnvironment(region="us-west-2", access_key_id=f"ASIA{n}", secret_access_key=SecretStr(f"s{n}x"),
                              session_token=SecretStr(f"t{n}x"))

    seen: list[str] = []
    with CdkCli(str(tmp_path / "bin" / "cdk"), app, fresh) as cli:
        cli.list_stacks()  # run 1
        cli.deploy("X", timeout_seconds=30, on_line=seen.append)
        cli.deploy("X", timeout_seconds=30, on_line=seen.append)
    assert seen == ["key ASIA2", "key ASIA3"]


def test_a_profile_is_looked_up_where_the_worker_keeps_its_aws_config():
    # The flow's boto3 found the profile in the worker's AWS_CONFIG_FILE; cdk, not handed that
    # variable, looked in ~/.aws and failed with "Unable to resolve AWS account".
    worker = {**INHERITED, "AWS_CONFIG_FILE": "/etc/aws/config", "AWS_SHARED_CREDENTIALS_FILE": "/etc/aws/creds",
              "AWS_CA_BUNDLE": "/etc/ssl/corp.pem"}
    profiled = CdkEnvironment(region="us-west-2", profile="deploy").variables(worker)
    assert profiled["AWS_CONFIG_FILE"] == "/etc/aws/config"
    assert profiled["AWS_SHARED_CREDENTIALS_FILE"] == "/etc/aws/creds"
    assert profiled["AWS_CA_BUNDLE"] == "/etc/ssl/corp.pem"  # whom to trust, with any credentials
    keyed = CdkEnvironment(region="us-west-2", access_key_id="a", secret_access_key=SecretStr("s")).variables(worker)
    assert keyed["AWS_CA_BUNDLE"] == "/etc/ssl/corp.pem"
    assert keyed["AWS_ACCESS_KEY_ID"] == "a" and "AWS_PROFILE" not in keyed


def test_cdk_reaches_the_docker_daemon_the_worker_uses(tmp_path, monkeypatch):
    # cdk runs docker to build and push an app's image assets; on a worker reaching its daemon
    # through DOCKER_HOST (docker-in-docker, rootless docker) the deploy failed with "Cannot
    # connect to the Docker daemon at unix:///var/run/docker.sock", where cdk by hand worked.
    cdk, app = _fake_cdk_app(tmp_path, FAKE_CDK.replace(
        'print("X: creating stack...")',
        'print("docker", *(os.environ.get(k, "-") for k in ("DOCKER_HOST", "DOCKER_CERT_PATH", "CDK_DOCKER")))\n'
        'sys.exit(0)'))
    worker = {"DOCKER_HOST": "tcp://docker:2376", "DOCKER_CERT_PATH": "/certs/client", "CDK_DOCKER": "finch"}
    for name, value in worker.items():
        monkeypatch.setenv(name, value)
    seen: list[str] = []
    keyed = CdkEnvironment(region="us-west-2", access_key_id="a", secret_access_key=SecretStr("s3cret"))
    with CdkCli(cdk, app, keyed) as cli:
        cli.deploy("X", timeout_seconds=30, on_line=seen.append)
    assert seen == ["docker tcp://docker:2376 /certs/client finch"]


def test_cdk_uses_the_endpoints_the_worker_is_set_to_whichever_credentials():
    # A worker set to FIPS endpoints (GovCloud, FedRAMP) read through them in the flow's boto3,
    # while cdk, handed the block's keys, deployed through the standard endpoints.
    worker = {**INHERITED, "AWS_USE_FIPS_ENDPOINT": "true", "AWS_USE_DUALSTACK_ENDPOINT": "true"}
    for env in (CdkEnvironment(region="us-gov-west-1", access_key_id="a", secret_access_key=SecretStr("s")),
                CdkEnvironment(region="us-gov-west-1", profile="deploy")):
        variables = env.variables(worker)
        assert variables["AWS_USE_FIPS_ENDPOINT"] == "true" and variables["AWS_USE_DUALSTACK_ENDPOINT"] == "true"
        assert variables.get("AWS_ACCESS_KEY_ID") != "from-the-worker"


def test_a_synth_removes_the_app_a_killed_run_synthesized_and_keeps_a_live_runs(tmp_path, monkeypatch):
    # A worker killed outright ran no cleanup: its synthesized app (templates, bundled assets:
    # up to hundreds of MB) stayed in the temporary directory, one more for every such run.
    import signal
    import subprocess
    import tempfile
    import time

    from rollway.toolchain.cdk import ASSEMBLY_PREFIX

    app, bin_dir, tmp = tmp_path / "app", tmp_path / "bin", tmp_path / "tmp"
    for made in (app, bin_dir, tmp):
        made.mkdir()
    (app / "cdk.json").write_text('{"app": "true"}')
    cdk = bin_dir / "cdk"  # synthesizes until killed, saying it started
    cdk.write_text(f"#!{sys.executable}\nimport os, sys, time\n"
                   f"open(os.path.join({str(tmp_path)!r}, 'synth-' + str(os.getppid())), 'w').close()\n"
                   "time.sleep(120)\n")
    cdk.chmod(0o755)
    run = ("import sys\nfrom rollway.toolchain.cdk import CdkCli, CdkEnvironment\n"
           "CdkCli(sys.argv[1], sys.argv[2], CdkEnvironment(region='us-west-2'), synth_timeout_seconds=300)"
           ".list_stacks()\n")
    runs = [subprocess.Popen([sys.executable, "-c", run, str(cdk), str(app)], env={**os.environ, "TMPDIR": str(tmp)})
            for _ in range(2)]
    killed, live = runs
    try:
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("synth-*"))) < 2:  # both synthesizing: their assemblies made
            assert time.monotonic() < deadline, "the runs never synthesized"
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        (left,) = tmp.glob(f"{ASSEMBLY_PREFIX}p{killed.pid}-*")
        (kept,) = tmp.glob(f"{ASSEMBLY_PREFIX}p{live.pid}-*")
        cdk.write_text(f"#!{sys.executable}\nraise SystemExit(1)\n")  # the next run's synth fails at once
        monkeypatch.setattr(tempfile, "tempdir", str(tmp))
        lines: list[str] = []
        with pytest.raises(AppNotListed):
            CdkCli(str(cdk), app, CdkEnvironment(region="us-west-2")).list_stacks(on_line=lines.append)
        assert not left.exists(), "the app a killed run synthesized was left behind"
        assert kept.is_dir() and live.poll() is None
        assert f"(removed {left}, the CDK app synthesized by a run that was killed before removing it)" in lines
        assert list(tmp.iterdir()) == [kept]  # and the failed synth removed its own
    finally:
        for process in runs:
            process.kill()
            process.wait(timeout=10)


def test_the_assembly_gives_the_toolkit_version_each_stack_requires(tmp_path):
    # What the run checks the environment's toolkit stack for before the first deploy: a stack synthesized with
    # the default synthesizer requires one, a stack of the legacy synthesizer none.
    stacks = read_assembly(_manifest(tmp_path, {
        "Queues": {"type": "aws:cloudformation:stack", "properties": {"requiresBootstrapStackVersion": 6}},
        "Sessions": {"type": "aws:cloudformation:stack",
                     "properties": {"stackName": "prod-sessions", "requiresBootstrapStackVersion": 6}},
        "Legacy": {"type": "aws:cloudformation:stack", "properties": {}},
    }))
    assert stacks.bootstrap_versions == {"Queues": 6, "prod-sessions": 6}
    assert stacks.toolkit_stack == "CDKToolkit"


@pytest.mark.parametrize("cdk_json, toolkit", [
    ({}, "CDKToolkit"),
    ({"toolkitStackName": "AcmeToolkit"}, "AcmeToolkit"),
    ({"toolkitStackName": ""}, "CDKToolkit"),
    # A byte order mark (a Windows editor's), which cdk reads past: CDKToolkit was checked, and
    # bootstrapped, where cdk deploys with AcmeToolkit.
    ('\ufeff{"toolkitStackName": "AcmeToolkit"}', "AcmeToolkit"),
])
def test_the_toolkit_stack_is_the_one_the_apps_cdk_json_names(tmp_path, cdk_json, toolkit, monkeypatch):
    # cdk deploys with the toolkit stack its cdk.json names: the run checks that one, not CDKToolkit.
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cdk.json of the machine's
    _fake_cdk(tmp_path, FAKE_CDK)
    app = tmp_path / "app"
    app.mkdir()
    (app / "cdk.json").write_text(cdk_json if isinstance(cdk_json, str) else json.dumps(cdk_json), encoding="utf-8")
    with CdkCli(str(tmp_path / "bin" / "cdk"), app, CdkEnvironment(region="us-west-2")) as cli:
        assert cli.list_stacks().toolkit_stack == toolkit


@pytest.mark.parametrize("printed, unchanged", [
    ("✅  Queues (no changes)", True),
    ("✅  Queues", False),
    ("✅  Other (no changes)", False),  # another stack's line: not this one's
])
def test_a_deploy_cdk_found_nothing_to_change_in_says_so(tmp_path, printed, unchanged):
    # cdk prints "✅  <stack> (no changes)" for a stack already up to date: the run reported it "deployed",
    # like one CloudFormation had just updated.
    script = (f"import json, os, sys\nif sys.argv[1] == 'synth':\n"
              f"    out = sys.argv[sys.argv.index('--output') + 1]\n"
              f"    json.dump({{'artifacts': {{'Queues': {{'type': 'aws:cloudformation:stack'}}}}}}, "
              f"open(os.path.join(out, 'manifest.json'), 'w'))\n"
              f"    sys.exit(0)\nprint({printed!r})\n")
    cdk, app = _fake_cdk_app(tmp_path, script)
    with CdkCli(cdk, app, CdkEnvironment(region="us-west-2")) as cli:
        assert cli.deploy("Queues", timeout_seconds=30).unchanged is unchanged


def test_a_deploy_whose_cdk_was_killed_says_so_not_its_last_progress_line(tmp_path):
    # cdk killed in the middle of a deploy (the worker's OOM killer, someone's kill -9) says
    # nothing: its last progress line was given as why the stack failed, and nothing said that
    # CloudFormation went on with the stack.
    body = FAKE_CDK.replace('print("X: creating stack...")',
                            'print("X | 3/7 | CREATE_IN_PROGRESS | AWS::ECS::Service | Service", flush=True)\n'
                            'import signal; os.kill(os.getpid(), signal.SIGKILL)')
    script, app = _fake_cdk_app(tmp_path, body)
    with CdkCli(script, app, CdkEnvironment(region="us-west-2")) as cli:
        with pytest.raises(StackDeployFailed) as caught:
            cli.deploy("X", timeout_seconds=30)
    assert caught.value.reason == (
        "cdk was killed by SIGKILL before it finished (the worker's out-of-memory killer, or someone stopping it), "
        "saying nothing of why; CloudFormation may still be working on X: look at its events before deploying it "
        "again. cdk's last line: X | 3/7 | CREATE_IN_PROGRESS | AWS::ECS::Service | Service")
    assert not caught.value.timed_out  # no larger stack_timeout_seconds would have helped


def test_a_deploy_whose_cdk_under_a_shell_wrapper_was_killed_says_so_not_its_last_progress_line(tmp_path):
    # A cdk_executable that is a shell script running node (not exec'ing it) exits 128+N when node
    # dies of signal N: 137 went by as an exit code, and the last progress line as the reason.
    body = FAKE_CDK.replace('print("X: creating stack...")',
                            'print("X | 3/7 | CREATE_IN_PROGRESS | AWS::ECS::Service | Service", flush=True)\n'
                            'import signal; os.kill(os.getpid(), signal.SIGKILL)')
    node = _fake_cdk(tmp_path, body)
    wrapper = tmp_path / "wrapper" / "cdk"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\n"{node}" "$@"\nexit $?\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    app = tmp_path / "app"
    app.mkdir()
    (app / "cdk.json").write_text("{}")
    with CdkCli(str(wrapper), app, CdkEnvironment(region="us-west-2")) as cli:
        with pytest.raises(StackDeployFailed) as caught:
            cli.deploy("X", timeout_seconds=30)
    # The last line is the shell's own word ("Killed", dash's): the reason given, where the exit code was not read.
    assert caught.value.reason.startswith(
        "cdk was killed by SIGKILL (exit code 137, as a shell running it says so) before it finished "
        "(the worker's out-of-memory killer, or someone stopping it), saying nothing of why; CloudFormation may "
        "still be working on X: look at its events before deploying it again. cdk's last line: "), caught.value.reason


@pytest.mark.parametrize(("sent", "interrupted"), [("SIGTERM", True), ("SIGINT", True), ("SIGKILL", False)])
def test_a_deploy_whose_cdk_was_asked_to_stop_is_an_interruption_not_a_failure_of_the_stack(tmp_path, sent,
                                                                                            interrupted):
    # A cancel's SIGTERM reaching cdk: the reason said "interrupted", the flow read a failed stack.
    body = FAKE_CDK.replace('print("X: creating stack...")',
                            'print("X | 3/7 | CREATE_IN_PROGRESS | AWS::ECS::Service | Service", flush=True)\n'
                            # Its default action, as node's (SIGKILL's cannot be set).
                            'import signal\n'
                            + (f'signal.signal(signal.{sent}, signal.SIG_DFL)\n' if sent != "SIGKILL" else "")
                            + f'os.kill(os.getpid(), signal.{sent})')
    script, app = _fake_cdk_app(tmp_path, body)
    with CdkCli(script, app, CdkEnvironment(region="us-west-2")) as cli:
        with pytest.raises(StackDeployFailed) as caught:
            cli.deploy("X", timeout_seconds=30)
    assert caught.value.interrupted is interrupted, caught.value.reason
    assert str(caught.value).startswith("stack X was interrupted while cdk deployed it: cdk was interrupted by "
                                        if interrupted else "stack X failed to deploy: cdk was killed"), caught.value


def test_a_failed_bootstrap_names_the_toolkit_stack_the_apps_cdk_json_names(tmp_path):
    # cdk bootstraps the toolkitStackName of the app's cdk.json: a failure naming CDKToolkit sent a
    # person to the events of a stack that is not the one cdk was making.
    body = FAKE_CDK.replace('print("X: creating stack...")',
                            'print("OrgToolkit | 3/12 | CREATE_IN_PROGRESS | AWS::S3::Bucket", flush=True)\n'
                            'import threading; threading.Event().wait()')
    script, app = _fake_cdk_app(tmp_path, body)
    (app / "cdk.json").write_text(json.dumps({"toolkitStackName": "OrgToolkit"}))
    with CdkCli(script, app, CdkEnvironment(region="us-west-2", account="123456789012")) as cli:
        with pytest.raises(StackDeployFailed) as caught:
            cli.bootstrap("aws://123456789012/eu-west-1", timeout_seconds=10)
    assert caught.value.stack == "OrgToolkit (aws://123456789012/eu-west-1)"
    assert "CloudFormation may still be working on the toolkit stack (OrgToolkit) of aws://123456789012/eu-west-1" \
        in caught.value.reason, caught.value.reason
    assert "CDKToolkit" not in str(caught.value)


def test_a_synth_whose_cdk_was_killed_says_so_not_its_exit_code_alone(tmp_path):
    # An app bundling its assets as it synthesizes can take the worker's memory: "exited with -9"
    # left a person to know that -9 is a SIGKILL, the out-of-memory killer's.
    script, app = _fake_cdk_app(tmp_path, 'import os, signal\nprint("Bundling asset X/Handler...", flush=True)\n'
                                          'os.kill(os.getpid(), signal.SIGKILL)')
    with CdkCli(script, app, CdkEnvironment(region="us-west-2")) as cli:
        with pytest.raises(AppNotListed) as caught:
            cli.list_stacks()
    assert str(caught.value) == (
        f"the CDK app in {app} did not synthesize: cdk synth was killed by SIGKILL before it finished (the worker's "
        "out-of-memory killer, or someone stopping it), saying nothing of why (nothing was deployed); its last "
        "output:\nBundling asset X/Handler...")


@pytest.mark.parametrize(("sent", "said"), [
    # A cancel's or a shutdown's SIGTERM, said as the OOM killer's: a person went looking for memory.
    ("SIGTERM", "cdk synth was interrupted by SIGTERM before it finished: something asked it to stop (the run "
                "cancelled, or the worker or its machine shutting down)"),
    ("SIGINT", "cdk synth was interrupted by SIGINT before it finished: something asked it to stop"),
    ("SIGSEGV", "cdk synth crashed (SIGSEGV) before it finished: node, or a native module the app loads, faulted, "
                "saying nothing of why"),
    ("SIGBUS", "cdk synth crashed (SIGBUS) before it finished: node, or a native module the app loads, faulted"),
    ("SIGABRT", "cdk synth aborted (SIGABRT) before it finished, saying nothing of why"),
])
def test_a_cdk_ended_by_another_signal_than_sigkill_says_that_signal_as_what_it_is(tmp_path, sent, said):
    script, app = _fake_cdk_app(tmp_path, "import os, resource, signal\n"
                                          "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file\n"
                                          'print("Bundling asset X/Handler...", flush=True)\n'
                                          # Its default action, as node's: a process started in the
                                          # background inherits SIGINT ignored, and so did the stand-in,
                                          # which then ran on and ended 0.
                                          f"signal.signal(signal.{sent}, signal.SIG_DFL)\n"
                                          f"os.kill(os.getpid(), signal.{sent})")
    with CdkCli(script, app, CdkEnvironment(region="us-west-2")) as cli:
        with pytest.raises(AppNotListed) as caught:
            cli.list_stacks()
    assert f"did not synthesize: {said}" in str(caught.value), str(caught.value)
    assert "out-of-memory killer" not in str(caught.value)


# What node prints when cdk reaches its heap limit (node 20, as seen), before it aborts itself (SIGABRT):
# the one line saying why is followed by its native stack, the line last printed.
NODE_OUT_OF_HEAP = ["", "<--- Last few GCs --->", "", "<--- JS stacktrace --->", "",
                    "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
                    "----- Native stack trace -----", "",
                    *(f"{i}: 0x{i:x}b78db3 v8::internal::Heap::CollectGarbage() [node]" for i in range(1, 17))]


@pytest.mark.parametrize("command", ["deploy", "synth"])
def test_a_cdk_out_of_heap_says_what_node_said_not_that_it_said_nothing(tmp_path, command):
    # node's commonest death (its heap limit, an app with many stacks or assets) is a SIGABRT of its
    # own after saying why: it was said to be killed, by the out-of-memory killer or someone,
    # "saying nothing of why", its last line a frame of node's native stack.
    abort = (f"\nprint({json.dumps(chr(10).join(NODE_OUT_OF_HEAP))}, flush=True)\n"
             "os.abort()")
    if command == "synth":
        body = 'import os' + abort
    else:
        body = FAKE_CDK.replace('print("X: creating stack...")',
                                'print("X | 3/7 | UPDATE_IN_PROGRESS | AWS::ECS::Service | Service", flush=True)' + abort)
    script, app = _fake_cdk_app(tmp_path, body)
    with CdkCli(script, app, CdkEnvironment(region="us-west-2")) as cli:
        if command == "synth":
            with pytest.raises(AppNotListed) as caught:
                cli.list_stacks()
            said = str(caught.value)
        else:
            with pytest.raises(StackDeployFailed) as caught:
                cli.deploy("X", timeout_seconds=30)
            said = caught.value.reason
    assert ("aborted (SIGABRT) before it finished, node saying: FATAL ERROR: Reached heap limit Allocation failed - "
            "JavaScript heap out of memory (give node more heap with NODE_OPTIONS=--max-old-space-size=<MiB> in the "
            "worker's environment, which cdk is run with)") in said, said
    assert "saying nothing of why" not in said and "out-of-memory killer" not in said, said
    if command == "deploy":
        assert said.endswith("CloudFormation may still be working on X: look at its events before deploying it again"), said


# What cdk's AWS SDK prints on node < 22 (cdk 2.1148 on node 20, as seen) at its first AWS call, unless
# AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED is "true": nine lines about the SDK's later versions.
SDK_NODE_WARNING = """
if os.environ.get("AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED") != "true":
    print("(node:6064) Warning: NodeVersionSupportWarning: The AWS SDK for JavaScript (v3)\\n"
          "versions published after the first week of January 2027\\nwill require node >=22. You are running "
          "node v20.20.2.\\n\\nTo continue receiving updates to AWS services, bug fixes,\\nand security updates "
          "please upgrade to node >=22.\\n\\nMore information can be found at: https://a.co/c895JFp\\n"
          "(Use `node --trace-warnings ...` to show where the warning was created)", flush=True)
"""


def test_a_failed_deploys_last_lines_are_cdks_not_the_aws_sdks_node_version_warning(tmp_path):
    # On a fast failure the SDK's warning about its later versions took most of the last lines the
    # run's error quotes (and nine lines of every deploy's log), crowding out cdk's own.
    body = FAKE_CDK.replace('print("X: creating stack...")', 'print("X: deploying... [1/1]")' + SDK_NODE_WARNING)
    script, app = _fake_cdk_app(tmp_path, body)
    lines: list[str] = []
    with CdkCli(script, app, CdkEnvironment(region="us-west-2", access_key_id="a",
                                            secret_access_key=SecretStr("s3cret"))) as cli:
        with pytest.raises(StackDeployFailed) as caught:
            cli.deploy("X", timeout_seconds=30, on_line=lines.append)
    assert [line for line in caught.value.tail if line.strip()] == [
        "X: deploying... [1/1]", "❌  X failed to deploy", f"‣ AccessDenied for key {MASK}"]
    assert not [line for line in lines if "NodeVersionSupportWarning" in line], lines


@pytest.mark.parametrize(("cdk_json", "user", "said"), [
    ('{"app": "python3 app.py"}', None, None),
    ('\ufeff{"app": "python3 app.py"}', None, None),  # a byte order mark, which cdk reads past
    ('{"context": {}}', '{"app": "python3 app.py"}', None),  # the user's ~/.cdk.json gives it
    ('{"context": {}}', None, 'has no "app": the command that runs the CDK app (such as "app": "python3 app.py"), '
                              "which cdk synth runs"),
    ('{"app": ""}', '{"app": "python3 app.py"}', ': its "app" is "", not the command that runs the CDK app (such as '
                                                 '"app": "python3 app.py")'),
    # cdk runs a list of words joined by spaces (cdk.json files of CDK v1's days give it so): refused, every
    # deploy of such an app stopped before cdk, which runs it.
    ('{"app": ["python3", "app.py"]}', None, None),
    ('{"context": {}}', '{"app": ["python3", "app.py"]}', None),
    ('{"app": []}', None, ': its "app" is [], not the command'),
    ('{"app": 3}', None, ': its "app" is 3, not the command'),
    # What is not a word is named by its kind, not quoted: an object's values (a token the app
    # reads, put there by mistake) went to the run's error, its log and artifact.
    ('{"app": {"cmd": "python3 app.py", "token": "tok-123"}}', None,
     ': its "app" is a JSON object ({...}), not the command that runs the CDK app (such as "app": "python3 app.py"): '
     'give it as a string (or a list of words)'),
    ('{"app": [{"token": "tok-123"}, 7]}', None, ': its "app" is a list of 2 values, none of them a word, not the '
                                                 'command'),
    ('["app"]', None, 'is not a JSON object ({...}): cdk reads the app\'s settings ("app": "python3 app.py", ...) '
                      "from one"),
    ("", None, "is not valid JSON: line 1, column 1: Expecting value"),
    ('{"app": "python3 app.py"\n"context": {}}', None,
     'is not valid JSON: line 2, column 1: Expecting \',\' delimiter, after the key "app"'),
])
def test_an_apps_settings_cdk_synth_would_refuse_are_said_with_where_and_what(tmp_path, cdk_json, user, said):
    app, home = tmp_path / "app", tmp_path / "home"
    app.mkdir()
    home.mkdir()
    (app / "cdk.json").write_text(cdk_json)
    if user is not None:
        (home / ".cdk.json").write_text(user)
    problem = app_settings_problem(app, home)
    if said is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(str(app / "cdk.json")) and said in problem, problem
        assert "tok-123" not in problem, problem


@pytest.mark.parametrize("cdk_json", [
    b'{"app": "python3 app.py", "context": {"owner": "Jos\xe9"}}',  # Latin-1: node reads it as UTF-8, replacing
    b'{"app": "python3 app.py", "context": {"n": ' + b"1" * 5000 + b"}}",  # past Python's int digits
    b'{"app": "python3 app.py", "context": {"n": ' + b"[" * 3000 + b"]" * 3000 + b"}}",  # past its recursion
])
def test_a_cdk_json_cdk_reads_and_python_would_not_is_not_refused(tmp_path, cdk_json):
    # Refused (not UTF-8), or a traceback (ValueError, RecursionError), where cdk runs the app.
    (tmp_path / "cdk.json").write_bytes(cdk_json)
    assert app_settings_problem(tmp_path, tmp_path) is None


def test_a_cdk_json_neither_utf8_nor_json_says_both(tmp_path):
    (tmp_path / "cdk.json").write_bytes('{"app": "python3 app.py"}'.encode("utf-16"))  # Notepad's "Unicode"
    problem = app_settings_problem(tmp_path, tmp_path)
    assert problem is not None and problem.startswith(
        f"{tmp_path / 'cdk.json'} is not valid JSON (nor UTF-8 text, which cdk reads it as: byte 0 is not): line 1, "
        "column 1: Expecting value"), problem


def test_a_cdk_json_not_json_is_said_without_quoting_its_values(tmp_path):
    # Its line was quoted (120 characters of it): a context value there, a token or a password the
    # app reads, went to the run's error, its log and artifact.
    (tmp_path / "cdk.json").write_text('{\n  "app": "python3 app.py",\n'
                                      '  "context": {"db-password": "hunter2-s3cret" "region": "eu-west-1"}\n}\n')
    problem = app_settings_problem(tmp_path, tmp_path)
    assert problem == (f"{tmp_path / 'cdk.json'} is not valid JSON: line 3, column 47: Expecting ',' delimiter, "
                       'after the key "db-password"'), problem
    assert "hunter2" not in problem and "eu-west-1" not in problem
