/* Response: the proposed actions as a dry-run, Approve and Undo (token only), the action log. */

import { api, canAct, qs, READ_ONLY_TIP } from './api.js';
import { appendKids, empty, h, loading, mono } from './dom.js';
import { identityLink, timeEl } from './format.js';
import { actButton, emptyRow, handleError, makeTable, section } from './widgets.js';

function statusSpan(rec) {
  const status = rec.status || 'unknown';
  const bad = ['failed', 'partial', 'undo-failed'].includes(status);
  const error = rec.undo && rec.undo.error ? rec.undo.error : rec.error;
  return [
    h('span', { class: `action-status ${bad ? 'bad' : 'good'}`, 'data-status': status }, status),
    error ? h('span', { class: 'action-error' }, error) : null,
  ];
}

function actionCard(incidentId, a, refreshLog) {
  const controls = h('div', { class: 'action-controls' });
  const msg = h('div', { class: 'action-msg' });
  const card = h('div', { class: 'action-card', 'data-index': a.index },
    h('div', { class: 'action-head' }, h('span', { class: 'action-kind mono' }, a.kind), ' on ', identityLink(a.identity)),
    a.why ? h('p', { class: 'action-why' }, h('strong', null, 'Why: '), a.why) : null,
    a.summary ? h('p', { class: 'action-summary' }, a.summary) : null,
    h('div', { class: 'dry-run-label' }, 'Dry run: the exact API calls Approve would make'),
    h('pre', { class: 'dry-run' }, (a.calls || []).length ? a.calls.join('\n') : '(no calls)'),
    controls, msg);

  const showRecord = (rec) => {
    controls.replaceChildren(...statusSpan(rec).filter(Boolean));
    if (rec.status !== 'undone') controls.append(actButton('Undo', 'undo', () => undo(rec)));
    if (rec.secret) {
      msg.replaceChildren(h('div', { class: 'secret' }, h('strong', null, 'Shown once, store it now: '), h('pre', null, String(rec.secret))));
    }
  };
  const busy = (btn, text) => { btn.disabled = true; btn.textContent = text; };
  async function approve(e) {
    if (!window.confirm('Make this change in AWS?')) return;
    const btn = e.currentTarget;
    busy(btn, 'Working…');
    msg.replaceChildren();
    try {
      const rec = await api(`/api/incidents/${encodeURIComponent(incidentId)}/response/${a.index}/approve`, { method: 'POST' });
      showRecord(rec);
      refreshLog();
    } catch (err) {
      btn.disabled = false; btn.textContent = 'Approve';
      handleError(err, msg);
    }
  }
  async function undo(rec) {
    if (!window.confirm('Undo this change in AWS?')) return;
    const btn = controls.querySelector('button.undo');
    if (btn) busy(btn, 'Undoing…');
    msg.replaceChildren();
    try {
      const out = await api(`/api/actions/${encodeURIComponent(rec.id)}/undo`, { method: 'POST' });
      showRecord(out);
      refreshLog();
    } catch (err) {
      if (btn) { btn.disabled = !canAct(); btn.textContent = 'Undo'; }
      handleError(err, msg);
    }
  }

  if (a.refused) controls.append(h('div', { class: 'refused' }, h('strong', null, 'Refused: '), a.refused));
  else if (a.executed) showRecord(a.executed);
  else controls.append(actButton('Approve', 'approve primary', approve));
  return card;
}

function actionLogTable(items) {
  const t = makeTable('action-log-table', ['When', 'Action', 'Identity', 'Status', 'Summary'], 'action-log');
  if (!items.length) t.tbody.append(emptyRow(5, 'no actions recorded for this incident'));
  for (const r of items) {
    t.tbody.append(h('tr', { class: 'action-log-row', 'data-id': r.id },
      h('td', { class: 'nowrap' }, timeEl(r.created_at)), h('td', null, mono(r.kind)), h('td', null, identityLink(r.identity)),
      h('td', null, statusSpan(r)), h('td', null, r.summary || '', r.reason ? h('div', { class: 'sub' }, r.reason) : null)));
  }
  return t.wrap;
}

export function responseSection(ctx, incidentId) {
  const body = h('div', { class: 'response-body' }, loading('proposed actions'));
  const log = h('div', { id: 'action-log' }, loading('action log'));
  const refreshLog = async () => {
    try {
      const d = await api(`/api/actions?${qs({ incident: incidentId })}`);
      if (ctx.alive()) log.replaceChildren(actionLogTable(d.items || []));
    } catch (err) { handleError(err, log, ctx); }
  };
  (async () => {
    try {
      const d = await api(`/api/incidents/${encodeURIComponent(incidentId)}/response`);
      if (!ctx.alive()) return;
      const actions = d.actions || [];
      body.replaceChildren();
      appendKids(body, [
        !canAct() ? h('p', { class: 'note ro-note' }, READ_ONLY_TIP) : null,
        actions.length ? h('div', { class: 'action-cards' }, actions.map((a) => actionCard(incidentId, a, refreshLog)))
          : empty('no response actions proposed')]);
    } catch (err) { handleError(err, body, ctx); }
  })();
  refreshLog();
  return section('response', 'Response',
    h('p', { class: 'note' }, 'Dry run: nothing changes in AWS until you approve an action.'),
    body, h('h3', null, 'Action log'), log);
}
