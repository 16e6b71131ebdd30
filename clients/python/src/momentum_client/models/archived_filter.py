from enum import StrEnum


class ArchivedFilter(StrEnum):
    ANY = "any"
    FALSE = "false"
    TRUE = "true"

    def __str__(self) -> str:
        return str(self.value)
