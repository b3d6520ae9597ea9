/* The identity page's week heatmap: when the identity is active, by weekday and hour (UTC). */

import { s } from './dom.js';
import { fmtNum } from './format.js';

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

function heatColor(count, max) {
  if (!(count > 0) || !(max > 0)) return '#eceef1';
  const t = 0.12 + 0.88 * Math.sqrt(count / max);
  const from = [219, 234, 254], to = [30, 58, 138];
  const c = from.map((f, i) => Math.round(f + (to[i] - f) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export function heatmap(grid) {
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
