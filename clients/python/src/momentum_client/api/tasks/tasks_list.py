from http import HTTPStatus
from typing import Any, Literal
from uuid import UUID

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.task_page import TaskPage
from ...models.task_sort import TaskSort
from ...models.tasks_list_priority_type_0 import TasksListPriorityType0
from ...models.tasks_list_status_type_0 import TasksListStatusType0
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    status: None | TasksListStatusType0 | Unset = UNSET,
    priority: None | TasksListPriorityType0 | Unset = UNSET,
    tag: None | str | Unset = UNSET,
    q: None | str | Unset = UNSET,
    due_before: None | str | Unset = UNSET,
    due_after: None | str | Unset = UNSET,
    search: None | str | Unset = UNSET,
    sort: TaskSort | Unset = UNSET,
    project_id: Literal["none"] | Unset | UUID = UNSET,
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_status: str | Unset | None
    if isinstance(status, Unset):
        json_status = UNSET
    elif isinstance(status, TasksListStatusType0):
        json_status = status.value
    else:
        json_status = status
    params["status"] = json_status

    json_priority: str | Unset | None
    if isinstance(priority, Unset):
        json_priority = UNSET
    elif isinstance(priority, TasksListPriorityType0):
        json_priority = priority.value
    else:
        json_priority = priority
    params["priority"] = json_priority

    json_tag: str | Unset | None
    if isinstance(tag, Unset):
        json_tag = UNSET
    else:
        json_tag = tag
    params["tag"] = json_tag

    json_q: str | Unset | None
    if isinstance(q, Unset):
        json_q = UNSET
    else:
        json_q = q
    params["q"] = json_q

    json_due_before: str | Unset | None
    if isinstance(due_before, Unset):
        json_due_before = UNSET
    else:
        json_due_before = due_before
    params["due_before"] = json_due_before

    json_due_after: str | Unset | None
    if isinstance(due_after, Unset):
        json_due_after = UNSET
    else:
        json_due_after = due_after
    params["due_after"] = json_due_after

    json_search: str | Unset | None
    if isinstance(search, Unset):
        json_search = UNSET
    else:
        json_search = search
    params["search"] = json_search

    json_sort: str | Unset = UNSET
    if not isinstance(sort, Unset):
        json_sort = sort.value

    params["sort"] = json_sort

    json_project_id: Literal["none"] | str | Unset
    if isinstance(project_id, Unset):
        json_project_id = UNSET
    elif isinstance(project_id, UUID):
        json_project_id = str(project_id)
    else:
        json_project_id = project_id
    params["project_id"] = json_project_id

    params["limit"] = limit

    json_cursor: str | Unset | None
    if isinstance(cursor, Unset):
        json_cursor = UNSET
    else:
        json_cursor = cursor
    params["cursor"] = json_cursor

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/tasks",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | TaskPage | None:
    if response.status_code == 200:
        response_200 = TaskPage.from_dict(response.json())

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
) -> Response[Problem | TaskPage]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    status: None | TasksListStatusType0 | Unset = UNSET,
    priority: None | TasksListPriorityType0 | Unset = UNSET,
    tag: None | str | Unset = UNSET,
    q: None | str | Unset = UNSET,
    due_before: None | str | Unset = UNSET,
    due_after: None | str | Unset = UNSET,
    search: None | str | Unset = UNSET,
    sort: TaskSort | Unset = UNSET,
    project_id: Literal["none"] | Unset | UUID = UNSET,
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
) -> Response[Problem | TaskPage]:
    """List Tasks

     List the caller's tasks, filtered and sorted, one keyset page at a time.

    Args:
        status (None | TasksListStatusType0 | Unset): open or done
        priority (None | TasksListPriorityType0 | Unset): low, normal or high
        tag (None | str | Unset): has this tag (exact)
        q (None | str | Unset): substring of the title, any case
        due_before (None | str | Unset): due strictly before this RFC 3339 instant
        due_after (None | str | Unset): due strictly after this RFC 3339 instant
        search (None | str | Unset): full-text search in title and description: every word must
            match (English stemming: running finds run), the last word also as a prefix (plan finds
            planning); only letters and digits count, common words such as 'the' are ignored, and a
            search left with no word is 422
        sort (TaskSort | Unset):
        project_id (Literal['none'] | Unset | UUID): in this project (its id), or none for tasks
            without a project
        limit (int | Unset):  Default: 20.
        cursor (None | str | Unset): next_cursor of the previous page

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TaskPage]
    """

    kwargs = _get_kwargs(
        status=status,
        priority=priority,
        tag=tag,
        q=q,
        due_before=due_before,
        due_after=due_after,
        search=search,
        sort=sort,
        project_id=project_id,
        limit=limit,
        cursor=cursor,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    status: None | TasksListStatusType0 | Unset = UNSET,
    priority: None | TasksListPriorityType0 | Unset = UNSET,
    tag: None | str | Unset = UNSET,
    q: None | str | Unset = UNSET,
    due_before: None | str | Unset = UNSET,
    due_after: None | str | Unset = UNSET,
    search: None | str | Unset = UNSET,
    sort: TaskSort | Unset = UNSET,
    project_id: Literal["none"] | Unset | UUID = UNSET,
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
) -> Problem | TaskPage | None:
    """List Tasks

     List the caller's tasks, filtered and sorted, one keyset page at a time.

    Args:
        status (None | TasksListStatusType0 | Unset): open or done
        priority (None | TasksListPriorityType0 | Unset): low, normal or high
        tag (None | str | Unset): has this tag (exact)
        q (None | str | Unset): substring of the title, any case
        due_before (None | str | Unset): due strictly before this RFC 3339 instant
        due_after (None | str | Unset): due strictly after this RFC 3339 instant
        search (None | str | Unset): full-text search in title and description: every word must
            match (English stemming: running finds run), the last word also as a prefix (plan finds
            planning); only letters and digits count, common words such as 'the' are ignored, and a
            search left with no word is 422
        sort (TaskSort | Unset):
        project_id (Literal['none'] | Unset | UUID): in this project (its id), or none for tasks
            without a project
        limit (int | Unset):  Default: 20.
        cursor (None | str | Unset): next_cursor of the previous page

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TaskPage
    """

    return sync_detailed(
        client=client,
        status=status,
        priority=priority,
        tag=tag,
        q=q,
        due_before=due_before,
        due_after=due_after,
        search=search,
        sort=sort,
        project_id=project_id,
        limit=limit,
        cursor=cursor,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    status: None | TasksListStatusType0 | Unset = UNSET,
    priority: None | TasksListPriorityType0 | Unset = UNSET,
    tag: None | str | Unset = UNSET,
    q: None | str | Unset = UNSET,
    due_before: None | str | Unset = UNSET,
    due_after: None | str | Unset = UNSET,
    search: None | str | Unset = UNSET,
    sort: TaskSort | Unset = UNSET,
    project_id: Literal["none"] | Unset | UUID = UNSET,
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
) -> Response[Problem | TaskPage]:
    """List Tasks

     List the caller's tasks, filtered and sorted, one keyset page at a time.

    Args:
        status (None | TasksListStatusType0 | Unset): open or done
        priority (None | TasksListPriorityType0 | Unset): low, normal or high
        tag (None | str | Unset): has this tag (exact)
        q (None | str | Unset): substring of the title, any case
        due_before (None | str | Unset): due strictly before this RFC 3339 instant
        due_after (None | str | Unset): due strictly after this RFC 3339 instant
        search (None | str | Unset): full-text search in title and description: every word must
            match (English stemming: running finds run), the last word also as a prefix (plan finds
            planning); only letters and digits count, common words such as 'the' are ignored, and a
            search left with no word is 422
        sort (TaskSort | Unset):
        project_id (Literal['none'] | Unset | UUID): in this project (its id), or none for tasks
            without a project
        limit (int | Unset):  Default: 20.
        cursor (None | str | Unset): next_cursor of the previous page

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TaskPage]
    """

    kwargs = _get_kwargs(
        status=status,
        priority=priority,
        tag=tag,
        q=q,
        due_before=due_before,
        due_after=due_after,
        search=search,
        sort=sort,
        project_id=project_id,
        limit=limit,
        cursor=cursor,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    status: None | TasksListStatusType0 | Unset = UNSET,
    priority: None | TasksListPriorityType0 | Unset = UNSET,
    tag: None | str | Unset = UNSET,
    q: None | str | Unset = UNSET,
    due_before: None | str | Unset = UNSET,
    due_after: None | str | Unset = UNSET,
    search: None | str | Unset = UNSET,
    sort: TaskSort | Unset = UNSET,
    project_id: Literal["none"] | Unset | UUID = UNSET,
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
) -> Problem | TaskPage | None:
    """List Tasks

     List the caller's tasks, filtered and sorted, one keyset page at a time.

    Args:
        status (None | TasksListStatusType0 | Unset): open or done
        priority (None | TasksListPriorityType0 | Unset): low, normal or high
        tag (None | str | Unset): has this tag (exact)
        q (None | str | Unset): substring of the title, any case
        due_before (None | str | Unset): due strictly before this RFC 3339 instant
        due_after (None | str | Unset): due strictly after this RFC 3339 instant
        search (None | str | Unset): full-text search in title and description: every word must
            match (English stemming: running finds run), the last word also as a prefix (plan finds
            planning); only letters and digits count, common words such as 'the' are ignored, and a
            search left with no word is 422
        sort (TaskSort | Unset):
        project_id (Literal['none'] | Unset | UUID): in this project (its id), or none for tasks
            without a project
        limit (int | Unset):  Default: 20.
        cursor (None | str | Unset): next_cursor of the previous page

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TaskPage
    """

    return (
        await asyncio_detailed(
            client=client,
            status=status,
            priority=priority,
            tag=tag,
            q=q,
            due_before=due_before,
            due_after=due_after,
            search=search,
            sort=sort,
            project_id=project_id,
            limit=limit,
            cursor=cursor,
        )
    ).parsed
