import datetime
from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.analytics_range_report_group import AnalyticsRangeReportGroup
from ...models.problem import Problem
from ...models.range_report import RangeReport
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    from_: datetime.date,
    to: datetime.date,
    group: AnalyticsRangeReportGroup | Unset = AnalyticsRangeReportGroup.DAY,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_from_ = from_.isoformat()
    params["from"] = json_from_

    json_to = to.isoformat()
    params["to"] = json_to

    json_group: str | Unset = UNSET
    if not isinstance(group, Unset):
        json_group = group.value

    params["group"] = json_group

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/analytics/reports",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | RangeReport | None:
    if response.status_code == 200:
        response_200 = RangeReport.from_dict(response.json())

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
) -> Response[Problem | RangeReport]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    from_: datetime.date,
    to: datetime.date,
    group: AnalyticsRangeReportGroup | Unset = AnalyticsRangeReportGroup.DAY,
) -> Response[Problem | RangeReport]:
    """Get Range Report

     The caller's activity from one day to another (at most 366 days), in buckets.

    Args:
        from_ (datetime.date): first day, YYYY-MM-DD
        to (datetime.date): last day (inclusive), YYYY-MM-DD
        group (AnalyticsRangeReportGroup | Unset): bucket size: days, ISO weeks or calendar
            months, clipped to the range Default: AnalyticsRangeReportGroup.DAY.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | RangeReport]
    """

    kwargs = _get_kwargs(
        from_=from_,
        to=to,
        group=group,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    from_: datetime.date,
    to: datetime.date,
    group: AnalyticsRangeReportGroup | Unset = AnalyticsRangeReportGroup.DAY,
) -> Problem | RangeReport | None:
    """Get Range Report

     The caller's activity from one day to another (at most 366 days), in buckets.

    Args:
        from_ (datetime.date): first day, YYYY-MM-DD
        to (datetime.date): last day (inclusive), YYYY-MM-DD
        group (AnalyticsRangeReportGroup | Unset): bucket size: days, ISO weeks or calendar
            months, clipped to the range Default: AnalyticsRangeReportGroup.DAY.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | RangeReport
    """

    return sync_detailed(
        client=client,
        from_=from_,
        to=to,
        group=group,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    from_: datetime.date,
    to: datetime.date,
    group: AnalyticsRangeReportGroup | Unset = AnalyticsRangeReportGroup.DAY,
) -> Response[Problem | RangeReport]:
    """Get Range Report

     The caller's activity from one day to another (at most 366 days), in buckets.

    Args:
        from_ (datetime.date): first day, YYYY-MM-DD
        to (datetime.date): last day (inclusive), YYYY-MM-DD
        group (AnalyticsRangeReportGroup | Unset): bucket size: days, ISO weeks or calendar
            months, clipped to the range Default: AnalyticsRangeReportGroup.DAY.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | RangeReport]
    """

    kwargs = _get_kwargs(
        from_=from_,
        to=to,
        group=group,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    from_: datetime.date,
    to: datetime.date,
    group: AnalyticsRangeReportGroup | Unset = AnalyticsRangeReportGroup.DAY,
) -> Problem | RangeReport | None:
    """Get Range Report

     The caller's activity from one day to another (at most 366 days), in buckets.

    Args:
        from_ (datetime.date): first day, YYYY-MM-DD
        to (datetime.date): last day (inclusive), YYYY-MM-DD
        group (AnalyticsRangeReportGroup | Unset): bucket size: days, ISO weeks or calendar
            months, clipped to the range Default: AnalyticsRangeReportGroup.DAY.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | RangeReport
    """

    return (
        await asyncio_detailed(
            client=client,
            from_=from_,
            to=to,
            group=group,
        )
    ).parsed
