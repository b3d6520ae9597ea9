/* Pieces the pages share: the token box and error display, tables with pagers, selects, page state
 * kept in the URL's #fragment, panels. */

import { READ_ONLY_TIP, api, canAct, loadSession, setToken } from './api.js';
import { empty, h, loading, mono, view } from './dom.js';
import { fmtNum } from './format.js';

/** A generic read-only rendering of a JSON object as a definition list. */
export function kvList(obj, cls) {
  const dl = h('dl', { class: `kv ${cls || ''}` });
  for (const [key, value] of Object.entries(obj || {})) {
    let dd;
    if (Array.isArray(value) && value.every((v) => v === null || typeof v !== 'object')) {
      dd = h('dd', null, value.length ? mono(value.join(', ')) : '—');
    } else if (value && typeof value === 'object') {
      dd = h('dd', null, h('pre', { class: 'json' }, JSON.stringify(value, null, 2)));
    } else {
      dd = h('dd', null, value === null || value === undefined || value === '' ? '—' : String(value));
    }
    dl.append(h('dt', null, key.replace(/_/g, ' ')), dd);
  }
  if (!dl.childNodes.length) return empty('none');
  return dl;
}

let afterTokenSaved = () => {};

/** What to do once a token is pasted into the token box (the router shows the page again). */
export function whenTokenSaved(fn) {
  afterTokenSaved = fn;
}

/** A response button: disabled with the read-only tooltip when this session may not act. */
export function actButton(label, cls, onclick) {
  const btn = h('button', { type: 'button', class: `btn ${cls}`, onclick }, label);
  if (!canAct()) {
    btn.disabled = true;
    btn.title = READ_ONLY_TIP;
  }
  return btn;
}

function errorBox(err) {
  return h('div', { class: 'error', role: 'alert' }, err && err.message ? err.message : String(err));
}

function renderAuth(err) {
  if (document.getElementById('auth-needed')) return;
  const input = h('input', {
    id: 'token-input', type: 'password', autocomplete: 'off', placeholder: 'token printed by nhiwatch serve',
  });
  const save = async () => {
    const value = input.value.trim();
    if (!value) { input.focus(); return; }
    setToken(value);
    await loadSession();
    afterTokenSaved();
  };
  const box = h('div', { id: 'auth-needed', class: 'panel auth-box' },
    h('h2', null, 'Token needed'),
    h('p', null, 'This nhiwatch server needs its access token. Paste the token printed by ',
      mono('nhiwatch serve'), ' (or open the URL it printed, which carries it).'),
    err && err.message ? h('div', { class: 'error' }, err.message) : null,
    h('form', { class: 'auth-row', onsubmit: (e) => { e.preventDefault(); save(); } },
      input, h('button', { id: 'token-save', type: 'submit', class: 'btn primary' }, 'Save token')));
  view().replaceChildren(box);
  input.focus();
}

/** Show an error in place, or the token box when the server says 401. */
export function handleError(err, container, ctx) {
  if (ctx && !ctx.alive()) return;
  if (err && err.status === 401) renderAuth(err);
  else if (container) container.replaceChildren(errorBox(err));
}

export function makeTable(id, headers, cls) {
  const thead = h('thead', null, h('tr', null, headers.map((x) => (typeof x === 'string' ? h('th', null, x) : x))));
  const tbody = h('tbody');
  const table = h('table', { id, class: `tbl ${cls || ''}` }, thead, tbody);
  return { wrap: h('div', { class: 'table-wrap' }, table), table, tbody, cols: headers.length };
}

export const emptyRow = (cols, text) => h('tr', { class: 'empty-row' }, h('td', { colspan: cols }, text));

// One page of a paged table: fetch, draw the rows (or say none match), update the pager. Answers to
// an older request than the newest are dropped, so fast typing never shows stale rows.
export function pagedLoader({ ctx, t, pager, status, st, noun, empty, url, render }) {
  let seq = 0;
  return async function load() {
    const my = ++seq;
    status.replaceChildren(loading(noun));
    t.wrap.classList.add('busy');
    try {
      const d = await api(url());
      if (my !== seq || !ctx.alive()) return;
      const rows = render(d);
      t.tbody.replaceChildren(...rows);
      if (!rows.length) t.tbody.append(emptyRow(t.cols, empty));
      pager.update(d.total || 0, d.offset ?? st.offset, d.limit || st.limit, rows.length);
      status.replaceChildren();
    } catch (err) {
      if (my === seq) handleError(err, status, ctx);
    } finally {
      if (my === seq) t.wrap.classList.remove('busy');
    }
  };
}

export function makePager(onPrev, onNext) {
  const prev = h('button', { id: 'page-prev', type: 'button', class: 'btn', onclick: onPrev }, '‹ Prev');
  const next = h('button', { id: 'page-next', type: 'button', class: 'btn', onclick: onNext }, 'Next ›');
  const info = h('span', { id: 'page-info', class: 'page-info' }, '');
  return {
    el: h('div', { class: 'pager' }, prev, info, next),
    update(total, offset, limit, count) {
      info.textContent = total && count ? `${fmtNum(offset + 1)}-${fmtNum(offset + count)} of ${fmtNum(total)}` : `0 of ${fmtNum(total || 0)}`;
      prev.disabled = offset <= 0;
      next.disabled = offset + limit >= total;
    },
  };
}

export function makeSelect(id, label, options, value, onchange) {
  // options: [[value, text], ...]
  const sel = h('select', { id, 'aria-label': label, onchange });
  fillSelect(sel, options, value);
  return h('label', { class: 'field' }, h('span', null, label), sel);
}

export function fillSelect(sel, options, value) {
  const opts = options.slice();
  if (value && !opts.some(([v]) => v === value)) opts.push([value, value]);
  sel.replaceChildren(...opts.map(([v, t]) => h('option', { value: v }, t)));
  sel.value = value || '';
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

/** Read page state from the hash query, with defaults and integer fields. */
export function readState(params, defaults) {
  const st = {};
  for (const [k, d] of Object.entries(defaults)) {
    const raw = params.get(k);
    if (typeof d === 'number') {
      const n = parseInt(raw, 10);
      st[k] = Number.isFinite(n) && n >= 0 ? n : d;
    } else st[k] = raw === null ? d : raw;
  }
  return st;
}

/** Keep the page state in the hash without re-rendering (replaceState fires no hashchange). */
export function writeHash(path, st, defaults, always) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(st)) {
    if (v === '' || v === null || v === undefined) continue;
    if (v === defaults[k] && !(always || []).includes(k)) continue;
    p.set(k, String(v));
  }
  const q = p.toString();
  history.replaceState(null, '', `#${path}${q ? `?${q}` : ''}`);
}

export function section(id, title, ...kids) {
  return h('section', { id, class: 'panel' }, title ? h('h2', null, title) : null, ...kids);
}
