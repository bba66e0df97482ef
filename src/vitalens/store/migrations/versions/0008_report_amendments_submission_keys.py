"""Signed reports cannot drift: report versions and amendments; studies keyed by their form submission.

* ``reports``: ``version`` (1 for the first sign-off, unique per study), ``amends_id`` and ``amendment_reason`` for
  an amendment of a signed report, the sign-off ``note``, ``finding_count``/``reviewed_count`` (how many findings the
  signer had reviewed), and the signed content as JSON (``snapshot``) with its ``snapshot_sha256``.
* ``studies.submission_key``: the study form's idempotency key, unique per site (a resubmission never duplicates).

Revision ID: 0008_report_amendments
Revises: 0007_study_notes_conversations
Create Date: 2026-12-01 13:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_report_amendments"
down_revision: str | None = "0007_study_notes_conversations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("amends_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("amendment_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("finding_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reviewed_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("snapshot", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("snapshot_sha256", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_reports_amends_id_reports"), "reports", ["amends_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_unique_constraint(batch_op.f("uq_reports_study_version"), ["study_id", "version"])
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submission_key", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_studies_site_submission_key"), ["site_id", "submission_key"])


def downgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_studies_site_submission_key"), type_="unique")
        batch_op.drop_column("submission_key")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_reports_study_version"), type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_reports_amends_id_reports"), type_="foreignkey")
        for name in (
            "snapshot_sha256",
            "snapshot",
            "reviewed_count",
            "finding_count",
            "note",
            "amendment_reason",
            "amends_id",
            "version",
        ):
            batch_op.drop_column(name)
