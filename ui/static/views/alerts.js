// Alerts: firing, acknowledged and resolved alerts; acknowledge with a
// note, resolve; the configured rules.

import { api, query } from '../api.js';
import { h, field, select, dialog, toast, errorNotice, empty, fmtAgo, fmtTime, fmtNum, alertSubject, joined } from '../util.js';

const TABS = [['firing', 'Firing'], ['acknowledged', 'Acknowledged'], ['pending', 'Pending'], ['recovering', 'Recovering'], ['resolved', 'Resolved'], ['', 'All']];

export function mount(root, { signal, params }) {
  let state = params.has('state') ? params.get('state') : 'firing';
  const severity = select([['', 'Any severity'], ['critical', 'Critical'], ['high', 'High'], ['medium', 'Medium'], ['low', 'Low']], params.get('severity') || '', { 'aria-label': 'Severity' });
  const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': 'Alert state' });
  const listBox = h('div', null, h('p', { class: 'muted' }, 'Loading alerts…'));
  const rulesBox = h('div');
  root.append(
    h('div', { class: 'view-head' },
      h('div', null, h('h1', null, 'Alerts'), h('p', { class: 'muted' }, 'Acknowledging says a person is on it and stops repeat notifications; resolving closes the alert.')),
      severity),
    tabs,
    h('section', { class: 'card section', 'aria-label': 'Alerts' }, listBox),
    h('details', { class: 'card' }, h('summary', null, h('strong', null, 'Rules')), rulesBox),
  );
  severity.addEventListener('change', load);

  function drawTabs() {
    tabs.replaceChildren(...TABS.map(([v, label]) => h('button', { type: 'button', 'aria-pressed': String(v === state), dataset: { state: v },
      onclick: () => { state = v; drawTabs(); load(); } }, label)));
  }

  async function load() {
    try {
      const r = await api('GET', '/admin/v1/alerts' + query({ state, severity: severity.value, limit: 200 }), undefined, { signal });
      const alerts = r.alerts || [];
      if (!alerts.length) {
        const what = TABS.find(([v]) => v === state)[1].toLowerCase();
        listBox.replaceChildren(empty(state === 'firing' ? 'No alert is firing. Alerts appear here when a rule\'s condition holds for its "for" duration.'
          : `No ${state ? what + ' ' : ''}alerts${severity.value ? ' of ' + severity.value + ' severity' : ''}.`));
        return;
      }
      listBox.replaceChildren(h('ul', { class: 'list' }, alerts.map(item)));
    } catch (e) {
      if (e.name !== 'AbortError') listBox.replaceChildren(errorNotice(e, 'Alerts'));
    }
  }

  function item(a) {
    const ack = a.acknowledgement;
    const open = a.state !== 'resolved';
    return h('li', { dataset: { alertId: a.id, state: a.state } },
      h('div', { class: 'main' },
        h('div', { class: 'title' }, h('span', { class: 'badge ' + a.severity }, a.severity), ' ', h('span', { class: 'badge ' + a.state }, a.state), ' ', a.summary || a.rule),
        a.description ? h('div', null, a.description) : null,
        h('div', { class: 'meta' }, joined([
          a.rule, a.type, alertSubject(a),
          a.value != null ? `value ${fmtNum(a.value)} (threshold ${fmtNum(a.threshold)})` : null,
          a.fired_at ? `fired ${fmtAgo(a.fired_at)}` : a.active_at ? `pending since ${fmtAgo(a.active_at)}` : null,
          a.resolved_at ? `resolved ${fmtTime(a.resolved_at)}${a.resolved_by ? ' by ' + a.resolved_by : ''}` : null,
        ])),
        a.inhibited_by && open ? h('div', { class: 'meta', dataset: { testid: 'alert-inhibited' } }, `Not sent to receivers: a higher-severity alert on the same ${a.subject && a.subject.kind || 'subject'} fires (${a.inhibited_by})`) : null,
        ack ? h('div', { class: 'meta' }, `Acknowledged by ${ack.by || 'someone'} ${fmtAgo(ack.at)}${ack.note ? ': “' + ack.note + '”' : ''}`) : null),
      h('div', null,
        a.state === 'firing' ? h('button', { type: 'button', class: 'primary small', dataset: { action: 'ack' }, onclick: () => act(a, 'ack') }, 'Acknowledge') : null, ' ',
        open ? h('button', { type: 'button', class: 'small', dataset: { action: 'resolve' }, onclick: () => act(a, 'resolve') }, 'Resolve') : null));
  }

  async function act(a, what) {
    const note = h('textarea', { rows: 3, maxlength: 1000, placeholder: what === 'ack' ? 'e.g. looking into it' : 'e.g. fixed by rolling back', dataset: { testid: 'alert-note' } });
    const err = h('div');
    let done = false;
    await dialog({
      title: (what === 'ack' ? 'Acknowledge: ' : 'Resolve: ') + (a.summary || a.rule),
      content: [h('p', { class: 'muted' }, what === 'ack'
        ? 'Repeat notifications stop; the alert stays open until its condition clears or someone resolves it.'
        : 'The alert closes now. If its condition still holds, a new alert opens at the next evaluation.'),
      field('Note (kept in the alert\'s history)', note), err],
      initialFocus: note,
      buttons: [{ label: 'Cancel' }, { label: what === 'ack' ? 'Acknowledge' : 'Resolve', submit: true, class: 'primary', testid: 'alert-submit' }],
      onSubmit: async () => {
        try {
          await api('POST', `/admin/v1/alerts/${encodeURIComponent(a.id)}/${what}`, { note: note.value.trim() });
          done = true;
          return false;
        } catch (e) {
          err.replaceChildren(errorNotice(e, what === 'ack' ? 'Not acknowledged' : 'Not resolved'));
          return true;
        }
      },
    });
    if (done) {
      toast(what === 'ack' ? 'Alert acknowledged.' : 'Alert resolved.');
      load();
    }
  }

  async function loadRules() {
    try {
      const r = await api('GET', '/admin/v1/alerts/rules', undefined, { signal });
      const rules = r.rules || [];
      if (!rules.length) { rulesBox.replaceChildren(empty('No alert rules are configured ([[alerts.rules]] in the config file).')); return; }
      const cols = ['name', 'type', 'subject', 'window', 'threshold', 'min_requests', 'for', 'severity'];
      rulesBox.replaceChildren(h('div', { class: 'table-wrap' }, h('table', null,
        h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col' }, c.replace('_', ' '))))),
        h('tbody', null, rules.map((rule) => h('tr', null, cols.map((c) => h('td', null, rule[c] == null || rule[c] === '' ? '–' : String(rule[c])))))))));
    } catch (e) {
      if (e.name !== 'AbortError') rulesBox.replaceChildren(errorNotice(e, 'Rules'));
    }
  }

  drawTabs();
  load();
  loadRules();
  const timer = setInterval(load, 15000);
  return () => clearInterval(timer);
}
