"""Input that passed validation and failed only once the rollout had written to AWS.

- a misspelt key in the targets was dropped, and Webordinary's default used in its place;
- an image reference docker and ECS cannot pull (a pasted URL, two tags, an empty path part)
  was registered as a task definition and given to the canary service;
- a "never" duration (approvals.timeout_seconds=1e12 with on_timeout: hold) shifted 5 % of the
  traffic and then died with an OverflowError at the first pause.

Each is now refused when the model is built, with a message naming the key or field.
"""

from __future__ import annotations

import json

import pytest
from prefect.exceptions import ParameterTypeError
from pydantic import ValidationError

from blocks.targets import RollwayTargets
from flows.canary import canary
from rollway.spec import Analysis, Approvals, RolloutSpec, Stage, WeeklyPhase
from rollway.targets import QueueSpec, TableSpec, Targets

IMG = "webordinary/edit-container:2.0.0"
DAY = 86400


def refused_at(raw: dict, where: str, message: str) -> None:
    """``raw`` as a spec is refused at the field ``where`` with ``message`` among the errors."""
    with pytest.raises(ValidationError) as refused:
        RolloutSpec.model_validate(raw)
    text = str(refused.value)
    assert f"\n{where}\n" in text and message in text, text


# -- targets: a key no model knows ------------------------------------------------------------

@pytest.mark.parametrize("model", [Targets, RollwayTargets])
def test_a_misspelt_target_key_is_refused_naming_it_and_its_close_match(model):
    with pytest.raises(ValidationError) as refused:
        model.model_validate({"stable_service": "checkout-service", "canary_servce": "checkout-service-canary",
                              "flag_table": "checkout-feature-flags"})
    text = str(refused.value)
    assert "canary_servce\n  Extra inputs are not permitted: unknown key (did you mean 'canary_service'?)" in text
    assert "flag_table\n  Extra inputs are not permitted: unknown key (did you mean 'flags_table'?)" in text


def test_a_key_like_no_field_lists_the_keys():
    with pytest.raises(ValidationError, match=r"zzz\n  Extra inputs are not permitted: unknown key \(the keys are "
                                              r"region, load_balancer, .*stable_service"):
        Targets(zzz=1)


@pytest.mark.parametrize("data,where,meant", [
    ({"queues": [{"name": "q", "dlq_nme": "q-dlq"}]}, "queues.0.dlq_nme", "dlq_name"),
    ({"queues": [{"name": "q", "dlq_name": "q-dlq", "max_receive": 5}]}, "queues.0.max_receive", "max_receive_count"),
    ({"tables": [{"name": "t", "hash_key": "id", "index": ["a"]}]}, "tables.0.index", "indexes"),
])
def test_a_misspelt_key_in_a_queue_or_table_is_refused(data, where, meant):
    with pytest.raises(ValidationError, match=rf"{where}\n  Extra inputs are not permitted: .*did you mean '{meant}'"):
        Targets.model_validate(data)
    with pytest.raises(ValidationError, match=where.split(".")[-1]):
        (QueueSpec if "queues" in data else TableSpec).model_validate(data[where.split(".")[0]][0])


def test_a_misspelt_nested_key_keeps_its_close_match_beside_a_misspelt_top_level_one():
    """The outer model rebuilt the nested error from its type, and its hint was lost."""
    with pytest.raises(ValidationError) as refused:
        Targets.model_validate({"canary_servce": "x", "queues": [{"name": "q", "dlq_name": "d", "max_recieve_count": 3}]})
    assert "queues.0.max_recieve_count\n  Extra inputs are not permitted: unknown key (did you mean " \
           "'max_receive_count'?)" in str(refused.value), refused.value


# -- spec: a key no model knows -----------------------------------------------------------------

