"""The validation's HTTP checks, on httpx: health, session creation, message send.

Each check returns a ``CheckResult`` and never raises for what the service answered or failed to
answer: a refused connection, a timeout, a 503, a 200 whose JSON says the service is down or the
message failed, or a body without ``sessionId`` are failed checks
with the reason a person needs (the status and the tail of the body, or the transport error).

Retrying is the caller's (the task's) decision, from ``CheckResult.retryable``, and the flow's
bound on a check's attempts and waits together (``spec.http_check_limit_seconds``): the health GET
may be tried again after any failure but a 4xx or a request httpx refused before sending (the same
refusal each time); a POST only when the request never reached the
server (the connection was refused or could not be opened in time). A POST httpx refused before
sending (a scheme it does not speak, a header it will not write) is neither retried nor said to
have lost its answer: it made nothing on the server. A POST that timed out
waiting for its answer may have created a session, or had the edit container start on the
instruction: sending it again would make a second one.
"""

from __future__ import annotations

import codecs
import json
import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator
from urllib.parse import parse_qsl, quote, quote_plus, unquote_plus

import httpx
from pydantic import SecretStr

from rollway.bounds import seconds_said, whole_seconds
from rollway.deadline import Unanswered, within
from rollway.failure_words import error_said
from rollway.one_line import shown
from rollway.pinning import CHECK_USER_AGENT, header_parts
from rollway.validation import (
    HEALTH, MESSAGE, SESSION, CheckResult, ValidationSpec, authorization_header, cleartext_authorization, query_parts,
    shown_url,
)

BODY_TAIL = 200
"""Characters of a response body quoted in a failed check's reason (its end: where errors are)."""

BODY_READ_LIMIT = 1024 * 1024
"""Bytes of an answer's body a check reads; the rest is not awaited. Every answer a check judges
(a health verdict, a ``sessionId``, a message's acceptance) is far smaller: an error page streaming
a dump was kept in memory whole, and one larger than the timeout allows was reported as a timeout
instead of its status."""

Say = Callable[[str], None]
"""Where a check says, while it waits, that it still waits (the run's log)."""


def client(spec: ValidationSpec, authorization: SecretStr | None = None) -> httpx.Client:
    """An httpx client with the spec's timeout on each network operation; the caller closes it.
    ``spec.canary_header``, when set, is sent with every request.
    ``authorization``: the ``Authorization`` header of every request (the spec's Secret block's
    value), sent without the whitespace around it and never part of a reason (reasons quote
    answers, not requests).

    (The checks also bound each whole answer by it: see ``_send``.)

    Redirects are not followed: a 3xx is the service not answering itself. Followed, a redirect
    to a login page (an expired SSO session, a wrong host) answers 200 and passed the health and
    message checks, and a 307 would send the session POST again to wherever it pointed.

    Raises:
        ValueError: ``authorization`` is given and would cross the network in clear text
            (``cleartext_authorization``), or is not one header line (``authorization_header``);
            either way before any request, and without quoting it.
    """
    # No connection is kept for a next request: each opens its own, where ``_Watchdog`` can
    # cut it (a reused one opens nothing it would see).
    headers = {"User-Agent": CHECK_USER_AGENT}
    if spec.canary_header is not None:
        # The listener rule matching it pins each request to the canary target group
        # (``rollway.pinning``); the flow verifies that rule before any check is made.
        name, value = header_parts(spec.canary_header)
        headers[name] = value
    if authorization is not None:
        # The spec refuses both when it names a Secret block; a caller handing a value of its own
        # gets the same rules here.
        refused = cleartext_authorization(spec)
        if refused is not None:
            raise ValueError(refused)
        try:
            headers["Authorization"] = authorization_header(authorization.get_secret_value())
        except ValueError as fault:
            raise ValueError(f"the Authorization header's value {fault}; it is not sent") from None
    return httpx.Client(timeout=spec.timeout_seconds, follow_redirects=False, headers=headers,
                        limits=httpx.Limits(max_keepalive_connections=0))


