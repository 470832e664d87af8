// chart.js: the dashboard's one chart module. Canvas time series (lines,
// areas, stacked areas and stacked bars) with a hover or keyboard
// read-out and a legend, plus sparklines. No dependencies.
//
// Crisp on high-DPI screens: the backing store is sized in device pixels
// and grid lines are snapped to whole device pixels. Time ticks land on
// wall-clock boundaries (1s … 1w, months) in the chosen time zone; value
// ticks on 1-2-5 steps. Live charts keep their points in a fixed ring
// buffer: push() writes one slot and schedules one redraw for the next
// animation frame, so a point a second allocates nothing.

const SEC = 1000, MIN = 60 * SEC, HOUR = 60 * MIN, DAY = 24 * HOUR;
const TIME_STEPS = [SEC, 2 * SEC, 5 * SEC, 10 * SEC, 15 * SEC, 30 * SEC, MIN, 2 * MIN, 5 * MIN, 10 * MIN,
  15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY];
const MONTH_STEPS = [1, 2, 3, 6, 12];
const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

const live = new Set(); // charts and sparklines to redraw when the colour scheme changes

function redrawAll() {
  for (const c of live) {
    if (c.connected()) c.schedule(); else live.delete(c);
  }
}
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', redrawAll);
window.addEventListener('themechange', redrawAll);

/** cssColor resolves "--s1" (a custom property on :root) or returns a literal colour. */
export function cssColor(c) {
  if (c && c.startsWith('--')) return getComputedStyle(document.documentElement).getPropertyValue(c).trim() || '#888';
  return c || '#888';
}

/** niceStep rounds a raw step up to 1, 2 or 5 times a power of ten. */
export function niceStep(raw) {
  if (!(raw > 0) || !isFinite(raw)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/** valueTicks covers [min, max] with about count ticks on a 1-2-5 step. */
export function valueTicks(min, max, count) {
  if (!(max > min)) max = min + 1;
  const step = niceStep((max - min) / Math.max(1, count));
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const ticks = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Math.abs(v) < step / 1e6 ? 0 : v);
  return { ticks, step, min: lo, max: hi };
}

const dtfCache = new Map();
function dtf(tz, opts) {
  const key = (tz || '') + JSON.stringify(opts);
  let f = dtfCache.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(undefined, { ...opts, timeZone: tz || undefined });
    dtfCache.set(key, f);
  }
  return f;
}

/** tzOffset is how many ms the wall clock of tz is ahead of UTC at t. */
export function tzOffset(tz, t) {
  if (tz === 'UTC' || tz === 'Etc/UTC') return 0;
  const parts = dtf(tz, { hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
    hour: 'numeric', minute: 'numeric', second: 'numeric' }).formatToParts(t);
  const p = {};
  for (const x of parts) p[x.type] = +x.value;
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour % 24, p.minute, p.second);
  return wall - Math.floor(t / 1000) * 1000;
}

/**
 * timeTicks picks a step from 1s to 1w (or whole months) so that labels
 * about 80 px apart fit, and returns ticks on wall-clock boundaries of tz.
 */
export function timeTicks(min, max, px, tz) {
  const span = Math.max(1, max - min);
  const most = Math.max(2, Math.floor(px / 80));
  const step = TIME_STEPS.find((s) => span / s <= most);
  const ticks = [];
  if (step) {
    // Weeks start on Monday: 1970-01-05 was one.
    const origin = step === 7 * DAY ? 4 * DAY : 0;
    const off0 = tzOffset(tz, min);
    for (let wall = Math.ceil((min + off0 - origin) / step) * step + origin; ; wall += step) {
      const t = step >= HOUR ? wall - tzOffset(tz, wall - off0) : wall - off0;
      if (t > max) break;
      if (t >= min && (ticks.length === 0 || t > ticks[ticks.length - 1])) ticks.push(t);
      if (ticks.length > 500) break;
    }
    return { ticks, step };
  }
  const months = MONTH_STEPS.find((m) => span / (m * 30.44 * DAY) <= most) || 12 * Math.ceil(span / (365.25 * DAY * most));
  const off0 = tzOffset(tz, min);
  const d = new Date(min + off0);
  let y = d.getUTCFullYear(), m = d.getUTCMonth();
  m = Math.ceil(m / months) * months;
  for (let i = 0; i < 500; i++, m += months) {
    const wall = Date.UTC(y, m, 1);
    const t = wall - tzOffset(tz, wall - off0);
    if (t > max) break;
    if (t >= min) ticks.push(t);
  }
  return { ticks, step: months * 30 * DAY };
}

