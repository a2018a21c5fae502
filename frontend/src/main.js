// Dronetrack's live fleet page: the map, the fleet list, a drone's detail and
// history, open alerts and the geofence editor. Data comes from serve-map's API: the fleet list
// once (and on resync), then every change from the SSE stream.
import 'leaflet/dist/leaflet.css';
import './style.css';
import L from './leaflet-global.js';
import { feature } from 'topojson-client';
import { Fleet, status, fmt, STATUS_LABEL, headingOf, speedOf, lowBattery, setAlertSettings } from './fleet.js';
import { DroneLayer } from './dronelayer.js';
import { Geofences } from './geofences.js';
import { Notifier } from './notify.js';
import { FlightView, flightList } from './flightview.js';

const $ = (id) => document.getElementById(id);
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute('content') ?? '';
const VERSION_HEADER = 'X-Dronetrack-Version';

const fleet = new Fleet();
const app = { selected: null, follow: true, alerts: [], ackSupported: false, alertsKey: 'alerts', track: null, es: null, loaded: false };
window.dronetrack = app; // for operators' console and the browser tests
app.fleet = fleet;

// ---------- map ----------
// pmIgnore: false lets the geofence editor (leaflet-geoman, opt-in) draw on the map.
const map = L.map('map', { pmIgnore: false, zoomControl: true, attributionControl: true, worldCopyJump: true, minZoom: 2, maxZoom: 19 })
  .setView([47.3769, 8.5417], 12);
map.attributionControl.setPrefix(false);
map.createPane('basemap').style.zIndex = 150; // under the tiles: shows through when tiles can't load

// The outlines three times, a turn west and east as well: the view can
// show longitudes past ±180 (near the date line, or a fence drawn across
// it in unwrapped longitudes), and the basemap must not be blank there.
const basemapRenderer = L.canvas({ pane: 'basemap', padding: 0.5 });
const outlineCopies = [-360, 0, 360].map((dx) => L.geoJSON(null, {
  pane: 'basemap', interactive: false, renderer: basemapRenderer,
  style: { color: '#4b5d78', weight: 1, fillColor: '#1c2738', fillOpacity: 1 },
  coordsToLatLng: (c) => L.latLng(c[1], c[0] + dx),
}));
const outlines = L.layerGroup(outlineCopies).addTo(map);
app.outlines = outlines;
fetch(__COUNTRIES_URL__)
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`outlines: HTTP ${r.status}`))))
  .then((topo) => {
    const countries = feature(topo, topo.objects.countries);
    for (const copy of outlineCopies) copy.addData(countries);
    app.basemapReady = true;
  })
  .catch((err) => console.warn('offline basemap unavailable', err));

const overlays = { 'Country outlines (offline)': outlines };
const tileURL = new URLSearchParams(location.search).get('tiles') ?? meta('dronetrack:tiles');
let tiles = null;
if (tileURL && tileURL !== 'off') {
  tiles = L.tileLayer(tileURL, { maxZoom: 19, attribution: meta('dronetrack:tiles-attribution'), crossOrigin: false });
  let loaded = 0, failed = 0;
  tiles.on('tileload', () => { loaded++; });
  tiles.on('tileerror', () => {
    failed++;
    if (failed >= 8 && loaded === 0 && map.hasLayer(tiles)) { map.removeLayer(tiles); setConn(app.connState, 'Map tiles unreachable: offline basemap'); }
  });
  tiles.addTo(map);
  L.control.layers({ 'Street map': tiles }, overlays, { position: 'topright' }).addTo(map);
}
L.control.scale({ imperial: false }).addTo(map);

const layer = new DroneLayer(map, fleet, (id) => select(id, { fromMap: true }));
app.layer = layer;
const fences = new Geofences(map, { csrf: () => csrfToken(), onCount: (n) => { $('fence-count').textContent = n; } });
app.geofences = fences;
map.on('dragstart', () => { if (app.selected && app.follow) { app.follow = false; $('d-follow').checked = false; } });

// ---------- connection status ----------
function setConn(state, text) {
  app.connState = state;
  const c = $('conn');
  c.className = `conn ${state}`;
  $('conn-text').textContent = text;
}

// ---------- API ----------
class AuthError extends Error {}
function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)(?:__Host-)?dt_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : app.csrf || '';
}
async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  if (r.status === 401) throw new AuthError('sign in needed');
  if (!r.ok) {
    let detail = '';
    try { detail = (await r.json()).detail || ''; } catch { /* not problem JSON */ }
    throw new Error(`${url}: HTTP ${r.status} ${detail}`);
  }
  return r;
}