@pytest.mark.parametrize(("raw", "where", "message"), [
    ({"image": IMG, "aprovals": {}}, "aprovals", "unknown key (did you mean 'approvals'?)"),
    ({"image": IMG, "approvals": {"on_timout": "hold"}}, "approvals.on_timout",
     "unknown key (did you mean 'on_timeout'?)"),
    ({"image": IMG, "stages": [{"weigth": 5}, {"weight": 100}]}, "stages.0.weigth",
     "unknown key (did you mean 'weight'?)"),
    ({"image": IMG, "phases": [{"name": "week 1", "wieghts": [5]}]}, "phases.0.wieghts",
     "unknown key (did you mean 'weights'?)"),
    ({"image": IMG, "zzz": 1}, "zzz", "unknown key (the keys are image, stages, analysis, "),
], ids=["approvals", "on_timeout", "weight", "weights", "none-close"])
def test_a_misspelt_spec_key_is_refused_naming_the_key_it_was_meant_as(raw, where, message):
    """The spec said only "Extra inputs are not permitted", where the targets named the key meant."""
    refused_at(raw, where, f"Extra inputs are not permitted: {message}")


def test_a_queue_that_is_its_own_dead_letter_queue_is_refused():
    # The checklist would otherwise pass a queue with no dead-letter queue, and the DLQ guardrail
    # would watch the live queue's depth.
    with pytest.raises(ValidationError, match="dead-letter queue of 'q' must be another queue"):
        Targets.model_validate({"queues": [{"name": "q", "dlq_name": "q"}]})
    assert QueueSpec(name="q", dlq_name="q-dlq").dlq_name == "q-dlq"


def test_the_block_still_takes_prefects_own_keys():
    block = RollwayTargets(block_type_slug="rollway-targets", _block_document_name="saved", _is_anonymous=False)
    assert block.targets() == Targets()
    with pytest.raises(ValidationError, match="block_type_slug"):
        RollwayTargets.model_validate({"block_type_slug": "aws-credentials"})


# -- image references ------------------------------------------------------------------------

@pytest.mark.parametrize("image,message", [
    ("https://123456789012.dkr.ecr.us-west-2.amazonaws.com/webordinary/edit-container:2.0.0",
     "is a URL, not an image reference: drop 'https://' (use '123456789012.dkr.ecr.us-west-2.amazonaws.com/"
     "webordinary/edit-container:2.0.0')"),
    ("webordinary/edit-container:2.0.0:2.0.1", "has more than one tag ('2.0.0', '2.0.1')"),
    ("webordinary//edit-container:2.0.0", "empty repository path component"),
    ("/edit-container:2.0.0", "empty repository path component"),
    ("Webordinary/edit-container:2.0.0", "path component 'Webordinary' that is not lowercase"),
    ("webordinary/edit..container:2.0.0", "path component 'edit..container'"),
    ("webordinary/edit-container:-rc1", "tag '-rc1' that docker does not take"),
    ("webordinary/edit-container:" + "1" * 129, "that docker does not take"),
    ("webordinary/edit-container@sha256:abc", "digest 'sha256:abc' that is not sha256:<64"),
    ("my_registry.example.com/edit-container:2.0.0", "registry 'my_registry.example.com'"),
    ("webordinary/edit container:2.0.0", "contains whitespace"),
    ("registry.example.com/" + "a/" * 120 + "b:1", "characters long: ECS takes at most 255"),
    ("webordinary/edit-container", "is not a pinned image reference"),
    ("[fd00::zz]:5000/edit-container:2.0.0", "not a host name or a [bracketed IPv6 address]"),
    ("[fd00::5]x/edit-container:2.0.0", "not a host name or a [bracketed IPv6 address]"),
    ("[fd00::5:5000/edit-container:2.0.0", "not a host name or a [bracketed IPv6 address]"),
])
def test_an_image_docker_cannot_pull_is_refused_saying_why(image, message):
    with pytest.raises(ValidationError) as refused:
        RolloutSpec(image=image)
    text = str(refused.value)
    assert text.splitlines()[1] == "image" and message in text, text


@pytest.mark.parametrize("image", [
    IMG, "repo/app:1", "a/b:1", "app:2", "example/edit:2.0.0", "fluent/fluent-bit:2.2", "webordinary/edit-container:v2",
    "123456789012.dkr.ecr.us-west-2.amazonaws.com/webordinary/edit-container:2.0.0",
    "localhost:5000/edit-container:2.0.0", "registry.example.com:443/team/edit__container:2.0.0-rc_1",
    "public.ecr.aws/docker/library/nginx:1.27", "webordinary/edit-container@sha256:" + "0" * 64,
    "webordinary/edit-container:2.0.0@sha256:" + "ab" * 32, "  webordinary/edit-container:2.0.0 ",
    "[fd00::5]:5000/webordinary/edit-container:2.0.0", "[::1]/edit-container:2.0.0",  # IPv6 registries were refused
])
def test_images_docker_can_pull_are_taken(image):
    assert RolloutSpec(image=image).image == image.strip()


