"""The deny-list of revoked sessions and its JetStream reader, on a real NATS server."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest

from momentum_devtools.natsserver import EmbeddedNats, nats_server_binary
from momentum_devtools.testing.revocations import eventually, revoke
from momentum_shared.security import RevocationList, RevocationListener


def test_a_revocation_lasts_until_its_tokens_could_not_verify_anyway() -> None:
    now = [1_000_000.0]
    deny = RevocationList(leeway=60, clock=lambda: now[0])
    assert deny.revoke("s1", now[0] + 900)
    assert not deny.revoke("s2", now[0] - 61)  # already past: nothing to remember
    assert deny.is_revoked("s1")
    assert not deny.is_revoked("s2")
    assert not deny.is_revoked(None)
    session = uuid.uuid4()
    assert deny.revoke(str(session), now[0] + 900)
    assert deny.is_revoked(str(session).upper())  # however the token spells it
    assert deny.is_revoked(session.hex)
    now[0] += 900 + 59
    assert deny.is_revoked("s1")  # still inside the verifier's leeway
    now[0] += 2
    assert not deny.is_revoked("s1")
    assert not deny.is_revoked(str(session))
    assert len(deny) == 0


@pytest.mark.nats
async def test_the_replay_starts_at_the_horizon_not_at_the_start_of_the_stream(
    nats_url: str,
) -> None:
    user = uuid.uuid4()
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    # Both tokens would still verify: only the horizon keeps the old revocation out.
    await revoke(nats_url, user, old, expires_in=3600)
    await asyncio.sleep(0.3)
    horizon = time.time()
    await asyncio.sleep(0.3)
    await revoke(nats_url, user, recent, expires_in=3600)
    deny = RevocationList(leeway=0)
    listener = RevocationListener(
        deny,
        nats_url=nats_url,
        name="test",
        horizon=60.0,
        retry_interval=0.1,
        heartbeat=0.5,
        clock=lambda: horizon + 60.0,
    )
    listener.start()
    try:

        async def caught_up() -> bool:
            return listener.caught_up

        await eventually(caught_up)
        await listener.check_caught_up()
        assert listener.events == 1  # the old revocation was never delivered
        assert deny.is_revoked(recent)
        assert not deny.is_revoked(old)
    finally:
        await listener.aclose()


@pytest.mark.nats
async def test_unready_until_every_revocation_in_the_stream_was_read(nats_url: str) -> None:
    user = uuid.uuid4()
    sessions = [str(uuid.uuid4()) for _ in range(50)]
    for sid in sessions:
        await revoke(nats_url, user, sid)
    deny = RevocationList()
    listener = RevocationListener(
        deny, nats_url=nats_url, name="test", horizon=3600.0, retry_interval=0.1
    )
    with pytest.raises(RuntimeError, match="not caught up"):
        await listener.check_caught_up()
    listener.start()
    try:

        async def caught_up() -> bool:
            return listener.caught_up

        await eventually(caught_up)
        # Caught up means read: every session of the stream is already refused.
        assert listener.events == len(sessions)
        assert all(deny.is_revoked(sid) for sid in sessions)
    finally:
        await listener.aclose()


class RestrictedNats(EmbeddedNats):
    """A server where ``reader`` may consume but not fetch single messages from a stream."""

    def command(self) -> list[str]:
        config = self.store_dir.parent / f"restricted-{self.port}.conf"
        config.write_text(
            f'listen: "127.0.0.1:{self.port}"\n'
            f"jetstream: {{ store_dir: {json.dumps(str(self.store_dir))} }}\n"
            """
            authorization {
              users = [
                {user: admin, password: admin}
                {user: reader, password: reader, permissions: {
                  publish: {
                    allow: [">"]
                    deny: ["$JS.API.STREAM.MSG.GET.>", "$JS.API.DIRECT.GET.>"]
                  }
                  subscribe: {allow: [">"]}
                }}
              ]
            }
            """
        )
        return [nats_server_binary(), "-c", str(config)]


@pytest.mark.nats
async def test_without_the_message_lookup_the_pending_count_decides_the_catch_up(
    tmp_path: Path,
) -> None:
    user = uuid.uuid4()
    sessions = [str(uuid.uuid4()) for _ in range(20)]
    with RestrictedNats(tmp_path / "nats") as server:
        admin = f"nats://admin:admin@127.0.0.1:{server.port}"
        for sid in sessions:
            await revoke(admin, user, sid)
        deny = RevocationList()
        listener = RevocationListener(
            deny,
            nats_url=f"nats://reader:reader@127.0.0.1:{server.port}",
            name="test",
            horizon=3600.0,
            connect_timeout=1.0,
            retry_interval=0.1,
        )
        listener.start()
        try:

            async def caught_up() -> bool:
                return listener.caught_up

            await eventually(caught_up)
            assert listener.events == len(sessions)
            assert all(deny.is_revoked(sid) for sid in sessions)
        finally:
            await listener.aclose()
