"""Bearer-token checks for the HTTP APIs."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

_bearer = HTTPBearer(auto_error=False)


def require_token(expected: SecretStr | None) -> Callable[..., None]:
    """A dependency that accepts only ``Authorization: Bearer <expected>``.

    With no token configured every request is refused: an API is never open by accident.
    """

    def check(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:  # noqa: B008
        if expected is None:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "this API is disabled: no operator token is configured"
            )
        if credentials is None or not hmac.compare_digest(
            credentials.credentials.encode(), expected.get_secret_value().encode()
        ):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or wrong bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check
