from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.range_report_group import RangeReportGroup

if TYPE_CHECKING:
    from ..models.bucket import Bucket
    from ..models.week_totals import WeekTotals


T = TypeVar("T", bound="RangeReport")


@_attrs_define
class RangeReport:
    """
    Attributes:
        buckets (list[Bucket]):
        from_ (datetime.date):
        group (RangeReportGroup):
        timezone (str):
        to (datetime.date):
        totals (WeekTotals): Report totals (docs/spec/analytics.md, rules 3 to 6, 10 and 11).
    """

    buckets: list[Bucket]
    from_: datetime.date
    group: RangeReportGroup
    timezone: str
    to: datetime.date
    totals: WeekTotals
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        buckets = []
        for buckets_item_data in self.buckets:
            buckets_item = buckets_item_data.to_dict()
            buckets.append(buckets_item)

        from_ = self.from_.isoformat()

        group = self.group.value

        timezone = self.timezone

        to = self.to.isoformat()

        totals = self.totals.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "buckets": buckets,
                "from": from_,
                "group": group,
                "timezone": timezone,
                "to": to,
                "totals": totals,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.bucket import Bucket
        from ..models.week_totals import WeekTotals

        d = dict(src_dict)
        buckets = []
        _buckets = d.pop("buckets")
        for buckets_item_data in _buckets:
            buckets_item = Bucket.from_dict(buckets_item_data)

            buckets.append(buckets_item)

        from_ = datetime.date.fromisoformat(d.pop("from"))

        group = RangeReportGroup(d.pop("group"))

        timezone = d.pop("timezone")

        to = datetime.date.fromisoformat(d.pop("to"))

        totals = WeekTotals.from_dict(d.pop("totals"))

        range_report = cls(
            buckets=buckets,
            from_=from_,
            group=group,
            timezone=timezone,
            to=to,
            totals=totals,
        )

        range_report.additional_properties = d
        return range_report

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
