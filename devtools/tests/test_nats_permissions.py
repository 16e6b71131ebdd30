"""NATS refuses anonymous clients, and each program may touch only its own subjects.

The embedded server of each test has production's users and permissions; each program's
credentials come from its variables (``MOMENTUM_<SERVICE>_NATS_USER``/``_PASSWORD``), as the
services read them. The admin credentials in ``nats_url`` are the test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy, RePublish

from momentum_devtools.natsserver import (
    ADMIN_USER,
    CLUSTER_PASSWORDS,
    EmbeddedNats,
    accounts_config,
)
from momentum_shared.events import (
    AUTH_STREAM,
    CLOUDEVENTS_CONTENT_TYPE,
    TASK_STREAM,
    CloudEvent,
    SessionRevoked,
)
from momentum_shared.nats import NatsAuth, connect, ensure_stream

pytestmark = pytest.mark.nats


@pytest.fixture
def nats_url(nats_server_factory: type[EmbeddedNats], tmp_path: Path) -> str:
    """Always an embedded server with the Momentum users, even if the session names another."""
    return nats_server_factory(tmp_path / "nats").start().url


def bare(url: str) -> str:
    """The URL without the credentials in it."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def password_of(user: str) -> str:
    return os.environ.get(f"MOMENTUM_{user.upper()}_NATS_PASSWORD", "")


class Errors(list[str]):
    """What the server said went wrong on a connection (nats-py's error callback)."""


@contextlib.asynccontextmanager
async def connected_as(url: str, user: str, errors: Errors | None = None) -> AsyncIterator[NATS]:
    """Connect as a program does: its user, its password, its own inbox."""
    seen = errors if errors is not None else Errors()

    async def on_error(exc: Exception) -> None:
        seen.append(str(exc))

    nc = await nats.connect(
        servers=[bare(url)],
        user=user,
        password=password_of(user),
        inbox_prefix=f"_INBOX.{user}",
        allow_reconnect=False,
        connect_timeout=2,
        error_cb=on_error,
    )
    try:
        yield nc
    finally:
        await nc.close()


async def streams_ready(admin_url: str) -> None:
    nc = await nats.connect(admin_url)
    try:
        js = nc.jetstream()
        for stream in (AUTH_STREAM, TASK_STREAM):
            await ensure_stream(js, stream)
    finally:
        await nc.close()


async def subjects_in(admin_url: str, stream: str) -> list[str]:
    nc = await nats.connect(admin_url)
    try:
        info = await nc.jetstream().stream_info(stream)
        return [
            (await nc.jetstream().get_msg(stream, seq)).subject or ""
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
            if info.state.messages
        ]
    finally:
        await nc.close()


def revocation() -> bytes:
    event = CloudEvent.of(
        SessionRevoked(
            user_id=uuid.uuid4(),
            session_id=uuid.uuid4(),
            expires_at=datetime(9999, 1, 1, tzinfo=UTC),
        ),
        source="forged",
    )
    return event.to_json()


def speak_raw(url: str, connect: dict[str, Any]) -> str:
    """A client written by hand: CONNECT, PUB a forged revocation, PING; what the server says."""
    parts = urlsplit(url)
    payload = revocation()
    with socket.create_connection((parts.hostname or "", parts.port or 4222), timeout=2) as sock:
        sock.settimeout(2)
        reply = b""
        deadline = time.monotonic() + 2
        sock.sendall(
            b"CONNECT " + json.dumps(connect).encode() + b"\r\n"
            b"PUB auth.session.revoked " + str(len(payload)).encode() + b"\r\n" + payload + b"\r\n"
            b"PING\r\n"
        )
        while time.monotonic() < deadline and b"PONG" not in reply and b"-ERR" not in reply:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            reply += chunk
    return reply.decode("utf-8", "replace")


