// Account pages: plain forms over the JSON API. State-changing requests
// send the CSRF cookie's value in X-CSRF-Token (the server checks it
// against the session).
'use strict';

const $ = (id) => document.getElementById(id);

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)(?:__Host-)?dt_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : '';
}

async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (method !== 'GET') opts.headers['X-CSRF-Token'] = csrf();
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let data = null;
  if (r.status !== 204) { try { data = await r.json(); } catch { data = null; } }
  if (r.status === 401 && !path.startsWith('/api/v1/auth/') && !path.includes('/accept')) {
    location.href = '/account/login.html';
    throw new Error('log in first');
  }
  if (!r.ok) {
    let msg = (data && data.detail) || `HTTP ${r.status}`;
    if (data && data.errors) msg += ': ' + data.errors.map((e) => `${e.field} ${e.detail}`).join('; ');
    if (r.status === 429) msg = 'Too many attempts; try again in ' + (r.headers.get('Retry-After') || 'a few') + ' s.';
    const err = new Error(msg);
    err.status = r.status;
    err.field = data && data.errors && data.errors[0] ? data.errors[0].field : '';
    throw err;
  }
  return data;
}

function showError(err) { $('error').textContent = err ? err.message : ''; }

function onSubmit(form, fn) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError(null);
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try { await fn(); } catch (err) { showError(err); } finally { btn.disabled = false; }
  });
}

async function who() {
  const me = await api('GET', '/api/v1/me');
  $('who').textContent = `Logged in as ${me.user.email} (${me.user.role})` + (me.tenant ? ` of ${me.tenant.name}.` : '.');
  return me;
}

function showKey(drone, key) {
  $('secret-drone').textContent = drone.name;
  $('secret-key').textContent = key;
  $('secret').hidden = false;
  $('copy').focus();
}

// The fleet list may lag a change by up to a second (serve-map's
// FLEET_LIST_MAX_AGE), so the page applies its own changes to what it
// loaded instead of reloading.
const fleet = new Map();

async function loadDrones(canManage) {
  const { drones } = await api('GET', '/api/v1/drones');
  fleet.clear();
  for (const d of drones) fleet.set(d.id, { id: d.id, name: d.name });
  renderDrones(canManage);
}

