"""Bad-input bench: hostile and broken requests against every upload and query route of a real server.

Why: "bad input always gets a clear error" only means something when every route is probed with what a careless
client or an attacker sends. The routes come from the server's own OpenAPI document (so routes added later are
probed too); for each operation the bench derives cases from its parameters and body schema:

* path parameters: overlong, traversal, non-ASCII and SQL-looking ids;
* query parameters: wrong types, 10²⁰, negatives, past ``maximum``/``maxLength``, unknown enum values, bad dates;
* JSON bodies: malformed, nested 100,000 deep, empty, wrong content type, and per property a missing required
  value, a wrong type, an overlong string, an unknown enum value;
* multipart bodies: per file field a catalogue of broken and hostile files (``bench/_bad_files.py``: decompression
  bombs, a zip with a bad CRC, zip bombs, WFDB headers at −100 Hz / 1 Hz × 100,000 s / 10¹² samples, UTF-16 XML with
  nested entities, external entities, pickled NumPy arrays, traversal file names, files above the limit...), and per
  text field wrong values; and a JSON body where a form is expected.

Each answer is judged: **server error** (5xx), **hang** (no answer in ``--timeout`` s), **wrongly allowed** (2xx),
**unclear** (a 4xx whose JSON ``detail`` does not name the field or the problem, shows a server path or a traceback,
or an unexpected status), else **clear**. Cases that only the analyzer contract of issue #10 can refuse at upload
(a 64×64 photograph, a 1-lead record, a 0.02 s ECG) are counted in their own column. Afterwards the bench checks the
server is alive, nothing of the refused uploads was stored, and counts tracebacks in the server log.

The server is started the README way (``vitalens serve``, SQLite under a temporary data folder, bundled models, no
secret configured), accounts are made through ``POST /setup`` and the users API.

Run (from the repository root):
    .venv/bin/python bench/bad_inputs.py                 # prints a table, writes bench/results/bad_inputs.json
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bad_files import CONTRACT_CASES, ecg_cases, good_ecg_zip, good_fundus, good_gray, image_cases
from _serve import PASSWORD, Accounts, Server, setup_accounts, wait_analysis
from vitalens import DECISION_SUPPORT_NOTICE

__all__ = ["main", "judge", "Case", "cases_from_openapi"]

logger = logging.getLogger("bench.bad_inputs")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
#: Text that must never reach a client: server paths, tracebacks, driver internals.
LEAKS = ("/tmp/", "/work/", "/home/", "site-packages", "traceback", 'file "', "sqlalchemy.", "psycopg", "sqlite3.")
#: Form fields whose errors are reported under the input they carry.
ALIASES = {"file": ("file", "ecg"), "left": ("left", "fundus_left"), "right": ("right", "fundus_right")}
IMAGE_FIELDS = {"fundus_left", "fundus_right", "oct", "cxr", "left", "right", "image"}
COLOUR_FIELDS = {"fundus_left", "fundus_right", "left", "right"}
ECG_FIELDS = {"ecg", "file"}


@dataclass
class Case:
    """One request and what a clear refusal of it looks like."""

    route: str
    name: str
    method: str
    url: str
    kwargs: dict[str, Any]
    expect: frozenset[int]
    fields: tuple[str, ...]
    role: tuple[str, str] | None = ("A", "clinician")
    contract: bool = False
    #: a hostile *file name* on good content: storing it under a sanitised name is as right as refusing it
    sanitised_ok: bool = False


@dataclass
class Outcome:
    case: Case
    status: int | None
    detail: str
    seconds: float
    verdict: str
    why: str = ""


@dataclass
class Context:
    """Ids of real records at site A, the accounts, and the server's limits."""

    accounts: Accounts
    ids: dict[str, str]
    max_upload_bytes: int = 25 * 1024 * 1024
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- judging


