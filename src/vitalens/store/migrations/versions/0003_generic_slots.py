"""Input slots are open (analyzers register them): drop the fixed slot CHECK; findings say which input they concern.

Why: a new analyzer adds its own slot (a ``notes`` text, ...) in its own module; a CHECK listing five slot names
would need a migration per analyzer. Slot names are validated by ``vitalens.slots`` at upload instead. Findings of
per-input analyzers (one finding per eye) record the slot in ``findings.input_name``.

Revision ID: 0003_generic_slots
Revises: 0002_analysis_job_owner
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_generic_slots"
down_revision: str | None = "0002_analysis_job_owner"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inputs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_inputs_slot"), type_="check")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("input_name", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_column("input_name")
    with op.batch_alter_table("inputs", schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_inputs_slot"), "slot IN ('fundus_left', 'fundus_right', 'oct', 'ecg', 'cxr')"
        )