def test_a_flow_run_with_a_malformed_image_is_refused_as_a_parameter_error():
    with pytest.raises(ParameterTypeError, match="drop 'https://'"):
        canary.validate_parameters({"spec": {"image": "https://registry.example.com/edit-container:2.0.0"}})


# -- durations that become sleeps, deadlines and datetimes -------------------------------------

@pytest.mark.parametrize("spec,where,message", [
    ({"approvals": {"timeout_seconds": 1e12, "on_timeout": "hold"}}, "approvals.timeout_seconds",
     "timeout_seconds must be at most 30 days (2592000 s); to wait for an answer indefinitely, set on_timeout: hold"),
    ({"approvals": {"timeout_seconds": 30 * DAY + 1}}, "approvals.timeout_seconds", "at most 30 days"),
    ({"stages": [{"weight": 5, "bake_seconds": 1e12}, {"weight": 100}]}, "stages.0.bake_seconds",
     "bake_seconds must be at most 30 days (2592000 s); to hold at this weight for longer, end a weekly phase"),
    ({"monitor_seconds": 1e12}, "monitor_seconds", "monitor_seconds must be at most 90 days (7776000 s)"),
    ({"verify_timeout_seconds": 1e12}, "verify_timeout_seconds", "verify_timeout_seconds must be at most an hour"),
    ({"analysis": {"interval_seconds": 60 * 10**10}}, "analysis.interval_seconds",
     "interval_seconds must be at most a day (86400 s)"),
    ({"analysis": {"metrics_delay_seconds": 1e12}}, "analysis.metrics_delay_seconds",
     "metrics_delay_seconds must be at most a day"),
    ({"analysis": {"calibration_seconds": 10**12}}, "analysis.calibration_seconds",
     "calibration_seconds must be at most 15 days"),
])
def test_a_duration_too_long_to_schedule_is_refused_naming_the_field(spec, where, message):
    refused_at({"image": IMG, **spec}, where, message)


def test_the_longest_durations_allowed_are_taken():
    spec = RolloutSpec(
        image=IMG, stages=[Stage(weight=5, bake_seconds=30 * DAY), Stage(weight=100, bake_seconds=DAY)],
        approvals={"timeout_seconds": 30 * DAY, "on_timeout": "hold"}, monitor_seconds=90 * DAY,
        verify_timeout_seconds=3600,
        analysis={"interval_seconds": DAY, "metrics_delay_seconds": DAY, "calibration_seconds": 15 * DAY},
    )
    assert RolloutSpec.from_record(spec.model_dump_json()) == spec


def test_a_calibration_shorter_than_one_period_is_refused():
    """The read before a stage takes whole periods: 30 s of 60-s periods read none, leaving the
    guardrail without the load balancer's 5xx rate before the stage (0 still reads an hour)."""
    with pytest.raises(ValidationError) as refused:
        RolloutSpec.model_validate({"image": IMG, "analysis": {"calibration_seconds": 30}})
    text = str(refused.value)
    assert "\nanalysis\n" in text and "less than one period (interval_seconds 60)" in text, text
    # The default hour is shorter than a 2-hour period: the message says it was not written.
    with pytest.raises(ValidationError, match=r"calibration_seconds 3600 \(the default\) is less than one period"):
        RolloutSpec.model_validate({"image": IMG, "analysis": {"interval_seconds": 7200}})
    assert RolloutSpec(image=IMG, analysis={"calibration_seconds": 0}).analysis.calibration_seconds == 0
    assert RolloutSpec(image=IMG, analysis={"calibration_seconds": 60}).analysis.calibration_seconds == 60
    recorded = json.loads(RolloutSpec(image=IMG).model_dump_json())
    recorded["analysis"]["calibration_seconds"] = 30
    assert RolloutSpec.from_record(json.dumps(recorded)).analysis.calibration_seconds == 30


