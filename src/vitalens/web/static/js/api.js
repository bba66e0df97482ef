// Small fetch wrapper for the vitalens JSON API: cookie session + CSRF header, one silent refresh on 401,
// and API errors turned into readable messages shown next to what caused them.

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field || null;
  }
}

export function csrfToken() {
  const m = document.cookie.split('; ').find((c) => c.startsWith('vitalens_csrf='));
  return m ? decodeURIComponent(m.slice('vitalens_csrf='.length)) : '';
}

// The API names the input an error concerns by its field ("fundus_left: image is 50×50 px…"); on a page the message
// starts with what the clinician sees instead: the field's label ("Left eye (OS)"), or its aria-label.
export function fieldTitle(field) {
  if (!field || typeof field !== 'string') return '';
  // the input itself, or one that stands for the field under another id (data-field="age_years")
  const input = document.getElementById(field) || document.querySelector(`[data-field="${CSS.escape(field)}"]`);
  if (input && input.dataset.title) return input.dataset.title;
  const label = input && input.id && document.querySelector(`label[for="${CSS.escape(input.id)}"]`);
  if (label && label.textContent.trim()) return label.textContent.trim();
  return (input && input.getAttribute('aria-label')) || '';
}

export function inWords(message, field) {
  const title = fieldTitle(field);
  if (!title || !field) return message;
  const prefix = `${field}: `;
  return `${title}: ${message.startsWith(prefix) ? message.slice(prefix.length) : message}`;
}

function describe(status, body) {
  if (body && typeof body.detail === 'string' && Array.isArray(body.errors)) {
    const first = body.errors[0] || {};
    const loc = (first.loc || []).filter((x) => x !== 'body');
    return { message: body.detail, field: loc.slice(-1)[0] };
  }
  if (body && Array.isArray(body.detail)) {
    const first = body.detail[0] || {};
    const loc = (first.loc || []).filter((x) => x !== 'body');
    return { message: body.detail.map((d) => `${(d.loc || []).slice(-1)[0]}: ${d.msg}`).join('; '), field: loc.slice(-1)[0] };
  }
  if (body && body.detail) return { message: inWords(String(body.detail), body.field), field: body.field };
  const generic = { 401: 'Your session has ended: please sign in again.', 403: 'Not allowed.', 404: 'Not found.',
    413: 'The file is too large.', 429: 'Too many requests: wait a moment and retry.' };
  return { message: generic[status] || `The server answered ${status}.`, field: null };
}

async function send(path, opts) {
  const headers = { Accept: 'application/json' };
  const method = opts.method || 'GET';
  let body;
  if (opts.json !== undefined) { headers['Content-Type'] = 'application/json'; body = JSON.stringify(opts.json); }
  if (opts.form !== undefined) body = opts.form;
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken();
  return fetch(path, { method, headers, body, credentials: 'same-origin' });
}

export async function api(path, opts = {}) {
  let res;
  try {
    res = await send(path, opts);
    if (res.status === 401 && !opts.noRefresh) {
      const r = await send('/api/v1/auth/session/refresh', { method: 'POST' });
      if (r.ok) res = await send(path, opts);
    }
  } catch (err) {
    throw new ApiError(0, 'The server could not be reached: check the connection and retry.', null);
  }
  if (opts.onResponse) opts.onResponse(res);
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  const data = type.includes('json') ? await res.json().catch(() => null) : null;
  if (!res.ok) {
    const d = describe(res.status, data);
    throw new ApiError(res.status, d.message, d.field);
  }
  return data;
}

export function showError(el, err) {
  if (!el) return;
  el.textContent = err ? (err.message || String(err)) : '';
  el.hidden = !err;
}

export function clearErrors(root) {
  root.querySelectorAll('.error[role="alert"]').forEach((e) => { e.hidden = true; e.textContent = ''; });
}
