// Traffic: a range (last hour, day, week, month or custom) in a time
// zone, the summary against the previous period, the request series
// (optionally over the previous period's), and breakdowns by tier and by
// status class.

import { api, query } from '../api.js';
import { TimeChart } from '../chart.js';
import { h, field, select, errorNotice, empty, fmtInt, fmtRate, fmtMs, fmtBytes, fmtChange, browserTimeZone, wallToUTC, utcToWall } from '../util.js';

const MIN = 60e3, HOUR = 60 * MIN, DAY = 24 * HOUR;
const PRESETS = { hour: [HOUR, 'minute'], day: [DAY, 'hour'], week: [7 * DAY, 'hour'], month: [30 * DAY, 'day'] };
const STATUS_COLORS = { '2xx': '--s4', '3xx': '--s7', '4xx': '--s3', '5xx': '--s2', '1xx': '--s5' };
const PALETTE = ['--s1', '--s5', '--s7', '--s6', '--s4', '--s3', '--s8', '--s2'];

export function mount(root, { signal, params }) {
  const range = select([['hour', 'Last hour'], ['day', 'Last 24 hours'], ['week', 'Last 7 days'], ['month', 'Last 30 days'], ['custom', 'Custom range']], params.get('range') || 'day');
  const tzList = h('datalist', { id: 'tz-list' }, (Intl.supportedValuesOf ? Intl.supportedValuesOf('timeZone') : ['UTC']).concat(['UTC']).map((z) => h('option', { value: z })));
  const tz = h('input', { list: 'tz-list', value: params.get('tz') || browserTimeZone(), size: 18 });
  const now = Date.now();
  const from = h('input', { type: 'datetime-local', value: utcToWall(now - DAY, tz.value) });
  const to = h('input', { type: 'datetime-local', value: utcToWall(now, tz.value) });
  const compare = h('input', { type: 'checkbox', checked: params.get('compare') === '1' });
  const customBox = h('div', { class: 'row', hidden: range.value !== 'custom' }, field('From', from), field('To', to));
  const msg = h('div');
  const statsBox = h('section', { class: 'stats', 'aria-label': 'Totals for the range' });
  const seriesBox = h('div'), latencyBox = h('div'), tierBox = h('div'), statusBox = h('div');
  const rangeNote = h('p', { class: 'muted' });

  root.append(
    h('div', { class: 'view-head' }, h('div', null, h('h1', null, 'Traffic'), rangeNote)),
    h('form', { class: 'card section row', onsubmit: (e) => { e.preventDefault(); load(); } },
      field('Range', range), customBox, field('Time zone', tz), tzList,
      h('label', { class: 'inline-label' }, compare, 'Compare with the previous period'),
      h('button', { type: 'submit', class: 'primary' }, 'Show')),
    msg, statsBox,
    h('section', { class: 'card section', 'aria-labelledby': 'tr-req' }, h('h2', { id: 'tr-req' }, 'Requests'), seriesBox),
    h('div', { class: 'halves section' },
      h('section', { class: 'card', 'aria-labelledby': 'tr-tier' }, h('h2', { id: 'tr-tier' }, 'By tier'), tierBox),
      h('section', { class: 'card', 'aria-labelledby': 'tr-status' }, h('h2', { id: 'tr-status' }, 'By status class'), statusBox)),
    h('section', { class: 'card section', 'aria-labelledby': 'tr-lat' }, h('h2', { id: 'tr-lat' }, 'Latency'), latencyBox),
  );
  range.addEventListener('change', () => { customBox.hidden = range.value !== 'custom'; if (range.value !== 'custom') load(); });
  compare.addEventListener('change', load);

  let charts = [];
  let seq = 0;

  function window_() {
    const zone = tz.value.trim() || 'UTC';
    try { new Intl.DateTimeFormat(undefined, { timeZone: zone }); } catch { return { error: `"${zone}" is not a time zone this browser knows; pick one from the list, such as UTC or Europe/Berlin.` }; }
    if (range.value === 'custom') {
      const a = wallToUTC(from.value, zone), b = wallToUTC(to.value, zone);
      if (!(a < b)) return { error: 'Choose a "From" time before the "To" time.' };
      const span = b - a;
      return { from: a, to: b, zone, interval: span <= 6 * HOUR ? 'minute' : span <= 14 * DAY ? 'hour' : 'day' };
    }
    const [span, interval] = PRESETS[range.value];
    const end = Date.now();
    return { from: end - span, to: end, zone, interval, period: range.value };
  }

  async function load() {
    const my = ++seq;
    const w = window_();
    if (w.error) { msg.replaceChildren(errorNotice(new Error(w.error), 'Range')); return; }
    msg.replaceChildren();
    for (const c of charts) c.destroy();
    charts = [];
    const iso = (t) => new Date(t).toISOString();
    const base = { from: iso(w.from), to: iso(w.to), interval: w.interval, tz: w.zone };
    const span = w.to - w.from;
    rangeNote.textContent = `${new Date(w.from).toLocaleString(undefined, { timeZone: w.zone })} to ${new Date(w.to).toLocaleString(undefined, { timeZone: w.zone })} (${w.zone}), one point per ${w.interval}.`;
    const calls = [
      api('GET', '/admin/v1/analytics/timeseries' + query(base), undefined, { signal }),
      compare.checked ? api('GET', '/admin/v1/analytics/timeseries' + query({ ...base, from: iso(w.from - span), to: iso(w.from) }), undefined, { signal }) : null,
      w.period ? api('GET', '/admin/v1/analytics/summary' + query({ period: w.period, tz: w.zone }), undefined, { signal }) : null,
      api('GET', '/admin/v1/analytics/timeseries' + query({ ...base, group_by: 'tier' }), undefined, { signal }),
      api('GET', '/admin/v1/analytics/timeseries' + query({ ...base, group_by: 'status' }), undefined, { signal }),
    ].map((p) => (p ? p.then((v) => ({ ok: true, v }), (e) => ({ ok: false, e })) : Promise.resolve(null)));
    const [cur, prev, summary, tiers, statuses] = await Promise.all(calls);
    if (signal.aborted || my !== seq) return;

    // Totals: the summary when the range is a preset, else added up from the series.
    if (summary && summary.ok) showStats(summary.v.current, summary.v.change, true);
    else if (cur.ok) showStats(totals(cur.v), null, false);
    else statsBox.replaceChildren();

    if (!cur.ok) {
      msg.replaceChildren(errorNotice(cur.e, 'Traffic'));
      for (const box of [seriesBox, latencyBox, tierBox, statusBox]) box.replaceChildren(empty('No numbers to draw: see the message above.'));
      return;
    }
    const points = (cur.v.series[0] || { points: [] }).points;
    const times = points.map((p) => Date.parse(p.t));
    const series = [{ label: 'Requests', color: '--s1', fill: true }, { label: '5xx errors', color: '--s2' }, { label: 'Rate-limited', color: '--s3' }];
    const cols = [points.map((p) => p.requests), points.map((p) => p.errors_5xx), points.map((p) => p.rate_limited)];
    if (prev && prev.ok) {
      const pp = (prev.v.series[0] || { points: [] }).points;
      series.push({ label: 'Requests, previous period', color: '--s1', dash: true });
      cols.push(times.map((_, i) => (pp[i] ? pp[i].requests : null)));
    } else if (prev && !prev.ok) {
      msg.replaceChildren(errorNotice(prev.e, 'Previous period'));
    }
    charts.push(chart(seriesBox, { label: 'Requests over the range', series, zeroIsEmpty: true, empty: 'No requests in this range.' }, times, cols));
    charts.push(chart(latencyBox, {
      label: 'Latency percentiles over the range', format: fmtMs, height: 180, zeroIsEmpty: true, empty: 'No latency to show: no requests in this range.',
      series: [{ label: 'p50', color: '--s4' }, { label: 'p95', color: '--s5' }, { label: 'p99', color: '--s2' }],
    }, times, [points.map((p) => (p.requests ? p.p50_ms : null)), points.map((p) => (p.requests ? p.p95_ms : null)), points.map((p) => (p.requests ? p.p99_ms : null))]));
    breakdown(tierBox, tiers, 'stacked', (g, i) => PALETTE[i % PALETTE.length], 'tier');
    breakdown(statusBox, statuses, 'bars', (g, i) => STATUS_COLORS[g] || PALETTE[i % PALETTE.length], 'status class');
  }

  function chart(box, opts, times, cols) {
    const c = new TimeChart(box, { tz: tz.value.trim() || 'UTC', height: 230, ...opts });
    c.setData(times, cols);
    return c;
  }

  function breakdown(box, r, mode, color, what) {
    if (!r.ok) { box.replaceChildren(errorNotice(r.e, `Breakdown by ${what}`)); return; }
    const groups = (r.v.series || []).filter((s) => s.points.some((p) => p.requests > 0));
    if (!groups.length) {
      box.replaceChildren();
      charts.push(chart(box, { label: `Requests by ${what}`, series: [{ label: 'Requests', color: '--s1' }], zeroIsEmpty: true, empty: `No requests in this range, so nothing to break down by ${what}.` }, [], []));
      return;
    }
    groups.sort((a, b) => String(a.group).localeCompare(String(b.group)));
    const times = groups[0].points.map((p) => Date.parse(p.t));
    charts.push(chart(box, {
      label: `Requests by ${what}`, mode, height: 200,
      series: groups.map((g, i) => ({ label: g.group || '(none)', color: color(g.group, i) })),
    }, times, groups.map((g) => g.points.map((p) => p.requests))));
  }

  function showStats(s, change, withChange) {
    const c = (k) => (withChange && change ? h('span', { class: 'sub change ' + tone(k, change[k]) }, fmtChange(change[k])) : null);
    const card = (label, value, k, sub) => h('div', { class: 'card stat' }, h('span', { class: 'label' }, label), h('span', { class: 'value' }, value), k ? c(k) : null, sub ? h('span', { class: 'sub' }, sub) : null);
    statsBox.replaceChildren(
      card('Requests', fmtInt(s.requests), 'requests'),
      card('Error rate (5xx)', fmtRate(s.error_rate), 'error_rate', `${fmtInt(s.errors_5xx)} 5xx · ${fmtInt(s.errors_4xx)} 4xx`),
      card('Latency p95', fmtMs(s.p95_ms), 'p95_ms', s.p50_ms != null ? `p50 ${fmtMs(s.p50_ms)} · p99 ${fmtMs(s.p99_ms)}` : null),
      card('Rate-limited', fmtInt(s.rate_limited), 'rate_limited'),
      card('Auth failures', fmtInt(s.auth_failures)),
      card('Traffic', fmtBytes(s.bytes_out), null, `${fmtBytes(s.bytes_in)} in`),
    );
  }

  load();
  return () => { for (const c of charts) c.destroy(); };
}

/** tone says whether a change is good news: fewer errors and faster is good, more requests neutral-good. */
function tone(key, v) {
  if (v == null || v === 0) return '';
  const lowerIsBetter = key === 'error_rate' || key === 'p95_ms' || key === 'rate_limited';
  return (v < 0) === lowerIsBetter ? 'good' : 'bad';
}

/** totals adds up a series' points for a custom range (percentiles are the worst bucket's). */
function totals(ts) {
  const t = { requests: 0, errors_4xx: 0, errors_5xx: 0, rate_limited: 0, auth_failures: 0, bytes_in: 0, bytes_out: 0, p95_ms: 0, p50_ms: null, p99_ms: null };
  for (const p of (ts.series[0] || { points: [] }).points) {
    for (const k of ['requests', 'errors_4xx', 'errors_5xx', 'rate_limited', 'auth_failures', 'bytes_in', 'bytes_out']) t[k] += p[k] || 0;
    if (p.requests && p.p95_ms > t.p95_ms) t.p95_ms = p.p95_ms;
  }
  t.error_rate = t.requests ? t.errors_5xx / t.requests : 0;
  return t;
}
