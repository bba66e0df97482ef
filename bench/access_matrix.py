"""Access-matrix bench: every route × role × site × deleted state against a real server, judged by what each route
declares it needs.

Why: "nobody sees another site's patients, and a deleted patient is gone" has to hold on every route, for every
role, including routes added later. The API routes come from the server's OpenAPI document, each with the
permission it declares (``x-permission``, see ``service/api/_access.py``); the web pages are listed here. Every
route is called as ``anonymous``, ``clinician``, ``reviewer``, ``admin`` (a site administrator) and
``instance_admin`` (all of site A), on a record of their own site A or of site B, live or of a deleted patient.
The expected answer follows from the declaration and the authorisation model (``service/ops/__init__.py``):

* anonymous: only ``public`` routes answer (401, or a redirect to the login page for web pages);
* a role without the permission: 403 (the permission is checked before the record is looked up);
* another site's record, or a deleted patient's: 404 exactly like a missing id (the instance administrator holds
  ``user.manage``/``site.manage``/``audit.read`` across sites);
* otherwise the request passes authorisation (2xx, or a 4xx about its content such as 409 "already signed").

Lists (patients, studies, users, audit events, the worklist page) are also read for ids that must not be in them:
another site's records, and a deleted patient's (the audit trail keeps those on purpose). Every mismatch is
reported: **wrongly allowed** (a denial was due), **wrongly denied**, **leaks** in lists, **server errors**.

Records hang from patients created through the API; their analyses, findings, explanations, annotations, feedback
and signed reports are written into the server's database directly (as the jobs would), and the deleted patients are
deleted through the API by their site administrator. Destructive requests (DELETE, deactivate, logout) get a fresh
record, user or session each.

Run (from the repository root):
    .venv/bin/python bench/access_matrix.py              # prints a table, writes bench/results/access_matrix.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bad_files import good_ecg_zip, good_fundus, good_gray
from _serve import PASSWORD, Accounts, Server, setup_accounts
from vitalens import DECISION_SUPPORT_NOTICE

__all__ = ["main", "expected", "PAGES", "ROLES"]

logger = logging.getLogger("bench.access_matrix")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
ROLES = ("anonymous", "clinician", "reviewer", "admin", "instance_admin")
SITES = ("own", "other")
STATES = ("live", "deleted")
#: Path parameters that address a record hanging from a patient (user ids are users, not patient records).
PATIENT_PARAMS = {
    "patient_id",
    "study_id",
    "study_uid",
    "input_id",
    "analysis_id",
    "finding_id",
    "explanation_id",
    "annotation_id",
    "version",
    "conversation_id",
}
#: Path parameters of records private to one user inside a patient's record (the assistant's conversations belong
#: to the user who asked): only that user (the site's reviewer here) may read them; everyone else gets 404.
OWNER_ONLY_PARAMS = {"conversation_id": "reviewer"}
#: Path parameters that name no stored record, with the value every case uses.
NOT_RECORDS = {"slot": "fundus_left"}
#: The web pages (not in the API document): path → permission, as the page handlers enforce through ops.
PAGES: dict[str, str] = {
    "/": "public",
    "/login": "public",
    "/glossary": "public",
    "/knowledge": "authenticated",
    "/worklist": "patient.read",
    "/studies/new": "patient.read",
    "/studies/{study_id}": "study.read",
    "/studies/{study_id}/print": "study.read",
    "/studies/{study_id}/ecg.png": "input.read",
    "/patients/{patient_id}": "patient.read",
    "/admin": "user.manage",
}
DENIED = {401, 403, 404}


# --------------------------------------------------------------------------------------------- expectations


def expected(permission: str, role: str, site: str, state: str, record: str | None) -> str:
    """``allow`` or ``deny`` for a request to a route needing ``permission`` (``record``: ``patient``, ``user``,
    ``site`` or None for a collection), by ``role`` of site A on a ``site`` (own/other) record in ``state``."""
    from vitalens.service.ops import INSTANCE_WIDE, PERMISSIONS

    if permission == "public":
        return "allow"
    if role == "anonymous":
        return "deny"
    if permission == "authenticated":
        return "allow"
    if role not in PERMISSIONS[permission]:
        return "deny"
    if record == "patient":
        return "allow" if site == "own" and state == "live" else "deny"
    if record in ("user", "site") and site == "other":
        return "allow" if role == "instance_admin" and permission in INSTANCE_WIDE else "deny"
    return "allow"


# --------------------------------------------------------------------------------------------- records


@dataclass
class RecordSet:
    """A patient of one site and everything hanging from it, by path-parameter name."""

    ids: dict[str, str]
    site: str  # "A" / "B"
    deleted: bool = False


class Records:
    """Writes record sets into the running server's database and blob folder (as the jobs would)."""

    def __init__(self, data_dir: Path, base: str, accounts: Accounts) -> None:
        from vitalens.store import make_blob_store, make_engine, make_session_factory

        self.engine = make_engine(f"sqlite:///{(data_dir / 'vitalens.db').resolve()}")
        self.sessions = make_session_factory(self.engine)
        self.blobs = make_blob_store(data_dir / "blobs")
        self.base = base
        self.accounts = accounts

    def close(self) -> None:
        self.engine.dispose()

    def make(self, site: str, *, deleted: bool = False) -> RecordSet:
        """A patient (through the API) with a study, inputs, a finished analysis, a finding, an explanation with
        an overlay, an annotation, feedback and a signed report; deleted through the API when asked."""
        from vitalens.store.models import (
            Analysis,
            AnalysisStage,
            Annotation,
            Conversation,
            ConversationMessage,
            Explanation,
            Feedback,
            Finding,
            Report,
            Study,
        )

        h = self.accounts.h(site, "clinician")
        with httpx.Client(base_url=self.base, timeout=120) as client:
            patient = client.post(
                "/api/v1/patients", json={"pseudonym": f"AM-{uuid.uuid4().hex[:10]}", "sex": "female"}, headers=h
            )
            patient.raise_for_status()
            study = client.post(
                "/api/v1/studies",
                data={"patient_id": patient.json()["id"], "study_date": "2024-03-01", "age_years": "60"},
                files={
                    "fundus_left": ("l.jpg", good_fundus(1), "image/jpeg"),
                    "fundus_right": ("r.jpg", good_fundus(2), "image/jpeg"),
                    "ecg": ("rec.zip", good_ecg_zip(), "application/zip"),
                },
                headers=h,
            )
            study.raise_for_status()
        body = study.json()
        left = next(i for i in body["inputs"] if i["slot"] == "fundus_left")
        reviewer = self.accounts.users[(site, "reviewer")]
        overlay = self.blobs.put(good_gray(64))
        with self.sessions() as s:
            analysis = Analysis(
                study_id=body["id"], status="COMPLETE", analyzers=["fundus.odir"], finished_at=datetime.now(UTC)
            )
            s.add(analysis)
            s.flush()
            stage = AnalysisStage(
                analysis_id=analysis.id, name="fundus.odir", analyzer="fundus.odir", status="COMPLETE"
            )
            s.add(stage)
            s.flush()
            finding = Finding(
                analysis_id=analysis.id,
                stage_id=stage.id,
                analyzer="fundus.odir",
                code="D",
                label="Diabetic retinopathy",
                probability=0.9,
                threshold=0.5,
                positive=True,
            )
            explanation = Explanation(
                analysis_id=analysis.id,
                analyzer="fundus.odir",
                target="D",
                input_name="fundus_left",
                input_id=left["id"],
                method="gradcam",
                overlay_blob_key=overlay,
                heatmap_blob_key=self.blobs.put(_heatmap_npy()),
            )
            s.add_all([finding, explanation])
            s.flush()
            annotation = Annotation(
                root_id=uuid.uuid4().hex,
                study_id=body["id"],
                input_id=left["id"],
                author_id=reviewer,
                label="x",
                shape="box",
                geometry={"x0": 1, "y0": 1, "x1": 5, "y1": 5},
            )
            s.add(annotation)
            s.flush()
            annotation.root_id = annotation.id
            pdf = b"%PDF-1.4 bench"
            study_row = s.get(Study, body["id"])
            if study_row is not None:  # as if it had been received over DICOMweb (QIDO lists it by this UID)
                study_row.dicom_study_uid = f"2.25.{uuid.uuid4().int}"
            s.add_all(
                [
                    Feedback(finding_id=finding.id, analysis_id=analysis.id, author_id=reviewer, action="confirm"),
                    Report(
                        study_id=body["id"],
                        analysis_id=analysis.id,
                        status="signed",
                        blob_key=self.blobs.put(pdf),
                        content_sha256=hashlib.sha256(pdf).hexdigest(),
                        size_bytes=len(pdf),
                        signed_by_id=reviewer,
                        signed_at=datetime.now(UTC),
                    ),
                ]
            )
            conversation = Conversation(study_id=body["id"], user_id=reviewer, title="bench")
            s.add(conversation)
            s.flush()
            s.add(ConversationMessage(conversation_id=conversation.id, position=0, role="user", text="What was found?"))
            s.commit()
            ids = {
                "version": "1",
                "conversation_id": conversation.id,
                "patient_id": patient.json()["id"],
                "study_id": body["id"],
                "input_id": left["id"],
                "analysis_id": analysis.id,
                "finding_id": finding.id,
                "explanation_id": explanation.id,
                "annotation_id": annotation.id,
                "study_uid": study_row.dicom_study_uid if study_row is not None else "",
            }
        if deleted:
            with httpx.Client(base_url=self.base, timeout=60) as client:
                r = client.delete(f"/api/v1/patients/{ids['patient_id']}", headers=self.accounts.h(site, "admin"))
                if r.status_code != 204:
                    raise RuntimeError(f"could not delete the patient: {r.status_code} {r.text}")
        return RecordSet(ids=ids, site=site, deleted=deleted)

    def fresh_user(self, site: str) -> str:
        from vitalens.service.security import hash_password
        from vitalens.store.models import User

        with self.sessions() as s:
            user = User(
                site_id=self.accounts.sites[site],
                email=f"fresh-{uuid.uuid4().hex[:8]}@bench.example",
                role="clinician",
                password_hash=hash_password(PASSWORD),
            )
            s.add(user)
            s.commit()
            return str(user.id)


