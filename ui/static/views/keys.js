// Keys: search and filter, create (the secret is shown once), rotate
// with a grace period, revoke with confirmation, and a key's usage
// against its limits and quota.

import { api, query } from '../api.js';
import { h, field, select, dialog, confirmAction, toast, copyText, errorNotice, notice, empty, fmtAgo, fmtTime, fmtInt, id } from '../util.js';

const KNOWN_TIERS = ['free', 'basic', 'premium', 'enterprise'];

export function mount(root, { signal, params }) {
  let keys = [];
  let nextCursor = '';
  let selected = params.get('id') || '';

  const search = h('input', { type: 'search', placeholder: 'Name, id, owner or key start', 'aria-label': 'Search keys', value: params.get('q') || '' });
  const status = select([['', 'Any status'], ['active', 'Active'], ['revoked', 'Revoked'], ['expired', 'Expired']], params.get('status') || '', { 'aria-label': 'Status' });
  const tier = h('input', { list: 'tier-list', placeholder: 'Any tier', 'aria-label': 'Tier', size: 10, value: params.get('tier') || '' });
  const owner = h('input', { placeholder: 'Any owner', 'aria-label': 'Owner id', size: 14, value: params.get('owner_id') || '' });
  const tierList = h('datalist', { id: 'tier-list' }, KNOWN_TIERS.map((t) => h('option', { value: t })));
  const createBtn = h('button', { type: 'button', class: 'primary', dataset: { testid: 'create-key' }, onclick: () => createKey() }, 'Create key');
  const listBox = h('div', null, h('p', { class: 'muted' }, 'Loading keys…'));
  const more = h('button', { type: 'button', hidden: true, onclick: () => load(true) }, 'Load more');
  const count = h('span', { class: 'muted', 'aria-live': 'polite' });
  const detail = h('section', { class: 'card detail', hidden: true, 'aria-label': 'Key details', tabindex: '-1' });

  root.append(
    h('div', { class: 'view-head' },
      h('div', null, h('h1', null, 'Keys'), h('p', { class: 'muted' }, 'API keys, their limits and their history. A secret is shown once, when a key is created or rotated.')),
      createBtn),
    h('div', { class: 'card section' },
      h('form', { class: 'row', role: 'search', onsubmit: (e) => { e.preventDefault(); load(false); } },
        h('div', { class: 'grow' }, search), status, tier, owner, tierList,
        h('button', { type: 'submit' }, 'Filter'))),
    h('div', { class: 'section' }, listBox, h('div', { class: 'pager' }, count, more)),
    detail,
  );
  search.addEventListener('input', () => render());
  status.addEventListener('change', () => load(false));

  function matches(k) {
    const q = search.value.trim().toLowerCase();
    if (!q) return true;
    return [k.name, k.id, k.owner_id, k.start, k.tier].some((x) => x && String(x).toLowerCase().includes(q));
  }

  function render() {
    const shown = keys.filter(matches);
    count.textContent = keys.length ? `${shown.length} of ${keys.length} loaded key${keys.length === 1 ? '' : 's'}` : '';
    if (!keys.length) {
      listBox.replaceChildren(empty(status.value || tier.value || owner.value
        ? 'No keys match these filters.'
        : 'No keys yet. Create one with "Create key"; its secret is shown once.'));
      return;
    }
    if (!shown.length) { listBox.replaceChildren(empty(`No loaded key matches "${search.value}".`)); return; }
    listBox.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'stack' },
      h('caption', { class: 'sr-only' }, 'API keys'),
      h('thead', null, h('tr', null, ['Name', 'Key', 'Owner', 'Tier', 'Status', 'Last used', 'Created', 'Actions'].map((c, i) =>
        h('th', { scope: 'col', class: i === 2 || i === 6 ? 'hide-narrow' : null }, c)))),
      h('tbody', null, shown.map(row)))));
  }

  function row(k) {
    const active = k.status === 'active';
    return h('tr', { class: k.id === selected ? 'selected' : null, dataset: { keyId: k.id, keyName: k.name || '' } },
      h('td', { 'data-label': 'Name' }, h('button', { type: 'button', class: 'ghost small', onclick: () => showDetail(k.id), title: 'Show usage and history' }, k.name || '(unnamed)')),
      h('td', { 'data-label': 'Key' }, h('span', null, h('code', null, (k.start || '') + '…'), h('div', { class: 'faint mono' }, k.id))),
      h('td', { class: 'hide-narrow', 'data-label': 'Owner' }, k.owner_id || '–'),
      h('td', { 'data-label': 'Tier' }, k.tier),
      h('td', { 'data-label': 'Status' }, h('span', { class: 'badge ' + k.status }, k.status), k.grace_until && new Date(k.grace_until) > new Date()
        ? h('div', { class: 'faint' }, 'old secret until ' + fmtTime(k.grace_until)) : null),
      h('td', { 'data-label': 'Last used' }, fmtAgo(k.last_used_at)),
      h('td', { class: 'hide-narrow', 'data-label': 'Created' }, fmtTime(k.created_at)),
      h('td', { 'data-label': 'Actions' },
        h('button', { type: 'button', class: 'small', disabled: !active, dataset: { action: 'rotate' }, onclick: () => rotateKey(k), 'aria-label': `Rotate ${k.name || k.id}` }, 'Rotate'), ' ',
        h('button', { type: 'button', class: 'small', disabled: !active, dataset: { action: 'revoke' }, onclick: () => revokeKey(k), 'aria-label': `Revoke ${k.name || k.id}` }, 'Revoke')));
  }

  async function load(append) {
    try {
      const r = await api('GET', '/admin/v1/keys' + query({ status: status.value, tier: tier.value.trim(), owner_id: owner.value.trim(), cursor: append ? nextCursor : '', limit: 100 }), undefined, { signal });
      keys = append ? keys.concat(r.keys || []) : (r.keys || []);
      nextCursor = r.next_cursor || '';
      more.hidden = !nextCursor;
      render();
    } catch (e) {
      if (e.name !== 'AbortError') listBox.replaceChildren(errorNotice(e, 'Keys'));
    }
  }

  // Create, rotate and revoke.

  async function createKey() {
    const name = h('input', { required: true, maxlength: 200, placeholder: 'e.g. mobile app, production', dataset: { testid: 'key-name' } });
    const ownerIn = h('input', { placeholder: 'e.g. org_42', maxlength: 200 });
    const tierIn = h('input', { list: 'tier-list', value: 'free', required: true, dataset: { testid: 'key-tier' } });
    const scopes = h('input', { placeholder: 'forms:read, forms:write' });
    const ips = h('input', { placeholder: '10.0.0.0/8, 203.0.113.7' });
    const expires = h('input', { type: 'datetime-local' });
    const err = h('div');
    let created = null;
    await dialog({
      title: 'Create a key',
      testid: 'create-dialog',
      content: [
        field('Name', name),
        h('div', { class: 'halves' }, field('Owner id', ownerIn), field('Tier', tierIn)),
        field('Scopes', scopes, 'Comma-separated. Empty: no scopes.'),
        field('Allowed IPs', ips, 'Comma-separated addresses or CIDR ranges. Empty: any address.'),
        field('Expires', expires, 'Empty: never. In this browser\'s time zone.'),
        err],
      initialFocus: name,
      buttons: [{ label: 'Cancel' }, { label: 'Create key', submit: true, class: 'primary', testid: 'create-submit' }],
      onSubmit: async () => {
        const body = { name: name.value.trim(), owner_id: ownerIn.value.trim(), tier: tierIn.value.trim(), scopes: list(scopes.value), allowed_ips: list(ips.value) };
        if (expires.value) body.expires_at = new Date(expires.value).toISOString();
        try {
          created = await api('POST', '/admin/v1/keys', body);
          return false;
        } catch (e) {
          err.replaceChildren(errorNotice(e, 'The key was not created'));
          return true;
        }
      },
    });
    if (created) {
      await showSecret(created, 'Key created');
      selected = created.key.id;
      load(false);
      showDetail(created.key.id);
    }
  }

  async function rotateKey(k) {
    const grace = select([['0s', 'None: the old secret stops now'], ['1h', '1 hour'], ['24h', '24 hours'], ['72h', '3 days'], ['168h', '7 days']], '24h');
    const err = h('div');
    let rotated = null;
    await dialog({
      title: `Rotate "${k.name || k.id}"`,
      content: [h('p', null, 'The key gets a new secret. Its id, limits, quota and history stay. During the grace period both secrets work, so clients can switch without errors.'),
        field('Grace period for the old secret', grace), err],
      buttons: [{ label: 'Cancel' }, { label: 'Rotate', submit: true, class: 'primary' }],
      onSubmit: async () => {
        try {
          rotated = await api('POST', `/admin/v1/keys/${encodeURIComponent(k.id)}/rotate`, { grace_period: grace.value });
          return false;
        } catch (e) {
          err.replaceChildren(errorNotice(e, 'The key was not rotated'));
          return true;
        }
      },
    });
    if (rotated) {
      await showSecret(rotated, 'Key rotated');
      load(false);
      if (selected === k.id) showDetail(k.id);
    }
  }

  async function revokeKey(k) {
    const reason = h('input', { placeholder: 'e.g. leaked in a public repository', maxlength: 500 });
    const ok = await confirmAction(`Revoke "${k.name || k.id}"?`,
      'Every request with this key is rejected from the next one on, and it cannot be undone. Rotate instead if the key should keep working with a new secret.',
      'Revoke key', true, field('Reason (kept in the audit log)', reason));
    if (!ok) return;
    try {
      await api('DELETE', `/admin/v1/keys/${encodeURIComponent(k.id)}`, { reason: reason.value.trim() });
      toast(`Key "${k.name || k.id}" revoked. Its next request is rejected.`);
      await load(false);
      if (selected === k.id) showDetail(k.id);
    } catch (e) {
      toast(errorNotice(e, 'The key was not revoked').textContent, 'error');
    }
  }

  /** showSecret displays a secret once; it lives only in this dialog. */
  async function showSecret(answer, title) {
    const out = h('output', { dataset: { testid: 'secret' }, 'aria-label': 'Secret' }, answer.secret);
    const said = h('span', { class: 'muted', 'aria-live': 'polite' });
    const copy = h('button', { type: 'button', class: 'primary', dataset: { testid: 'copy-secret' }, onclick: async () => {
      said.textContent = (await copyText(out.textContent, out)) ? 'Copied to the clipboard.' : 'Copying was refused by the browser: select the text and copy it.';
    } }, 'Copy');
    await dialog({
      title,
      testid: 'secret-dialog',
      content: [
        notice('warn', 'Copy the secret now', 'apiwarden keeps only a hash of it, so it cannot be shown again. Anyone with it can call your API as this key.'),
        h('div', { class: 'secret' }, out, copy), said,
        h('p', { class: 'muted' }, 'Key ', h('code', null, answer.key.id), ` (${answer.key.name || 'unnamed'}), tier ${answer.key.tier}.`)],
      initialFocus: copy,
      buttons: [{ label: 'I have saved it', class: 'primary', testid: 'secret-done', value: true }],
    });
  }

  // Details: usage against limits, and the audit trail.

  async function showDetail(keyID) {
    selected = keyID;
    render();
    detail.hidden = false;
    detail.replaceChildren(h('p', { class: 'muted' }, 'Loading the key…'));
    const [k, usage, events] = await Promise.allSettled([
      api('GET', `/admin/v1/keys/${encodeURIComponent(keyID)}`, undefined, { signal }),
      api('GET', `/admin/v1/keys/${encodeURIComponent(keyID)}/usage`, undefined, { signal }),
      api('GET', `/admin/v1/keys/${encodeURIComponent(keyID)}/events?limit=20`, undefined, { signal }),
    ]);
    if (signal.aborted || selected !== keyID) return;
    if (k.status === 'rejected') { detail.replaceChildren(errorNotice(k.reason, 'The key')); return; }
    const key = k.value;
    const headID = id('kd');
    detail.setAttribute('aria-labelledby', headID);
    detail.replaceChildren(
      h('div', { class: 'view-head' },
        h('div', null, h('h2', { id: headID }, key.name || key.id), h('span', { class: 'badge ' + key.status }, key.status)),
        h('div', null,
          h('a', { href: '#/requests?key_id=' + encodeURIComponent(key.id) }, 'Requests of this key'), ' ',
          h('button', { type: 'button', class: 'ghost', onclick: () => { detail.hidden = true; selected = ''; render(); } }, 'Close'))),
      h('div', { class: 'halves' },
        h('div', null, h('h3', null, 'Usage against limits'), usageView(usage)),
        h('div', null, h('h3', null, 'Key'), h('dl', { class: 'kv' },
          kv('Id', h('code', null, key.id)), kv('Starts with', h('code', null, key.start + '…')),
          kv('Owner', key.owner_id || '–'), kv('Tier', key.tier),
          kv('Scopes', (key.scopes || []).join(', ') || 'none'),
          kv('Allowed IPs', (key.allowed_ips || []).join(', ') || 'any'),
          kv('Allowed origins', (key.allowed_origins || []).join(', ') || 'any'),
          kv('Created', fmtTime(key.created_at)), kv('Last used', fmtAgo(key.last_used_at)),
          kv('Expires', key.expires_at ? fmtTime(key.expires_at) : 'never'),
          key.rotated_at ? kv('Rotated', fmtTime(key.rotated_at)) : null,
          key.grace_until ? kv('Old secret valid until', fmtTime(key.grace_until)) : null,
          key.revoked_at ? kv('Revoked', fmtTime(key.revoked_at)) : null))),
      h('h3', null, 'History'), eventsView(events));
  }

  function kv(k, v) { return [h('dt', null, k), h('dd', null, v)]; }

  function usageView(r) {
    if (r.status === 'rejected') return errorNotice(r.reason, 'Usage');
    const u = r.value;
    const parts = [];
    for (const [name, b] of [['This hour', u.hour], ['This minute', u.minute]]) {
      if (b) parts.push(meter(name, b.limit - b.remaining, b.limit, b.reset_seconds ? `full again in ${b.reset_seconds} s` : 'full'));
    }
    if (u.monthly_quota) parts.push(meter('Monthly quota', u.monthly_quota - (u.monthly_remaining ?? u.monthly_quota), u.monthly_quota, `${fmtInt(u.monthly_remaining)} left`));
    else parts.push(h('p', { class: 'muted' }, 'No monthly quota for this tier.'));
    if (u.usage) parts.push(h('dl', { class: 'kv' }, kv('Requests this hour', fmtInt(u.usage.this_hour)), kv('Today', fmtInt(u.usage.today)), kv('This month', fmtInt(u.usage.this_month))));
    if ((u.active_calendar_rules || []).length) parts.push(h('p', { class: 'muted' }, 'Calendar rules in force: ' + u.active_calendar_rules.join(', ')));
    return h('div', null, parts);
  }

  function meter(label, used, limit, note) {
    const frac = limit > 0 ? Math.min(1, Math.max(0, used / limit)) : 0;
    const fill = h('div', { class: 'fill' + (frac >= 0.9 ? ' bad' : frac >= 0.7 ? ' warn' : '') });
    fill.style.width = (frac * 100).toFixed(1) + '%';
    return h('div', { class: 'meter' },
      h('div', { class: 'meta' }, h('span', null, label), h('span', null, `${fmtInt(used)} of ${fmtInt(limit)} used`)),
      h('div', { class: 'bar', role: 'meter', 'aria-label': label, 'aria-valuemin': 0, 'aria-valuemax': limit, 'aria-valuenow': used }, fill),
      h('div', { class: 'meta' }, h('span', null, note), h('span', null, Math.round(frac * 100) + '%')));
  }

  function eventsView(r) {
    if (r.status === 'rejected') return errorNotice(r.reason, 'History');
    const evs = r.value.events || [];
    if (!evs.length) return empty('No events recorded for this key.');
    return h('ul', { class: 'list' }, evs.map((e) => h('li', null,
      h('div', { class: 'main' }, h('div', { class: 'title' }, e.type.replace(/_/g, ' '), e.count > 1 ? ` ×${e.count}` : ''),
        h('div', { class: 'meta' }, `${fmtTime(e.at)} by ${e.actor || 'apiwarden'}`, e.detail ? ' · ' + (typeof e.detail === 'string' ? e.detail : JSON.stringify(e.detail)) : '')))));
  }

  load(false);
  if (selected) showDetail(selected);
  return () => {};
}

function list(s) { return s.split(',').map((x) => x.trim()).filter(Boolean); }