def judge(case: Case, status: int | None, body: str, seconds: float) -> Outcome:
    """The verdict on one answer (see the module docstring)."""
    if status is None:
        return Outcome(case, None, "", seconds, "hang", "no answer")
    detail = ""
    try:
        parsed = json.loads(body)
        raw = parsed.get("detail") if isinstance(parsed, dict) else None
        detail = raw if isinstance(raw, str) else json.dumps(raw) if raw is not None else ""
    except ValueError:
        parsed = None
    if status >= 500:
        return Outcome(case, status, detail or body[:200], seconds, "server_error", "5xx")
    if 200 <= status < 300:
        if case.sanitised_ok and not _unsafe_names(parsed):
            return Outcome(case, status, body[:200], seconds, "clear", "accepted under a sanitised file name")
        return Outcome(case, status, body[:200], seconds, "contract" if case.contract else "wrongly_allowed", "2xx")
    text = detail.lower()
    if not detail.strip():
        return Outcome(case, status, body[:200], seconds, "unclear", "no JSON detail")
    if any(leak in text or leak in body.lower() for leak in LEAKS):
        return Outcome(case, status, detail, seconds, "unclear", "shows server internals")
    if status not in case.expect:
        return Outcome(case, status, detail, seconds, "unclear", f"status {status} not in {sorted(case.expect)}")
    tokens = [t.lower() for f in case.fields for t in ALIASES.get(f, (f,))]
    if status == 404:
        tokens.append("not found")
    if status == 413:
        tokens.append("limit")
    if status == 429:
        return Outcome(case, status, detail, seconds, "unclear", "rate-limited (the bench spreads client IPs)")
    if tokens and not any(t in text for t in tokens):
        return Outcome(case, status, detail, seconds, "unclear", f"names none of {tokens}")
    return Outcome(case, status, detail, seconds, "clear")


# --------------------------------------------------------------------------------------------- case generation


def _unsafe_names(parsed: Any) -> bool:
    """Whether a reply echoes a file name that could act as a path (separators, ``..``, NUL)."""
    names: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "filename" and isinstance(v, str):
                    names.append(v)
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(parsed)
    return any(c in n for n in names for c in ("/", "\\", "\x00", "..")) or any(n.startswith(".") for n in names)


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """The non-null alternative of an ``anyOf`` (FastAPI writes ``X | None`` that way)."""
    for alt in schema.get("anyOf", []):
        if alt.get("type") != "null":
            return alt
    return schema


def _role_for(path: str, method: str) -> tuple[str, str] | None:
    if (
        path.startswith("/api/v1/auth/login")
        or path.startswith("/api/v1/auth/session")
        or path == "/api/v1/auth/refresh"
    ):
        return None
    if path.startswith("/api/v1/sites"):
        return ("A", "instance_admin")
    if path.startswith(("/api/v1/users", "/api/v1/audit-events")):
        return ("A", "admin")
    return ("A", "clinician")


def _fill(path: str, ids: dict[str, str], override: dict[str, str] | None = None) -> str:
    values = {**ids, **(override or {})}
    for name in re.findall(r"{(\w+)}", path):
        path = path.replace(f"{{{name}}}", quote(values.get(name, "0" * 32), safe=""))
    return path


def _path_cases(
    route: str, method: str, path: str, params: list[str], ctx: Context, body: dict[str, Any]
) -> list[Case]:
    """Bad ids in the path, with an otherwise valid request (``body``), so only the id can be at fault."""
    out = []
    bad = {
        "overlong id": "x" * 300,
        "traversal id": "../../etc/passwd",
        "non-ASCII id": "ü" * 8,
        "SQL id": "1' OR '1'='1",
    }
    for p in params:
        for label, value in bad.items():
            out.append(
                Case(
                    route,
                    f"{p}: {label}",
                    method,
                    _fill(path, ctx.ids, {p: value}),
                    dict(body),
                    frozenset({404, 422}),
                    (p,),
                    _role_for(path, method),
                )
            )
    return out


def _query_cases(route: str, method: str, path: str, parameters: list[dict[str, Any]], ctx: Context) -> list[Case]:
    out = []
    url = _fill(path, ctx.ids)
    for param in parameters:
        if param.get("in") != "query":
            continue
        name, schema = param["name"], _plain(param.get("schema", {}))
        values: dict[str, Any] = {}
        kind = schema.get("type")
        if "enum" in schema:
            values["unknown option"] = "no-such-option"
        if kind == "integer":
            values |= {"text": "abc", "10^20": str(10**20), "float": "1.5"}
            if schema.get("minimum", -1) >= 0:
                values["negative"] = "-1"
            if "maximum" in schema:
                values["past maximum"] = str(int(schema["maximum"]) + 1)
        if kind == "string" and "maxLength" in schema:
            values["overlong"] = "x" * (int(schema["maxLength"]) + 1)
        if schema.get("format") == "date":
            values |= {"impossible date": "2024-02-30", "not a date": "yesterday"}
        if kind == "boolean":
            values["not a boolean"] = "maybe"
        for label, value in values.items():
            out.append(
                Case(
                    route,
                    f"?{name}: {label}",
                    method,
                    url,
                    {"params": {name: value}},
                    frozenset({422}),
                    (name,),
                    _role_for(path, method),
                )
            )
    return out


