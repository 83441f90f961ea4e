"""HTTP client of Kore.ai's public APIs: auth, rate limits, retries, and answer classification.

It knows no resource: each resource names its `Route` (paths and scope) and builds its own
bodies. Every request goes through `KoreClient.post`, which waits for the bot's rate budget, sends the
request with a freshly minted JWT, and hands the answer to `classify_response`: the one place
that decides what is retried (429, 5xx, timeouts, dropped connections, incomplete JSON) and
what fails at once (400, 401, 403, 404, any other 4xx) with the API's own message and a hint.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)

from kore_sessions.source.api.answers import KoreApiError, RetryableError, classify_response
from kore_sessions.source.api.budget import Limit, RateBudget, shared_budget
from kore_sessions.source.api.credentials import KoreCredentials
from kore_sessions.source.api.rules import (
    ALL_BOTS_KEY,
    AUTH_HEADER,
    CONNECT_TIMEOUT,
    DEFAULT_BACKOFF_INITIAL,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_REQUESTS_PER_HOUR,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_RETRY_DEADLINE,
    LIMIT_WINDOW_MARGIN,
    RATE_LIMITED_MIN_WAIT,
    READ_TIMEOUT,
)

logger = logging.getLogger("kore_sessions")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a request is retried."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_initial: float = DEFAULT_BACKOFF_INITIAL
    backoff_max: float = DEFAULT_BACKOFF_MAX
    deadline: float = DEFAULT_RETRY_DEADLINE
    rate_limited_min_wait: float = RATE_LIMITED_MIN_WAIT


@dataclass
class ClientStats:
    """Counters of what the client did, safe to update from several threads."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str) -> None:
        """Add one to the counter `name`."""
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def reset(self) -> None:
        """Back to zero (a new run)."""
        with self._lock:
            self.requests = self.retries = self.rate_limited = 0


# Connections a host may refuse before it has answered at all, before the run gives up on it:
# two, so that one dropped at start is retried, but a wrong host or port fails in seconds.
FIRST_CONNECTS_BEFORE_FAILING = 2
# Connections a host may close without an HTTP answer (a port of another service) before it has
# answered at all: more than refusals, as a server under load may drop a few at start.
FIRST_BROKEN_ANSWERS_BEFORE_FAILING = 4


def budget_limits(per_minute: int, per_hour: int, seconds_per_minute: float) -> list[Limit]:
    """The two rolling limits of one bot, each window a margin longer than the server's."""
    minute = seconds_per_minute * LIMIT_WINDOW_MARGIN
    return [(per_minute, minute), (per_hour, 60 * minute)]