class _Deadline(httpx.SyncByteStream):
    """A response body that fails with ``ReadTimeout`` once the request's whole time is up, and
    ends after ``BODY_READ_LIMIT`` bytes (``cut`` then says the rest was not read).

    httpx's timeouts are per network operation: a body that arrives a byte at a time, each
    within the read timeout, would be read for as long as the server kept sending.

    ``length``: the body's length as its ``Content-Length`` announces it (None: not announced).
    Once the cap is read, nothing more is awaited: a body whose length says it is over is read
    whole (``complete``); any other is cut there. Waiting for the byte past the cap, a body that
    stalled just after it was reported as a timeout rather than as over the cap.
    """

    def __init__(self, stream: httpx.SyncByteStream, request: httpx.Request, deadline: float, seconds: float,
                 length: int | None = None) -> None:
        self._stream, self._request, self._deadline, self._seconds = stream, request, deadline, seconds
        self._length = length
        self.read = 0
        self.cut = False

    @property
    def complete(self) -> bool:
        """Whether every byte of the body was read (known only when its length was announced)."""
        return self._length is not None and self.read >= self._length

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            if time.monotonic() > self._deadline:
                raise httpx.ReadTimeout(f"the answer was not complete within {seconds_said(self._seconds)}",
                                        request=self._request)
            left = BODY_READ_LIMIT - self.read
            if len(chunk) > left:
                # The connection is closed with the response, not kept: nothing more is read from it.
                self.cut = True
                self.read += left
                yield chunk[:left]
                return
            self.read += len(chunk)
            yield chunk
            if self.read == BODY_READ_LIMIT:
                self.cut = not self.complete
                return

    def close(self) -> None:
        self._stream.close()


class _Read(httpx.SyncByteStream):
    """A body as a check read it, decoded, to ``BODY_READ_LIMIT`` (``cut``: the rest was not read;
    ``undecoded``: why its ``Content-Encoding`` could not decode it, its content then empty)."""

    def __init__(self, content: bytes, cut: bool, undecoded: str | None = None) -> None:
        self._content, self.cut, self.undecoded = content, cut, undecoded

    def __iter__(self) -> Iterator[bytes]:
        yield self._content


class _Watchdog:
    """Cuts a request's connection once its whole time is up, wherever the answer is stuck.

    httpx bounds each network operation, not the answer: a server that sends its status line
    and then a header line at a time, each within the read timeout, was read for as long as it
    kept sending (the body's own bound, ``_Deadline``, starts only once the headers are in).
    The connection is taken from httpcore's trace as it is opened; shutting its socket down
    wakes the read blocked on it, which then fails and is reported as the timeout it is. A
    connection opened once the time is up (after a slow DNS lookup) is shut as it opens, so a
    request given up on is never sent late.
    """

    def __init__(self, seconds: float) -> None:
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.fired = False
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    @property
    def connected(self) -> bool:
        """Whether a connection was opened (the DNS lookup and the TCP connect are done)."""
        with self._lock:
            return bool(self._sockets)

    def trace(self, event: str, info: dict) -> None:
        # connection.connect_tcp.complete, connection.start_tls.complete (and a proxy's own):
        # the newest stream is the one the answer is read from.
        stream = info.get("return_value") if event.endswith(".complete") else None
        sock = stream.get_extra_info("socket") if hasattr(stream, "get_extra_info") else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.append(sock)
                if self.fired:
                    _shut(sock)

    def _cut(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self) -> "_Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    try:
        # socket.socket's own shutdown, not SSLSocket's: that one also drops the TLS object the
        # reading thread is using.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # closed already: nothing left to wake


_GRACE_SECONDS = 1.0
"""How long after its timeout a request may take to report the cut (a read woken by the shut
socket fails at once) before it is given up on as stuck where no socket can be cut: the DNS
lookup before a connection (``rollway.deadline``: a resolver that does not answer kept the
check, and the validation run, waiting for as long as the C library retried)."""