function renderDrones(canManage) {
  const tbody = $('list');
  tbody.replaceChildren();
  for (const d of [...fleet.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    const tr = document.createElement('tr');
    tr.dataset.id = d.id;
    const name = document.createElement('td'); name.textContent = d.name || d.id;
    const id = document.createElement('td'); const code = document.createElement('code'); code.textContent = d.id; id.append(code);
    const act = document.createElement('td');
    const button = (label, fn) => {
      const b = document.createElement('button'); b.type = 'button'; b.textContent = label;
      b.setAttribute('aria-label', `${label} ${d.name || d.id}`);
      b.addEventListener('click', async () => { showError(null); try { await fn(); } catch (err) { showError(err); } });
      act.append(b);
    };
    const path = `/api/v1/drones/${encodeURIComponent(d.id)}`;
    if (canManage) {
      button('Rename', async () => {
        const n = prompt('New name', d.name || '');
        if (!n) return;
        const r = await api('PATCH', path, { name: n });
        fleet.set(d.id, { id: d.id, name: r.name });
        renderDrones(canManage);
      });
      button('Rotate key', async () => {
        if (!confirm('Make a new key? The old key stops working within 30 s.')) return;
        const r = await api('POST', `${path}/key`);
        showKey(r.drone, r.key);
      });
      button('Revoke key', async () => {
        if (confirm('Revoke the key? The drone cannot report until you rotate.')) await api('DELETE', `${path}/key`);
      });
      button('Retire', async () => {
        if (!confirm(`Retire ${d.name || d.id}? It leaves the fleet and its key stops working.`)) return;
        await api('DELETE', path);
        fleet.delete(d.id);
        renderDrones(canManage);
      });
    }
    const links = document.createElement('a');
    links.href = `/account/links.html?drone=${encodeURIComponent(d.id)}`;
    links.textContent = 'Tracking links';
    links.className = 'links';
    act.append(links);
    tr.append(name, id, act);
    tbody.append(tr);
  }
}

// A drone's Remote ID identity fields, as GET/PUT /api/v1/drones/{id}/remote-id
// name them (and the inputs' ids).
const RID_FIELDS = ['serialNumber', 'registrationId', 'uaType', 'operatorId', 'euCategory', 'euClass', 'operatorLocation'];

// The alert settings' fields, as GET/PUT /api/v1/alert-settings name them.
const SETTINGS = ['lowBatteryPct', 'hysteresisPct', 'minTimeToEmptySecs', 'lostLinkSecs', 'notifyStaleSecs'];
// What an absent setting means (notifyStaleSecs: 0 or unset is 15 min).
const SETTING_DEFAULTS = { notifyStaleSecs: 900 };

// showFieldError marks the input a problem reply names (its errors[].field)
// and moves the focus there.
function showFieldError(err) {
  for (const el of document.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const el = err && err.field && $(err.field);
  if (el) { el.setAttribute('aria-invalid', 'true'); el.focus(); }
}

const fmtTime = (s) => { const d = new Date(s); return isNaN(d) ? '' : d.toLocaleString(); };

// Webhooks (owners and admins only): the list, the secret of a new one
// (shown once), and the delivery log of the one selected.
const hooks = { list: [], selected: null };

async function loadHooks() {
  const { webhooks } = await api('GET', '/api/v1/webhooks');
  hooks.list = webhooks || [];
  renderHooks();
}

function renderHooks() {
  const tbody = $('hooks');
  tbody.replaceChildren();
  $('hooks-empty').hidden = hooks.list.length > 0;
  for (const h of hooks.list) {
    const tr = document.createElement('tr');
    tr.dataset.id = h.id;
    if (hooks.selected === h.id) tr.className = 'selected';
    const url = document.createElement('td'); const code = document.createElement('code'); code.textContent = h.url; url.append(code);
    const created = document.createElement('td'); created.textContent = fmtTime(h.createdAt);
    const act = document.createElement('td');
    const button = (label, cls, fn) => {
      const b = document.createElement('button'); b.type = 'button'; b.textContent = label; b.className = cls;
      b.setAttribute('aria-label', `${label} ${h.url}`);
      b.addEventListener('click', async () => { showError(null); try { await fn(); } catch (err) { showError(err); } });
      act.append(b);
    };
    button('Deliveries', 'hook-deliveries', async () => {
      hooks.selected = h.id;
      renderHooks();
      await loadDeliveries();
      $('deliveries-title').focus();
    });
    button('Delete', 'hook-delete', async () => {
      if (!confirm(`Delete the webhook ${h.url}? Alerts stop being posted to it.`)) return;
      await api('DELETE', `/api/v1/webhooks/${encodeURIComponent(h.id)}`);
      hooks.list = hooks.list.filter((x) => x.id !== h.id);
      if (hooks.selected === h.id) { hooks.selected = null; $('deliveries').hidden = true; }
      renderHooks();
    });
    tr.append(url, created, act);
    tbody.append(tr);
  }
}

async function loadDeliveries() {
  const h = hooks.list.find((x) => x.id === hooks.selected);
  if (!h) return;
  const { deliveries } = await api('GET', `/api/v1/webhooks/${encodeURIComponent(h.id)}/deliveries`);
  $('deliveries-title').textContent = `Deliveries to ${h.url}`;
  $('deliveries-title').tabIndex = -1;
  const tbody = $('deliveries-list');
  tbody.replaceChildren();
  const list = [...(deliveries || [])].sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
  for (const d of list) {
    const tr = document.createElement('tr');
    tr.dataset.id = d.id;
    const cell = (text, cls) => { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; tr.append(td); };
    cell(fmtTime(d.at));
    cell(d.eventType || '');
    cell(String(d.attempt));
    cell(d.ok ? `OK ${d.statusCode || ''}`.trim() : (d.statusCode ? `Failed ${d.statusCode}` : 'Failed'), d.ok ? 'ok' : 'failed');
    cell(d.error || '');
    tbody.append(tr);
  }
  $('deliveries-empty').hidden = list.length > 0;
  $('deliveries').hidden = false;
}

const pages = {
  async signup() {
    onSubmit($('form'), async () => {
      await api('POST', '/api/v1/auth/signup', { organisation: $('organisation').value, email: $('email').value, password: $('password').value });
      location.href = '/account/drones.html';
    });
  },
  async login() {
    onSubmit($('form'), async () => {
      await api('POST', '/api/v1/auth/login', { email: $('email').value, password: $('password').value });
      location.href = '/';
    });
  },
  async invite() {
    const token = location.hash.slice(1);
    onSubmit($('form'), async () => {
      await api('POST', `/api/v1/invites/${encodeURIComponent(token)}/accept`, { email: $('email').value, password: $('password').value });
      location.href = '/';
    });
  },
  async drones() {
    const me = await who();
    const canManage = me.user.role !== 'viewer';
    $('add').hidden = !canManage;
    $('copy').addEventListener('click', () => navigator.clipboard?.writeText($('secret-key').textContent));
    $('hide').addEventListener('click', () => { $('secret').hidden = true; $('secret-key').textContent = ''; });
    onSubmit($('add'), async () => {
      const r = await api('POST', '/api/v1/drones', { name: $('name').value });
      $('name').value = '';
      fleet.set(r.drone.id, { id: r.drone.id, name: r.drone.name });
      renderDrones(canManage);
      showKey(r.drone, r.key);
    });
    await loadDrones(canManage);
  },
  async alerts() {
    const me = await who();
    const canManage = me.user.role !== 'viewer';
    // Viewers see the thresholds but cannot change them; webhooks (whose
    // URLs may carry credentials) are for owners and admins only.
    $('settings-fields').disabled = !canManage;
    $('settings-save').hidden = !canManage;
    $('webhooks').hidden = !canManage;
    $('hooks-viewer').hidden = canManage;
    const st = await api('GET', '/api/v1/alert-settings');
    for (const k of SETTINGS) $(k).value = st[k] || SETTING_DEFAULTS[k] || st[k];
    if (!canManage) return;
    onSubmit($('settings-form'), async () => {
      $('settings-done').textContent = '';
      const body = {};
      for (const k of SETTINGS) body[k] = $(k).value === '' ? NaN : Number($(k).value);
      const bad = SETTINGS.find((k) => !Number.isFinite(body[k]));
      if (bad) { showFieldError({ field: bad }); throw new Error(`${bad}: enter a number`); }
      try {
        const saved = await api('PUT', '/api/v1/alert-settings', body);
        for (const k of SETTINGS) $(k).value = saved[k] || SETTING_DEFAULTS[k] || saved[k];
        showFieldError(null);
        $('settings-done').textContent = 'Thresholds saved.';
      } catch (err) { showFieldError(err); throw err; }
    });
    onSubmit($('hook-form'), async () => {
      let h;
      try { h = await api('POST', '/api/v1/webhooks', { url: $('hook-url').value.trim() }); } catch (err) {
        if (err.field === 'url') showFieldError({ field: 'hook-url' });
        throw err;
      }
      showFieldError(null);
      $('hook-url').value = '';
      $('hook-secret-url').textContent = h.url;
      $('hook-secret-value').textContent = h.secret;
      $('hook-secret').hidden = false;
      $('hook-copy').focus();
      hooks.list.push({ id: h.id, url: h.url, createdAt: h.createdAt });
      renderHooks();
    });
    $('hook-copy').addEventListener('click', () => navigator.clipboard?.writeText($('hook-secret-value').textContent));
    $('hook-hide').addEventListener('click', () => { $('hook-secret').hidden = true; $('hook-secret-value').textContent = ''; });
    $('deliveries-refresh').addEventListener('click', () => loadDeliveries().catch(showError));
    await loadHooks();
  },
  // Network Remote ID: the tenant's switch and each drone's declared
  // identity (owners and admins change them; viewers see them).
  async remoteid() {
    const me = await who();
    const canManage = me.user.role !== 'viewer';
    $('rid-switch-fields').disabled = !canManage;
    $('rid-identity-fields').disabled = !canManage;
    $('rid-switch-save').hidden = !canManage;
    $('rid-identity-save').hidden = !canManage;
    const st = await api('GET', '/api/v1/remote-id');
    $('enabled').checked = st.enabled;
    const { drones } = await api('GET', '/api/v1/drones');
    const sel = $('rid-drone');
    for (const d of drones) {
      const o = document.createElement('option'); o.value = d.id; o.textContent = `${d.name || d.id} (${d.id})`; sel.append(o);
    }
    const load = async () => {
      showFieldError(null);
      $('rid-identity-done').textContent = '';
      if (!sel.value) return;
      const id = await api('GET', `/api/v1/drones/${encodeURIComponent(sel.value)}/remote-id`);
      for (const k of RID_FIELDS) $(k).value = id[k] || (k === 'operatorLocation' ? 'obfuscated' : '');
    };
    sel.addEventListener('change', () => load().catch(showError));
    await load();
    if (!canManage) return;
    onSubmit($('rid-switch'), async () => {
      const r = await api('PUT', '/api/v1/remote-id', { enabled: $('enabled').checked });
      $('rid-switch-done').textContent = r.enabled ? 'Remote ID is on.' : 'Remote ID is off.';
    });
    onSubmit($('rid-identity'), async () => {
      $('rid-identity-done').textContent = '';
      const body = {};
      for (const k of RID_FIELDS) if ($(k).value.trim() !== '') body[k] = $(k).value.trim();
      try {
        const saved = await api('PUT', `/api/v1/drones/${encodeURIComponent(sel.value)}/remote-id`, body);
        for (const k of RID_FIELDS) $(k).value = saved[k] || (k === 'operatorLocation' ? 'obfuscated' : '');
        showFieldError(null);
        $('rid-identity-done').textContent = 'Identity saved.';
      } catch (err) { showFieldError(err); throw err; }
    });
  },
  async settings() {
    // Log out works from the first paint, not only once /api/v1/me has
    // answered: a click before that must not be lost.
    $('logout').addEventListener('click', async () => {
      try { await api('POST', '/api/v1/auth/logout'); } catch (err) { showError(err); return; }
      location.href = '/account/login.html';
    });
    const me = await who();
    $('invite-form').hidden = me.user.role === 'viewer';
    onSubmit($('password-form'), async () => {
      await api('POST', '/api/v1/me/password', { current: $('current').value, password: $('new-password').value });
      $('current').value = ''; $('new-password').value = '';
      $('password-done').textContent = 'Password changed; other sessions were logged out.';
    });
    onSubmit($('invite-form'), async () => {
      const r = await api('POST', '/api/v1/invites', { role: $('role').value });
      $('invite-link').textContent = location.origin + r.path;
      $('invite').hidden = false;
    });
  },
};

// After every deferred script: a page's own script (links.js) adds its
// entry to pages first.
document.addEventListener('DOMContentLoaded', () => pages[document.body.dataset.page]().catch(showError));
