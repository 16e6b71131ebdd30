from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="DailyGoalStreak")


@_attrs_define
class DailyGoalStreak:
    """
    Attributes:
        current (int):
        longest (int):
        met_today (bool):
    """

    current: int
    longest: int
    met_today: bool
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        current = self.current

        longest = self.longest

        met_today = self.met_today

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "current": current,
                "longest": longest,
                "met_today": met_today,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        current = d.pop("current")

        longest = d.pop("longest")

        met_today = d.pop("met_today")

        daily_goal_streak = cls(
            current=current,
            longest=longest,
            met_today=met_today,
        )

        daily_goal_streak.additional_properties = d
        return daily_goal_streak

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