def _send(http: httpx.Client, method: str, url: str, spec: ValidationSpec, say: Say | None = None,
          **kwargs) -> httpx.Response:
    """``method url``, its whole answer (status, headers and body) within ``spec.timeout_seconds``;
    ``say`` gets a line every 10 s while the answer is awaited.

    Raises:
        httpx.HTTPError: as httpx does; ``ReadTimeout`` when the answer was not complete in time,
            ``ConnectTimeout`` when no connection was opened in time (a DNS lookup that did not
            answer included: nothing was sent).
    """
    deadline = time.monotonic() + spec.timeout_seconds
    late = f"the answer was not complete within {seconds_said(spec.timeout_seconds)}"
    with _Watchdog(spec.timeout_seconds) as watchdog:
        request = http.build_request(method, url, extensions={"trace": watchdog.trace}, **kwargs)

        def exchange() -> httpx.Response:
            response = http.send(request, stream=True)
            try:
                length = response.headers.get("content-length", "")
                response.stream = body = _Deadline(response.stream, request, deadline, spec.timeout_seconds,
                                                   int(length) if length.isdigit() else None)
                return _read_capped(response, body)
            finally:
                response.close()

        try:
            # Said while it lasts: a request may wait up to 300 s (spec.timeout_seconds), each
            # attempt, and the run's log was silent all along. Not in its last second: at the
            # default 10 s bound, "after 10 s of 10 s" came in the instant before the timeout.
            def waiting(elapsed: float) -> None:
                if say is not None and elapsed < spec.timeout_seconds - 1:
                    say(f"still waiting for the answer to {method} {shown_url(url)} after {whole_seconds(elapsed)} s "
                        f"of {seconds_said(spec.timeout_seconds)} (spec.timeout_seconds)")
            # With nobody to tell, the wait is one join, not a wake-up every 10 s for nothing.
            response = within(spec.timeout_seconds + _GRACE_SECONDS, exchange, name="rollway-http-check",
                              waiting=waiting if say is not None else None)
        except Unanswered:
            if watchdog.connected:
                raise httpx.ReadTimeout(late, request=request) from None
            raise httpx.ConnectTimeout(
                f"no connection to {request.url.host} within {seconds_said(spec.timeout_seconds)} (its DNS lookup or "
                "the connection did not complete)", request=request) from None
        except httpx.TransportError as err:
            if watchdog.fired and not isinstance(err, httpx.TimeoutException):
                # The cut connection fails as closed or broken: it was this timeout.
                raise httpx.ReadTimeout(late, request=request) from err
            raise
    return response


def _read_capped(response: httpx.Response, body: _Deadline) -> httpx.Response:
    """``response`` with its body read, decoded, to its first ``BODY_READ_LIMIT`` bytes (its
    ``_Read`` stream's ``cut`` then says the rest was not read), as its ``content``.

    ``_Deadline`` counts the bytes as sent: a compressed body (``Content-Encoding: gzip``) under the
    limit on the wire was decoded whole, a dump that compresses a hundredfold held in memory and
    quoted from past the MiB its reason said was read. The response returned is a new one, with
    the same status, headers (but ``Content-Encoding``: its body is decoded) and request, read
    through httpx's own ``read``: the body set on httpx's private ``_content`` counted on a detail of
    httpx that a release may change.
    """
    kept: list[bytes] = []
    size = 0
    undecoded = None
    decoded = response.iter_bytes()
    try:
        for chunk in decoded:
            if size + len(chunk) > BODY_READ_LIMIT:
                kept.append(chunk[:BODY_READ_LIMIT - size])
                body.cut = True
                break
            kept.append(chunk)
            size += len(chunk)
            if size == BODY_READ_LIMIT and not body.complete:
                # Read to the cap: the next byte, if any, is past it, and may never come.
                body.cut = True
                break
    except httpx.DecodingError as err:
        # The answer came, status and headers: only its body is unreadable. Raised, it read as a
        # request that failed ("failed: DecodingError"), the status unsaid and a POST's answer lost.
        undecoded = f"{response.headers.get('content-encoding', '')} could not decode ({error_said(err)})"
        kept, body.cut = [], False
    finally:
        decoded.close()
    headers = [(name, value) for name, value in response.headers.multi_items() if name.lower() != "content-encoding"]
    read = httpx.Response(response.status_code, headers=headers, stream=_Read(b"".join(kept), body.cut, undecoded),
                          request=response.request, extensions=response.extensions)
    read.read()
    return read


# Query values shorter than this are not masked in a quoted body: masking "eu" would garble the
# text around it, and no token is that short.
_MASKED_MIN = 4


def _cut(response: httpx.Response) -> bool:
    """Whether a check stopped reading ``response``'s body at ``BODY_READ_LIMIT``."""
    return getattr(response.stream, "cut", False) is True


_BINARY_SHARE = 0.1
"""A body more than this share of whose characters are control characters, or bytes that are not
text in its encoding, is described, not quoted."""


