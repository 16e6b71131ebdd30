from enum import StrEnum


class TasksListStatusType0(StrEnum):
    DONE = "done"
    OPEN = "open"

    def __str__(self) -> str:
        return str(self.value)
