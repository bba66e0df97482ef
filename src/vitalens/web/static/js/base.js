// Shared page behaviour: the sign-out button.
import { api } from './api.js';

const logout = document.getElementById('logout');
if (logout) {
  logout.addEventListener('click', async () => {
    try { await api('/api/v1/auth/logout', { method: 'POST', noRefresh: true }); } catch (e) { /* already signed out */ }
    window.location.assign('/login');
  });
}
