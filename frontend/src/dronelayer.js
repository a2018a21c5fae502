// DroneLayer draws the fleet on a Leaflet map: one DivIcon marker per drone,
// rotated to its heading and coloured by status, or grid clusters when more
// drones are in view than a person can read. Updates are batched: the fleet
// marks drones dirty, and one animation frame moves the visible markers; the
// clustering itself is recomputed at most a few times a second.
import L from 'leaflet';
import { status, headingOf, STATUS_LABEL } from './fleet.js';

const INDIVIDUAL_MAX = 300; // at most this many single markers before clustering
const CELL = 64; // cluster grid, screen pixels
const FULL_EVERY_MS = 400; // recluster at most this often while data flows

const ARROW = '<svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true" focusable="false"><path d="M12 2.5 19.5 20.5 12 16.3 4.5 20.5z"/></svg>';

export class DroneLayer {
  constructor(map, fleet, onSelect) {
    this.map = map;
    this.fleet = fleet;
    this.onSelect = onSelect;
    this.single = new Map(); // id -> marker
    this.clusters = []; // pooled cluster markers
    this.selected = null;
    this.needFull = true;
    this.lastFull = 0;
    this.frame = 0;
    this.timer = 0;
    this.fullDue = false;
    this.now = Date.now();
    this.stats = { frames: 0, fullRenders: 0, moved: 0 };
    map.on('moveend zoomend resize', () => { this.needFull = true; this.schedule(); });
    fleet.onChange(() => this.schedule());
  }

  select(id) {
    const prev = this.selected;
    this.selected = id;
    for (const x of [prev, id]) {
      const m = x && this.single.get(x);
      if (m) this.paint(m, this.fleet.drones.get(x));
    }
    this.needFull = true;
    this.schedule();
  }

  /** tick re-evaluates time-based status (silent) without new data. */
  tick() { this.needFull = true; this.schedule(); }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  render() {
    this.frame = 0;
    this.now = Date.now();
    this.stats.frames++;
    const dirty = this.fleet.takeDirty();
    const t = performance.now();
    if (dirty.size) this.fullDue = true;
    if (this.needFull || (this.fullDue && t - this.lastFull >= FULL_EVERY_MS)) {
      this.full();
      this.lastFull = t;
      this.needFull = this.fullDue = false;
      return;
    }
    // Between full passes, move the single markers in place; drones entering
    // the view and cluster counts catch up on the next full pass.
    for (const id of dirty) {
      const m = this.single.get(id);
      const d = this.fleet.drones.get(id);
      if (m && d && d.state) { this.move(m, d); this.stats.moved++; }
    }
    if (this.fullDue && !this.timer) {
      this.timer = setTimeout(() => { this.timer = 0; this.schedule(); }, FULL_EVERY_MS - (t - this.lastFull));
    }
  }

  full() {
    this.stats.fullRenders++;
    const map = this.map;
    const zoom = map.getZoom();
    const b = map.getBounds().pad(0.25);
    const south = b.getSouth(), north = b.getNorth(), west = b.getWest(), east = b.getEast();
    const visible = [];
    for (const d of this.fleet.drones.values()) {
      const s = d.state;
      if (s && s.lat >= south && s.lat <= north && s.lon >= west && s.lon <= east) visible.push(d);
    }
    const wantSingle = new Set();
    const groups = [];
    if (visible.length <= INDIVIDUAL_MAX || zoom >= map.getMaxZoom()) {
      for (const d of visible) wantSingle.add(d.id);
    } else {
      const cells = new Map();
      const scale = 256 * Math.pow(2, zoom);
      for (const d of visible) {
        if (d.id === this.selected) { wantSingle.add(d.id); continue; }
        // Web Mercator pixels at this zoom, without allocating a Point per drone.
        const sin = Math.sin((d.state.lat * Math.PI) / 180);
        const px = ((d.state.lon + 180) / 360) * scale;
        const py = (0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)) * scale;
        const key = Math.floor(px / CELL) * 1048583 + Math.floor(py / CELL);
        let g = cells.get(key);
        if (!g) { g = []; cells.set(key, g); }
        g.push(d);
      }
      for (const g of cells.values()) {
        if (g.length === 1) wantSingle.add(g[0].id); else groups.push(g);
      }
    }
    if (this.selected && this.fleet.drones.get(this.selected)?.state) wantSingle.add(this.selected);

