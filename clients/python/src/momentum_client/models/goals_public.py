from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.daily_goal_streak import DailyGoalStreak
    from ..models.weekly_goal_streak import WeeklyGoalStreak


T = TypeVar("T", bound="GoalsPublic")


@_attrs_define
class GoalsPublic:
    """
    Attributes:
        daily_goal (DailyGoalStreak):
        daily_tasks (int | None):
        weekly_goal (WeeklyGoalStreak):
        weekly_tasks (int | None):
    """

    daily_goal: DailyGoalStreak
    daily_tasks: int | None
    weekly_goal: WeeklyGoalStreak
    weekly_tasks: int | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        daily_goal = self.daily_goal.to_dict()

        daily_tasks: int | None
        daily_tasks = self.daily_tasks

        weekly_goal = self.weekly_goal.to_dict()

        weekly_tasks: int | None
        weekly_tasks = self.weekly_tasks

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "daily_goal": daily_goal,
                "daily_tasks": daily_tasks,
                "weekly_goal": weekly_goal,
                "weekly_tasks": weekly_tasks,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.daily_goal_streak import DailyGoalStreak
        from ..models.weekly_goal_streak import WeeklyGoalStreak

        d = dict(src_dict)
        daily_goal = DailyGoalStreak.from_dict(d.pop("daily_goal"))

        def _parse_daily_tasks(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        daily_tasks = _parse_daily_tasks(d.pop("daily_tasks"))

        weekly_goal = WeeklyGoalStreak.from_dict(d.pop("weekly_goal"))

        def _parse_weekly_tasks(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        weekly_tasks = _parse_weekly_tasks(d.pop("weekly_tasks"))

        goals_public = cls(
            daily_goal=daily_goal,
            daily_tasks=daily_tasks,
            weekly_goal=weekly_goal,
            weekly_tasks=weekly_tasks,
        )

        goals_public.additional_properties = d
        return goals_public

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
