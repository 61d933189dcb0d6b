"""Bad input fails at construction, before anything could reach AWS, with a message naming it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rollway.model import Weights
from rollway.spec import FlagBinding, RolloutSpec, Stage, WeeklyPhase
from rollway.targets import Targets


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"image": ""}, "image must not be empty"),
        ({"image": "   "}, "image must not be empty"),
        ({"image": "repo/app"}, "not a pinned image reference"),
        ({"image": "repo/app:1", "stages": [{"weight": 5}, {"weight": 5}]}, "strictly increasing"),
        ({"image": "repo/app:1", "stages": [{"weight": 50}, {"weight": 25}]}, "strictly increasing"),
        # The usual first try at a stage list: said once per stage, with what to write.
        ({"image": "repo/app:1", "stages": [5, 25, 100]},
         r'stages.0\n  Value error, a stage is an object, not the number 5: write \{"weight": 5\}'),
        # Which pair is out of order, and what to write instead.
        ({"image": "repo/app:1", "stages": [{"weight": 5}, {"weight": 50}, {"weight": 25}, {"weight": 100}]},
         r"got \[5, 50, 25, 100\]: 25 comes after 50 \(list each weight once, from the smallest to 100\)"),
        # Stages changed and the default phase plan kept: the way out, not only the mismatch.
        ({"image": "repo/app:1", "stages": [{"weight": 10}, {"weight": 100}],
          "phases": [{"name": "week 1", "weights": [5]}, {"name": "week 2", "weights": [100]}]},
         r"phases give \[5, 100\], stages are \[10, 100\]; list every stage's weight once across the phases, in "
         r"order, or leave `phases` out to run every stage as one phase"),
        ({"image": "repo/app:1", "stages": [{"weight": 0}]}, r"stages.0.weight\n  weight must be at least 1 and at most "
                                                             "100, not 0"),
        ({"image": "repo/app:1", "stages": [{"weight": 101}]}, "weight must be at least 1 and at most 100, not 101"),
        ({"image": "repo/app:1", "stages": []}, "at least one stage"),
        ({"image": "repo/app:1", "stages": [{"weight": 5, "bake_seconds": 60, "min_bake_seconds": 120}]}, "cannot exceed"),
        # The bake it exceeds, the default one too (a list of ten stages named only "stages.3"), and the stage.
        ({"image": "repo/app:1", "stages": [{"weight": 5}, {"weight": 25, "min_bake_seconds": 900}, {"weight": 100}]},
         r"stages.1\n  Value error, stage 25%: min_bake_seconds 900 s cannot exceed bake_seconds 600 s \(the default\)"),
        ({"image": "repo/app:1", "flags": [{"feature": "f", "follow": "schedule"}]}, "has none"),
        ({"image": "repo/app:1", "flags": [{"feature": "f", "follow": "schedule", "schedule": {5: 120}}]}, "outside 0..100"),
    ],
)
def test_bad_spec_is_rejected(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        RolloutSpec(**kwargs)


@pytest.mark.parametrize("stable,canary", [(-1, 101), (101, -1), (50, 40), (100, 100)])
def test_weights_outside_range_or_not_summing_to_100(stable, canary):
    with pytest.raises(ValidationError):
        Weights(stable=stable, canary=canary)


@pytest.mark.parametrize("percent", [-5, 101])
def test_canary_at_rejects_out_of_range(percent):
    with pytest.raises(ValueError, match="within 0..100"):
        Weights.canary_at(percent)


def test_defaults_follow_the_seed():
    spec = RolloutSpec(image="webordinary/edit-container:2.0.0")
    assert spec.weights == (5, 25, 50, 75, 100)
    assert [s.weight for s in spec.stages if s.approval] == [25, 100]
    assert [p.weights for p in spec.phases] == [(5,), (25, 50), (75, 100)]
    assert spec.phases[-1].decommission
    assert spec.guardrails.canary_error_rate == 0.01 and spec.guardrails.monitor_error_rate == 0.05


def test_custom_stages_run_as_one_phase_unless_a_plan_is_given():
    spec = RolloutSpec(image="a/b:1", stages=[{"weight": 10}, {"weight": 100}])
    assert [p.weights for p in spec.phases] == [(10, 100)]
    with pytest.raises(ValidationError, match="phase plan must run the stages"):
        RolloutSpec(image="a/b:1", stages=[{"weight": 10}, {"weight": 100}], phases=[{"name": "w1", "weights": [10]}])


def test_flag_binding_follows_traffic_or_its_schedule():
    assert FlagBinding(feature="f").percentage_at(25) == 25.0
    sched = FlagBinding(feature="g", follow="schedule", schedule={5: 0, 50: 10, 100: 100})
    assert [sched.percentage_at(w) for w in (5, 25, 50, 75, 100)] == [0, 0, 10, 10, 100]


_ARN = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/{name}/0123456789abcdef"


def test_targets_reject_same_stable_and_canary():
    with pytest.raises(ValidationError, match="must differ"):
        Targets(stable_target_group="tg", canary_target_group="tg")
    with pytest.raises(ValidationError, match="must differ"):
        Targets(stable_service="svc", canary_service="svc")


@pytest.mark.parametrize("stable,canary", [
    ("webordinary-edit-stable", _ARN.format(name="webordinary-edit-stable")),
    (_ARN.format(name="webordinary-edit-stable"), "webordinary-edit-stable"),
])
def test_a_target_group_named_once_by_name_and_once_by_arn_is_refused(stable, canary):
    # One group given two ways would take both sides of the split; refused before any AWS call.
    with pytest.raises(ValidationError, match="must differ"):
        Targets(stable_target_group=stable, canary_target_group=canary)
    # A group of another name, by ARN, is a different group.
    assert Targets(stable_target_group=stable, canary_target_group=_ARN.format(name="webordinary-edit-canary"))


@pytest.mark.parametrize("stages,phases", [
    # (a plan whose last stage is below 100 is refused whatever its phases decommission)
    ((5, 50, 100), [WeeklyPhase(name="week 1", weights=(5,), decommission=True),
                    WeeklyPhase(name="week 2", weights=(50, 100))]),
])
def test_only_a_last_phase_ending_at_100_may_decommission(stages, phases):
    with pytest.raises(ValueError, match="only the last phase may"):
        RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[Stage(weight=w) for w in stages], phases=phases)


@pytest.mark.parametrize("feature", ["use sqs architecture", "use:sqs", "-leading-dash", "x" * 129])
def test_flag_bindings_need_a_usable_flag_name(feature):
    with pytest.raises(ValueError, match="feature flag name"):
        FlagBinding(feature=feature)


@pytest.mark.parametrize("seconds", [10, 45, 90])
def test_the_analysis_interval_is_a_whole_number_of_cloudwatch_minutes(seconds):
    from rollway.spec import Analysis

    with pytest.raises(ValueError, match="interval_seconds"):
        Analysis(interval_seconds=seconds)
    assert Analysis(interval_seconds=120).interval_seconds == 120


@pytest.mark.parametrize("stages", [None, 5, "5,100", [None], [{"weight": 5, "bake_seconds": "long"}]])
def test_stages_of_the_wrong_type_are_a_validation_error(stages):
    """Not a bare TypeError from the validator that derives the one-phase plan: Prefect and the
    UI report a ValidationError as a bad parameter, naming the field."""
    with pytest.raises(ValidationError, match="stages"):
        RolloutSpec.model_validate({"image": "repo/app:1", "stages": stages})


@pytest.mark.parametrize("settings,message", [
    ({"speed": 60}, "needs an anchor"),
    ({"speed": 60, "anchor": float("nan")}, "finite"),
    ({"speed": float("inf")}, "finite|less than"),
    ({"speed": 0}, "greater than 0"),
    # Milliseconds (JavaScript's Date.now()): the preflight refused with "metrics cannot be read".
    ({"speed": 60, "anchor": 1_795_000_000_000.0}, "is not epoch seconds"),
    # A negative anchor is no size of milliseconds: the message says what it is.
    ({"speed": 60, "anchor": -1.0}, r"anchor -1 is before 1970: give the epoch seconds"),
    # Its waits are a period divided by the speed: at 1e-9 a 60-s one overflowed time.sleep, in the run.
    ({"speed": 1e-9, "anchor": 1_795_000_000.0}, r"speed 1e-09 is slower than real time: 1 is real time"),
    ({"speed": 0.5, "anchor": 1_795_000_000.0}, r"speed 0.5 is slower than real time"),
])
def test_clock_settings_that_cannot_build_a_clock_are_refused(settings, message):
    """Refused when the settings are validated (a flow's parameters, the serve script's
    options), not by build() inside the run, where the hook's rollback failed the same way."""
    from rollway.clock import ClockSettings

    with pytest.raises(ValidationError, match=message):
        ClockSettings(**settings)
    assert ClockSettings(speed=60, anchor=1_795_000_000.0).build().speed == 60


