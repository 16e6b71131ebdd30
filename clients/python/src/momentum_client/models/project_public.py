from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="ProjectPublic")


@_attrs_define
class ProjectPublic:
    """A project as clients see it.

    Attributes:
        archived (bool):
        color (None | str):
        created_at (str):
        id (UUID):
        name (str):
        updated_at (str):
        version (int):
    """

    archived: bool
    color: str | None
    created_at: str
    id: UUID
    name: str
    updated_at: str
    version: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        archived = self.archived

        color: str | None
        color = self.color

        created_at = self.created_at

        id = str(self.id)

        name = self.name

        updated_at = self.updated_at

        version = self.version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "archived": archived,
                "color": color,
                "created_at": created_at,
                "id": id,
                "name": name,
                "updated_at": updated_at,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        archived = d.pop("archived")

        def _parse_color(data: object) -> str | None:
            if data is None:
                return data
            return cast(None | str, data)

        color = _parse_color(d.pop("color"))

        created_at = d.pop("created_at")

        id = UUID(d.pop("id"))

        name = d.pop("name")

        updated_at = d.pop("updated_at")

        version = d.pop("version")

        project_public = cls(
            archived=archived,
            color=color,
            created_at=created_at,
            id=id,
            name=name,
            updated_at=updated_at,
            version=version,
        )

        project_public.additional_properties = d
        return project_public

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
