// Endpoints: the busiest routes of a period, sortable, with requests,
// error rate, latency and a sparkline of requests over the period.

import { api, query } from '../api.js';
import { Sparkline } from '../chart.js';
import { h, field, select, errorNotice, sortableTable, fmtInt, fmtRate, fmtMs } from '../util.js';

const HOUR = 3600e3;
const PERIODS = { hour: [HOUR, 'minute'], day: [24 * HOUR, 'hour'], week: [7 * 24 * HOUR, 'hour'], month: [30 * 24 * HOUR, 'day'] };

export function mount(root, { signal, params, navigate }) {
  const period = select([['hour', 'Last hour'], ['day', 'Last 24 hours'], ['week', 'Last 7 days'], ['month', 'Last 30 days']], params.get('period') || 'day');
  const msg = h('div');
  const note = h('p', { class: 'muted' }, 'Routes are the patterns of your [[routes]] config; click one for its requests.');
  let trends = new Map();
  const table = sortableTable([
    { key: 'value', label: 'Route', num: false },
    { key: 'requests', label: 'Requests', num: true },
    { key: 'error_rate', label: 'Error rate (5xx)', num: true },
    { key: 'rate_limited', label: 'Rate-limited', num: true, cls: 'hide-narrow' },
    { key: 'p50_ms', label: 'p50', num: true, cls: 'hide-narrow' },
    { key: 'p95_ms', label: 'p95', num: true },
    { key: 'p99_ms', label: 'p99', num: true, cls: 'hide-narrow' },
    { key: 'trend', label: 'Requests over the period', sortable: false },
  ], (r) => {
    const spark = new Sparkline({ width: 120, height: 24, label: `Requests to ${r.value}` }).set(trends.get(r.value) || []);
    return h('tr', null,
      h('td', { class: 'wrap' }, h('a', { href: '#', onclick: (e) => { e.preventDefault(); navigate('requests', { route: r.value }); } }, r.value || '(no route)')),
      h('td', { class: 'num' }, fmtInt(r.requests)),
      h('td', { class: 'num' }, fmtRate(r.error_rate)),
      h('td', { class: 'num hide-narrow' }, fmtInt(r.rate_limited)),
      h('td', { class: 'num hide-narrow' }, fmtMs(r.p50_ms)),
      h('td', { class: 'num' }, fmtMs(r.p95_ms)),
      h('td', { class: 'num hide-narrow' }, fmtMs(r.p99_ms)),
      h('td', null, spark.canvas));
  }, { sortKey: 'requests', caption: 'Top routes', emptyText: 'No requests in this period, so no routes to rank.' });

  root.append(
    h('div', { class: 'view-head' }, h('div', null, h('h1', null, 'Endpoints'), note), field('Period', period)),
    msg, table.el);
  period.addEventListener('change', load);

  async function load() {
    const p = period.value;
    const [span, interval] = PERIODS[p];
    const to = Date.now(), from = to - span;
    const [top, ts] = await Promise.allSettled([
      api('GET', '/admin/v1/analytics/top' + query({ by: 'route', metric: 'requests', period: p, limit: 100 }), undefined, { signal }),
      api('GET', '/admin/v1/analytics/timeseries' + query({ group_by: 'route', interval, from: new Date(from).toISOString(), to: new Date(to).toISOString() }), undefined, { signal }),
    ]);
    if (signal.aborted) return;
    trends = new Map();
    if (ts.status === 'fulfilled') for (const s of ts.value.series || []) trends.set(s.group, s.points.map((x) => x.requests));
    if (top.status === 'rejected') {
      msg.replaceChildren(errorNotice(top.reason, 'Top routes'));
      table.set([]);
      return;
    }
    msg.replaceChildren(ts.status === 'rejected' ? errorNotice(ts.reason, 'Route trends (sparklines)') : '');
    table.set(top.value.items || []);
  }

  load();
  return () => {};
}
