// Overview: the last minute and the last 15 minutes, live. The first
// answer of /analytics/realtime fills the charts; /stream then adds one
// point a second. Without the stream it polls; without either it says so.

import { api, APIError } from '../api.js';
import { TimeChart, Sparkline } from '../chart.js';
import { h, errorNotice, fmtNum, fmtInt, fmtRate, fmtMs, fmtAgo, empty, alertSubject, joined } from '../util.js';
import { instancesPanel } from './instances.js';

const WINDOW = 15 * 60 * 1000;
const CAP = 900;

const STATS = [
  { key: 'rps', label: 'Requests/s', value: (m) => m.rps, fmt: (v) => fmtNum(v), sub: (m) => `${fmtInt(m.requests)} in the last minute`, spark: (p) => p.requests, color: '--s1' },
  { key: 'requests', label: 'Requests, last 5 min', value: (m, m5) => m5 ? m5.requests : m.requests, fmt: fmtInt, sub: (m) => `${fmtInt(m.requests)} in the last minute`, spark: (p) => p.requests, color: '--s1' },
  { key: 'error_rate', label: 'Error rate (5xx)', value: (m) => m.error_rate, fmt: fmtRate, sub: (m) => `${fmtInt(m.errors_5xx)} server errors, ${fmtInt(m.errors_4xx)} 4xx`, spark: (p) => (p.requests ? p.errors_5xx / p.requests : 0), color: '--s2' },
  { key: 'p95', label: 'Latency p95', value: (m) => m.p95_ms, fmt: fmtMs, sub: (m) => `p50 ${fmtMs(m.p50_ms)} · p99 ${fmtMs(m.p99_ms)}`, spark: (p) => p.p95_ms, color: '--s5' },
  { key: 'rate_limited', label: 'Rate-limited', value: (m) => m.rate_limited, fmt: fmtInt, sub: (m) => `${fmtRate(m.requests ? m.rate_limited / m.requests : 0)} of the last minute`, spark: (p) => p.rate_limited, color: '--s3' },
  { key: 'active_keys', label: 'Active keys', value: (m) => m.active_keys ?? m.unique_keys, fmt: fmtInt, sub: () => 'seen in the last minute', color: '--s4' },
];

