/* nhiwatch dashboard: plain ES2020, no libraries, no build step.
 *
 * Everything that comes from the API (ARNs, API names, user agents, titles...) may be
 * attacker-influenced, so the DOM is built with createElement/textContent only: this file
 * never assigns innerHTML. Every text node and attribute value also goes through visible(), so
 * control characters and bidi overrides show as escapes instead of reordering what is read, and
 * every link is a #fragment this file builds (a javascript: URL from an event is never an href).
 */
'use strict';

(() => {
  const TOKEN_KEY = 'nhiwatch-token';
  const READ_ONLY_TIP = 'read-only: start serve with a token to act';
  const SEVS = ['info', 'low', 'medium', 'high', 'critical'];
  const RISKS = ['low', 'medium', 'high', 'critical'];
  const SEV_COLOR = {
    info: '#64748b', low: '#2563eb', medium: '#d97706', high: '#ea580c', critical: '#dc2626', unknown: '#94a3b8',
  };
  const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const SVGNS = 'http://www.w3.org/2000/svg';

  let session = null;
  let routeGen = 0;

  // ---------------------------------------------------------------- DOM helpers

  // Invisible characters (C0 but line breaks and tabs, DEL, C1, format characters such as bidi
  // overrides and zero-width spaces, separators, lone surrogates): the same set as the command line's.
  const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\u{110bd}\u{110cd}\u{13430}-\u{1343f}\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}\u{e0001}\u{e0020}-\u{e007f}]|[\ud800-\udfff]/gu;
  const NAMED = { '\r': '\\r' };

  /** Text as written, with every invisible character shown as an escape (\x1b, \u202e). */
  function visible(text) {
    return String(text).replace(INVISIBLE, (c) => {
      if (NAMED[c]) return NAMED[c];
      const cp = c.codePointAt(0);
      const hex = cp.toString(16);
      if (cp < 0x100) return `\\x${hex.padStart(2, '0')}`;
      return cp < 0x10000 ? `\\u${hex.padStart(4, '0')}` : `\\u{${hex}}`;
    });
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : visible(value));
    }
  }

  function appendKids(node, kids) {
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      node.appendChild(kid instanceof Node ? kid : document.createTextNode(visible(kid)));
    }
  }

  /** Build an HTML element; string children become text nodes, never markup. */
  function h(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    appendKids(node, kids);
    return node;
  }

  /** Same for SVG elements. */
  function s(tag, attrs, ...kids) {
    const node = document.createElementNS(SVGNS, tag);
    setAttrs(node, attrs);
    appendKids(node, kids);
    return node;
  }

  const view = () => document.getElementById('view');
  const loading = (what) => h('div', { class: 'loading' }, what ? `Loading ${what}…` : 'Loading…');
  const empty = (text) => h('p', { class: 'empty' }, text);
  const mono = (text, cls) => h('span', { class: cls ? `mono ${cls}` : 'mono' }, text);

  // ---------------------------------------------------------------- formatting

  function parseIso(iso) {
    if (!iso) return null;
    let str = String(iso);
    // The API speaks UTC; a timestamp without a zone must not be read as local time.
    if (/T\d\d:\d\d/.test(str) && !/(Z|[+-]\d\d:?\d\d)$/i.test(str)) str += 'Z';
    const d = new Date(str);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  function fmtDate(iso) {
    if (!iso) return '—';
    const d = parseIso(iso);
    if (!d) return String(iso);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`;
  }

  const timeEl = (iso) => h('time', { datetime: iso || null, title: iso ? `${fmtDate(iso)} UTC` : null }, fmtDate(iso));
  const fmtNum = (n) => (n === null || n === undefined || n === '' ? '—' : Number(n).toLocaleString('en-US'));
  const known = (value, allowed) => {
    const v = String(value || '').toLowerCase();
    return allowed.includes(v) ? v : 'unknown';
  };
  const sevBadge = (sev) => h('span', { class: `sev sev-${known(sev, SEVS)}` }, sev || 'unknown');
  const riskBadge = (risk) => h('span', { class: `risk risk-${known(risk, RISKS)}` }, risk || 'unknown');
  const truncate = (text, n) => { const t = String(text ?? ''); return t.length > n ? `${t.slice(0, n - 1)}…` : t; };

  const identityHref = (arn) => `#/identity?arn=${encodeURIComponent(arn)}`;
  const incidentHref = (id) => `#/incident/${encodeURIComponent(id)}`;
  const identityLink = (arn, text) => h('a', { class: 'mono', href: identityHref(arn), title: arn }, text || arn);

  /** A generic read-only rendering of a JSON object as a definition list. */
  function kvList(obj, cls) {
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

  // ---------------------------------------------------------------- token + API

  function getToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (_e) { return ''; }
  }

  function setToken(value) {
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (_e) { /* storage disabled */ }
  }

  function captureTokenFromUrl() {
    const params = new URLSearchParams(location.search);
    if (!params.has('token')) return;
    const token = params.get('token');
    if (token) setToken(token);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, { method = 'GET', body } = {}) {
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

  const qs = (obj) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(obj)) if (v !== '' && v !== null && v !== undefined) p.set(k, String(v));
    return p.toString();
  };

  async function loadSession() {
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

  const canAct = () => !!(session && session.can_act);

  /** A response button: disabled with the read-only tooltip when this session may not act. */
  function actButton(label, cls, onclick) {
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
      route();
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
  function handleError(err, container, ctx) {
    if (ctx && !ctx.alive()) return;
    if (err && err.status === 401) renderAuth(err);
    else if (container) container.replaceChildren(errorBox(err));
  }

  // ---------------------------------------------------------------- shared widgets

  function makeTable(id, headers, cls) {
    const thead = h('thead', null, h('tr', null, headers.map((x) => (typeof x === 'string' ? h('th', null, x) : x))));
    const tbody = h('tbody');
    const table = h('table', { id, class: `tbl ${cls || ''}` }, thead, tbody);
    return { wrap: h('div', { class: 'table-wrap' }, table), table, tbody, cols: headers.length };
  }

  const emptyRow = (cols, text) => h('tr', { class: 'empty-row' }, h('td', { colspan: cols }, text));

  // One page of a paged table: fetch, draw the rows (or say none match), update the pager. Answers to
  // an older request than the newest are dropped, so fast typing never shows stale rows.
  function pagedLoader({ ctx, t, pager, status, st, noun, empty, url, render }) {
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

  function makePager(onPrev, onNext) {
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

  function makeSelect(id, label, options, value, onchange) {
    // options: [[value, text], ...]
    const sel = h('select', { id, 'aria-label': label, onchange });
    fillSelect(sel, options, value);
    return h('label', { class: 'field' }, h('span', null, label), sel);
  }

  function fillSelect(sel, options, value) {
    const opts = options.slice();
    if (value && !opts.some(([v]) => v === value)) opts.push([value, value]);
    sel.replaceChildren(...opts.map(([v, t]) => h('option', { value: v }, t)));
    sel.value = value || '';
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  /** Read page state from the hash query, with defaults and integer fields. */
  function readState(params, defaults) {
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
  function writeHash(path, st, defaults, always) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(st)) {
      if (v === '' || v === null || v === undefined) continue;
      if (v === defaults[k] && !(always || []).includes(k)) continue;
      p.set(k, String(v));
    }
    const q = p.toString();
    history.replaceState(null, '', `#${path}${q ? `?${q}` : ''}`);
  }

  function section(id, title, ...kids) {
    return h('section', { id, class: 'panel' }, title ? h('h2', null, title) : null, ...kids);
  }

  // ---------------------------------------------------------------- overview

  function statCard(key, label, value, sub) {
    return h('div', { class: 'card stat', 'data-stat': key },
      h('div', { class: 'stat-value' }, fmtNum(value ?? 0)),
      h('div', { class: 'stat-label' }, label),
      sub ? h('div', { class: 'stat-sub' }, sub) : null);
  }

  function sevCounts(bySev) {
    const parts = [...SEVS].reverse().filter((k) => (bySev || {})[k] > 0)
      .map((k) => h('span', { class: `sev sev-${k}`, title: `${bySev[k]} ${k}` }, `${fmtNum(bySev[k])} ${k}`));
    return parts.length ? parts : null;
  }

  function barList(id, entries, fillClass, hrefFor) {
    const max = Math.max(1, ...entries.map(([, v]) => Number(v) || 0));
    const list = h('div', { id, class: 'barlist' });
    if (!entries.length) list.append(empty('nothing yet'));
    for (const [name, value] of entries) {
      const fill = h('div', { class: `bar-fill ${fillClass(name)}` });
      fill.style.width = `${((Number(value) || 0) / max) * 100}%`;
      list.append(h('div', { class: 'bar-row', 'data-key': name },
        h('a', { class: 'bar-label mono', href: hrefFor(name), title: name }, name),
        h('div', { class: 'bar-track' }, fill),
        h('span', { class: 'bar-value' }, fmtNum(value))));
    }
    return list;
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function findingsChart(days) {
    const W = 900, H = 260, m = { l: 44, r: 12, t: 12, b: 30 };
    const svg = s('svg', { id: 'chart-findings', class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': 'Findings per day by severity' });
    if (!days.length) {
      svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'chart-empty' }, 'no findings yet'));
      return svg;
    }
    const pw = W - m.l - m.r, ph = H - m.t - m.b;
    const totals = days.map((d) => SEVS.reduce((a, k) => a + (Number(d[k]) || 0), 0));
    const max = niceMax(Math.max(...totals));
    const y = (v) => m.t + ph - (v / max) * ph;
    const ticks = Math.min(5, max);
    for (let i = 0; i <= ticks; i += 1) {
      const v = (max / ticks) * i;
      svg.append(s('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }),
        s('text', { class: 'axis', x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmtNum(v)));
    }
    const slot = pw / days.length;
    const bw = Math.max(1, Math.min(36, slot * 0.72));
    const every = Math.ceil(days.length / 12);
    days.forEach((d, i) => {
      const x = m.l + slot * i + (slot - bw) / 2;
      let acc = 0;
      for (const sev of SEVS) {
        const v = Number(d[sev]) || 0;
        if (v <= 0) continue;
        const y0 = y(acc), y1 = y(acc + v);
        acc += v;
        svg.append(s('rect', { class: `seg sf-${sev}`, x: x.toFixed(1), y: y1.toFixed(1), width: bw.toFixed(1),
          height: Math.max(0.5, y0 - y1).toFixed(1), 'data-day': d.day, 'data-severity': sev, 'data-count': v },
        s('title', null, `${d.day} · ${sev}: ${v} (day total ${totals[i]})`)));
      }
      if (i % every === 0) {
        svg.append(s('text', { class: 'axis', x: x + bw / 2, y: H - 10, 'text-anchor': 'middle' }, String(d.day || '').slice(5)));
      }
    });
    svg.append(s('line', { class: 'baseline', x1: m.l, x2: W - m.r, y1: y(0), y2: y(0) }));
    return svg;
  }

  const sevLegend = () => h('div', { class: 'legend' },
    SEVS.map((k) => h('span', { class: 'legend-item' }, h('span', { class: `swatch sb-${k}` }), k)));

  function incidentTable(id, items, compact) {
    const headers = ['Severity', 'Incident', 'Score', 'Status', 'Identities', 'Findings', 'First seen', 'Last seen'];
    const t = makeTable(id, compact ? ['Severity', 'Incident', 'Score', 'Identities', 'Findings', 'Last seen'] : headers);
    if (!items.length) t.tbody.append(emptyRow(t.cols, 'no incidents'));
    for (const inc of items) {
      const ids = inc.identities || [];
      const who = ids.length ? h('span', null, identityLink(ids[0], truncate(ids[0], 60)),
        ids.length > 1 ? ` +${ids.length - 1}` : '') : '—';
      const cells = [
        sevBadge(inc.severity),
        h('a', { href: incidentHref(inc.id), class: 'incident-link' }, inc.title || inc.id),
        inc.score ?? '—',
        compact ? null : inc.status || '—',
        who,
        fmtNum(inc.finding_count),
        compact ? null : timeEl(inc.first_seen),
        timeEl(inc.last_seen),
      ].filter((c) => c !== null);
      t.tbody.append(h('tr', { class: 'incident-row', 'data-id': inc.id }, cells.map((c) => h('td', null, c))));
    }
    return t.wrap;
  }

  async function pageOverview(ctx) {
    const d = await api('/api/overview');
    const ids = d.identities || {}, inc = d.incidents || {}, fnd = d.findings || {}, ev = d.events || {};
    const types = Object.entries(ids.by_type || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const risks = [...RISKS].reverse().map((r) => [r, (ids.by_risk || {})[r] || 0]);
    const page = h('div', { id: 'page-overview', class: 'page' },
      h('h1', null, 'Overview'),
      h('div', { class: 'stat-cards' },
        statCard('identities', 'Identities', ids.total),
        statCard('nhi', 'Non-human identities', ids.nhi),
        statCard('incidents', 'Open incidents', inc.open, sevCounts(inc.by_severity)),
        statCard('findings', 'Findings', fnd.total, sevCounts(fnd.by_severity)),
        statCard('events', 'Events', ev.total, ev.first ? `${fmtDate(ev.first)} → ${fmtDate(ev.last)} UTC` : 'no events yet')),
      h('div', { class: 'grid-2' },
        section('overview-types', 'Identities by type',
          barList('chart-types', types, () => 'bf-type', (t) => `#/inventory?${qs({ type: t })}`)),
        section('overview-risk', 'Identities by risk',
          barList('chart-risk', risks, (r) => `rf-${r}`, (r) => `#/inventory?${qs({ risk: r })}`))),
      section('overview-findings', 'Findings per day', findingsChart(fnd.by_day || []), sevLegend()),
      section('overview-incidents', 'Top open incidents', incidentTable('top-incidents', inc.top || [], true),
        h('p', { class: 'more' }, h('a', { href: '#/incidents' }, 'All incidents →'))));
    ctx.show(page);
  }

  // ---------------------------------------------------------------- inventory

  const INV_DEFAULTS = { search: '', type: '', account: '', risk: '', sort: 'risk', order: 'desc', offset: 0, limit: 50 };
  const INV_COLS = [
    ['Name', 'name'], ['Type', 'type'], ['Account', 'account'], ['Risk', 'risk'], ['Last active', 'last_active'],
    ['Key age', 'key_age'], ['Findings', 'findings'], ['Owner', null],
  ];
  const ASC_FIRST = ['name', 'type', 'account'];

  function pageInventory(ctx) {
    const st = readState(ctx.params, INV_DEFAULTS);
    st.limit = Math.min(500, Math.max(1, st.limit));
    if (!['asc', 'desc'].includes(st.order)) st.order = 'desc';

    const changed = (resetOffset = true) => {
      if (resetOffset) st.offset = 0;
      writeHash('/inventory', st, INV_DEFAULTS, ['sort', 'order']);
      load();
    };
    const search = h('input', { id: 'inventory-search', type: 'search', placeholder: 'Search ARN, name, owner, team…',
      value: st.search, 'aria-label': 'Search identities' });
    search.addEventListener('input', debounce(() => { st.search = search.value.trim(); changed(); }, 250));
    const typeSel = makeSelect('filter-type', 'Type', [['', 'All types']], st.type, (e) => { st.type = e.target.value; changed(); });
    const acctSel = makeSelect('filter-account', 'Account', [['', 'All accounts']], st.account, (e) => { st.account = e.target.value; changed(); });
    const riskSel = makeSelect('filter-risk', 'Risk', [['', 'Any risk'], ...[...RISKS].reverse().map((r) => [r, r])], st.risk,
      (e) => { st.risk = e.target.value; changed(); });

    const headers = INV_COLS.map(([label, key]) => {
      if (!key) return h('th', null, label);
      const th = h('th', { 'data-sort': key, class: 'sortable', tabindex: 0, role: 'button', title: `Sort by ${label.toLowerCase()}` },
        label, h('span', { class: 'sort-ind', 'aria-hidden': 'true' }));
      const toggle = () => {
        if (st.sort === key) st.order = st.order === 'asc' ? 'desc' : 'asc';
        else { st.sort = key; st.order = ASC_FIRST.includes(key) ? 'asc' : 'desc'; }
        markSort();
        changed();
      };
      th.addEventListener('click', toggle);
      th.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } });
      return th;
    });
    const t = makeTable('inventory-table', headers, 'inventory');
    const markSort = () => {
      for (const th of headers) {
        const key = th.dataset.sort;
        if (!key) continue;
        const on = key === st.sort;
        th.classList.toggle('sorted', on);
        th.setAttribute('aria-sort', on ? (st.order === 'asc' ? 'ascending' : 'descending') : 'none');
        th.querySelector('.sort-ind').textContent = on ? (st.order === 'asc' ? ' ▲' : ' ▼') : '';
      }
    };
    markSort();
    const pager = makePager(() => { st.offset = Math.max(0, st.offset - st.limit); changed(false); },
      () => { st.offset += st.limit; changed(false); });
    const status = h('div', { class: 'status-slot' });

    ctx.show(h('div', { id: 'page-inventory', class: 'page' },
      h('h1', null, 'Inventory'),
      h('div', { class: 'toolbar' }, h('label', { class: 'field grow' }, h('span', null, 'Search'), search), typeSel, acctSel, riskSel),
      status, t.wrap, pager.el));

    const load = pagedLoader({ ctx, t, pager, status, st, noun: 'identities', empty: 'no identities match',
      url: () => `/api/identities?${qs({ search: st.search, type: st.type, account: st.account, risk: st.risk,
        sort: st.sort, order: st.order, limit: st.limit, offset: st.offset })}`,
      render: (d) => {
        const facets = d.facets || {};
        fillSelect(typeSel.querySelector('select'), [['', 'All types'], ...(facets.types || []).map((x) => [x, x])], st.type);
        fillSelect(acctSel.querySelector('select'), [['', 'All accounts'], ...(facets.accounts || []).map((x) => [x, x])], st.account);
        return (d.items || []).map(identityRow);
      } });
    load();
  }

  function identityRow(it) {
    const keyAge = it.key_age_days === null || it.key_age_days === undefined ? '—' : `${fmtNum(it.key_age_days)} d`;
    return h('tr', { class: 'identity-row', 'data-arn': it.arn },
      h('td', null, h('a', { href: identityHref(it.arn), class: 'identity-link', title: it.arn }, it.name || it.arn),
        h('div', { class: 'sub mono' }, truncate(it.arn, 90))),
      h('td', null, mono(it.nhi_type || '—'), it.category ? h('div', { class: 'sub' }, it.category) : null),
      h('td', null, mono(it.account_id || '—')),
      h('td', { class: 'nowrap' }, riskBadge(it.risk_level), ' ', h('span', { class: 'score' }, it.risk_score ?? '')),
      h('td', { class: 'nowrap' }, timeEl(it.last_active)),
      h('td', { class: 'num' }, keyAge),
      h('td', { class: 'num' }, fmtNum(it.findings)),
      h('td', null, it.owner || '—'));
  }

  // ---------------------------------------------------------------- identity

  function heatColor(count, max) {
    if (!(count > 0) || !(max > 0)) return '#eceef1';
    const t = 0.12 + 0.88 * Math.sqrt(count / max);
    const from = [219, 234, 254], to = [30, 58, 138];
    const c = from.map((f, i) => Math.round(f + (to[i] - f) * t));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  function heatmap(grid) {
    const cw = 30, ch = 22, left = 40, top = 22;
    const W = left + 24 * cw + 4, H = top + 7 * ch + 4;
    const counts = (r, c) => Number(((grid || [])[r] || [])[c]) || 0;
    let max = 0;
    for (let r = 0; r < 7; r += 1) for (let c = 0; c < 24; c += 1) max = Math.max(max, counts(r, c));
    const svg = s('svg', { id: 'heatmap', class: 'heatmap', viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': 'Activity by weekday and hour (UTC)' });
    const pad = (n) => String(n).padStart(2, '0');
    for (let c = 0; c < 24; c += 1) {
      svg.append(s('text', { class: 'axis', x: left + c * cw + (cw - 2) / 2, y: top - 8, 'text-anchor': 'middle' }, pad(c)));
    }
    for (let r = 0; r < 7; r += 1) {
      svg.append(s('text', { class: 'axis', x: left - 8, y: top + r * ch + ch / 2 + 3, 'text-anchor': 'end' }, WEEKDAYS[r]));
      for (let c = 0; c < 24; c += 1) {
        const n = counts(r, c);
        svg.append(s('rect', { class: 'cell', x: left + c * cw, y: top + r * ch, width: cw - 2, height: ch - 2, rx: 2,
          fill: heatColor(n, max), 'data-day': r, 'data-hour': c, 'data-count': n },
        s('title', null, `${WEEKDAYS[r]} ${pad(c)}:00–${pad(c)}:59 UTC: ${fmtNum(n)} event${n === 1 ? '' : 's'}`)));
      }
    }
    return svg;
  }

  function profileTable(id, title, rows, nameLabel) {
    const t = makeTable(id, [nameLabel, 'Count', 'First seen', 'Last seen'], 'profile');
    if (!rows || !rows.length) t.tbody.append(emptyRow(4, 'none'));
    for (const r of rows || []) {
      t.tbody.append(h('tr', null, h('td', null, mono(r.name, 'wrap')), h('td', { class: 'num' }, fmtNum(r.count)),
        h('td', { class: 'nowrap' }, timeEl(r.first_seen)), h('td', { class: 'nowrap' }, timeEl(r.last_seen))));
    }
    return h('div', { class: 'profile-block' }, h('h3', null, title), t.wrap);
  }

  function renderProfile(p) {
    if (!p) return section('profile', 'Baseline profile', empty('no activity learned yet'));
    return section('profile', 'Baseline profile',
      h('p', { class: 'meta-line' }, `${fmtNum(p.events)} events, ${fmtDate(p.first_seen)} → ${fmtDate(p.last_seen)} UTC · `,
        h('span', { class: p.mature ? 'tag tag-ok' : 'tag tag-warn' }, p.mature ? 'baseline mature' : 'still learning')),
      h('h3', null, 'When it is active (UTC)'),
      h('div', { class: 'heatmap-wrap' }, heatmap(p.heatmap)),
      h('div', { class: 'grid-2' },
        profileTable('profile-apis', 'Top APIs', p.apis, 'API'),
        profileTable('profile-regions', 'Regions', p.regions, 'Region'),
        profileTable('profile-networks', 'Networks', p.networks, 'Network'),
        profileTable('profile-agents', 'User agents', p.user_agents, 'User agent'),
        profileTable('profile-assumers', 'Assumed by', p.assumed_by, 'Principal'),
        profileTable('profile-resources', 'Resources', p.resources, 'Resource')));
  }

  function findingsTimeline(findings) {
    const sorted = [...(findings || [])].sort((a, b) =>
      String(a.first_seen || '').localeCompare(String(b.first_seen || '')) || String(a.last_seen || '').localeCompare(String(b.last_seen || '')));
    const list = h('ol', { id: 'identity-findings', class: 'timeline' });
    if (!sorted.length) list.append(h('li', { class: 'empty' }, 'no findings'));
    for (const f of sorted) {
      list.append(h('li', { class: 'timeline-item finding-item', 'data-id': f.id },
        h('div', { class: 'tl-time' }, timeEl(f.first_seen), f.last_seen && f.last_seen !== f.first_seen ? h('span', null, ' → ', timeEl(f.last_seen)) : null),
        h('div', { class: 'tl-head' }, sevBadge(f.severity), ' ', h('strong', null, f.title || f.detector),
          h('span', { class: 'sub' }, ` · ${f.detector || ''} · ${f.status || ''}`)),
        f.explanation ? h('p', { class: 'explanation' }, f.explanation) : null,
        f.incident_id ? h('a', { class: 'incident-link', href: incidentHref(f.incident_id) }, `incident ${f.incident_id} →`) : null));
    }
    return list;
  }

  function renderPermissions(perm) {
    if (!perm) return section('permissions', 'Permissions', empty('permission use not analysed for this identity'));
    const list = (items, cls) => (items && items.length
      ? h('ul', { class: `perm-list ${cls}` }, items.map((x) => h('li', null, mono(x))))
      : empty('none'));
    return section('permissions', 'Permissions',
      h('p', null, h('strong', null, fmtNum(perm.granted)), ' actions granted · ',
        h('strong', null, fmtNum((perm.used || []).length)), ' used · ',
        h('strong', null, fmtNum((perm.unused || []).length)), ' unused'),
      h('div', { class: 'grid-2' },
        h('div', null, h('h3', null, 'Used'), list(perm.used, 'perm-used')),
        h('div', null, h('h3', null, 'Unused'), list(perm.unused, 'perm-unused'))),
      h('h3', null, 'Suggested least-privilege policy'),
      h('pre', { id: 'suggested-policy', class: 'json' }, JSON.stringify(perm.suggested_policy ?? {}, null, 2)));
  }

  async function pageIdentity(ctx) {
    const arn = ctx.params.get('arn');
    if (!arn) { ctx.show(h('div', { id: 'page-identity', class: 'page' }, h('div', { class: 'error' }, 'no identity ARN given'))); return; }
    const d = await api(`/api/identity?arn=${encodeURIComponent(arn)}`);
    const id = d.identity || {};
    const reasons = id.risk_reasons || [];
    const posture = d.posture || [];
    const keys = id.keys || [];
    const keyTable = makeTable('identity-keys', ['Key', 'Status', 'Age', 'Last used'], 'keys');
    for (const k of keys) {
      keyTable.tbody.append(h('tr', null, h('td', null, mono(k.id)), h('td', null, k.status || '—'),
        h('td', { class: 'num' }, k.age_days === null || k.age_days === undefined ? '—' : `${fmtNum(k.age_days)} d`),
        h('td', null, timeEl(k.last_used))));
    }
    const page = h('div', { id: 'page-identity', class: 'page' },
      h('div', { class: 'page-head' },
        h('h1', null, id.name || arn, ' ', riskBadge(id.risk_level), ' ', h('span', { class: 'score', title: 'risk score' }, `score ${id.risk_score ?? '—'}`)),
        h('div', { class: 'arn mono' }, id.arn || arn),
        h('div', { class: 'meta-line' },
          h('span', { class: 'tag mono' }, id.nhi_type || 'unknown type'), ' ',
          id.category ? h('span', { class: 'tag' }, id.category) : null, ' ',
          id.type_detail ? h('span', { class: 'sub' }, id.type_detail) : null)),
      h('div', { class: 'grid-2' },
        section('identity-facts', 'Facts', kvList({
          account: id.account_id, owner: id.owner, team: id.team,
          created: id.created ? `${fmtDate(id.created)} UTC` : null,
          last_active: id.last_active ? `${fmtDate(id.last_active)} UTC` : null,
        }), keys.length ? h('div', null, h('h3', null, 'Access keys'), keyTable.wrap) : null),
        section('identity-risk', 'Why this risk',
          reasons.length ? h('ul', { id: 'risk-reasons', class: 'reasons' }, reasons.map((r) => h('li', null,
            h('span', { class: 'points' }, `+${r.points ?? 0}`), ' ', r.text,
            (r.owasp || []).map((o) => h('span', { class: 'tag owasp' }, o)))))
            : h('ul', { id: 'risk-reasons', class: 'reasons' }, h('li', { class: 'empty' }, 'no risk factors')))),
      section('posture', 'Posture checks',
        posture.length ? h('ul', { class: 'posture-list' }, posture.map((p) => h('li', { class: 'posture-item', 'data-check': p.check },
          sevBadge(p.severity), ' ', h('strong', null, p.title || p.check), ' ', mono(p.check, 'sub'),
          (p.owasp || []).map((o) => h('span', { class: 'tag owasp' }, o)),
          p.detail ? h('p', { class: 'explanation' }, p.detail) : null))) : empty('no posture problems found')),
      h('div', { class: 'grid-2' },
        section('trust', 'Trust', kvList(id.trust_summary)),
        section('evidence', 'Classification evidence',
          (id.evidence || []).length ? h('ul', null, id.evidence.map((e) => h('li', null, e))) : empty('none'))),
      renderProfile(d.profile),
      section('identity-findings-section', 'Findings', findingsTimeline(d.findings)),
      renderPermissions(d.permissions));
    ctx.show(page);
  }

  // ---------------------------------------------------------------- incidents list

  async function pageIncidents(ctx) {
    const status = ctx.params.get('status') === 'all' ? 'all' : 'open';
    const d = await api(`/api/incidents?status=${status}`);
    const toggle = h('div', { class: 'segmented', id: 'incident-status', role: 'group', 'aria-label': 'Status' },
      ['open', 'all'].map((v) => h('a', { href: v === 'open' ? '#/incidents' : '#/incidents?status=all',
        class: `seg-btn ${v === status ? 'active' : ''}`, id: `status-${v}`, 'data-status': v, 'aria-pressed': String(v === status) },
      v === 'open' ? 'Open' : 'All')));
    const items = d.items || [];
    const tableWrap = incidentTable('incidents-table', items, false);
    tableWrap.addEventListener('click', (e) => {
      const row = e.target.closest('tr.incident-row');
      if (row && !e.target.closest('a')) location.hash = incidentHref(row.dataset.id);
    });
    ctx.show(h('div', { id: 'page-incidents', class: 'page' },
      h('div', { class: 'page-head row' }, h('h1', null, 'Incidents'), toggle,
        h('span', { class: 'sub' }, `${fmtNum(d.total ?? items.length)} ${status === 'open' ? 'open' : 'in total'}`)),
      tableWrap));
  }

  // ---------------------------------------------------------------- incident graph

  const KIND_STYLE = {
    role: { shape: 'circle', r: 17, fill: '#dbeafe', glyph: 'R' },
    user: { shape: 'circle', r: 17, fill: '#dcfce7', glyph: 'U' },
    root: { shape: 'octagon', r: 19, fill: '#fee2e2', glyph: '!' },
    federated: { shape: 'pill', r: 17, fill: '#ede9fe', glyph: 'F' },
    key: { shape: 'square', r: 10, fill: '#fef3c7', glyph: 'K' },
    network: { shape: 'diamond', r: 17, fill: '#e0f2fe', glyph: 'N' },
    account: { shape: 'rect', r: 18, fill: '#f1f5f9', glyph: 'A' },
    service: { shape: 'hexagon', r: 17, fill: '#fae8ff', glyph: 'S' },
    other: { shape: 'circle', r: 12, fill: '#f3f4f6', glyph: '?' },
  };

  function polyPoints(n, r, rot) {
    const pts = [];
    for (let i = 0; i < n; i += 1) {
      const a = rot + (2 * Math.PI * i) / n;
      pts.push(`${(r * Math.cos(a)).toFixed(1)},${(r * Math.sin(a)).toFixed(1)}`);
    }
    return pts.join(' ');
  }

  function nodeShape(st, ring) {
    const base = { class: 'shape', fill: st.fill, stroke: ring, 'stroke-width': 3 };
    const r = st.r;
    switch (st.shape) {
      case 'square': return s('rect', { ...base, x: -r, y: -r, width: 2 * r, height: 2 * r, rx: 2 });
      case 'rect': return s('rect', { ...base, x: -r * 1.4, y: -r * 0.85, width: r * 2.8, height: r * 1.7, rx: 4 });
      case 'pill': return s('rect', { ...base, x: -r * 1.4, y: -r * 0.75, width: r * 2.8, height: r * 1.5, rx: r * 0.75 });
      case 'diamond': return s('polygon', { ...base, points: polyPoints(4, r * 1.2, 0) });
      case 'hexagon': return s('polygon', { ...base, points: polyPoints(6, r, 0) });
      case 'octagon': return s('polygon', { ...base, points: polyPoints(8, r, Math.PI / 8) });
      default: return s('circle', { ...base, r });
    }
  }

  /** Deterministic force-directed layout (Fruchterman-Reingold inside the frame), then label de-overlap and fit. */
  function layoutGraph(nodes, edges, W, H) {
    const n = nodes.length;
    const x0 = 80, x1 = W - 80, y0 = 40, y1 = H - 56;
    const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    if (n <= 1) return n ? [{ x: cx, y: cy }] : [];
    const P = nodes.map((_, i) => {
      const a = (2 * Math.PI * i) / n + 0.4;
      return { x: cx + Math.cos(a) * (x1 - x0) * 0.35, y: cy + Math.sin(a) * (y1 - y0) * 0.35 };
    });
    const clamp = (p) => {
      p.x = Math.min(x1, Math.max(x0, p.x));
      p.y = Math.min(y1, Math.max(y0, p.y));
    };
    const index = new Map(nodes.map((nd, i) => [nd.id, i]));
    const E = edges.map((e) => [index.get(e.source), index.get(e.target)])
      .filter(([a, b]) => a !== undefined && b !== undefined && a !== b);
    const k = Math.sqrt(((x1 - x0) * (y1 - y0)) / n) * 0.6;
    const iterations = 400;
    for (let it = 0; it < iterations; it += 1) {
      const D = P.map(() => ({ x: 0, y: 0 }));
      for (let i = 0; i < n; i += 1) {
        for (let j = i + 1; j < n; j += 1) {
          let dx = P[i].x - P[j].x, dy = P[i].y - P[j].y;
          let d = Math.hypot(dx, dy);
          if (d < 0.01) { dx = 0.01 * (i - j); dy = 0.01; d = Math.hypot(dx, dy); }
          const f = (k * k) / d;
          D[i].x += (dx / d) * f; D[i].y += (dy / d) * f;
          D[j].x -= (dx / d) * f; D[j].y -= (dy / d) * f;
        }
      }
      for (const [a, b] of E) {
        const dx = P[a].x - P[b].x, dy = P[a].y - P[b].y;
        const d = Math.max(0.01, Math.hypot(dx, dy));
        const f = (d * d) / k;
        D[a].x -= (dx / d) * f; D[a].y -= (dy / d) * f;
        D[b].x += (dx / d) * f; D[b].y += (dy / d) * f;
      }
      const temp = ((x1 - x0) / 10) * (1 - it / iterations) + 0.5;
      for (let i = 0; i < n; i += 1) {
        D[i].x += (cx - P[i].x) * 0.25;
        D[i].y += (cy - P[i].y) * 0.25 * ((x1 - x0) / (y1 - y0));
        const len = Math.hypot(D[i].x, D[i].y);
        if (len > 0) {
          const step = Math.min(len, temp);
          P[i].x += (D[i].x / len) * step;
          P[i].y += (D[i].y / len) * step;
        }
        clamp(P[i]);
      }
    }
    // Push apart nodes whose shapes and labels would overlap (a node with its label is ~125 x 50).
    const bw = 128, bh = 52;
    for (let pass = 0; pass < 80; pass += 1) {
      let moved = false;
      for (let i = 0; i < n; i += 1) {
        for (let j = i + 1; j < n; j += 1) {
          const dx = P[j].x - P[i].x, dy = P[j].y - P[i].y;
          const ox = bw - Math.abs(dx), oy = bh - Math.abs(dy);
          if (ox <= 0 || oy <= 0) continue;
          moved = true;
          if (ox / bw < oy / bh) {
            const sx = ((dx === 0 ? (i % 2 ? 1 : -1) : Math.sign(dx)) * Math.min(ox, 12)) / 2;
            P[i].x -= sx; P[j].x += sx;
          } else {
            const sy = ((dy === 0 ? (i % 2 ? 1 : -1) : Math.sign(dy)) * Math.min(oy, 12)) / 2;
            P[i].y -= sy; P[j].y += sy;
          }
          clamp(P[i]); clamp(P[j]);
        }
      }
      if (!moved) break;
    }
    // Fit: spread a small layout over the frame (at most 2x per axis) and centre it.
    const xs = P.map((p) => p.x), ys = P.map((p) => p.y);
    const fit = (v, lo, hi, from, to) => {
      const span = hi - lo, room = to - from;
      if (span < 1) return (from + to) / 2;
      const scale = Math.min(room / span, 2);
      return from + (room - span * scale) / 2 + (v - lo) * scale;
    };
    const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
    return P.map((p) => ({ x: fit(p.x, minX, maxX, x0, x1), y: fit(p.y, minY, maxY, y0, y1) }));
  }

  function incidentGraph(graph) {
    const W = 900, H = 500;
    const nodes = (graph && graph.nodes) || [];
    const edges = (graph && graph.edges) || [];
    const svg = s('svg', { id: 'incident-graph', class: 'graph', viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': 'Graph of the identities, keys, networks and accounts in this incident' });
    svg.append(s('defs', null, s('marker', { id: 'ig-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7,
      markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))));
    if (!nodes.length) {
      svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'chart-empty' }, 'nothing to draw'));
      return svg;
    }
    const pos = layoutGraph(nodes, edges, W, H);
    const at = new Map(nodes.map((nd, i) => [nd.id, { ...pos[i], st: KIND_STYLE[nd.kind] || KIND_STYLE.other }]));
    const pairCount = new Map(), pairSeen = new Map();
    const pairKey = (e) => [String(e.source), String(e.target)].sort().join('\u0000');
    for (const e of edges) pairCount.set(pairKey(e), (pairCount.get(pairKey(e)) || 0) + 1);

    const edgeLayer = s('g', { class: 'edges' }), labelLayer = s('g', { class: 'edge-labels' }), nodeLayer = s('g', { class: 'nodes' });
    for (const e of edges) {
      const a = at.get(e.source), b = at.get(e.target);
      if (!a || !b) continue;
      const key = pairKey(e);
      const seen = pairSeen.get(key) || 0;
      pairSeen.set(key, seen + 1);
      let d, lx, ly;
      if (e.source === e.target) {
        const top = a.y - a.st.r;
        d = `M${a.x - 6},${top} C${a.x - 34},${top - 44} ${a.x + 34},${top - 44} ${a.x + 6},${top}`;
        lx = a.x; ly = top - 36;
      } else {
        // Curve parallel edges apart, using the pair's canonical direction for the normal.
        const [lo, hi] = String(e.source) < String(e.target) ? [a, b] : [b, a];
        const len = Math.max(1, Math.hypot(hi.x - lo.x, hi.y - lo.y));
        const nx = -(hi.y - lo.y) / len, ny = (hi.x - lo.x) / len;
        const bend = (seen - (pairCount.get(key) - 1) / 2) * 44;
        const mx = (a.x + b.x) / 2 + nx * bend, my = (a.y + b.y) / 2 + ny * bend;
        const trim = (from, to, r) => {
          const dx = to.x - from.x, dy = to.y - from.y, l = Math.max(1, Math.hypot(dx, dy));
          return { x: from.x + (dx / l) * r, y: from.y + (dy / l) * r };
        };
        const p0 = trim(a, bend ? { x: mx, y: my } : b, a.st.r + 3);
        const p2 = trim(b, bend ? { x: mx, y: my } : a, b.st.r + 5);
        d = bend ? `M${p0.x.toFixed(1)},${p0.y.toFixed(1)} Q${mx.toFixed(1)},${my.toFixed(1)} ${p2.x.toFixed(1)},${p2.y.toFixed(1)}`
          : `M${p0.x.toFixed(1)},${p0.y.toFixed(1)} L${p2.x.toFixed(1)},${p2.y.toFixed(1)}`;
        lx = bend ? (p0.x + 2 * mx + p2.x) / 4 : (p0.x + p2.x) / 2;
        ly = bend ? (p0.y + 2 * my + p2.y) / 4 : (p0.y + p2.y) / 2;
      }
      edgeLayer.append(s('path', { class: 'edge', d, 'marker-end': 'url(#ig-arrow)', 'data-source': e.source, 'data-target': e.target },
        s('title', null, `${e.source} → ${e.target}${e.label ? `: ${e.label}` : ''}`)));
      if (e.label) {
        labelLayer.append(s('text', { class: 'edge-label', x: lx.toFixed(1), y: (ly - 3).toFixed(1), 'text-anchor': 'middle' },
          truncate(e.label, 26), s('title', null, e.label)));
      }
    }
    nodes.forEach((nd) => {
      const p = at.get(nd.id);
      const sev = nd.severity ? known(nd.severity, SEVS) : 'unknown';
      const g = s('g', { class: `node kind-${known(nd.kind, Object.keys(KIND_STYLE))} ${nd.severity ? `sev-ring-${sev}` : ''}`,
        'data-id': nd.id, 'data-kind': nd.kind || 'other', transform: `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})` },
      s('title', null, [nd.label || nd.id, `${nd.kind || 'other'}${nd.severity ? ` · ${nd.severity}` : ''}`, nd.detail]
        .filter(Boolean).join('\n')),
      nodeShape(p.st, SEV_COLOR[sev]),
      s('text', { class: 'glyph', y: 4, 'text-anchor': 'middle' }, p.st.glyph),
      s('text', { class: 'node-label', y: p.st.r + 15, 'text-anchor': 'middle' }, truncate(nd.label || nd.id, 20)));
      if (/^arn:aws[\w-]*:(iam|sts)::/.test(String(nd.id)) && ['role', 'user', 'root'].includes(nd.kind)) {
        g.classList.add('clickable');
        g.addEventListener('click', () => { location.hash = identityHref(nd.id); });
      }
      nodeLayer.append(g);
    });
    svg.append(edgeLayer, labelLayer, nodeLayer);
    return svg;
  }

  const graphLegend = () => h('div', { class: 'legend' },
    'Shapes: circle = role or user, octagon = root, pill = federated, small square = key, diamond = network, '
    + 'rectangle = account, hexagon = service. Ring colour = severity:',
    SEVS.map((k) => h('span', { class: 'legend-item' }, h('span', { class: `swatch sb-${k}` }), k)));

  // ---------------------------------------------------------------- incident + response

  function statusSpan(rec) {
    const status = rec.status || 'unknown';
    const bad = ['failed', 'partial', 'undo-failed'].includes(status);
    const error = rec.undo && rec.undo.error ? rec.undo.error : rec.error;
    return [
      h('span', { class: `action-status ${bad ? 'bad' : 'good'}`, 'data-status': status }, status),
      error ? h('span', { class: 'action-error' }, error) : null,
    ];
  }

  function actionCard(incidentId, a, refreshLog) {
    const controls = h('div', { class: 'action-controls' });
    const msg = h('div', { class: 'action-msg' });
    const card = h('div', { class: 'action-card', 'data-index': a.index },
      h('div', { class: 'action-head' }, h('span', { class: 'action-kind mono' }, a.kind), ' on ', identityLink(a.identity)),
      a.why ? h('p', { class: 'action-why' }, h('strong', null, 'Why: '), a.why) : null,
      a.summary ? h('p', { class: 'action-summary' }, a.summary) : null,
      h('div', { class: 'dry-run-label' }, 'Dry run: the exact API calls Approve would make'),
      h('pre', { class: 'dry-run' }, (a.calls || []).length ? a.calls.join('\n') : '(no calls)'),
      controls, msg);

    const showRecord = (rec) => {
      controls.replaceChildren(...statusSpan(rec).filter(Boolean));
      if (rec.status !== 'undone') controls.append(actButton('Undo', 'undo', () => undo(rec)));
      if (rec.secret) {
        msg.replaceChildren(h('div', { class: 'secret' }, h('strong', null, 'Shown once, store it now: '), h('pre', null, String(rec.secret))));
      }
    };
    const busy = (btn, text) => { btn.disabled = true; btn.textContent = text; };
    async function approve(e) {
      if (!window.confirm('Make this change in AWS?')) return;
      const btn = e.currentTarget;
      busy(btn, 'Working…');
      msg.replaceChildren();
      try {
        const rec = await api(`/api/incidents/${encodeURIComponent(incidentId)}/response/${a.index}/approve`, { method: 'POST' });
        showRecord(rec);
        refreshLog();
      } catch (err) {
        btn.disabled = false; btn.textContent = 'Approve';
        handleError(err, msg);
      }
    }
    async function undo(rec) {
      if (!window.confirm('Undo this change in AWS?')) return;
      const btn = controls.querySelector('button.undo');
      if (btn) busy(btn, 'Undoing…');
      msg.replaceChildren();
      try {
        const out = await api(`/api/actions/${encodeURIComponent(rec.id)}/undo`, { method: 'POST' });
        showRecord(out);
        refreshLog();
      } catch (err) {
        if (btn) { btn.disabled = !canAct(); btn.textContent = 'Undo'; }
        handleError(err, msg);
      }
    }

    if (a.refused) controls.append(h('div', { class: 'refused' }, h('strong', null, 'Refused: '), a.refused));
    else if (a.executed) showRecord(a.executed);
    else controls.append(actButton('Approve', 'approve primary', approve));
    return card;
  }

  function actionLogTable(items) {
    const t = makeTable('action-log-table', ['When', 'Action', 'Identity', 'Status', 'Summary'], 'action-log');
    if (!items.length) t.tbody.append(emptyRow(5, 'no actions recorded for this incident'));
    for (const r of items) {
      t.tbody.append(h('tr', { class: 'action-log-row', 'data-id': r.id },
        h('td', { class: 'nowrap' }, timeEl(r.created_at)), h('td', null, mono(r.kind)), h('td', null, identityLink(r.identity)),
        h('td', null, statusSpan(r)), h('td', null, r.summary || '', r.reason ? h('div', { class: 'sub' }, r.reason) : null)));
    }
    return t.wrap;
  }

  function responseSection(ctx, incidentId) {
    const body = h('div', { class: 'response-body' }, loading('proposed actions'));
    const log = h('div', { id: 'action-log' }, loading('action log'));
    const refreshLog = async () => {
      try {
        const d = await api(`/api/actions?${qs({ incident: incidentId })}`);
        if (ctx.alive()) log.replaceChildren(actionLogTable(d.items || []));
      } catch (err) { handleError(err, log, ctx); }
    };
    (async () => {
      try {
        const d = await api(`/api/incidents/${encodeURIComponent(incidentId)}/response`);
        if (!ctx.alive()) return;
        const actions = d.actions || [];
        body.replaceChildren();
        appendKids(body, [
          !canAct() ? h('p', { class: 'note ro-note' }, READ_ONLY_TIP) : null,
          actions.length ? h('div', { class: 'action-cards' }, actions.map((a) => actionCard(incidentId, a, refreshLog)))
            : empty('no response actions proposed')]);
      } catch (err) { handleError(err, body, ctx); }
    })();
    refreshLog();
    return section('response', 'Response',
      h('p', { class: 'note' }, 'Dry run: nothing changes in AWS until you approve an action.'),
      body, h('h3', null, 'Action log'), log);
  }

  async function pageIncident(ctx, incidentId) {
    const d = await api(`/api/incidents/${encodeURIComponent(incidentId)}`);
    const inc = d.incident || {};
    const timeline = [...(d.timeline || [])].sort((a, b) => String(a.time || '').localeCompare(String(b.time || '')));
    const tl = h('ol', { id: 'incident-timeline', class: 'timeline' });
    if (!timeline.length) tl.append(h('li', { class: 'empty' }, 'no findings'));
    for (const item of timeline) {
      tl.append(h('li', { class: 'timeline-item', 'data-finding': item.finding_id },
        h('div', { class: 'tl-time' }, timeEl(item.time)),
        h('div', { class: 'tl-head' }, sevBadge(item.severity), ' ', h('strong', null, item.title || item.detector),
          h('span', { class: 'sub' }, ` · ${item.detector || ''}`)),
        item.identity ? h('div', null, identityLink(item.identity)) : null,
        item.explanation ? h('p', { class: 'explanation' }, item.explanation) : null));
    }
    const ids = inc.identities || [];
    const page = h('div', { id: 'page-incident', class: 'page' },
      h('div', { class: 'page-head' },
        h('h1', null, sevBadge(inc.severity), ' ', inc.title || incidentId),
        h('div', { class: 'meta-line' }, mono(inc.id || incidentId), ` · status ${inc.status || '—'} · score ${inc.score ?? '—'} · `,
          `${fmtNum(inc.finding_count)} findings · ${fmtDate(inc.first_seen)} → ${fmtDate(inc.last_seen)} UTC`)),
      inc.summary ? h('p', { class: 'summary' }, inc.summary) : null,
      h('div', { class: 'grid-2' },
        section('incident-identities', 'Identities', ids.length ? h('ul', null, ids.map((x) => h('li', null, identityLink(x)))) : empty('none')),
        section('blast-radius', 'Blast radius', inc.blast_radius ? kvList(inc.blast_radius) : empty('not assessed'))),
      section('incident-graph-section', 'What it links', h('div', { class: 'graph-wrap' }, incidentGraph(d.graph)), graphLegend()),
      section('incident-timeline-section', 'Timeline', tl),
      responseSection(ctx, incidentId));
    ctx.show(page);
  }

  // ---------------------------------------------------------------- findings

  const FIND_DEFAULTS = { severity: '', identity: '', status: 'open', offset: 0, limit: 50 };

  function pageFindings(ctx) {
    const st = readState(ctx.params, FIND_DEFAULTS);
    st.limit = Math.min(500, Math.max(1, st.limit));
    const changed = (resetOffset = true) => {
      if (resetOffset) st.offset = 0;
      writeHash('/findings', st, FIND_DEFAULTS);
      load();
    };
    const sevSel = makeSelect('filter-severity', 'Severity', [['', 'low and above'], ['info', 'all (info and above)'],
      ['medium', 'medium and above'], ['high', 'high and above'], ['critical', 'critical only']], st.severity,
    (e) => { st.severity = e.target.value; changed(); });
    const statusSel = makeSelect('filter-status', 'Status', ['open', 'resolved', 'benign', 'suppressed', 'all'].map((x) => [x, x]),
      st.status, (e) => { st.status = e.target.value; changed(); });
    const ident = h('input', { id: 'filter-identity', type: 'search', placeholder: 'identity ARN', value: st.identity,
      'aria-label': 'Identity ARN' });
    ident.addEventListener('input', debounce(() => { st.identity = ident.value.trim(); changed(); }, 250));
    const t = makeTable('findings-table', ['Severity', 'Finding', 'Identity', 'Detector', 'Status', 'First seen', 'Last seen', 'Incident']);
    const pager = makePager(() => { st.offset = Math.max(0, st.offset - st.limit); changed(false); },
      () => { st.offset += st.limit; changed(false); });
    const status = h('div', { class: 'status-slot' });
    ctx.show(h('div', { id: 'page-findings', class: 'page' },
      h('h1', null, 'Findings'),
      h('div', { class: 'toolbar' }, sevSel, statusSel, h('label', { class: 'field grow' }, h('span', null, 'Identity'), ident)),
      status, t.wrap, pager.el));

    const load = pagedLoader({ ctx, t, pager, status, st, noun: 'findings', empty: 'no findings match',
      url: () => `/api/findings?${qs({ severity: st.severity, identity: st.identity, status: st.status,
        limit: st.limit, offset: st.offset })}`,
      render: (d) => (d.items || []).map((f) => h('tr', { class: 'finding-row', 'data-id': f.id },
          h('td', null, sevBadge(f.severity)),
          h('td', null, h('strong', null, f.title || f.detector), f.explanation ? h('div', { class: 'sub clamp' }, f.explanation) : null),
          h('td', null, f.identity ? identityLink(f.identity, truncate(f.identity, 70)) : '—'),
          h('td', null, mono(f.detector || '—')),
          h('td', null, f.status || '—'),
          h('td', { class: 'nowrap' }, timeEl(f.first_seen)),
          h('td', { class: 'nowrap' }, timeEl(f.last_seen)),
          h('td', null, f.incident_id ? h('a', { href: incidentHref(f.incident_id), class: 'mono' }, f.incident_id) : '—'))) });
    load();
  }

  // ---------------------------------------------------------------- router

  function parseHash() {
    const raw = location.hash.replace(/^#/, '') || '/';
    const q = raw.indexOf('?');
    const path = (q >= 0 ? raw.slice(0, q) : raw) || '/';
    return { path, params: new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '') };
  }

  function markNav(path) {
    const current = path === '/' ? 'overview'
      : path.startsWith('/inventory') || path.startsWith('/identity') ? 'inventory'
        : path.startsWith('/incident') ? 'incidents'
          : path.startsWith('/findings') ? 'findings' : '';
    for (const a of document.querySelectorAll('#topnav a[data-nav]')) {
      const on = a.dataset.nav === current;
      a.classList.toggle('active', on);
      if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
  }

  async function route() {
    const gen = ++routeGen;
    const { path, params } = parseHash();
    const main = view();
    markNav(path);
    main.replaceChildren(loading());
    const ctx = {
      params,
      alive: () => gen === routeGen,
      show(node) { if (gen === routeGen) main.replaceChildren(node); },
    };
    try {
      let m;
      if (path === '/' || path === '/overview') await pageOverview(ctx);
      else if (path === '/inventory') pageInventory(ctx);
      else if (path === '/identity') await pageIdentity(ctx);
      else if (path === '/incidents') await pageIncidents(ctx);
      else if ((m = path.match(/^\/incident\/([^/]+)$/))) await pageIncident(ctx, decodeURIComponent(m[1]));
      else if (path === '/findings') pageFindings(ctx);
      else ctx.show(h('div', { class: 'page' }, h('h1', null, 'Not found'), h('p', { class: 'error' }, `no page ${path}`)));
      if (ctx.alive()) window.scrollTo(0, 0);
    } catch (err) {
      handleError(err, main, ctx);
    }
  }

  async function boot() {
    captureTokenFromUrl();
    window.addEventListener('hashchange', route);
    await loadSession();
    route();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
