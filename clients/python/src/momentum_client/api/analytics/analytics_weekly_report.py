from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.weekly_report import WeeklyReport
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    week: None | str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_week: str | Unset | None
    if isinstance(week, Unset):
        json_week = UNSET
    else:
        json_week = week
    params["week"] = json_week

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/analytics/reports/weekly",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | WeeklyReport | None:
    if response.status_code == 200:
        response_200 = WeeklyReport.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 408:
        response_408 = Problem.from_dict(response.json())

        return response_408

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 431:
        response_431 = Problem.from_dict(response.json())

        return response_431

    if response.status_code == 502:
        response_502 = Problem.from_dict(response.json())

        return response_502

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if response.status_code == 504:
        response_504 = Problem.from_dict(response.json())

        return response_504

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Problem | WeeklyReport]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    week: None | str | Unset = UNSET,
) -> Response[Problem | WeeklyReport]:
    """Get Weekly Report

     The caller's activity in one ISO week, with the week before and the streaks.

    Args:
        week (None | str | Unset): ISO week YYYY-Www; default the week that contains today. 422
            for week 53 of a year without one, or a week that starts after today

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | WeeklyReport]
    """

    kwargs = _get_kwargs(
        week=week,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    week: None | str | Unset = UNSET,
) -> Problem | WeeklyReport | None:
    """Get Weekly Report

     The caller's activity in one ISO week, with the week before and the streaks.

    Args:
        week (None | str | Unset): ISO week YYYY-Www; default the week that contains today. 422
            for week 53 of a year without one, or a week that starts after today

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | WeeklyReport
    """

    return sync_detailed(
        client=client,
        week=week,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    week: None | str | Unset = UNSET,
) -> Response[Problem | WeeklyReport]:
    """Get Weekly Report

     The caller's activity in one ISO week, with the week before and the streaks.

    Args:
        week (None | str | Unset): ISO week YYYY-Www; default the week that contains today. 422
            for week 53 of a year without one, or a week that starts after today

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | WeeklyReport]
    """

    kwargs = _get_kwargs(
        week=week,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    week: None | str | Unset = UNSET,
) -> Problem | WeeklyReport | None:
    """Get Weekly Report

     The caller's activity in one ISO week, with the week before and the streaks.

    Args:
        week (None | str | Unset): ISO week YYYY-Www; default the week that contains today. 422
            for week 53 of a year without one, or a week that starts after today

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | WeeklyReport
    """

    return (
        await asyncio_detailed(
            client=client,
            week=week,
        )
    ).parsed
