from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ProjectUpdate")


@_attrs_define
class ProjectUpdate:
    """Body of ``PATCH /projects/{id}``: only the fields present change.

    Attributes:
        archived (bool | Unset):
        color (None | str | Unset):
        name (str | Unset):
    """

    archived: bool | Unset = UNSET
    color: str | Unset | None = UNSET
    name: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        archived = self.archived

        color: str | Unset | None
        if isinstance(self.color, Unset):
            color = UNSET
        else:
            color = self.color

        name = self.name

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if archived is not UNSET:
            field_dict["archived"] = archived
        if color is not UNSET:
            field_dict["color"] = color
        if name is not UNSET:
            field_dict["name"] = name

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        archived = d.pop("archived", UNSET)

        def _parse_color(data: object) -> str | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        color = _parse_color(d.pop("color", UNSET))

        name = d.pop("name", UNSET)

        project_update = cls(
            archived=archived,
            color=color,
            name=name,
        )

        return project_update
