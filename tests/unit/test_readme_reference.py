"""The README's configuration reference against the models it describes.

A key added to the spec or the targets, or a default changed, used to leave the README telling
people the old value: these tests name the key the README misses or misstates.
"""

import json
import re
from pathlib import Path
from typing import Literal, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from rollway.spec import RolloutSpec
from rollway.targets import Targets

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# A row's key is whatever its first column's code span holds: a pattern of the characters today's
# keys use (lowercase letters, ``_``, ``.``, ``[]``) read no row for ``analysis.p99_ms``, so a row
# for a key the spec lacks slipped past the check that every row is a real field.
KEY = r"`([^`\n]+)`"
ROW = re.compile(rf"^\s*\| {KEY} \| ([^|]*) \|", re.MULTILINE)
NUMBERS = {"eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16}


def _spec_rows(text: str = README) -> dict[str, str]:
    return {key: default.strip() for key, default in ROW.findall(text)}


def _leaves(model: type[BaseModel], prefix: str = ""):
    """Every key of ``model`` a person sets, as the README's table names it (``stages[].weight``)."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        # Any list of models, not only the ones there are today: a new one's keys need rows too.
        item = get_args(annotation)[0] if get_origin(annotation) in (tuple, list) else None
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


def _rows_of_no_key(text: str = README) -> set[str]:
    """The table's keys that are not keys of the spec."""
    keys = {key for key, _ in _leaves(RolloutSpec)} | {"stages", "phases", "flags"}
    return set(_spec_rows(text)) - keys


def test_the_spec_table_names_no_key_the_spec_lacks():
    assert not _rows_of_no_key()


@pytest.mark.parametrize("key", ["analysis.p99_ms", "stages[].weight2", "analysis.Alpha", "slow-threshold"])
def test_a_row_for_a_key_the_spec_lacks_is_found_whatever_its_key_is_made_of(key):
    row = f"  | `{key}` | `1` | what it does |\n"
    assert _rows_of_no_key(README + row) == {key}
    assert dict(ROW_TEXT.findall(row)) == {key: "what it does"}


# The table's third column, by key: what the README says a key does.
ROW_TEXT = re.compile(rf"^\s*\| {KEY} \| [^|]* \| ([^|]*) \|", re.MULTILINE)
# A name written as code is a key: a field's name, like ``bake_seconds`` or ``slo_slow_rate``.
NAME = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
# Names in these texts that are not keys of the spec.
NOT_KEYS = {"advance_phase"}  # the flow whose weekly schedule ends the phases


def _described() -> dict[str, tuple[str, str]]:
    """Each key of the spec: (what the README's table says it does, what its form says)."""
    rows = dict(ROW_TEXT.findall(README))
    return {key: (rows.get(key, ""), field.description or "") for key, field in _leaves(RolloutSpec)}


def _choices(field) -> tuple[str, ...]:
    """The values a Literal key takes (for a list of them, its items')."""
    annotation = field.annotation
    if get_origin(annotation) in (tuple, list):
        annotation = get_args(annotation)[0]
    return tuple(get_args(annotation)) if get_origin(annotation) is Literal else ()


def test_the_spec_table_and_the_forms_name_only_keys_the_spec_has():
    """Both the table and the spec's own descriptions (the run form's help) name other keys, as in
    "null: only at `bake_seconds`": a key renamed or dropped left them pointing at nothing."""
    # Every part of every key: the nested models' names (``analysis``, ``stages``) are keys too.
    fields = {part.removesuffix("[]") for key, _ in _leaves(RolloutSpec) for part in key.split(".")}
    leaves = dict(_leaves(RolloutSpec))
    stray = []
    for key, (readme, form) in _described().items():
        choices = _choices(leaves[key])
        for where, text in (("README", readme), ("form", form)):
            stray += [f"{key} ({where}): {name}" for name in NAME.findall(text)
                      if name not in fields | NOT_KEYS | set(choices)]
        for code in re.findall(r"`([a-z_-]+)(?:: ([a-z_-]+))?`", readme):
            name, value = code
            if value:  # `follow: schedule`: a key and one of its values
                named = [field for k, field in leaves.items() if k.rsplit(".", 1)[-1].removesuffix("[]") == name]
                if not named or value not in _choices(named[0]):
                    stray.append(f"{key} (README): {name}: {value}")
            elif name not in fields | set(choices):
                stray.append(f"{key} (README): {name}")
    assert not stray, f"names that are neither a key of the spec nor one of its values: {sorted(set(stray))}"


def test_the_spec_table_and_the_forms_name_every_value_a_choice_takes():
    """A key with a fixed set of values (the judge, the mode, on_timeout) says them in both places:
    `analysis.metrics` said "what the sequential judge compares" in both and named neither
    `errors` nor `slow`, which are all it takes."""
    unnamed, described = [], _described()
    for key, field in _leaves(RolloutSpec):
        readme, form = described[key]
        for choice in _choices(field):
            if f"`{choice}`" not in readme:
                unnamed.append(f"{key}: the README's table does not name {choice!r}")
            if not re.search(rf"(?<![\w-]){re.escape(choice)}(?![\w-])", form):
                unnamed.append(f"{key}: its description in the form does not name {choice!r}")
    assert not unnamed, "\n".join(unnamed)


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


def test_the_readme_tells_whoever_a_rollback_paged_what_to_run():
    """Someone paged by a rollback who had never used rollway found no part of the README that
    started from the page: which version users get, the commands that show the evidence, and
    that trying again is a new rollout were spread over sections about other things."""
    start = README.index("**Paged by a rollback.**")
    section = README[start:README.index("\n**", start + 1)]
    for said in ("the version users get now", ".venv/bin/rollway status", ".venv/bin/rollway report --rollout <id>",
                 "**Artifacts** tab", "Nothing undoes a rollback", "start a new rollout from the\n"
                 "`progressive_rollout` deployment", "`Rollback FAILED`"):
        assert said in section, said


def _headings(text: str, level: str) -> list[str]:
    """The titles of the headings of ``level`` (``##``), outside the fenced code blocks."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.findall(rf"^{level} (.+)$", prose, flags=re.MULTILINE)


def _anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def _contents() -> str:
    assert "**Contents**" in README, "the README has no contents"
    start = README.index("**Contents**")
    return README[start:README.index("\n## ", start)]


def test_the_contents_link_every_section_in_order():
    """A README of two thousand lines had no contents: a person looking for how to resume a rollout,
    or which permissions a worker needs, read it from the top."""
    links = re.findall(r"\[([^\]]+)\]\(#([^)]+)\)", _contents())
    anchors = {_anchor(title) for level in ("##", "###") for title in _headings(README, level)}
    assert [anchor for _, anchor in links if anchor not in anchors] == [], "links to no heading"
    linked = [title for title, _ in links]
    assert [title for title in linked if title in _headings(README, "##")] == _headings(README, "##"), \
        "the contents do not list every section, in order"


def test_the_contents_name_only_topics_the_readme_has():
    """Each topic the contents name in bold opens a paragraph of that name further down."""
    contents = _contents()
    body = README[README.index(contents) + len(contents):]
    topics = [" ".join(topic.split()) for topic in re.findall(r"\*\*([^*]+)\*\*", contents) if topic != "Contents"]
    assert topics
    missing = [topic for topic in topics
               if not re.search(rf"\*\*{re.escape(topic)}[.:]?\*\*", " ".join(body.split()))]
    assert not missing, f"topics the contents name that no paragraph opens with: {missing}"


def _command_lines(text: str) -> list[str]:
    """Every ``rollway`` command line the README gives: in its bash blocks (a line continued with
    ``\\`` joined to the next) and in its code spans, without the comment after ``#``."""
    lines = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        lines += [line for line in block.replace("\\\n", " ").splitlines() if line.startswith(".venv/bin/rollway ")]
    lines += re.findall(r"`((?:\.venv/bin/)?rollway [^`\n]+)`", text)
    return [line.split("#", 1)[0].removeprefix(".venv/bin/") for line in lines]


def _options_of(words: list[str], capsys) -> tuple[str, str]:
    """The command a line runs (``flags set``) and its --help."""
    from rollway.cli import app

    command = words[:2] if words[0] == "flags" and len(words) > 1 and words[1].isalpha() else words[:1]
    with pytest.raises(SystemExit):
        app([*command, "--help"])
    return " ".join(command), capsys.readouterr().out


def test_every_option_a_readme_command_line_gives_is_the_commands(capsys, monkeypatch):
    """A person copies these lines: an option renamed in the code left them refused as unknown."""
    monkeypatch.setenv("COLUMNS", "300")
    unknown, seen = [], 0
    helps: dict[str, tuple[str, str]] = {}
    for line in _command_lines(README):
        words = line.split()[1:]
        if not words or words[0].startswith("-"):
            continue
        key = " ".join(words[:2])
        if key not in helps:
            helps[key] = _options_of(words, capsys)
        command, help_text = helps[key]
        for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line):
            seen += 1
            if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text):
                unknown.append(f"rollway {command} {option}")
    assert seen > 20, "the README's command lines were not found"
    assert not unknown, f"options the README gives that the command does not take: {unknown}"