@pytest.mark.parametrize("module,flow_name", [("canary", "canary"), ("progressive", "progressive_rollout")])
def test_a_misspelt_clock_key_is_a_parameter_error_not_real_time(module, flow_name):
    """{"sped": 60} was dropped: the run went ahead at real time, its bakes and approval timeouts
    60 times longer than the person meant. It is now refused before the run's body starts."""
    from importlib import import_module

    from prefect.exceptions import ParameterTypeError

    from rollway.clock import ClockSettings

    with pytest.raises(ValidationError, match=r"sped\n  Extra inputs are not permitted"):
        ClockSettings.model_validate({"sped": 60})
    flow = getattr(import_module(f"flows.{module}"), flow_name)
    with pytest.raises(ParameterTypeError, match="clock.sped"):
        flow.validate_parameters({"spec": {"image": "repo/app:1"}, "clock": {"sped": 60}})


def test_a_runs_stored_clock_is_read_back_without_keys_it_no_longer_knows():
    """The hooks and `rollway abort` read the clock of runs that started when unknown keys were
    dropped: refusing it there would leave a failed run's rollout not rolled back."""
    from rollway.clock import ClockSettings

    stored = {"speed": 60, "anchor": 1_795_000_000.0, "note": "demo"}
    assert ClockSettings.of_run(stored) == ClockSettings(speed=60, anchor=1_795_000_000.0)
    assert ClockSettings.of_run(None) == ClockSettings.of_run({}) == ClockSettings()
    # A run that started on a slower clock, before such clocks were refused, is read as it ran.
    assert ClockSettings.of_run({"speed": 0.5, "anchor": 1_795_000_000.0}).speed == 0.5
    with pytest.raises(ValidationError, match="needs an anchor"):
        ClockSettings.of_run({"speed": 60})


