"""budget leases, alerts, project rate limits, unique request ids

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 06:05:45.350408
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=40), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_alerts")),
        sa.UniqueConstraint(
            "scope",
            "scope_id",
            "period_start",
            "threshold",
            name=op.f("uq_budget_alerts_scope_scope_id_period_start_threshold"),
        ),
    )
    op.create_table(
        "budget_leases",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=40), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replica", sa.String(length=64), nullable=False),
        sa.Column("amount_usd", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_leases")),
        sa.UniqueConstraint(
            "scope",
            "scope_id",
            "period_start",
            "replica",
            name=op.f("uq_budget_leases_scope_scope_id_period_start_replica"),
        ),
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rpm_limit", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tpm_limit", sa.Integer(), nullable=True))

    with op.batch_alter_table("request_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_logs_request_id"))
        batch_op.create_unique_constraint(batch_op.f("uq_request_logs_request_id"), ["request_id"])


def downgrade() -> None:
    with op.batch_alter_table("request_logs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_request_logs_request_id"), type_="unique")
        batch_op.create_index(
            batch_op.f("ix_request_logs_request_id"), ["request_id"], unique=False
        )

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("tpm_limit")
        batch_op.drop_column("rpm_limit")

    op.drop_table("budget_leases")
    op.drop_table("budget_alerts")
