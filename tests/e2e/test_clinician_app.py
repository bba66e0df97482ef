"""The clinician web app in a real browser (Chromium via Playwright): first-run set-up, admin, sign-in, a study
with two fundus images, age and an ECG, results, annotation kept across reloads, review, sign-off, PDF, timeline,
cross-site isolation; then axe-core on every page and screenshots at desktop and phone size.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, SeededSite

logger = logging.getLogger(__name__)

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "vitalens" / "web" / "static" / "samples"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def _watch(page: Any, errors: list[str], *, allow_404: bool = False) -> None:
    def on_console(msg: Any) -> None:
        if msg.type == "error" and not (allow_404 and "404" in msg.text):
            errors.append(f"{page.url}: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))


def _sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/worklist$"))


def _axe(page: Any, axe_source: str) -> list[str]:
    page.evaluate(axe_source)  # through the debugger protocol: the page's CSP forbids inline scripts
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def test_clinician_flow(server: str, browser: Any, tmp_path: Path, artifacts_dir: Path) -> None:
    errors: list[str] = []
    admin_ctx = browser.new_context(viewport=DESKTOP)
    page = admin_ctx.new_page()
    _watch(page, errors)

    # first run: / → /login → /setup; create the admin and site, land on the admin page
    page.goto(server)
    page.wait_for_url(re.compile(r".*/setup$"))
    page.screenshot(path=str(artifacts_dir / "setup-desktop.png"))
    page.fill("#site_name", "North Clinic")
    page.fill("#full_name", "Ada Admin")
    page.fill("#email", "admin@north.example")
    page.fill("#password", "short")
    page.click("#setup-form button[type=submit]")
    page.wait_for_selector("#setup-error:not([hidden])")
    assert "at least" in page.locator("#setup-error").inner_text()
    errors.clear()  # the browser logs the deliberate 422 above as a console error  # API error shown by the form
    page.fill("#password", PASSWORD)
    page.click("#setup-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin$"))

    # admin: a second site, a clinician here and one at the other site
    page.fill("#s-name", "South Clinic")
    page.click("#site-form button[type=submit]")
    page.wait_for_selector("li:text-is('South Clinic')")
    for email, site in (("clin@north.example", "North Clinic"), ("clin@south.example", "South Clinic")):
        page.fill("#u-email", email)
        page.fill("#u-password", PASSWORD)
        page.select_option("#u-role", "clinician")
        page.select_option("#u-site", label=site)
        page.click("#user-form button[type=submit]")
        page.wait_for_selector(f"#created:has-text('{email}')")
    admin_ctx.close()

    # the clinician signs in and creates a study: sample case, then the left eye replaced by a file upload
    ctx = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = ctx.new_page()
    _watch(page, errors)
    _sign_in(page, server, "clin@north.example")
    page.goto(f"{server}/studies/new")
    page.check("input[name=patient_mode][value=new]")
    page.fill("#pseudonym", "E2E-001")
    page.select_option("#sample", "synthetic-dr")
    page.wait_for_selector(".drop[data-slot=fundus_right] img.preview:not([hidden])")
    page.wait_for_selector("[data-name-for=ecg]:has-text('.csv')")
    # a wrong file is refused when chosen, naming the kinds the slot takes (the same list as the server's)
    page.set_input_files("#fundus_left", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hi"}])
    err = page.locator("[data-error-for=fundus_left]")
    assert "is not a file this input takes: choose a JPEG, PNG" in err.inner_text()
    page.set_input_files("#fundus_left", str(SAMPLES / "synthetic-dr-left.jpg"))
    assert err.is_hidden()
    page.fill("#age_years", "")
    assert "Not entered" in page.locator("#age-state").inner_text()
    page.fill("#age_years", "63")
    assert page.input_value("#age_slider") == "63"
    assert page.locator("#age-state").inner_text() == "Age 63 years."
    # the plan says what will run with these inputs before anything is submitted
    page.wait_for_selector("#plan-run li:has-text('Will run:')")
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/studies/[0-9a-f]+$"), timeout=120_000)
    study_url = page.url

    # results: band with text, the bar chart with thresholds, the ECG intervals, the model card, the notice
    assert page.locator(".badge", has_text="Band:").count() >= 1
    fundus = page.locator("section.analyzer[data-analyzer='fundus.odir']")
    assert fundus.locator("svg.bars-wide rect.bar").count() == 8
    assert fundus.locator("svg.bars-wide line.threshold").count() == 8
    ecg = page.locator("section.analyzer[data-analyzer='ecg.ptbxl']")
    assert ecg.locator("svg.bars-wide rect.bar").count() == 5  # NORM, MI, STTC, CD, HYP
    assert page.locator("table.intervals").count() >= 1
    assert page.locator(".banner.demo").count() >= 1
    assert "decision support" in page.locator(".notice").inner_text().lower()
    rows = ecg.locator("table.findings tbody tr")
    assert rows.count() == 5, "the five PTB-XL superclasses"
    for i in range(rows.count()):
        tiers = rows.nth(i).locator(".badge", has_text="Tier:").count()
        if rows.nth(i).get_attribute("class") == "normal":  # Normal ECG: the absence of findings has no tier
            assert tiers == 0 and rows.nth(i).locator("td", has_text="—").count() == 1
        else:
            assert tiers == 1, "each abnormal ECG finding shows its risk tier"
    ecg_png = page.request.get(server + page.locator(".ecg img").first.get_attribute("src"))
    assert ecg_png.status == 200 and ecg_png.headers["content-type"] == "image/png"

    # annotation: a polygon on the first image, kept across a reload
    ann = page.locator(".annotator").first
    page.wait_for_selector(".annotator[data-loaded=true]")
    ann.locator("select.tool").select_option("polygon")
    ann.locator("input.label").fill("exudate")
    ann.locator("canvas").scroll_into_view_if_needed()
    box = ann.locator("canvas").bounding_box()
    for fx, fy in ((0.3, 0.3), (0.6, 0.35), (0.45, 0.65)):
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    ann.locator("canvas").press("Enter")
    page.wait_for_selector(".annotator[data-count='1'], .annotator .error:not([hidden])")
    assert ann.get_attribute("data-count") == "1", ann.locator(".error").inner_text()
    page.reload()
    page.wait_for_selector(".annotator[data-loaded=true]")
    assert page.locator(".annotator").first.get_attribute("data-count") == "1"
    assert "polygon: exudate" in page.locator(".annotator ul.regions").first.inner_text()
    # the label is edited in place (a new version of the annotation), and the edit survives a reload
    regions = page.locator(".annotator ul.regions").first
    regions.locator("button.edit-label").first.click()
    regions.locator("input.label-edit").fill("hard exudate")
    regions.locator("input.label-edit").press("Enter")
    page.wait_for_selector(".annotator ul.regions li:has-text('hard exudate (edited, v2)')")
    page.reload()
    page.wait_for_selector(".annotator[data-loaded=true]")
    assert "polygon: hard exudate (edited, v2)" in page.locator(".annotator ul.regions").first.inner_text()

    # review: correct the top finding; sign off; the review is kept on reload
    row = page.locator("tr[data-finding-id]").first
    row.locator("button[data-action=correct]").click()
    page.wait_for_selector("tr[data-finding-id] .review-state:has-text('Corrected')")
    # after a correction the button offers the way back, not the same correction again
    fix = row.locator("button[data-action=correct]").inner_text()
    assert fix == ("Correct to positive" if row.get_attribute("data-positive") == "true" else "Correct to negative")
    # signing with unreviewed findings needs the confirmation box; without it the page says why
    if page.locator("#ack-unreviewed").count():
        page.click("#signoff")
        page.wait_for_selector("#signoff-error:not([hidden])")
        assert "findings are unreviewed" in page.locator("#signoff-error").inner_text()
        errors[:] = [e for e in errors if "409 (Conflict)" not in e]  # the deliberate refusal, logged by Chromium
        page.check("#ack-unreviewed")
    page.click("#signoff")
    page.wait_for_selector("#signed-badge")
    assert "Corrected" in page.locator("tr[data-finding-id] .review-state").first.inner_text()
    assert "Signed off by" in page.locator("#signer").inner_text()
    # signed: read-only; an amendment with a reason reopens it, and re-signing keeps both versions
    assert page.locator("tr[data-finding-id] button[data-action=confirm]").count() == 0
    page.fill("#amend-reason", "second look at the photographs")
    page.click("#amend")
    page.wait_for_selector("#amending-badge")
    page.locator("tr[data-finding-id]").first.locator("button[data-action=confirm]").click()
    page.wait_for_selector("tr[data-finding-id] .review-state:has-text('Confirmed')")
    if page.locator("#ack-unreviewed").count():
        page.check("#ack-unreviewed")
    page.click("#signoff")
    page.wait_for_selector("#amended-badge")
    assert "amended because: second look at the photographs" in page.locator("#report-history").inner_text()

    # the PDF: downloaded from the page, with the patient, a finding and the notice in its text
    with page.expect_download() as info:
        page.click("#pdf-link")
    pdf_path = tmp_path / "report.pdf"
    info.value.save_as(pdf_path)
    import pypdf

    text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf_path.read_bytes())).pages)
    text = " ".join(text.split())
    assert "E2E-001" in text
    assert "decision support" in text.lower()

    # worklist shows it as signed; the timeline has a point linked to the study
    page.goto(f"{server}/worklist")
    assert page.locator("tr", has_text="E2E-001").locator(".badge", has_text="Signed off").count() == 1
    page.click("a:text-is('E2E-001')")
    page.wait_for_url(re.compile(r".*/patients/[0-9a-f]+$"))
    assert page.locator("svg.timeline circle").count() >= 1
    href = page.locator("svg.timeline a").first.get_attribute("href")
    assert study_url.endswith(href)
    ctx.close()

    # a clinician of another site sees none of it: not in the worklist, 404 on the page and the API
    other = browser.new_context(viewport=DESKTOP)
    page = other.new_page()
    _watch(page, errors, allow_404=True)
    _sign_in(page, server, "clin@south.example")
    assert "E2E-001" not in page.content()
    response = page.goto(study_url)
    assert response.status == 404
    assert page.locator("h1", has_text="Not found").count() == 1
    assert page.request.get(study_url.replace("/studies/", "/api/v1/studies/")).status == 404
    other.close()
    assert errors == []


PAGES = (
    ("login", None, "/login"),
    ("worklist", "clinician", "/worklist"),
    ("new-study", "clinician", "/studies/new"),
    ("study", "clinician", "study"),
    ("print", "clinician", "print"),
    ("timeline", "clinician", "timeline"),
    ("glossary", "clinician", "/glossary"),
    ("knowledge", "clinician", "/knowledge"),
    ("admin", "admin", "/admin"),
    ("audit", "admin", "/admin/audit"),
)


_TIMELINE_JS = """fig => {
  const pts = [...fig.querySelectorAll('svg.timeline a')].map(a => {
    const c = a.querySelector('circle').getBoundingClientRect();
    return {href: a.getAttribute('href'), label: a.getAttribute('aria-label'), series: a.dataset.series,
            x: c.x + c.width / 2,
            y: c.y + c.height / 2, r: c.width / 2};
  });
  const legend = [...fig.querySelectorAll('ul.tl-legend li[data-colour]')].map(li => ({
    colour: li.dataset.colour, text: li.textContent.trim(), right: li.getBoundingClientRect().right,
    clipped: li.scrollWidth > li.clientWidth + 1}));
  return {pts, legend, right: fig.getBoundingClientRect().right};
}"""


def _timeline_problems(page: Any) -> list[str]:
    """Each panel: two studies' points of one finding never on top of each other, every point opens its own study
    where it is drawn, no colour twice in a legend, no legend label cut off."""
    out: list[str] = []
    hrefs: set[str] = set()
    for fig in page.locator("section.timeline-panel figure").all():
        for circle in fig.locator("svg.timeline a circle").all():
            circle.scroll_into_view_if_needed()
            hit = circle.evaluate(
                """c => { const b = c.getBoundingClientRect();
                const el = document.elementFromPoint(b.x + b.width / 2, b.y + b.height / 2);
                const a = el && el.closest('a');
                return [a && a.getAttribute('href'), c.parentElement.getAttribute('href')]; }"""
            )
            if hit[0] != hit[1]:
                out.append(f"a point of {hit[1]} is covered (a click opens {hit[0]})")
        info = fig.evaluate(_TIMELINE_JS)
        by_series: dict[str, list[dict[str, Any]]] = {}
        for p in info["pts"]:
            hrefs.add(p["href"])
            by_series.setdefault(p["series"], []).append(p)
        for series, pts in by_series.items():
            for i, a in enumerate(pts):
                for b in pts[i + 1 :]:
                    if (
                        a["href"] != b["href"]
                        and ((a["x"] - b["x"]) ** 2 + (a["y"] - b["y"]) ** 2) ** 0.5 < a["r"] + b["r"]
                    ):
                        out.append(f"{series}: the points of two studies overlap ({a['label']} / {b['label']})")
        colours = [item["colour"] for item in info["legend"]]
        if len(set(colours)) != len(colours) or not colours:
            out.append(f"a legend repeats a colour (or is empty): {info['legend']}")
        for item in info["legend"]:
            if item["clipped"] or item["right"] > info["right"] + 1:
                out.append(f"the legend label {item['text']!r} is cut off")
    if len(hrefs) < 2:
        out.append(f"the two same-day studies are not both on the timeline: {sorted(hrefs)}")
    return out


def _reflow_problems(page: Any, width: int) -> list[str]:
    """Tables that reflow on a phone (worklist, audit trail, users): one card per row, nothing to scroll sideways,
    so every cell (the worklist's Risk and Review ones above all) is on screen as it is."""
    out: list[str] = []
    for table in page.locator("table.reflow").all():
        inner = table.evaluate("t => [t.parentElement.scrollWidth, t.parentElement.clientWidth]")
        if inner[0] > inner[1] + 1:
            out.append(f"a reflowed table scrolls sideways ({inner[0]} px in {inner[1]} px)")
        for cell in table.locator("tbody td[data-label]").all():
            box = cell.bounding_box()
            if box and (box["x"] < -1 or box["x"] + box["width"] > width + 1):
                label = cell.get_attribute("data-label")
                out.append(f"the {label} cell lies off-screen at x = {box['x']:.0f}–{box['x'] + box['width']:.0f} px")
    return out


def _session_state(browser: Any, base: str, email: str) -> Any:
    """A signed-in cookie session for ``email``, made through the session API (one login per role and test)."""
    ctx = browser.new_context()
    response = ctx.request.post(f"{base}/api/v1/auth/session", data={"email": email, "password": PASSWORD})
    assert response.ok, response.text()
    state = ctx.storage_state()
    ctx.close()
    return state


@pytest.mark.parametrize("viewport_name", ["desktop", "phone"])
def test_pages_accessible_and_screenshots(
    seeded: SeededSite, browser: Any, axe_source: str, artifacts_dir: Path, viewport_name: str
) -> None:
    """Independent of the flow test: its own server, seeded through the API (any order, alone or not)."""
    viewport = DESKTOP if viewport_name == "desktop" else PHONE
    states = {
        "clinician": _session_state(browser, seeded.base, seeded.clinician_email),
        "admin": _session_state(browser, seeded.base, seeded.admin_email),
    }
    targets = {"study": seeded.study_url, "print": seeded.study_url + "/print", "timeline": seeded.timeline_url}
    problems: list[str] = []
    for name, state_key, where in PAGES:
        ctx = browser.new_context(viewport=viewport, storage_state=states[state_key] if state_key else None)
        page = ctx.new_page()
        errors: list[str] = []
        _watch(page, errors)
        page.goto(seeded.base + where if where.startswith("/") else targets[where])
        page.wait_for_load_state("networkidle")
        if name == "study":
            page.wait_for_selector(".annotator[data-loaded=true]")
        if name == "timeline":
            problems += [f"timeline: {p}" for p in _timeline_problems(page)]
        if name == "new-study":
            # an API error names its input by the field ("fundus_left: …"); the page says what the clinician sees
            said = page.evaluate(
                """async () => { const m = await import('/static/js/api.js');
                return [m.inWords('fundus_left: image is 50×50 px', 'fundus_left'),
                        m.inWords('age_years: age 300 years is outside 0-120', 'age_years'),
                        m.inWords('x_y: unchanged', 'x_y')]; }"""
            )
            assert said == [
                "Left eye (OS): image is 50×50 px",
                "Age: age 300 years is outside 0-120",
                "x_y: unchanged",
            ], said
        if name == "worklist":
            assert page.locator("table.reflow td[data-label=Risk] .badge").count() >= 1
            assert page.locator("table.reflow td[data-label=Review] .badge").count() >= 1
        page.screenshot(path=str(artifacts_dir / f"{name}-{viewport_name}.png"), full_page=True)
        if viewport_name == "phone":
            # usable at 390 px: the page itself never scrolls sideways (the ECG sheet and the timeline scroll in
            # their own boxes; the findings bars are stacked to fit), and every review button lies inside the viewport
            wide = page.evaluate("document.documentElement.scrollWidth")
            if wide > viewport["width"] + 1:
                problems.append(f"{name}: the page is {wide} px wide at {viewport['width']} px")
            for box in [b.bounding_box() for b in page.locator("tr[data-finding-id] button").all()]:
                if box and box["x"] + box["width"] > viewport["width"] + 1:
                    problems.append(f"{name}: a review button is clipped at x = {box['x'] + box['width']:.0f} px")
            problems += [f"{name}: {p}" for p in _reflow_problems(page, viewport["width"])]
            for fig in page.locator("figure.chart-fig:has(svg.bars-narrow)").all():
                shown = fig.evaluate(
                    "f => [...f.querySelectorAll('svg')].filter(s => s.getBBox && "
                    "getComputedStyle(s).display !== 'none').map(s => s.classList.value)"
                )
                scroll = fig.evaluate("f => f.scrollWidth - f.clientWidth")
                if shown != ["chart bars stacked bars-narrow"] or scroll > 1:
                    problems.append(f"{name}: findings chart shows {shown} and scrolls {scroll} px on a phone")
        problems += [f"{name}: {v}" for v in _axe(page, axe_source)]
        problems += [f"{name}: console: {e}" for e in errors]
        ctx.close()
    assert problems == [], "\n".join(problems)


_TEXT_BOXES_JS = """() => {
  // every line box of every visible text node (and every picture), in page coordinates
  const texts = [], pictures = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    const el = n.parentElement;
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden' || el.closest('[hidden], .sr-only, .skip, title, desc')) continue;
    if (el.checkVisibility && !el.checkVisibility({visibilityProperty: true})) continue;  // a closed <details>
    // text inside a box clipped to nothing (a reflowed table's header kept for screen readers) is not drawn
    let clipped = false;
    for (let a = el; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a), b = a.getBoundingClientRect();
      if (s.overflow !== 'visible' && (b.width <= 1 || b.height <= 1)) { clipped = true; break; }
    }
    if (clipped) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    for (const r of range.getClientRects()) {
      if (r.width < 2 || r.height < 2) continue;
      texts.push({text: n.textContent.trim().slice(0, 40), x0: r.left + scrollX, y0: r.top + scrollY,
                  x1: r.right + scrollX, y1: r.bottom + scrollY});
    }
  }
  for (const img of document.querySelectorAll('img')) {
    const r = img.getBoundingClientRect();
    if (r.width > 2 && r.height > 2)
      pictures.push({x0: r.left + scrollX, y0: r.top + scrollY, x1: r.right + scrollX, y1: r.bottom + scrollY});
  }
  return {texts, pictures};
}"""


def _html_overlaps(page: Any, slack: float = 1.0) -> list[str]:
    """Lines of text drawn over other text or over a picture (the rendered page's own boxes)."""

    def hit(a: dict[str, float], b: dict[str, float]) -> bool:
        return (
            min(a["x1"], b["x1"]) - max(a["x0"], b["x0"]) > slack
            and min(a["y1"], b["y1"]) - max(a["y0"], b["y0"]) > slack
        )

    boxes = page.evaluate(_TEXT_BOXES_JS)
    texts = boxes["texts"]
    out = [
        f"{a['text']!r} overlaps {b['text']!r}"
        for i, a in enumerate(texts)
        for b in texts[i + 1 :]
        if hit(a, b) and not (a["text"] == b["text"] and a["x0"] == b["x0"] and a["y0"] == b["y0"])
    ]
    out += [f"{t['text']!r} lies on a picture" for t in texts for p in boxes["pictures"] if hit(t, p)]
    return out


@pytest.mark.parametrize("viewport_name", ["desktop", "phone"])
def test_report_pdf_and_print_view_have_no_text_over_text(
    seeded: SeededSite, browser: Any, artifacts_dir: Path, viewport_name: str
) -> None:
    """The seeded study's PDF (real analyzers, heat maps, 12-lead sheets): every page rendered to PNG under
    test-artifacts/pdf, no glyph on another or on a picture, no heading stranded at a page foot; the print view
    with the same content (pictures, ECG sheet, sign-off), no navigation bar, and no line of text drawn over
    another or over a picture."""
    from tests.reports.pdf_layout import layout_problems

    pytest.importorskip("pypdfium2", reason="pypdfium2 (dev dependency) renders the PDF pages")
    viewport = DESKTOP if viewport_name == "desktop" else PHONE
    ctx = browser.new_context(
        viewport=viewport, storage_state=_session_state(browser, seeded.base, seeded.clinician_email)
    )
    page = ctx.new_page()
    problems: list[str] = []
    if viewport_name == "desktop":
        pdf = page.request.get(seeded.study_url.replace("/studies/", "/api/v1/studies/") + "/report.pdf")
        assert pdf.status == 200 and pdf.body()[:5] == b"%PDF-"
        found, pngs = layout_problems(pdf.body(), name="seeded-report")
        assert len(pngs) >= 2
        problems += [f"PDF {p}" for p in found]
    page.goto(seeded.study_url + "/print")
    page.wait_for_load_state("networkidle")
    assert page.locator("header.top").count() == 0, "the print view has no navigation bar"
    assert page.locator("img[src*='/inputs/']").count() >= 2 and page.locator("figure.ecg img").count() >= 1
    assert page.locator("#print-signoff").count() == 1
    page.emulate_media(media="print")
    page.screenshot(path=str(artifacts_dir / f"print-media-{viewport_name}.png"), full_page=True)
    problems += [f"print view: {p}" for p in _html_overlaps(page)]
    # the checker itself sees a line drawn over another (so a pass means something)
    page.evaluate(
        """() => { const r = document.querySelector('h1').getBoundingClientRect();
        const p = document.createElement('p'); p.textContent = 'drawn over the title';
        Object.assign(p.style, {position: 'absolute', margin: 0, left: (r.left + scrollX) + 'px',
                                top: (r.top + scrollY) + 'px'});
        document.body.appendChild(p); }"""
    )
    assert any(
        "'drawn over the title' overlaps" in p or "overlaps 'drawn over the title'" in p for p in _html_overlaps(page)
    )
    ctx.close()
    assert problems == [], "\n".join(problems)
