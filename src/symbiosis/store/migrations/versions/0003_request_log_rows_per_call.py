"""request-log rows are unique per request id and time, not per request id

A client that reuses its x-request-id (a retry) made a second call whose row was
dropped as a duplicate; a replayed batch still inserts nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 08:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("request_logs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_request_logs_request_id"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_request_logs_request_id_at"), ["request_id", "at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("request_logs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_request_logs_request_id_at"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_request_logs_request_id"), ["request_id"])