def _binary(text: str, content: bytes) -> bool:
    odd = sum(1 for c in text if c == "\ufffd" or not (c.isprintable() or c.isspace()))
    return b"\x00" in content or odd > len(text) * _BINARY_SHARE


def _text(response: httpx.Response) -> str:
    """``response``'s body as text; one cut at ``BODY_READ_LIMIT`` without the part of a character
    the cut left at its end (a multi-byte character read in half was quoted as a replacement character)."""
    if not _cut(response):
        return response.text
    return codecs.getincrementaldecoder(response.encoding or "utf-8")(errors="replace").decode(response.content)


def quoted_body(response: httpx.Response) -> str:
    """What a reason quotes of ``response``'s body: its end, in one line, with the request's
    query values and the Authorization header it sent (whole and without its scheme) masked.

    A binary body is described (its size and type), not quoted: its bytes, decoded, put control
    characters (a terminal's escapes) and a row of replacement characters in the run's log. Any
    control character left in a text body is shown as a space."""
    undecoded = getattr(response.stream, "undecoded", None)
    if undecoded is not None:
        return f"a body its Content-Encoding {shown(undecoded)}, not quoted"
    cut = " (the rest was not read)" if _cut(response) else ""
    text = _text(response)
    if _binary(text, response.content):
        kind = response.headers.get("content-type", "no Content-Type")
        size = (f"its first {len(response.content):,} bytes" if cut else f"{len(response.content):,} bytes")
        return f"a binary body ({kind}, {size}{cut}), not quoted"
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    # An error page may echo the request's URL ("Cannot GET /health?token=..."): the query values
    # the URL's own display masks are masked here too, as sent, decoded and percent-encoded.
    query = response.request.url.query.decode("ascii", "replace")
    values = {value for _, value in query_parts(query)}
    values |= {value for _, value in parse_qsl(query, keep_blank_values=True)}
    # A token given alone (``?<api key>``) is parse_qsl's key, not its value: a page naming the key
    # it refused, decoded ("s3cr3t/tok+en" sent as s3cr3t%2Ftok%2Ben), or without its base64
    # padding, quoted it whole.
    values |= {form for key, value in query_parts(query) if key is None
               for form in (unquote_plus(value), unquote_plus(value.rstrip("=")))}
    forms = {form for value in values if len(value) >= _MASKED_MIN
             for form in (value, quote(value, safe=""), quote(value), quote_plus(value))}
    # A 401 page may name the token it refused ("token <...> has expired"): the Authorization
    # header sent (the Secret block's value), whole and without its scheme, is never quoted.
    sent = response.request.headers.get("authorization", "").strip()
    forms |= {form for form in (sent, sent.partition(" ")[2].strip()) if len(form) >= _MASKED_MIN}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "****")
    if not text:
        return f"empty body{cut}"
    if cut:
        return f"the first {BODY_READ_LIMIT // (1024 * 1024)} MiB of its body{cut} ends: …{text[-BODY_TAIL:]}"
    return f"body: {text}" if len(text) <= BODY_TAIL else f"body ends: …{text[-BODY_TAIL:]}"


def _answered(response: httpx.Response, field: str) -> str:
    """What ``response``, an answer that fails its check, said; ``field``: the spec's field that
    holds the URL asked (``health_url``, ``api_base_url``), which a redirect's reason says to set."""
    where = f"HTTP {response.status_code}"
    # httpx's is_redirect is any 3xx: one without a Location (a 304, a proxy's bare 302) is
    # reported as any other answer, its body quoted (read as a redirect, it crashed the run).
    if response.is_redirect and "location" in response.headers:
        # Where it pointed is what says why. Its body only repeats that URL ("Redirecting to
        # /login?next=/health%3Ftoken%3D..."), unmasked: it is not quoted. What to do is said: a
        # bare "HTTP 302 to /login" read as the new version failing its check.
        return (f"{where} to {shown_url(response.headers['location'])} from {response.request.method} "
                f"{shown_url(response.request.url)}; redirects are not followed, as the check wants the service's "
                f"own answer: set spec.{field} to the address that answers itself, or remove what sends it on (a "
                "login in front of it, a wrong host)")
    # What the check wanted, said: "HTTP 404 from GET .../healthz; body: ..." named neither.
    return (f"{where} from {response.request.method} {shown_url(response.request.url)}, not the 2xx the check "
            f"wants; {quoted_body(response)}") + _remedy(response, field)