@pytest.mark.parametrize("interval", [3660, 7200])
def test_calibration_off_with_periods_longer_than_the_guardrails_hour_is_refused(interval):
    """With calibration off the guardrail still reads the hour before each stage for the load
    balancer's own 5xx rate: with longer periods that hour held none, and every load-balancer 5xx
    of a stage could be the canary's, holding a healthy canary at a low weight."""
    raw = {"image": IMG, "stages": [{"weight": 5, "bake_seconds": 4 * interval}, {"weight": 100, "bake_seconds": interval}],
           "analysis": {"interval_seconds": interval, "calibration_seconds": 0}}
    refused_at(raw, "analysis", (
        f"calibration_seconds 0 with interval_seconds {interval}: the guardrail still reads the 3600 s before each "
        f"stage for the load balancer's own 5xx rate, which holds no whole period of {interval} s; give "
        f"calibration_seconds of at least {interval}, or interval_seconds of at most 3600"))
    assert RolloutSpec.model_validate({**raw, "analysis": {"interval_seconds": interval,
                                                           "calibration_seconds": interval}})
    assert RolloutSpec.model_validate({**raw, "analysis": {"interval_seconds": 3600, "calibration_seconds": 0}})
    assert RolloutSpec.from_record(json.dumps(raw)).analysis.calibration_seconds == 0


def test_a_stage_baking_longer_than_cloudwatch_keeps_its_periods_is_refused():
    """CloudWatch keeps one-minute periods for 15 days and returns none for a look further back:
    every look reads the stage from its start, so a 20-day bake at 60 s went blind on day 15."""
    stages = [Stage(weight=5, bake_seconds=20 * DAY), Stage(weight=100)]
    with pytest.raises(ValidationError, match=r"stage\(s\) \[5\]% bake longer than CloudWatch keeps periods of "
                                              r"interval_seconds 60: 15 days.*multiple of 300"):
        RolloutSpec(image=IMG, stages=stages)
    # Five-minute periods are kept 63 days; a rollout recorded before the rule is still read back.
    coarse = RolloutSpec(image=IMG, stages=stages, analysis={"interval_seconds": 300})
    recorded = json.loads(coarse.model_dump_json())
    recorded["analysis"]["interval_seconds"] = 60
    assert RolloutSpec.from_record(json.dumps(recorded)).stages == coarse.stages


def test_a_bake_refused_for_cloudwatchs_retention_names_the_longest_bake_allowed_as_a_windows_refusal_does():
    """A bake and a monitoring window are held to one rule (every look reads back to the start of
    either): the window's refusal said "Watch at most 1295934.5 s", the bake's only "at most 15 days
    less metrics_delay_seconds (65.5 s)", leaving the sum to the reader. Both name the figure, and
    a bake of exactly it is accepted."""
    def at_most(bake: float) -> RolloutSpec:
        return RolloutSpec(image=IMG, stages=[Stage(weight=5, bake_seconds=bake), Stage(weight=100)],
                           analysis={"metrics_delay_seconds": 65.5})

    with pytest.raises(ValidationError) as refused:
        at_most(20 * DAY)
    said = str(refused.value)
    assert "bake at most 1295934.5 s (15 days less metrics_delay_seconds, 65.5 s)" in said, said
    assert at_most(1295934.5).stages[0].bake_seconds == 1295934.5


def test_a_never_ending_approval_timeout_is_a_parameter_error_before_the_run_starts():
    with pytest.raises(ParameterTypeError, match="approvals.timeout_seconds"):
        canary.validate_parameters({"spec": {"image": IMG, "approvals": {"timeout_seconds": 1e12, "on_timeout": "hold"}}})


def test_a_monitor_window_too_long_to_watch_is_a_parameter_error_naming_the_maximum():
    """The monitor flow's window_seconds had no bound: 1e12 held the rollout's lease for as long
    (no next rollout of the service could start), where a spec's monitor_seconds stops at 90 days."""
    from flows.monitor import monitor

    with pytest.raises(ParameterTypeError, match=r"window_seconds must be at most 90 days \(7776000 s\), not 1e\+12"):
        monitor.validate_parameters({"spec": {"image": IMG}, "window_seconds": 1e12})
    assert monitor.validate_parameters({"spec": {"image": IMG}, "window_seconds": 90 * DAY})["window_seconds"] == 90 * DAY