async function loadFleet() {
  setConn('wait', 'Loading fleet…');
  const r = await getJSON('/api/v1/drones');
  const version = r.headers.get(VERSION_HEADER);
  const body = await r.json();
  fleet.replace(body.drones || []);
  if (!app.loaded) {
    app.loaded = true;
    fitFleet();
    // Notification links open the map on a drone: /?drone=<id>.
    const linked = new URLSearchParams(location.search).get('drone');
    if (linked) select(linked);
  }
  openStream(version);
}

function fitFleet() {
  const pts = [];
  for (const d of fleet.drones.values()) if (d.state) pts.push([d.state.lat, d.state.lon]);
  if (pts.length) map.fitBounds(L.latLngBounds(pts).pad(0.05), { maxZoom: 15, animate: false });
}

function openStream(version) {
  if (app.es) app.es.close();
  const url = '/api/v1/stream' + (version ? `?since=${encodeURIComponent(version)}` : '');
  const es = new EventSource(url);
  app.es = es;
  es.onopen = () => setConn('live', 'Live');
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) { // refused (e.g. the session ended): start over
      es.close();
      setConn('wait', 'Reconnecting…');
      setTimeout(() => { if (app.es === es) loadFleet().catch(fail); }, 2000);
    } else setConn('wait', 'Reconnecting…');
  };
  es.addEventListener('drone', (e) => {
    app.events = (app.events || 0) + 1;
    try { fleet.apply(JSON.parse(e.data)); } catch (err) { console.warn('bad drone event', err); }
  });
  es.addEventListener('resync', () => { es.close(); loadFleet().catch(fail); });
  es.addEventListener('alert', (e) => { scheduleAlerts(); notifier.onAlert(e.data); });
}

function fail(err) {
  if (err instanceof AuthError) { showSignIn(); return; }
  setConn('down', 'Server unreachable — retrying');
  console.warn(err);
  setTimeout(() => loadFleet().catch(fail), 5000);
}

// ---------- batched UI refresh ----------
let uiTimer = 0;
fleet.onChange(() => { if (!uiTimer) uiTimer = setTimeout(refreshUI, fleet.drones.size > 1000 ? 1000 : 500); });
function refreshUI() {
  uiTimer = 0;
  renderSummary();
  list.refresh();
  renderDetail();
}
setInterval(() => { layer.tick(); refreshUI(); }, 5000); // silent is time-based
setInterval(() => { if (app.selected) renderSeen(); }, 1000);

function renderSummary() {
  const now = Date.now();
  const n = { ok: 0, low: 0, silent: 0 };
  for (const d of fleet.drones.values()) n[status(d, now)]++;
  $('n-ok').textContent = n.ok;
  $('n-low').textContent = n.low;
  $('n-silent').textContent = n.silent;
  $('fleet-count').textContent = fleet.drones.size;
}

