"""``python -m momentum_shared.outbox``: relay one outbox to the streams given on the command line.

Each service also has ``momentum-<service> relay``, which reads the same from its settings.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from momentum_shared.nats import STREAM_MAX_AGE_SECONDS, STREAM_MAX_BYTES, NatsAuth
from momentum_shared.outbox._relay import (
    DEFAULT_POLL_INTERVAL_SECONDS,
    DEFAULT_RETENTION_SECONDS,
    RelaySettings,
)
from momentum_shared.outbox._standalone import run_standalone


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Relay an outbox to NATS JetStream.")
    parser.add_argument(
        "--service", required=True, help="whose outbox: names the metrics and NATS variables"
    )
    parser.add_argument("--database-url", required=True, help="SQLAlchemy async URL")
    parser.add_argument(
        "--stream", action="append", dest="streams", required=True, help="stream to publish to"
    )
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--poll-interval-seconds", type=float, default=DEFAULT_POLL_INTERVAL_SECONDS
    )
    parser.add_argument("--retention-seconds", type=float, default=DEFAULT_RETENTION_SECONDS)
    parser.add_argument("--stream-replicas", type=int, default=1, help="JetStream replicas")
    parser.add_argument(
        "--stream-max-bytes",
        type=int,
        default=STREAM_MAX_BYTES,
        help="byte limit of a stream this relay creates (never applied to an existing one)",
    )
    parser.add_argument(
        "--stream-max-age-seconds",
        type=int,
        default=STREAM_MAX_AGE_SECONDS,
        help="age limit of a stream this relay creates (never applied to an existing one)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    # The service's own NATS credentials, from its variables (MOMENTUM_<SERVICE>_NATS_…).
    prefix = f"MOMENTUM_{args.service.upper()}_NATS_"
    ca_file = os.environ.get(prefix + "TLS_CA_FILE")
    nats_auth = NatsAuth(
        os.environ.get(prefix + "USER"),
        os.environ.get(prefix + "PASSWORD"),
        Path(ca_file) if ca_file else None,
    )
    settings = RelaySettings(
        nats_url=args.nats_url,
        nats_auth=nats_auth,
        batch_size=args.batch_size,
        poll_interval_seconds=args.poll_interval_seconds,
        retention_seconds=args.retention_seconds,
        stream_replicas=args.stream_replicas,
        stream_max_bytes=args.stream_max_bytes,
        stream_max_age_seconds=args.stream_max_age_seconds,
    )
    asyncio.run(
        run_standalone(
            service=args.service,
            database_url=args.database_url,
            streams=args.streams,
            settings=settings,
        )
    )


if __name__ == "__main__":
    main()
