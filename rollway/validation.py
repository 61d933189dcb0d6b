"""Post-deployment validation: what is checked, and how check results become a verdict. Pure.

The seed's ``validate-deployment.sh`` as data: a health GET, a test session created through the
API (its ``sessionId`` read back), a test message sent to that session, and CloudWatch's
``SuccessRate`` averaged over the last few minutes. ``ValidationSpec`` holds every address and
threshold (Webordinary's as defaults) and refuses bad values when it is built, before any
request; ``evaluate`` turns the checks' results into one pass/fail summary that names each
failed check and why. The checks themselves live in ``rollway.http_checks`` (HTTP) and
``rollway.aws.cloudwatch.read_success_rate`` (the metric); the target groups' health is read
through ``rollway.aws.elbv2`` (``judge_targets``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Iterable, Literal, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rollway.aws.metric_schema import MINUTE_PERIOD_SECONDS, whole_minutes
from rollway.bounds import as_given, seconds_said
from rollway.flags import percent_sign_meant
from rollway.hosts import is_loopback_host
from rollway.one_line import shown
from rollway.pinning import SESSION_ID, CheckRequest, Pin, header_parts
from rollway.report import markdown_cell

HEALTH = "health"
SESSION = "session"
MESSAGE = "message"
SUCCESS_RATE = "success_rate"
TARGETS = "targets"
CHECKS = (HEALTH, SESSION, MESSAGE, SUCCESS_RATE, TARGETS)
"""Every check, in the order they run and are reported."""

SUCCESS_RATE_CHECK_LIMIT_SECONDS = 20 * 60
"""The most the SuccessRate check may take, every read waited on to ``timeout_seconds`` and every
wait for CloudWatch's data between them (``success_rate_check_seconds``): the default attempts
and timeout at any delay, and 18 attempts at the default timeout and delay, fit in it."""

HTTP_CHECK_LIMIT = "http_check_limit_seconds"
TARGETS_CHECK_LIMIT = "targets_check_limit_seconds"
"""The spec's fields bounding a check in all: the HTTP checks', and the targets check's."""

Outcome = Literal["passed", "failed", "skipped", "unchecked"]
"""``unchecked``: the check could not be made (a read AWS refused, a read that kept failing): the
run does not pass on it, but it is no finding about the service either."""


def shown_url(url: str) -> str:
    """``url`` as logs, reasons and artifacts show it: every query value, any user and password,
    and the fragment masked or dropped.

    A query often carries a token (``?token=...``, a signed URL's signature); the request sends
    it as given, but what people read names only the keys. The spec's own URLs refuse
    credentials, but a redirect's ``Location`` is the server's to write, and an SSO hand-off can
    put a login in its host part or a token in its fragment.
    """
    parts = urlsplit(str(url))
    if not (parts.query or parts.fragment or "@" in parts.netloc):
        return str(url)
    masked = "&".join(urlencode([(key, "****")], safe="*") if key is not None else "****"
                      for key, _ in query_parts(parts.query))
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "****@" + netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc, query=masked, fragment=""))


def query_parts(query: str) -> list[tuple[str | None, str]]:
    """Each item of ``query`` as (its key, decoded, or None, its value as sent): the value is what
    a URL shown (``shown_url``) or a body quoted masks. An item without ``=``, or with nothing but
    ``=`` after its first one, is all value: a token given alone (``?<api key>``) was shown whole,
    read as a key, and a base64 one shown but for its padding (``?<token>=``, read as an empty value)."""
    items = []
    for part in query.split("&"):
        if not part:
            continue  # "a=1&&b=2": no item, as parse_qsl reads it
        if not part.partition("=")[2].strip("="):
            items.append((None, part))
            continue
        ((key, _),) = parse_qsl(part, keep_blank_values=True)
        items.append((key, part.partition("=")[2]))
    return items


def _http_url(value: str, what: str) -> str:
    value = value.strip()
    parts = urlsplit(value)
    if parts.username or parts.password:
        # A URL with credentials would print them in every log line and artifact that names it
        # (and in this error: checked first, so no other message quotes it).
        raise ValueError(f"{what} must not carry a user name or password (it is logged and shown in the report)")
    # Shown as logs show it: a query may carry a token.
    shown = shown_url(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} {shown!r} is not an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as err:
        raise ValueError(f"{what} {shown!r} has a bad port: {err}") from None
    if any(c.isspace() for c in parts.netloc):
        # httpx encodes one in the path or query, but sends a host with one to DNS as it is.
        raise ValueError(f"{what} {shown!r} has a space in its host")
    try:
        # As the request will read it: httpx's parser, then the host as DNS is asked for it.
        # Refused only there, the run's first check failed with httpx's or the idna codec's
        # traceback (an IPv4 address out of range, an empty or 64-character label, a control
        # character) after the run had started.
        httpx.URL(value).host.encode("idna")
    except (httpx.InvalidURL, UnicodeError) as err:
        raise ValueError(f"{what} {shown!r} is not a URL a request can be sent to: {err}") from None
    return value


def header_value_fault(value: str) -> str | None:
    """What keeps ``value`` (surrounding whitespace removed) from being sent as one header's
    value, without quoting it, or None: "a line break (character 31)", "a character that is not
    ASCII (character 9)". A Secret block's value with one failed every request with httpx's
    "Illegal header value b'Bearer <token>\\n'", the token quoted in each check's reason."""
    for position, char in enumerate(value.strip(), start=1):
        if char in "\r\n":
            return f"a line break (character {position})"
        if not char.isascii():
            return f"a character that is not ASCII (character {position})"
        if not char.isprintable() and char != "\t":
            return f"a control character (character {position})"
    return None