# --------------------------------------------------------------------------------------------- requests


def _body(method: str, path: str, target: RecordSet, accounts: Accounts, site: str) -> dict[str, Any]:
    """A request body the route accepts when authorised (so a refusal can only be about access)."""
    if method not in ("POST", "PUT", "PATCH"):
        return {}
    if path == "/api/v1/predict/fundus":
        return {
            "files": {
                "left": ("l.jpg", good_fundus(1), "image/jpeg"),
                "right": ("r.jpg", good_fundus(2), "image/jpeg"),
            },
            "data": {"age": "60"},
        }
    if path == "/api/v1/predict/ecg":
        return {"files": {"file": ("rec.zip", good_ecg_zip(), "application/zip")}}
    if path in ("/api/v1/auth/login", "/api/v1/auth/session"):
        return {"json": {"email": "clinician-a@bench.example", "password": PASSWORD}}
    if path == "/api/v1/auth/refresh":
        return {"json": {"refresh_token": "not-a-token"}}
    if path == "/api/v1/users":
        return {
            "json": {
                "email": f"n-{uuid.uuid4().hex[:8]}@bench.example",
                "password": PASSWORD,
                "role": "clinician",
                "site_id": accounts.sites[site],
            }
        }
    if path == "/api/v1/sites":
        return {"json": {"name": f"Site {uuid.uuid4().hex[:8]}"}}
    if path == "/api/v1/patients":
        return {"json": {"pseudonym": f"N-{uuid.uuid4().hex[:10]}"}}
    if path == "/api/v1/patients/{patient_id}":
        return {"json": {"notes": "checked"}}
    if path == "/api/v1/studies":
        return {
            "data": {"patient_id": target.ids["patient_id"], "study_date": "2024-04-01"},
            "files": {"fundus_left": ("l.jpg", good_fundus(3), "image/jpeg")},
        }
    if path.endswith("/inputs"):
        return {"files": {"oct": ("o.png", good_gray(), "image/png")}}
    if path.endswith("/analyses"):
        return {"json": {"analyzers": ["fundus.odir"]}}
    if path.endswith("/annotations"):
        return {"json": {"shape": "box", "geometry": {"x0": 1, "y0": 1, "x1": 9, "y1": 9}, "label": "x"}}
    if path == "/api/v1/annotations/{annotation_id}":
        return {"json": {"label": "edited"}}
    if path.endswith("/feedback"):
        return {"json": {"action": "confirm"}}
    if path.endswith("/signoff"):
        return {"json": {"note": "ok"}}
    if path.endswith("/assistant"):
        return {"json": {"question": "What does this study show?"}}
    if path.endswith("/amendments"):
        return {"json": {"reason": "bench: a corrected finding"}}
    if path.endswith("/notes"):
        return {"json": {"notes": "checked"}}
    if path.startswith("/api/v1/quality/"):
        return {"files": {"file": ("l.jpg", good_fundus(4), "image/jpeg")}}
    if path.startswith("/dicomweb/"):
        return {"content": b"", "headers": {"content-type": "multipart/related; type=application/dicom; boundary=x"}}
    return {"json": {}}