async def test_a_client_without_credentials_is_refused(nats_url: str) -> None:
    await streams_ready(nats_url)
    reply = speak_raw(nats_url, {"verbose": False, "pedantic": False})
    assert '"auth_required":true' in reply
    assert "-ERR 'Authorization Violation'" in reply
    assert "PONG" not in reply
    assert await subjects_in(nats_url, AUTH_STREAM) == []


async def test_a_wrong_password_is_refused(nats_url: str) -> None:
    await streams_ready(nats_url)
    wrong = {"verbose": False, "user": "auth", "pass": password_of("auth") + "x"}
    reply = speak_raw(nats_url, wrong)
    assert "-ERR 'Authorization Violation'" in reply
    assert "PONG" not in reply
    assert await subjects_in(nats_url, AUTH_STREAM) == []


@pytest.mark.parametrize(
    ("user", "subject", "stream"),
    [
        ("tasks", "auth.session.revoked", AUTH_STREAM),
        ("auth", "tasks.task.completed", TASK_STREAM),
        ("gateway", "auth.session.revoked", AUTH_STREAM),
        ("gateway", "tasks.task.completed", TASK_STREAM),
        ("analytics", "auth.session.revoked", AUTH_STREAM),
        ("analytics", "tasks.task.completed", TASK_STREAM),
    ],
)
async def test_a_program_cannot_publish_anothers_events(
    nats_url: str, user: str, subject: str, stream: str
) -> None:
    await streams_ready(nats_url)
    errors = Errors()
    async with connected_as(nats_url, user, errors) as nc:
        js = nc.jetstream()
        with pytest.raises(Exception):  # noqa: B017, PT011 - no ack ever comes back
            await js.publish(subject, revocation(), stream=stream, timeout=1.0)
        await nc.publish(subject, revocation())  # a plain publish is refused the same way
        await nc.flush(timeout=2)
        await asyncio.sleep(0.1)
    assert await subjects_in(nats_url, stream) == []  # nothing forged reached the stream
    assert any("permissions violation for publish" in error.lower() for error in errors), errors


async def test_the_gateway_cannot_listen_to_events_or_other_inboxes(nats_url: str) -> None:
    await streams_ready(nats_url)
    received: list[Msg] = []

    async def collect(msg: Msg) -> None:
        received.append(msg)

    errors = Errors()
    async with connected_as(nats_url, "gateway", errors) as gateway:
        await gateway.subscribe("auth.>", cb=collect)
        await gateway.subscribe("_INBOX.>", cb=collect)
        await gateway.flush(timeout=2)
        admin = await nats.connect(nats_url)
        try:
            await admin.jetstream().publish("auth.user.logged_in", b"{}", timeout=2)
            await admin.publish("_INBOX.analytics.x", b"a reply for analytics")
            await admin.flush(timeout=2)
        finally:
            await admin.close()
        await asyncio.sleep(0.3)
    assert received == []
    assert any("permissions violation for subscription" in error.lower() for error in errors)


async def test_a_consumer_cannot_delete_a_stream(nats_url: str) -> None:
    await streams_ready(nats_url)
    for user in ("analytics", "gateway", "tasks"):
        async with connected_as(nats_url, user) as nc:
            with pytest.raises(Exception):  # noqa: B017, PT011
                await nc.jetstream(timeout=1.0).delete_stream(TASK_STREAM)
    nc = await nats.connect(nats_url)
    try:
        assert (await nc.jetstream().stream_info(TASK_STREAM)).config.name == TASK_STREAM
    finally:
        await nc.close()


