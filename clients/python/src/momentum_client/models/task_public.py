from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.task_public_priority import TaskPublicPriority
from ..models.task_public_status import TaskPublicStatus

T = TypeVar("T", bound="TaskPublic")


@_attrs_define
class TaskPublic:
    """A task as clients see it.

    Attributes:
        completed_at (None | str):
        created_at (str):
        description (None | str):
        due_at (None | str):
        id (UUID):
        last_completed_at (None | str): the latest completion of this recurring task; null before one
        priority (TaskPublicPriority):
        project_id (None | UUID):
        recurrence (None | str):
        status (TaskPublicStatus):
        tags (list[str]):
        title (str):
        updated_at (str):
        version (int):
    """

    completed_at: str | None
    created_at: str
    description: str | None
    due_at: str | None
    id: UUID
    last_completed_at: str | None
    priority: TaskPublicPriority
    project_id: UUID | None
    recurrence: str | None
    status: TaskPublicStatus
    tags: list[str]
    title: str
    updated_at: str
    version: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        completed_at: str | None
        completed_at = self.completed_at

        created_at = self.created_at

        description: str | None
        description = self.description

        due_at: str | None
        due_at = self.due_at

        id = str(self.id)

        last_completed_at: str | None
        last_completed_at = self.last_completed_at

        priority = self.priority.value

        project_id: str | None
        if isinstance(self.project_id, UUID):
            project_id = str(self.project_id)
        else:
            project_id = self.project_id

        recurrence: str | None
        recurrence = self.recurrence

        status = self.status.value

        tags = self.tags

        title = self.title

        updated_at = self.updated_at

        version = self.version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "completed_at": completed_at,
                "created_at": created_at,
                "description": description,
                "due_at": due_at,
                "id": id,
                "last_completed_at": last_completed_at,
                "priority": priority,
                "project_id": project_id,
                "recurrence": recurrence,
                "status": status,
                "tags": tags,
                "title": title,
                "updated_at": updated_at,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_completed_at(data: object) -> str | None:
            if data is None:
                return data
            return cast(None | str, data)

        completed_at = _parse_completed_at(d.pop("completed_at"))

        created_at = d.pop("created_at")

        def _parse_description(data: object) -> str | None:
            if data is None:
                return data
            return cast(None | str, data)

        description = _parse_description(d.pop("description"))

        def _parse_due_at(data: object) -> str | None:
            if data is None:
                return data
            return cast(None | str, data)

        due_at = _parse_due_at(d.pop("due_at"))

        id = UUID(d.pop("id"))

        def _parse_last_completed_at(data: object) -> str | None:
            if data is None:
                return data
            return cast(None | str, data)

        last_completed_at = _parse_last_completed_at(d.pop("last_completed_at"))

        priority = TaskPublicPriority(d.pop("priority"))

        def _parse_project_id(data: object) -> UUID | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                project_id_type_0 = UUID(data)

                return project_id_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | UUID, data)

        project_id = _parse_project_id(d.pop("project_id"))

        def _parse_recurrence(data: object) -> str | None:
            if data is None:
                return data
            return cast(None | str, data)

        recurrence = _parse_recurrence(d.pop("recurrence"))

        status = TaskPublicStatus(d.pop("status"))

        tags = cast(list[str], d.pop("tags"))

        title = d.pop("title")

        updated_at = d.pop("updated_at")

        version = d.pop("version")

        task_public = cls(
            completed_at=completed_at,
            created_at=created_at,
            description=description,
            due_at=due_at,
            id=id,
            last_completed_at=last_completed_at,
            priority=priority,
            project_id=project_id,
            recurrence=recurrence,
            status=status,
            tags=tags,
            title=title,
            updated_at=updated_at,
            version=version,
        )

        task_public.additional_properties = d
        return task_public

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