// ---------- fleet list (virtualised: only the rows in view exist) ----------
const ROW = 56;
const collator = new Intl.Collator(undefined, { numeric: true }); // localeCompare with options is ~100x slower per call
const list = {
  rows: [], // filtered + sorted drones
  el: $('fleet-list'),
  inner: $('list-inner'),
  pool: new Map(),
  refresh() {
    const now = Date.now();
    const q = $('q').value.trim().toLowerCase();
    const f = $('filter').value;
    const by = $('sort').value;
    // Names rarely change: keep the name order and re-sort only when the fleet does.
    if (this.orderSize !== fleet.drones.size || fleet.renamed) {
      this.order = [...fleet.drones.values()].sort((a, b) => collator.compare(a.name, b.name));
      this.orderSize = fleet.drones.size;
      fleet.renamed = false;
    }
    const rows = [];
    for (const d of this.order) {
      const st = status(d, now);
      if (f !== 'all' && st !== f) continue;
      if (q && !d.name.toLowerCase().includes(q) && !d.id.toLowerCase().includes(q)) continue;
      rows.push({ d, st });
    }
    const order = { low: 0, silent: 1, ok: 2 };
    const batt = (r) => (typeof r.d.state?.battery === 'number' ? r.d.state.battery : 1e9);
    const cmp = {
      name: (a, b) => collator.compare(a.d.name, b.d.name),
      battery: (a, b) => batt(a) - batt(b),
      seen: (a, b) => a.d.t - b.d.t,
      status: (a, b) => order[a.st] - order[b.st] || collator.compare(a.d.name, b.d.name),
      speed: (a, b) => (speedOf(b.d.state) ?? -1) - (speedOf(a.d.state) ?? -1),
    }[by];
    if (by !== 'name') rows.sort(cmp);
    this.rows = rows;
    this.inner.style.height = `${rows.length * ROW}px`;
    $('shown').textContent = rows.length === fleet.drones.size ? `${rows.length} drones` : `${rows.length} of ${fleet.drones.size} drones`;
    this.draw(true);
  },
  draw(force) {
    const top = this.el.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW) - 4);
    const last = Math.min(this.rows.length, Math.ceil((top + this.el.clientHeight) / ROW) + 4);
    if (!force && first === this.first && last === this.last) return;
    this.first = first; this.last = last;
    const keep = new Set();
    const now = Date.now();
    for (let i = first; i < last; i++) {
      const { d, st } = this.rows[i];
      keep.add(d.id);
      let b = this.pool.get(d.id);
      if (!b) {
        b = document.createElement('button');
        b.type = 'button';
        b.className = 'drow';
        b.setAttribute('role', 'listitem');
        b.dataset.id = d.id;
        b.innerHTML = '<span class="dot" aria-hidden="true"></span><span class="nm"><b></b><small></small></span><span class="bt"><span class="bar" aria-hidden="true"><i></i></span><small></small></span>';
        this.inner.appendChild(b);
        this.pool.set(d.id, b);
      }
      b.style.transform = `translateY(${i * ROW}px)`;
      const s = d.state;
      const key = `${st}|${d.name}|${Math.round(s?.battery ?? -1)}|${Math.round((now - d.t) / 5000)}|${app.selected === d.id}|${Math.round(speedOf(s) ?? -1)}`;
      if (b._key !== key) {
        b._key = key;
        b.className = `drow s-${st}${app.selected === d.id ? ' selected' : ''}`;
        b.querySelector('b').textContent = d.name;
        b.querySelector('.nm small').textContent = st === 'silent' ? `silent · ${fmt.ago(now - d.t)}` : `${fmt.num(speedOf(s), 'm/s', 1)} · ${fmt.num(s?.alt, 'm')}`;
        const bv = s?.battery;
        b.querySelector('.bar i').style.width = `${Math.max(0, Math.min(100, bv ?? 0))}%`;
        b.querySelector('.bt small').textContent = fmt.battery(bv);
        b.setAttribute('aria-label', `${d.name}: ${STATUS_LABEL[st]}, battery ${fmt.battery(bv)}`);
        if (app.selected === d.id) b.setAttribute('aria-current', 'true'); else b.removeAttribute('aria-current');
      }
    }
    for (const [id, b] of this.pool) if (!keep.has(id)) { if (document.activeElement === b) this.el.focus(); b.remove(); this.pool.delete(id); }
  },
};
list.el.addEventListener('scroll', () => requestAnimationFrame(() => list.draw(false)), { passive: true });
list.inner.addEventListener('click', (e) => {
  const b = e.target.closest('.drow');
  if (b) select(b.dataset.id, {});
});
list.el.addEventListener('keydown', (e) => {
  if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp' && e.key !== 'Home' && e.key !== 'End') return;
  const cur = document.activeElement?.closest?.('.drow');
  let i = cur ? list.rows.findIndex((r) => r.d.id === cur.dataset.id) : -1;
  if (e.key === 'ArrowDown') i = Math.min(list.rows.length - 1, i + 1);
  else if (e.key === 'ArrowUp') i = Math.max(0, i - 1);
  else if (e.key === 'Home') i = 0;
  else i = list.rows.length - 1;
  if (i < 0) return;
  e.preventDefault();
  const top = i * ROW;
  if (top < list.el.scrollTop) list.el.scrollTop = top;
  else if (top + ROW > list.el.scrollTop + list.el.clientHeight) list.el.scrollTop = top + ROW - list.el.clientHeight;
  list.draw(true);
  list.pool.get(list.rows[i].d.id)?.focus();
});
for (const id of ['q', 'filter', 'sort']) $(id).addEventListener('input', () => { list.el.scrollTop = 0; list.refresh(); });

