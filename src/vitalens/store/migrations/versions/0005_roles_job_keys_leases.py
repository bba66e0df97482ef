"""Instance administrators, idempotency keys per study, and job leases with a heartbeat.

* ``users.role`` may be ``instance_admin`` (runs the installation: sites and users of any site; no patient data).
* ``analyses.job_key`` is unique per study instead of across the installation (a key used by another site answered
  500 and told the caller that the key existed).
* ``analyses.lease_expires_at`` / ``heartbeat_at``: a RUNNING job's owner renews its lease; an expired lease can be
  taken over from any host.

Revision ID: 0005_roles_job_keys_leases
Revises: 0004_dicom_study_uid
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_roles_job_keys_leases"
down_revision: str | None = "0004_dicom_study_uid"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLES_BEFORE = "role IN ('clinician', 'reviewer', 'admin')"
_ROLES_AFTER = "role IN ('clinician', 'reviewer', 'admin', 'instance_admin')"


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_users_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_users_role"), _ROLES_AFTER)
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_analyses_job_key"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_analyses_study_job_key"), ["study_id", "job_key"])
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_constraint(op.f("uq_analyses_study_job_key"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_analyses_job_key"), ["job_key"])
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_users_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_users_role"), _ROLES_BEFORE)
