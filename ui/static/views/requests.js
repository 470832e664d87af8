// Requests: raw request records, newest first, with filters, paging and
// a CSV export of the same selection.

import { api, query } from '../api.js';
import { h, field, select, errorNotice, empty, fmtTime, fmtMs, fmtBytes, wallToUTC, browserTimeZone } from '../util.js';

export function mount(root, { signal, params }) {
  const tz = browserTimeZone();
  const from = h('input', { type: 'datetime-local' });
  const to = h('input', { type: 'datetime-local' });
  const keyID = h('input', { placeholder: 'key_…', size: 14, value: params.get('key_id') || '' });
  const route = h('input', { placeholder: '/api/forms/*', size: 16, value: params.get('route') || '' });
  const status = h('input', { placeholder: '429 or 5xx', size: 8, value: params.get('status') || '' });
  const method = select([['', 'Any'], ...['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].map((m) => [m, m])], params.get('method') || '');
  const exportLink = h('a', { class: 'button', download: 'apiwarden-requests.csv', href: '#' }, 'Export CSV');
  const listBox = h('div', null, h('p', { class: 'muted' }, 'Loading requests…'));
  const newer = h('button', { type: 'button', disabled: true, onclick: () => page(-1) }, '← Newer');
  const older = h('button', { type: 'button', disabled: true, onclick: () => page(1) }, 'Older →');
  const info = h('span', { class: 'muted', 'aria-live': 'polite' });

  root.append(
    h('div', { class: 'view-head' }, h('div', null, h('h1', null, 'Requests'),
      h('p', { class: 'muted' }, `Raw records, newest first. Times in ${tz}. Records are kept for metrics.raw_retention_days and may be sampled.`)), exportLink),
    h('form', { class: 'card section row', onsubmit: (e) => { e.preventDefault(); cursors = ['']; at = 0; load(); } },
      field('From', from), field('To', to), field('Key id', keyID), field('Route', route), field('Status', status), field('Method', method),
      h('button', { type: 'submit', class: 'primary' }, 'Filter')),
    listBox, h('div', { class: 'pager' }, info, newer, older));

  let cursors = ['']; // cursors[i] loads page i
  let at = 0;

  function filters() {
    const iso = (v) => { const t = wallToUTC(v, tz); return isNaN(t) ? '' : new Date(t).toISOString(); };
    return { from: iso(from.value), to: iso(to.value), key_id: keyID.value.trim(), route: route.value.trim(), status: status.value.trim(), method: method.value };
  }

  function page(d) { at += d; load(); }

  async function load() {
    const f = filters();
    exportLink.href = '/admin/v1/analytics/export' + query({ format: 'csv', ...f });
    try {
      const r = await api('GET', '/admin/v1/requests' + query({ ...f, cursor: cursors[at], limit: 100 }), undefined, { signal });
      const recs = r.records || [];
      cursors[at + 1] = r.next_cursor || '';
      older.disabled = !r.next_cursor;
      newer.disabled = at === 0;
      info.textContent = recs.length ? `Page ${at + 1}, ${recs.length} record${recs.length === 1 ? '' : 's'}` : '';
      if (!recs.length) {
        listBox.replaceChildren(empty(Object.values(f).some(Boolean) ? 'No requests match these filters in this time range.' : 'No requests recorded yet. Requests through apiwarden appear here a second or so after they finish.'));
        return;
      }
      listBox.replaceChildren(h('div', { class: 'table-wrap' }, h('table', null,
        h('caption', { class: 'sr-only' }, 'Request records'),
        h('thead', null, h('tr', null, ['Time', 'Method', 'Path', 'Status', 'Latency', 'Key', 'Decision', 'Error', 'Bytes out', 'Client IP'].map((c, i) =>
          h('th', { scope: 'col', class: (i === 4 || i === 8 ? 'num ' : '') + (i >= 6 ? 'hide-narrow' : '') }, c)))),
        h('tbody', null, recs.map((x) => h('tr', null,
          h('td', null, fmtTime(x.time, tz)),
          h('td', null, x.method),
          h('td', { class: 'wrap', title: x.route ? 'Route ' + x.route : null }, h('code', null, x.path)),
          h('td', null, h('span', { class: 'badge ' + (x.status >= 500 ? 'bad' : x.status >= 400 ? 'warn' : 'ok') }, String(x.status))),
          h('td', { class: 'num' }, fmtMs(x.latency_ms)),
          h('td', { class: 'mono' }, x.key_id || '–'),
          h('td', { class: 'hide-narrow' }, x.decision || '–'),
          h('td', { class: 'hide-narrow' }, x.error_category && x.error_category !== 'none' ? x.error_category : '–'),
          h('td', { class: 'num hide-narrow' }, fmtBytes(x.response_bytes)),
          h('td', { class: 'hide-narrow mono' }, x.client_ip || '–')))))));
    } catch (e) {
      if (e.name !== 'AbortError') listBox.replaceChildren(errorNotice(e, 'Requests'));
    }
  }

  load();
  return () => {};
}
