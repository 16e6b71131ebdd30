"""The outbox keeps the trace context of the transaction that wrote each row.

``trace_context`` holds the W3C carrier (``traceparent``, ``tracestate``) as JSON, so that
the relay publishes the event in the trace of the request that caused it; NULL when tracing
is off. Existing rows stay NULL.

Revision ID: auth0006
Revises: auth0005
Create Date: 2026-12-03 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "auth0006"
down_revision: str | None = "auth0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("trace_context", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite (3.35 and later) drops a column that no index or constraint names in place.
    op.drop_column("outbox", "trace_context")