def cleartext_authorization(spec: "ValidationSpec") -> str | None:
    """Why the ``Authorization`` header may not be sent to ``spec``'s URLs, or None: a URL of
    plain ``http://`` to a host that is not this machine (``is_loopback_host``) would carry the Secret
    block's value across the network in clear text, for anyone on the path to read and replay.
    None as well when ``spec.allow_plain_http_authorization`` says to send it all the same.

    The reason names the URLs (as logs show them) and the fix; it never holds the header's value.
    """
    if spec.allow_plain_http_authorization:
        return None
    exposed = [shown_url(url) for url in (spec.health_url, spec.api_base_url)
               if urlsplit(url).scheme == "http" and not is_loopback_host(urlsplit(url).hostname or "")]
    if not exposed:
        return None
    return (f"the Authorization header (the value of spec.authorization_secret_block) would be sent in clear text over "
            f"plain http:// to {' and '.join(dict.fromkeys(exposed))}, not this machine: use https://, or, for a "
            "network you trust to carry it, set spec.allow_plain_http_authorization; no request was sent")


def authorization_header(value: str) -> str:
    """The ``Authorization`` header's value as sent: ``value`` without the whitespace around it (a
    line break after it, as ``echo`` or a file leaves, is no part of the header).

    Raises:
        ValueError: "holds <what>" (``header_value_fault``), never quoting it: the caller says
            whose value it is. Sent, httpx's refusal ("Illegal header value b'Bearer <token>\\n'")
            quoted the token in every check's reason.
    """
    value = value.strip()
    fault = header_value_fault(value)
    if fault is not None:
        raise ValueError(f"holds {fault}")
    return value


def success_rate_check_seconds(spec: "ValidationSpec") -> float:
    """The longest the SuccessRate check can take: ``spec.attempts`` reads, each given up on after
    ``spec.timeout_seconds``, with ``spec.success_rate_retry_delay_seconds`` between them."""
    return _attempts_seconds(spec, spec.success_rate_retry_delay_seconds)


def _attempts_seconds(spec: "ValidationSpec", delay: float) -> float:
    """``spec.attempts`` tries, each up to ``spec.timeout_seconds``, ``delay`` seconds apart."""
    return spec.attempts * spec.timeout_seconds + (spec.attempts - 1) * delay


def check_seconds(spec: "ValidationSpec", setting: str = HTTP_CHECK_LIMIT) -> float:
    """The longest one HTTP check (or, ``setting`` ``TARGETS_CHECK_LIMIT``, the targets check) can
    take: its attempts, each up to ``spec.timeout_seconds``, and ``spec.retry_delay_seconds``
    between them, or its limit in all, whichever is less."""
    return min(getattr(spec, setting), _attempts_seconds(spec, spec.retry_delay_seconds))


VALIDATION_READS = 3
"""The reads a validation makes outside its checks, each given up on after ``spec.timeout_seconds``:
the load balancer's weights, and each of the two services' image (and, with ``spec.canary_header``,
the listener's rules: ``validation_seconds``)."""


def validation_seconds(spec: "ValidationSpec") -> float:
    """About the longest a validation run can take once it starts its checks: the three HTTP checks
    (health, session, message), the SuccessRate check, the targets check and ``VALIDATION_READS``.
    Each bound was said on its own, and the SuccessRate check's not at all: what the run as a whole
    could take (minutes at the defaults, over an hour at the spec's extremes) was for a person to add up."""
    # Pinned, the listener's rules are read before the HTTP checks, within the same bound.
    reads = VALIDATION_READS + (spec.canary_header is not None)
    return (3 * check_seconds(spec) + success_rate_check_seconds(spec) + check_seconds(spec, TARGETS_CHECK_LIMIT)
            + reads * spec.timeout_seconds)


def said_seconds(seconds: float) -> str:
    """ "41 min 20 s", "100 min", "40 s": a figure just past the bound is not rounded down onto it."""
    whole, rest = divmod(math.ceil(seconds), 60)
    if not whole:
        return f"{rest} s"
    return f"{whole} min" + (f" {rest} s" if rest else "")


def _success_rate_fixes(spec: "ValidationSpec") -> str:
    """The figures that would bring the SuccessRate check within its bound, each changed alone:
    its own delay first (the other two are the HTTP checks' as well), then the attempts, then the
    per-read timeout; one that cannot do it alone is left out."""
    limit = SUCCESS_RATE_CHECK_LIMIT_SECONDS
    reads, waits = spec.attempts, spec.attempts - 1
    delay, timeout = spec.success_rate_retry_delay_seconds, spec.timeout_seconds
    fixes = []
    # Floored to a tenth: the figure said must fit once given as said.
    if waits and reads * timeout < limit:
        fixes.append(f"success_rate_retry_delay_seconds to {as_given(math.floor((limit - reads * timeout) / waits * 10) / 10)} "
                     "or less")
    most = max(1, math.floor((limit + delay) / (timeout + delay)))
    fixes.append(f"attempts to {most} or fewer")
    timeout_fits = math.floor((limit - waits * delay) / reads * 10) / 10
    if timeout_fits > 0:
        fixes.append(f"timeout_seconds to {as_given(timeout_fits)} or less")
    return "set " + ", or ".join(fixes)


