// util.js: DOM building, formatting, notices, dialogs and toasts. Text
// always goes in through textContent, never as HTML.

import { APIError } from './api.js';
import { defaultFormat, tzOffset } from './chart.js';

/**
 * h builds an element: h('a', {class: 'x', href: '#', onclick: fn}, 'text', child…).
 * Props starting with "on" are listeners; value/checked/disabled/hidden/selected
 * are set as properties; null, undefined and false are skipped.
 */
export function h(tag, props, ...children) {
  const e = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'selected') e[k] = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(e, c);
    else e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let uid = 0;
/** id returns a fresh element id for label/aria wiring. */
export function id(prefix) { return `${prefix}-${++uid}`; }

/** field is a label and a control wired together. */
export function field(label, control, hint) {
  control.id = control.id || id('f');
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control,
    hint ? h('div', { class: 'faint' }, hint) : null);
}

/** select builds a <select> from [value, label] pairs. */
export function select(options, value, props = {}) {
  return h('select', props, options.map(([v, l]) => h('option', { value: v, selected: v === value }, l)));
}

// Formatting.
export const fmtNum = defaultFormat;
export function fmtInt(v) { return v == null ? '–' : Math.round(v).toLocaleString(); }
export function fmtRate(r) {
  if (r == null || isNaN(r)) return '–';
  const p = r * 100;
  if (p === 0) return '0%';
  if (p < 0.1) return '<0.1%';
  return (p < 10 ? p.toFixed(2) : p.toFixed(1)).replace(/\.?0+$/, '') + '%';
}
export function fmtMs(ms) {
  if (ms == null || isNaN(ms)) return '–';
  if (ms === 0) return '0 ms';
  if (ms < 1) return ms.toFixed(2) + ' ms';
  if (ms < 100) return ms.toFixed(1).replace(/\.0$/, '') + ' ms';
  if (ms < 1000) return Math.round(ms) + ' ms';
  return (ms / 1000).toFixed(2).replace(/\.?0+$/, '') + ' s';
}
export function fmtBytes(b) {
  if (b == null || isNaN(b)) return '–';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (i ? b.toFixed(1) : b) + ' ' + u[i];
}
/** fmtChange writes a relative change: +12%, −3%, or "new" when there was nothing before. */
export function fmtChange(c) {
  if (c == null) return 'no earlier data';
  if (c === 0) return 'no change';
  const p = c * 100;
  return (p > 0 ? '+' : '−') + Math.abs(p).toFixed(Math.abs(p) < 10 ? 1 : 0) + '% vs previous';
}

const browserTZ = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
/** browserTimeZone is the IANA zone of this browser. */
export function browserTimeZone() { return browserTZ; }