/** timeLabel formats a tick for an axis whose step is step ms. */
export function timeLabel(t, step, tz) {
  if (step < MIN) return dtf(tz, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(t);
  const off = tzOffset(tz, t);
  const midnight = ((t + off) % DAY + DAY) % DAY === 0;
  if (step < DAY && !midnight) return dtf(tz, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(t);
  if (step >= 28 * DAY) return dtf(tz, { month: 'short', year: 'numeric' }).format(t);
  return dtf(tz, { month: 'short', day: 'numeric' }).format(t);
}

/** timeTitle formats the time of one point for a read-out. */
export function timeTitle(t, resolution, tz) {
  const o = { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  if (resolution < MIN) o.second = '2-digit';
  if (resolution >= DAY) { delete o.hour; delete o.minute; o.year = 'numeric'; }
  return dtf(tz, o).format(t);
}

/** defaultFormat writes a number compactly: 950, 1.2k, 3.4M. */
export function defaultFormat(v) {
  if (v == null || isNaN(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e9) return +(v / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return +(v / 1e6).toFixed(1) + 'M';
  if (a >= 1e3) return +(v / 1e3).toFixed(1) + 'k';
  if (a >= 10 || a === 0) return String(Math.round(v));
  return String(+v.toFixed(2));
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

/**
 * TimeChart draws series against time in a container element.
 *
 * options:
 *   series:   [{label, color: '--s1', dash: false, fill: false, format}]
 *   mode:     'line' (default) | 'stacked' (stacked areas) | 'bars' (stacked bars)
 *   height:   CSS pixels (default 220)
 *   format:   value formatter for the axis and read-out
 *   tz:       IANA zone for ticks and read-outs (default: the browser's)
 *   window:   ms; when set the x axis shows the last window ms (live charts)
 *   capacity: ring size for push() (default: grows with setData)
 *   empty:    words to show when there is nothing to draw
 *   zeroIsEmpty: treat all-zero data as nothing to draw
 *   label:    accessible name
 */
export class TimeChart {
  constructor(container, options) {
    this.o = { mode: 'line', height: 220, format: defaultFormat, empty: 'No data in this range.', ...options };
    this.series = this.o.series.map((s) => ({ visible: true, ...s }));
    this.box = container;
    container.classList.add('chart');
    container.tabIndex = 0;
    container.setAttribute('role', 'group');
    container.setAttribute('aria-label', (this.o.label || 'Chart') + '. Use the left and right arrow keys to read values.');
    this.canvas = el('canvas', 'plot');
    this.canvas.setAttribute('aria-hidden', 'true');
    this.canvas.style.height = this.o.height + 'px';
    this.tip = el('div', 'chart-tip');
    this.tip.hidden = true;
    this.tip.setAttribute('role', 'status');
    this.legend = el('div', 'legend');
    container.replaceChildren(this.canvas, this.tip, this.legend);
    this.buildLegend();
    this.ctx = this.canvas.getContext('2d');
    this.w = 0; this.h = this.o.height; this.dpr = 1;
    this.cap = 0; this.head = 0; this.n = 0;
    this.t = new Float64Array(0);
    this.v = this.series.map(() => new Float64Array(0));
    this.hover = -1; // logical index of the read-out point, -1 for none
    this.pending = 0;
    if (this.o.capacity) this.alloc(this.o.capacity);

    this.onMove = (e) => this.pointer(e);
    this.onLeave = () => this.setHover(-1);
    this.onKey = (e) => this.key(e);
    this.canvas.addEventListener('pointermove', this.onMove);
    this.canvas.addEventListener('pointerdown', this.onMove);
    this.canvas.addEventListener('pointerleave', this.onLeave);
    container.addEventListener('keydown', this.onKey);
    container.addEventListener('blur', this.onLeave);
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(container);
    live.add(this);
  }

  connected() { return this.box.isConnected; }

  destroy() {
    this.ro.disconnect();
    if (this.pending) cancelAnimationFrame(this.pending);
    live.delete(this);
  }

  alloc(cap) {
    const t = new Float64Array(cap);
    const v = this.series.map(() => new Float64Array(cap).fill(NaN));
    const keep = Math.min(this.n, cap);
    for (let i = 0; i < keep; i++) {
      const j = this.idx(this.n - keep + i);
      t[i] = this.t[j];
      for (let s = 0; s < v.length; s++) v[s][i] = this.v[s][j];
    }
    this.t = t; this.v = v; this.cap = cap; this.head = 0; this.n = keep;
  }

  idx(i) { return (this.head + i) % this.cap; }

  /** setData replaces every point: times in ms, one column per series (null for a gap). */
  setData(times, columns) {
    if (times.length > this.cap) { this.cap = 0; this.n = 0; this.alloc(times.length); }
    this.head = 0; this.n = times.length;
    for (let i = 0; i < times.length; i++) {
      this.t[i] = times[i];
      for (let s = 0; s < this.series.length; s++) {
        const x = columns[s] ? columns[s][i] : null;
        this.v[s][i] = x == null ? NaN : x;
      }
    }
    this.hover = -1;
    this.schedule();
  }

  /** push appends one point, dropping the oldest when the ring is full. */
  push(time, values) {
    if (this.cap === 0) this.alloc(this.o.capacity || 900);
    if (this.n > 0 && time <= this.t[this.idx(this.n - 1)]) { // same second again: replace it
      const j = this.idx(this.n - 1);
      for (let s = 0; s < this.series.length; s++) this.v[s][j] = values[s] == null ? NaN : values[s];
      this.schedule();
      return;
    }
    let j;
    if (this.n < this.cap) { j = this.idx(this.n); this.n++; } else { j = this.head; this.head = (this.head + 1) % this.cap; if (this.hover > 0) this.hover--; }
    this.t[j] = time;
    for (let s = 0; s < this.series.length; s++) this.v[s][j] = values[s] == null ? NaN : values[s];
    this.schedule();
  }

  setEmptyMessage(text) { this.o.empty = text; this.schedule(); }
  setTimeZone(tz) { this.o.tz = tz; this.schedule(); }

  buildLegend() {
    this.legend.replaceChildren();
    if (this.series.length < 2) return;
    for (const s of this.series) {
      const b = el('button');
      b.type = 'button';
      b.setAttribute('aria-pressed', String(s.visible));
      const sw = el('span', 'swatch' + (s.dash ? ' dash' : ''));
      sw.style.background = cssColor(s.color);
      s.swatch = sw;
      b.append(sw, document.createTextNode(s.label));
      b.title = 'Show or hide ' + s.label;
      b.addEventListener('click', () => {
        if (s.visible && this.series.filter((x) => x.visible).length === 1) return;
        s.visible = !s.visible;
        b.setAttribute('aria-pressed', String(s.visible));
        this.schedule();
      });
      this.legend.append(b);
    }
  }

  resize() {
    const w = Math.floor(this.box.clientWidth);
    const dpr = window.devicePixelRatio || 1;
    if (w === this.w && dpr === this.dpr) return;
    this.w = w; this.dpr = dpr;
    this.canvas.width = Math.max(1, Math.round(w * dpr));
    this.canvas.height = Math.round(this.h * dpr);
    this.draw();
  }

  schedule() {
    if (!this.pending) this.pending = requestAnimationFrame(() => { this.pending = 0; this.draw(); });
  }

  /** xRange is the time span on the axis. */
  xRange() {
    const last = this.n ? this.t[this.idx(this.n - 1)] : Date.now();
    if (this.o.window) return [last - this.o.window, last];
    const first = this.n ? this.t[this.idx(0)] : last - HOUR;
    if (first === last) return [first - MIN, last + MIN];
    // Bars are centred on their time: leave half a slot at each end.
    const pad = this.o.mode === 'bars' ? (last - first) / Math.max(1, this.n - 1) / 2 : 0;
    return [first - pad, last + pad];
  }

  /** visibleRange is the first and last logical index inside the x range. */
  visibleRange(x0) {
    let lo = 0, hi = this.n;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.t[this.idx(mid)] < x0) lo = mid + 1; else hi = mid; }
    return [lo, this.n - 1];
  }

  draw() {
    const { ctx, dpr, w, h } = this;
    if (!w) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = FONT;
    const axis = cssColor('--axis'), grid = cssColor('--grid');
    for (const s of this.series) if (s.swatch) s.swatch.style.background = cssColor(s.color);
    const [x0, x1] = this.xRange();
    const [i0, i1] = this.visibleRange(x0);
    const shown = this.series.map((s, k) => (s.visible ? k : -1)).filter((k) => k >= 0);
    const stacked = this.o.mode !== 'line';

    // The value range: the tallest stack or the highest visible point.
    let ymax = -Infinity, ymin = 0, any = false;
    for (let i = i0; i <= i1; i++) {
      const j = this.idx(i);
      let sum = 0;
      for (const k of shown) {
        const v = this.v[k][j];
        if (isNaN(v)) continue;
        any = true;
        if (stacked) sum += v; else { if (v > ymax) ymax = v; if (v < ymin) ymin = v; }
      }
      if (stacked && sum > ymax) ymax = sum;
    }
    if (this.o.zeroIsEmpty && ymax <= 0 && ymin >= 0) any = false;
    if (!any) {
      ctx.fillStyle = axis;
      ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
      ctx.font = '13px system-ui, sans-serif';
      ctx.fillText(this.o.empty, w / 2, h / 2);
      this.tip.hidden = true;
      this.layout = null;
      return;
    }
    if (this.o.yMax != null) ymax = Math.max(ymax, this.o.yMax);
    if (!(ymax > ymin)) ymax = ymin + 1;
    const yt = valueTicks(ymin, ymax, Math.max(2, Math.floor((h - 30) / 45)));
    const fmt = this.o.format;
    let labelW = 0;
    for (const v of yt.ticks) labelW = Math.max(labelW, ctx.measureText(fmt(v, yt.step)).width);
    const L = Math.ceil(labelW) + 10, R = w - 10, T = 8, B = h - 22;
    const px = (t) => L + ((t - x0) / (x1 - x0 || 1)) * (R - L);
    const py = (v) => B - ((v - yt.min) / (yt.max - yt.min || 1)) * (B - T);
    const lw = Math.max(1, Math.round(dpr));
    const snap = (z) => (Math.round(z * dpr) + (lw % 2 ? 0.5 : 0)) / dpr;
    this.layout = { L, R, T, B, x0, x1, px, py, i0, i1 };

    // Grid and value axis.
    ctx.lineWidth = lw / dpr;
    ctx.strokeStyle = grid;
    ctx.fillStyle = axis;
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    ctx.beginPath();
    for (const v of yt.ticks) {
      const y = snap(py(v));
      ctx.moveTo(L, y); ctx.lineTo(R, y);
      ctx.fillText(fmt(v, yt.step), L - 6, y);
    }
    ctx.stroke();

    // Time axis.
    const tt = timeTicks(x0, x1, R - L, this.o.tz);
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    ctx.beginPath();
    let lastRight = -Infinity;
    for (const t of tt.ticks) {
      const x = snap(px(t));
      ctx.moveTo(x, B); ctx.lineTo(x, B + 4);
      const label = timeLabel(t, tt.step, this.o.tz);
      const half = ctx.measureText(label).width / 2;
      if (x - half > lastRight + 6 && x + half <= w && x - half >= 0) {
        ctx.fillText(label, x, B + 6);
        lastRight = x + half;
      }
    }
    ctx.stroke();

    // Series.
    if (this.o.mode === 'bars') this.drawBars(shown, px, py, i0, i1, L, R);
    else if (stacked) this.drawStacked(shown, px, py, i0, i1);
    else for (const k of shown) this.drawLine(k, px, py, i0, i1);

    // Read-out.
    if (this.hover >= 0 && this.hover < this.n && this.hover >= i0) {
      const j = this.idx(this.hover);
      const x = snap(px(this.t[j]));
      ctx.strokeStyle = axis;
      ctx.lineWidth = lw / dpr;
      ctx.setLineDash([3, 3]);
      ctx.beginPath(); ctx.moveTo(x, T); ctx.lineTo(x, B); ctx.stroke();
      ctx.setLineDash([]);
      let base = 0;
      for (const k of shown) {
        const v = this.v[k][j];
        if (isNaN(v)) continue;
        const y = py(stacked ? (base += v) : v);
        ctx.fillStyle = cssColor(this.series[k].color);
        ctx.beginPath(); ctx.arc(x, y, 3.5, 0, 2 * Math.PI); ctx.fill();
      }
      this.showTip(j, x);
    } else {
      this.tip.hidden = true;
    }
  }

  drawLine(k, px, py, i0, i1) {
    const { ctx } = this;
    const s = this.series[k];
    const color = cssColor(s.color);
    ctx.strokeStyle = color;
    ctx.lineWidth = s.width || 1.6;
    ctx.lineJoin = 'round';
    ctx.setLineDash(s.dash ? [5, 4] : []);
    ctx.beginPath();
    let pen = false, firstX = 0, lastX = 0;
    for (let i = i0; i <= i1; i++) {
      const j = this.idx(i);
      const v = this.v[k][j];
      if (isNaN(v)) { pen = false; continue; }
      const x = px(this.t[j]), y = py(v);
      if (pen) ctx.lineTo(x, y); else { ctx.moveTo(x, y); firstX = x; }
      pen = true; lastX = x;
    }
    ctx.stroke();
    ctx.setLineDash([]);
    if (s.fill && i1 >= i0) {
      ctx.lineTo(lastX, py(0)); ctx.lineTo(firstX, py(0)); ctx.closePath();
      ctx.globalAlpha = 0.12; ctx.fillStyle = color; ctx.fill(); ctx.globalAlpha = 1;
    }
  }

  drawStacked(shown, px, py, i0, i1) {
    const { ctx } = this;
    const count = i1 - i0 + 1;
    const base = new Float64Array(count); // one small array per frame, only for stacked charts
    for (const k of shown) {
      const color = cssColor(this.series[k].color);
      ctx.beginPath();
      for (let i = 0; i < count; i++) {
        const j = this.idx(i0 + i);
        const v = this.v[k][j];
        const y = py(base[i] + (isNaN(v) ? 0 : v));
        if (i) ctx.lineTo(px(this.t[j]), y); else ctx.moveTo(px(this.t[j]), y);
      }
      for (let i = count - 1; i >= 0; i--) ctx.lineTo(px(this.t[this.idx(i0 + i)]), py(base[i]));
      ctx.closePath();
      ctx.globalAlpha = 0.55; ctx.fillStyle = color; ctx.fill(); ctx.globalAlpha = 1;
      ctx.strokeStyle = color; ctx.lineWidth = 1.2;
      ctx.beginPath();
      for (let i = 0; i < count; i++) {
        const j = this.idx(i0 + i);
        const v = this.v[k][j];
        base[i] += isNaN(v) ? 0 : v;
        if (i) ctx.lineTo(px(this.t[j]), py(base[i])); else ctx.moveTo(px(this.t[j]), py(base[i]));
      }
      ctx.stroke();
    }
  }

  drawBars(shown, px, py, i0, i1, L, R) {
    const { ctx } = this;
    const count = i1 - i0 + 1;
    const slot = (R - L) / Math.max(1, count);
    const bw = Math.max(1, Math.min(40, slot * 0.72));
    for (let i = i0; i <= i1; i++) {
      const j = this.idx(i);
      const x = px(this.t[j]);
      let base = 0;
      for (const k of shown) {
        const v = this.v[k][j];
        if (isNaN(v) || v === 0) continue;
        const y0 = py(base), y1 = py(base + v);
        base += v;
        ctx.fillStyle = cssColor(this.series[k].color);
        ctx.fillRect(Math.round((x - bw / 2) * this.dpr) / this.dpr, y1, bw, Math.max(1 / this.dpr, y0 - y1));
      }
    }
  }

  showTip(j, x) {
    const tip = this.tip;
    const res = this.n > 1 ? Math.abs(this.t[this.idx(1)] - this.t[this.idx(0)]) : MIN;
    const rows = [el('div', 't', timeTitle(this.t[j], res, this.o.tz))];
    let total = 0;
    for (const s of this.series) {
      if (!s.visible) continue;
      const v = this.v[this.series.indexOf(s)][j];
      total += isNaN(v) ? 0 : v;
      const r = el('div', 'r');
      const name = el('span');
      const sw = el('span', 'swatch' + (s.dash ? ' dash' : ''));
      sw.style.background = cssColor(s.color);
      name.append(sw, document.createTextNode(s.label));
      r.append(name, el('b', null, isNaN(v) ? 'no data' : (s.format || this.o.format)(v)));
      rows.push(r);
    }
    if (this.o.mode !== 'line' && this.series.length > 1) {
      const r = el('div', 'r');
      r.append(el('span', null, 'Total'), el('b', null, this.o.format(total)));
      rows.push(r);
    }
    tip.replaceChildren(...rows);
    tip.hidden = false;
    const tw = tip.offsetWidth;
    const left = x + 14 + tw > this.w ? x - 14 - tw : x + 14;
    tip.style.left = Math.max(0, left) + 'px';
    tip.style.top = '6px';
  }

  setHover(i) {
    if (i === this.hover) return;
    this.hover = i;
    this.schedule();
  }

  pointer(e) {
    const lay = this.layout;
    if (!lay || !this.n) return;
    const r = this.canvas.getBoundingClientRect();
    const x = e.clientX - r.left;
    if (x < lay.L - 4 || x > lay.R + 4) { this.setHover(-1); return; }
    const t = lay.x0 + ((x - lay.L) / (lay.R - lay.L)) * (lay.x1 - lay.x0);
    this.setHover(this.nearest(t, lay.i0));
  }

  nearest(t, from) {
    let lo = from, hi = this.n - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.t[this.idx(mid)] < t) lo = mid + 1; else hi = mid; }
    if (lo > from && Math.abs(this.t[this.idx(lo - 1)] - t) <= Math.abs(this.t[this.idx(lo)] - t)) lo--;
    return lo;
  }

  key(e) {
    if (!this.n || !this.layout) return;
    const { i0, i1 } = this.layout;
    let i = this.hover < i0 ? i1 : this.hover;
    switch (e.key) {
      case 'ArrowLeft': i = Math.max(i0, i - (e.shiftKey ? 10 : 1)); break;
      case 'ArrowRight': i = Math.min(i1, i + (e.shiftKey ? 10 : 1)); break;
      case 'Home': i = i0; break;
      case 'End': i = i1; break;
      case 'Escape': this.setHover(-1); return;
      default: return;
    }
    e.preventDefault();
    this.setHover(i);
  }
}

/** bucketMeans shrinks values to at most max points, each the mean of its bucket (nulls skipped). */
function bucketMeans(values, max) {
  if (values.length <= max) return values;
  const out = new Array(max);
  const per = values.length / max;
  for (let b = 0; b < max; b++) {
    let sum = 0, n = 0;
    for (let i = Math.floor(b * per); i < Math.floor((b + 1) * per); i++) {
      const v = values[i];
      if (v != null && !isNaN(v)) { sum += v; n++; }
    }
    out[b] = n ? sum / n : null;
  }
  return out;
}

/**
 * Sparkline is a tiny line with a faint area and a dot on the last
 * point, for table cells and stat cards.
 */
export class Sparkline {
  constructor({ width = 110, height = 28, color = '--s1', label = 'trend' } = {}) {
    this.canvas = el('canvas', 'spark');
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', label);
    this.canvas.style.width = width + 'px';
    this.canvas.style.height = height + 'px';
    this.w = width; this.h = height; this.color = color; this.label = label;
    this.values = [];
    this.pending = 0;
    live.add(this);
  }

  connected() { return this.canvas.isConnected; }

  /** set replaces the values (numbers; null for no data) and redraws soon. */
  set(values) {
    this.values = values;
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (v != null && !isNaN(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    this.canvas.setAttribute('aria-label', hi === -Infinity ? this.label + ': no data'
      : `${this.label}: from ${defaultFormat(lo)} to ${defaultFormat(hi)}, last ${defaultFormat(values[values.length - 1])}`);
    this.schedule();
    return this;
  }

  schedule() {
    if (!this.pending) this.pending = requestAnimationFrame(() => { this.pending = 0; this.draw(); });
  }

  draw() {
    const dpr = window.devicePixelRatio || 1;
    const c = this.canvas, w = this.w, h = this.h;
    if (c.width !== Math.round(w * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const vs = bucketMeans(this.values, Math.max(8, Math.floor(w / 2))), n = vs.length;
    let hi = 0;
    for (const v of vs) if (v != null && v > hi) hi = v;
    const color = cssColor(this.color);
    if (n < 2) {
      ctx.strokeStyle = cssColor('--grid'); ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(0, h - 2.5); ctx.lineTo(w, h - 2.5); ctx.stroke();
      return;
    }
    const pad = 3;
    const x = (i) => pad + (i / (n - 1)) * (w - 2 * pad);
    const y = (v) => h - pad - (hi > 0 ? (v / hi) * (h - 2 * pad) : 0);
    ctx.beginPath();
    let started = false, lastI = 0;
    for (let i = 0; i < n; i++) {
      const v = vs[i];
      if (v == null || isNaN(v)) continue;
      if (started) ctx.lineTo(x(i), y(v)); else { ctx.moveTo(x(i), y(v)); started = true; }
      lastI = i;
    }
    ctx.strokeStyle = color; ctx.lineWidth = 1.4; ctx.lineJoin = 'round';
    ctx.stroke();
    ctx.lineTo(x(lastI), h - pad); ctx.lineTo(pad, h - pad); ctx.closePath();
    ctx.globalAlpha = 0.14; ctx.fillStyle = color; ctx.fill(); ctx.globalAlpha = 1;
    if (vs[n - 1] != null) {
      ctx.fillStyle = color;
      ctx.beginPath(); ctx.arc(x(n - 1), y(vs[n - 1]), 2.2, 0, 2 * Math.PI); ctx.fill();
    }
  }
}