class ValidationSpec(BaseModel):
    """What ``validate_deployment`` checks. Webordinary's addresses and the seed's values are the defaults.

    Each field's description is its help text in the run form of the Prefect UI.
    """

    # Errors name the rule broken and never echo the input: a URL may carry a password.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    health_url: str = Field(default="https://edit.ameliastamps.webordinary.com/health",
                            description="GET must answer 2xx, with no JSON body saying the service is down.")
    api_base_url: str = Field(default="https://api.webordinary.com",
                              description="the sessions API; the session and message paths are joined to it.")
    sessions_path: str = Field(default="/sessions", description=(
        'POST ``{"clientId", "userId"}`` here creates a session whose JSON carries ``sessionId``.'))
    messages_path: str = Field(default="/sessions/{session_id}/messages", description=(
        'POST ``{"instruction"}`` here; ``{session_id}`` is replaced by the created session\'s id.'))
    client_id: str = Field(default="test", description="the client the test session belongs to (the seed's ``test``).")
    user_id: str = Field(default="deploy-test",
                         description="the user the test session belongs to (the seed's ``deploy-test``).")
    instruction: str = Field(default="Test deployment", description="the test message's text.")
    timeout_seconds: float = Field(default=10.0, gt=0, le=300, allow_inf_nan=False, description=(
        "per request: its whole answer, status, headers and body (and connect, read and write each); and per "
        "attempt of the SuccessRate read, CloudWatch's whole answer."))
    success_rate_floor: float = Field(default=99.9, ge=0, le=100, allow_inf_nan=False, description=(
        "the lowest average ``SuccessRate`` (percent: 99.9, not the fraction 0.999) that passes: 99.9, the seed's success criterion "
        '"error rate < 0.1 %".'))
    success_rate_window_minutes: int = Field(default=5, ge=1, le=24 * 60, description=(
        "how far back the average is taken (the seed's 5 minutes)."))
    # The newest datapoint must be that recent: a service that stopped publishing (stopped, or
    # stopped serving) passed on the good minutes at the start of its window. Its newest minute
    # may end this long before the window does: CloudWatch shows a minute's datapoints a minute or
    # more after it ends (a stale read is read again after success_rate_retry_delay_seconds).
    success_rate_ingestion_lag_seconds: float = Field(default=180.0, ge=0, le=3600, allow_inf_nan=False, description=(
        "how long after a minute ends its SuccessRate may still be missing: each service carrying traffic must have a "
        "datapoint no older than 60 s plus this, or the check fails as stale."))
    # Both by default: after a promotion the new version runs on the canary service, after
    # ``finalize`` on the stable one. The average pools whichever published.
    success_rate_services: tuple[str, ...] = Field(default=(), description=(
        "the ECS services whose ``SuccessRate`` (dimension ``Service``) is read, empty: both of the targets'; "
        "their average, and each one that published, must reach the floor."))
    # A POST is not tried again once it reached the server: no second session, no message sent twice.
    attempts: int = Field(default=3, ge=1, le=20, description=(
        "how many times a check that failed in a way worth trying again is tried (1: no retry); a POST only "
        "when the request never reached the server."))
    retry_delay_seconds: float = Field(default=5.0, ge=0, le=600, allow_inf_nan=False,
                                       description="wait between attempts, in seconds.")
    # Per request alone, attempts x (timeout + delay) held one check for hours (20 x 300 s, 600 s
    # apart): the bound a person expects is the check's, all its attempts together.
    http_check_limit_seconds: float = Field(default=300.0, gt=0, le=3600, allow_inf_nan=False, description=(
        "the most each HTTP check (health, session, message) may take, attempts and waits together: no attempt "
        "that could end past it starts; at least timeout_seconds."))
    # The targets check is tried again at retry_delay_seconds too, each attempt reading each
    # service's target group: unbounded in all, 20 attempts of 300 s, 600 s apart, held the run
    # hours. Its own bound: http_check_limit_seconds is said of the HTTP checks alone.
    targets_check_limit_seconds: float = Field(default=300.0, gt=0, le=3600, allow_inf_nan=False, description=(
        "the most the targets check (each service's healthy targets, read from the load balancer) may take, attempts "
        "and waits together: no attempt that could end past it starts; at least timeout_seconds."))
    # CloudWatch makes a minute's datapoints readable a minute or more after it ends (longer at
    # times): read again after the HTTP checks' 5 s, the window's last minutes were still missing
    # and "no SuccessRate data" failed a service that had published them. With the default
    # attempts: two waits of 60 s, two minutes in all.
    success_rate_retry_delay_seconds: float = Field(
        default=60.0, ge=0, le=300, allow_inf_nan=False,
        description="wait before reading SuccessRate again after a read that failed (no data: CloudWatch shows "
                    "datapoints a minute or more late), in seconds.")
    # For a service behind a token: the value is read when the run starts, sent with the health,
    # session and message requests. A token in a URL's query is sent too, but as a parameter anyone
    # who can read the run sees it.
    authorization_secret_block: str | None = Field(default=None, description=(
        "the name of a Prefect ``Secret`` block whose value is sent as the ``Authorization`` header (``Bearer "
        "<token>``): only the name is a parameter; the value is never logged or shown."))
    # Refused by default: over plain http:// the token crosses every network between the worker
    # and the service in clear text. To this machine (127.0.0.1, ::1, localhost) it stays on it.
    allow_plain_http_authorization: bool = Field(default=False, description=(
        "send the Authorization header over plain http:// to a host that is not this machine; off: such a URL "
        "is refused with authorization_secret_block set, before any request."))

    # The health, session and message requests go through the load balancer's weighted rule: at
    # 95/5 they may all reach the old version and "pass" for the new one. Sent with this header,
    # a rule the infrastructure keeps ahead of the weighted one forwards them to the canary group
    # alone (verified before any request: ``rollway.pinning``).
    canary_header: str | None = Field(default=None, description=(
        "``Name: value`` sent with the health, session and message requests (e.g. ``X-Rollway-Target: canary``) so "
        "that a listener rule pins them to the canary target group; none: not pinned."))

    @field_validator("canary_header")
    @classmethod
    def _canary_header(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name, said = header_parts(value)
        return f"{name}: {said}"

    @field_validator("success_rate_floor", mode="before")
    @classmethod
    def _floor_without_sign(cls, value: object) -> object:
        # "99.9%" was refused only as "unable to parse string as a number".
        meant = percent_sign_meant(value)
        if meant is not None:
            raise ValueError(f"success_rate_floor is a number of percent: give {meant}, not {value!r}")
        return value

    @field_validator("success_rate_floor")
    @classmethod
    def _floor_in_percent(cls, value: float) -> float:
        # The rollout spec gives its rates as fractions (0.01 is 1 %): 0.999 here was a floor of
        # 0.999 %, which a service failing nearly every request passed. No floor of a few percent
        # at most means anything for SuccessRate; 0 (no floor) is taken.
        if 0 < value <= 1:
            raise ValueError(f"success_rate_floor {as_given(value)} is a number of percent, not a fraction as the "
                             f"rollout spec's rates are: as given it is a floor of {as_given(value)} %, which nearly any "
                             # The point moved in the figure as given: 0.07 * 100 is 7.000000000000001.
                             f"service passes; give {Decimal(as_given(value)).scaleb(2):f} (0 for no floor)")
        return value

    @field_validator("health_url")
    @classmethod
    def _health(cls, value: str) -> str:
        return _http_url(value, "health_url")

    @field_validator("api_base_url")
    @classmethod
    def _api(cls, value: str) -> str:
        value = _http_url(value, "api_base_url")
        parts = urlsplit(value)
        if parts.query or parts.fragment or value.endswith(("?", "#")):
            # The sessions and messages paths are appended to it: after a query or fragment
            # they would be part of it, and both POSTs would go to the base URL itself.
            raise ValueError("api_base_url must not have a query or fragment: the paths are appended to it")
        return value.rstrip("/")

    @field_validator("sessions_path", "messages_path")
    @classmethod
    def _path(cls, value: str, info) -> str:
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise ValueError(f"{info.field_name} {value!r} must be a path starting with '/', without spaces")
        return value

    @field_validator("messages_path")
    @classmethod
    def _session_placeholder(cls, value: str) -> str:
        if value.count("{session_id}") != 1 or value.replace("{session_id}", "").count("{"):
            raise ValueError(f"messages_path {value!r} must hold '{{session_id}}' exactly once (and no other braces)")
        return value

    @field_validator("client_id", "user_id", "instruction")
    @classmethod
    def _not_blank(cls, value: str, info) -> str:
        if not value.strip():
            raise ValueError(f"{info.field_name} must not be blank")
        return value

    @field_validator("authorization_secret_block")
    @classmethod
    def _secret_block_name(cls, value: str | None) -> str | None:
        # Prefect's own rule for block names: refused here, a bad one failed only when the run
        # asked the API for it, with Prefect's wording.
        if value is not None and not re.fullmatch(r"[a-z0-9-]+", value):
            raise ValueError("authorization_secret_block must be a Prefect block name: lowercase letters, numbers "
                             "and dashes (the value of the token goes in the Secret block, not here)")
        return value

    @field_validator("success_rate_services")
    @classmethod
    def _services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name.strip() or name != name.strip():
                raise ValueError(f"service {name!r} must not be blank or have surrounding spaces")
        return value

    @model_validator(mode="after")
    def _success_rate_check_bounded(self) -> "ValidationSpec":
        # Its time is its reads' as well as its waits': each read is waited on up to
        # timeout_seconds. Bounded on the waits alone, 20 reads of 300 s with no wait between
        # them held the run for 100 minutes.
        reads, waits = self.attempts, self.attempts - 1
        delay = self.success_rate_retry_delay_seconds
        total = success_rate_check_seconds(self)
        if total > SUCCESS_RATE_CHECK_LIMIT_SECONDS:
            raise ValueError(
                f"the SuccessRate check could take {said_seconds(total)} in all: {reads} reads (attempts {reads}) of up "
                f"to {seconds_said(self.timeout_seconds)} each (timeout_seconds) and {waits} waits of {seconds_said(delay)} "
                f"(success_rate_retry_delay_seconds); at most {said_seconds(SUCCESS_RATE_CHECK_LIMIT_SECONDS)}: "
                f"{_success_rate_fixes(self)}")
        return self

    @model_validator(mode="after")
    def _one_attempt_fits_each_check_limit(self) -> "ValidationSpec":
        for setting, unwaited in ((HTTP_CHECK_LIMIT, "no request could be waited for to its end"),
                                  (TARGETS_CHECK_LIMIT, "no attempt of the targets check could be waited for to its end")):
            if getattr(self, setting) < self.timeout_seconds:
                raise ValueError(f"{setting} {as_given(getattr(self, setting))} is less than timeout_seconds "
                                 f"{as_given(self.timeout_seconds)}: {unwaited}; raise it, or lower timeout_seconds")
        return self

    @model_validator(mode="after")
    def _authorization_not_in_clear(self) -> "ValidationSpec":
        # Refused as the spec is built: before the run starts, the Secret block is read or a
        # request is sent. The spec holds the block's name only, so nothing here can quote its value.
        if self.authorization_secret_block is not None:
            refused = cleartext_authorization(self)
            if refused is not None:
                raise ValueError(refused)
        return self

    @model_validator(mode="after")
    def _checks_sendable(self) -> "ValidationSpec":
        # Each URL can pass its own field's validation and still not be sent: a path httpx will
        # not send (a control character) is refused only on the whole URL. Taken, the validation's
        # pin read stopped on it with a traceback after the run had read AWS.
        check_requests(self)
        return self

    @property
    def sessions_url(self) -> str:
        return self.api_base_url + self.sessions_path

    def messages_url(self, session_id: str) -> str:
        """The message URL of one session (its id percent-encoded: it came from the server)."""
        from urllib.parse import quote

        return self.api_base_url + self.messages_path.replace("{session_id}", quote(session_id, safe=""))


def check_requests(spec: ValidationSpec) -> tuple[CheckRequest, ...]:
    """The requests the health, session and message checks send (``rollway.http_checks``), as a
    listener rule's conditions see them (``rollway.pinning.find_pin``): each URL as httpx sends it,
    the message's session id, not known before the check, as ``SESSION_ID`` (in its path or query).

    Raises:
        ValueError: a URL httpx will not send (``ValidationSpec`` refuses such a spec as it is built).
    """
    # A session id is percent-encoded into the path (``messages_url``), as letters and %XX: a name
    # of letters no URL of the spec holds stands for it as httpx sends the path, then is replaced
    # by ``SESSION_ID``. Written as "*", it was one with a real "*" of the URL.
    marker = "session"
    while marker in spec.api_base_url + spec.messages_path:
        marker += "x"
    message = spec.api_base_url + spec.messages_path.replace("{session_id}", marker)
    try:
        return (_check_request("GET", spec.health_url), _check_request("POST", spec.sessions_url),
                _check_request("POST", message, session=marker))
    except (httpx.InvalidURL, UnicodeError) as err:
        # httpx's words name the character and where, not the URL (its query may carry a token).
        raise ValueError("the health, session or message URL (health_url; api_base_url with sessions_path or "
                         f"messages_path) is not a request the checks could send: {err}") from None


def _check_request(method: str, url: str, session: str | None = None) -> CheckRequest:
    sent = httpx.URL(url)
    # As the Host header carries it (httpx writes it from the netloc): a name that is not ASCII in
    # its IDNA form, an IPv6 address in brackets, the port when not the scheme's. Read from ``host``,
    # a rule on xn--bcher-kva.example was compared with bücher.example and met none of them.
    path, _, query = sent.raw_path.decode("ascii").partition("?")
    if session is not None:
        # In the query too (messages_path may put it there): left as the stand-in, the query was
        # judged as if every session id were that word.
        path, query = path.replace(session, SESSION_ID), query.replace(session, SESSION_ID)
    return CheckRequest(method=method, host=sent.netloc.decode("ascii").lower(), path=path or "/", query=query)


def past_check_limit(spec: ValidationSpec, *, elapsed: float, wait: float, failed_attempt: int,
                     setting: str = HTTP_CHECK_LIMIT) -> str | None:
    """Why a check is not tried again after ``failed_attempt`` failed, ``elapsed`` seconds
    after its first attempt began, or None while the next one, begun after ``wait``, would end
    within the spec's ``setting`` (``HTTP_CHECK_LIMIT`` or ``TARGETS_CHECK_LIMIT``) even if it
    took all of ``spec.timeout_seconds``."""
    limit = getattr(spec, setting)
    if elapsed + wait + spec.timeout_seconds <= limit:
        return None
    return (f"stopped after attempt {failed_attempt} of {spec.attempts}, {elapsed:.2f} s in all: attempt "
            f"{failed_attempt + 1}, after its {seconds_said(wait)} wait and up to {seconds_said(spec.timeout_seconds)} "
            f"(spec.timeout_seconds), could end past the {seconds_said(limit)} spec.{setting}")


class CheckResult(BaseModel):
    """One check as it ended: passed or not, why, and how long it took.

    ``retryable``: a failure that trying again may fix and that is safe to try again (a GET, a
    metric read, or a POST that never reached the server). ``answer_lost``: the request was sent
    and its answer never came (a timeout, a connection cut): the service may have done what it
    asked. ``answer_unclear``: the request was answered, but not in a way that says whether the
    service did it (a 5xx, a 2xx without what it should carry): that answer, in short, as
    "HTTP 503". ``detail`` carries what a later check needs (the created session's id).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    outcome: Outcome
    reason: str
    seconds: float = Field(default=0.0, ge=0, description="the time of every attempt, summed (not the delays between)")
    attempts: int = Field(default=1, ge=0)
    retryable: bool = False
    answer_lost: bool = False
    answer_unclear: str | None = None
    detail: str | None = None
    pinned_to: str | None = Field(default=None, description=(
        "the target group an HTTP check's requests were pinned to (spec.canary_header); None: not pinned, so which "
        "service answered them is not known"))

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


def unchecked(name: str, why: str, *, seconds: float = 0.0, retryable: bool = False) -> CheckResult:
    """A check that could not be made (``why``: what could not be read, and what to do): it does
    not pass, and it is not reported as the service failing it."""
    return CheckResult(name=name, outcome="unchecked", reason=why, seconds=seconds, retryable=retryable)


def pinned(result: CheckResult, pin: Pin | None) -> CheckResult:
    """An HTTP check's ``result`` saying the target group its requests were pinned to by ``pin``
    (None: not pinned, ``result`` as it is: which service answered is not known, and never said)."""
    if pin is None:
        return result
    return result.model_copy(update={"pinned_to": pin.target_group, "reason": f"{result.reason}; {pin.said()}"})


def skipped(name: str, why: str) -> CheckResult:
    """A check that was not run because an earlier one it needs failed: it does not pass."""
    return CheckResult(name=name, outcome="skipped", reason=f"not run: {why}", attempts=0)


def no_session(session: CheckResult, spec: ValidationSpec) -> str:
    """Why the message check is not run after ``session`` failed. A POST whose answer was lost
    may have created the session all the same: "no test session was created" hid one left
    behind on the service, which only the ids the request carried can name (its own id was in
    the answer). So did a 5xx, or a 2xx without a usable ``sessionId``. A 4xx refused it."""
    if session.answer_lost:
        return (f"the session POST's answer was lost after it was sent: a test session (clientId {spec.client_id!r}, "
                f"userId {spec.user_id!r}) may have been created on the service and is left behind")
    if session.answer_unclear:
        # A 5xx, or a 2xx without a usable id: the service may have stored the session before
        # failing, or created it and answered badly; only its client and user ids name it.
        return (f"the session POST was answered {session.answer_unclear}, without a session id: a test session "
                f"(clientId {spec.client_id!r}, userId {spec.user_id!r}) may have been created on the service and "
                "is left behind")
    return "no test session was created"


def left_behind(session: CheckResult, message: CheckResult, spec: ValidationSpec) -> str | None:
    """What the run left on the service, named so a person can find it, or None when no session
    was created: the test session ``session`` created (its id, client and user), and the test
    message when ``message`` passed. The seed's sessions API has no call to delete a session, so
    the run cannot remove it; said with the id whatever the message check found: a failed one said
    nothing of the session it had been sent to, which stayed on the service unnamed but for the
    session row's id. (A session that may exist without an id is said by the skipped message
    check, ``no_session``.)"""
    if not session.passed or not session.detail:
        return None
    sent = " and the test message it accepted" if message.passed else ""
    # The id as the session check says it (the service's text, its control characters as escapes).
    return (f"Left on the service: test session {shown(session.detail, keep='')} (clientId {spec.client_id!r}, userId "
            f"{spec.user_id!r}){sent}. The sessions API has no call to delete a session, so the run did not: "
            "remove it where the service keeps its sessions if it must not stay; each run leaves one more.")


class ValidationSummary(BaseModel):
    """Every check's result and the verdict: passed only when every check passed."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    checks: tuple[CheckResult, ...]
    failed: tuple[str, ...] = Field(description="names of the checks that did not pass, in order")
    reason: str
    serving: dict[str, int] = Field(default_factory=dict, description=(
        "each service's share of users' traffic in percent, as the load balancer's weights were read after the "
        "HTTP checks: what those checks reached (``http_reach``); empty: not read"))