def _example_objects(text: str) -> list[str]:
    """The JSON objects the README writes in code spans, and as a deployment run's ``spec`` parameter
    (``--param spec='{...}'``), each on one line."""
    spans = re.findall(r"(?<!`)`(\{[^`]*\})`(?!`)", text) + re.findall(r"--param spec='(\{[^']*\})'", text)
    return [" ".join(span.split()) for span in spans]


def test_every_example_spec_in_the_readme_is_accepted_as_written():
    """An example spec a person pastes into the run form must be one the flows take: `<repo>:<tag>`
    stands for an image of theirs, and a stage example for one item of `stages`."""
    from rollway.spec import Stage

    specs = 0
    for example in _example_objects(README):
        value = json.loads(example)
        if "image" in value:
            specs += 1
            RolloutSpec.model_validate({**value, "image": value["image"].replace("<repo>:<tag>", "repo:1.0")})
        elif set(value) == {"weight"}:
            Stage.model_validate(value)
    assert specs >= 3, "the README's example specs were not found"
    binding = re.search(r'a flag bound to the stages is `("flags": \[[^`]*\])`', README)
    assert binding, "the README no longer shows how to bind a flag"
    RolloutSpec.model_validate_json(f'{{"image": "repo:1.0", {binding.group(1).replace("<flag>", "checkout")}}}')


