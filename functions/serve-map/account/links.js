// The tracking-links page (links.html): make, list and revoke a drone's
// public tracking links. It runs after account.js, whose helpers (api, $,
// who, onSubmit, showError) and page table it uses.
'use strict';

const when = (ts) => new Date(ts).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });

async function loadLinks(droneID, canManage) {
  const { links } = await api('GET', `/api/v1/drones/${encodeURIComponent(droneID)}/links`);
  const tbody = $('links');
  tbody.replaceChildren();
  $('none').hidden = links.length > 0;
  for (const l of links) {
    const tr = document.createElement('tr');
    tr.dataset.id = l.id;
    tr.dataset.status = l.status;
    const cell = (text) => { const td = document.createElement('td'); td.textContent = text; tr.append(td); return td; };
    cell(when(l.createdAt));
    cell(l.mode === 'flight' ? `this flight (until ${when(l.expiresAt)} at most)` : `until ${when(l.expiresAt)}`);
    cell(l.destination ? (l.destination.label || `${l.destination.lat}, ${l.destination.lon}`) : '–');
    cell(l.status);
    const act = cell('');
    if (canManage && l.status === 'live') {
      // Two steps instead of a confirm() dialog: the first click arms the
      // button for 5 s, the second revokes.
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Revoke';
      b.className = 'revoke';
      b.setAttribute('aria-label', `Revoke the link made ${when(l.createdAt)}`);
      b.addEventListener('click', async () => {
        showError(null);
        if (!b.dataset.armed) {
          b.dataset.armed = '1';
          b.textContent = 'Click again to revoke';
          setTimeout(() => { delete b.dataset.armed; b.textContent = 'Revoke'; }, 5000);
          return;
        }
        try {
          await api('DELETE', `/api/v1/drones/${encodeURIComponent(droneID)}/links/${encodeURIComponent(l.id)}`);
          await loadLinks(droneID, canManage);
        } catch (err) { showError(err); }
      });
      act.append(b);
    }
    tbody.append(tr);
  }
}

pages.links = async function links() {
  const me = await who();
  const canManage = me.user.role !== 'viewer';
  const { drones } = await api('GET', '/api/v1/drones');
  const sel = $('drone');
  for (const d of drones.sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id))) {
    const o = document.createElement('option');
    o.value = d.id;
    o.textContent = d.name || d.id;
    sel.append(o);
  }
  const want = new URLSearchParams(location.search).get('drone');
  if (want && drones.some((d) => d.id === want)) sel.value = want;
  sel.addEventListener('change', () => {
    history.replaceState(null, '', `?drone=${encodeURIComponent(sel.value)}`);
    $('secret').hidden = true;
    loadLinks(sel.value, canManage).catch(showError);
  });
  $('new').hidden = !canManage;
  for (const r of document.querySelectorAll('input[name=mode]')) {
    r.addEventListener('change', () => { $('minutes').disabled = !$('mode-duration').checked; });
  }
  $('copy').addEventListener('click', () => navigator.clipboard?.writeText($('link-url').textContent));
  $('hide').addEventListener('click', () => { $('secret').hidden = true; $('link-url').textContent = ''; });
  onSubmit($('new'), async () => {
    const body = { mode: $('mode-duration').checked ? 'duration' : 'flight' };
    if (body.mode === 'duration') body.minutes = Number($('minutes').value);
    const lat = $('dest-lat').value.trim(), lon = $('dest-lon').value.trim();
    if (lat !== '' || lon !== '') {
      body.destination = { lat: Number(lat), lon: Number(lon), label: $('dest-label').value.trim() };
    }
    const r = await api('POST', `/api/v1/drones/${encodeURIComponent(sel.value)}/links`, body);
    $('link-url').textContent = location.origin + r.path;
    $('secret').hidden = false;
    $('copy').focus();
    await loadLinks(sel.value, canManage);
  });
  if (sel.value) await loadLinks(sel.value, canManage);
};