IMG = "webordinary/edit-container:2.0.0"


@pytest.mark.parametrize("spec,where", [
    ({"image": IMG, "stages": [{"weight": 5}, {"weight": 25, "aproval": True}, {"weight": 100}]}, "aproval"),
    ({"image": IMG, "approvals": {"on_timout": "hold"}}, "on_timout"),
    ({"image": IMG, "stagse": [{"weight": 50}, {"weight": 100}]}, "stagse"),
    ({"image": IMG, "analysis": {"intervall_seconds": 120}}, "intervall_seconds"),
    ({"image": IMG, "guardrails": {"canary_error_rat": 0.05}}, "canary_error_rat"),
    ({"image": IMG, "phases": [{"name": "all", "weights": [5, 25, 50, 75, 100], "decomission": True}]}, "decomission"),
    ({"image": IMG, "flags": [{"feature": "f", "folow": "schedule"}]}, "folow"),
])
def test_a_misspelt_key_is_refused_not_dropped(spec, where):
    """A misspelt key used to be dropped without a word: no approval pause, a timeout that
    still rolls back, the default plan instead of the stages given."""
    with pytest.raises(ValidationError, match=f"{where}[\\s\\S]*Extra inputs are not permitted"):
        RolloutSpec.model_validate(spec)


def test_every_recorded_spec_field_is_still_a_field():
    """The ledger stores a rollout's spec as JSON; an old record must still parse. No field was
    ever removed or renamed (git log -p rollway/spec.py): if one is, drop it explicitly, by name,
    when a record is read, instead of letting unknown keys through again."""
    spec = RolloutSpec(image=IMG, flags=[FlagBinding(feature="f", follow="schedule", schedule={5: 0, 100: 100})])
    assert RolloutSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize("spec,message", [
    # A last stage below 100 ended "promoted" with the old version serving the rest, and
    # `rollway abort` then found nothing to abort.
    ({"stages": [{"weight": 5}, {"weight": 25}]}, "last stage must be 100"),
    ({"stages": [{"weight": 5}, {"weight": 50}], "phases": [{"name": "all", "weights": [5, 50], "decommission": True}]},
     "last stage must be 100"),
    # An empty plan ran no phase: the run crashed with an IndexError after deploying the canary.
    ({"phases": []}, "at least one phase"),
    # A stage shorter than one analysis period never sees a whole period: it could never pass.
    ({"stages": [{"weight": 5, "bake_seconds": 30}, {"weight": 100, "bake_seconds": 30}]}, "less than one analysis interval"),
    ({"stages": [{"weight": 5, "bake_seconds": 150}, {"weight": 100}], "analysis": {"interval_seconds": 180}},
     "less than one analysis interval"),
    # A schedule's keys are the stages it applies from; others never apply (or apply unseen).
    ({"flags": [{"feature": "f", "follow": "schedule", "schedule": {"-3": 5, "500": 50}}]}, "not stage weights"),
    ({"flags": [{"feature": "f", "follow": "schedule", "schedule": {"5": 0, "60": 50}}]}, "not stage weights"),
    # A schedule with the default follow="traffic" was ignored: the flag followed the traffic.
    ({"flags": [{"feature": "f", "schedule": {"5": 0, "100": 100}}]}, "follows the traffic"),
])
def test_a_plan_that_cannot_run_as_written_is_refused(spec, message):
    with pytest.raises(ValidationError, match=message):
        RolloutSpec.model_validate({"image": IMG, **spec})