def _paragraph(lead: str) -> str:
    """The README's paragraph (or list item) that opens with ``lead``, in one line (the contents,
    which name some of them, left out)."""
    start = README.index(lead, README.index("\n## "))
    ends = [end for end in (README.find("\n\n", start), README.find("\n- **", start)) if end != -1]
    return " ".join(README[start:min(ends)].split())


def test_the_readme_says_how_to_roll_back_a_promotion_by_hand():
    """"Stopping and resuming a rollout" said how to roll back an open rollout only: a person whose
    promoted release misbehaved after its monitoring window found `rollway abort` refusing, and the
    way back (the `rollback` flow by hand, until it is finalized) told only deep in **After 100 %**."""
    section = _paragraph("**Stopping and resuming a rollout.**")
    for said in ("`rollway abort` rolls back while the monitoring window runs", "run the `rollback` flow by hand",
                 "Deployments → rollback/rollway → Run", "once finalized, going back is a new rollout"):
        assert said in section, said


def test_the_readme_says_what_the_commands_need_of_aws():
    """The policy was said to be the worker's: a person running `rollway abort` with their own
    credentials was not told that it carries out the rollback itself, and needs its permissions."""
    part = _paragraph("- **Least privilege:**")
    assert "The `rollway` commands call AWS from the machine they run on" in part
    assert "`abort` when no live run is paused, and `finalize`, carry out the `rollback` or `finalize` flow" in part
    assert "the credentials block they name (`--credentials-block`" in part