    for (const [id, m] of this.single) {
      if (!wantSingle.has(id)) { m.remove(); this.single.delete(id); }
    }
    for (const id of wantSingle) {
      const d = this.fleet.drones.get(id);
      let m = this.single.get(id);
      if (!m) { m = this.create(d); this.single.set(id, m); } else this.move(m, d);
    }
    this.drawClusters(groups);
  }

  create(d) {
    const m = L.marker([d.state.lat, d.state.lon], {
      icon: L.divIcon({ className: 'drone-icon', html: `<div class="drone">${ARROW}</div>`, iconSize: [28, 28], iconAnchor: [14, 14] }),
      keyboard: true,
      riseOnHover: true,
    });
    m._droneId = d.id;
    m.on('click', () => this.onSelect(d.id));
    m.addTo(this.map);
    const el = m.getElement();
    el.setAttribute('role', 'button');
    el.dataset.id = d.id;
    m._inner = el.firstChild;
    m._key = '';
    this.paint(m, d);
    return m;
  }

  move(m, d) {
    const s = d.state;
    const ll = m.getLatLng();
    if (ll.lat !== s.lat || ll.lng !== s.lon) m.setLatLng([s.lat, s.lon]);
    this.paint(m, d);
  }

  paint(m, d) {
    if (!d) return;
    const st = status(d, this.now);
    const sel = d.id === this.selected;
    const rot = Math.round(headingOf(d.state));
    const key = `${st}|${sel}|${rot}|${d.name}`;
    if (m._key === key) return;
    m._key = key;
    const inner = m._inner;
    inner.className = `drone s-${st}${sel ? ' selected' : ''}`;
    inner.style.transform = `rotate(${rot}deg)`;
    const el = m.getElement();
    el.setAttribute('aria-label', `${d.name}, ${STATUS_LABEL[st]}`);
    el.title = d.name;
    if (sel) m.setZIndexOffset(10000); else m.setZIndexOffset(0);
  }

  drawClusters(groups) {
    while (this.clusters.length > groups.length) this.clusters.pop().remove();
    groups.forEach((g, i) => {
      let lat = 0, lon = 0, ok = 0, low = 0, silent = 0;
      for (const d of g) {
        lat += d.state.lat; lon += d.state.lon;
        const st = status(d, this.now);
        if (st === 'ok') ok++; else if (st === 'low') low++; else silent++;
      }
      const n = g.length;
      const ll = [lat / n, lon / n];
      const size = Math.round(30 + Math.min(26, Math.log2(n) * 3.5));
      const a = (ok / n) * 360, b = a + (low / n) * 360;
      const key = `${n}|${ok}|${low}|${size}`;
      let m = this.clusters[i];
      if (!m) {
        m = L.marker(ll, { keyboard: true, icon: L.divIcon({ className: 'cluster-icon', html: '<div class="cluster"><span></span></div>', iconSize: [size, size] }) });
        m.on('click', () => this.zoomInto(m));
        m.addTo(this.map);
        m.getElement().setAttribute('role', 'button');
        this.clusters[i] = m;
        m._key = '';
      } else {
        m.setLatLng(ll);
      }
      m._members = g;
      if (m._key !== key) {
        m._key = key;
        const el = m.getElement();
        el.style.width = el.style.height = `${size}px`;
        el.style.marginLeft = el.style.marginTop = `${-size / 2}px`;
        const c = el.firstChild;
        c.style.background = `conic-gradient(var(--ok) 0 ${a}deg, var(--low) ${a}deg ${b}deg, var(--silent) ${b}deg 360deg)`;
        c.firstChild.textContent = n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n);
        el.setAttribute('aria-label', `${n} drones: ${ok} ok, ${low} low battery, ${silent} silent. Zoom in.`);
        el.title = `${n} drones`;
      }
    });
  }

  zoomInto(m) {
    const g = m._members || [];
    if (!g.length) return;
    const b = L.latLngBounds(g.map((d) => [d.state.lat, d.state.lon]));
    this.map.fitBounds(b.pad(0.1), { maxZoom: Math.min(this.map.getMaxZoom(), this.map.getZoom() + 4) });
  }

  /** markerCount reports what is drawn (the browser tests read it). */
  counts() { return { single: this.single.size, clusters: this.clusters.length }; }
}