def _record_kind(path: str, params: list[str], method: str) -> str | None:
    if (method, path) == ("POST", "/dicomweb/studies/{study_uid}"):
        return None  # STOW: the UID names where to store (a site's own namespace), it reads no record
    if set(params) & PATIENT_PARAMS:
        return "patient"
    if "user_id" in params:
        return "user"
    if (method, path) == ("POST", "/api/v1/studies"):
        return "patient"  # the patient is named in the form
    if (method, path) == ("POST", "/api/v1/users"):
        return "site"  # the site is named in the body
    return None


def _outcome(status: int | None, location: str) -> str:
    if status is None:
        return "no_answer"
    if status >= 500:
        return "server_error"
    if status in DENIED or (300 <= status < 400 and location.startswith("/login")):
        return "denied"
    return "passed"


@dataclass
class Row:
    route: str
    role: str
    site: str
    state: str
    expected: str
    status: int | None
    outcome: str
    verdict: str
    detail: str = ""


def _verdict(
    expect: str, outcome: str, status: int | None, record: str | None, site: str, state: str, permission: str
) -> str:
    if outcome in ("server_error", "no_answer"):
        return outcome
    if permission == "public":
        return "ok"
    if expect == "deny":
        if outcome != "denied":
            return "wrongly_allowed"
        if record == "patient" and (site == "other" or state == "deleted") and status == 403:
            return "ok"  # a missing permission is checked first, for every id alike
        return "ok"
    return "wrongly_denied" if outcome == "denied" else "ok"