def _remedy(response: httpx.Response, field: str) -> str:
    """What to do about a refusal whose cause is the request's, not the service's health: a 401
    or 403 said only the status, and read as the new version failing the check; so did a health
    URL whose path the service does not serve (a 404 to the GET of ``spec.health_url``)."""
    if response.status_code == 404 and field == "health_url":
        return "; no such path on the service: check spec.health_url (the service's health path)"
    if response.status_code not in (401, 403):
        return ""
    if "authorization" in response.request.headers:  # its value is never shown
        return ("; the service refused the Authorization header sent from spec.authorization_secret_block: check "
                "that Secret block's value (e.g. `Bearer <token>`)")
    return ("; the service wants credentials: save its Authorization header's value (e.g. `Bearer <token>`) in a "
            "Prefect Secret block and name it in spec.authorization_secret_block")


_FAILING_STATUS = frozenset({"down", "fail", "failed", "failing", "unhealthy", "error", "out_of_service", "critical"})
"""A JSON body's ``status`` that says the service is not working (Spring Boot's DOWN and
OUT_OF_SERVICE, the IETF health-check draft's fail). A warning (``warn``) is not one."""

_VERDICT_KEYS = ("status", "healthy", "ok", "success")
"""Keys whose ``false`` is a failure said as a boolean (``{"healthy": false}``, ``{"ok": false}``,
an API's ``{"success": false}``): only ``false`` itself, not a missing key or a 0."""


def _json(response: httpx.Response) -> object:
    """``response``'s body as JSON.

    Raises:
        ValueError: it is not JSON, or not text (json's and the codec's own errors are ValueErrors);
            or it nests deeper than Python's parser goes (its ``__cause__`` a ``RecursionError``,
            which went through the checks and failed the run with its traceback).
    """
    try:
        return response.json()
    except RecursionError as err:
        raise ValueError("JSON nested too deep to read") from err


def _body_says_failed(response: httpx.Response) -> str | None:
    """What a 2xx answer's JSON object says went wrong, or None: a ``status`` of failure, a
    verdict key that is ``false``, or a non-empty ``error`` or ``errors``. A body that is not a
    JSON object says nothing."""
    try:
        body = _json(response)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    status = body.get("status")
    if isinstance(status, str) and status.strip().lower() in _FAILING_STATUS:
        return f"its body says status {json.dumps(status)}"
    said_false = [key for key in _VERDICT_KEYS if body.get(key) is False]
    if said_false:
        return f"its body says {json.dumps(said_false[0])}: false"
    if body.get("error") or body.get("errors"):
        return "its body carries an error"
    return None


def _said_failed(response: httpx.Response, url: str) -> str | None:
    """The reason a 2xx answer fails its check, or None when its body says nothing wrong."""
    wrong = _body_says_failed(response)
    if wrong is None:
        return None
    return f"HTTP {response.status_code} from {response.request.method} {shown_url(url)} but {wrong}; {quoted_body(response)}"


def _transport(err: httpx.HTTPError, method: str, url: str, spec: ValidationSpec) -> str:
    # The bound said with the setting that sets it: "timed out" alone read as a service that is
    # down, where one that answers in 12 s needs only a longer timeout.
    timed_out = isinstance(err, httpx.TimeoutException)
    kind = f"timed out after {seconds_said(spec.timeout_seconds)} (spec.timeout_seconds)" if timed_out else "failed"
    slow = "; raise spec.timeout_seconds if it answers, only slowly" if timed_out and not _never_sent(err) else ""
    # Said, not left to be inferred from the exception's name: a POST whose answer is lost and
    # one that never left read alike, and only the second tells a person nothing was created.
    if _refused_by_httpx(err):
        # Said, as a check that fails on its first of several attempts reads as a retry skipped.
        unsent = "; it was not sent and is not tried again: httpx refuses it the same way each time"
    elif _never_sent(err):
        unsent = "; it was not sent"
    else:
        unsent = ""
    return f"{method} {shown_url(url)} {kind}: {error_said(err)}{unsent}{slow}"


