/* Graphs in SVG: an incident's (the identities, keys, networks and accounts it links, force-directed)
 * and an identity's route to admin (its principals in a row, one edge per hop). */

import { h, s } from './dom.js';
import { identityHref, known, SEV_COLOR, SEVS, truncate } from './format.js';

const KIND_STYLE = {
  role: { shape: 'circle', r: 17, fill: '#dbeafe', glyph: 'R' },
  user: { shape: 'circle', r: 17, fill: '#dcfce7', glyph: 'U' },
  root: { shape: 'octagon', r: 19, fill: '#fee2e2', glyph: '!' },
  federated: { shape: 'pill', r: 17, fill: '#ede9fe', glyph: 'F' },
  key: { shape: 'square', r: 10, fill: '#fef3c7', glyph: 'K' },
  network: { shape: 'diamond', r: 17, fill: '#e0f2fe', glyph: 'N' },
  account: { shape: 'rect', r: 18, fill: '#f1f5f9', glyph: 'A' },
  service: { shape: 'hexagon', r: 17, fill: '#fae8ff', glyph: 'S' },
  group: { shape: 'rect', r: 15, fill: '#fef9c3', glyph: 'G' },
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

export function incidentGraph(graph) {
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

export const graphLegend = () => h('div', { class: 'legend' },
  'Shapes: circle = role or user, octagon = root, pill = federated, small square = key, diamond = network, '
  + 'rectangle = account, hexagon = service. Ring colour = severity:',
  SEVS.map((k) => h('span', { class: 'legend-item' }, h('span', { class: `swatch sb-${k}` }), k)));

// -- a route to admin ---------------------------------------------------------------------------

const ROUTE_GAP = 340; // between principals in the row: a hop's label clears the nodes' own
const RING = { start: '#1d4ed8', admin: '#dc2626', other: '#94a3b8' };

function principalKind(arn) {
  const m = /^arn:aws[\w-]*:iam::[^:]*:(user|role|group)\//.exec(String(arn));
  return m ? m[1] : 'other';
}

/** What a route node is called: its name, or "any user" for the pattern a foothold route ends on. */
export function principalLabel(arn) {
  const text = String(arn || '');
  if (text.includes('*')) return `any ${principalKind(text) === 'other' ? 'principal' : principalKind(text)}`;
  return text.includes('/') ? text.slice(text.lastIndexOf('/') + 1) : text;
}

/** The route's nodes in order (the identity, each principal a hop lands on, the admin end) and its
 * edges: one per hop, plus implied ones where the route says so without a hop (a group's member, the
 * principal a group write or join makes admin). */
function routeParts(route, identity) {
  const order = [];
  const add = (arn) => { if (arn && !order.includes(arn)) order.push(arn); };
  const edges = [];
  const start = route.start || identity;
  add(start);
  if (route.via_member) {
    add(route.via_member);
    edges.push({ source: start, target: route.via_member, implied: 'member' });
  }
  (route.hops || []).forEach((hop, index) => {
    add(hop.from);
    add(hop.to);
    edges.push({ source: hop.from, target: hop.to, hop, index });
  });
  const last = (route.hops || []).at(-1);
  if (route.admin && !order.includes(route.admin) && last) {
    add(route.admin);
    edges.push({ source: last.to, target: route.admin, implied: last.method === 'iam-013' ? 'joins, becomes admin' : 'becomes admin' });
  }
  return { order, edges };
}

/** An identity's shortest route to admin, left to right. `onHop(index, how)` hears hover ('preview'),
 * click or focus ('select') and leave ('leave') of each hop's edge. */
export function routeGraph(route, identity, onHop) {
  const { order, edges } = routeParts(route, identity);
  const loops = edges.filter((e) => e.source === e.target).length;
  const span = (e) => order.indexOf(e.target) - order.indexOf(e.source);
  const over = Math.max(0, ...edges.map((e) => span(e) - 1)), under = Math.max(0, ...edges.map((e) => -span(e) - 1));
  // room above for loops and arcs over skipped principals, below for arcs going back
  const W = Math.max(420, 220 + ROUTE_GAP * (order.length - 1));
  const y = 80 + Math.max(Math.min(loops, 4) * 30, over * 55);
  const H = y + 80 + (under + (edges.some((e) => span(e) < 0) ? 1 : 0)) * 55;
  const svg = s('svg', { id: 'route-graph', class: 'graph route-graph', viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `Route to admin in ${(route.hops || []).length} hops` });
  svg.style.maxWidth = `${W}px`; // a short route stays at its drawn size instead of filling the panel
  svg.append(s('defs', null,
    s('marker', { id: 'rg-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerUnits: 'userSpaceOnUse', markerWidth: 11, markerHeight: 11, orient: 'auto-start-reverse' },
      s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' })),
    s('marker', { id: 'rg-arrow-cond', viewBox: '0 0 10 10', refX: 9, refY: 5, markerUnits: 'userSpaceOnUse', markerWidth: 11, markerHeight: 11, orient: 'auto-start-reverse' },
      s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead conditional' }))));
  const at = new Map(order.map((arn, i) => [arn, { x: 110 + i * ROUTE_GAP, y, st: KIND_STYLE[principalKind(arn)] || KIND_STYLE.other }]));

  // Parallel edges (a write then an act on the same principal) bend apart; loops (a principal writing
  // its own permissions) stack above the node.
  const pairKey = (e) => [String(e.source), String(e.target)].sort().join('\u0000');
  const pairCount = new Map(), pairSeen = new Map();
  for (const e of edges) pairCount.set(pairKey(e), (pairCount.get(pairKey(e)) || 0) + 1);
  const edgeLayer = s('g', { class: 'edges' }), nodeLayer = s('g', { class: 'nodes' });
  for (const e of edges) {
    const a = at.get(e.source), b = at.get(e.target);
    const key = pairKey(e);
    const seen = pairSeen.get(key) || 0;
    pairSeen.set(key, seen + 1);
    let d, lx, ly, above;
    if (a === b) {
      const top = a.y - a.st.r, reach = 34 + seen * 30;
      d = `M${a.x - 7},${top} C${a.x - 40 - seen * 10},${top - reach} ${a.x + 40 + seen * 10},${top - reach} ${a.x + 7},${top}`;
      lx = a.x; ly = top - reach * 0.75 - 4; above = true;
    } else {
      const count = pairCount.get(key);
      const far = Math.abs(span(e));
      // adjacent principals: straight, or bent apart when parallel; farther ones arc over those between
      // (the normal is the pair's left-to-right one, so hops going back and forth bend apart too)
      let bend = (seen - (count - 1) / 2) * 80;
      if (far > 1) bend += (span(e) > 0 ? -55 : 55) * far;
      const [lo, hi] = a.x < b.x ? [a, b] : [b, a];
      const len = Math.max(1, hi.x - lo.x);
      const nx = -(hi.y - lo.y) / len, ny = (hi.x - lo.x) / len;
      const mx = (a.x + b.x) / 2 + nx * bend, my = (a.y + b.y) / 2 + ny * bend;
      const trim = (from, to, r) => {
        const dx = to.x - from.x, dy = to.y - from.y, l = Math.max(1, Math.hypot(dx, dy));
        return { x: from.x + (dx / l) * r, y: from.y + (dy / l) * r };
      };
      const p0 = trim(a, bend ? { x: mx, y: my } : b, a.st.r + 3);
      const p2 = trim(b, bend ? { x: mx, y: my } : a, b.st.r + 6);
      d = `M${p0.x.toFixed(1)},${p0.y.toFixed(1)} Q${mx.toFixed(1)},${my.toFixed(1)} ${p2.x.toFixed(1)},${p2.y.toFixed(1)}`;
      lx = (p0.x + 2 * mx + p2.x) / 4;
      ly = (p0.y + 2 * my + p2.y) / 4;
      above = ly <= y;
    }
    const conditional = Boolean(e.hop && e.hop.conditional);
    const cls = e.implied ? 'route-edge implied' : `route-edge hop${conditional ? ' conditional' : ''}`;
    const g = s('g', { class: cls, 'data-source': e.source, 'data-target': e.target });
    const line = s('path', { class: 'edge', d, 'marker-end': `url(#${conditional ? 'rg-arrow-cond' : 'rg-arrow'})` });
    // two label lines, stacked away from the edge: the method id, then its title
    const first = above ? ly - 17 : ly + 13, second = first + 13;
    if (e.implied) {
      g.append(line, s('text', { class: 'edge-label', x: lx.toFixed(1), y: (above ? ly - 4 : ly + 13).toFixed(1), 'text-anchor': 'middle' }, e.implied));
    } else {
      const hop = e.hop;
      const title = `${hop.method}${hop.title ? ` (${hop.title})` : ''}${conditional ? ', conditional' : ''}: ${hop.from} → ${hop.to}`;
      g.setAttribute('data-index', e.index);
      g.setAttribute('data-method', hop.method);
      g.setAttribute('tabindex', 0);
      g.setAttribute('role', 'button');
      g.setAttribute('aria-label', `hop ${e.index + 1}: ${title}`);
      g.append(s('path', { class: 'hit', d }), line,
        s('text', { class: 'edge-label method-id', x: lx.toFixed(1), y: first.toFixed(1), 'text-anchor': 'middle' },
          `${e.index + 1}. ${hop.method}${conditional ? ' (conditional)' : ''}`),
        s('text', { class: 'edge-label method-title', x: lx.toFixed(1), y: second.toFixed(1), 'text-anchor': 'middle' },
          truncate(hop.title || 'method not in this version\u2019s catalogue', 36)),
        s('title', null, title));
      if (onHop) {
        g.addEventListener('mouseenter', () => onHop(e.index, 'preview'));
        g.addEventListener('mouseleave', () => onHop(e.index, 'leave'));
        g.addEventListener('click', () => onHop(e.index, 'select'));
        g.addEventListener('focus', () => onHop(e.index, 'select'));
        g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); onHop(e.index, 'select'); } });
      }
    }
    edgeLayer.append(g);
  }
  const admin = route.admin || order.at(-1);
  order.forEach((arn) => {
    const p = at.get(arn);
    const role = arn === admin ? 'admin' : arn === (route.start || identity) ? 'start' : 'other';
    const kind = principalKind(arn);
    const g = s('g', { class: `node route-node kind-${kind} ${role === 'admin' ? 'admin-end' : ''} ${arn === (route.start || identity) ? 'start' : ''}`,
      'data-id': arn, transform: `translate(${p.x},${p.y})` },
    s('title', null, `${arn}${arn === admin ? '\n(admin at the end of the route)' : ''}`),
    nodeShape(p.st, RING[role]),
    s('text', { class: 'glyph', y: 4, 'text-anchor': 'middle' }, p.st.glyph),
    s('text', { class: 'node-label', y: p.st.r + 16, 'text-anchor': 'middle' }, truncate(principalLabel(arn), 30)),
    arn === admin ? s('text', { class: 'node-tag admin-tag', y: p.st.r + 31, 'text-anchor': 'middle' },
      arn === (route.start || identity) ? 'this identity, made admin' : 'admin') : null,
    arn === (route.start || identity) && arn !== admin ? s('text', { class: 'node-tag', y: p.st.r + 31, 'text-anchor': 'middle' }, 'this identity') : null);
    if (arn !== identity && !arn.includes('*') && kind !== 'other') {
      g.classList.add('clickable');
      g.addEventListener('click', () => { location.hash = identityHref(arn); });
    }
    nodeLayer.append(g);
  });
  svg.append(edgeLayer, nodeLayer);
  return svg;
}
