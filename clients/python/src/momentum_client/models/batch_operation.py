from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.batch_operation_op import BatchOperationOp
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.batch_operation_data_type_0 import BatchOperationDataType0


T = TypeVar("T", bound="BatchOperation")


@_attrs_define
class BatchOperation:
    """One operation of ``POST /tasks/batch``; ``data`` is validated when its turn comes.

    Attributes:
        op (BatchOperationOp):
        data (BatchOperationDataType0 | None | Unset): the body of POST /tasks (create) or of PATCH /tasks/{id}
            (update); absent for the other operations
        id (None | str | Unset): the task (update, complete, reopen, delete); absent for create
        if_match (None | str | Unset): as the If-Match header, for example "\\"3\\"" (not for create)
    """

    op: BatchOperationOp
    data: BatchOperationDataType0 | Unset | None = UNSET
    id: str | Unset | None = UNSET
    if_match: str | Unset | None = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.batch_operation_data_type_0 import BatchOperationDataType0

        op = self.op.value

        data: dict[str, Any] | Unset | None
        if isinstance(self.data, Unset):
            data = UNSET
        elif isinstance(self.data, BatchOperationDataType0):
            data = self.data.to_dict()
        else:
            data = self.data

        id: str | Unset | None
        if isinstance(self.id, Unset):
            id = UNSET
        else:
            id = self.id

        if_match: str | Unset | None
        if isinstance(self.if_match, Unset):
            if_match = UNSET
        else:
            if_match = self.if_match

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "op": op,
            }
        )
        if data is not UNSET:
            field_dict["data"] = data
        if id is not UNSET:
            field_dict["id"] = id
        if if_match is not UNSET:
            field_dict["if_match"] = if_match

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.batch_operation_data_type_0 import BatchOperationDataType0

        d = dict(src_dict)
        op = BatchOperationOp(d.pop("op"))

        def _parse_data(data: object) -> BatchOperationDataType0 | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                data_type_0 = BatchOperationDataType0.from_dict(data)

                return data_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(BatchOperationDataType0 | None | Unset, data)

        data = _parse_data(d.pop("data", UNSET))

        def _parse_id(data: object) -> str | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        id = _parse_id(d.pop("id", UNSET))

        def _parse_if_match(data: object) -> str | Unset | None:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        if_match = _parse_if_match(d.pop("if_match", UNSET))

        batch_operation = cls(
            op=op,
            data=data,
            id=id,
            if_match=if_match,
        )

        return batch_operation
