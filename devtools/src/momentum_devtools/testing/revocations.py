"""Publishing ``auth.session.revoked`` as auth does, for the tests of whoever follows it."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable

import nats

from momentum_shared.events import AUTH_STREAM, CLOUDEVENTS_CONTENT_TYPE, CloudEvent, SessionRevoked
from momentum_shared.nats import ensure_stream


async def publish_raw(nats_url: str, payload: bytes, *, create_stream: bool = True) -> None:
    """Publish ``payload`` on the revocation subject (creating AUTH_EVENTS, as auth would)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        if create_stream:
            await ensure_stream(js, AUTH_STREAM)
        await js.publish(
            SessionRevoked.event_type,
            payload,
            headers={"Content-Type": CLOUDEVENTS_CONTENT_TYPE, "Nats-Msg-Id": str(uuid.uuid4())},
        )
    finally:
        await nc.close()


async def revoke(nats_url: str, user: uuid.UUID, sid: str, *, expires_in: float = 900.0) -> None:
    """Publish the revocation of session ``sid``, whose last token expires in ``expires_in``."""
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in)
    event = CloudEvent.of(
        SessionRevoked(user_id=user, session_id=uuid.UUID(sid), expires_at=expires_at),
        source="/momentum/auth",
        subject=str(user),
    )
    await publish_raw(nats_url, event.to_json())


async def eventually(check: Callable[[], Awaitable[bool]], *, patience: float = 10.0) -> None:
    """Poll until ``check`` holds (patience is generous: this is not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.02)
