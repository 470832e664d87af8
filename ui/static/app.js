// app.js: login, navigation and the view life cycle. Each view is a
// module loaded when first opened; mount(root, ctx) draws it and returns
// a function that stops its timers and streams.

import { api, setCSRF, onUnauthorized, APIError } from './api.js';
import { h, errorNotice, notice } from './util.js';

const VIEWS = {
  overview: ['Overview', () => import('./views/overview.js')],
  traffic: ['Traffic', () => import('./views/traffic.js')],
  endpoints: ['Endpoints', () => import('./views/endpoints.js')],
  keys: ['Keys', () => import('./views/keys.js')],
  alerts: ['Alerts', () => import('./views/alerts.js')],
  requests: ['Requests', () => import('./views/requests.js')],
};

const $ = (id) => document.getElementById(id);
const main = $('main');
let current = null; // {stop: AbortController, unmount}
let routeSeq = 0;

function stopView() {
  if (!current) return;
  current.stop.abort();
  try { if (current.unmount) current.unmount(); } catch (e) { console.error(e); }
  current = null;
}

/** parseHash reads "#/keys?status=active" into a view name and params. */
function parseHash() {
  const m = /^#\/([a-z]+)(?:\?(.*))?$/.exec(location.hash);
  return { name: m && VIEWS[m[1]] ? m[1] : 'overview', params: new URLSearchParams((m && m[2]) || '') };
}

async function route(focus) {
  const seq = ++routeSeq;
  const { name, params } = parseHash();
  stopView();
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const [label, load] = VIEWS[name];
  document.title = `${label} · apiwarden`;
  main.replaceChildren(h('p', { class: 'muted' }, `Loading ${label.toLowerCase()}…`));
  main.dataset.view = name;
  let mod;
  try {
    mod = await load();
  } catch (e) {
    main.replaceChildren(notice('error', `The ${label} view could not be loaded`, 'Reload the page; if this persists the server may have been upgraded while the page was open.'));
    return;
  }
  if (seq !== routeSeq) return;
  const stop = new AbortController();
  main.replaceChildren();
  current = { stop, unmount: null };
  try {
    current.unmount = mod.mount(main, { signal: stop.signal, params, navigate });
  } catch (e) {
    main.replaceChildren(errorNotice(e, label));
  }
  if (focus) main.focus({ preventScroll: true });
}

/** navigate goes to a view, e.g. navigate('requests', {route: '/x'}). */
function navigate(name, params) {
  const q = params ? new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v != null)).toString() : '';
  location.hash = '#/' + name + (q ? '?' + q : '');
}

// Login and logout.

function showLogin(message, kind) {
  stopView();
  setCSRF('');
  $('shell').hidden = true;
  $('login').hidden = false;
  const err = $('login-error');
  err.hidden = !message;
  err.textContent = message || '';
  err.className = kind === 'info' ? 'muted' : 'form-error';
  $('login-token').value = '';
  $('login-token').focus();
}

function showApp() {
  $('login').hidden = true;
  $('shell').hidden = false;
  route(false);
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('login-token');
  const btn = $('login-submit');
  btn.disabled = true;
  btn.textContent = 'Logging in…';
  try {
    const s = await api('POST', '/admin/v1/session', { token: input.value.trim() }, { quiet401: true });
    input.value = '';
    setCSRF(s.csrf_token);
    showApp();
  } catch (err) {
    const box = $('login-error');
    box.hidden = false;
    box.className = 'form-error';
    if (err instanceof APIError && err.code === 'ADMIN_TOKEN_NOT_CONFIGURED') box.textContent = 'The admin API is turned off: this server has no admin token. Set APIWARDEN_ADMIN_TOKEN and restart it.';
    else if (err instanceof APIError && err.status === 401) box.textContent = 'That admin token is not valid. Check for a missing or extra character and try again.';
    else box.textContent = err.message;
    input.select();
  } finally {
    btn.disabled = false;
    btn.textContent = 'Log in';
  }
});

$('logout').addEventListener('click', async () => {
  try {
    await api('POST', '/admin/v1/session/logout', undefined, { quiet401: true });
  } catch (e) {
    // Logged out either way: the session is gone or the server is.
  }
  showLogin('You have logged out.', 'info');
});

onUnauthorized(() => showLogin('Your session has ended: it expired (dashboard.session_ttl) or the server restarted. Log in again.'));

// Colour scheme: auto follows the system; the choice is kept in this browser.
const THEMES = ['auto', 'light', 'dark'];
function applyTheme(t) {
  if (t === 'auto') document.documentElement.removeAttribute('data-theme');
  else document.documentElement.dataset.theme = t;
  $('theme').textContent = 'Theme: ' + t;
  $('theme').setAttribute('aria-label', `Colour scheme: ${t}. Press to change.`);
  window.dispatchEvent(new Event('themechange'));
}
let theme = 'auto';
try { theme = localStorage.getItem('apiwarden.theme') || 'auto'; } catch { /* storage may be off */ }
if (!THEMES.includes(theme)) theme = 'auto';
applyTheme(theme);
$('theme').addEventListener('click', () => {
  theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
  try { localStorage.setItem('apiwarden.theme', theme); } catch { /* fine */ }
  applyTheme(theme);
});

window.addEventListener('hashchange', () => { if (!$('shell').hidden) route(true); });

// Start: a live session (the cookie survived a reload) goes straight in.
(async () => {
  try {
    const s = await api('GET', '/admin/v1/session', undefined, { quiet401: true });
    if (!s.csrf_token) throw new APIError(401, 'UNAUTHORIZED', '');
    setCSRF(s.csrf_token);
    showApp();
  } catch (err) {
    if (err instanceof APIError && err.code === 'ADMIN_TOKEN_NOT_CONFIGURED') showLogin('The admin API is turned off: this server has no admin token. Set APIWARDEN_ADMIN_TOKEN and restart it.');
    else if (err instanceof APIError && err.status === 401) showLogin('');
    else showLogin(err.message || String(err));
  }
})();