def _bad_value(schema: dict[str, Any]) -> list[tuple[str, Any]]:
    schema = _plain(schema)
    kind = schema.get("type")
    out: list[tuple[str, Any]] = []
    if "enum" in schema or "const" in schema:
        out.append(("unknown option", "no-such-option"))
    if kind == "string":
        out.append(("a list for a string", ["x"]))
        if "maxLength" in schema:
            out.append(("overlong", "x" * (int(schema["maxLength"]) + 1)))
        if "pattern" in schema:
            out.append(("breaks the pattern", "a b/c;"))
    elif kind in ("integer", "number"):
        out.append(("text for a number", "abc"))
    elif kind == "boolean":
        out.append(("text for a boolean", "maybe"))
    elif kind == "array":
        out.append(("text for a list", "not-a-list"))
    elif kind == "object":
        out.append(("text for an object", "not-an-object"))
    return out


def _json_cases(
    route: str, method: str, path: str, schema: dict[str, Any], spec: dict[str, Any], ctx: Context
) -> list[Case]:
    url, role = _fill(path, ctx.ids), _role_for(path, method)
    out = [
        Case(
            route,
            "malformed JSON",
            method,
            url,
            {"content": b"{bad", "headers": {"content-type": "application/json"}},
            frozenset({422}),
            ("body",),
            role,
        ),
        Case(
            route,
            "JSON nested 100,000 deep",
            method,
            url,
            {"content": b"[" * 100_000 + b"]" * 100_000, "headers": {"content-type": "application/json"}},
            frozenset({422}),
            ("body",),
            role,
        ),
        Case(route, "a JSON array for an object", method, url, {"json": [1, 2, 3]}, frozenset({422}), ("body",), role),
    ]
    schema = _resolve(spec, schema)
    props = schema.get("properties", {})
    for name in schema.get("required", []):
        body = {k: v for k, v in _good_body(path).items() if k != name}
        out.append(Case(route, f"{name}: missing", method, url, {"json": body}, frozenset({422}), (name,), role))
    for name, prop in props.items():
        for label, value in _bad_value(_resolve(spec, prop) if "$ref" in prop else prop):
            out.append(
                Case(
                    route,
                    f"{name}: {label}",
                    method,
                    url,
                    {"json": {**_good_body(path), name: value}},
                    frozenset({422}),
                    (name,),
                    role,
                )
            )
    return out


def _good_body(path: str) -> dict[str, Any]:
    """A body the route accepts, so that one broken property is the only fault."""
    if path.endswith("/auth/login") or path.endswith("/auth/session"):
        return {"email": "clinician-a@bench.example", "password": "wrong-but-long-enough"}
    if path.endswith("/users"):
        return {"email": f"u-{uuid.uuid4().hex[:8]}@bench.example", "password": PASSWORD, "role": "clinician"}
    if path.endswith("/sites"):
        return {"name": f"Site {uuid.uuid4().hex[:6]}"}
    if path.endswith("/patients"):
        return {"pseudonym": f"BAD-{uuid.uuid4().hex[:8]}", "year_of_birth": 1960, "sex": "female"}
    if "/annotations" in path:
        return {"shape": "box", "geometry": {"x0": 1, "y0": 1, "x1": 9, "y1": 9}, "label": "x"}
    if path.endswith("/feedback"):
        return {"action": "confirm"}
    if path.endswith("/amendments"):
        return {"reason": "bench: a corrected finding"}
    if path.endswith("/assistant"):
        return {"question": "What was found?"}
    if path.endswith("/notes"):
        return {"notes": "No chest pain."}
    return {}


def _multipart_good(
    path: str, fields: dict[str, dict[str, Any]], ctx: Context
) -> tuple[dict[str, str], dict[str, Any]]:
    """Text fields and files that make the form valid."""
    text: dict[str, str] = {}
    files: dict[str, Any] = {}
    for name, prop in fields.items():
        if _is_file(prop):
            continue
        if name == "patient_id":
            text[name] = ctx.ids["patient_id"]
        elif name == "study_date":
            text[name] = "2024-01-01"
        elif name in ("age", "age_years"):
            text[name] = "63"
    if "predict" in path:
        for name, prop in fields.items():
            if _is_file(prop):
                files[name] = _good_file(name)
    return text, files