def evaluate(results: list[CheckResult] | tuple[CheckResult, ...]) -> ValidationSummary:
    """The pass/fail summary of ``results``; a check that was skipped counts as not passed.

    Raises:
        ValueError: no results, or a check reported twice (a bug in the caller, not a verdict).
    """
    if not results:
        raise ValueError("evaluate() needs at least one check result: nothing checked is not a pass")
    names = [r.name for r in results]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"checks reported more than once: {', '.join(twice)}")
    failed = tuple(r.name for r in results if not r.passed)
    if failed:
        # A check that could not be made is named apart: "failed: success_rate (... AccessDenied)"
        # read as the service failing its SuccessRate, when nobody could read it.
        parts = [f"{label}: " + "; ".join(f"{r.name} ({r.reason})" for r in chosen)
                 for label, chosen in (("failed", [r for r in results if r.outcome in ("failed", "skipped")]),
                                       ("could not check", [r for r in results if r.outcome == "unchecked"])) if chosen]
        reason = "; ".join(parts)
    else:
        reason = f"all {len(results)} checks passed"
    return ValidationSummary(passed=not failed, checks=tuple(results), failed=failed, reason=reason)


def markdown(summary: ValidationSummary, *, title: str = "Deployment validation", context: tuple[str, ...] = ()) -> str:
    """The summary as markdown: the verdict, ``context`` (lines saying what was validated), then one
    table row per check (its time: all its attempts', and how many)."""
    unmade = [r.name for r in summary.checks if r.outcome == "unchecked"]
    found = [name for name in summary.failed if name not in unmade]
    verdict = "passed" if summary.passed else "; ".join(
        f"{label} ({', '.join(names)})" for label, names in (("FAILED", found), ("NOT CHECKED", unmade)) if names)
    lines = [
        f"# {title}: {verdict}",
        "",
        *((*context, "") if context else ()),
        "| check | result | reason | seconds |",
        "|---|---|---|---|",
    ]
    for r in summary.checks:
        lines.append(f"| {r.name} | {r.outcome} | {markdown_cell(r.reason)} | {_took(r)} |")
    return "\n".join(lines)


