/* An identity's route to admin, from the inventory's principal graph: the shortest route drawn hop by
 * hop with each hop's evidence (the permission checks the evaluator made), and the other routes as
 * text. Every name here comes from IAM exports: DOM text only (dom.js). */

import { empty, h, mono } from './dom.js';
import { principalLabel, routeGraph } from './graph.js';
import { makeTable, section } from './widgets.js';

const methodName = (m) => (m.title ? `${m.id} (${m.title})` : m.id);

function hopEvidence(hop, index, total) {
  const checks = makeTable('route-checks', ['Action', 'Resource', 'Asked as', 'Verdict', 'Because'], 'checks');
  for (const c of hop.checks || []) {
    checks.tbody.append(h('tr', { class: c.verdict === 'allowed' ? 'check' : 'check conditional' },
      h('td', null, mono(c.action)), h('td', null, mono(c.resource, 'wrap')),
      h('td', null, c.principal ? mono(c.principal) : 'this hop\u2019s caller'),
      h('td', null, h('span', { class: c.verdict === 'allowed' ? 'tag tag-ok' : 'tag tag-warn' }, c.verdict)),
      h('td', null, (c.statements || []).length ? h('ul', { class: 'statements' }, c.statements.map((x) => h('li', null, x))) : '—',
        (c.undecided || []).length ? h('div', { class: 'sub' }, 'depends on ', mono(c.undecided.join(', '))) : null)));
  }
  return [
    h('h3', null, `Hop ${index + 1} of ${total}: `, mono(hop.method), hop.title ? ` ${hop.title}` : '',
      hop.conditional ? h('span', { class: 'tag tag-warn' }, 'conditional') : null),
    h('p', { class: 'hop-ends' }, mono(hop.from, 'wrap'), ' \u2192 ', mono(hop.to, 'wrap')),
    hop.note ? h('p', { class: 'explanation' }, hop.note) : null,
    hop.subject ? h('p', { class: 'sub' }, 'concerns ', mono(hop.subject, 'wrap')) : null,
    (hop.checks || []).length ? checks.wrap : empty('no permission checks recorded'),
  ].filter(Boolean); // replaceChildren would show a null as the text "null"

}

/** `iam-009 (attach ...) → deploy → lambda-003 (...) → rotator`: each hop's method and where it lands. */
function routeText(route) {
  const parts = [];
  if (route.via_member) parts.push(`member ${principalLabel(route.via_member)} \u2192 `);
  (route.hops || []).forEach((hop, i) => {
    parts.push(`${i ? ' \u2192 ' : ''}${hop.method}${hop.title ? ` (${hop.title})` : ''} \u2192 ${principalLabel(hop.to)}`);
  });
  if ((route.hops_total || 0) > (route.hops || []).length) parts.push(` \u2192 \u2026 ${route.hops_total - route.hops.length} more hops`);
  return parts.join('');
}

function routeTags(route) {
  return [route.conditional ? h('span', { class: 'tag tag-warn' }, 'conditional') : null,
    route.foothold ? h('span', { class: 'tag' }, 'any foothold') : null];
}

export function routeSection(identity, esc) {
  if (!esc) return null; // not in the inventory: the graph knows nothing of it
  if ((esc.admin || []).length) {
    return section('route-to-admin', 'Route to admin',
      h('p', { id: 'already-admin' }, 'already admin (via ', esc.admin.join(', '), ')'));
  }
  const best = esc.shortest;
  if (!best) return section('route-to-admin', 'Route to admin', empty('no route to admin'));
  const total = (best.hops || []).length;
  const panel = h('div', { id: 'route-evidence', class: 'route-evidence', 'aria-live': 'polite' });
  let selected = 0;
  const show = (index) => {
    panel.replaceChildren(...hopEvidence(best.hops[index], index, total));
    for (const g of graph.querySelectorAll('g.hop')) g.classList.toggle('selected', Number(g.dataset.index) === index);
  };
  const graph = routeGraph(best, identity, (index, how) => {
    if (how === 'select') selected = index;
    show(how === 'leave' ? selected : index);
  });
  const others = (esc.routes || []).filter((r) => !r.shortest);
  const list = h('ol', { id: 'other-routes', class: 'routes' }, others.map((r) => h('li', null, mono(routeText(r), 'wrap'), ' ', routeTags(r))));
  const hidden = (esc.routes_total || 0) - (esc.routes || []).length;
  const out = section('route-to-admin', 'Route to admin',
    h('p', { class: 'meta-line' }, `Shortest route: ${total} hop${total === 1 ? '' : 's'} to `, mono(principalLabel(best.admin)),
      ` · ${esc.routes_total || 0} route${esc.routes_total === 1 ? '' : 's'} in all · by `,
      (best.methods || []).map(methodName).join(' then '), ' ', routeTags(best)),
    best.conditional ? h('p', { class: 'note' }, 'Dashed hops rest on a condition nhiwatch cannot decide from IAM alone.') : null,
    h('div', { class: 'graph-wrap' }, graph),
    h('p', { class: 'sub' }, 'Point at or click a hop to see the permissions it needs and the statements that grant them.'),
    panel,
    others.length ? h('div', null, h('h3', null, 'Other routes'), list) : null,
    hidden > 0 ? h('p', { class: 'sub' }, `\u2026 and ${hidden} more routes (nhiwatch posture paths ARN)`) : null);
  show(selected);
  return out;
}
