"""HTTP routes of the tasks service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