/** fmtTime writes an RFC 3339 time (or ms) in the zone tz (default: the browser's). */
export function fmtTime(v, tz) {
  if (!v) return '–';
  const d = typeof v === 'number' ? new Date(v) : new Date(v);
  if (isNaN(d)) return String(v);
  return d.toLocaleString(undefined, { timeZone: tz || undefined, year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
}

/** fmtAgo writes how long ago a time was: "12 s ago", "3 h ago". */
export function fmtAgo(v) {
  if (!v) return 'never';
  const s = (Date.now() - new Date(v).getTime()) / 1000;
  if (isNaN(s)) return String(v);
  const f = (n, u) => `${Math.round(n)} ${u} ${s < 0 ? 'from now' : 'ago'}`;
  const a = Math.abs(s);
  if (a < 60) return f(a, 's');
  if (a < 3600) return f(a / 60, 'min');
  if (a < 86400) return f(a / 3600, 'h');
  return f(a / 86400, 'd');
}

/** wallToUTC reads a datetime-local value as wall-clock time in tz and returns ms. */
export function wallToUTC(value, tz) {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)/.exec(value || '');
  if (!m) return NaN;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  const guess = wall - tzOffset(tz, wall);
  return wall - tzOffset(tz, guess);
}

/** utcToWall writes ms as a datetime-local value in tz. */
export function utcToWall(ms, tz) {
  return new Date(ms + tzOffset(tz, ms)).toISOString().slice(0, 16);
}

// Notices: every empty state and error is explained in words.

/** notice is a box with a title and a sentence. kind: '', 'error', 'warn', 'ok'. */
export function notice(kind, title, text, extra) {
  return h('div', { class: 'notice ' + (kind || ''), role: kind === 'error' ? 'alert' : null },
    h('strong', null, title), text ? h('span', null, text) : null, extra || null);
}

/**
 * alertSubject says what an alert is about, for its meta line: "whole
 * service" for the global subject, else the kind and the id (key, owner)
 * or route pattern in a <code> that selects whole on a click, to copy. The
 * summary already names a key by its name and owner.
 */
export function alertSubject(a) {
  const s = a.subject || {};
  if (!s.value) return h('span', { dataset: { subjectKind: s.kind || 'global' } }, 'whole service');
  return h('span', { dataset: { subjectKind: s.kind } }, s.kind + ' ',
    h('code', { class: 'copyable', title: 'Click to select, then copy' }, s.value));
}

/** joined puts sep between the parts that are set (strings or nodes). */
export function joined(parts, sep = ' · ') {
  return parts.filter(Boolean).flatMap((p, i) => (i ? [sep, p] : [p]));
}

/** empty is the placeholder of a table or chart with nothing to show. */
export function empty(text) { return h('div', { class: 'empty' }, text); }

/**
 * errorNotice explains a failed call about `what` ("Live traffic"): a
 * route this server does not have yet, an unreachable server, or the
 * server's own message with its request id.
 */
export function errorNotice(err, what) {
  if (err instanceof APIError) {
    if (err.missing) {
      return notice('warn', `${what}: not available yet`,
        `This apiwarden server does not offer ${err.path.split('?')[0]} yet (it answered 404), so there is nothing to show here. ` +
        'It appears once the server is upgraded or the feature is turned on.');
    }
    if (err.status === 0) return notice('error', `${what}: server unreachable`, err.message);
    if (err.status === 503) return notice('warn', `${what}: unavailable right now`, err.message);
    const rid = err.requestID ? h('div', { class: 'rid' }, 'Request id: ', h('code', null, err.requestID)) : null;
    return notice('error', `${what}: ${err.status >= 500 ? 'the server failed' : 'refused'}`, err.message, rid);
  }
  return notice('error', `${what}: something went wrong in the page`, String((err && err.message) || err));
}

// Dialogs.

/**
 * dialog shows a modal <dialog> with a title, content and buttons, and
 * resolves with the value of the button pressed (undefined on Escape).
 * Focus moves into it and returns afterwards; Escape closes it.
 */
export function dialog({ title, content, buttons, initialFocus, onSubmit, testid }) {
  return new Promise((resolve) => {
    const titleID = id('dlg');
    const form = h('form', { method: 'dialog' });
    const bar = h('div', { class: 'actions' });
    const d = h('dialog', { 'aria-labelledby': titleID, dataset: testid ? { testid } : undefined },
      form);
    form.append(h('h2', { id: titleID }, title), ...[].concat(content), bar);
    let result;
    for (const b of buttons) {
      const btn = h('button', { type: b.submit ? 'submit' : 'button', class: b.class || '', dataset: b.testid ? { testid: b.testid } : undefined }, b.label);
      btn.addEventListener('click', async (e) => {
        if (b.submit && onSubmit) {
          e.preventDefault();
          if (!form.reportValidity()) return;
          btn.disabled = true;
          try {
            const keep = await onSubmit(b.value, d);
            if (keep) return;
          } finally { btn.disabled = false; }
        } else if (b.submit) {
          e.preventDefault();
          if (!form.reportValidity()) return;
        }
        result = b.value;
        d.close();
      });
      bar.append(btn);
    }
    form.addEventListener('submit', (e) => e.preventDefault());
    const back = document.activeElement;
    d.addEventListener('close', () => {
      d.remove();
      if (back && back.isConnected) back.focus();
      resolve(result);
    });
    document.body.append(d);
    d.showModal();
    if (initialFocus) initialFocus.focus();
  });
}

/** confirm asks a yes/no question; resolves true on the confirming button. */
export async function confirmAction(title, text, label, danger, extra) {
  const v = await dialog({
    title,
    content: [h('p', null, text), extra || null].filter(Boolean),
    buttons: [{ label: 'Cancel', value: false }, { label, value: true, class: danger ? 'danger' : 'primary', testid: 'confirm' }],
  });
  return v === true;
}

/** toast shows a short message in the corner for a few seconds. */
export function toast(text, kind) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = h('div', { class: 'toast ' + (kind || '') }, text);
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

/** copyText puts text on the clipboard; resolves true when it worked. */
export async function copyText(text, fallbackField) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (fallbackField) {
      const r = document.createRange();
      r.selectNodeContents(fallbackField);
      const s = getSelection();
      s.removeAllRanges();
      s.addRange(r);
      try { return document.execCommand('copy'); } catch { return false; }
    }
    return false;
  }
}

/**
 * sortable makes a table's header buttons sort rows: columns is
 * [{key, label, num, get(row)}]; render(rows) redraws the body. Returns
 * a function to call with new rows.
 */
export function sortableTable(columns, renderRow, { sortKey, desc = true, caption, emptyText } = {}) {
  let rows = [];
  let key = sortKey || columns[0].key;
  let descending = desc;
  const ths = columns.map((c) => {
    if (c.sortable === false) return h('th', { class: (c.num ? 'num ' : '') + (c.cls || ''), scope: 'col' }, c.label);
    const th = h('th', { class: (c.num ? 'num ' : '') + (c.cls || ''), scope: 'col' });
    th.append(h('button', { type: 'button', class: 'sort', onclick: () => {
      if (key === c.key) descending = !descending; else { key = c.key; descending = c.num !== false; }
      draw();
    } }, c.label));
    return th;
  });
  const tbody = h('tbody');
  const table = h('table', null, caption ? h('caption', { class: 'sr-only' }, caption) : null, h('thead', null, h('tr', null, ths)), tbody);
  const wrap = h('div', { class: 'table-wrap' }, table);
  function draw() {
    columns.forEach((c, i) => {
      if (c.sortable === false) return;
      ths[i].setAttribute('aria-sort', c.key === key ? (descending ? 'descending' : 'ascending') : 'none');
    });
    const col = columns.find((c) => c.key === key);
    const get = col.get || ((r) => r[key]);
    const sorted = rows.slice().sort((a, b) => {
      const x = get(a), y = get(b);
      const cmp = typeof x === 'number' || typeof y === 'number' ? (x ?? -Infinity) - (y ?? -Infinity) : String(x ?? '').localeCompare(String(y ?? ''));
      return descending ? -cmp : cmp;
    });
    if (!sorted.length) {
      tbody.replaceChildren(h('tr', null, h('td', { colspan: columns.length }, empty(emptyText || 'Nothing to show.'))));
      return;
    }
    tbody.replaceChildren(...sorted.map(renderRow));
  }
  return { el: wrap, set(r) { rows = r; draw(); } };
}
