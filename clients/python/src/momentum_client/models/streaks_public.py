from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.streak import Streak


T = TypeVar("T", bound="StreaksPublic")


@_attrs_define
class StreaksPublic:
    """
    Attributes:
        completion (Streak):
        login (Streak):
        timezone (str):
        today (datetime.date):
        user_id (UUID):
    """

    completion: Streak
    login: Streak
    timezone: str
    today: datetime.date
    user_id: UUID
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        completion = self.completion.to_dict()

        login = self.login.to_dict()

        timezone = self.timezone

        today = self.today.isoformat()

        user_id = str(self.user_id)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "completion": completion,
                "login": login,
                "timezone": timezone,
                "today": today,
                "user_id": user_id,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.streak import Streak

        d = dict(src_dict)
        completion = Streak.from_dict(d.pop("completion"))

        login = Streak.from_dict(d.pop("login"))

        timezone = d.pop("timezone")

        today = datetime.date.fromisoformat(d.pop("today"))

        user_id = UUID(d.pop("user_id"))

        streaks_public = cls(
            completion=completion,
            login=login,
            timezone=timezone,
            today=today,
            user_id=user_id,
        )

        streaks_public.additional_properties = d
        return streaks_public

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
