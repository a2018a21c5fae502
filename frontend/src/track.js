// The public tracking page (/t/TOKEN): one drone's flight for someone
// without an account. Its own small bundle (Leaflet and this file), built
// apart from the fleet app. Data: GET /api/v1/t/TOKEN once (label,
// destination, state, track since the link began), then the SSE stream
// /api/v1/t/TOKEN/stream ("position", and "end" when the link is revoked,
// expired or the flight is over). It sends no cookies and reads none.
import 'leaflet/dist/leaflet.css';
import './track.css';
import L from 'leaflet';

const $ = (id) => document.getElementById(id);
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute('content') ?? '';
const token = decodeURIComponent(location.pathname.split('/')[2] || '');
const api = `/api/v1/t/${encodeURIComponent(token)}`;

// Page state, for the browser tests.
const app = { ready: false, status: meta('dronetrack:link-status') || 'live', state: null, track: [], positions: 0, opens: 0 };
window.dronetrack = app;

function showGone(title, text) {
  app.status = 'gone';
  if (app.es) { app.es.close(); app.es = null; }
  clearTimeout(app.retry);
  $('gone-title').textContent = title;
  $('gone-text').textContent = text;
  $('gone').hidden = false;
  $('card').hidden = true;
  document.title = `${title} · Dronetrack`;
}

function setConn(kind, text) {
  $('conn').className = `conn ${kind}`;
  $('conn-text').textContent = text;
}