def _is_file(prop: dict[str, Any]) -> bool:
    prop = _plain(prop)
    return prop.get("format") == "binary" or "contentMediaType" in prop


def _good_file(name: str) -> tuple[str, bytes, str]:
    if name in ECG_FIELDS:
        return ("rec.zip", good_ecg_zip(), "application/zip")
    if name in {"oct", "cxr"}:
        return ("scan.png", good_gray(), "image/png")
    return ("eye.jpg", good_fundus(), "image/jpeg")


def _text_bad_values(name: str) -> list[tuple[str, str]]:
    if name in ("age", "age_years"):
        return [("text", "sixty"), ("negative", "-5"), ("past 120", "500"), ("NaN", "nan")]
    if name == "study_date":
        return [("impossible date", "2024-02-30"), ("not a date", "1/2/24"), ("in the future", "2999-01-01")]
    if name == "fs_hz":
        return [("negative", "-100"), ("zero", "0"), ("10^9 Hz", "1e9"), ("text", "fast")]
    if name == "format":
        return [("unknown format", "evil")]
    if name == "explain":
        return [("not a boolean", "maybe")]
    if name == "patient_id":
        return [("made-up id", "0" * 32), ("overlong", "x" * 300)]
    if name == "description":
        return [("overlong", "x" * 10_001)]
    return []


def _multipart_cases(
    route: str, method: str, path: str, schema: dict[str, Any], spec: dict[str, Any], ctx: Context
) -> list[Case]:
    url, role = _fill(path, ctx.ids), _role_for(path, method)
    schema = _resolve(spec, schema)
    fields = schema.get("properties", {})
    text, files = _multipart_good(path, fields, ctx)
    out = [
        Case(
            route,
            "a JSON body for a form",
            method,
            url,
            {"json": {k: "x" for k in fields}},
            frozenset({415, 422}),
            ("body", *fields),
            role,
        ),
        Case(route, "no body", method, url, {}, frozenset({415, 422}), ("body", *schema.get("required", [])), role),
    ]
    for name in schema.get("required", []):
        if _is_file(fields.get(name, {})):
            missing = {k: v for k, v in files.items() if k != name}
            out.append(
                Case(
                    route,
                    f"{name}: missing",
                    method,
                    url,
                    {"data": text, "files": missing or None},
                    frozenset({422}),
                    (name,),
                    role,
                )
            )
        else:
            out.append(
                Case(
                    route,
                    f"{name}: missing",
                    method,
                    url,
                    {"data": {k: v for k, v in text.items() if k != name}, "files": files or _one_file(fields)},
                    frozenset({404, 422}),
                    (name,),
                    role,
                )
            )
    for name, prop in fields.items():
        if _is_file(prop):
            if name in ECG_FIELDS:
                catalogue = ecg_cases(max_upload_bytes=ctx.max_upload_bytes)
            else:
                catalogue = image_cases(max_upload_bytes=ctx.max_upload_bytes, colour=name in COLOUR_FIELDS)
            for label, filename, data, ctype in catalogue:
                form_files = {**files, name: (filename, data, ctype)}
                out.append(
                    Case(
                        route,
                        f"{name}: {label}",
                        method,
                        url,
                        {"data": text, "files": form_files},
                        frozenset({413, 415, 422}),
                        (name,),
                        role,
                        contract=label in CONTRACT_CASES and "predict" not in path,
                        sanitised_ok="file name" in label,
                    )
                )
        else:
            for label, value in _text_bad_values(name):
                form_files = files or _one_file(fields)
                out.append(
                    Case(
                        route,
                        f"{name}: {label}",
                        method,
                        url,
                        {"data": {**text, name: value}, "files": form_files},
                        frozenset({404, 422}) if name == "patient_id" else frozenset({422}),
                        (name,),
                        role,
                    )
                )
    return out


def _one_file(fields: dict[str, Any]) -> dict[str, Any]:
    """A valid file for the first file field (so a form with only text faults is otherwise complete)."""
    for name, prop in fields.items():
        if _is_file(prop):
            return {name: _good_file(name)}
    return {}


