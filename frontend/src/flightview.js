// Flights: the fleet's and a drone's flight lists, and one flight's replay
// at real-time pace (1x, 10x, 60x) with follow mode, a chart of height (or
// altitude) and battery whose cursor moves in step with the marker, and
// the downloads. The replay clock is one number (tr.t, ms since epoch):
// every frame places the marker and the chart cursor from it.
import L from './leaflet-global.js';
import { fmt } from './fleet.js';

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

export function flightLine(f, droneName) {
  const start = new Date(f.start);
  const parts = [droneName || f.droneId, start.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' }),
    fmt.duration(f.durationSecs), `${(f.distanceM / 1000).toFixed(2)} km`];
  if (typeof f.maxHeight === 'number') parts.push(`max ${Math.round(f.maxHeight)} m`);
  if (f.inProgress) parts.push('in progress');
  return parts.join(' · ');
}

/** flightList renders flights into ul as buttons that open them. */
export function flightList(ul, flights, nameOf, open) {
  ul.replaceChildren(...flights.map((f) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'fl-item';
    b.dataset.id = f.id;
    b.textContent = flightLine(f, nameOf(f.droneId));
    b.addEventListener('click', () => open(f.id));
    li.appendChild(b);
    return li;
  }));
}

export class FlightView {
  constructor(map, { getJSON, nameOf, onOpen, onClose }) {
    this.map = map;
    this.getJSON = getJSON;
    this.nameOf = nameOf;
    this.onOpen = onOpen;
    this.onClose = onClose;
    this.tr = null; // the open flight's replay state
    $('fl-close').addEventListener('click', () => this.close());
    $('fl-play').addEventListener('click', () => this.toggle());
    $('fl-slider').addEventListener('input', (e) => {
      if (!this.tr) return;
      this.pause();
      const { t0, t1 } = this.tr;
      this.show(t0 + (t1 - t0) * Number(e.target.value) / 1000);
    });
    $('fl-follow').addEventListener('change', (e) => { if (this.tr) { this.tr.follow = e.target.checked; this.follow(); } });
    $('fl-speed').addEventListener('change', (e) => { if (this.tr) this.tr.speed = Number(e.target.value); });
    $('fl-cursor').addEventListener('click', (e) => {
      if (!this.tr) return;
      const { x0, w } = this.tr.chart;
      const k = Math.min(1, Math.max(0, (e.offsetX - x0) / w));
      this.pause();
      this.show(this.tr.t0 + (this.tr.t1 - this.tr.t0) * k);
    });
    this.map.on('dragstart', () => { if (this.tr?.follow && this.tr.playing) { this.tr.follow = false; $('fl-follow').checked = false; } });
  }

  /** open loads a flight and its track and shows it at its start. */
  async open(id) {
    this.close(true);
    const f = await (await this.getJSON(`/api/v1/flights/${enc(id)}`)).json();
    const pts = [];
    let after = '';
    const to = new Date(Date.parse(f.end) + 1).toISOString();
    for (let page = 0; page < 40; page++) {
      const q = new URLSearchParams({ from: f.start, to, limit: '5000' });
      if (after) q.set('after', after);
      const body = await (await this.getJSON(`/api/v1/drones/${enc(f.droneId)}/track?${q}`)).json();
      for (const p of body.points || []) pts.push({ t: Date.parse(p.ts), ll: [p.lat, p.lon], p });
      if (!body.next) break;
      after = body.next;
    }
    if (!pts.length) throw new Error(`flight ${id}: no track points`);
    const lls = pts.map((p) => p.ll);
    const line = L.polyline(lls, { color: '#38bdf8', weight: 3, opacity: 0.55, interactive: false }).addTo(this.map);
    const done = L.polyline([], { color: '#f0abfc', weight: 4, opacity: 0.95, interactive: false }).addTo(this.map);
    const marker = L.circleMarker(lls[0], { radius: 8, color: '#fff', weight: 2, fillColor: '#f0abfc', fillOpacity: 1, interactive: false }).addTo(this.map);
    const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
    this.tr = { f, pts, line, done, marker, t0, t1, t: t0, playing: false, speed: Number($('fl-speed').value), follow: $('fl-follow').checked, frames: 0 };
    this.renderSummary(f);
    $('flight').hidden = false;
    document.body.classList.add('has-flight');
    this.onOpen?.(f);
    this.drawChart();
    this.map.fitBounds(line.getBounds().pad(0.2), { maxZoom: 17 });
    this.show(t0);
    $('fl-play').focus({ preventScroll: true });
    return f;
  }