// ---------- formatting ----------
const clock = (d) => d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
function distance(m) { return m >= 1000 ? `${(m / 1000).toFixed(m >= 10000 ? 0 : 1)} km` : `${Math.round(m)} m`; }
function duration(s) {
  if (s < 60) return 'under a minute';
  const min = Math.round(s / 60);
  return min < 60 ? `in about ${min} min` : `in about ${Math.floor(min / 60)} h ${min % 60} min`;
}
function ago(ts) {
  const s = Math.max(0, Math.round((Date.now() - new Date(ts).getTime()) / 1000));
  return s < 5 ? 'just now' : s < 90 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

// ---------- map ----------
let map = null, droneMark = null, line = null, destMark = null, follow = true;

function initMap() {
  // Attribution on top: the card covers the bottom of a phone's screen.
  map = L.map('map', { zoomControl: false, attributionControl: false, minZoom: 3, maxZoom: 19 }).setView([47.3769, 8.5417], 14);
  L.control.attribution({ position: 'topleft', prefix: false }).addTo(map);
  L.control.zoom({ position: 'topright' }).addTo(map);
  const tileURL = meta('dronetrack:tiles');
  if (tileURL) L.tileLayer(tileURL, { maxZoom: 19, attribution: meta('dronetrack:tiles-attribution') }).addTo(map);
  line = L.polyline([], { color: '#38bdf8', weight: 4, opacity: 0.8, interactive: false }).addTo(map);
  map.on('dragstart', () => setFollow(false));
  $('follow').addEventListener('click', () => { setFollow(!follow); if (follow) centre(); });
}

function setFollow(on) {
  follow = on;
  $('follow').setAttribute('aria-pressed', String(on));
  $('follow').textContent = on ? 'Following the drone' : 'Follow the drone';
}

// centre keeps the drone in view, and the destination with it, above the
// card.
function centre() {
  if (!app.state || !map) return;
  const here = L.latLng(app.state.lat, app.state.lon);
  const pad = { paddingTopLeft: [30, 50], paddingBottomRight: [30, $('card').offsetHeight + 30], maxZoom: 16, animate: false };
  if (app.dest) map.fitBounds(L.latLngBounds([here, app.dest]), pad);
  else map.fitBounds(L.latLngBounds([here, here]), pad);
}

// ---------- rendering ----------
// textNode wraps the sender's text for Leaflet, which puts a string
// tooltip in as HTML: the label is shown to strangers and stays text.
function textNode(text) {
  const el = document.createElement('span');
  el.textContent = text;
  return el;
}

function renderView(v) {
  $('card').hidden = false; // first: the map frames the flight above it
  $('label').textContent = v.label;
  document.title = `${v.label} · live tracking`;
  if (v.destination) {
    $('f-dest').hidden = false;
    $('dest').textContent = v.destination.label || `${v.destination.lat.toFixed(5)}, ${v.destination.lon.toFixed(5)}`;
    app.dest = L.latLng(v.destination.lat, v.destination.lon);
    if (!destMark) {
      destMark = L.circleMarker([v.destination.lat, v.destination.lon], { radius: 9, color: '#f59e0b', weight: 3, fillColor: '#0b1220', fillOpacity: 1 })
        .bindTooltip(textNode(v.destination.label || 'Destination'), { permanent: false }).addTo(map);
    }
  }
  const until = new Date(v.expiresAt);
  $('until').textContent = v.mode === 'flight'
    ? `Shared until this flight ends (at the latest ${until.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' })}).`
    : `Shared until ${until.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' })}.`;
  app.track = v.track.map((p) => [p.lat, p.lon]);
  line.setLatLngs(app.track);
  app.lastTS = v.track.length ? v.track[v.track.length - 1].ts : '';
  if (v.state) renderState(v.state, false);
  else setConn('wait', 'Waiting for the drone…');
  // Frame the flight once; a reload after a reconnect keeps the view.
  const pts = [...app.track];
  if (v.state) pts.push([v.state.lat, v.state.lon]);
  if (v.destination) pts.push([v.destination.lat, v.destination.lon]);
  if (!app.framed && pts.length > 0) {
    app.framed = true;
    map.fitBounds(L.latLngBounds(pts), { paddingTopLeft: [30, 50], paddingBottomRight: [30, $('card').offsetHeight + 30], maxZoom: 16, animate: false });
  }
}

function renderState(st, addToTrack) {
  app.state = st;
  const ll = [st.lat, st.lon];
  if (!droneMark) {
    droneMark = L.circleMarker(ll, { radius: 9, color: '#ffffff', weight: 3, fillColor: '#38bdf8', fillOpacity: 1 }).addTo(map);
  } else droneMark.setLatLng(ll);
  if (addToTrack && st.ts > (app.lastTS || '')) {
    app.track.push(ll);
    line.addLatLng(ll);
    app.lastTS = st.ts;
  }
  if (follow) centre();
  $('speed').textContent = st.groundSpeed != null ? `${Math.round(st.groundSpeed * 3.6)} km/h` : '–';
  $('alt').textContent = st.alt != null ? `${Math.round(st.alt)} m` : '–';
  app.seenTS = st.ts;
  $('seen').textContent = ago(st.ts);
  if (st.distanceM != null) { $('f-dist').hidden = false; $('dist').textContent = distance(st.distanceM); }
  if (st.distanceM != null) {
    $('f-eta').hidden = false;
    $('eta').textContent = st.etaSecs != null
      ? `${duration(st.etaSecs)} (${clock(new Date(Date.now() + st.etaSecs * 1000))})`
      : st.distanceM < 30 ? 'arriving' : 'waiting for the drone to move';
  }
}
setInterval(() => { if (app.seenTS) $('seen').textContent = ago(app.seenTS); }, 5000);

// ---------- data ----------
async function problemOf(r) {
  try { return await r.json(); } catch { return {}; }
}

// load fetches the view; it answers whether the link is live.
async function load() {
  let r;
  try {
    r = await fetch(api, { credentials: 'omit', headers: { Accept: 'application/json' }, cache: 'no-store' });
  } catch {
    return later(3000);
  }
  if (r.ok) {
    renderView(await r.json());
    app.ready = true;
    return true;
  }
  const p = await problemOf(r);
  if (r.status === 410 || r.status === 404) {
    showGone(p.title || 'This tracking link has ended', p.detail || '');
    return false;
  }
  const wait = Number(r.headers.get('Retry-After')) || 3;
  setConn('down', r.status === 429 ? 'Busy, retrying…' : 'Reconnecting…');
  return later(wait * 1000);
}

function later(ms) {
  clearTimeout(app.retry);
  app.retry = setTimeout(start, ms);
  return false;
}

function openStream() {
  const es = new EventSource(`${api}/stream`);
  app.es = es;
  es.onopen = () => {
    app.opens++;
    setConn('live', 'Live');
    // After a reconnect the track may have missed points: reload it.
    if (app.opens > 1) load();
  };
  es.addEventListener('position', (e) => {
    app.positions++;
    renderState(JSON.parse(e.data), true);
    setConn('live', 'Live');
  });
  es.addEventListener('end', () => {
    es.close();
    app.es = null;
    // The view's 410 says why, in the server's words.
    load();
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) {
      // Refused (410, 429, 5xx): ask the view why, then retry or stop.
      app.es = null;
      setConn('down', 'Reconnecting…');
      later(2000);
    } else setConn('wait', 'Reconnecting…');
  };
}

async function start() {
  if (await load()) openStream();
}

if (app.status === 'live') {
  initMap();
  start();
}