_REFUSED_BY_HTTPX = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
"""Requests httpx refused itself, before writing them (a scheme it does not speak, a header h11
will not write): sent again, any request, GET or POST, is refused the same way."""

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, *_REFUSED_BY_HTTPX)
"""Failures before a byte of the request could reach the server: no connection was made, or
httpx refused the request itself (``_REFUSED_BY_HTTPX``). Anything else after the connection (a
read timeout, a connection dropped, a server breaking the protocol) may follow a request the
server received."""


def _never_sent(err: httpx.HTTPError) -> bool:
    """Whether the request cannot have reached the server (it made nothing there)."""
    return isinstance(err, _NOT_SENT)


def _refused_by_httpx(err: httpx.HTTPError) -> bool:
    """Whether httpx refused the request itself: no attempt, of any method, can pass."""
    return isinstance(err, _REFUSED_BY_HTTPX)


def _worth_sending_again(err: httpx.HTTPError) -> bool:
    """Whether a POST may be sent again: it never reached the server, and for a reason that may
    pass (a refused or slow connection). A request httpx refused is refused the same way again."""
    return _never_sent(err) and not _refused_by_httpx(err)


_SECOND_SESSION = "create a second test session"
_SECOND_MESSAGE = "have the test instruction run twice"


def _not_again(spec: ValidationSpec, second: str) -> str:
    """What a POST's failure adds when it may have reached the service and more attempts were allowed:
    why it had one. Beside a health GET tried ``spec.attempts`` times, "1 try" read as a retry
    skipped. Empty with one attempt: nothing was held back."""
    if spec.attempts <= 1:
        return ""
    # "May": a 5xx (a load balancer's 503 with no healthy target) or a lost answer does not say the
    # service got it, only that it cannot be ruled out.
    return (f"; not sent again (spec.attempts {spec.attempts}): it may have reached the service (a 5xx or a lost "
            f"answer does not say), and a second POST could {second}")


@contextmanager
def _timed() -> Iterator[Callable[[], float]]:
    start = time.monotonic()
    yield lambda: time.monotonic() - start


def check_health(http: httpx.Client, spec: ValidationSpec, say: Say | None = None) -> CheckResult:
    """GET the health URL: passes on 2xx whose body, if a JSON object, says nothing wrong (no
    failing ``status``, no ``error``). Any other body (plain text, HTML) is not read: the status
    decides, as the seed's ``curl -f`` did; free text has no rule that tells a "DOWN" from a page
    that only mentions the word."""
    url = spec.health_url
    with _timed() as took:
        try:
            response = _send(http, "GET", url, spec, say)
        except httpx.HTTPError as err:
            # Any failure of the GET may pass on another attempt (a task starting, a connection
            # reset) but a request httpx refused: attempts x delay spent before the same failure.
            return CheckResult(name=HEALTH, outcome="failed", reason=_transport(err, "GET", url, spec), seconds=took(),
                               retryable=not _refused_by_httpx(err))
    if response.is_success:
        # Many health endpoints answer 200 whatever they find and put the verdict in the body:
        # such a "down" is as worth asking again as a 503 (a task still starting).
        wrong = _said_failed(response, url)
        if wrong is not None:
            return CheckResult(name=HEALTH, outcome="failed", reason=wrong, seconds=took(), retryable=True)
        # Said: a verdict past the body's first MiB was not read (the JSON cut there reads as no verdict).
        unread = (f"; its body was read to its first {BODY_READ_LIMIT // (1024 * 1024)} MiB only, a verdict in it "
                  "not read" if _cut(response) else "")
        return CheckResult(name=HEALTH, outcome="passed", seconds=took(),
                           reason=f"HTTP {response.status_code} from GET {shown_url(url)}{unread}")
    # A 4xx will not change by asking again (a wrong path); a 5xx or 429 may (a task starting).
    retry = response.status_code >= 500 or response.status_code == 429
    return CheckResult(name=HEALTH, outcome="failed", reason=_answered(response, "health_url"), seconds=took(), retryable=retry)


