/* Formatting shared by the pages: UTC dates, numbers, severity and risk badges, links to pages. */

import { h } from './dom.js';

export const SEVS = ['info', 'low', 'medium', 'high', 'critical'];
export const RISKS = ['low', 'medium', 'high', 'critical'];
export const SEV_COLOR = {
  info: '#64748b', low: '#2563eb', medium: '#d97706', high: '#ea580c', critical: '#dc2626', unknown: '#94a3b8',
};

function parseIso(iso) {
  if (!iso) return null;
  let str = String(iso);
  // The API speaks UTC; a timestamp without a zone must not be read as local time.
  if (/T\d\d:\d\d/.test(str) && !/(Z|[+-]\d\d:?\d\d)$/i.test(str)) str += 'Z';
  const d = new Date(str);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function fmtDate(iso) {
  if (!iso) return '—';
  const d = parseIso(iso);
  if (!d) return String(iso);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`;
}

export const timeEl = (iso) => h('time', { datetime: iso || null, title: iso ? `${fmtDate(iso)} UTC` : null }, fmtDate(iso));
export const fmtNum = (n) => (n === null || n === undefined || n === '' ? '—' : Number(n).toLocaleString('en-US'));
export const known = (value, allowed) => {
  const v = String(value || '').toLowerCase();
  return allowed.includes(v) ? v : 'unknown';
};
export const sevBadge = (sev) => h('span', { class: `sev sev-${known(sev, SEVS)}` }, sev || 'unknown');
export const riskBadge = (risk) => h('span', { class: `risk risk-${known(risk, RISKS)}` }, risk || 'unknown');
export const truncate = (text, n) => { const t = String(text ?? ''); return t.length > n ? `${t.slice(0, n - 1)}…` : t; };

export const identityHref = (arn) => `#/identity?arn=${encodeURIComponent(arn)}`;
export const incidentHref = (id) => `#/incident/${encodeURIComponent(id)}`;
export const identityLink = (arn, text) => h('a', { class: 'mono', href: identityHref(arn), title: arn }, text || arn);
