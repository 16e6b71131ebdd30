"""Errors of auth: those of the token and revocation endpoints carry the RFC 6749 ``error``.

Every refusal is raised. A refusal that must not undo what the request has written (a
family revoked for a replayed refresh token, a matched password's upkeep) goes through
``refuse_keeping``, which commits first: the request's unit of work rolls back on an error.
"""

from __future__ import annotations

from typing import NoReturn

from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.errors import (
    BadRequest,
    Forbidden,
    ProblemError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)

# RFC 6749 §5.1: the token endpoint's answers, refusals included, must not be stored.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def invalid_request(detail: str) -> ProblemError:
    return BadRequest(detail, headers=NO_STORE, extra={"error": "invalid_request"})


def unsupported_grant_type(grant_type: str) -> ProblemError:
    return BadRequest(
        f"grant_type '{grant_type[:40]}' is not supported; use password or refresh_token",
        headers=NO_STORE,
        extra={"error": "unsupported_grant_type"},
    )


def invalid_scope(detail: str) -> ProblemError:
    return BadRequest(detail, headers=NO_STORE, extra={"error": "invalid_scope"})


def invalid_grant(detail: str) -> ProblemError:
    # The challenge carries no RFC 6750 error code: invalid_grant is an OAuth token-endpoint
    # code, reported in the body's ``error`` member.
    return Unauthorized(detail, error=None, headers=NO_STORE, extra={"error": "invalid_grant"})


WRONG_CREDENTIALS = "the email or password is wrong"


def wrong_credentials() -> ProblemError:
    """One body for an unknown email and a wrong password alike."""
    return invalid_grant(WRONG_CREDENTIALS)


def throttled(retry_after: int) -> ProblemError:
    problem = TooManyRequests(
        f"too many sign-in attempts; try again in {retry_after} seconds",
        retry_after=retry_after,
        extra={"error": "invalid_grant"},
    )
    problem.headers.update(NO_STORE)
    return problem


class WrongPassword(Forbidden):
    """A signed-in user gave a wrong current password: refused, but the session is fine
    (a 401 would tell the client to sign in again)."""

    type_ = "urn:momentum:problem:wrong-password"
    title = "the current password is wrong"


def wrong_current_password() -> ProblemError:
    return WrongPassword("the current password is wrong")


async def refuse_keeping(session: AsyncSession, problem: ProblemError) -> NoReturn:
    """Commit what the request has written so far, then raise ``problem``."""
    await session.commit()
    raise problem


def hashing_busy(retry_after: int) -> ProblemError:
    """Every password-hashing thread is busy and the queue is full: come back shortly.

    Raised from the hasher, below the routes, so it carries what the token endpoint's
    other errors carry: the OAuth ``error`` member and ``Cache-Control: no-store``.
    """
    return ServiceUnavailable(
        "too many password checks in progress; try again shortly",
        retry_after=retry_after,
        headers=NO_STORE,
        extra={"error": "temporarily_unavailable"},
    )
