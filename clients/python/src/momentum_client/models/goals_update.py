from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="GoalsUpdate")


@_attrs_define
class GoalsUpdate:
    """The body of ``PUT /analytics/goals``: the whole document (a missing member is null).

    Attributes:
        daily_tasks (int | None | Unset):
        weekly_tasks (int | None | Unset):
    """

    daily_tasks: int | Unset | None = UNSET
    weekly_tasks: int | Unset | None = UNSET

    def to_dict(self) -> dict[str, Any]:
        daily_tasks: int | Unset | None
        if isinstance(self.daily_tasks, Unset):
            daily_tasks = UNSET
        else:
            daily_tasks = self.daily_tasks

        weekly_tasks: int | Unset | None
        if isinstance(self.weekly_tasks, Unset):
            weekly_tasks = UNSET
        else:
            weekly_tasks = self.weekly_tasks

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if daily_tasks is not UNSET:
            field_dict["daily_tasks"] = daily_tasks
        if weekly_tasks is not UNSET:
            field_dict["weekly_tasks"] = weekly_tasks

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_daily_tasks(data: object) -> int | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        daily_tasks = _parse_daily_tasks(d.pop("daily_tasks", UNSET))

        def _parse_weekly_tasks(data: object) -> int | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        weekly_tasks = _parse_weekly_tasks(d.pop("weekly_tasks", UNSET))

        goals_update = cls(
            daily_tasks=daily_tasks,
            weekly_tasks=weekly_tasks,
        )

        return goals_update
