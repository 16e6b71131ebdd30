"""Tables of the analytics service."""

from __future__ import annotations
