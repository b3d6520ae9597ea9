/* One incident: summary, identities, blast radius, graph, timeline, response. */

import { api } from './api.js';
import { empty, h, mono } from './dom.js';
import { fmtDate, fmtNum, identityLink, sevBadge, timeEl } from './format.js';
import { kvList, section } from './widgets.js';
import { graphLegend, incidentGraph } from './graph.js';
import { responseSection } from './respond.js';

export async function pageIncident(ctx, incidentId) {
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
