// The geofence editor: the tenant's fences as map layers and a side-panel
// tab to draw, edit, rename and delete them through /api/v1/geofences.
// Drawing and vertex editing use leaflet-geoman in opt-in mode, so only the
// fence being edited is editable (the drone markers stay out of its
// snapping and edit handlers). Geoman is a chunk of its own (./geoman.js),
// imported when an owner or admin opens the Fences tab: viewers, and the
// map's first load, never download it. Every shape can also be typed
// (vertices; centre and radius), so the editor works from the keyboard alone.
import L from './leaflet-global.js';

const STYLE = {
  'keep-in': { color: '#38bdf8', weight: 2, dashArray: '6 4', fillColor: '#38bdf8', fillOpacity: 0.06 },
  'keep-out': { color: '#f87171', weight: 2, fillColor: '#f87171', fillOpacity: 0.14 },
};
const EDIT_STYLE = { color: '#f0abfc', weight: 3, fillColor: '#f0abfc', fillOpacity: 0.12 };
const MODE_LABEL = { 'keep-in': 'Keep in', 'keep-out': 'Keep out' };

/** ApiError is a refused API call with its problem body (RFC 9457). */
export class ApiError extends Error {
  constructor(status, problem, message) {
    super(message);
    this.status = status;
    this.problem = problem || {};
  }
}

// send makes one API call; changes carry the CSRF token. It answers the
// parsed JSON body (null for 204) or throws an ApiError.
async function send(method, url, body, csrf) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf();
  const opts = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(url, opts);
  let data = null;
  if (r.status !== 204) { try { data = await r.json(); } catch { data = null; } }
  if (!r.ok) throw new ApiError(r.status, data, `${method} ${url}: HTTP ${r.status} ${data?.detail || ''}`.trim());
  return data;
}

const num = (v, digits) => Number(v.toFixed(digits));

// fieldLabel says which form field a problem names, in words:
// "polygon[2].lat" is "Vertex 3 latitude".
function fieldLabel(field) {
  const m = /^polygon\[(\d+)\]\.(lat|lon)$/.exec(field);
  if (m) return `Vertex ${Number(m[1]) + 1} ${m[2] === 'lat' ? 'latitude' : 'longitude'}`;
  const v = /^polygon\[(\d+)\]$/.exec(field);
  if (v) return `Vertex ${Number(v[1]) + 1}`;
  return { name: 'Name', mode: 'Mode', polygon: 'Shape', center: 'Centre', 'center.lat': 'Centre latitude', 'center.lon': 'Centre longitude', radiusM: 'Radius' }[field] || field;
}

// vertexWords rewrites the API's "polygon[2]" as the form's "vertex 3".
const vertexWords = (s) => String(s).replace(/polygon\[(\d+)\]/g, (_, i) => `vertex ${Number(i) + 1}`);

// wrap180 brings a longitude difference into [-180, 180).
const wrap180 = (d) => ((((d + 180) % 360) + 360) % 360) - 180;

// ringLatLngs is a polygon fence as Leaflet should draw it: longitudes
// unwrapped along the ring (each edge the short way, within ±180°), as the
// server's containment test reads them, so a fence across the antimeridian
// is one narrow shape (170° to 190°), not a band the other way round the
// world. Leaflet draws no world copies of shapes, so the ring is moved by
// whole turns to lie nearest the longitude lonNear (the map's centre). A
// ring winding round a pole is closed over it when closePole is set (the
// map clips the pole to its top or bottom edge); an edited ring is not, so
// the handles are the fence's vertices only.
export function ringLatLngs(pts, lonNear, closePole) {
  if (!pts.length) return [];
  const out = [];
  let x = pts[0].lon, lo = x, hi = x, sumLat = 0;
  pts.forEach((p, i) => {
    if (i > 0) x += wrap180(p.lon - pts[i - 1].lon);
    lo = Math.min(lo, x); hi = Math.max(hi, x);
    sumLat += p.lat;
    out.push([p.lat, x]);
  });
  const end = x + wrap180(pts[0].lon - pts[pts.length - 1].lon);
  const turns = Math.round((end - pts[0].lon) / 360);
  if (turns !== 0 && closePole) {
    const pole = sumLat < 0 ? -90 : 90;
    out.push([pts[0].lat, end], [pole, end], [pole, pts[0].lon]);
  }
  const mid = turns !== 0 ? (pts[0].lon + end) / 2 : (lo + hi) / 2;
  const shift = 360 * Math.round((lonNear - mid) / 360);
  return shift ? out.map(([lat, lon]) => [lat, lon + shift]) : out;
}