// ---------- selection + detail ----------
// ---------- flights ----------
const nameOf = (droneId) => fleet.drones.get(droneId)?.name || droneId;
const flightView = new FlightView(map, {
  getJSON, nameOf,
  onOpen: () => { app.follow = false; $('d-follow').checked = false; },
  onClose: () => { if (app.selected) $('detail').hidden = false; },
});
app.flightView = flightView;
async function openFlight(id) {
  try {
    clearTrack();
    await flightView.open(id);
  } catch (err) {
    if (err instanceof AuthError) { showSignIn(); return; }
    console.warn(err);
  }
}
app.openFlight = openFlight;
const iso = (ms) => new Date(ms).toISOString();
async function loadDroneFlights(id) {
  const ul = $('d-flight-list');
  ul.replaceChildren();
  $('d-flight-note').textContent = 'Loading…';
  try {
    const now = Date.now();
    const q = new URLSearchParams({ from: iso(now - 7 * 86400_000), to: iso(now + 3600_000), limit: '50' });
    const body = await (await getJSON(`/api/v1/drones/${encodeURIComponent(id)}/flights?${q}`)).json();
    if (app.selected !== id) return;
    flightList(ul, body.flights || [], nameOf, openFlight);
    // Late reports wait for the drone's flights to be recomputed
    // (replayOwed): say which flights may still change.
    const owed = body.replayOwed ? `Late reports arrived: flights since ${new Date(body.replayOwed.from).toLocaleString()} are being recomputed.` : '';
    $('d-flight-note').textContent = [body.flights?.length ? '' : 'No flights in the last 7 days.', owed].filter(Boolean).join(' ');
  } catch (err) {
    if (err instanceof AuthError) return;
    console.warn(err);
    $('d-flight-note').textContent = 'Flights unavailable.';
  }
}
let fleetRange = 'today';
let fleetLoads = 0; // a range chosen while a load runs wins over that load's answer
async function loadFleetFlights() {
  const seq = ++fleetLoads;
  const now = new Date();
  const from = fleetRange === 'today' ? new Date(now.getFullYear(), now.getMonth(), now.getDate()) : new Date(now.getTime() - 7 * 86400_000);
  $('fl-note').textContent = 'Loading…';
  try {
    const q = new URLSearchParams({ from: from.toISOString(), to: iso(now.getTime() + 3600_000), limit: '500' });
    const body = await (await getJSON(`/api/v1/flights?${q}`)).json();
    if (seq !== fleetLoads) return;
    flightList($('fl-fleet'), body.flights || [], nameOf, openFlight);
    const n = body.flights?.length || 0;
    $('fl-note').textContent = n ? `${n} flight${n === 1 ? '' : 's'}` : 'No flights.';
  } catch (err) {
    if (err instanceof AuthError || seq !== fleetLoads) return;
    console.warn(err);
    $('fl-note').textContent = 'Flights unavailable.';
  }
}
for (const b of document.querySelectorAll('#panel-flights .chip')) {
  b.addEventListener('click', () => {
    fleetRange = b.dataset.range;
    for (const x of document.querySelectorAll('#panel-flights .chip')) x.setAttribute('aria-pressed', String(x === b));
    loadFleetFlights();
  });
}

function select(id, { fromMap } = {}) {
  if (!fleet.drones.has(id)) return;
  if (app.selected !== id) clearTrack();
  app.selected = id;
  app.follow = true;
  $('d-follow').checked = true;
  layer.select(id);
  $('detail').hidden = false;
  document.body.classList.add('has-detail');
  const d = fleet.drones.get(id);
  if (d.state) map.setView([d.state.lat, d.state.lon], Math.max(map.getZoom(), 15), { animate: !fromMap });
  setHistoryRange(15);
  renderDetail();
  loadDroneFlights(id);
  list.refresh();
  if (!fromMap) $('d-close').focus({ preventScroll: true });
}
app.select = select;

function closeDetail() {
  const id = app.selected;
  app.selected = null;
  clearTrack();
  layer.select(null);
  $('detail').hidden = true;
  document.body.classList.remove('has-detail');
  list.refresh();
  list.pool.get(id)?.focus();
}
$('d-close').addEventListener('click', closeDetail);
document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && app.selected) closeDetail(); });
$('d-follow').addEventListener('change', (e) => {
  app.follow = e.target.checked;
  if (app.follow) followSelected();
});

function followSelected() {
  const d = app.selected && fleet.drones.get(app.selected);
  if (d?.state && !app.track?.playing) {
    const ll = L.latLng(d.state.lat, d.state.lon);
    const b = map.getBounds();
    // Pan only when the drone leaves the middle of the view, so the map isn't in constant motion.
    const inner = L.latLngBounds(
      [b.getSouth() + (b.getNorth() - b.getSouth()) * 0.2, b.getWest() + (b.getEast() - b.getWest()) * 0.2],
      [b.getNorth() - (b.getNorth() - b.getSouth()) * 0.2, b.getEast() - (b.getEast() - b.getWest()) * 0.2]);
    if (!inner.contains(ll)) map.panTo(ll, { animate: true, duration: 0.5 });
  }
}

