/* The JSON API: the token (from the first URL into sessionStorage, sent in X-Nhiwatch-Token),
 * fetch with readable errors, and this browser session (may it act?). */

import { visible } from './dom.js';

const TOKEN_KEY = 'nhiwatch-token';
export const READ_ONLY_TIP = 'read-only: start serve with a token to act';

let session = null;

function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (_e) { return ''; }
}

export function setToken(value) {
  try { sessionStorage.setItem(TOKEN_KEY, value); } catch (_e) { /* storage disabled */ }
}

export function captureTokenFromUrl() {
  const params = new URLSearchParams(location.search);
  if (!params.has('token')) return;
  const token = params.get('token');
  if (token) setToken(token);
  params.delete('token');
  const rest = params.toString();
  history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers['X-Nhiwatch-Token'] = token;
  const init = { method, headers, credentials: 'same-origin' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body === undefined ? {} : body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `cannot reach the nhiwatch server (${err.message})`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (_e) { data = null; }
  }
  if (!res.ok) {
    let detail = `HTTP ${res.status}`;
    if (data && typeof data.detail === 'string') detail = data.detail;
    else if (data && data.detail) detail = JSON.stringify(data.detail);
    throw new ApiError(res.status, detail);
  }
  return data;
}

export const qs = (obj) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== '' && v !== null && v !== undefined) p.set(k, String(v));
  return p.toString();
};

export async function loadSession() {
  try {
    session = await api('/api/session');
  } catch (_e) {
    session = null;
  }
  const version = document.getElementById('nav-version');
  const mode = document.getElementById('nav-mode');
  if (version) version.textContent = session && session.version ? `v${session.version}` : '';
  if (mode) {
    mode.textContent = !session ? 'not connected' : session.can_act ? 'can act' : 'read-only';
    mode.className = `nav-mode ${session && session.can_act ? 'mode-act' : 'mode-ro'}`;
    mode.title = session && !session.can_act ? READ_ONLY_TIP : (session ? visible(`store: ${session.store}`) : '');
  }
}

export const canAct = () => !!(session && session.can_act);
