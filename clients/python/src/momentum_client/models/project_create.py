from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ProjectCreate")


@_attrs_define
class ProjectCreate:
    """Body of ``POST /projects``.

    Attributes:
        name (str):
        archived (bool | Unset):  Default: False.
        color (None | str | Unset):
    """

    name: str
    archived: bool | Unset = False
    color: str | Unset | None = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        archived = self.archived

        color: str | Unset | None
        if isinstance(self.color, Unset):
            color = UNSET
        else:
            color = self.color

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
            }
        )
        if archived is not UNSET:
            field_dict["archived"] = archived
        if color is not UNSET:
            field_dict["color"] = color

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = d.pop("name")

        archived = d.pop("archived", UNSET)

        def _parse_color(data: object) -> str | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        color = _parse_color(d.pop("color", UNSET))

        project_create = cls(
            name=name,
            archived=archived,
            color=color,
        )

        return project_create
