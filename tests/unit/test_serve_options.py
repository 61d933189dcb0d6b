"""deployments/serve.py refuses a bad option on one ``error:`` line, as its ``run`` promises and the
``rollway`` commands do: the option, what is wrong with it, and nothing registered."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("options, said", [
    # pydantic's own rendering was four lines: a count, the field, the message, a web address.
    ({"speed": float("nan")}, "error: --speed nan / --anchor None: speed: Input should be a finite number"),
    ({"speed": 60.0, "anchor": float("inf")}, "error: --speed 60 / --anchor inf: anchor: Input should be a finite number"),
    ({"spec_json": "{}"}, "error: --spec-json is not a usable RolloutSpec: image: Field required"),
    ({"spec_json": '{"image": "repo:1.0", "stages": [{"weight": 5, "bake_seconds": -1}]}'},
     "error: --spec-json is not a usable RolloutSpec: stages.0.bake_seconds: "),
    ({"spec_json": "{not json"}, "error: --spec-json is not a usable RolloutSpec: spec: Invalid JSON"),
])
def test_a_bad_clock_or_spec_is_refused_on_one_line_naming_the_field(options, said, monkeypatch, capsys) -> None:
    import deployments.serve as serve

    served: list = []
    monkeypatch.setattr(serve, "serve_all", lambda deployments, **_: served.extend(deployments))
    with pytest.raises(SystemExit) as stopped:
        serve.main(**options)
    assert stopped.value.code == 2 and not served
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(said), err
    assert "errors.pydantic.dev" not in err, err


@pytest.mark.parametrize("argv", [["--approval-poll-seconds", "2.5"], ["--limit", "1.5"], ["--limit", "0.5"]])
def test_a_fraction_typed_for_a_whole_number_option_is_refused_before_anything_is_served(argv, monkeypatch, capsys):
    # cyclopts rounded it: `--limit 1.5` served 2 runs at once, `--approval-poll-seconds 2.5` looked every 2 s.
    import deployments.serve as serve

    def served(*_, **__):
        raise AssertionError("served on a rounded number")

    monkeypatch.setattr(serve, "serve_all", served)
    monkeypatch.setattr(serve, "build_deployments", served)
    with pytest.raises(SystemExit) as stopped:
        serve.run(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert f"{argv[0]}: '{argv[1]}' is not a whole number" in err, err


def test_every_int_option_of_serve_py_refuses_a_fraction():
    """A new int option is annotated ``Whole`` too (the test above then covers its kind)."""
    import inspect
    import typing

    import deployments.serve as serve
    from rollway.cli.whole import Whole

    hints = typing.get_type_hints(serve.main, include_extras=True)
    ints = [name for name in inspect.signature(serve.main).parameters
            if int in (typing.get_args(hints[name]) or (hints[name],)) or hints[name] is int]
    assert ints and all(hints[name] in (Whole, Whole | None) for name in ints), {n: hints[n] for n in ints}


def _registering(monkeypatch, register, api_url: str = "http://127.0.0.1:9/api",
                 pauses=lambda deployments: []) -> tuple[int, list[str]]:
    """serve.py's main against ``api_url``, each deployment registered by ``register(runner,
    deployment)`` in place of Prefect's runner (which never starts serving): its exit code and the
    deployments' names in the order it registers them."""
    from prefect.runner import Runner
    from prefect.settings import PREFECT_API_URL, temporary_settings

    import deployments.serve as serve

    def start(*_, **__):
        raise AssertionError("served after the registrations were cut off")

    monkeypatch.setattr(Runner, "add_deployment", register)
    monkeypatch.setattr(serve, "keep_pauses", pauses)  # the pauses a person left on the API: none by default
    monkeypatch.setattr(Runner, "start", start)
    monkeypatch.setattr(serve, "_unsaved_blocks", lambda *_: None)
    with temporary_settings({PREFECT_API_URL: api_url}), pytest.raises(SystemExit) as stopped:
        serve.main()
    return stopped.value.code, [d.flow_name for d in serve.build_deployments()]


def _down(*_, **__):
    import httpx

    raise httpx.ConnectError("All connection attempts failed")


def test_a_prefect_api_out_of_reach_is_said_on_one_line_not_a_traceback(monkeypatch, capsys):
    # With the server down (not started yet, a wrong port) serve.py died on httpx's 100-line traceback.
    code, _ = _registering(monkeypatch, _down)
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("error: the Prefect API at http://127.0.0.1:9/api could not be reached (ConnectError: All "
                          "connection attempts failed)"), err
    assert "PREFECT_API_URL" in err, err


