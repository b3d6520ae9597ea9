/* The inventory: searched, filtered, sorted and paged in the URL. */

import { api, qs } from './api.js';
import { h, mono } from './dom.js';
import { fmtNum, identityHref, riskBadge, RISKS, timeEl, truncate } from './format.js';
import { debounce, fillSelect, makePager, makeSelect, makeTable, pagedLoader, readState, writeHash } from './widgets.js';

const INV_DEFAULTS = { search: '', type: '', account: '', risk: '', sort: 'risk', order: 'desc', offset: 0, limit: 50 };
const INV_COLS = [
  ['Name', 'name'], ['Type', 'type'], ['Account', 'account'], ['Risk', 'risk'], ['Last active', 'last_active'],
  ['Key age', 'key_age'], ['Findings', 'findings'], ['Owner', null],
];
const ASC_FIRST = ['name', 'type', 'account'];

export function pageInventory(ctx) {
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
