// First-run set-up: create the first admin and site, then sign in as that admin.
import { api, showError } from './api.js';

const form = document.getElementById('setup-form');
const errorEl = document.getElementById('setup-error');
form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError(errorEl, null);
  const body = { email: form.email.value.trim(), password: form.password.value,
    full_name: form.full_name.value.trim(), site_name: form.site_name.value.trim() };
  try {
    await api('/setup', { method: 'POST', json: body, noRefresh: true });
    await api('/api/v1/auth/session', { method: 'POST', json: { email: body.email, password: body.password }, noRefresh: true });
    window.location.assign('/admin');
  } catch (err) {
    showError(errorEl, err);
  }
});
