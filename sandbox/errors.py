"""Kore-like API errors: ``{"errors": [{"msg": ..., "code": ...}]}``."""

from __future__ import annotations

from typing import Any

# The message of the documented 429 answer, word for word.
RATE_LIMIT_MESSAGE = "Rate limit for this API has been reached. Please try again after some time."


def error_body(msg: str, code: int | str) -> dict[str, Any]:
    """Build the error JSON the platform answers with.

    Args:
        msg: Human readable message.
        code: Numeric or symbolic error code.

    Returns:
        The body ``{"errors": [{"msg": msg, "code": code}]}``.
    """
    return {"errors": [{"msg": msg, "code": code}]}


class ApiError(Exception):
    """An error answer: HTTP status, Kore-like body and optional extra headers."""

    def __init__(
        self,
        status: int,
        msg: str,
        code: int | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Create the error.

        Args:
            status: HTTP status code.
            msg: Message for the body.
            code: Code for the body; defaults to the status.
            headers: Extra response headers (e.g. Retry-After).
        """
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.code: int | str = status if code is None else code
        self.headers = headers or {}

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return error_body(self.msg, self.code)


# Message of the injected 400 answer.
BAD_REQUEST_FAULT = "Invalid request parameters (injected by the sandbox)"
# Statuses answered by the gateway in front of the platform: an nginx HTML page, not JSON.
GATEWAY_PAGES = {
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
}


def rate_limit_error(retry_after: int | None) -> ApiError:
    """The documented 429 answer.

    Args:
        retry_after: Seconds for a ``Retry-After`` header; None sends none.

    Returns:
        The error to answer with.
    """
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return ApiError(429, RATE_LIMIT_MESSAGE, 429, headers)


def server_error_payload(status: int) -> dict[str, Any] | str:
    """The body of a 5xx answer: the gateway's HTML page, or the platform's JSON error.

    Args:
        status: 500, 502 or 503.

    Returns:
        HTML text for a gateway status, else the Kore-like JSON body.
    """
    title = GATEWAY_PAGES.get(status)
    if title is None:
        return error_body("Internal Server Error", 500)
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
