"""Thin tasks over the MetricSource and Notifier ports."""

from __future__ import annotations

from typing import Callable, NamedTuple

from prefect import task
from prefect.cache_policies import NONE

from rollway.aws.errors import AdapterError, AnswerLost
from rollway.model import Observation
from rollway.ports import MetricSource, Notifier
from rollway.targets import Targets
from tasks import retry
from tasks.inline import run_as


# No retries: a failed query comes back as an Observation with its error, and the next
# analysis tick is the retry.
@task(name="observe-metrics", cache_policy=NONE)
def observe(metrics: MetricSource, start: float, end: float) -> Observation:
    return metrics.observe(start, end)


# SNS's answers that a second ask seconds later gets again: a missing topic or endpoint, a
# parameter it refuses, a permission it (or KMS, for an encrypted topic) refuses, a KMS key
# disabled or gone. Throttling (Throttled, KMSThrottling) is worth another try. An InternalError
# (SNS's own side failed: it may have taken the message) is a lost answer, which the SNS notifier
# raises as AnswerLost: not tried again (below).
_FINAL_SNS = frozenset({
    "AuthorizationError", "AccessDenied", "AccessDeniedException", "NotFound", "ResourceNotFound",
    "InvalidParameter", "InvalidParameterValue", "ValidationError", "EndpointDisabled", "InvalidSecurity",
    "KMSAccessDenied", "KMSDisabled", "KMSInvalidState", "KMSNotFound", "KMSOptInRequired",
    "UnrecognizedClientException", "InvalidClientTokenId",
})


# Only what another try could get past is retried: a refused publish repeated three times
# delays a rollback's end (and its failure, which names it) by the retries' waits, for nothing.
# The adapter's own errors (TargetNotFound: no such topic) and ValueError (an empty message) are
# final too. So is a publish whose answer was lost (AnswerLost): SNS may have delivered it, and
# the same message sent again read as the first, people paged twice while the run said it sent
# one. The caller says it may have gone out, and a run sending it again says it may repeat it.
@task(name="notify", retries=3, retry_delay_seconds=2, cache_policy=NONE,
      retry_condition_fn=retry.unless(AdapterError, ValueError, AnswerLost, denied=_FINAL_SNS))
def notify(notifier: Notifier, subject: str, message: str) -> str:
    return notifier.notify(subject, message)


REPEAT = "May repeat: "
"""Before the subject of a notice sent once more after SNS's answer to it was lost (``notify_or_repeat``)."""


def notify_or_repeat(notifier: Notifier, subject: str, message: str, *,
                     waited: Callable[[], bool] = lambda: True) -> str:
    """``notify``, and once more when SNS's answer to it was lost (``answer_lost``: it may have gone
    out), its subject and first line saying it may repeat the one before: a notice a run stops
    without (one before any write) is not given up for one lost answer, and people who got both
    read the second as the first's repeat. The notify task does not send it again itself: its
    retries read as new notices. A ``subject`` that says it may repeat one already (``REPEAT``) is
    kept as it is: "May repeat: May repeat: " read as a stammer.

    ``waited``: whether the caller still waits for this send. One it gave up waiting on goes on in
    its thread, and the caller has said what came of it (not known whether it went out): its answer
    lost after that, it is not sent once more. That send reached people after the run had stopped
    waiting for it, its log saying only that it was being sent, and nothing said or recorded what came
    of it.

    Raises:
        AnswerLost: the second's answer was lost too, or SNS refused it (the first may have gone out);
            or the first's, the caller no longer waiting.
        Exception: SNS refused the first (``notify``'s errors).
    """
    from prefect import get_run_logger

    from rollway.aws.errors import answer_lost

    try:
        return notify(notifier, subject, message)
    except Exception as err:  # noqa: BLE001 - a lost answer is sent again, anything else raised as it is
        if not answer_lost(err):
            raise
        if not waited():
            get_run_logger().warning("SNS's answer to the notice %r was lost (%s) after the run stopped waiting for "
                                     "it: not sent once more", subject, err)
            raise
        get_run_logger().warning("SNS's answer to the notice %r was lost (%s): it may have gone out; sending it once "
                                 "more, saying it may repeat it", subject, err)
    try:
        return notify(notifier, subject if subject.startswith(REPEAT) else f"{REPEAT}{subject}",
                      f"This may repeat a notice sent just before it, whose answer SNS did not give.\n\n{message}")
    except Exception as err:  # noqa: BLE001 - the first may have gone out: not "not sent", whatever SNS says now
        if answer_lost(err):
            raise
        raise AnswerLost("SNS Publish", err) from err


def alert(notifier: Notifier, subject: str, message: str, targets: Targets | None = None, *,
          inline: bool = False) -> str | None:
    """Send an alert, which acts on nothing: if SNS still refuses after ``notify``'s retries, log
    it and go on. A rollout (or a monitoring window) must not fail, and its hooks roll back,
    because a message about slow responses could not be sent.

    A publish the role may not make is logged as the statement of the rollout's policy granting
    it (``rollout_said``, with the run's ``targets``): AWS's bare refusal said nothing of what to
    add to the role, and every alert after it went unsent the same way.

    ``inline``: sent once, without a task run, as a paused run must (the Prefect server runs no
    task of it).

    Returns:
        The message id, or None when it was not sent (or SNS's answer was lost: logged as maybe sent).
    """
    return alert_or_refusal(notifier, subject, message, targets, inline=inline).message_id


class Alerted(NamedTuple):
    """What became of an alert (``alert_or_refusal``)."""

    message_id: str | None
    failure: str | None = None  # None once sent; else the failure as logged
    # The failure is a lost answer (SNS may have delivered it), not a refusal: a caller says "may
    # not have been sent", not "not sent", without reading it from the failure's words.
    lost: bool = False


def alert_or_refusal(notifier: Notifier, subject: str, message: str, targets: Targets | None = None, *,
                     inline: bool = False) -> Alerted:
    """``alert``, also giving why it was not sent: (the message id, None), or (None, the failure as
    logged: a refused permission as the statement granting it, and whether it was a lost answer),
    for a caller that records it where people look (a pause nobody was told of)."""
    from prefect import get_run_logger

    from rollway.aws.denied import rollout_said
    from rollway.aws.errors import answer_lost
    from rollway.failure_words import error_said

    try:
        return Alerted(run_as(notify, inline)(notifier, subject, message))
    except Exception as err:  # noqa: BLE001 - any failure to send is the same to the caller
        said, lost = rollout_said(err, targets), answer_lost(err)
        # A lost answer is not a refusal: SNS may have delivered the alert.
        what = "the alert %r may have gone out or not" if lost else "could not send the alert %r"
        get_run_logger().error(f"{what} (%s): %s", subject, message, said)
        return Alerted(None, error_said(said), lost)
