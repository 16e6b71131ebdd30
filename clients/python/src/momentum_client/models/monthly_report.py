from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.day_report import DayReport
    from ..models.previous_month import PreviousMonth
    from ..models.week_streaks import WeekStreaks
    from ..models.week_totals import WeekTotals


T = TypeVar("T", bound="MonthlyReport")


@_attrs_define
class MonthlyReport:
    """
    Attributes:
        days (list[DayReport]):
        end_date (datetime.date):
        generated_at (str):
        month (str):
        previous_month (PreviousMonth):
        start_date (datetime.date):
        streaks (WeekStreaks):
        timezone (str):
        totals (WeekTotals): Report totals (docs/spec/analytics.md, rules 3 to 6, 10 and 11).
        user_id (UUID):
    """

    days: list[DayReport]
    end_date: datetime.date
    generated_at: str
    month: str
    previous_month: PreviousMonth
    start_date: datetime.date
    streaks: WeekStreaks
    timezone: str
    totals: WeekTotals
    user_id: UUID
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        days = []
        for days_item_data in self.days:
            days_item = days_item_data.to_dict()
            days.append(days_item)

        end_date = self.end_date.isoformat()

        generated_at = self.generated_at

        month = self.month

        previous_month = self.previous_month.to_dict()

        start_date = self.start_date.isoformat()

        streaks = self.streaks.to_dict()

        timezone = self.timezone

        totals = self.totals.to_dict()

        user_id = str(self.user_id)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "days": days,
                "end_date": end_date,
                "generated_at": generated_at,
                "month": month,
                "previous_month": previous_month,
                "start_date": start_date,
                "streaks": streaks,
                "timezone": timezone,
                "totals": totals,
                "user_id": user_id,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.day_report import DayReport
        from ..models.previous_month import PreviousMonth
        from ..models.week_streaks import WeekStreaks
        from ..models.week_totals import WeekTotals

        d = dict(src_dict)
        days = []
        _days = d.pop("days")
        for days_item_data in _days:
            days_item = DayReport.from_dict(days_item_data)

            days.append(days_item)

        end_date = datetime.date.fromisoformat(d.pop("end_date"))

        generated_at = d.pop("generated_at")

        month = d.pop("month")

        previous_month = PreviousMonth.from_dict(d.pop("previous_month"))

        start_date = datetime.date.fromisoformat(d.pop("start_date"))

        streaks = WeekStreaks.from_dict(d.pop("streaks"))

        timezone = d.pop("timezone")

        totals = WeekTotals.from_dict(d.pop("totals"))

        user_id = UUID(d.pop("user_id"))

        monthly_report = cls(
            days=days,
            end_date=end_date,
            generated_at=generated_at,
            month=month,
            previous_month=previous_month,
            start_date=start_date,
            streaks=streaks,
            timezone=timezone,
            totals=totals,
            user_id=user_id,
        )

        monthly_report.additional_properties = d
        return monthly_report

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
