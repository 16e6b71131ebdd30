from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.task_change import TaskChange
    from ..models.task_deletion import TaskDeletion


T = TypeVar("T", bound="ChangesPage")


@_attrs_define
class ChangesPage:
    """One page of ``GET /tasks/changes``; pass ``next_since`` back as ``since``.

    Attributes:
        changes (list[TaskChange | TaskDeletion]):
        has_more (bool):
        next_since (str):
    """

    changes: list[TaskChange | TaskDeletion]
    has_more: bool
    next_since: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.task_change import TaskChange

        changes = []
        for changes_item_data in self.changes:
            changes_item: dict[str, Any]
            if isinstance(changes_item_data, TaskChange):
                changes_item = changes_item_data.to_dict()
            else:
                changes_item = changes_item_data.to_dict()

            changes.append(changes_item)

        has_more = self.has_more

        next_since = self.next_since

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "changes": changes,
                "has_more": has_more,
                "next_since": next_since,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.task_change import TaskChange
        from ..models.task_deletion import TaskDeletion

        d = dict(src_dict)
        changes = []
        _changes = d.pop("changes")
        for changes_item_data in _changes:

            def _parse_changes_item(data: object) -> TaskChange | TaskDeletion:
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    changes_item_type_0 = TaskChange.from_dict(data)

                    return changes_item_type_0
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                if not isinstance(data, dict):
                    raise TypeError()
                changes_item_type_1 = TaskDeletion.from_dict(data)

                return changes_item_type_1

            changes_item = _parse_changes_item(changes_item_data)

            changes.append(changes_item)

        has_more = d.pop("has_more")

        next_since = d.pop("next_since")

        changes_page = cls(
            changes=changes,
            has_more=has_more,
            next_since=next_since,
        )

        changes_page.additional_properties = d
        return changes_page

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
