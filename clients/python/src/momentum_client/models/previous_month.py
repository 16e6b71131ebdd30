from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.week_totals import WeekTotals


T = TypeVar("T", bound="PreviousMonth")


@_attrs_define
class PreviousMonth:
    """
    Attributes:
        month (str):
        totals (WeekTotals): Report totals (docs/spec/analytics.md, rules 3 to 6, 10 and 11).
    """

    month: str
    totals: WeekTotals
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        month = self.month

        totals = self.totals.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "month": month,
                "totals": totals,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.week_totals import WeekTotals

        d = dict(src_dict)
        month = d.pop("month")

        totals = WeekTotals.from_dict(d.pop("totals"))

        previous_month = cls(
            month=month,
            totals=totals,
        )

        previous_month.additional_properties = d
        return previous_month

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
