from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Bucket")


@_attrs_define
class Bucket:
    """
    Attributes:
        active_days (int):
        end (datetime.date):
        logins (int):
        start (datetime.date):
        tasks_completed (int):
        tasks_created (int):
    """

    active_days: int
    end: datetime.date
    logins: int
    start: datetime.date
    tasks_completed: int
    tasks_created: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        active_days = self.active_days

        end = self.end.isoformat()

        logins = self.logins

        start = self.start.isoformat()

        tasks_completed = self.tasks_completed

        tasks_created = self.tasks_created

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "active_days": active_days,
                "end": end,
                "logins": logins,
                "start": start,
                "tasks_completed": tasks_completed,
                "tasks_created": tasks_created,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        active_days = d.pop("active_days")

        end = datetime.date.fromisoformat(d.pop("end"))

        logins = d.pop("logins")

        start = datetime.date.fromisoformat(d.pop("start"))

        tasks_completed = d.pop("tasks_completed")

        tasks_created = d.pop("tasks_created")

        bucket = cls(
            active_days=active_days,
            end=end,
            logins=logins,
            start=start,
            tasks_completed=tasks_completed,
            tasks_created=tasks_created,
        )

        bucket.additional_properties = d
        return bucket

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