@pytest.mark.parametrize("parameters,message", [
    ({"lease_wall_seconds": 0}, "lease_wall_seconds must be over 0 and at most a day (86400 s), not 0"),
    ({"lease_wall_seconds": 1e6}, "lease_wall_seconds must be over 0 and at most a day (86400 s), not 1e+06"),
    ({"lease_wall_seconds": float("nan")}, "lease_wall_seconds must be over 0 and at most a day (86400 s), not nan"),
    ({"approval_poll_seconds": 3600}, "approval_poll_seconds must be over 0 and at most 300, not 3600"),
    # :g's six digits made 2592001.0 read "2.592e+06", a round figure nobody gave.
    ({"lease_wall_seconds": 2592001.0}, "lease_wall_seconds must be over 0 and at most a day (86400 s), not 2592001"),
    # And 2592000.0 read "2.592e+06": a figure of four digits, as if rounded, where 30 days were typed in full.
    ({"lease_wall_seconds": 2592000.0}, "lease_wall_seconds must be over 0 and at most a day (86400 s), not 2592000"),
])
def test_a_flow_parameter_out_of_range_is_refused_in_the_specs_words(parameters, message):
    """pydantic's "Input should be less than or equal to 86400" named no range, where a spec's
    number out of range is refused with its whole range and the value given."""
    from flows.progressive import progressive_rollout

    with pytest.raises(ParameterTypeError) as refused:
        progressive_rollout.validate_parameters({"spec": {"image": IMG}, **parameters})
    assert message in str(refused.value) and "Input should" not in str(refused.value), str(refused.value)


# -- numbers outside a field's range -------------------------------------------------------------

@pytest.mark.parametrize("spec,where,message", [
    ({"analysis": {"alpha": 0.7}}, "analysis.alpha", "alpha must be at least 1e-09 and under 0.5, not 0.7"),
    ({"analysis": {"alpha": float("nan")}}, "analysis.alpha", "alpha must be at least 1e-09 and under 0.5, not nan"),
    ({"analysis": {"margin_ratio": 1}}, "analysis.margin_ratio", "margin_ratio must be over 1, not 1"),
    ({"stages": [{"weight": 0}, {"weight": 100}]}, "stages.0.weight",
     "weight must be at least 1 and at most 100, not 0"),
    ({"stages": [{"weight": 5, "bake_seconds": -5}, {"weight": 100}]}, "stages.0.bake_seconds",
     "bake_seconds must be over 0 and at most 30 days (2592000 s), not -5"),
    ({"guardrails": {"canary_error_rate": 1.5}}, "guardrails.canary_error_rate",
     "canary_error_rate must be over 0 and at most 1, not 1.5"),
    ({"approvals": {"timeout_seconds": 0}}, "approvals.timeout_seconds",
     "timeout_seconds must be over 0 and at most 30 days (2592000 s), not 0"),
    # A seconds bound of whole hours is said as a duration, as the spec's own limits are; one under
    # an hour in seconds.
    ({"analysis": {"interval_seconds": 0}}, "analysis.interval_seconds",
     "interval_seconds must be at least 60 and at most a day (86400 s), not 0"),
])
def test_a_number_out_of_range_is_refused_naming_the_field_and_its_range(spec, where, message):
    """pydantic said only the bound crossed ("Input should be less than 0.5"): neither which
    setting it was in the message nor how far it may go the other way."""
    refused_at({"image": IMG, **spec}, where, message)
    with pytest.raises(ValidationError) as refused:
        RolloutSpec.model_validate({"image": IMG, **spec})
    assert "Input should" not in str(refused.value)


@pytest.mark.parametrize("part,given,message", [
    (Stage, {"weight": 0}, "weight must be at least 1 and at most 100, not 0"),
    (Approvals, {"timeout_seconds": 0}, "timeout_seconds must be over 0 and at most 30 days (2592000 s), not 0"),
    (Analysis, {"alpha": 0.7, "alhpa": 0.05}, "alpha must be at least 1e-09 and under 0.5, not 0.7"),
])
def test_a_part_of_a_spec_built_alone_refuses_a_number_out_of_range_as_the_spec_does(part, given, message):
    """A stage or the analysis built on its own (a default, the demo, a replay's) said pydantic's
    "Input should be greater than or equal to 1" where the same value in a spec named the range."""
    with pytest.raises(ValidationError) as refused:
        part.model_validate(given)
    assert message in str(refused.value) and "Input should" not in str(refused.value), str(refused.value)


