"""The results page's note, narrative and assistant panels, and the knowledge-base page, without a browser."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import World

pytest.importorskip("faiss", reason="the notes extra is not installed (faiss-cpu)")


def test_study_page_shows_note_narrative_and_chat(client: TestClient, db, world: World) -> None:
    world.a.study.notes = "No chest pain <b>today</b>."
    db.commit()
    page = client.get(f"/studies/{world.a.study.id}", headers=world.a.headers["clinician"])
    assert page.status_code == 200
    html = page.text
    assert 'id="notes-text"' in html and "No chest pain &lt;b&gt;today&lt;/b&gt;." in html  # escaped, editable
    assert 'id="dictate"' in html and 'id="chat-form"' in html
    narrative = re.search(r'<p class="narrative-text" id="narrative-text">(.*?)</p>', html).group(1)
    assert narrative == (
        "No analysis has finished for this study. No finding has been reviewed by a clinician yet; the report is not "
        "signed."
    )
    assert "No language model is configured: answers are assembled by templates" in html
    assert "<script>" not in html


def test_roles_see_what_they_may_do(client: TestClient, world: World) -> None:
    admin = client.get(f"/studies/{world.a.study.id}", headers=world.a.headers["admin"]).text
    assert 'id="notes-text"' not in admin and 'id="dictate"' not in admin  # admins may read, not edit the note
    assert 'id="chat-form"' in admin


def test_knowledge_page_has_every_citation_anchor(client: TestClient, world: World) -> None:
    from vitalens.assistant import knowledge_passages

    html = client.get("/knowledge", headers=world.a.headers["reviewer"]).text
    for p in knowledge_passages():
        assert f'id="{p.anchor.split("#", 1)[1]}"' in html, p.id
    assert client.get("/knowledge", follow_redirects=False).status_code == 303


def test_new_study_form_takes_a_note(client: TestClient, world: World) -> None:
    html = client.get("/studies/new", headers=world.a.headers["clinician"]).text
    assert '<textarea id="notes" name="notes" rows="3" maxlength="20000"' in html
    assert 'data-error-for="notes"' in html


def test_print_view_has_the_narrative_and_the_note(client: TestClient, db, world: World) -> None:
    world.a.study.notes = "Father had MI."
    db.commit()
    html = client.get(f"/studies/{world.a.study.id}/print", headers=world.a.headers["reviewer"]).text
    assert '<h2>Clinician\'s note</h2>\n<p class="note-text">Father had MI.</p>' in html
    assert '<p class="narrative-text">No analysis has finished for this study.' in html


def test_chat_panel_says_when_the_assistant_is_not_installed(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vitalens.service.ops import assistant as ops

    monkeypatch.setattr(ops, "_RETRIEVAL_MODULES", ("no_such_module",))
    html = client.get(f"/studies/{world.a.study.id}", headers=world.a.headers["clinician"]).text
    assert "The assistant is not installed on this server (no_such_module missing" in html
    assert 'id="chat-form"' not in html