def test_every_serve_py_option_and_make_target_the_readme_names_exists(capsys, monkeypatch):
    """`serve.py --weekly-cron ...` and `make bench` are lines a person types as they are written."""
    import deployments.serve as serve

    monkeypatch.setenv("COLUMNS", "300")
    with pytest.raises(SystemExit):
        serve.cli(["--help"])
    help_text = capsys.readouterr().out
    options = {option for line in re.findall(r"`(?:\.venv/bin/python )?(?:deployments/)?serve\.py ([^`]+)`", README)
               for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line)}
    assert options, "the README's serve.py lines were not found"
    unknown = [option for option in options if not re.search(rf"(?<![\w-]){option}(?![\w-])", help_text)]
    assert not unknown, f"serve.py options the README gives that serve.py does not take: {unknown}"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"`make ([a-z-]+)`", README)) | set(re.findall(r"^make ([a-z-]+)", README, re.MULTILINE))
    assert {"demo", "test", "up"} <= targets
    missing = [target for target in targets if not re.search(rf"^{target}:", makefile, re.MULTILINE)]
    assert not missing, f"make targets the README names that the Makefile lacks: {missing}"


def test_the_exit_codes_paragraph_names_every_code_a_command_exits_with():
    """A script around `rollway` reads its exit code from this paragraph: it left out the 130 of an
    interrupted `flags set` and the 128 + signal of a stopped `up` or `demo`."""
    import signal

    import rollway.flags_commands as flags_commands
    import rollway.stdout as stdout
    from rollway.cli.up import Stopped, stopped_by

    codes = _paragraph("**Exit codes**")
    constants = {name: value for module in (flags_commands, stdout) for name, value in vars(module).items()
                 if name.startswith("EXIT_") and isinstance(value, int)}
    unsaid = [f"{name} ({value})" for name, value in constants.items() if not re.search(rf"\b{value}\b", codes)]
    assert not unsaid, f"exit codes the paragraph does not give: {unsaid}"
    assert "128 + its number" in codes
    for stop, said in ((KeyboardInterrupt(), "after Ctrl-C"), (Stopped.by(signal.SIGTERM), "after SIGTERM")):
        assert f"{stopped_by(stop)[1]} {said}" in codes, said


def test_the_flag_evaluator_an_application_copies_from_the_readme_is_built_as_written():
    """An application's developer pastes the evaluator line and the client settings beside it: a
    keyword renamed in rollway.flags left them a TypeError at the application's start."""
    import boto3
    import botocore.config

    from rollway.aws.flags import DynamoFlagStore
    from rollway.flags import FlagEvaluator

    evaluator = re.search(r"`(FlagEvaluator\(DynamoFlagStore\(client, targets\)[^`]*)`", README)
    config = re.search(r"`(botocore\.config\.Config\([^`]*)`", README)
    assert evaluator and config, "the README no longer shows how an application evaluates flags"
    names = {"FlagEvaluator": FlagEvaluator, "DynamoFlagStore": DynamoFlagStore, "botocore": botocore,
             "targets": Targets(), "client": boto3.client("dynamodb", region_name="us-west-2", aws_access_key_id="k",
                                                          aws_secret_access_key="s")}
    assert isinstance(eval(evaluator.group(1), names), FlagEvaluator)  # the README's own line, as pasted
    names["client"] = boto3.client("dynamodb", region_name="us-west-2", aws_access_key_id="k",
                                   aws_secret_access_key="s", config=eval(config.group(1), names))
    assert names["client"].meta.config.read_timeout == 1