@pytest.mark.parametrize("lost", [
    "ReadError: connection reset by peer",
    # The API died taking the third and stayed down: Prefect's client retries a lost answer and, once
    # it has connected, a refused connection too, so the last retry's ConnectError is what arrives.
    # That deployment was said "not registered", though the API may have taken it before dying.
    "ConnectError: All connection attempts failed",
])
def test_an_api_lost_part_way_through_registering_names_what_was_registered_and_what_was_not(
        monkeypatch, capsys, lost):
    """The connection to the Prefect API dropped after a few deployments were registered: serve.py
    said only that the API "could not be reached" and to start it, as if nothing had been
    registered; the deployments it had registered stayed on the API (the weekly schedule active)
    with no runner, and which ones were missing was anyone's guess."""
    import uuid

    import httpx

    sent: list[str] = []
    kind, said = lost.split(": ")

    def register(runner, deployment):
        sent.append(deployment.flow_name)
        if len(sent) > 2:
            raise getattr(httpx, kind)(said)
        return uuid.uuid4()

    code, names = _registering(monkeypatch, register)
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert sent == names[:3]
    assert err.startswith("error: the Prefect API at http://127.0.0.1:9/api was lost while registering the deployments "
                          f"({lost}): "), err
    assert f"registered: {names[0]}/rollway, {names[1]}/rollway; " in err, err
    assert f"perhaps registered (the API was lost while registering it): {names[2]}/rollway; " in err, err
    assert "not registered: " + ", ".join(f"{n}/rollway" for n in names[3:]) + "; " in err, err
    assert "run serve.py again" in err, err


def test_a_prefect_api_address_with_a_password_is_said_without_it(monkeypatch, capsys):
    """A Prefect server behind basic auth is reached as https://<user>:<password>@host/api: serve.py
    printed the address as set, password and all, to the terminal and to `rollway up`'s log of it,
    where the `rollway` commands say it as ***."""
    _registering(monkeypatch, _down, "http://ann:s3cr%40t@127.0.0.1:9/api")
    err = capsys.readouterr().err
    assert "s3cr" not in err and err.startswith("error: the Prefect API at http://ann:***@127.0.0.1:9/api "), err


@pytest.mark.parametrize("status, said", [
    (401, "the server asks for credentials: set PREFECT_API_AUTH_STRING (its basic auth) or PREFECT_API_KEY"),
    (500, "see the Prefect server's log"),
])
def test_a_registration_the_prefect_api_refuses_is_said_on_one_line_naming_what_was_registered(
        monkeypatch, capsys, status, said):
    """A server behind basic auth (PREFECT_SERVER_API_AUTH_STRING) answers a serve.py without the
    credentials 401: serve.py died on a traceback of forty lines ending in PrefectHTTPStatusError."""
    import uuid

    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    sent: list[str] = []

    def register(runner, deployment):
        sent.append(deployment.flow_name)
        if len(sent) < 2:
            return uuid.uuid4()
        request = httpx.Request("GET", f"http://127.0.0.1:9/api/deployments/name/{deployment.flow_name}/rollway")
        response = httpx.Response(status, request=request, json={"exception_message": "Unauthorized"})
        try:
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise PrefectHTTPStatusError.from_httpx_error(exc) from None

    code, names = _registering(monkeypatch, register)
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith(f"error: the Prefect API at http://127.0.0.1:9/api refused to register {names[1]}/rollway "
                          f"(HTTP {status} "), err
    assert f"registered: {names[0]}/rollway; not registered: {names[1]}/rollway, {names[2]}/rollway, " in err, err
    assert said in err and "run serve.py again" in err, err



def test_an_api_out_of_reach_while_reading_what_was_paused_registers_nothing(monkeypatch, capsys):
    """serve.py reads which deployments a person paused before registering any: an API lost then
    is said as one out of reach, with nothing registered."""
    def registered(*_, **__):
        raise AssertionError("registered although the pauses could not be read")

    code, _ = _registering(monkeypatch, registered, pauses=_down)
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("error: the Prefect API at http://127.0.0.1:9/api could not be reached (ConnectError: All "
                          "connection attempts failed)"), err


@pytest.mark.parametrize("argv, verify", [([], True), (["--no-verify-after-deploy"], False),
                                          (["--verify-after-deploy"], True)])
def test_deploy_infrastructure_registers_without_the_checklist_on_no_verify_after_deploy(argv, verify, monkeypatch):
    """build_deployments took verify_after_deploy, but serve.py had no option for it: a process
    serving an account whose checklist runs apart (verify_infrastructure) registered every deploy
    with it, and a person unticked verify in each run's form."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    import deployments.serve as serve

    served: list = []
    monkeypatch.setattr(serve, "serve_all", lambda deployments, **_: served.extend(deployments))
    monkeypatch.setattr(serve, "_unsaved_blocks", lambda *_: None)
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}), pytest.raises(SystemExit) as done:
        serve.run(argv)
    assert done.value.code == 0
    (deploy,) = [d for d in served if d.flow_name == "deploy_infrastructure"]
    assert deploy.parameters.get("verify", True) is verify, deploy.parameters
    assert ("without the pre-deployment checklist" in deploy.description) is not verify, deploy.description


def test_serve_py_help_says_what_no_verify_after_deploy_does(capsys):
    import deployments.serve as serve

    with pytest.raises(SystemExit):
        serve.run(["--help"])
    said = " ".join(capsys.readouterr().out.replace("│", " ").split())  # the help's table, its borders out
    assert "--verify-after-deploy" in said and "--no-verify-after-deploy" in said, said
    assert "deploy_infrastructure" in said and "verify_infrastructure" in said, said
