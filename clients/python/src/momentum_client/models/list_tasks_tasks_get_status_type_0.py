from enum import StrEnum


class ListTasksTasksGetStatusType0(StrEnum):
    DONE = "done"
    OPEN = "open"

    def __str__(self) -> str:
        return str(self.value)