def test_a_bake_of_exactly_one_period_and_a_schedule_on_stage_weights_are_fine():
    spec = RolloutSpec.model_validate({
        "image": IMG, "stages": [{"weight": 5, "bake_seconds": 60}, {"weight": 100, "bake_seconds": 60}],
        "flags": [{"feature": "f", "follow": "schedule", "schedule": {"5": 0, "100": 100}}]})
    assert spec.flags[0].percentage_at(100) == 100


def test_a_recorded_spec_is_read_back_even_if_later_rules_refuse_it():
    """The rollback flow, `rollway abort` and a resume read the rollout's spec from its ledger
    record. A rollout recorded before a rule existed (a last stage below 100, an empty phase
    plan, a short bake, a schedule under follow="traffic") must still be read, or nothing could
    roll it back; a spec given to a flow is held to every rule."""
    import json

    old = {"image": IMG, "stages": [{"weight": 5, "bake_seconds": 30}, {"weight": 25, "bake_seconds": 30}],
           "phases": [], "flags": [{"feature": "f", "schedule": {"-3": 5}}]}
    recorded = RolloutSpec.from_record(json.dumps(old))
    assert recorded.weights == (5, 25) and recorded.phases == ()
    with pytest.raises(ValidationError):
        RolloutSpec.model_validate(old)
    with pytest.raises(ValidationError, match="Extra inputs"):  # a record still holds only known fields
        RolloutSpec.from_record(json.dumps({**old, "stagse": []}))
    with pytest.raises(ValidationError):  # JSON from a person is held to every rule
        RolloutSpec.model_validate_json(json.dumps(old))


@pytest.mark.parametrize("fields", [
    {"region": ""}, {"region": "us-west-2 "}, {"region": "us west 2"}, {"region": "US-WEST-2"},
    {"region": "mars-north-1"}, {"region": "us-west"}, {"region": "us-west-2\n"},
    # An empty namespace was accepted, and every GetMetricData failed after the canary had 5 %.
    {"metrics_namespace": ""}, {"metrics_namespace": "   "}, {"metrics_namespace": " Webordinary/Production"},
    {"rule_path": ""}, {"rule_path": "/ *"},
    {"dashboard": ""}, {"alarms": ("",)}, {"alarms": (" high-error-rate",)},
    {"stacks": ("",)}, {"stacks": ("1Stack",)},
    {"queues": ({"name": "", "dlq_name": "dlq"},)}, {"queues": ({"name": "q", "dlq_name": " "},)},
    {"tables": ({"name": "t t", "hash_key": "id"},)}, {"tables": ({"name": "sessions", "hash_key": ""},)},
])
def test_targets_refuse_names_aws_would_reject(fields):
    with pytest.raises(ValidationError):
        Targets(**fields)


@pytest.mark.parametrize("region", ["us-west-2", "eu-central-1", "ap-southeast-4", "us-gov-west-1", "cn-north-1",
                                    "us-iso-east-1", "us-isob-east-1", "il-central-1", "eusc-de-east-1"])
def test_targets_take_every_form_of_aws_region(region):
    assert Targets(region=region).region == region