function renderSeen() {
  const d = fleet.drones.get(app.selected);
  if (d) $('d-seen').textContent = d.t ? `${fmt.ago(Date.now() - d.t)}` : 'never';
}

function renderDetail() {
  if (!app.selected) return;
  const d = fleet.drones.get(app.selected);
  if (!d) { closeDetail(); return; }
  const s = d.state;
  const st = status(d, Date.now());
  $('d-name').textContent = d.name;
  $('d-id').textContent = d.id;
  $('d-dot').className = `dot big s-${st}`;
  $('d-status').textContent = STATUS_LABEL[st];
  $('d-status').className = `s-text s-${st}`;
  renderSeen();
  $('d-batt').textContent = fmt.battery(s?.battery);
  const bar = $('d-batt-bar');
  bar.style.width = `${Math.max(0, Math.min(100, s?.battery ?? 0))}%`;
  bar.className = lowBattery(s?.battery) ? 'lowbar' : '';
  $('d-tte').textContent = fmt.duration(s?.timeToEmptySecs);
  $('d-armed').textContent = fmt.armed(s?.armed);
  $('d-armed').className = s?.armed === true ? 'armed' : '';
  $('d-mode').textContent = s?.mode ?? '—';
  $('d-gps').textContent = fmt.gps(s);
  $('d-link').textContent = fmt.pct(s?.link);
  $('d-alt').textContent = fmt.num(s?.alt, 'm', 1);
  $('d-height').textContent = fmt.num(s?.height, 'm', 1);
  $('d-hae').textContent = fmt.num(s?.hae, 'm', 1);
  $('d-vspeed').textContent = fmt.climb(s?.vspeed);
  $('d-speed').textContent = fmt.speed(speedOf(s));
  $('d-heading').textContent = fmt.heading(headingOf(s));
  $('d-pos').textContent = fmt.pos(s);
  $('d-home').textContent = s?.home ? `${fmt.pos(s.home)}${typeof s.home.alt === 'number' ? ` · ${s.home.alt.toFixed(0)} m MSL` : ''}` : '—';
  const mine = app.alerts.filter((a) => a.droneId === d.id);
  const box = $('d-alerts');
  box.replaceChildren();
  if (mine.length) {
    const h = document.createElement('h3');
    h.textContent = `Open alerts (${mine.length})`;
    const ul = document.createElement('ul');
    ul.className = 'alerts compact';
    for (const a of mine) ul.appendChild(alertItem(a, false));
    box.append(h, ul);
  }
  if (app.follow) followSelected();
}