async def test_a_relay_cannot_rewrite_its_stream_to_republish_into_the_api(nats_url: str) -> None:
    # A republish rule is carried out by the server without any permission check: a relay
    # allowed to update its own stream could forward its messages into any JetStream API
    # subject (purge AUTH_EVENTS, make AUTH_EVENTS source forged revocations, ...).
    await streams_ready(nats_url)
    for user, stream, forged in (
        ("tasks", TASK_STREAM, "tasks.forge"),
        ("auth", AUTH_STREAM, "auth.forge"),
    ):
        async with connected_as(nats_url, user) as nc:
            js = nc.jetstream(timeout=1.0)
            config = (await js.stream_info(stream)).config
            config.republish = RePublish(src=forged, dest="$JS.API.STREAM.PURGE.AUTH_EVENTS")
            with pytest.raises(Exception):  # noqa: B017, PT011
                await js.update_stream(config)
    nc = await nats.connect(nats_url)
    try:
        for stream in (TASK_STREAM, AUTH_STREAM):
            assert (await nc.jetstream().stream_info(stream)).config.republish is None
    finally:
        await nc.close()


# --- each program's real operations still work under its permissions -------------------------


async def publish_as_relay(url: str, user: str, stream: str, subject: str) -> None:
    """What the outbox relay does: ensure its stream (create, then find it as it is), publish."""
    async with connected_as(url, user) as nc:
        js = nc.jetstream(timeout=2.0)
        await ensure_stream(js, stream)
        await ensure_stream(js, stream)  # the second time: info, nothing to change
        event = CloudEvent.of(
            SessionRevoked(
                user_id=uuid.uuid4(),
                session_id=uuid.uuid4(),
                expires_at=datetime.now(UTC) + timedelta(minutes=15),
            ),
            source=f"momentum-{user}",
        )
        headers = {"Content-Type": CLOUDEVENTS_CONTENT_TYPE, "Nats-Msg-Id": event.id}
        ack = await js.publish(subject, event.to_json(), headers=headers)
        assert ack.stream == stream


async def test_the_relays_create_their_streams_and_publish(nats_url: str) -> None:
    await publish_as_relay(nats_url, "auth", AUTH_STREAM, "auth.session.revoked")
    await publish_as_relay(nats_url, "tasks", TASK_STREAM, "tasks.task.completed")
    assert await subjects_in(nats_url, AUTH_STREAM) == ["auth.session.revoked"]
    assert await subjects_in(nats_url, TASK_STREAM) == ["tasks.task.completed"]


@pytest.mark.parametrize("user", ["gateway", "tasks", "analytics"])
async def test_revocations_are_read_with_an_ordered_consumer(nats_url: str, user: str) -> None:
    await publish_as_relay(nats_url, "auth", AUTH_STREAM, "auth.session.revoked")
    received: asyncio.Queue[Msg] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        await received.put(msg)

    errors = Errors()
    async with connected_as(nats_url, user, errors) as nc:
        js = nc.jetstream(timeout=2.0)
        subscription = await js.subscribe(
            "auth.session.revoked",
            stream=AUTH_STREAM,
            cb=collect,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
            idle_heartbeat=0.5,
        )
        first = await asyncio.wait_for(received.get(), timeout=5)
        assert first.subject == "auth.session.revoked"
        info = await subscription.consumer_info()
        assert info.num_pending == 0
        await publish_as_relay(nats_url, "auth", AUTH_STREAM, "auth.session.revoked")
        second = await asyncio.wait_for(received.get(), timeout=5)
        assert second.metadata.sequence.stream == 2
    assert not [error for error in errors if "violation" in error.lower()], errors


