// Sign-in page: a cookie session through POST /api/v1/auth/session; an existing refresh cookie skips the form.
import { api, showError } from './api.js';

const form = document.getElementById('login-form');
const errorEl = document.getElementById('login-error');
const next = form.dataset.next || '/worklist';

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError(errorEl, null);
  try {
    await api('/api/v1/auth/session', { method: 'POST', noRefresh: true,
      json: { email: form.email.value.trim(), password: form.password.value } });
    window.location.assign(next);
  } catch (err) {
    showError(errorEl, err);
    form.password.focus();
  }
});
