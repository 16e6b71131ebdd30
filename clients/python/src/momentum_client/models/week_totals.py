from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.completed_by_priority import CompletedByPriority


T = TypeVar("T", bound="WeekTotals")


@_attrs_define
class WeekTotals:
    """Report totals (docs/spec/analytics.md, rules 3 to 6, 10 and 11).

    Attributes:
        active_days (int):
        completed_by_priority (CompletedByPriority):
        completed_late (int):
        completed_on_time (int):
        completed_undated (int):
        logins (int):
        tasks_completed (int):
        tasks_created (int):
    """

    active_days: int
    completed_by_priority: CompletedByPriority
    completed_late: int
    completed_on_time: int
    completed_undated: int
    logins: int
    tasks_completed: int
    tasks_created: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        active_days = self.active_days

        completed_by_priority = self.completed_by_priority.to_dict()

        completed_late = self.completed_late

        completed_on_time = self.completed_on_time

        completed_undated = self.completed_undated

        logins = self.logins

        tasks_completed = self.tasks_completed

        tasks_created = self.tasks_created

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "active_days": active_days,
                "completed_by_priority": completed_by_priority,
                "completed_late": completed_late,
                "completed_on_time": completed_on_time,
                "completed_undated": completed_undated,
                "logins": logins,
                "tasks_completed": tasks_completed,
                "tasks_created": tasks_created,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.completed_by_priority import CompletedByPriority

        d = dict(src_dict)
        active_days = d.pop("active_days")

        completed_by_priority = CompletedByPriority.from_dict(d.pop("completed_by_priority"))

        completed_late = d.pop("completed_late")

        completed_on_time = d.pop("completed_on_time")

        completed_undated = d.pop("completed_undated")

        logins = d.pop("logins")

        tasks_completed = d.pop("tasks_completed")

        tasks_created = d.pop("tasks_created")

        week_totals = cls(
            active_days=active_days,
            completed_by_priority=completed_by_priority,
            completed_late=completed_late,
            completed_on_time=completed_on_time,
            completed_undated=completed_undated,
            logins=logins,
            tasks_completed=tasks_completed,
            tasks_created=tasks_created,
        )

        week_totals.additional_properties = d
        return week_totals

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
