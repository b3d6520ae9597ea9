/* One identity: facts, why its risk, posture, its route to admin, its learned baseline (heatmap, top values), findings,
 * permissions. */

import { api } from './api.js';
import { empty, h, mono } from './dom.js';
import { fmtDate, fmtNum, incidentHref, riskBadge, sevBadge, timeEl } from './format.js';
import { emptyRow, kvList, makeTable, section } from './widgets.js';
import { heatmap } from './heatmap.js';
import { routeSection } from './paths.js';

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

export async function pageIdentity(ctx) {
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
    routeSection(id.arn || arn, d.escalation),
    h('div', { class: 'grid-2' },
      section('trust', 'Trust', kvList(id.trust_summary)),
      section('evidence', 'Classification evidence',
        (id.evidence || []).length ? h('ul', null, id.evidence.map((e) => h('li', null, e))) : empty('none'))),
    renderProfile(d.profile),
    section('identity-findings-section', 'Findings', findingsTimeline(d.findings)),
    renderPermissions(d.permissions));
  ctx.show(page);
}
