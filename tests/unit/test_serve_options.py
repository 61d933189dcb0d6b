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


def test_a_prefect_api_out_of_reach_is_said_on_one_line_not_a_traceback(monkeypatch, capsys):
    # With the server down (not started yet, a wrong port) serve.py died on httpx's 100-line traceback.
    import httpx
    import prefect

    import deployments.serve as serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    def down(*_, **__):
        raise httpx.ConnectError("All connection attempts failed")

    monkeypatch.setattr(prefect, "serve", down)
    monkeypatch.setattr(serve, "build_deployments", lambda **_: [])
    monkeypatch.setattr(serve, "_unsaved_blocks", lambda *_: None)
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}), pytest.raises(SystemExit) as stopped:
        serve.main()
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and err.count("\n") == 1, err
    assert err.startswith("error: the Prefect API at http://127.0.0.1:9/api could not be reached (ConnectError: All "
                          "connection attempts failed)"), err
    assert "PREFECT_API_URL" in err, err
