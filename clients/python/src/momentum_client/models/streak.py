from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Streak")


@_attrs_define
class Streak:
    """
    Attributes:
        current (int):
        last_active_date (datetime.date | None):
        longest (int):
    """

    current: int
    last_active_date: datetime.date | None
    longest: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        current = self.current

        last_active_date: str | None
        if isinstance(self.last_active_date, datetime.date):
            last_active_date = self.last_active_date.isoformat()
        else:
            last_active_date = self.last_active_date

        longest = self.longest

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "current": current,
                "last_active_date": last_active_date,
                "longest": longest,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        current = d.pop("current")

        def _parse_last_active_date(data: object) -> datetime.date | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                last_active_date_type_0 = datetime.date.fromisoformat(data)

                return last_active_date_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.date | None, data)

        last_active_date = _parse_last_active_date(d.pop("last_active_date"))

        longest = d.pop("longest")

        streak = cls(
            current=current,
            last_active_date=last_active_date,
            longest=longest,
        )

        streak.additional_properties = d
        return streak

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