// ---------- history ----------
const pad = (n) => String(n).padStart(2, '0');
const localInput = (t) => { const d = new Date(t); return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`; };
function setHistoryRange(minutes) {
  const now = Date.now();
  $('h-from').value = localInput(now - minutes * 60_000);
  $('h-to').value = localInput(now + 60_000);
}
for (const b of document.querySelectorAll('.h-quick .chip')) b.addEventListener('click', () => { setHistoryRange(Number(b.dataset.min)); loadTrack(); });
$('h-form').addEventListener('submit', (e) => { e.preventDefault(); loadTrack(); });

function clearTrack() {
  const tr = app.track;
  if (!tr) return;
  tr.playing = false;
  tr.line.remove(); tr.done.remove(); tr.cursor.remove();
  app.track = null;
  $('replay').hidden = true;
  $('h-play').textContent = 'Play';
  $('h-play').setAttribute('aria-pressed', 'false');
}

async function loadTrack() {
  const id = app.selected;
  if (!id) return;
  const from = new Date($('h-from').value), to = new Date($('h-to').value);
  if (!(from < to)) { $('h-info').textContent = 'Choose a start before the end.'; $('replay').hidden = false; return; }
  clearTrack();
  $('h-load').disabled = true;
  $('h-info').textContent = 'Loading…';
  const pts = [];
  try {
    let after = '';
    for (let page = 0; page < 40; page++) {
      const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), limit: '5000' });
      if (after) q.set('after', after);
      const body = await (await getJSON(`/api/v1/drones/${encodeURIComponent(id)}/track?${q}`)).json();
      for (const p of body.points || []) pts.push({ t: Date.parse(p.ts), ll: [p.lat, p.lon], p });
      if (!body.next) break;
      after = body.next;
    }
  } catch (err) {
    console.warn(err);
    $('h-info').textContent = 'Could not load the track.';
    $('replay').hidden = false;
    return;
  } finally {
    $('h-load').disabled = false;
  }
  if (app.selected !== id) return;
  $('replay').hidden = false;
  if (!pts.length) { $('h-info').textContent = 'No positions in this range.'; return; }
  const lls = pts.map((p) => p.ll);
  const line = L.polyline(lls, { color: '#38bdf8', weight: 3, opacity: 0.55, interactive: false }).addTo(map);
  const done = L.polyline([], { color: '#f0abfc', weight: 4, opacity: 0.95, interactive: false }).addTo(map);
  const cursor = L.circleMarker(lls[lls.length - 1], { radius: 7, color: '#fff', weight: 2, fillColor: '#f0abfc', fillOpacity: 1, interactive: false }).addTo(map);
  app.track = { id, pts, line, done, cursor, playing: false, pos: 1 };
  app.follow = false; $('d-follow').checked = false;
  map.fitBounds(line.getBounds().pad(0.15), { maxZoom: 17 });
  $('h-slider').value = '1000';
  showReplay(1);
}

function showReplay(frac) {
  const tr = app.track;
  if (!tr) return;
  const { pts } = tr;
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
  const t = t0 + (t1 - t0) * frac;
  let lo = 0, hi = pts.length - 1;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (pts[mid].t <= t) lo = mid; else hi = mid - 1; }
  const a = pts[lo], b = pts[Math.min(lo + 1, pts.length - 1)];
  const k = b.t > a.t ? (t - a.t) / (b.t - a.t) : 0;
  const ll = [a.ll[0] + (b.ll[0] - a.ll[0]) * k, a.ll[1] + (b.ll[1] - a.ll[1]) * k];
  tr.pos = frac;
  tr.cursor.setLatLng(ll);
  tr.done.setLatLngs([...pts.slice(0, lo + 1).map((p) => p.ll), ll]);
  const p = a.p;
  $('h-info').textContent = `${pts.length} positions · ${new Date(t).toLocaleString()} · ${fmt.num(p.alt, 'm')} · ${fmt.battery(p.battery)}`;
}

$('h-slider').addEventListener('input', (e) => { if (app.track) { app.track.playing = false; setPlay(false); showReplay(Number(e.target.value) / 1000); } });
function setPlay(on) {
  $('h-play').textContent = on ? 'Pause' : 'Play';
  $('h-play').setAttribute('aria-pressed', String(on));
}
$('h-play').addEventListener('click', () => {
  const tr = app.track;
  if (!tr) return;
  tr.playing = !tr.playing;
  setPlay(tr.playing);
  if (!tr.playing) return;
  if (tr.pos >= 1) tr.pos = 0;
  let last = performance.now();
  const span = Math.max(1, tr.pts[tr.pts.length - 1].t - tr.pts[0].t);
  const step = (now) => {
    if (!tr.playing || app.track !== tr) return;
    const dt = now - last; last = now;
    const speed = Number($('h-speed').value);
    const frac = Math.min(1, tr.pos + (dt * speed) / span);
    showReplay(frac);
    $('h-slider').value = String(Math.round(frac * 1000));
    if (frac >= 1) { tr.playing = false; setPlay(false); return; }
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
});

// ---------- alerts ----------
const KIND_LABEL = { 'battery.low': 'Battery low', 'battery.exhaustion': 'Battery nearly empty', 'geofence.breach': 'Geofence breach', 'link.lost': 'Link lost' };
function alertItem(a, withJump) {
  const li = document.createElement('li');
  const acked = Boolean(a.acknowledgedAt || a.ackedAt);
  const critical = a.kind === 'battery.exhaustion' || a.kind === 'link.lost' || a.kind === 'geofence.breach';
  li.className = `alert ${critical ? 'sev-critical' : 'sev-warning'}${acked ? ' acked' : ''}`;
  li.dataset.id = a.id;
  const d = fleet.drones.get(a.droneId);
  const title = document.createElement('b');
  title.textContent = KIND_LABEL[a.kind] || a.kind || 'Alert';
  const msg = document.createElement('p');
  msg.textContent = a.message || '';
  const when = document.createElement('small');
  const opened = Date.parse(a.openedAt);
  when.textContent = `${d ? d.name : a.droneId} · opened ${isFinite(opened) ? fmt.ago(Date.now() - opened) : ''}${acked ? ` · acknowledged${a.acknowledgedBy ? ' by ' + a.acknowledgedBy : ''}` : ''}`;
  const actions = document.createElement('div');
  actions.className = 'actions';
  if (withJump) {
    const jump = document.createElement('button');
    jump.type = 'button'; jump.className = 'btn'; jump.textContent = 'Show drone';
    jump.setAttribute('aria-label', `Show ${d ? d.name : a.droneId} on the map`);
    jump.disabled = !d;
    jump.addEventListener('click', () => select(a.droneId, {}));
    actions.appendChild(jump);
  }
  if (app.ackSupported && !acked) {
    const ack = document.createElement('button');
    ack.type = 'button'; ack.className = 'btn primary ack'; ack.textContent = 'Acknowledge';
    ack.setAttribute('aria-label', `Acknowledge ${a.kind || 'alert'} on ${d ? d.name : a.droneId}`);
    ack.addEventListener('click', () => acknowledge(a, ack));
    actions.appendChild(ack);
  }
  li.append(title, msg, when, actions);
  return li;
}

async function acknowledge(a, btn) {
  btn.disabled = true;
  try {
    const r = await fetch(`/api/v1/alerts/${encodeURIComponent(a.id)}/ack`, {
      method: 'POST', credentials: 'same-origin', headers: { Accept: 'application/json', 'X-CSRF-Token': csrfToken() },
    });
    if (!r.ok) throw new Error(`ack ${a.id}: HTTP ${r.status}`);
    app.acked = (app.acked || 0) + 1;
    await loadAlerts();
  } catch (err) {
    console.warn(err);
    btn.disabled = false;
    $('alerts-note').textContent = 'Could not acknowledge; try again.';
  }
}

// The alert list's shape comes from the OpenAPI document: the array property
// of GET /api/v1/alerts' 200 schema (today {alerts: [...]}).
async function loadOpenAPI() {
  try {
    const doc = await (await getJSON('/api/v1/openapi.json')).json();
    const paths = doc.paths || {};
    app.ackSupported = Boolean(paths['/api/v1/alerts/{id}/ack']?.post);
    app.authEnabled = Boolean(paths['/api/v1/auth/login']?.post);
    let schema = paths['/api/v1/alerts']?.get?.responses?.['200']?.content?.['application/json']?.schema;
    if (schema?.$ref) schema = schema.$ref.split('/').slice(1).reduce((o, k) => o?.[k], doc);
    if (schema?.type === 'array') app.alertsKey = '';
    else if (schema?.properties) app.alertsKey = Object.keys(schema.properties).find((k) => schema.properties[k].type === 'array') || 'alerts';
  } catch (err) { console.warn('openapi', err); }
}

let alertsTimer = 0;
function scheduleAlerts() { if (!alertsTimer) alertsTimer = setTimeout(() => { alertsTimer = 0; loadAlerts(); }, 300); }
async function loadAlerts() {
  try {
    const body = await (await getJSON('/api/v1/alerts')).json();
    const all = (app.alertsKey ? body[app.alertsKey] : body) || [];
    app.alerts = all.filter((a) => !a.closedAt && !a.resolvedAt);
  } catch (err) {
    if (err instanceof AuthError) return;
    console.warn(err);
    $('alerts-note').textContent = 'Alerts unavailable.';
    return;
  }
  renderAlerts();
  renderDetail();
  loadAlertSettings();
}

// The tenant's alert settings (every member may read them) decide when a
// drone shows as low; they are read at start, with each alert change (a
// manager changing the threshold is followed by alerts opening or closing)
// and every SETTINGS_POLL_MS, so a change needs no reload.
const SETTINGS_POLL_MS = 15_000; // a change shows within this even when no alert opens or closes
async function loadAlertSettings() {
  try {
    const s = await (await getJSON('/api/v1/alert-settings')).json();
    app.alertSettings = s;
    if (setAlertSettings(s)) { layer.tick(); refreshUI(); }
  } catch (err) {
    if (!(err instanceof AuthError)) console.warn('alert settings', err);
  }
}
setInterval(() => { if (app.ready) loadAlertSettings(); }, SETTINGS_POLL_MS);
const ALERTS_SHOWN = 200;
function renderAlerts() {
  const ul = $('alerts');
  // Newest first; a long list is capped (the count says how many are open).
  const shown = [...app.alerts].sort((a, b) => Date.parse(b.openedAt) - Date.parse(a.openedAt)).slice(0, ALERTS_SHOWN);
  ul.replaceChildren(...shown.map((a) => alertItem(a, true)));
  $('alert-count').textContent = app.alerts.length;
  $('alert-count').classList.toggle('hot', app.alerts.length > 0);
  const unacked = app.alerts.filter((a) => !a.acknowledgedAt && !a.ackedAt).length;
  $('alert-count').textContent = unacked;
  $('alert-count').classList.toggle('hot', unacked > 0);
  $('alerts-note').textContent = app.alerts.length ? `${app.alerts.length} open, ${unacked} not acknowledged` : 'No open alerts. All clear.';
}
$('alerts-refresh').addEventListener('click', () => loadAlerts());

// ---------- tabs + side panel ----------
const tabs = [$('tab-fleet'), $('tab-alerts'), $('tab-fences'), $('tab-flights')];
function showTab(t) {
  for (const x of tabs) {
    const on = x === t;
    x.setAttribute('aria-selected', String(on));
    x.tabIndex = on ? 0 : -1;
    $(x.getAttribute('aria-controls')).hidden = !on;
  }
  if (t === tabs[0]) list.draw(true);
  if (t === tabs[2]) fences.opened(); // a manager's drawing tools load now
  if (t === tabs[3]) loadFleetFlights();
}
for (const t of tabs) {
  t.addEventListener('click', () => showTab(t));
  t.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    const n = tabs[(tabs.indexOf(t) + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
    showTab(n); n.focus();
  });
}
app.showTab = (name) => showTab(tabs.find((t) => t.id === `tab-${name}`) || tabs[0]);

// ---------- desktop notifications (notify.js) ----------
const notifier = new Notifier({
  panel: $('panel-alerts'),
  droneName: (id) => fleet.drones.get(id)?.name || id,
  onOpen: (id) => select(id),
});
app.notifier = notifier;
$('toggle-side').addEventListener('click', () => {
  const hide = !document.body.classList.contains('side-hidden');
  document.body.classList.toggle('side-hidden', hide);
  $('toggle-side').setAttribute('aria-expanded', String(!hide));
  setTimeout(() => map.invalidateSize(), 250);
});
if (matchMedia('(max-width: 720px)').matches) { document.body.classList.add('side-hidden'); $('toggle-side').setAttribute('aria-expanded', 'false'); }

// ---------- sign-in (when the API answers 401) ----------
function showSignIn() {
  if (app.es) { app.es.close(); app.es = null; }
  setConn('down', 'Signed out');
  $('signout').hidden = true;
  $('signin').hidden = false;
  $('si-email').focus();
}
$('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('si-submit').disabled = true;
  $('si-error').textContent = '';
  try {
    const r = await fetch('/api/v1/auth/login', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ email: $('si-email').value, password: $('si-password').value }),
    });
    if (!r.ok) {
      $('si-error').textContent = r.status === 429 ? 'Too many attempts; wait a minute.' : 'Wrong email or password.';
      return;
    }
    app.csrf = (await r.json()).csrfToken || '';
    $('si-password').value = '';
    $('signin').hidden = true;
    start();
  } catch (err) {
    console.warn(err);
    $('si-error').textContent = 'Server unreachable.';
  } finally {
    $('si-submit').disabled = false;
  }
});
$('signout').addEventListener('click', async () => {
  try { await fetch('/api/v1/auth/logout', { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': csrfToken() } }); } catch { /* signed out anyway */ }
  location.reload();
});

// loadRole says whether the user may change geofences: owners and admins
// may, viewers see them read-only. Without accounts everyone manages.
async function loadRole() {
  if (!app.authEnabled) return true;
  try {
    const me = await (await getJSON('/api/v1/me')).json();
    app.role = me.user?.role || 'viewer';
  } catch (err) {
    console.warn('role', err);
    app.role = 'viewer';
  }
  return app.role !== 'viewer';
}

// ---------- start ----------
async function start() {
  if (!app.openapi) { await loadOpenAPI(); app.openapi = true; }
  // With accounts on, a signed-in browser holds the (readable) CSRF cookie
  // next to its session: without it, ask to sign in instead of provoking a 401.
  if (app.authEnabled && !csrfToken()) throw new AuthError('sign in needed');
  await loadAlertSettings();
  await loadFleet();
  $('signout').hidden = !app.authEnabled;
  loadAlerts();
  loadRole().then((canEdit) => fences.load(canEdit));
  refreshUI();
  app.ready = true;
}
start().catch(fail);