def _took(result: CheckResult) -> str:
    """The time all of a check's attempts took and how many there were: three timeouts of 10 s
    are "30.00 (3 tries)", which says both how slow the endpoint is and how long it was given."""
    if result.attempts == 0:
        return "not run"
    return f"{result.seconds:.2f} ({result.attempts} {'try' if result.attempts == 1 else 'tries'})"


def minutes_read(now: float, minutes: int) -> tuple[float, float]:
    """The window (epoch seconds) CloudWatch is read over for the last ``minutes`` before ``now``:
    whole minutes, as ``read_service_averages`` reads per minute, the start floored and the end
    raised, so one more minute than asked unless ``now`` is on a minute. Given to that read
    already whole, it is the window read, and the one the check says."""
    return whole_minutes(now - 60 * minutes, now)


def utc_minute(epoch: float) -> str:
    """An instant to the minute in UTC, as a window read in whole minutes is said: "2026-12-04 07:00"."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M")


def _said_window(read: tuple[float, float], minutes: int) -> tuple[str, str]:
    """("over 2026-12-04 07:00 to 07:06 UTC", "6 whole minutes for the last 5"): "the last 5
    minutes" was said of a read that covered 6, whose data a reader could not then place."""
    start, end = (datetime.fromtimestamp(t, timezone.utc) for t in read)
    ends = f"{end:%H:%M}" if start.date() == end.date() else utc_minute(read[1])
    span = f"over {utc_minute(read[0])} to {ends} UTC"
    whole = round((read[1] - read[0]) / 60)
    return span, (f"the last {minutes} minutes" if whole == minutes else f"{whole} whole minutes for the last {minutes}")


