from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.task_public import TaskPublic


T = TypeVar("T", bound="BatchResult")


@_attrs_define
class BatchResult:
    """What one operation did: its status as the single-task route answers it, and the task.

    Attributes:
        index (int):
        status (int):
        task (None | TaskPublic | Unset): absent for delete
    """

    index: int
    status: int
    task: TaskPublic | Unset | None = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.task_public import TaskPublic

        index = self.index

        status = self.status

        task: dict[str, Any] | Unset | None
        if isinstance(self.task, Unset):
            task = UNSET
        elif isinstance(self.task, TaskPublic):
            task = self.task.to_dict()
        else:
            task = self.task

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "index": index,
                "status": status,
            }
        )
        if task is not UNSET:
            field_dict["task"] = task

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.task_public import TaskPublic

        d = dict(src_dict)
        index = d.pop("index")

        status = d.pop("status")

        def _parse_task(data: object) -> TaskPublic | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                task_type_0 = TaskPublic.from_dict(data)

                return task_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TaskPublic | Unset, data)

        task = _parse_task(d.pop("task", UNSET))

        batch_result = cls(
            index=index,
            status=status,
            task=task,
        )

        batch_result.additional_properties = d
        return batch_result

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