@pytest.mark.parametrize("field", ["stable_target_group", "canary_target_group"])
def test_a_target_group_arn_of_another_region_is_refused_naming_both_regions(field):
    """An ARN copied from another region's console was looked up in the targets' region and
    reported "not found", though the group exists: the load balancer forwards only to its own
    region's target groups."""
    arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/edit-canary/0123456789abcdef"
    with pytest.raises(ValidationError, match=f"{field}\n.*in eu-west-1, but region is us-west-2"):
        Targets(**{field: arn})
    assert getattr(Targets(region="eu-west-1", **{field: arn}), field) == arn


def test_a_rollback_reads_what_it_needs_from_a_spec_todays_field_rules_refuse():
    """``for_rollback`` keeps the bound flags, the phase plan and the window of a recorded spec
    whose other fields no longer validate; ``from_record`` (a resume runs the policy) refuses it."""
    import json

    spec = RolloutSpec(image=IMG, flags=[{"feature": "use_sqs_architecture"}], monitor_seconds=900)
    old = json.loads(spec.model_dump_json())
    old["analysis"]["interval_seconds"] = 30
    with pytest.raises(ValidationError):
        RolloutSpec.from_record(json.dumps(old))
    read = RolloutSpec.for_rollback(json.dumps(old))
    assert read.image == IMG and [b.feature for b in read.flags] == ["use_sqs_architecture"]
    assert read.phases == spec.phases and read.monitor_seconds == 900
    assert RolloutSpec.for_rollback(spec.model_dump_json()) == spec


def test_a_fifo_alert_topic_is_refused_before_any_call():
    """A FIFO topic takes no publish without a message group id: the first page of a rollout
    (after its first shift) failed, and a rollback's notice after the traffic moved."""
    with pytest.raises(ValidationError, match="is a FIFO SNS topic .*without a message group id") as refused:
        Targets(alert_topic="webordinary-alerts.fifo")
    assert "Give the name (not the ARN) of a standard topic" in str(refused.value)


def test_a_fifo_alert_topics_arn_is_refused_for_being_fifo_not_told_to_give_its_name():
    """Given as its ARN, the FIFO topic was told "give the name ('webordinary-alerts.fifo'), not
    the ARN": a name refused next, for being FIFO. The refusal says why no FIFO topic does, and
    asks for a standard topic's name, naming no topic of its own invention."""
    with pytest.raises(ValidationError) as refused:
        Targets(alert_topic="arn:aws:sns:us-east-1:123456789012:webordinary-alerts.fifo")
    said = str(refused.value)
    assert "is the ARN of a FIFO SNS topic" in said and "without a message group id" in said, said
    assert "Give the name (not the ARN) of a standard topic" in said, said
    assert "give the name ('" not in said, said


@pytest.mark.parametrize("fields,says", [
    # :g's six digits said 1.728e+06 and 1.2096e+06, and 1.23457e+06 for a figure nobody gave.
    ({"min_phase_seconds": 14 * 86400, "schedule_slack_seconds": 20 * 86400},
     "schedule_slack_seconds (1728000 s) must be less than min_phase_seconds (1209600 s)"),
    ({"min_phase_seconds": 1234567, "schedule_slack_seconds": 1234567.5},
     "schedule_slack_seconds (1234567.5 s) must be less than min_phase_seconds (1234567 s)"),
])
def test_days_of_seconds_in_a_refusal_are_said_in_full(fields, says):
    with pytest.raises(ValidationError) as raised:
        RolloutSpec(image="repo/app:1", **fields)
    assert says in str(raised.value)


def test_the_healthy_timeout_s_help_and_readme_row_say_the_stable_group_is_checked_too():
    """The preflight refuses a stable group whose health check outlasts a rollback's wait, the
    longer of 300 s and healthy_timeout_seconds; the form and the README spoke only of the canary
    group's, and a refusal naming the stable group read as a check nobody documented."""
    from pathlib import Path

    from flows.rollback import DEFAULT_HEALTHY_SECONDS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.strip().startswith("| `healthy_timeout_seconds` |"))
    form = RolloutSpec.model_fields["healthy_timeout_seconds"].description
    for text in (form, row):
        assert "canary group's" in text and "stable group's" in text, text
        assert f"{DEFAULT_HEALTHY_SECONDS:g} s" in text, text
