"""The preflight's judgement of the watched queues (pure): a DLQ the guardrail cannot watch is refused."""

from __future__ import annotations

from rollway.preflight_checks import QueueSeen, dead_letter_refusal
from rollway.targets import QueueSpec, Targets

T = Targets(region="eu-west-1", queues=[QueueSpec(name="jobs", dlq_name="jobs-dlq")])
ARN = "arn:aws:sqs:eu-west-1:123456789012:"


def seen(**queues: QueueSeen) -> dict[str, QueueSeen]:
    return {name.replace("_", "-"): q for name, q in queues.items()}


def test_a_queue_redriving_to_its_dlq_passes_and_no_queues_pass():
    assert dead_letter_refusal(T, seen(jobs=QueueSeen(ARN + "jobs", ARN + "jobs-dlq"),
                                       jobs_dlq=QueueSeen(ARN + "jobs-dlq"))) is None
    assert dead_letter_refusal(Targets(queues=[]), {}) is None


def test_each_way_the_guardrail_would_be_blind_names_the_queue_the_region_and_the_way_out():
    cases = {
        "SQS did not find the dead-letter queue jobs-dlq (dlq_name of work queue jobs) in eu-west-1":
            seen(jobs=QueueSeen(ARN + "jobs", ARN + "jobs-dlq"), jobs_dlq=QueueSeen()),
        "SQS found neither the work queue jobs nor its dead-letter queue jobs-dlq in eu-west-1": {},
        "SQS did not find the work queue jobs in eu-west-1": seen(jobs_dlq=QueueSeen(ARN + "jobs-dlq")),
        f"the work queue jobs redrives its failures to {ARN}other-dlq, not to its dlq_name jobs-dlq":
            seen(jobs=QueueSeen(ARN + "jobs", ARN + "other-dlq"), jobs_dlq=QueueSeen(ARN + "jobs-dlq")),
        "the work queue jobs has no RedrivePolicy":
            seen(jobs=QueueSeen(ARN + "jobs"), jobs_dlq=QueueSeen(ARN + "jobs-dlq")),
    }
    for expected, answered in cases.items():
        said = dead_letter_refusal(T, answered)
        assert said is not None and expected in said, (expected, said)
        assert "fix the queue names in the targets block" in said and "deploy the queues" in said, said
        assert "Nothing was changed" in said


def test_a_lookup_sqs_did_not_answer_is_refused_never_passed():
    answered = seen(jobs=QueueSeen(failed="ThrottlingException: Rate exceeded"), jobs_dlq=QueueSeen(ARN + "jobs-dlq"))
    said = dead_letter_refusal(T, answered)
    assert said is not None and "SQS did not answer the check that the watched queues exist in eu-west-1" in said
    assert "jobs: ThrottlingException: Rate exceeded" in said and "start the rollout again once SQS answers" in said


def test_a_queue_sqs_did_not_find_is_not_said_to_be_missing_for_sure():
    """SQS answers NonExistentQueue ("does not exist or you do not have access to it") for a queue
    the credentials may not reach too: the refusal says both, and the way out for each."""
    for answered in ({}, seen(jobs=QueueSeen(ARN + "jobs", ARN + "jobs-dlq"), jobs_dlq=QueueSeen()),
                     seen(jobs_dlq=QueueSeen(ARN + "jobs-dlq"))):
        said = dead_letter_refusal(T, answered)
        assert said is not None and "does not exist" not in said.split("SQS says")[0], said
        assert "when these credentials may not reach it" in said and "let the credentials reach them" in said, said
    redrive = dead_letter_refusal(T, seen(jobs=QueueSeen(ARN + "jobs"), jobs_dlq=QueueSeen(ARN + "jobs-dlq")))
    assert redrive is not None and "credentials" not in redrive, redrive


def test_a_rollout_under_way_is_not_told_its_queues_passed_at_its_start():
    """Rollouts started before their queues were checked at the start (weekly ones run for weeks)
    meet the check first at a later phase or a resume: a dlq_name misspelt from the start is not
    a queue deleted since, and the refusal gives the start's ways out too, with the traffic kept."""
    missing = seen(jobs=QueueSeen(ARN + "jobs", ARN + "jobs-dlq"), jobs_dlq=QueueSeen())
    said = dead_letter_refusal(T, missing, run_again="advance_phase")
    assert said is not None and "passed this check when the rollout started" not in said, said
    assert "fix the queue names in the targets block's queues" in said and "the rollout's region is eu-west-1" in said
    assert "let the credentials reach them" in said and "run advance_phase again" in said, said
    assert "the traffic stays where it is" in said and "`rollway abort`" in said, said
