"""The sandbox application: what to answer to a request, without any HTTP.

It matches the route, applies injected faults, checks the token, the app's rights and the rate
limits, answers from the sessions or their messages, waits as latency says and logs the
request. The HTTP transport (`kore_sessions.sandbox.server`) only reads requests, calls
:meth:`SandboxApi.handle` and writes the :class:`Outcome` it returns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from kore_sessions.sandbox.api import list_sessions, lookup_sessions, parse_body, parse_query
from kore_sessions.sandbox.auth import Authenticator, SandboxApp, authorize
from kore_sessions.sandbox.errors import (
    BAD_REQUEST_FAULT,
    ApiError,
    error_body,
    rate_limit_error,
    server_error_payload,
)
from kore_sessions.sandbox.faults import RateLimit, RateLimiter
from kore_sessions.sandbox.log import RequestRecord
from kore_sessions.sandbox.messages import Outcome, Request
from kore_sessions.sandbox.messages_api import list_messages, parse_message_query
from kore_sessions.sandbox.routes import SESSIONS, Route, match_route
from kore_sessions.sandbox.state import SandboxState

# Faults answered with a fixed error whatever the request: status of each.
ERROR_FAULTS = {"400": 400, "429": 429, "500": 500, "502": 502, "503": 503}
# The `bad_shape` fault's body: valid JSON whose `sessions` is an object, not a list.
BAD_SHAPE_BODY = {"total": 1, "moreAvailable": False, "sessions": {"0": {}}}
# The `bad_shape` fault's body on the messages routes: `messages` an object, not a list.
MESSAGES_BAD_SHAPE_BODY = {"total": 1, "moreAvailable": False, "messages": {"0": {}}}


class SandboxApi:
    """Answers the Sessions History and Conversation History APIs' requests from a
    :class:`SandboxState`."""

    def __init__(
        self,
        state: SandboxState,
        apps: Iterable[SandboxApp] = (),
        rate_limit: RateLimit | tuple[int, int] | None = None,
    ) -> None:
        """Set up the application.

        Args:
            state: The sessions, settings, clock, faults and request log it works with.
            apps: Registered API apps.
            rate_limit: Rolling limits per bot (bot route) and per account (admin route).
        """
        self.state = state
        self._auth = Authenticator(list(apps))
        limit = RateLimit.coerce(rate_limit)
        self._limiter = RateLimiter(limit) if limit else None

    def handle(self, request: Request) -> Outcome:
        """Answer one request, after the latency it is due, and log it.

        Args:
            request: The request as the transport read it.

        Returns:
            What to send back; a sandbox bug gives a 500 answer rather than an exception.
        """
        route = match_route(request.path)
        if route is None:
            outcome = Outcome(404, error_body(f"Cannot find {request.path}", 404))
        else:
            outcome = self._safe_dispatch(route, request)
            delay = self.state.latency + (self.state.fault_latency if outcome.fault == "latency" else 0.0)
            if delay:
                time.sleep(delay)
        self.state.log.append(self._record(request, route, outcome))
        return outcome

    def _safe_dispatch(self, route: Route, request: Request) -> Outcome:
        try:
            return self._dispatch(route, request)
        except Exception as exc:  # a sandbox bug must still answer, not hang the client
            return Outcome(500, error_body(f"Sandbox error: {exc!r}", 500))

    def _dispatch(self, route: Route, request: Request) -> Outcome:
        if request.method not in route.methods:
            allowed = " or ".join(route.methods)
            error = ApiError(405, f"Method {request.method} is not allowed; use {allowed}", 405)
            return Outcome(error.status, error.body, {"Allow": ", ".join(route.methods)})
        fault = self.state.faults.next_fault()
        if fault is not None and fault != "latency":
            return self._fault_outcome(fault, route, request)
        claims: dict[str, Any] | None = None
        try:
            app, claims = self._auth.authenticate(request.token)
            bots = authorize(app, route, self.state.store)
            if self._limiter is not None and not self._limiter.admit(route.rate_bucket):
                raise rate_limit_error(self.state.retry_after)
            return Outcome(200, self._answer(route, bots, request), fault=fault, claims=claims)
        except ApiError as error:
            return Outcome(error.status, error.body, error.headers, fault, claims)

    def _answer(self, route: Route, bots: frozenset[str] | None, request: Request) -> Any:
        if route.resource != SESSIONS:
            return self._answer_messages(route, bots, request)
        state = self.state
        now = state.now
        query = parse_query(request.query, parse_body(request.body), now)
        if query.session_ids is not None:
            answer = lookup_sessions(state.store, bots, query.session_ids, now, state.legacy)
            return state.hidden.from_lookup(answer)
        hidden = state.hidden
        if not hidden.listing:
            return list_sessions(state.store, bots, query, now, state.page_cap, state.legacy)
        shown = state.store.without(hidden.listing)
        answer = list_sessions(shown, bots, query, now, state.page_cap, state.legacy)
        if hidden.in_totals:
            answer["total"] = list_sessions(state.store, bots, query, now, 1, state.legacy)["total"]
        return answer

    def _answer_messages(self, route: Route, bots: frozenset[str] | None, request: Request) -> Any:
        state, now = self.state, self.state.now
        from_query = request.method == "GET"
        params = request.query if from_query else parse_body(request.body)
        query = parse_message_query(params, now, from_query=from_query)
        messages = state.chat.store(state.store)
        return list_messages(messages, bots, query, now, route.version, state.chat.page_cap)

    def _fault_outcome(self, fault: str, route: Route, request: Request) -> Outcome:
        status = ERROR_FAULTS.get(fault)
        if status == 400:
            return Outcome(400, error_body(BAD_REQUEST_FAULT, 400), fault=fault)
        if status == 429:
            error = rate_limit_error(self.state.retry_after)
            return Outcome(429, error.body, error.headers, fault)
        if status is not None:
            return Outcome(status, server_error_payload(status), fault=fault)
        if fault == "bad_shape":
            body = BAD_SHAPE_BODY if route.resource == SESSIONS else MESSAGES_BAD_SHAPE_BODY
            return Outcome(200, body, fault=fault)
        # drop, truncate and short: the body a successful answer would have had.
        try:
            payload = self._answer(route, route.bots, request)
        except ApiError as error:
            payload = error.body
        if fault == "short":
            payload = cut_short(payload, route.list_key)
        return Outcome(200, payload, fault=fault)

    def _record(self, request: Request, route: Route | None, outcome: Outcome) -> RequestRecord:
        return RequestRecord(
            at=request.arrived,
            method=request.method,
            path=request.path,
            query=request.query,
            body=_json_object(request.body),
            status=None if outcome.dropped else outcome.status,
            fault=outcome.fault,
            bot_id=route.bot_id if route else None,
            claims=outcome.claims,
            sandbox_now=self.state.now,
        )


def cut_short(payload: Any, key: str = SESSIONS) -> Any:
    """A listing with the last third of its page left out (at least one record of a page of
    two or more), its `total` and `moreAvailable` as the whole page had them: a server that
    cuts pages short. `key` names the list (`sessions` or `messages`)."""
    records = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(records, list) or len(records) < 2 or "invalidSessions" in payload:
        return payload
    return {**payload, key: records[: len(records) - max(1, len(records) // 3)]}


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
