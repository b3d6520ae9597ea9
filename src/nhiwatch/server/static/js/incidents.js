/* The incident list (and the incident table the overview shows too). */

import { api } from './api.js';
import { h } from './dom.js';
import { fmtNum, identityLink, incidentHref, sevBadge, timeEl, truncate } from './format.js';
import { emptyRow, makeTable } from './widgets.js';

export function incidentTable(id, items, compact) {
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

export async function pageIncidents(ctx) {
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