def test_a_number_out_of_range_beside_a_misspelt_key_keeps_both_refusals_words():
    raw = {"image": IMG, "analysis": {"alpha": 0.7, "alhpa": 0.05}}
    refused_at(raw, "analysis.alpha", "alpha must be at least 1e-09 and under 0.5, not 0.7")
    refused_at(raw, "analysis.alhpa", "unknown key (did you mean 'alpha'?)")


def test_a_flow_run_with_a_number_out_of_range_is_refused_in_the_same_words():
    with pytest.raises(ParameterTypeError, match=r"spec\.analysis\.alpha: alpha must be at least 1e-09 and under 0\.5, "
                                                 r"not 0\.7"):
        canary.validate_parameters({"spec": {"image": IMG, "analysis": {"alpha": 0.7}}})


def test_a_too_long_bake_beside_an_unknown_key_is_refused_naming_both():
    """A misspelt key rebuilt the spec's errors, and the bake's own refusal could not be rebuilt:
    the spec was refused with a TypeError ("'le' required in context") naming neither, which a
    flow run took for a crash, not a bad parameter."""
    raw = {"image": IMG, "aproval": True, "stages": [{"weight": 5, "bake_seconds": 1e12}, {"weight": 100}]}
    refused_at(raw, "stages.0.bake_seconds", "bake_seconds must be at most 30 days (2592000 s)")
    refused_at(raw, "aproval", "unknown key")
    with pytest.raises(ParameterTypeError, match="bake_seconds must be at most 30 days"):
        canary.validate_parameters({"spec": raw})


@pytest.mark.parametrize("field", ["canary_error_rate", "monitor_error_rate"])
def test_an_error_rate_guardrail_that_can_never_be_exceeded_is_refused(field):
    """The guardrail rolls back above its rate: at 1 (meant as 1 %) it never acted, however many
    of the canary's requests failed. A recorded spec is read back as it was."""
    raw = {"image": IMG, "guardrails": {field: 1}}
    refused_at(raw, f"guardrails.{field}", (
        f"{field} 1 can never be exceeded (an error rate is at most 1), so the guardrail would never act: it is a "
        "fraction of requests, 0.01 for 1 %"))
    assert getattr(RolloutSpec.from_record(json.dumps(raw)).guardrails, field) == 1
    assert getattr(RolloutSpec.model_validate({"image": IMG, "guardrails": {field: 0.99}}).guardrails, field) == 0.99


def test_a_flag_schedule_that_falls_as_the_traffic_grows_is_refused():
    """Bucketing keeps a user who has the feature at p % at every higher percentage; a falling
    schedule took the feature away from users as the rollout went on."""
    from rollway.spec import FlagBinding

    with pytest.raises(ValidationError, match=r"falls as the traffic grows"):
        FlagBinding(feature="new_editor", follow="schedule", schedule={5: 50, 100: 10})
    assert FlagBinding(feature="new_editor", follow="schedule", schedule={5: 0, 50: 10, 100: 10}).percentage_at(75) == 10


def test_a_flag_schedule_finer_than_a_basis_point_is_refused_and_a_recorded_one_read_back():
    """The stage stored 0.004 % as 0 %, off for every user, where `rollway flags set` refuses it."""
    raw = {"image": IMG, "stages": [{"weight": 5}, {"weight": 100}],
           "flags": [{"feature": "new_editor", "follow": "schedule", "schedule": {5: 0.004, 100: 100}}]}
    with pytest.raises(ValidationError, match=r"flag 'new_editor': the percentage at stage 5, 0.004: flags are stored "
                                              r"in basis points, so the finest step is 0.01 % .*give 0 or 0.01"):
        RolloutSpec.model_validate(raw)
    assert RolloutSpec.from_record(json.dumps(raw)).flags[0].schedule[5] == 0.004
    raw["flags"][0]["schedule"][5] = 0.01
    assert RolloutSpec.model_validate(raw).flags[0].percentage_at(5) == 0.01