def success_rate_fresh_seconds(spec: ValidationSpec) -> float:
    """How old a service's newest ``SuccessRate`` datapoint may be, from the start of its minute to
    the end of the window judged: its period, plus ``spec.success_rate_ingestion_lag_seconds``."""
    return MINUTE_PERIOD_SECONDS + spec.success_rate_ingestion_lag_seconds


def stale_success_rates(published: Iterable[str], newest: Mapping[str, float], spec: ValidationSpec, *, now: float,
                        serving: Mapping[str, int] | None = None) -> list[str]:
    """The services of ``published`` whose newest ``SuccessRate`` datapoint is too old to speak
    for ``now``, each said with how old: "svc's newest is the minute of 07:01 UTC, 270 s before
    07:05:30 UTC".

    ``newest``: service -> the time (epoch seconds) its newest datapoint is stamped with, the
    start of its minute. Too old: stamped more than a period plus
    ``spec.success_rate_ingestion_lag_seconds`` before ``now``, the end of the window judged (its
    minute ended more than the lag before ``now``; CloudWatch may show a minute that late). A
    service without a time is said as one: its figures are not taken as recent unseen.

    Which services must be recent: with ``serving`` (each service's share of users' traffic), every
    one that carries some; a service the load balancer sends nothing (the old one, scaled in after
    a promotion) stopped publishing for that reason. Without it (services named in the spec: who
    carries the traffic is not read), every one that published, as each one's figure is judged.
    """
    allowed = success_rate_fresh_seconds(spec)
    at = datetime.fromtimestamp(now, timezone.utc)
    stale = []
    for svc in published:
        if serving is not None and serving.get(svc, 0) <= 0:
            continue
        stamped = newest.get(svc)
        if stamped is None:
            stale.append(f"{svc}'s datapoints came without their times")
        elif now - stamped > allowed:
            minute = datetime.fromtimestamp(stamped, timezone.utc)
            said = f"{minute:%H:%M}" if minute.date() == at.date() else utc_minute(stamped)
            stale.append(f"{svc}'s newest is the minute of {said} UTC, {now - stamped:.0f} s before {at:%H:%M:%S} UTC")
    return stale


