"""Tables of the tasks service."""

from __future__ import annotations

from momentum_shared.outbox import OutboxEvent

__all__ = ["OutboxEvent"]
