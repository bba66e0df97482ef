// The clinician's note on the results page: save it, and dictate a draft into it.
import { api, showError } from './api.js';
import { mountDictation } from './dictation.js';

const section = document.getElementById('notes');
const text = document.getElementById('notes-text');
if (section && text) {
  const studyId = section.dataset.studyId;
  const errorEl = document.getElementById('notes-error');
  const status = document.getElementById('dictate-status');
  const save = document.getElementById('notes-save');
  save.addEventListener('click', async () => {
    showError(errorEl, null);
    save.disabled = true;
    try {
      const r = await api(`/api/v1/studies/${studyId}/notes`, { method: 'PUT', json: { notes: text.value } });
      text.value = r.notes;
      status.textContent = 'Note saved. Analyse again to update what the notes analyzer extracted.';
    } catch (err) { showError(errorEl, err); }
    finally { save.disabled = false; }
  });
  // where a draft goes: where the clinician last put the cursor, else at the end of the note
  let cursor = null;
  const remember = () => { cursor = text.selectionStart; };
  ['click', 'keyup', 'select'].forEach((ev) => text.addEventListener(ev, remember));
  const button = document.getElementById('dictate');
  if (button && !button.disabled) {
    mountDictation({
      button,
      status,
      url: `/api/v1/studies/${studyId}/dictation`,
      onText: (t) => {
        const start = cursor ?? text.value.length;
        const before = text.value.slice(0, start);
        const sep = before && !/\s$/.test(before) ? ' ' : '';
        text.value = before + sep + t + text.value.slice(start);
        cursor = start + sep.length + t.length;
        text.focus();
        text.setSelectionRange(cursor, cursor);
      },
      onError: (err) => showError(errorEl, err),
    });
  }
}

// An LLM rephrasing of the narrative, when one is configured (the page shows the template paragraph until then).
const narrative = document.getElementById('narrative');
if (narrative && narrative.dataset.llm === 'true') {
  api(`/api/v1/studies/${narrative.dataset.studyId}/narrative`).then((n) => {
    if (n.tier !== 'llm') return;
    document.getElementById('narrative-text').textContent = n.text;
    document.getElementById('narrative-tier').textContent = `Rephrased by ${n.model} and checked against the findings (numbers and findings unchanged). ${n.decision_support_notice}`;
  }).catch(() => { /* the template paragraph stays */ });
}
