// instances.js: the panel of the cluster's instances, from GET
// /admin/v1/cluster. Each instance beats every 5 s; one whose last beat is
// three beats older than the newest is marked stale. Both times come from
// PostgreSQL's clock, so a browser or server with a skewed clock does not
// make a live instance look stale.

import { api, APIError } from '../api.js';
import { h, errorNotice, fmtAgo, fmtInt, fmtTime, empty } from '../util.js';

const REFRESH = 5000;
// STALE_AFTER is three heartbeat intervals (cluster/instances.go beats
// every 5 s): one late beat is not yet a lost instance.
const STALE_AFTER = 15000;
// GONE_AFTER: instances silent this long (pods replaced by a rollout keep
// their row) are counted in one line instead of a row each.
const GONE_AFTER = 3600 * 1000;

/**
 * dutiesOf maps each instance id to the duties it holds for the cluster
 * (`leaders` in the answer: "alerts" is the one evaluating alert rules).
 * A duty whose lease lapsed is absent from the answer, so held by no one.
 */
function dutiesOf(answer) {
  const duties = new Map();
  for (const l of answer.leaders || []) {
    if (!l || typeof l.holder !== 'string') continue;
    duties.set(l.holder, [...(duties.get(l.holder) || []), l.name]);
  }
  return duties;
}

/** classify adds each instance's silence (ms behind the newest beat). */
function classify(instances) {
  const beats = instances.map((i) => Date.parse(i.last_heartbeat)).filter((t) => !isNaN(t));
  const newest = beats.length ? Math.max(...beats) : 0;
  return instances.map((i) => {
    const t = Date.parse(i.last_heartbeat);
    const silence = isNaN(t) ? Infinity : newest - t;
    return { ...i, silence, stale: silence > STALE_AFTER };
  });
}

function row(i, duties) {
  return h('tr', { dataset: { instance: i.id, stale: i.stale ? 'true' : 'false' } },
    h('th', { scope: 'row' }, h('span', { class: 'mono' }, i.id),
      (duties.get(i.id) || []).map((d) => [' ', h('span', { class: 'badge ok', dataset: { duty: d },
        title: `This instance holds the ${d} duty for the whole cluster` }, `${d} leader`)])),
    h('td', null, i.version || '–'),
    h('td', { title: fmtTime(i.started_at) }, fmtAgo(i.started_at)),
    h('td', { title: fmtTime(i.last_heartbeat) }, fmtAgo(i.last_heartbeat),
      i.stale ? [' ', h('span', { class: 'badge bad', dataset: { testid: 'stale' } }, `stale: ${Math.round(i.silence / 1000)} s behind`)] : null),
    h('td', { class: 'num', title: 'Key changes the cluster has made that this instance\u2019s mirror had not applied at its last beat' },
      i.mirror_lag ? h('span', { class: 'badge warn' }, fmtInt(i.mirror_lag)) : '0'));
}

function table(answer) {
  const all = classify(answer.instances || []);
  const shown = all.filter((i) => i.silence <= GONE_AFTER).sort((a, b) => (a.stale - b.stale) || a.id.localeCompare(b.id));
  const gone = all.length - shown.length;
  const duties = dutiesOf(answer);
  const live = shown.filter((i) => !i.stale).length;
  return [
    h('p', { class: 'muted', dataset: { testid: 'instances-summary' } },
      `${live} of ${shown.length} instance${shown.length === 1 ? '' : 's'} beating`,
      (answer.leaders || []).map((l) => ` · ${l.name} leader: ${l.holder}`),
      gone ? ` · ${gone} silent for over an hour (replaced or stopped) not shown` : ''),
    shown.length ? h('div', { class: 'table-wrap' }, h('table', null,
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Instance'), h('th', { scope: 'col' }, 'Version'), h('th', { scope: 'col' }, 'Started'),
        h('th', { scope: 'col' }, 'Last heartbeat'), h('th', { class: 'num', scope: 'col' }, 'Mirror lag'))),
      h('tbody', null, shown.map((i) => row(i, duties))))) : null,
  ];
}

/**
 * instancesPanel returns the panel's element and keeps it current every
 * 5 s until signal aborts. Without cluster mode it is one line; on a
 * server without the endpoint it stays hidden.
 */
export function instancesPanel(signal) {
  const body = h('div', { dataset: { testid: 'instances-body' } }, h('p', { class: 'muted' }, 'Loading instances…'));
  const panel = h('section', { class: 'card section instances', id: 'instances', 'aria-labelledby': 'ov-instances' },
    h('h2', { id: 'ov-instances' }, 'Instances'), body);

  async function load() {
    try {
      const answer = await api('GET', '/admin/v1/cluster', undefined, { signal });
      panel.dataset.cluster = answer.cluster ? 'on' : 'off';
      if (!answer.cluster) {
        body.replaceChildren(h('p', { class: 'muted', dataset: { testid: 'single-instance' } },
          'Single instance: cluster mode is off ([cluster] postgres_url is empty).'));
        return;
      }
      body.replaceChildren(...table(answer).filter(Boolean));
      if (!(answer.instances || []).length) body.append(empty('No instance has sent a heartbeat yet.'));
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e instanceof APIError && e.missing) { panel.hidden = true; return; }
      body.replaceChildren(errorNotice(e, 'Instances'));
    }
  }

  load();
  const timer = setInterval(load, REFRESH);
  signal.addEventListener('abort', () => clearInterval(timer));
  return panel;
}
