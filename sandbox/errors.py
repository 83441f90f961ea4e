"""Kore-like API errors: ``{"errors": [{"msg": ..., "code": ...}]}``."""

from __future__ import annotations

from typing import Any

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