def create_session(http: httpx.Client, spec: ValidationSpec, say: Say | None = None) -> CheckResult:
    """POST a test session: passes on 2xx with a JSON object whose ``sessionId`` is a non-empty
    string, which the result carries in ``detail``."""
    url = spec.sessions_url
    with _timed() as took:
        try:
            response = _send(http, "POST", url, spec, say, json={"clientId": spec.client_id, "userId": spec.user_id})
        except httpx.HTTPError as err:
            lost = not _never_sent(err)
            return CheckResult(name=SESSION, outcome="failed", seconds=took(),
                               reason=_transport(err, "POST", url, spec) + (_not_again(spec, _SECOND_SESSION) if lost else ""),
                               retryable=_worth_sending_again(err), answer_lost=lost)
    if not response.is_success:
        # A 5xx does not say whether the session was stored before the failure; a 4xx refused it.
        unclear = f"HTTP {response.status_code}" if response.is_server_error else None
        return CheckResult(name=SESSION, outcome="failed", seconds=took(), answer_unclear=unclear,
                           reason=_answered(response, "api_base_url") + (_not_again(spec, _SECOND_SESSION) if unclear else ""))
    try:
        body = _json(response)
    except ValueError as unread:
        deep = isinstance(unread.__cause__, RecursionError)
        return CheckResult(name=SESSION, outcome="failed", seconds=took(),
                           answer_unclear=f"HTTP {response.status_code}, not JSON" + (" a check can read" if deep else ""),
                           reason=f"HTTP {response.status_code} from POST {shown_url(url)} is "
                                  f"{'JSON nested too deep to read' if deep else 'not JSON'}; {quoted_body(response)}")
    session_id = body.get("sessionId") if isinstance(body, dict) else None
    # "." and ".." are no id a path can carry: put in messages_path as they are (percent-encoding
    # leaves dots alone), the URL's dot segments are resolved, and the message was sent to
    # .../sessions/messages or to the API's parent path, a route the message check then judged.
    if not isinstance(session_id, str) or not session_id.strip() or session_id in (".", ".."):
        got = (f"sessionId is {json.dumps(session_id)}"
               + (", which a URL path reads as a relative segment, not an id" if session_id in (".", "..") else "")
               if isinstance(body, dict) and "sessionId" in body
               else f"no sessionId (keys: {', '.join(sorted(map(str, body))) or 'none'})" if isinstance(body, dict)
               else f"a JSON {type(body).__name__}, not an object")
        # A 2xx: the service may well have made the session and only answered it badly.
        return CheckResult(name=SESSION, outcome="failed", seconds=took(),
                           answer_unclear=f"HTTP {response.status_code} but {got}",
                           reason=f"HTTP {response.status_code} from POST {shown_url(url)} but {got}; {quoted_body(response)}")
    # Said with its control characters as escapes: the id is the service's text, and as it came
    # its escape sequence acted on the terminal reading the log, its line break began a line.
    return CheckResult(name=SESSION, outcome="passed", seconds=took(), detail=session_id,
                       reason=f"HTTP {response.status_code} from POST {shown_url(url)}: session "
                              f"{shown(session_id, keep='')}")


def send_message(http: httpx.Client, spec: ValidationSpec, session_id: str,
                 say: Say | None = None) -> CheckResult:
    """POST the test instruction to the session: passes on 2xx whose body, if a JSON object,
    carries no ``error`` (nor a failing ``status``)."""
    url = spec.messages_url(session_id)
    with _timed() as took:
        try:
            response = _send(http, "POST", url, spec, say, json={"instruction": spec.instruction})
        except httpx.HTTPError as err:
            lost = not _never_sent(err)
            return CheckResult(name=MESSAGE, outcome="failed", seconds=took(),
                               reason=_transport(err, "POST", url, spec) + (_not_again(spec, _SECOND_MESSAGE) if lost else ""),
                               retryable=_worth_sending_again(err), answer_lost=lost)
    if not response.is_success:
        # A 5xx does not say whether the message was queued before the failure; a 4xx refused it.
        again = _not_again(spec, _SECOND_MESSAGE) if response.is_server_error else ""
        return CheckResult(name=MESSAGE, outcome="failed", reason=_answered(response, "api_base_url") + again, seconds=took())
    wrong = _said_failed(response, url)  # "could not queue it", in a 200
    if wrong is not None:
        return CheckResult(name=MESSAGE, outcome="failed", reason=wrong, seconds=took())
    # The API accepting the message is all the check can see (the seed's sessions API has no call
    # to read a message's outcome): "passed" alone read as the edit container having processed it.
    return CheckResult(name=MESSAGE, outcome="passed", seconds=took(),
                       reason=f"HTTP {response.status_code} from POST {shown_url(url)}: the message was accepted; "
                              "whether it was processed is not checked (the test session and the message are left "
                              "behind)")