  renderSummary(f) {
    $('fl-title').textContent = `${this.nameOf(f.droneId)} · ${new Date(f.start).toLocaleString()}`;
    $('fl-sub').textContent = `${f.rule === 'armed' ? 'armed to disarmed' : 'take-off to landing by motion'}${f.inProgress ? ' · in progress' : ''}`;
    $('fl-duration').textContent = fmt.duration(f.durationSecs);
    $('fl-distance').textContent = `${(f.distanceM / 1000).toFixed(2)} km`;
    $('fl-maxh').textContent = fmt.num(f.maxHeight, 'm', 1);
    $('fl-maxalt').textContent = fmt.num(f.maxAlt, 'm', 1);
    $('fl-maxspeed').textContent = fmt.speed(f.maxSpeed);
    $('fl-batt').textContent = `${fmt.battery(f.batteryStart)} → ${fmt.battery(f.batteryEnd)}`;
    $('fl-alerts').textContent = f.alerts?.length ? f.alerts.map((a) => a.message || a.kind).join('; ') : 'none';
    for (const a of document.querySelectorAll('#fl-downloads a')) {
      a.href = `/api/v1/flights/${enc(f.id)}/export?format=${a.dataset.format}`;
    }
  }

  close(quiet) {
    const tr = this.tr;
    if (!tr) return;
    tr.playing = false;
    tr.line.remove(); tr.done.remove(); tr.marker.remove();
    this.tr = null;
    $('flight').hidden = true;
    document.body.classList.remove('has-flight');
    this.setPlay(false);
    if (!quiet) this.onClose?.();
  }

  setPlay(on) {
    $('fl-play').textContent = on ? 'Pause' : 'Play';
    $('fl-play').setAttribute('aria-pressed', String(on));
  }

  pause() { if (this.tr) { this.tr.playing = false; this.setPlay(false); } }

  toggle() {
    const tr = this.tr;
    if (!tr) return;
    if (tr.playing) { this.pause(); return; }
    if (tr.t >= tr.t1) tr.t = tr.t0;
    tr.playing = true;
    this.setPlay(true);
    let last = performance.now();
    const step = (now) => {
      if (!tr.playing || this.tr !== tr) return;
      // Real time between fixes, scaled: a 1x replay takes the flight's own time.
      tr.t = Math.min(tr.t1, tr.t + (now - last) * tr.speed);
      last = now;
      tr.frames++;
      this.show(tr.t);
      if (tr.t >= tr.t1) { this.pause(); return; }
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }

  /** at returns the point index before t and the position at t. */
  at(t) {
    const { pts } = this.tr;
    let lo = 0, hi = pts.length - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (pts[mid].t <= t) lo = mid; else hi = mid - 1; }
    const a = pts[lo], b = pts[Math.min(lo + 1, pts.length - 1)];
    const k = b.t > a.t ? (t - a.t) / (b.t - a.t) : 0;
    return { i: lo, ll: [a.ll[0] + (b.ll[0] - a.ll[0]) * k, a.ll[1] + (b.ll[1] - a.ll[1]) * k] };
  }

  /** show puts the marker, the flown part, the chart cursor and the readout at time t. */
  show(t) {
    const tr = this.tr;
    if (!tr) return;
    tr.t = t;
    const { i, ll } = this.at(t);
    tr.marker.setLatLng(ll);
    tr.done.setLatLngs([...tr.pts.slice(0, i + 1).map((p) => p.ll), ll]);
    this.drawCursor(t);
    const p = tr.pts[i].p;
    const span = tr.t1 - tr.t0;
    $('fl-slider').value = String(span > 0 ? Math.round(((t - tr.t0) / span) * 1000) : 1000);
    $('fl-info').textContent = `${new Date(t).toLocaleTimeString()} · +${fmt.duration((t - tr.t0) / 1000)} · ` +
      `${tr.chart.label} ${fmt.num(tr.chart.value(p), 'm', 1)} · battery ${fmt.battery(p.battery)}` +
      `${p.mode ? ' · ' + p.mode : ''}`;
    this.follow();
  }

