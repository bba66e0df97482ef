// New study: patient (new or existing), age slider + field, bilateral fundus drop zones with live preview, ECG,
// sample cases; then Input → Processing (live job stages) → Results.
import { api, clearErrors, showError } from './api.js';

const form = document.getElementById('study-form');
const files = {}; // slot → File
let createdPatientId = null; // kept when the study itself fails, so a retry does not create the patient twice
const errorFor = (name) => form.querySelector(`[data-error-for="${name}"]`);

// --- patient mode -----------------------------------------------------------------------------------------------
function patientMode() {
  const mode = form.querySelector('input[name="patient_mode"]:checked').value;
  document.getElementById('patient-existing').hidden = mode !== 'existing';
  document.getElementById('patient-new').hidden = mode !== 'new';
  return mode;
}
form.querySelectorAll('input[name="patient_mode"]').forEach((r) => r.addEventListener('change', patientMode));
patientMode();

// --- age slider <-> number ---------------------------------------------------------------------------------------
const slider = document.getElementById('age_slider');
const ageField = document.getElementById('age_years');
slider.addEventListener('input', () => { ageField.value = slider.value; });
ageField.addEventListener('input', () => {
  const v = Number(ageField.value);
  if (v >= 1 && v <= 120) slider.value = String(Math.round(v));
});

// --- files: inputs, drag-and-drop, previews -----------------------------------------------------------------------
function setFile(slot, file) {
  files[slot] = file;
  showError(errorFor(slot), null);
  const zone = form.querySelector(`.drop[data-slot="${slot}"]`);
  if (zone) {
    const img = zone.querySelector('img.preview');
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(file);
    img.hidden = false;
    zone.classList.add('filled');
  }
  const name = form.querySelector(`[data-name-for="${slot}"]`);
  if (name) name.textContent = `${file.name} (${Math.round(file.size / 1024)} kB)`;
  checkQuality(slot, file);
}

// --- input quality at upload time: the same gates that run before the analyzers ------------------------------------
const QUALITY_TEXT = {
  pass: 'Quality check passed.',
  flag: 'Will be analysed, with a quality flag: ',
  refuse: 'Will not be analysed: ',
  unchecked: 'No quality gate guards this input.',
};
async function checkQuality(slot, file) {
  const el = form.querySelector(`[data-quality-for="${slot}"]`);
  if (!el) return;
  el.hidden = false;
  el.className = 'quality';
  el.textContent = 'Checking input quality…';
  const body = new FormData();
  body.append('file', file);
  try {
    const out = await api(`/api/v1/quality/${slot}`, { method: 'POST', form: body });
    const reasons = (out.results || []).filter((r) => r.verdict !== 'pass').flatMap((r) => r.reasons || []);
    el.textContent = (QUALITY_TEXT[out.verdict] || '') + reasons.join('; ');
    el.classList.add(`q-${out.verdict}`);
  } catch (err) {
    el.textContent = `Quality check unavailable: ${err.message}`;
  }
}
form.querySelectorAll('input[type="file"][data-slot]').forEach((input) => {
  input.addEventListener('change', () => { if (input.files[0]) setFile(input.dataset.slot, input.files[0]); });
});
form.querySelectorAll('.drop').forEach((zone) => {
  zone.addEventListener('dragover', (ev) => { ev.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    zone.classList.remove('over');
    const file = ev.dataTransfer.files[0];
    if (file) setFile(zone.dataset.slot, file);
  });
});

// --- sample cases ---------------------------------------------------------------------------------------------------
const sampleSelect = document.getElementById('sample');
let samples = [];
api('/static/samples/index.json').then((list) => {
  samples = list || [];
  for (const s of samples) {
    const opt = document.createElement('option');
    opt.value = s.id;
    opt.textContent = `${s.title}${s.synthetic ? ' (synthetic)' : ''}`;
    sampleSelect.appendChild(opt);
  }
}).catch((err) => showError(errorFor('sample'), err));