# --------------------------------------------------------------------------------------------- the run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "access_matrix.json")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="vitalens-access-"))
    server = Server(tmp / "data")
    t0 = time.monotonic()
    records: Records | None = None
    try:
        server.start()
        accounts = setup_accounts(server.base)
        records = Records(tmp / "data", server.base, accounts)
        shared = {(s, d): records.make(s, deleted=d) for s in ("A", "B") for d in (False, True)}
        with httpx.Client(base_url=server.base, timeout=args.timeout) as client:
            spec = client.get("/openapi.json").json()
            routes: list[tuple[str, str, str]] = []
            undeclared: list[str] = []
            for path, ops in spec["paths"].items():
                for method, op in ops.items():
                    perm = op.get("x-permission")
                    if perm is None:
                        undeclared.append(f"{method.upper()} {path}")
                        perm = "authenticated"
                    routes.append((method.upper(), path, perm))
            routes += [("GET", path, perm) for path, perm in PAGES.items()]
            rows = _walk(client, routes, accounts, records, shared, args.timeout)
            leaks = _list_leaks(client, accounts, shared)
            alive = server.alive()
        summary = _summary(rows, leaks, undeclared)
        summary |= {
            "server_alive_after": alive,
            "seconds": round(time.monotonic() - t0, 1),
            "tracebacks_in_server_log": server.log_text().count("Traceback"),
        }
        result = {
            "notice": DECISION_SUPPORT_NOTICE,
            "config": {"server": "vitalens serve (README way), SQLite, generated key", "platform": platform.platform()},
            "summary": summary,
            "leaks": leaks,
            "rows": [r.__dict__ for r in rows],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str))
        _print(summary, rows, leaks)
        print(f"wrote {args.out}")
        bad = (
            summary["wrongly_allowed"]
            + summary["wrongly_denied"]
            + summary["server_errors"]
            + summary["leaks"]
            + summary["no_answer"]
            + len(undeclared)
        )
        return 0 if bad == 0 and alive else 1
    finally:
        if records is not None:
            records.close()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _login(client: httpx.Client, email: str, i: int) -> dict[str, str]:
    r = client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": f"10.8.{i // 250 % 250}.{i % 250 + 1}"},
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _walk(
    client: httpx.Client,
    routes: list[tuple[str, str, str]],
    accounts: Accounts,
    records: Records,
    shared: dict[tuple[str, bool], RecordSet],
    timeout: float,
) -> list[Row]:
    rows: list[Row] = []
    i = 0
    for method, path, perm in routes:
        params = re.findall(r"{(\w+)}", path)
        record = _record_kind(path, params, method)
        destructive = method == "DELETE" or path.endswith("/deactivate") or path.endswith("/logout")
        varies = record is not None
        for role in ROLES:
            for site in SITES if varies else ("own",):
                for state in STATES if record == "patient" else ("live",):
                    i += 1
                    target_site = "A" if site == "own" else "B"
                    target = shared[(target_site, state == "deleted")]
                    if destructive and record == "patient":
                        target = records.make(target_site, deleted=state == "deleted")
                    ids = {**target.ids, **NOT_RECORDS}
                    if "user_id" in params:  # another user (reading oneself is always allowed), fresh if destructive
                        ids["user_id"] = records.fresh_user(target_site)
                    url = path
                    for name in params:
                        url = url.replace(f"{{{name}}}", ids[name])
                    headers = {"X-Forwarded-For": f"10.7.{i // 250 % 250}.{i % 250 + 1}"}
                    if role != "anonymous":
                        email = f"{role}-a@bench.example" if role != "instance_admin" else "root@bench.example"
                        if path.endswith("/logout"):
                            headers |= _login(client, email, i)  # logout revokes the token: a fresh session
                        else:
                            headers |= accounts.h("A", role)
                    kwargs = _body(method, path, target, accounts, target_site)
                    headers |= kwargs.pop("headers", {})
                    try:
                        r = client.request(
                            method, url, headers=headers, follow_redirects=False, timeout=timeout, **kwargs
                        )
                        status, location, text = r.status_code, r.headers.get("location", ""), r.text[:160]
                    except httpx.TimeoutException:
                        status, location, text = None, "", "timeout"
                    outcome = _outcome(status, location)
                    expect = expected(perm, role, site, state, record)
                    if any(OWNER_ONLY_PARAMS.get(p, role) != role for p in params):
                        expect = "deny"
                    verdict = _verdict(expect, outcome, status, record, site, state, perm)
                    rows.append(
                        Row(
                            f"{method} {path}",
                            role,
                            site,
                            state,
                            expect,
                            status,
                            outcome,
                            verdict,
                            text if verdict != "ok" else "",
                        )
                    )
    return rows


def _heatmap_npy() -> bytes:
    """A stored explanation map as the jobs write it (a float32 array in ``.npy``)."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64), allow_pickle=False)
    return buf.getvalue()


def _list_leaks(client: httpx.Client, accounts: Accounts, shared: dict[tuple[str, bool], RecordSet]) -> list[str]:
    """Ids that lists of site A's users must not show: site B's records; a deleted patient's (except audit)."""
    leaks = []
    # record ids only (32 hex characters, or a DICOM UID): a report version "1" is no record and is in any page
    foreign = {v for (site, _), rs in shared.items() if site == "B" for v in rs.ids.values() if len(v) >= 16}
    foreign |= {accounts.users[("B", r)] for r in ("clinician", "reviewer", "admin")}
    gone = {shared[("A", True)].ids["patient_id"], shared[("A", True)].ids["study_id"]}
    lists = [
        "/api/v1/patients?limit=200",
        "/api/v1/studies?limit=200",
        "/api/v1/users",
        "/api/v1/sites",
        "/api/v1/audit-events?limit=200",
        "/worklist",
    ]
    for role in ("clinician", "reviewer", "admin"):
        for url in lists:
            r = client.get(url, headers=accounts.h("A", role))
            if r.status_code != 200:
                continue
            shown = [x for x in foreign if x in r.text]
            if url.startswith("/api/v1/sites"):
                shown = []  # a site's own id list: another site's *id* is not patient data, and only A's is listed
            if not url.startswith("/api/v1/audit-events"):
                shown += [x for x in gone if x in r.text]
            leaks += [f"{role} GET {url} shows {x}" for x in shown]
    return leaks


def _summary(rows: list[Row], leaks: list[str], undeclared: list[str]) -> dict[str, Any]:
    totals = Counter(r.verdict for r in rows)
    per_route: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        per_route[r.route]["cases"] += 1
        per_route[r.route][r.verdict] += 1
        per_route[r.route][r.outcome] += 1
    return {
        "cases": len(rows),
        "routes": len(per_route),
        "wrongly_allowed": totals["wrongly_allowed"],
        "wrongly_denied": totals["wrongly_denied"],
        "server_errors": totals["server_error"],
        "no_answer": totals["no_answer"],
        "leaks": len(leaks),
        "undeclared_routes": undeclared,
        "per_route": {k: dict(v) for k, v in sorted(per_route.items())},
    }


def _print(summary: dict[str, Any], rows: list[Row], leaks: list[str]) -> None:
    print(f"\n{'route':58s} {'cases':>5s} {'passed':>6s} {'denied':>6s} {'w.allow':>7s} {'w.deny':>6s} {'5xx':>4s}")
    for route, c in summary["per_route"].items():
        print(
            f"{route[:58]:58s} {c.get('cases', 0):5d} {c.get('passed', 0):6d} {c.get('denied', 0):6d} "
            f"{c.get('wrongly_allowed', 0):7d} {c.get('wrongly_denied', 0):6d} {c.get('server_error', 0):4d}"
        )
    print(
        f"\n{summary['cases']} cases over {summary['routes']} routes × {len(ROLES)} roles × own/other site × "
        f"live/deleted: {summary['wrongly_allowed']} wrongly allowed, {summary['wrongly_denied']} wrongly denied, "
        f"{summary['server_errors']} server errors, {summary['no_answer']} unanswered, {summary['leaks']} list leaks, "
        f"{len(summary['undeclared_routes'])} routes without x-permission"
    )
    for r in rows:
        if r.verdict != "ok":
            print(f"  [{r.verdict}] {r.role} {r.route} ({r.site}, {r.state}): {r.status} {r.detail[:100]!r}")
    for leak in leaks:
        print(f"  [leak] {leak}")


if __name__ == "__main__":
    raise SystemExit(main())