@pytest.mark.parametrize("spec,where,message", [
    ({"stages": [{"weight": "50%"}, {"weight": 100}]}, "stages.0.weight",
     "a stage weight is a number of percent: give 50, not '50%'"),
    ({"stages": [{"weight": 50}, {"weight": 100}],
      "flags": [{"feature": "f", "follow": "schedule", "schedule": {50: "10%", 100: 100}}]}, "flags.0.schedule",
     "the flag percentage at stage 50 is a number of percent: give 10, not '10%'"),
])
def test_a_percentage_written_with_its_sign_is_refused_saying_what_to_give(spec, where, message):
    """pydantic said only "unable to parse string as an integer" of a "50%" stage weight."""
    refused_at({"image": IMG, **spec}, where, message)


@pytest.mark.parametrize("weight", [True, False])
def test_a_stage_weight_must_be_a_number_not_a_boolean(weight):
    from rollway.spec import Stage

    with pytest.raises(ValidationError, match="a stage weight is a percentage 1..100"):
        Stage.model_validate({"weight": weight})


def test_a_metric_named_twice_is_refused_in_a_new_spec_and_read_back_in_a_recorded_one():
    """`metrics: [errors, errors]` was taken: alpha is split over the entries, so each metric got
    a quarter of it, not the half a person asked for, and stages took longer to decide."""
    raw = {"image": IMG, "stages": [{"weight": 5}, {"weight": 100}], "analysis": {"metrics": ["errors", "errors"]}}
    with pytest.raises(ValidationError, match=r"name each metric once: \['errors', 'errors'\]"):
        RolloutSpec.model_validate(raw)
    # A rollout recorded before the rule can still be resumed and rolled back.
    assert RolloutSpec.from_record(json.dumps(raw)).analysis.metrics == ("errors", "errors")


@pytest.mark.parametrize("names,message", [
    (["week 1", "  "], "a weekly phase needs a name"),
    (["week 1", "week 1"], "name each phase once: the phase plan names ['week 1', 'week 1']"),
])
def test_a_phase_plan_whose_names_cannot_tell_its_phases_apart_is_refused(names, message):
    """A blank or repeated phase name was taken: the runs then logged "starting  of ...", and the
    summary and SNS said "holding after week 1 ... week 1 may start from", naming no phase or the
    wrong one. A recorded spec is read back as it was."""
    phases = [{"name": names[0], "weights": [5]}, {"name": names[1], "weights": [100]}]
    stages = [{"weight": 5}, {"weight": 100}]
    with pytest.raises(ValidationError) as refused:
        RolloutSpec.model_validate({"image": IMG, "stages": stages, "phases": phases})
    assert message in str(refused.value), str(refused.value)
    recorded = RolloutSpec.model_construct(
        image=IMG, stages=(Stage(weight=5), Stage(weight=100)),
        phases=tuple(WeeklyPhase.model_construct(name=n, weights=(w,), decommission=False)
                     for n, w in zip(names, (5, 100))))
    assert [p.name for p in RolloutSpec.from_record(recorded.model_dump_json()).phases] == names


@pytest.mark.parametrize("name, message", [
    ("", "a weekly phase needs a name"),
    ("   ", "a weekly phase needs a name"),
    ("week 1\n\n## All checks passed", "must be one line of at most 100 printable characters"),
    ("w" * 101, "must be one line of at most 100 printable characters"),
])
def test_a_phase_name_people_cannot_read_is_refused_in_a_new_spec_and_read_back_in_a_recorded_one(name, message):
    """A blank name left the ledger's "starting " and the summary's "holding after " naming nothing,
    and a line break in one began markdown of its own in the run's summary."""
    raw = {"image": IMG, "stages": [{"weight": 5}, {"weight": 100}],
           "phases": [{"name": name, "weights": [5]}, {"name": "week 2", "weights": [100]}]}
    with pytest.raises(ValidationError, match=message):
        RolloutSpec.model_validate(raw)
    assert RolloutSpec.from_record(json.dumps(raw)).phases[0].name == name


def test_a_phase_name_is_kept_without_surrounding_spaces():
    spec = RolloutSpec.model_validate({"image": IMG, "stages": [{"weight": 100}],
                                       "phases": [{"name": " week 1 ", "weights": [100]}]})
    assert spec.phases[0].name == "week 1"