async def test_analytics_consumes_acks_and_replays_both_streams(nats_url: str) -> None:
    from momentum_shared.jetstream import ConsumerOptions, JetStreamConsumer

    await publish_as_relay(nats_url, "auth", AUTH_STREAM, "auth.session.revoked")
    await publish_as_relay(nats_url, "tasks", TASK_STREAM, "tasks.task.completed")
    seen: list[tuple[str, int]] = []

    async def handle(stream: str, messages: Sequence[Msg]) -> None:
        for message in messages:
            seen.append((stream, message.metadata.sequence.stream))
            await message.ack()

    options = ConsumerOptions(
        durable="analytics", fetch_timeout=0.2, retry_interval=0.1, lag_interval=0.1
    )
    auth = NatsAuth("analytics", password_of("analytics"))
    consumer = JetStreamConsumer(
        bare(nats_url),
        [AUTH_STREAM, TASK_STREAM],
        handle,
        options,
        service="analytics",
        nats_auth=auth,
    )
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(10):
            while sorted(seen) != [(AUTH_STREAM, 1), (TASK_STREAM, 1)]:
                await asyncio.sleep(0.05)
            status: dict[str, Any] = consumer.status()
            while any(s["ack_pending"] != 0 for s in status["streams"].values()):
                await asyncio.sleep(0.05)
                status = consumer.status()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for stream in (AUTH_STREAM, TASK_STREAM):
        nc = await nats.connect(nats_url)
        try:
            info = await nc.jetstream().consumer_info(stream, "analytics")
            assert (info.num_pending, info.num_ack_pending) == (0, 0)  # acknowledged
        finally:
            await nc.close()
    # A rebuild: an ephemeral consumer per stream, from the start, deleted afterwards.
    seen.clear()
    async with connected_as(nats_url, "analytics") as nc:
        js = nc.jetstream(timeout=2.0)
        await js.account_info()
        assert await consumer.replay(js, AUTH_STREAM) == 1
        assert await consumer.replay(js, TASK_STREAM) == 1
    nc = await nats.connect(nats_url)
    try:
        left = await nc.jetstream().consumers_info(TASK_STREAM)
        assert [c.name for c in left] == ["analytics"]  # the replay consumer was deleted
    finally:
        await nc.close()


# --- the cluster's configuration grants the same ------------------------------------------------

CLUSTER_CONFIGS = ("deploy/k8s/base/nats/nats.conf", "deploy/k8s/overlays/dev/nats.conf")
BEGIN, END = "# BEGIN accounts\n", "# END accounts\n"


@pytest.mark.parametrize("relative", CLUSTER_CONFIGS)
def test_the_cluster_config_has_the_same_users_and_permissions(relative: str) -> None:
    path = Path(__file__).resolve().parents[2] / relative
    text = path.read_text()
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    expected = head + BEGIN + accounts_config(CLUSTER_PASSWORDS) + END + tail
    if os.environ.get("MOMENTUM_WRITE_SPECS") == "1":
        path.write_text(expected)
    assert text == expected, f"{relative} drifted; regenerate it with MOMENTUM_WRITE_SPECS=1"
    assert ADMIN_USER not in CLUSTER_PASSWORDS  # no unrestricted user in a cluster


# --- TLS, as in the cluster ---------------------------------------------------------------------


def certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signed, for 127.0.0.1: (ca.crt, tls.crt, tls.key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "momentum test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nats")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


async def test_a_service_connects_over_tls_with_its_ca_and_credentials(
    nats_server_factory: type[EmbeddedNats], tmp_path: Path
) -> None:
    ca, cert, key = certificates(tmp_path)
    tls = f'tls {{ cert_file: "{cert}", key_file: "{key}", timeout: 2 }}\n'
    server = nats_server_factory(tmp_path / "nats", extra_config=tls).start()
    url = f"tls://127.0.0.1:{server.port}"
    nc = await connect(
        url,
        name="tls-test",
        auth=NatsAuth("tasks", password_of("tasks"), tls_ca_file=ca),
        allow_reconnect=False,
    )
    try:
        js = nc.jetstream(timeout=2.0)
        await ensure_stream(js, TASK_STREAM)
        assert (await js.publish("tasks.task.created", b"{}")).stream == TASK_STREAM
    finally:
        await nc.close()
    # Without TLS the server answers nothing but its demand for it.
    reply = speak_raw(url.replace("tls://", "nats://"), {"user": "tasks", "pass": "x"})
    assert '"tls_required":true' in reply
    assert "PONG" not in reply
