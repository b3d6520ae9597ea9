/* The overview: counts, identities by type and risk, findings per day, top open incidents. */

import { api, qs } from './api.js';
import { empty, h, s } from './dom.js';
import { fmtDate, fmtNum, RISKS, SEVS } from './format.js';
import { section } from './widgets.js';
import { incidentTable } from './incidents.js';

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

export async function pageOverview(ctx) {
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