def judge_success_rate(averages: dict[str, tuple[float, float]], spec: ValidationSpec, services: tuple[str, ...],
                       *, read: tuple[float, float], newest: Mapping[str, float], now: float, seconds: float = 0.0,
                       serving: Mapping[str, int] | None = None, namespace: str | None = None) -> CheckResult:
    """The ``SuccessRate`` check from what CloudWatch held: service -> (sum, sample count).

    Pooled over the services that published (as CloudWatch's Average over their series would
    be), and each service on its own: every one that published must be at or above the floor.
    Pooled alone, the old version's successes (its idle health checks) carried a new version
    below the floor. No datapoint at all fails: a service nobody measures is not a healthy one.
    No data is also worth reading again (CloudWatch may still be ingesting the last minutes).

    ``serving``: service -> percent of users' traffic the load balancer sends it. A service that
    carries some and published nothing fails the check: the version users reach is unmeasured,
    and the other service's figures alone passed it (say, the old version's, after a promotion).

    ``namespace``: where the metric was looked for, named in a failure for no data, with where
    to look (it said only "no data", and a wrong namespace read as a service that publishes none).

    ``read``: the window CloudWatch was read over (``minutes_read``: whole minutes), said in UTC.
    Required: "in the last 5 minutes" was said of a read that covered 6, and a reader could not
    place its data.

    ``newest`` and ``now``: each service's newest datapoint's time, and the instant the window
    ends (``stale_success_rates``). A service carrying traffic whose newest datapoint is older
    than a minute plus ``spec.success_rate_ingestion_lag_seconds`` fails the check, whatever its
    figure: the window's good first minutes passed a service that had stopped publishing since.
    Worth reading again, as no data is (the last minutes may not be shown yet). Required, as
    ``read`` is: a caller that leaves it out judges nothing about how recent the figures are.
    """
    window = spec.success_rate_window_minutes
    names = ", ".join(services)
    where = f"namespace {namespace}, " if namespace else ""
    span, covered = _said_window(read, window)
    # A service publishes SuccessRate as it serves: validated before any request reached it, it
    # has none, and the namespace, the only lead given, sent people looking for a misconfiguration.
    hint = "; a service no request has reached publishes none: send it traffic (or wait for its users) and validate again"
    hint += ("; a service that publishes it elsewhere: name that namespace as metrics_namespace in the "
             "RollwayTargets block, or its ECS service in spec.success_rate_services" if namespace else "")
    if not averages:
        return CheckResult(name=SUCCESS_RATE, outcome="failed", seconds=seconds, retryable=True,
                           reason=f"no SuccessRate data {span} ({covered}; {where}dimension Service: "
                                  f"{names}){hint}")
    unmeasured = [f"{svc} carries {weight}% of the traffic" for svc, weight in (serving or {}).items()
                  if weight > 0 and svc not in averages]
    if unmeasured:
        return CheckResult(name=SUCCESS_RATE, outcome="failed", seconds=seconds, retryable=True,
                           reason=f"{'; '.join(unmeasured)} but published no SuccessRate {span} ({covered}; "
                                  f"{where}only {', '.join(averages)} did): the version users reach is "
                                  "unmeasured (no request reached it in the window, or it does not publish "
                                  "SuccessRate)")
    total = sum(s for s, _ in averages.values())
    count = sum(n for _, n in averages.values())
    average = total / count
    each = ", ".join(f"{svc} {s / n:.2f}%" for svc, (s, n) in averages.items())
    stale = stale_success_rates(averages, newest, spec, now=now, serving=serving)
    if stale:
        allowed = success_rate_fresh_seconds(spec)
        return CheckResult(
            name=SUCCESS_RATE, outcome="failed", seconds=seconds, retryable=True,
            reason=(f"stale SuccessRate {span} ({covered}): {'; '.join(stale)}; at most {seconds_said(allowed)} is allowed "
                    f"(a {MINUTE_PERIOD_SECONDS}-s period plus spec.success_rate_ingestion_lag_seconds "
                    f"{seconds_said(spec.success_rate_ingestion_lag_seconds)}): it stopped publishing, or CloudWatch has not "
                    f"shown its last minutes yet; the figures read, not judged: {each}"))
    below = [f"{svc} {s / n:.2f}%" for svc, (s, n) in averages.items() if s / n < spec.success_rate_floor]
    passed = average >= spec.success_rate_floor and not below
    verdict = "at or above" if average >= spec.success_rate_floor else "BELOW"
    return CheckResult(
        name=SUCCESS_RATE, outcome="passed" if passed else "failed", seconds=seconds,
        reason=(f"average SuccessRate {average:.2f}% "
                f"{span} ({covered}) is {verdict} the "
                f"{as_given(spec.success_rate_floor)}% floor ({each}; {as_given(count)} datapoints)"
                + (f"; {', '.join(below)} is BELOW it" if below and average >= spec.success_rate_floor else "")),
    )


