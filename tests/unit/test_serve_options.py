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
