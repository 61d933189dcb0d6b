"""The README's configuration reference against the models it describes.

A key added to the spec or the targets, or a default changed, used to leave the README telling
people the old value: these tests name the key the README misses or misstates.
"""

import json
import re
from pathlib import Path

import yaml
from pydantic import BaseModel

from rollway.spec import RolloutSpec
from rollway.targets import Targets

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\s*\| `([a-z_.\[\]]+)` \| ([^|]*) \|", re.MULTILINE)
NUMBERS = {"eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16}


def _spec_rows() -> dict[str, str]:
    return {key: default.strip() for key, default in ROW.findall(README)}


def _leaves(model: type[BaseModel], prefix: str = ""):
    """Every key of ``model`` a person sets, as the README's table names it (``stages[].weight``)."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        item = getattr(annotation, "__args__", (None,))[0] if name in ("stages", "phases", "flags") else None
        if isinstance(item, type) and issubclass(item, BaseModel):
            yield from _leaves(item, f"{prefix}{name}[].")
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _leaves(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field


def _shown(default) -> object:
    """A model default as the table's first code span reads back."""
    return list(default) if isinstance(default, tuple) else default


def test_the_spec_table_lists_every_key_with_its_default():
    rows = _spec_rows()
    missing, wrong = [], []
    for key, field in _leaves(RolloutSpec):
        if key not in rows:
            missing.append(key)
            continue
        if field.is_required():
            if rows[key] != "(required)":
                wrong.append(f"{key}: README {rows[key]}, the model requires it")
            continue
        span = re.match(r"`([^`]*)`", rows[key])
        assert span, f"{key}: the default {rows[key]!r} is not in a code span"
        written = span.group(1)
        try:
            read = json.loads(written)
        except json.JSONDecodeError:
            read = written
        if read != _shown(field.get_default(call_default_factory=True)):
            wrong.append(f"{key}: README {written}, the model {field.get_default(call_default_factory=True)!r}")
    assert not missing, f"keys of the spec the README's table leaves out: {missing}"
    assert not wrong, "\n".join(wrong)


def test_the_spec_table_names_no_key_the_spec_lacks():
    keys = {key for key, _ in _leaves(RolloutSpec)} | {"stages", "phases", "flags"}
    assert not set(_spec_rows()) - keys


def test_the_spec_tables_default_plan_is_the_models():
    rows = _spec_rows()
    spec = RolloutSpec(image="repo:1")
    stages = ", ".join(f"{s.weight}{' (approval)' if s.approval else ''}" for s in spec.stages)
    assert rows["stages"] == stages
    phases = "; ".join(f"{p.name}: {', '.join(map(str, p.weights))}{' and decommission' if p.decommission else ''}"
                       for p in spec.phases)
    assert rows["phases"] == phases


def test_the_targets_keys_are_listed_with_their_defaults():
    part = " ".join(README[README.index("- **Targets:**"):README.index("- **Credentials:**")].split())
    for name, field in Targets.model_fields.items():
        assert f"`{name}`" in part, f"Targets.{name} is not in the README's targets keys"
        default = field.get_default(call_default_factory=True)
        if isinstance(default, (str, int)) and not isinstance(default, bool):
            assert f"`{name}` (`{default}`" in part, f"Targets.{name}: the README does not give its default {default!r}"


def test_the_number_of_deployed_flows():
    deployments = yaml.safe_load((ROOT / "deployments/prefect.yaml").read_text(encoding="utf-8"))["deployments"]
    said = re.search(r"`deployments/prefect\.yaml` deploys the same (\w+) flows", README)
    assert said, "the README no longer says how many flows prefect.yaml deploys"
    assert NUMBERS[said.group(1)] == len(deployments)