export function mount(root, { signal }) {
  const live = h('span', { class: 'live', id: 'live-status' }, 'Connecting…');
  const statusBox = h('div');
  const cards = STATS.map((s) => {
    const value = h('span', { class: 'value', dataset: { value: '' } }, '–');
    const sub = h('span', { class: 'sub' }, ' ');
    const spark = s.spark ? new Sparkline({ width: 140, height: 26, color: s.color, label: s.label + ', last 15 minutes' }) : null;
    const card = h('div', { class: 'card stat', dataset: { stat: s.key } }, h('span', { class: 'label' }, s.label), value, sub, spark ? spark.canvas : null);
    return { s, card, value, sub, spark, series: [] };
  });
  const trafficBox = h('div');
  const latencyBox = h('div');
  const alertsBox = h('div', { dataset: { testid: 'overview-alerts' } }, h('p', { class: 'muted' }, 'Loading alerts…'));
  const routesBox = h('div');

  root.append(
    h('div', { class: 'view-head' },
      h('div', null, h('h1', null, 'Overview'), h('p', { class: 'muted' }, 'The last minute, and a rolling view of the last 15 minutes.')),
      live),
    statusBox,
    h('section', { class: 'stats', 'aria-label': 'Current numbers' }, cards.map((c) => c.card)),
    h('div', { class: 'two section' },
      h('section', { class: 'card', 'aria-labelledby': 'ov-traffic' }, h('h2', { id: 'ov-traffic' }, 'Requests per second, last 15 minutes'), trafficBox),
      h('section', { class: 'card', 'aria-labelledby': 'ov-alerts' }, h('h2', { id: 'ov-alerts' }, 'Firing alerts'), alertsBox)),
    h('div', { class: 'two section' },
      h('section', { class: 'card', 'aria-labelledby': 'ov-latency' }, h('h2', { id: 'ov-latency' }, 'Latency p95, last 15 minutes'), latencyBox),
      h('section', { class: 'card', 'aria-labelledby': 'ov-routes' }, h('h2', { id: 'ov-routes' }, 'Busiest routes, last minute'), routesBox)),
    instancesPanel(signal),
  );

  const traffic = new TimeChart(trafficBox, {
    label: 'Requests per second over the last 15 minutes',
    series: [
      { label: 'Requests', color: '--s1', fill: true },
      { label: '5xx errors', color: '--s2' },
      { label: 'Rate-limited', color: '--s3' },
    ],
    window: WINDOW, capacity: CAP, height: 230, zeroIsEmpty: true,
    empty: 'No requests in the last 15 minutes. Traffic through apiwarden shows here within seconds.',
  });
  const latency = new TimeChart(latencyBox, {
    label: 'p95 latency over the last 15 minutes',
    series: [{ label: 'p95', color: '--s5', fill: true }],
    window: WINDOW, capacity: CAP, height: 170, format: fmtMs, zeroIsEmpty: true,
    empty: 'No latency to show: no requests in the last 15 minutes.',
  });

  function setLive(state, text) {
    live.className = 'live ' + state;
    live.textContent = text;
  }

  function showStats(m, m5) {
    if (!m) return;
    for (const c of cards) {
      const v = c.s.value(m, m5);
      c.value.textContent = c.s.fmt(v);
      c.value.dataset.value = v == null ? '' : String(v);
      c.sub.textContent = c.s.sub(m);
    }
    const routes = (m.top_routes || []).slice(0, 8);
    if (!routes.length) {
      routesBox.replaceChildren(empty('No requests in the last minute.'));
    } else {
      routesBox.replaceChildren(h('div', { class: 'table-wrap' }, h('table', null,
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Route'), h('th', { class: 'num', scope: 'col' }, 'Requests'),
          h('th', { class: 'num', scope: 'col' }, '5xx'), h('th', { class: 'num', scope: 'col' }, 'p95'))),
        h('tbody', null, routes.map((r) => h('tr', null,
          h('td', null, h('a', { href: '#/requests?route=' + encodeURIComponent(r.route) }, r.route || '(no route)')),
          h('td', { class: 'num' }, fmtInt(r.requests)), h('td', { class: 'num' }, fmtInt(r.errors_5xx)),
          h('td', { class: 'num' }, fmtMs(r.p95_ms))))))));
    }
  }

  function addPoint(p, redraw = true) {
    const t = Date.parse(p.t);
    if (isNaN(t)) return;
    traffic.push(t, [p.requests, p.errors_5xx, p.rate_limited]);
    latency.push(t, [p.requests ? p.p95_ms : null]);
    for (const c of cards) {
      if (!c.spark) continue;
      c.series.push(c.s.spark(p));
      if (c.series.length > CAP) c.series.shift();
      if (redraw) c.spark.set(c.series);
    }
  }

  function fillSeries(series) {
    for (const c of cards) c.series = [];
    for (const p of series || []) addPoint(p, false);
    for (const c of cards) if (c.spark) c.spark.set(c.series);
  }

  let lastSnapshot = 0;
  let poll = 0;
  let es = null;
  let realtimeMissing = false;

  async function loadRealtime(first) {
    try {
      const rt = await api('GET', '/admin/v1/analytics/realtime', undefined, { signal });
      if (first) fillSeries(rt.series);
      else if (rt.series && rt.series.length) addPoint(rt.series[rt.series.length - 1]);
      showStats(rt.last_minute, rt.last_5_minutes);
      statusBox.replaceChildren();
      return true;
    } catch (e) {
      if (e.name === 'AbortError') return false;
      realtimeMissing = e instanceof APIError && e.missing;
      if (first || !(e instanceof APIError) || !e.missing) statusBox.replaceChildren(errorNotice(e, 'Live traffic'));
      if (first) {
        traffic.setEmptyMessage('No live numbers: the server did not answer with them (see above).');
        latency.setEmptyMessage('No live numbers.');
        routesBox.replaceChildren(empty('No live numbers.'));
      }
      return false;
    }
  }

  function startPolling() {
    if (poll) return;
    setLive('', 'Updating every 2 s');
    poll = setInterval(() => loadRealtime(false), 2000);
  }

  function startStream() {
    es = new EventSource('/admin/v1/stream');
    let opened = false;
    es.addEventListener('snapshot', (ev) => {
      opened = true;
      lastSnapshot = Date.now();
      let snap;
      try { snap = JSON.parse(ev.data); } catch { return; }
      setLive('on', 'Live');
      if (snap.point) addPoint(snap.point);
      showStats(snap.last_minute, snap.last_5_minutes);
      if (statusBox.firstChild) statusBox.replaceChildren();
    });
    es.addEventListener('open', () => { opened = true; setLive('on', 'Live'); });
    es.addEventListener('error', async () => {
      if (signal.aborted) return;
      if (opened && es.readyState !== EventSource.CLOSED) { setLive('off', 'Reconnecting…'); return; }
      // It never opened or was closed: ask why, with a request whose answer we can read.
      es.close();
      es = null;
      try {
        const ctl = new AbortController();
        signal.addEventListener('abort', () => ctl.abort());
        const res = await fetch('/admin/v1/stream', { signal: ctl.signal, headers: { Accept: 'text/event-stream' }, cache: 'no-store' });
        ctl.abort();
        if (res.status === 401) { await api('GET', '/admin/v1/session'); return; }
        if (res.status === 404) {
          // No stream on this server: poll the snapshot instead, if there is one.
          if (realtimeMissing) setLive('off', 'No live data'); else startPolling();
          return;
        }
      } catch { /* unreachable: fall through to retry */ }
      if (signal.aborted) return;
      setLive('off', 'Reconnecting…');
      setTimeout(() => { if (!signal.aborted) startStream(); }, 3000);
    });
  }

  async function loadAlerts() {
    try {
      const r = await api('GET', '/admin/v1/alerts?state=firing', undefined, { signal });
      const list = r.alerts || [];
      if (!list.length) { alertsBox.replaceChildren(empty('No alert is firing.')); return; }
      alertsBox.replaceChildren(h('ul', { class: 'list' }, list.slice(0, 8).map((a) => h('li', null,
        h('div', { class: 'main' },
          h('div', { class: 'title' }, h('span', { class: 'badge ' + a.severity }, a.severity), ' ', a.summary || a.rule),
          h('div', { class: 'meta' }, joined([a.type, alertSubject(a), `firing ${fmtAgo(a.fired_at || a.active_at)}`]))),
        h('a', { href: '#/alerts' }, 'Open')))));
    } catch (e) {
      if (e.name === 'AbortError') return;
      alertsBox.replaceChildren(errorNotice(e, 'Alerts'));
    }
  }

  (async () => {
    await loadRealtime(true);
    if (!signal.aborted) startStream();
  })();
  loadAlerts();
  const alertTimer = setInterval(loadAlerts, 10000);
  // A stream that goes quiet (a proxy buffering it, a stalled server) is said so.
  const watchdog = setInterval(() => {
    if (es && lastSnapshot && Date.now() - lastSnapshot > 5000) setLive('off', `No update for ${Math.round((Date.now() - lastSnapshot) / 1000)} s`);
  }, 1000);

  return () => {
    if (es) es.close();
    clearInterval(poll);
    clearInterval(alertTimer);
    clearInterval(watchdog);
    traffic.destroy();
    latency.destroy();
  };
}
