from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="CalendarDay")


@_attrs_define
class CalendarDay:
    """
    Attributes:
        date (datetime.date):
        level (int):
        logins (int):
        tasks_completed (int):
        tasks_created (int):
    """

    date: datetime.date
    level: int
    logins: int
    tasks_completed: int
    tasks_created: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        date = self.date.isoformat()

        level = self.level

        logins = self.logins

        tasks_completed = self.tasks_completed

        tasks_created = self.tasks_created

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "date": date,
                "level": level,
                "logins": logins,
                "tasks_completed": tasks_completed,
                "tasks_created": tasks_created,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        date = datetime.date.fromisoformat(d.pop("date"))

        level = d.pop("level")

        logins = d.pop("logins")

        tasks_completed = d.pop("tasks_completed")

        tasks_created = d.pop("tasks_created")

        calendar_day = cls(
            date=date,
            level=level,
            logins=logins,
            tasks_completed=tasks_completed,
            tasks_created=tasks_created,
        )

        calendar_day.additional_properties = d
        return calendar_day

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
