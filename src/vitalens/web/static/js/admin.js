// Admin page: create users and sites, deactivate users, through the users API.
import { api, showError } from './api.js';

const userForm = document.getElementById('user-form');
userForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const errorEl = document.getElementById('user-error');
  showError(errorEl, null);
  const f = userForm;
  try {
    await api('/api/v1/users', { method: 'POST', json: { email: f.email.value.trim(), full_name: f.full_name.value.trim(),
      password: f.password.value, role: f.role.value, site_id: f.site_id.value || null } });
    window.location.assign(`/admin?created=${encodeURIComponent(f.email.value.trim())}`);
  } catch (err) { showError(errorEl, err); }
});

const siteForm = document.getElementById('site-form');
if (siteForm) siteForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const errorEl = document.getElementById('site-error');
  showError(errorEl, null);
  try {
    await api('/api/v1/sites', { method: 'POST', json: { name: siteForm.elements.namedItem('name').value.trim() } });
    window.location.reload();
  } catch (err) { showError(errorEl, err); }
});

document.querySelectorAll('button.deactivate').forEach((btn) => {
  btn.addEventListener('click', async () => {
    const errorEl = btn.nextElementSibling;
    try {
      await api(`/api/v1/users/${btn.dataset.userId}/deactivate`, { method: 'POST' });
      window.location.reload();
    } catch (err) { showError(errorEl, err); }
  });
});