def _valid_request(path: str, content: dict[str, Any], spec: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Keyword arguments of a request the route would accept (for a JSON or a multipart body)."""
    if "application/json" in content:
        return {"json": _good_body(path)}
    if "multipart/form-data" in content:
        fields = _resolve(spec, content["multipart/form-data"].get("schema", {})).get("properties", {})
        text, files = _multipart_good(path, fields, ctx)
        return {"data": text, "files": files or _one_file(fields)}
    return {}


def cases_from_openapi(spec: dict[str, Any], ctx: Context) -> list[Case]:
    """Every case for every operation of ``spec`` (routes added later are included automatically)."""
    cases: list[Case] = []
    for path, operations in spec["paths"].items():
        for method_lower, op in operations.items():
            method = method_lower.upper()
            if method not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                continue
            route = f"{method} {path}"
            params = re.findall(r"{(\w+)}", path)
            content = op.get("requestBody", {}).get("content", {})
            if method != "DELETE":  # deleting by a bad id is covered by GET; a real DELETE would consume the record
                cases += _path_cases(route, method, path, params, ctx, _valid_request(path, content, spec, ctx))
            cases += _query_cases(route, method, path, op.get("parameters", []), ctx)
            if "application/json" in content:
                cases += _json_cases(route, method, path, content["application/json"].get("schema", {}), spec, ctx)
            if "multipart/form-data" in content:
                cases += _multipart_cases(
                    route, method, path, content["multipart/form-data"].get("schema", {}), spec, ctx
                )
    return cases


# --------------------------------------------------------------------------------------------- the run


def seed_records(base: str, accounts: Accounts) -> dict[str, str]:
    """A patient at site A with a study (both eyes, age, an ECG), a finished analysis, an annotation."""
    h = accounts.h("A", "clinician")
    with httpx.Client(base_url=base, timeout=300) as client:
        patient = client.post(
            "/api/v1/patients", json={"pseudonym": "BENCH-1", "year_of_birth": 1961, "sex": "female"}, headers=h
        ).json()
        study = client.post(
            "/api/v1/studies",
            data={"patient_id": patient["id"], "study_date": "2024-03-01", "age_years": "63"},
            files={
                "fundus_left": ("l.jpg", good_fundus(1), "image/jpeg"),
                "fundus_right": ("r.jpg", good_fundus(2), "image/jpeg"),
                "ecg": ("rec.zip", good_ecg_zip(), "application/zip"),
            },
            headers=h,
        )
        study.raise_for_status()
        body = study.json()
        r = client.post(f"/api/v1/studies/{body['id']}/analyses", json={}, headers=h)
        r.raise_for_status()
        analysis = wait_analysis(client, r.json()["href"], h)
        left = next(i for i in body["inputs"] if i["slot"] == "fundus_left")
        ann = client.post(
            f"/api/v1/inputs/{left['id']}/annotations",
            json={"shape": "box", "geometry": {"x0": 1, "y0": 1, "x1": 9, "y1": 9}, "label": "x"},
            headers=h,
        ).json()
    return {
        "patient_id": patient["id"],
        "study_id": body["id"],
        "input_id": left["id"],
        "analysis_id": analysis["id"],
        "finding_id": analysis["findings"][0]["id"] if analysis["findings"] else "0" * 32,
        "explanation_id": analysis["explanations"][0]["id"] if analysis["explanations"] else "0" * 32,
        "annotation_id": ann["id"],
        "user_id": accounts.users[("A", "clinician")],
        "analysis_status": analysis["status"],
    }


def _send(
    client: httpx.Client, case: Case, accounts: Accounts, i: int, timeout: float
) -> tuple[int | None, str, float]:
    headers = dict(case.kwargs.get("headers", {}))
    headers["X-Forwarded-For"] = f"10.9.{(i // 250) % 250}.{i % 250 + 1}"  # one client per case: no rate limit
    if case.role is not None:
        headers.update(accounts.h(*case.role))
    kwargs = {k: v for k, v in case.kwargs.items() if k != "headers"}
    t0 = time.monotonic()
    try:
        r = client.request(case.method, case.url, headers=headers, timeout=timeout, **kwargs)
    except httpx.TimeoutException:
        return None, "", time.monotonic() - t0
    except httpx.TransportError as exc:
        return 599, f"transport error: {exc}", time.monotonic() - t0
    return r.status_code, r.text, time.monotonic() - t0


def _counts(client: httpx.Client, accounts: Accounts) -> int:
    """Studies at site A: a refused upload must leave no study behind (only accepted ones add one)."""
    h = accounts.h("A", "clinician")
    return int(client.get("/api/v1/studies", params={"limit": 1}, headers=h).json()["total"])


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    per_route: dict[str, Counter[str]] = defaultdict(Counter)
    for o in outcomes:
        per_route[o.case.route][o.verdict] += 1
        per_route[o.case.route]["cases"] += 1
    totals = Counter(o.verdict for o in outcomes)
    return {
        "cases": len(outcomes),
        "routes": len(per_route),
        "server_errors": totals["server_error"],
        "hangs": totals["hang"],
        "unclear": totals["unclear"],
        "wrongly_allowed": totals["wrongly_allowed"],
        "contract_not_refused_at_upload": totals["contract"],
        "clear": totals["clear"],
        "per_route": {r: dict(c) for r, c in sorted(per_route.items())},
    }


def print_table(summary: dict[str, Any], outcomes: list[Outcome]) -> None:
    cols = ("cases", "clear", "unclear", "wrongly_allowed", "server_error", "hang", "contract")
    print(f"\n{'route':60s} " + " ".join(f"{c[:9]:>9s}" for c in cols))
    for route, counts in summary["per_route"].items():
        print(f"{route[:60]:60s} " + " ".join(f"{counts.get(c, 0):9d}" for c in cols))
    print(
        f"\n{summary['cases']} cases over {summary['routes']} routes: {summary['server_errors']} server errors, "
        f"{summary['hangs']} hangs, {summary['unclear']} unclear, {summary['wrongly_allowed']} wrongly allowed, "
        f"{summary['contract_not_refused_at_upload']} stored that only the analyzer contract (#10) refuses"
    )
    for o in outcomes:
        if o.verdict not in ("clear",):
            print(f"  [{o.verdict}] {o.case.route} · {o.case.name}: {o.status} {o.why} {o.detail[:120]!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a request counts as a hang")
    parser.add_argument("--out", type=Path, default=RESULTS / "bad_inputs.json")
    parser.add_argument("--max-rss-mb", type=float, default=6000.0, help="kill the server above this RSS")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="vitalens-bad-inputs-"))
    server = Server(tmp / "data", max_rss_mb=args.max_rss_mb)
    t_start = time.monotonic()
    try:
        server.start()
        accounts = setup_accounts(server.base)
        ids = seed_records(server.base, accounts)
        ctx = Context(accounts=accounts, ids={"version": "1", **ids})
        with httpx.Client(base_url=server.base) as client:
            spec = client.get("/openapi.json").json()
            cases = cases_from_openapi(spec, ctx)
            logger.info("%d cases over %d operations", len(cases), len({c.route for c in cases}))
            before = _counts(client, accounts)
            outcomes = []
            for i, case in enumerate(cases):
                if not server.alive():
                    outcomes.append(Outcome(case, None, "server died", 0.0, "server_error", "server down"))
                    continue
                status, body, seconds = _send(client, case, accounts, i, args.timeout)
                outcomes.append(judge(case, status, body, seconds))
            alive = server.alive() and client.get("/health").status_code == 200
            after = _counts(client, accounts) if alive else before
        log = server.log_text()
        summary = summarise(outcomes)
        accepted = sum(1 for o in outcomes if o.case.route == "POST /api/v1/studies" and o.status in (200, 201))
        summary |= {
            "server_alive_after": alive,
            "server_killed_for_memory": server.killed_for_memory,
            "server_peak_rss_mb": round(server.peak_rss_mb, 1),
            "tracebacks_in_server_log": log.count("Traceback"),
            "studies_before": before,
            "studies_after": after,
            "studies_accepted": accepted,
            "nothing_stored_by_refused_uploads": after - before == accepted,
            "seconds": round(time.monotonic() - t_start, 1),
            "slowest_case_s": round(max(o.seconds for o in outcomes), 2),
        }
        result = {
            "notice": DECISION_SUPPORT_NOTICE,
            "config": {
                "server": "vitalens serve (README way): SQLite in a temporary folder, bundled models, generated key",
                "timeout_s": args.timeout,
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
            "summary": summary,
            "cases": [
                {
                    "route": o.case.route,
                    "case": o.case.name,
                    "status": o.status,
                    "verdict": o.verdict,
                    "why": o.why,
                    "detail": o.detail[:300],
                    "seconds": round(o.seconds, 3),
                }
                for o in outcomes
            ],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
        print_table(summary, outcomes)
        print(
            f"server alive after: {alive}; peak RSS {server.peak_rss_mb:.0f} MB; tracebacks in its log: "
            f"{summary['tracebacks_in_server_log']}; studies {before} → {after} ({accepted} accepted)"
        )
        print(f"wrote {args.out}")
        bad = summary["server_errors"] + summary["hangs"] + summary["unclear"] + summary["wrongly_allowed"]
        return 0 if bad == 0 and alive and summary["nothing_stored_by_refused_uploads"] else 1
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
