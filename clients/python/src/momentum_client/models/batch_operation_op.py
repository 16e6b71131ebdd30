from enum import StrEnum


class BatchOperationOp(StrEnum):
    COMPLETE = "complete"
    CREATE = "create"
    DELETE = "delete"
    REOPEN = "reopen"
    UPDATE = "update"

    def __str__(self) -> str:
        return str(self.value)