  follow() {
    const tr = this.tr;
    if (!tr?.follow) return;
    // Keep the marker in the middle of the part of the map the flight card
    // does not cover; pan only when it leaves that middle.
    const size = this.map.getSize();
    const card = $('flight');
    const covered = card.offsetWidth && card.offsetLeft > size.x / 2 ? size.x - card.offsetLeft + 12 : 0;
    const w = Math.max(100, size.x - covered), h = size.y;
    const p = this.map.latLngToContainerPoint(tr.marker.getLatLng());
    if (p.x < w * 0.25 || p.x > w * 0.75 || p.y < h * 0.25 || p.y > h * 0.75) {
      this.map.panBy([p.x - w / 2, p.y - h / 2], { animate: false });
    }
  }

  /** drawChart draws height above take-off (or altitude above mean sea level when no height was reported) and battery. */
  drawChart() {
    const tr = this.tr;
    const base = $('fl-chart'), over = $('fl-cursor');
    const dpr = window.devicePixelRatio || 1;
    const W = base.clientWidth || 300, H = base.clientHeight || 120;
    for (const c of [base, over]) { c.width = Math.round(W * dpr); c.height = Math.round(H * dpr); }
    const useHeight = tr.pts.some((q) => typeof q.p.height === 'number');
    const value = useHeight ? (p) => p.height : (p) => p.alt;
    const label = useHeight ? 'height' : 'alt MSL';
    $('fl-chart-label').textContent = useHeight ? 'Height above take-off (m)' : 'Altitude above mean sea level (m)';
    const x0 = 34, x1 = W - 30, y0 = 8, y1 = H - 16;
    tr.chart = { x0, w: x1 - x0, y0, y1, W, H, dpr, label, value };
    const ctx = base.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.font = '10px system-ui, sans-serif';
    ctx.fillStyle = '#9fb0c8';
    const vals = tr.pts.map((q) => value(q.p)).filter((v) => typeof v === 'number');
    let lo = vals.length ? Math.min(...vals) : 0, hi = vals.length ? Math.max(...vals) : 1;
    if (hi - lo < 1) { hi = lo + 1; }
    const span = Math.max(1, tr.t1 - tr.t0);
    const X = (t) => x0 + ((t - tr.t0) / span) * (x1 - x0);
    const series = (get, lo2, hi2, color) => {
      ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.beginPath();
      let pen = false;
      for (const q of tr.pts) {
        const v = get(q.p);
        if (typeof v !== 'number') { pen = false; continue; }
        const y = y1 - ((v - lo2) / (hi2 - lo2)) * (y1 - y0);
        if (pen) ctx.lineTo(X(q.t), y); else ctx.moveTo(X(q.t), y);
        pen = true;
      }
      ctx.stroke();
    };
    ctx.strokeStyle = '#26324a'; ctx.lineWidth = 1;
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.fillText(`${Math.round(hi)} m`, 2, y0 + 8);
    ctx.fillText(`${Math.round(lo)} m`, 2, y1);
    ctx.fillText('100%', x1 + 3, y0 + 8);
    ctx.fillText('0%', x1 + 3, y1);
    ctx.fillText(fmt.duration(span / 1000), x1 - 30, H - 3);
    series(value, lo, hi, '#38bdf8');
    series((p) => p.battery, 0, 100, '#22c55e');
  }

  /** drawCursor draws the chart cursor at time t (and records where, for tests). */
  drawCursor(t) {
    const tr = this.tr;
    const c = tr.chart;
    const span = Math.max(1, tr.t1 - tr.t0);
    const x = c.x0 + ((t - tr.t0) / span) * c.w;
    const ctx = $('fl-cursor').getContext('2d');
    ctx.setTransform(c.dpr, 0, 0, c.dpr, 0, 0);
    ctx.clearRect(0, 0, c.W, c.H);
    ctx.strokeStyle = '#f0abfc'; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(x, c.y0); ctx.lineTo(x, c.y1); ctx.stroke();
    tr.cursorX = x;
    tr.cursorT = c.x0 + c.w > c.x0 ? tr.t0 + ((x - c.x0) / c.w) * span : tr.t0;
  }
}