@cache
def trusted_certificates(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """The TLS context httpx would make (its CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR), made
    once a process and shared by every client: httpx reads the certificates anew for each new
    client (~20 ms of CPU), and a run makes a client per load package."""
    del cert_file, cert_dir  # the cache's key: httpx reads them from the environment itself
    return httpx.create_ssl_context()


class KoreClient:
    """A connection to one Kore.ai host, shared by every bot of a run."""

    def __init__(
        self,
        host: str,
        credentials: KoreCredentials,
        *,
        requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
        requests_per_hour: int = DEFAULT_REQUESTS_PER_HOUR,
        retry_policy: RetryPolicy | None = None,
        seconds_per_minute: float = 60.0,
        budget: RateBudget | None = None,
        stats: ClientStats | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Open a connection pool to `host`.

        Args:
            host: Base URL, e.g. `https://platform.kore.ai` (http:// for a local sandbox).
            credentials: The app that signs every request.
            requests_per_minute: Rolling client-side limit per bot (per account on admin route).
            requests_per_hour: Rolling hourly limit, checked as well.
            retry_policy: Attempts, backoff and deadline of retries.
            seconds_per_minute: Real seconds one "minute" of the limits lasts (an hour is 60
                of them); 60 for Kore.ai, less for a sandbox with scaled-down limits.
            budget: Where the requests of each bot are counted (default: this process only).
            stats: The counters to count into (default: the client's own).
            transport: Optional httpx transport (tests).
        """
        self.host = host.rstrip("/")
        self.credentials = credentials
        self.retry_policy = retry_policy or RetryPolicy()
        self.stats = stats or ClientStats()
        self._contact = FirstContact(self.host)
        self._limits = budget_limits(requests_per_minute, requests_per_hour, seconds_per_minute)
        self._budget = budget or shared_budget(None)
        self._http = httpx.Client(
            base_url=self.host,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            transport=transport,
            verify=trusted_certificates(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> KoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def post(
        self, route: Route, bot_key: str, body: dict[str, Any], params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """POST to the bot's path of a route, retrying what is worth retrying.

        Args:
            route: The resource's paths and scope.
            bot_key: A bot id, or `ALL_BOTS_KEY` for the admin route.
            body: The JSON body.
            params: Query parameters, if any.

        Returns:
            The answer's JSON object.

        Raises:
            KoreApiError: The answer fails at once, or retries ran out.
        """
        path = route.path(bot_key)
        policy = self.retry_policy
        retrying = Retrying(
            stop=stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.deadline),
            wait=self._wait,
            retry=retry_if_exception_type(RetryableError),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, bot_key, path, body, params, route.scope)
        except RetryableError as exc:
            raise KoreApiError(
                f"gave up on {path} after {policy.max_attempts} attempts or {policy.deadline:.0f} s: {exc}",
                exc.status,
            ) from exc

    def _attempt(
        self, bot_key: str, path: str, body: dict[str, Any], params: dict[str, str] | None, scope: str
    ) -> dict[str, Any]:
        """Send one request once the bot's budget allows it, and classify the answer."""
        self._budget.acquire(f"{self.host} {bot_key}", self._limits)
        self.stats.count("requests")
        headers = {AUTH_HEADER: self.credentials.mint_jwt()}
        try:
            response = read_answer(self._http, path, body, params, headers)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"timeout ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:  # refused, not resolved, or closed without an answer
            self._contact.failed(exc)
            raise RetryableError(f"connection problem ({_reason(exc)})") from exc
        self._contact.reached = True
        return classify_response(response, scope)

    def _wait(self, state: RetryCallState) -> float:
        """Seconds to wait: Retry-After when given, else exponential backoff with full jitter."""
        policy = self.retry_policy
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), policy.deadline)
        ceiling = min(policy.backoff_max, policy.backoff_initial * 2 ** (state.attempt_number - 1))
        wait = random.uniform(ceiling / 2, ceiling)
        if getattr(error, "status", None) == 429:
            wait = max(wait, min(policy.rate_limited_min_wait, policy.backoff_max))
        return wait

    def _before_sleep(self, state: RetryCallState) -> None:
        """Count and report a retry."""
        error = state.outcome.exception() if state.outcome else None
        self.stats.count("retries")
        if getattr(error, "status", None) == 429:
            self.stats.count("rate_limited")
        wait = state.next_action.sleep if state.next_action else 0.0
        level = logging.WARNING if self._contact.reached else logging.DEBUG  # before contact: fails fast
        logger.log(level, "retrying in %.1f s (attempt %d): %s", wait, state.attempt_number + 1, error)


def read_answer(
    http: httpx.Client,
    path: str,
    body: dict[str, Any],
    params: dict[str, str] | None,
    headers: dict[str, str],
) -> httpx.Response:
    """POST and read the answer whole into a response of its own: a successful one is freed as
    soon as it is classified.

    A response httpx sends is bound to its stream, and the stream to it: the pair waits for
    Python's cyclic collection with the body in it, and the extraction holds that collection
    back (`heap.lean_heap`). At the peak of a 500k backfill 167 page bodies (92 MB) waited so.
    Read through `stream`, the raw body goes into a response that nothing else refers to.

    Args:
        http: The client's connection pool.
        path: The route's path for the bot.
        body: The JSON body.
        params: Query parameters, if any.
        headers: The request's own headers (the JWT).

    Raises:
        httpx.TimeoutException: No answer, or a body cut short, in time (retried by the caller).
        httpx.TransportError: No connection, or one dropped before the body ended (retried).
    """
    with http.stream("POST", path, json=body, params=params, headers=headers) as sent:
        raw = b"".join(sent.iter_raw())
    answer = httpx.Response(
        sent.status_code,
        headers=sent.headers,
        stream=httpx.ByteStream(raw),
        request=sent.request,
        default_encoding=sent.default_encoding,
    )
    answer.read()  # decoded as httpx decodes it (Content-Encoding)
    return answer


class FirstContact:
    """Whether a host has answered yet, and the rule for connections that fail before it has:
    a wrong host or port is not worth minutes of retries, so the run fails once
    `FIRST_CONNECTS_BEFORE_FAILING` connections were refused (or
    `FIRST_BROKEN_ANSWERS_BEFORE_FAILING` closed without an HTTP answer) and none answered.
    Once the host has answered, connection problems are retried as any other."""

    def __init__(self, host: str) -> None:
        """No contact yet with `host`."""
        self.host = host
        self.reached = False
        self._failed = 0
        self._lock = threading.Lock()

    def failed(self, exc: httpx.TransportError) -> None:
        """Count a connection that was refused, not resolved or closed without an answer.

        Raises:
            KoreApiError: the host has failed every connection so far, enough of them.
        """
        refused = isinstance(exc, httpx.ConnectError)
        limit = FIRST_CONNECTS_BEFORE_FAILING if refused else FIRST_BROKEN_ANSWERS_BEFORE_FAILING
        with self._lock:
            self._failed += 0 if self.reached else 1
            failed = self._failed
        if not self.reached and failed >= limit:
            what = "cannot connect to" if refused else "no HTTP answer from"
            raise KoreApiError(
                f"{what} {self.host} ({_reason(exc)}): check the host and its port, e.g. "
                "https://platform.kore.ai (SOURCES__KORE_SESSIONS__HOST or --host)"
            ) from exc


def _reason(exc: httpx.TransportError) -> str:
    """Why a connection failed, in words (the OS's own message without its errno)."""
    text = str(exc).split("] ", 1)[-1] or type(exc).__name__
    return text.strip() or "no connection"


@dataclass(frozen=True)
class Route:
    """Where a resource is served: one bot's path, the admin (all bots) path, and the scope.

    Attributes:
        bot_path: Path of a bot-builder app, with `{bot_id}`.
        admin_path: Path of a Bot Admin Console app (every bot of the account).
        scope: The app scope the route needs, as the vendor names it (for hints).
    """

    bot_path: str
    admin_path: str
    scope: str

    def path(self, bot_key: str) -> str:
        """Path of the route that serves `bot_key`."""
        if bot_key == ALL_BOTS_KEY:
            return self.admin_path
        return self.bot_path.format(bot_id=httpx.URL(bot_key).raw_path.decode())
