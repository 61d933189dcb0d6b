"""Notifier on SNS: publishes to the alert topic named in Targets."""

from __future__ import annotations

import unicodedata
from typing import Any

from rollway.aws.errors import AnswerLost, TargetNotFound, answer_lost, lost_answers
from rollway.failure_words import writable
from rollway.one_line import shown
from rollway.targets import Targets

# SNS wants subjects "less than 100 characters long" (its API reference; moto allows 100),
# without line breaks or control characters.
SUBJECT_LIMIT = 99
_ELLIPSIS = "..."
# SNS refuses a message over 262,144 bytes of UTF-8 (moto counts characters, so its tests pass
# where AWS refuses). A notice cut short still tells people; a refused one tells nobody, and the
# flow that sent it (a rollback, after moving the traffic) fails. Kept under it with room to spare.
MESSAGE_LIMIT_BYTES = 262_144 - 1_024
TRUNCATED = "\n…(truncated)"


class SnsNotifier:
    """Publishes messages for people to ``targets.alert_topic``.

    Args:
        client: a boto3 ``sns`` client.
        targets: names the topic (by name, not ARN: the ARN is looked up once).
    """

    def __init__(self, client: Any, targets: Targets) -> None:
        self._client = client
        self._targets = targets
        self._topic_arn: str | None = None
        # Messages a publish of which lost SNS's answer: a later try of the same one that fails,
        # even with a refusal, leaves people possibly paged all the same.
        self._unanswered: set[tuple[str, str]] = set()

    @property
    def topic_arn(self) -> str:
        """The topic's ARN, found by name with ListTopics on first use.

        Raises:
            TargetNotFound: no topic of that name in the account and region.
        """
        if self._topic_arn is None:
            name = self._targets.alert_topic
            for page in self._client.get_paginator("list_topics").paginate():
                for topic in page.get("Topics", []):
                    # A topic ARN ends in ":<name>"; names cannot contain ':'.
                    if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                        self._topic_arn = topic["TopicArn"]
                        return self._topic_arn
            raise TargetNotFound("SNS topic", name, f"in region {self._targets.region}")
        return self._topic_arn

    def resolve(self) -> None:
        """Look the topic up now (read-only), so a misnamed one fails before a rollout's first write."""
        self.topic_arn  # noqa: B018 - the lookup is the point

    def notify(self, subject: str, message: str) -> str:
        """Publish ``message`` under ``subject`` (both made SNS-safe, ``message``'s lone surrogates,
        control characters but line breaks and tabs, and bidirectional-text controls escaped);
        return the message id.

        Raises:
            ValueError: ``message`` is empty (SNS refuses it).
            TargetNotFound: the topic does not exist.
            AnswerLost: the publish failed and SNS may have taken the message all the same: one of
                its attempts (botocore's retries), or an earlier publish of this same message by
                this notifier, sent it and lost SNS's answer (``rollway.aws.errors.answer_lost``).
                The last attempt's error alone (a connection refused, say) read as "not sent".
        """
        if not message:
            raise ValueError("an SNS message must not be empty")
        # A lone surrogate (a byte that is not UTF-8, in a name AWS echoed into a failed step) as its
        # escape: encoded strictly, the page of that failed step was lost. And its control characters
        # and bidirectional-text controls as escapes (``shown``), its lines and tabs kept: every notice
        # goes out here, whatever composed it, and a name or reason quoted as typed ("Requested by:
        # erin<U+202E>") reordered the words after it, an escape sequence acted on a terminal mail client.
        arguments = {"TopicArn": self.topic_arn, "Message": fit_message(shown(writable(message), keep="\n\t"))}
        safe = safe_subject(subject)
        if safe:
            arguments["Subject"] = safe
        key = (subject, message)
        with lost_answers(self._client, "Publish", "SNS") as lost:
            try:
                message_id = self._client.publish(**arguments)["MessageId"]
            except Exception as err:
                if lost or answer_lost(err) or key in self._unanswered:
                    self._unanswered.add(key)
                    raise AnswerLost("SNS Publish", err) from err
                raise
        self._unanswered.discard(key)
        return message_id


def safe_subject(subject: str) -> str:
    """``subject`` as SNS accepts it: one line of printable ASCII, at most SUBJECT_LIMIT long.

    SNS refuses a Subject outside ASCII (the publish would fail after the traffic moved): accents
    are folded ("Zoë" becomes "Zoe") and other characters become "?". Line breaks and other
    control characters become spaces; a longer subject is cut at a word boundary where one is
    near, and ends with "...".
    """
    folded = unicodedata.normalize("NFKD", subject)
    ascii_only = "".join(c if c.isascii() else ("" if unicodedata.combining(c) else "?") for c in folded)
    flat = " ".join("".join(c if c.isprintable() else " " for c in ascii_only).split())
    if len(flat) <= SUBJECT_LIMIT:
        return flat
    cut = flat[: SUBJECT_LIMIT - len(_ELLIPSIS)]
    space = cut.rfind(" ")
    if space >= SUBJECT_LIMIT // 2:
        cut = cut[:space]
    return cut.rstrip() + _ELLIPSIS


def fit_message(message: str, limit: int = MESSAGE_LIMIT_BYTES) -> str:
    """``message`` if its UTF-8 fits ``limit`` bytes; else its start, cut on a character
    boundary, and TRUNCATED, together within ``limit``."""
    data = message.encode()
    if len(data) <= limit:
        return message
    # Dropping the bytes of a character split by the cut leaves whole characters only.
    return data[: limit - len(TRUNCATED.encode())].decode(errors="ignore") + TRUNCATED
