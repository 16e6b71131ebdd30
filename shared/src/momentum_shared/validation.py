"""Validators for text a client sends and a database must store, and for time zone names."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


def storable_text(value: str) -> str:
    """Refuse what a database cannot store: a 422 at the edge instead of a driver error.

    PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded at all.
    """
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


class StorableTextSchema:
    """Annotation that says in the JSON schema what ``storable_text`` checks: no NUL.

    ``Annotated[str, AfterValidator(storable_text), StorableTextSchema()]``; a client (or a
    generator of test data) then knows a NUL is refused before it sends one.
    """

    pattern = "^[^\\x00]*$"

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


def valid_timezone(name: str | None) -> str | None:
    """``name`` when it names a real IANA zone (at most 64 characters), else ``None``."""
    if not name or len(name) > 64:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name