def carrying(serving: Mapping[str, int]) -> list[str]:
    """The services ``serving`` (service -> percent of the traffic) sends some traffic to."""
    return [svc for svc, share in serving.items() if share > 0]


def _share(service: str, serving: Mapping[str, int]) -> str:
    return f"{service} carries {serving[service]}% of the traffic"


def judge_targets(serving: Mapping[str, int], healthy: Mapping[str, int], groups: Mapping[str, str], *,
                  seconds: float = 0.0) -> CheckResult:
    """The ``targets`` check: each service the load balancer sends users' traffic to has a healthy
    target in its target group.

    The health, session and message requests reach one service each through the load balancer's
    rule (``http_reach``): at 95/5 they may all reach the stable one, and a canary with no target
    to serve its 5 % passed them. This check reads each service's group on its own.

    ``serving``: service -> percent of the traffic (the load balancer's weights); ``healthy``:
    service -> healthy targets, read for each one carrying some; ``groups``: service -> its
    target group's name.
    """
    sending = carrying(serving)
    bare = [svc for svc in sending if healthy[svc] == 0]
    served = [f"{_share(svc, serving)} with {healthy[svc]} healthy target{'s' * (healthy[svc] != 1)} in its target "
              f"group {groups[svc]}" for svc in sending if svc not in bare]
    idle = [f"{svc} carries none (not read)" for svc, share in serving.items() if share <= 0]
    if bare:
        # ALB answers a group without a registered target 503 itself, and sends to every
        # registered target when none passes its health checks (it fails open).
        found = [f"{_share(svc, serving)} with no healthy target in its target group {groups[svc]} (the load "
                 "balancer answers its share 503 itself, or sends it to targets failing their health checks)"
                 for svc in bare]
        return CheckResult(name=TARGETS, outcome="failed", seconds=seconds, reason="; ".join(found + served + idle))
    return CheckResult(name=TARGETS, outcome="passed", seconds=seconds,
                       reason="every service carrying traffic has a healthy target: " + "; ".join(served + idle))


def http_reach(serving: Mapping[str, int], pin: Pin | None = None) -> str:
    """Which service the health, session and message requests reached, as far as the load
    balancer's weights (``serving``: service -> percent; empty: not read) say: one carrying all
    the traffic, or either of two, which one not known. The URLs are not matched to the rule:
    one that does not go through it reached what it names. ``pin``: the rule their header pinned
    them to the canary target group by, whatever the weights."""
    sent = "The health, session and message requests went to the spec's URLs"
    if pin is not None:
        return (f"{sent} with the header `{pin.header}`: any that went through the load balancer's listener was "
                f"{pin.said()}, whatever the weights.")
    sending = carrying(serving)
    if not sending:
        return f"{sent}; which service they reached is not known (the load balancer's weights were not read)."
    if len(sending) == 1:
        return (f"{sent}: any that went through the load balancer's rule reached {sending[0]}, which carries all the "
                "traffic.")
    split = "/".join(str(share) for share in serving.values())
    # Said of the requests through the rule only: a URL that does not go through it (a service's own
    # address) reached what it names, whatever the weights.
    return (f"{sent}: each that went through the load balancer's rule at {split} reached {' or '.join(sending)}, "
            "which one is not known; the targets check reads each one's target group on its own.")