// parseVertices reads "lat, lon" lines (blank lines skipped).
function parseVertices(text) {
  const pts = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const parts = line.split(/[\s,;]+/).filter(Boolean);
    const lat = Number(parts[0]), lon = Number(parts[1]);
    if (parts.length !== 2 || !Number.isFinite(lat) || !Number.isFinite(lon)) {
      throw new Error(`Vertices, line ${i + 1}: write "latitude, longitude" in degrees`);
    }
    pts.push({ lat, lon });
  }
  return pts;
}

/**
 * Geofences is the editor, bound to the map and the #panel-fences markup of
 * index.html. window.dronetrack.geofences exposes it to the browser tests.
 */
export class Geofences {
  constructor(map, { csrf, onCount }) {
    this.map = map;
    this.csrf = csrf;
    this.onCount = onCount || (() => {});
    this.list = [];
    this.canEdit = false;
    this.edit = null; // { id (null for a new fence), kind: 'polygon'|'circle', layer }
    this.geoman = null; // the promise of the loaded editor (see editor())
    this.group = L.featureGroup().addTo(map);
    this.$ = (id) => document.getElementById(id);
    this.bind();
  }

  bind() {
    const $ = this.$;
    $('gf-new-polygon').addEventListener('click', () => this.startNew('polygon'));
    $('gf-new-circle').addEventListener('click', () => this.startNew('circle'));
    $('gf-cancel').addEventListener('click', () => { this.cancel(); $('gf-note').textContent = 'Edit cancelled.'; });
    $('gf-form').addEventListener('submit', (e) => { e.preventDefault(); this.save(); });
    $('gf-vertices').addEventListener('change', () => this.typedShape());
    for (const id of ['gf-lat', 'gf-lon', 'gf-radius']) $(id).addEventListener('change', () => this.typedShape());
    this.map.on('pm:create', (e) => this.created(e.layer));
    // Shapes are drawn near the map's centre (ringLatLngs): after a pan a
    // good way round the world, draw them again where the user looks.
    this.map.on('moveend', () => {
      if (this.drawnNear !== undefined && Math.abs(this.map.getCenter().lng - this.drawnNear) > 90) this.renderLayers();
    });
    this.$('gf-confirm-no').addEventListener('click', () => this.$('gf-confirm').close('no'));
    this.$('gf-confirm-yes').addEventListener('click', () => this.$('gf-confirm').close('yes'));
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.edit && !this.$('gf-confirm').open && this.$('gf-form').contains(document.activeElement)) {
        this.cancel();
        this.$('gf-note').textContent = 'Edit cancelled.';
      }
    });
  }

  // editor loads leaflet-geoman (its chunk and stylesheet) once and gives
  // the map its handler; every use of layer.pm or map.pm waits for it.
  editor() {
    if (!this.geoman) {
      this.geoman = import('./geoman.js').then(async (m) => {
        await m.stylesheet();
        m.attach(this.map);
        this.editorLoaded = true;
      });
      this.geoman.catch((err) => {
        console.warn('geofence editor', err);
        this.geoman = null; // a later attempt may succeed
        this.$('gf-note').textContent = 'The drawing tools did not load; reload the page to try again.';
      });
    }
    return this.geoman;
  }

  // opened is the Fences tab being shown: a manager's editor loads now,
  // so drawing starts without a wait.
  opened() {
    this.tabOpen = true;
    if (this.canEdit) this.editor().catch(() => {});
  }

  // load reads the tenant's fences; canEdit shows the editing controls
  // (owners and admins; viewers see the fences read-only).
  async load(canEdit) {
    if (canEdit !== undefined) this.canEdit = canEdit;
    this.$('gf-tools').hidden = !this.canEdit;
    if (this.canEdit && this.tabOpen) this.editor().catch(() => {});
    try {
      const body = await send('GET', '/api/v1/geofences', undefined, this.csrf);
      this.list = body?.geofences || [];
    } catch (err) {
      console.warn(err);
      this.$('gf-note').textContent = 'Geofences unavailable.';
      return;
    }
    this.render();
    this.loaded = true;
  }

  render() {
    this.renderLayers();
    this.renderList();
    this.onCount(this.list.length);
  }

  layerOf(f, style, editable) {
    const opts = { ...style, pmIgnore: !editable, className: editable ? 'gf-editing' : 'gf-shape' };
    const near = this.map.getCenter().lng;
    if (f.center) return L.circle([f.center.lat, f.center.lon + 360 * Math.round((near - f.center.lon) / 360)], { ...opts, radius: f.radiusM });
    return L.polygon(ringLatLngs(f.polygon || [], near, !editable), opts);
  }

  renderLayers() {
    this.group.clearLayers();
    this.drawnNear = this.map.getCenter().lng;
    for (const f of this.list) {
      if (this.edit && this.edit.id === f.id) continue; // shown by its editable copy
      const l = this.layerOf(f, STYLE[f.mode] || STYLE['keep-out'], false);
      // A string tooltip is HTML to Leaflet; a fence name is a member's text.
      const tip = document.createElement('span');
      tip.textContent = `${f.name} (${MODE_LABEL[f.mode] || f.mode})`;
      l.bindTooltip(tip, { sticky: true });
      l.feature = { id: f.id };
      this.group.addLayer(l);
    }
  }

  renderList() {
    const ul = this.$('gf-list');
    const items = [...this.list].sort((a, b) => a.name.localeCompare(b.name)).map((f) => {
      const li = document.createElement('li');
      li.className = `fence mode-${f.mode}${this.edit?.id === f.id ? ' editing' : ''}`;
      li.dataset.id = f.id;
      const title = document.createElement('b');
      title.textContent = f.name;
      const info = document.createElement('small');
      info.textContent = `${MODE_LABEL[f.mode] || f.mode} · ${f.center ? `circle, radius ${Math.round(f.radiusM)} m` : `polygon, ${(f.polygon || []).length} vertices`}`;
      const actions = document.createElement('div');
      actions.className = 'actions';
      const button = (label, cls, fn) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = `btn ${cls}`;
        b.textContent = label;
        b.setAttribute('aria-label', `${label} geofence ${f.name}`);
        b.addEventListener('click', fn);
        actions.appendChild(b);
      };
      button('Show', 'gf-show', () => this.show(f));
      if (this.canEdit) {
        button('Edit', 'gf-edit', () => this.startEdit(f));
        button('Delete', 'gf-delete', () => this.remove(f));
      }
      li.append(title, info, actions);
      return li;
    });
    ul.replaceChildren(...items);
    if (!this.edit) this.$('gf-note').textContent = this.list.length ? `${this.list.length} geofence${this.list.length === 1 ? '' : 's'}` : 'No geofences yet.';
  }

  // show fits the map to a fence (a circle knows its bounds only on a map).
  show(f, animate = true) {
    const l = this.layerOf(f, {}, false);
    l.addTo(this.map);
    const b = l.getBounds();
    l.remove();
    this.map.fitBounds(b.pad(0.2), { maxZoom: 17, animate });
  }

  // ---------- editing ----------

  openForm(title, f, kind) {
    const $ = this.$;
    this.clearError();
    $('gf-form-title').textContent = title;
    $('gf-name').value = f?.name || '';
    $('gf-mode').value = f?.mode || 'keep-out';
    $('gf-circle').hidden = kind !== 'circle';
    $('gf-poly').hidden = kind !== 'polygon';
    $('gf-vertices').value = '';
    for (const id of ['gf-lat', 'gf-lon', 'gf-radius']) $(id).value = '';
    $('gf-form').hidden = false;
    this.map.getContainer().classList.add('gf-drawing');
  }

  async startNew(kind) {
    if (!this.canEdit) return;
    this.cancel();
    const edit = { id: null, kind, layer: null };
    this.edit = edit;
    this.openForm(kind === 'polygon' ? 'New polygon geofence' : 'New circle geofence', null, kind);
    this.$('gf-hint').textContent = kind === 'polygon'
      ? 'Click the map to place each vertex; click the first vertex to close the shape. Or type the vertices below.'
      : 'Click the map for the centre, move the mouse and click again for the radius. Or type them below.';
    this.$('gf-note').textContent = `Drawing a new ${kind}.`;
    this.renderList();
    this.$('gf-name').focus();
    try { await this.editor(); } catch { return; }
    if (this.edit !== edit || edit.layer) return; // cancelled, or typed in meanwhile
    this.map.pm.enableDraw(kind === 'polygon' ? 'Polygon' : 'Circle', {
      snappable: false,
      allowSelfIntersection: false,
      pathOptions: { ...EDIT_STYLE, pmIgnore: false, className: 'gf-editing' },
      templineStyle: { color: EDIT_STYLE.color },
      hintlineStyle: { color: EDIT_STYLE.color, dashArray: '5 5' },
    });
  }

  // created adopts a shape geoman finished drawing.
  created(layer) {
    if (!this.edit || this.edit.layer) { layer.remove(); return; }
    this.map.pm.disableDraw();
    this.adopt(layer);
    this.$('gf-hint').textContent = this.edit.kind === 'polygon'
      ? 'Drag a vertex to move it, a middle handle to add one; right-click a vertex to remove it.'
      : 'Drag the centre to move the circle, the edge handle to change its radius.';
    this.$('gf-note').textContent = 'Shape drawn: name it and save.';
    this.$('gf-name').focus();
  }

  adopt(layer) {
    this.edit.layer = layer;
    layer.pm.enable({ allowSelfIntersection: false, snappable: false });
    layer.on('pm:edit', () => this.syncForm());
    this.syncForm();
  }

  async startEdit(f) {
    if (!this.canEdit) return;
    this.cancel();
    const kind = f.center ? 'circle' : 'polygon';
    const edit = { id: f.id, kind, layer: null, original: f };
    this.edit = edit;
    this.openForm(`Edit ${f.name}`, f, kind);
    this.$('gf-hint').textContent = kind === 'polygon'
      ? 'Drag a vertex to move it, a middle handle to add one; right-click a vertex to remove it. Or edit the vertices below.'
      : 'Drag the centre to move the circle, the edge handle to change its radius. Or edit the numbers below.';
    try { await this.editor(); } catch { return; }
    if (this.edit !== edit || edit.layer) return;
    // Created after geoman loaded, so its init hook gives the layer .pm.
    this.adopt(this.layerOf(f, EDIT_STYLE, true).addTo(this.map));
    this.renderLayers();
    this.renderList();
    this.$('gf-note').textContent = `Editing ${f.name}.`;
    this.show(f, false); // at once: the vertex handles are where they will stay
    this.$('gf-name').focus();
  }

  // syncForm writes the edited shape into the form.
  syncForm() {
    const l = this.edit?.layer;
    if (!l) return;
    if (this.edit.kind === 'circle') {
      const c = l.getLatLng().wrap();
      this.$('gf-lat').value = num(c.lat, 6);
      this.$('gf-lon').value = num(c.lng, 6);
      this.$('gf-radius').value = num(l.getRadius(), 1);
    } else {
      this.$('gf-vertices').value = l.getLatLngs()[0].map((ll) => { const w = ll.wrap(); return `${num(w.lat, 6)}, ${num(w.lng, 6)}`; }).join('\n');
    }
  }

  // typedShape redraws the shape from the form after the user typed it.
  async typedShape() {
    if (!this.edit) return;
    try { await this.editor(); } catch { return; }
    if (!this.edit) return;
    this.clearError();
    let ll;
    try {
      if (this.edit.kind === 'circle') {
        const lat = Number(this.$('gf-lat').value), lon = Number(this.$('gf-lon').value), r = Number(this.$('gf-radius').value);
        if (this.$('gf-lat').value === '' || this.$('gf-lon').value === '' || !Number.isFinite(lat) || !Number.isFinite(lon) || !(r > 0)) return;
        ll = { center: [lat, lon], r };
      } else {
        const pts = parseVertices(this.$('gf-vertices').value);
        if (pts.length < 3) return;
        ll = ringLatLngs(pts, this.map.getCenter().lng, false);
      }
    } catch (err) {
      this.showError(err.message, 'gf-vertices');
      return;
    }
    let l = this.edit.layer;
    if (l) {
      l.pm.disable();
      if (this.edit.kind === 'circle') { l.setLatLng(ll.center); l.setRadius(ll.r); } else l.setLatLngs(ll);
      l.pm.enable({ allowSelfIntersection: false, snappable: false });
    } else {
      this.map.pm.disableDraw();
      const opts = { ...EDIT_STYLE, pmIgnore: false, className: 'gf-editing' };
      l = this.edit.kind === 'circle' ? L.circle(ll.center, { ...opts, radius: ll.r }) : L.polygon(ll, opts);
      this.adopt(l.addTo(this.map));
    }
  }

  // body builds the API's fence from the form.
  body() {
    const $ = this.$;
    const b = { name: $('gf-name').value.trim(), mode: $('gf-mode').value };
    if (this.edit.kind === 'circle') {
      if ($('gf-lat').value !== '' && $('gf-lon').value !== '') b.center = { lat: Number($('gf-lat').value), lon: Number($('gf-lon').value) };
      if ($('gf-radius').value !== '') b.radiusM = Number($('gf-radius').value);
    } else {
      b.polygon = parseVertices($('gf-vertices').value);
    }
    return b;
  }

  async save() {
    if (!this.edit) return;
    this.clearError();
    let body;
    try { body = this.body(); } catch (err) { this.showError(err.message, 'gf-vertices'); return; }
    const btn = this.$('gf-save');
    btn.disabled = true;
    try {
      const id = this.edit.id;
      const saved = id
        ? await send('PUT', `/api/v1/geofences/${encodeURIComponent(id)}`, body, this.csrf)
        : await send('POST', '/api/v1/geofences', body, this.csrf);
      this.cancel();
      this.$('gf-note').textContent = `Saved ${saved?.name || body.name}.`;
      await this.load();
      this.$('gf-note').textContent = `Saved ${saved?.name || body.name}.`;
    } catch (err) {
      if (err instanceof ApiError) this.showProblem(err);
      else { console.warn(err); this.showError('Server unreachable; try again.'); }
    } finally {
      btn.disabled = false;
    }
  }

  // showProblem shows the API's refusal next to the field it names.
  showProblem(err) {
    const fe = err.problem?.errors?.[0];
    if (err.status === 403) { this.showError('Your role may not change geofences.'); return; }
    if (!fe) { this.showError(err.problem?.detail || err.message); return; }
    const f = fe.field || '';
    let input = 'gf-name';
    if (f === 'mode') input = 'gf-mode';
    else if (f.startsWith('polygon')) input = this.edit?.kind === 'circle' ? 'gf-lat' : 'gf-vertices';
    else if (f === 'center.lon') input = 'gf-lon';
    else if (f.startsWith('center')) input = 'gf-lat';
    else if (f === 'radiusM') input = 'gf-radius';
    this.showError(`${fieldLabel(f)}: ${vertexWords(fe.detail)}`, input);
  }

  showError(msg, inputId) {
    this.$('gf-error').textContent = msg;
    if (inputId) {
      const el = this.$(inputId);
      el.setAttribute('aria-invalid', 'true');
      el.focus();
    }
  }

  clearError() {
    this.$('gf-error').textContent = '';
    for (const el of this.$('gf-form').querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  }

  // cancel ends any drawing or editing without saving.
  cancel() {
    if (!this.edit) return;
    this.map.pm?.disableDraw();
    const l = this.edit.layer;
    if (l) { l.pm?.disable(); l.remove(); }
    this.edit = null;
    this.$('gf-form').hidden = true;
    this.map.getContainer().classList.remove('gf-drawing');
    this.render();
  }

  async remove(f) {
    if (!this.canEdit) return;
    const dlg = this.$('gf-confirm');
    this.$('gf-confirm-text').textContent = `Delete the geofence "${f.name}"? Its open breach alerts resolve with each drone's next report.`;
    dlg.returnValue = '';
    dlg.showModal();
    this.$('gf-confirm-no').focus();
    const answer = await new Promise((resolve) => dlg.addEventListener('close', () => resolve(dlg.returnValue), { once: true }));
    if (answer !== 'yes') return;
    try {
      await send('DELETE', `/api/v1/geofences/${encodeURIComponent(f.id)}`, undefined, this.csrf);
      if (this.edit?.id === f.id) this.cancel();
      await this.load();
      this.$('gf-note').textContent = `Deleted ${f.name}.`;
    } catch (err) {
      console.warn(err);
      this.$('gf-note').textContent = err instanceof ApiError && err.status === 403 ? 'Your role may not delete geofences.' : `Could not delete ${f.name}; try again.`;
    }
  }
}
