"""Every model round-trips on SQLite and PostgreSQL; constraints and timezone handling hold on both."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.utils import factories as f
from vitalens.store.models import (
    Analysis,
    AnalysisStage,
    Annotation,
    AuditEvent,
    Explanation,
    Feedback,
    Finding,
    Input,
    Measurement,
    Patient,
    RefreshToken,
    Report,
    RevokedToken,
    User,
)


def test_full_graph_round_trips(db: Session) -> None:
    site = f.create_site(db)
    user = f.create_user(db, site=site, role="reviewer")
    patient = f.create_patient(db, site=site, year_of_birth=1955, sex="male", notes="<b>x</b>")
    study = f.create_study(db, patient=patient, study_date=date(2023, 2, 28))
    inp = Input(
        study_id=study.id,
        slot="fundus_left",
        modality="fundus",
        eye="left",
        filename="ü.png",
        content_sha256="a" * 64,
        media_type="image/png",
        size_bytes=123,
        blob_key="sha256/aa/aa/" + "a" * 64,
        width=96,
        height=80,
        meta={"k": [1, 2]},
    )
    analysis = Analysis(study=study, analyzers=["fundus.odir"], versions={"fundus.odir": {"version": "1.0"}})
    stage = AnalysisStage(
        analysis=analysis,
        name="fundus.odir",
        analyzer="fundus.odir",
        position=1,
        status="COMPLETE",
        duration_ms=12.5,
        result={"findings": []},
    )
    db.add_all([inp, analysis, stage])
    db.flush()
    finding = Finding(
        analysis=analysis,
        stage_id=stage.id,
        analyzer="fundus.odir",
        code="D",
        label="Diabetic retinopathy",
        probability=0.75,
        threshold=0.5,
        positive=True,
        band="High",
    )
    db.add_all(
        [
            finding,
            Explanation(
                analysis=analysis,
                analyzer="fundus.odir",
                target="D",
                input_name="fundus_left",
                input_id=inp.id,
                method="gradcam",
            ),
            Measurement(
                analysis=analysis,
                analyzer="ecg.intervals",
                name="QTc",
                value=440.0,
                unit="ms",
                reference_low=350.0,
                reference_high=450.0,
                flag="normal",
            ),
        ]
    )
    db.flush()
    ann = Annotation(
        root_id="r" * 32,
        study_id=study.id,
        input_id=inp.id,
        author_id=user.id,
        label="haemorrhage",
        shape="polygon",
        geometry={"points": [[1, 2], [3, 4], [5, 1]]},
    )
    db.add_all(
        [
            ann,
            Feedback(
                finding_id=finding.id, analysis_id=analysis.id, author_id=user.id, action="correct", corrected_label="N"
            ),
            Report(
                study_id=study.id,
                analysis_id=analysis.id,
                status="signed",
                signed_by_id=user.id,
                signed_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                content_sha256="b" * 64,
            ),
            AuditEvent(
                actor_id=user.id,
                action="patient.read",
                record_type="patient",
                record_id=patient.id,
                patient_id=patient.id,
                detail={"a": 1},
            ),
        ]
    )
    db.commit()
    db.expunge_all()

    got = db.get(Patient, patient.id)
    assert got is not None and got.notes == "<b>x</b>" and got.year_of_birth == 1955
    assert got.studies[0].study_date == date(2023, 2, 28)
    assert got.studies[0].inputs[0].filename == "ü.png" and got.studies[0].inputs[0].meta == {"k": [1, 2]}
    a = got.studies[0].analyses[0]
    assert [s.name for s in a.stages] == ["fundus.odir"] and a.stages[0].duration_ms == 12.5
    assert a.findings[0].probability == 0.75 and a.findings[0].positive is True
    assert a.findings[0].feedback[0].corrected_label == "N"
    assert a.measurements[0].unit == "ms" and a.explanations[0].method == "gradcam"
    report = db.scalar(select(Report).where(Report.analysis_id == a.id))
    assert report is not None and report.signed_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert report.signed_at.tzinfo is not None
    saved_ann = db.get(Annotation, ann.id)
    assert saved_ann is not None and saved_ann.geometry["points"][2] == [5, 1] and saved_ann.version == 1


def test_timestamps_are_aware_utc(db: Session) -> None:
    site = f.create_site(db)
    db.expunge_all()
    assert site.created_at.tzinfo is not None
    reloaded = db.get(type(site), site.id)
    assert reloaded is not None and reloaded.created_at.utcoffset() == timedelta(0)


def test_naive_datetime_is_refused(db: Session) -> None:
    site = f.create_site(db)
    user = f.create_user(db, site=site)
    db.add(RevokedToken(jti="j" * 20, user_id=user.id, expires_at=datetime(2030, 1, 1)))
    with pytest.raises(Exception, match="naive datetime"):
        db.commit()
    db.rollback()


def test_foreign_keys_are_enforced(db: Session) -> None:
    db.add(Patient(site_id="0" * 32, pseudonym="orphan"))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_pseudonym_unique_per_site_only(db: Session) -> None:
    a, b = f.create_site(db), f.create_site(db)
    f.create_patient(db, site=a, pseudonym="MRN-1")
    f.create_patient(db, site=b, pseudonym="MRN-1")  # another site may reuse it
    db.add(Patient(site_id=a.id, pseudonym="MRN-1"))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [
        ("user_role", {"role": "superuser"}),
        ("patient_sex", {"sex": "x"}),
        ("feedback_correct_without_label", {}),
    ],
)
def test_check_constraints(db: Session, model: str, kwargs: dict[str, str]) -> None:
    site = f.create_site(db)
    if model == "user_role":
        db.add(User(site_id=site.id, email=f"{f.random_suffix()}@x.org", password_hash="h", **kwargs))
    elif model == "patient_sex":
        db.add(Patient(site_id=site.id, pseudonym="p", **kwargs))
    else:
        patient = f.create_patient(db, site=site)
        study = f.create_study(db, patient=patient)
        analysis = Analysis(study_id=study.id)
        db.add(analysis)
        db.flush()
        finding = Finding(analysis_id=analysis.id, analyzer="x", code="D", label="D", probability=0.1, positive=False)
        db.add(finding)
        db.flush()
        db.add(Feedback(finding_id=finding.id, analysis_id=analysis.id, action="correct"))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_refresh_token_hash_unique(db: Session) -> None:
    site = f.create_site(db)
    user = f.create_user(db, site=site)
    exp = datetime.now(UTC) + timedelta(days=1)
    db.add(RefreshToken(user_id=user.id, family_id="f" * 32, token_hash="c" * 64, expires_at=exp))
    db.commit()
    db.add(RefreshToken(user_id=user.id, family_id="f" * 32, token_hash="c" * 64, expires_at=exp))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()
