// Results / review page: heat-map opacity, confirm / correct findings, sign-off, "analyse now", live stages.
import { api, showError } from './api.js';
import { mountAnnotator } from './annotate.js';

const root = document.getElementById('study');
const studyId = root.dataset.studyId;

document.querySelectorAll('input.opacity').forEach((slider) => {
  const overlay = slider.closest('figure').querySelector('img.overlay');
  const apply = () => { overlay.style.opacity = String(Number(slider.value) / 100); };
  slider.addEventListener('input', apply);
  apply();
});

document.querySelectorAll('tr[data-finding-id]').forEach((row) => {
  row.querySelectorAll('button[data-action]').forEach((btn) => {
    btn.addEventListener('click', async () => {
      const errorEl = row.querySelector('.error');
      showError(errorEl, null);
      const action = btn.dataset.action;
      const body = { action };
      // "current" is the call as the clinician left it: a correction flips it, so the button offers the way back
      const current = (row.dataset.current || row.dataset.positive) === 'true';
      if (action === 'correct') body.corrected_positive = !current;
      try {
        await api(`/api/v1/findings/${row.dataset.findingId}/feedback`, { method: 'POST', json: body });
        const now = action === 'correct' ? body.corrected_positive : row.dataset.positive === 'true';
        row.dataset.current = String(now);
        row.querySelector('.review-state').textContent = action === 'confirm' ? 'Confirmed'
          : `Corrected → ${body.corrected_positive ? 'Positive' : 'Negative'}`;
        const fix = row.querySelector('button[data-action=correct]');
        if (fix) fix.textContent = `Correct to ${now ? 'negative' : 'positive'}`;
      } catch (err) { showError(errorEl, err); }
    });
  });
});

const signoff = document.getElementById('signoff');
if (signoff) {
  signoff.addEventListener('click', async () => {
    const errorEl = document.getElementById('signoff-error');
    showError(errorEl, null);
    signoff.disabled = true;
    try {
      const note = document.getElementById('signoff-note').value.trim();
      const ack = document.getElementById('ack-unreviewed');
      await api(`/api/v1/studies/${studyId}/signoff`, {
        method: 'POST', json: { note: note || null, acknowledge_unreviewed: ack ? ack.checked : false },
      });
      window.location.reload();
    } catch (err) { showError(errorEl, err); signoff.disabled = false; }
  });
}

const amend = document.getElementById('amend');
if (amend) {
  amend.addEventListener('click', async () => {
    const errorEl = document.getElementById('amend-error');
    showError(errorEl, null);
    amend.disabled = true;
    try {
      const reason = document.getElementById('amend-reason').value.trim();
      await api(`/api/v1/studies/${studyId}/amendments`, { method: 'POST', json: { reason } });
      window.location.reload();
    } catch (err) { showError(errorEl, err); amend.disabled = false; }
  });
}

const analyse = document.getElementById('analyse');
if (analyse) {
  analyse.addEventListener('click', async () => {
    const errorEl = document.getElementById('analyse-error');
    showError(errorEl, null);
    try {
      // a saved study is completed in place (PATCH), never re-entered as a new one
      const age = document.getElementById('complete-age');
      if (age && age.value.trim() !== '') {
        await api(`/api/v1/studies/${studyId}`, { method: 'PATCH', json: { age_years: Number(age.value) } });
      }
      await api(`/api/v1/studies/${studyId}/analyses`, { method: 'POST', json: {} });
      window.location.reload();
    } catch (err) { showError(errorEl, err); }
  });
}

if (root.dataset.running === 'true' && root.dataset.analysisId) {
  const list = document.getElementById('stages');
  // The server says when asking again is worth it (Retry-After, 1-30 s) while the analysis is queued or running;
  // every read is audited, so polling faster only takes time from the analyses themselves.
  let waitMs = 800;
  const poll = async () => {
    try {
      const a = await api(`/api/v1/analyses/${root.dataset.analysisId}`, {
        onResponse: (res) => {
          const hint = Number(res.headers.get('Retry-After'));
          waitMs = Number.isFinite(hint) && hint > 0 ? Math.min(hint, 30) * 1000 : 800;
        },
      });
      list.replaceChildren(...a.stages.map((s) => {
        const li = document.createElement('li');
        li.textContent = `${s.title || s.name}: ${s.status.toLowerCase()}${s.error ? ` — ${s.error}` : ''}`;
        return li;
      }));
      if (['COMPLETE', 'PARTIAL', 'FAILED'].includes(a.status)) { window.location.reload(); return; }
    } catch (err) { /* shown on reload */ }
    setTimeout(poll, waitMs);
  };
  poll();
}

document.querySelectorAll('.annotator').forEach((el) => mountAnnotator(el));
