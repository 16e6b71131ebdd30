"""Opaque, signed keyset cursors for ``GET /tasks`` and ``GET /projects``.

A cursor names the last row of a page by its sort key and id. It is signed (HMAC-SHA256)
and bound to the owner, the sort and the filters it was issued for, so a tampered,
foreign or mismatched cursor is a 400 rather than a page of the wrong rows. Even an
accepted cursor never widens a query: the owner filter comes from the token, not from it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from momentum_shared.errors import BadRequest
from momentum_tasks.schemas import TaskFilters, TaskSort

_VERSION = 1
MAX_CURSOR_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class Position:
    """Where the previous page ended: its last row's sort key and id (the key is the
    search score for ``sort=relevance``, a timestamp otherwise)."""

    key: datetime | float
    id: uuid.UUID


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _fingerprint(filters: TaskFilters) -> str:
    values = filters.model_dump(mode="json")
    for name in ("project_id", "search"):
        if values.get(name) is None:
            del values[name]  # the cursors issued before the filter existed stay valid
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:18]

    def encode(
        self, *, owner_id: uuid.UUID, sort: TaskSort, filters: TaskFilters, position: Position
    ) -> str:
        payload = {
            "v": _VERSION,
            "o": str(owner_id),
            "s": sort.value,
            "f": _fingerprint(filters),
            "k": (
                position.key
                if isinstance(position.key, float)
                else position.key.astimezone(UTC).isoformat()
            ),
            "i": str(position.id),
        }
        return self._seal(payload)

    def _seal(self, payload: dict[str, object]) -> str:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._sign(body))}"

    def _open(self, cursor: str) -> dict[str, object]:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        body_text, _, signature_text = cursor.partition(".")
        body = _unb64(body_text)
        if not hmac.compare_digest(self._sign(body), _unb64(signature_text)):
            raise ValueError("bad signature")
        payload = json.loads(body)
        if not isinstance(payload, dict) or payload.get("v") != _VERSION:
            raise ValueError("unknown version")
        return payload

    def encode_name(self, *, owner_id: uuid.UUID, listing: str, name: str) -> str:
        """A cursor after ``name`` in a list ordered by name (``listing`` names its filter)."""
        return self._seal({"v": _VERSION, "o": str(owner_id), "l": listing, "n": name})

    def decode_name(self, cursor: str, *, owner_id: uuid.UUID, listing: str) -> str:
        """The name in ``cursor``; 400 when it is malformed, tampered or not for this list."""
        try:
            payload = self._open(cursor)
            if payload.get("o") != str(owner_id) or payload.get("l") != listing:
                raise ValueError("issued for another user or list")
            name = payload.get("n")
            if not isinstance(name, str):
                raise ValueError("no name")
            return name
        except (ValueError, binascii.Error):
            raise BadRequest(
                "the cursor is not valid for this list; start again without a cursor"
            ) from None

    def encode_since(self, *, owner_id: uuid.UUID, seq: int, issued_at: datetime) -> str:
        """A changes-feed token: where the client's copy stands, and when it was told so."""
        payload = {"v": _VERSION, "o": str(owner_id), "q": seq, "t": int(issued_at.timestamp())}
        return self._seal(payload)

    def decode_since(self, token: str, *, owner_id: uuid.UUID) -> tuple[int, datetime] | None:
        """The sequence number and issue time in ``token``; ``None`` when it is not one of ours."""
        try:
            payload = self._open(token)
            seq, issued = payload.get("q"), payload.get("t")
            if payload.get("o") != str(owner_id):
                return None
            if not isinstance(seq, int) or not isinstance(issued, int) or seq < -1:
                return None
            return seq, datetime.fromtimestamp(issued, UTC)
        except (ValueError, binascii.Error, OverflowError, OSError):
            return None

    def decode(
        self, cursor: str, *, owner_id: uuid.UUID, sort: TaskSort, filters: TaskFilters
    ) -> Position:
        """The position in ``cursor``; 400 when it is malformed, tampered or not for this query."""
        try:
            payload = self._open(cursor)
            if payload.get("o") != str(owner_id):
                raise ValueError("issued to another user")
            if payload.get("s") != sort.value or payload.get("f") != _fingerprint(filters):
                raise ValueError("issued for another sort or filter")
            task_id = uuid.UUID(str(payload["i"]))
            if sort is TaskSort.relevance:
                # A float, exactly as the database scored the row (JSON keeps every bit).
                score = payload["k"]
                if not isinstance(score, float) or not math.isfinite(score):
                    raise ValueError("not a score")
                return Position(key=score, id=task_id)
            key = datetime.fromisoformat(str(payload["k"]))
            if key.tzinfo is None:
                raise ValueError("naive key")
            return Position(key=key.astimezone(UTC), id=task_id)
        except (ValueError, KeyError, TypeError, OverflowError, binascii.Error):
            raise BadRequest(
                "the cursor is not valid for this list; start again without a cursor"
            ) from None