sampleSelect.addEventListener('change', async () => {
  const s = samples.find((x) => x.id === sampleSelect.value);
  if (!s) return;
  showError(errorFor('sample'), null);
  try {
    for (const [slot, name] of Object.entries(s.files)) {
      const res = await fetch(`/static/samples/${name}`);
      if (!res.ok) throw new Error(`sample file ${name} could not be loaded (${res.status})`);
      const blob = await res.blob();
      setFile(slot, new File([blob], name, { type: blob.type || 'application/octet-stream' }));
    }
    ageField.value = String(s.age_years);
    slider.value = String(s.age_years);
    const desc = document.getElementById('description');
    if (!desc.value) desc.value = `${s.title}`.slice(0, 200);
    if (patientMode() === 'new' && !form.pseudonym.value) form.pseudonym.value = `SYN-${s.id.replace('synthetic-', '').toUpperCase()}`;
  } catch (err) { showError(errorFor('sample'), err); }
});

// --- steps + processing ---------------------------------------------------------------------------------------------
function step(name) {
  for (const id of ['input', 'processing', 'results']) {
    const li = document.getElementById(`step-${id}`);
    li.classList.toggle('current', id === name);
    if (id === name) li.setAttribute('aria-current', 'step'); else li.removeAttribute('aria-current');
  }
}

async function follow(analysisId, studyId) {
  const list = document.getElementById('stages');
  const status = document.getElementById('proc-status');
  for (;;) {
    let a;
    try { a = await api(`/api/v1/analyses/${analysisId}`); } catch (err) {
      showError(document.getElementById('proc-error'), err);
      return;
    }
    list.replaceChildren(...a.stages.map((s) => {
      const li = document.createElement('li');
      li.className = `stage ${s.status.toLowerCase()}`;
      const ms = s.duration_ms != null ? ` · ${(s.duration_ms / 1000).toFixed(1)} s` : '';
      li.textContent = `${s.name}: ${s.status.toLowerCase()}${ms}${s.error ? ` — ${s.error}` : ''}`;
      return li;
    }));
    status.textContent = `Analysis ${a.status.toLowerCase()}`;
    if (['COMPLETE', 'PARTIAL', 'FAILED'].includes(a.status)) {
      step('results');
      window.location.assign(`/studies/${studyId}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 600));
  }
}

// --- submit -----------------------------------------------------------------------------------------------------------
function placeError(err, fallbackId) {
  const el = (err.field && errorFor(err.field)) || document.getElementById(fallbackId);
  showError(el, err);
  (el.closest('fieldset') || el).scrollIntoView({ block: 'center' });
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  clearErrors(form);
  const button = document.getElementById('submit');
  button.disabled = true;
  try {
    let patientId;
    if (patientMode() === 'new' && createdPatientId) {
      patientId = createdPatientId;
    } else if (patientMode() === 'new') {
      const body = { pseudonym: form.pseudonym.value.trim(), sex: form.sex.value };
      if (form.year_of_birth.value) body.year_of_birth = Number(form.year_of_birth.value);
      try {
        patientId = (await api('/api/v1/patients', { method: 'POST', json: body })).id;
        createdPatientId = patientId;
      } catch (err) {
        showError(errorFor('patient'), err);
        return;
      }
    } else {
      patientId = form.patient_id.value;
      if (!patientId) { showError(errorFor('patient'), new Error('Choose a patient or create a new one.')); return; }
    }
    const fd = new FormData();
    fd.append('patient_id', patientId);
    fd.append('study_date', form.study_date.value);
    fd.append('description', form.description.value);
    fd.append('age_years', ageField.value);
    for (const [slot, file] of Object.entries(files)) fd.append(slot, file, file.name);
    form.querySelectorAll('[data-hint-for]').forEach((el) => {
      if (el.value.trim() && files[el.dataset.hintFor]) fd.append(el.name, el.value.trim());
    });
    let study;
    try { study = await api('/api/v1/studies', { method: 'POST', form: fd }); } catch (err) {
      placeError(err, 'form-error');
      return;
    }
    let accepted;
    try { accepted = await api(`/api/v1/studies/${study.id}/analyses`, { method: 'POST', json: {} }); } catch (err) {
      showError(document.getElementById('form-error'), new Error(`The study was saved but could not be analysed: ${err.message}`));
      return;
    }
    form.hidden = true;
    document.getElementById('processing').hidden = false;
    step('processing');
    await follow(accepted.id, study.id);
  } finally {
    button.disabled = false;
  }
});
