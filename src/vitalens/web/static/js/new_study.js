// New study: patient (new or existing), age slider + field, bilateral fundus drop zones with live preview, ECG,
// sample cases; then Input → Processing (live job stages) → Results.
import { api, clearErrors, showError } from './api.js';

const form = document.getElementById('study-form');
const files = {}; // slot → File
let createdPatientId = null; // kept when the study itself fails, so a retry does not create the patient twice
// One key per form: a resubmission (after fixing the age, adding an eye) completes the study it created first.
const submissionKey = (crypto.randomUUID ? crypto.randomUUID()
  : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join(''));
const errorFor = (name) => form.querySelector(`[data-error-for="${name}"]`);

// --- patient mode -----------------------------------------------------------------------------------------------
function patientMode() {
  const mode = form.querySelector('input[name="patient_mode"]:checked').value;
  document.getElementById('patient-existing').hidden = mode !== 'existing';
  document.getElementById('patient-new').hidden = mode !== 'new';
  return mode;
}
form.querySelectorAll('input[name="patient_mode"]').forEach((r) => r.addEventListener('change', () => { patientMode(); updatePlan(); }));
patientMode();

// --- age slider <-> number ---------------------------------------------------------------------------------------
const slider = document.getElementById('age_slider');
const ageField = document.getElementById('age_years');
// The slider shows a position even with no age; it is marked "unset" (and says so) until an age is entered.
function ageState() {
  const has = ageField.value.trim() !== '';
  slider.classList.toggle('unset', !has);
  document.getElementById('age-state').textContent = has ? `Age ${ageField.value} years.`
    : 'Not entered: move the slider or type the age.';
  updatePlan();
}
slider.addEventListener('input', () => { ageField.value = slider.value; ageState(); });
ageField.addEventListener('input', () => {
  const v = Number(ageField.value);
  if (v >= 1 && v <= 120) slider.value = String(Math.round(v));
  ageState();
});

// --- the analysis plan: which analyzers run with what is given, what the others lack ---------------------------
let planTimer = null;
function currentSlots() {
  const slots = Object.keys(files);
  if (ageField.value.trim() !== '') slots.push('age');
  let sex = 'unknown';
  if (patientMode() === 'new') sex = form.sex.value;
  else if (form.patient_id.selectedOptions[0]) sex = form.patient_id.selectedOptions[0].dataset.sex || 'unknown';
  if (sex && sex !== 'unknown') slots.push('sex');
  return slots;
}
function updatePlan() {
  clearTimeout(planTimer);
  planTimer = setTimeout(async () => {
    const params = new URLSearchParams();
    for (const s of currentSlots()) params.append('slots', s);
    const run = document.getElementById('plan-run');
    const missing = document.getElementById('plan-missing');
    try {
      const plan = await api(`/api/v1/analysis-plan?${params}`);
      run.replaceChildren(...(plan.will_run.length ? plan.will_run.map((a) => {
        const li = document.createElement('li');
        li.textContent = `Will run: ${a.title}`;
        return li;
      }) : [Object.assign(document.createElement('li'), { textContent: 'Nothing can be analysed with these inputs yet.' })]));
      missing.replaceChildren(...plan.cannot_run.map((a) => {
        const li = document.createElement('li');
        li.textContent = `${a.title}: needs ${a.missing.join(', ').replaceAll('_', ' ')}`;
        return li;
      }));
      document.getElementById('plan').dataset.runs = String(plan.will_run.length);
    } catch (err) { run.replaceChildren(); missing.replaceChildren(); }
  }, 150);
}

// --- files: inputs, drag-and-drop, previews -----------------------------------------------------------------------
// The file input's accept list is the server's (suffixes and media types): a wrong file is refused at selection.
function accepted(slot, file) {
  const input = form.querySelector(`input[type="file"][data-slot="${slot}"]`);
  const accept = (input && input.accept) ? input.accept.split(',') : [];
  if (!accept.length) return true;
  const name = file.name.toLowerCase();
  return accept.some((a) => (a.startsWith('.') ? name.endsWith(a) : a === file.type));
}
const PREVIEWABLE = ['image/jpeg', 'image/png', 'image/webp', 'image/bmp'];
function setFile(slot, file) {
  const hint = form.querySelector(`input[type="file"][data-slot="${slot}"]`);
  if (!accepted(slot, file)) {
    delete files[slot];
    if (hint) hint.value = '';
    const kinds = hint && hint.dataset.kinds;
    showError(errorFor(slot), new Error(`${file.name} is not a file this input takes${kinds ? `: choose a ${kinds} file` : ''}.`));
    updatePlan();
    return;
  }
  files[slot] = file;
  showError(errorFor(slot), null);
  const zone = form.querySelector(`.drop[data-slot="${slot}"]`);
  if (zone) {
    const img = zone.querySelector('img.preview');
    if (img.src) URL.revokeObjectURL(img.src);
    if (PREVIEWABLE.includes(file.type)) {
      img.src = URL.createObjectURL(file);
      img.hidden = false;
    } else {
      img.removeAttribute('src');
      img.hidden = true;
    }
    zone.classList.add('filled');
  }
  const name = form.querySelector(`[data-name-for="${slot}"]`);
  if (name) name.textContent = `${file.name} (${Math.round(file.size / 1024)} kB)`;
  updatePlan();
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
    ageState();
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
      li.textContent = `${s.title || s.name}: ${s.status.toLowerCase()}${ms}${s.error ? ` — ${s.error}` : ''}`;
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
    if (form.notes && form.notes.value.trim()) fd.append('notes', form.notes.value);
    fd.append('submission_key', submissionKey);
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

form.sex.addEventListener('change', updatePlan);
form.patient_id.addEventListener('change', updatePlan);
ageState();
