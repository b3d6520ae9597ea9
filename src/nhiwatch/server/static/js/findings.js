/* Findings: filtered by severity, status and identity, paged in the URL. */

import { api, qs } from './api.js';
import { h, mono } from './dom.js';
import { identityLink, incidentHref, sevBadge, timeEl, truncate } from './format.js';
import { debounce, makePager, makeSelect, makeTable, pagedLoader, readState, writeHash } from './widgets.js';

const FIND_DEFAULTS = { severity: '', identity: '', status: 'open', offset: 0, limit: 50 };

export function pageFindings(ctx) {
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
