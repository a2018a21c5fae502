// Notification channels on the alerts page (owners and admins): email,
// Slack and Teams targets with the alert kinds, drones, fences and quiet
// hours each wants, and how their deliveries went (last success, last
// error). Uses account.js's helpers ($, api, showError, showFieldError,
// onSubmit, fmtTime), which load first. Chat URLs are write-only: the API
// never returns them, so the list shows the host only.
'use strict';

(() => {
  if (document.body.dataset.page !== 'alerts') return;
  const KIND_LABEL = { email: 'Email', slack: 'Slack', teams: 'Teams' };
  // The API's field names -> this form's inputs, for showFieldError.
  const FIELD_INPUT = { name: 'ch-name', kind: 'ch-kind', recipients: 'ch-recipients', url: 'ch-url',
    'quietHours.start': 'ch-quiet-start', 'quietHours.end': 'ch-quiet-end', 'quietHours.timeZone': 'ch-quiet-tz' };
  let list = [];

  function cell(tr, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.append(td);
    return td;
  }

  function render() {
    const tbody = $('channels-list');
    tbody.replaceChildren();
    $('channels-empty').hidden = list.length > 0;
    for (const c of list) {
      const tr = document.createElement('tr');
      tr.dataset.id = c.id;
      cell(tr, `${c.name} (${KIND_LABEL[c.kind] || c.kind})`);
      cell(tr, c.kind === 'email' ? (c.recipients || []).join(', ') : (c.urlHost || 'set'));
      let what = (c.alertKinds || []).join(', ') || 'all kinds';
      if ((c.droneIds || []).length) what += `; drones ${c.droneIds.join(', ')}`;
      if ((c.fenceIds || []).length) what += `; fences ${c.fenceIds.join(', ')}`;
      cell(tr, what);
      const q = c.quietHours;
      cell(tr, q ? `${q.start}–${q.end} ${q.timeZone || 'UTC'}` : '—');
      const st = c.status || {};
      cell(tr, st.lastSuccessAt ? fmtTime(st.lastSuccessAt) : 'never', 'ch-success');
      const failedLast = st.lastErrorAt && (!st.lastSuccessAt || Date.parse(st.lastErrorAt) >= Date.parse(st.lastSuccessAt));
      cell(tr, st.lastErrorAt ? `${fmtTime(st.lastErrorAt)}: ${st.lastError || ''}` : '—', failedLast ? 'failed ch-error' : 'ch-error');
      const act = cell(tr, '');
      const edit = document.createElement('button');
      edit.type = 'button';
      edit.className = 'ch-edit';
      edit.textContent = 'Edit';
      edit.setAttribute('aria-label', `Edit the channel ${c.name}`);
      edit.addEventListener('click', () => startEdit(c));
      act.append(edit, ' ');
      const del = document.createElement('button');
      del.type = 'button';
      del.className = 'ch-delete';
      del.textContent = 'Delete';
      del.setAttribute('aria-label', `Delete the channel ${c.name}`);
      del.addEventListener('click', async () => {
        showError(null);
        if (!confirm(`Delete the channel ${c.name}? Alerts stop being sent to it.`)) return;
        try {
          await api('DELETE', `/api/v1/channels/${encodeURIComponent(c.id)}`);
          list = list.filter((x) => x.id !== c.id);
          render();
        } catch (err) { showError(err); }
      });
      act.append(del);
      tbody.append(tr);
    }
  }

  async function load() {
    const { channels } = await api('GET', '/api/v1/channels');
    list = channels || [];
    render();
  }

  function options(sel, items) {
    sel.replaceChildren(...items.map(([value, label]) => { const o = document.createElement('option'); o.value = value; o.textContent = label; return o; }));
  }

  function showKindFields() {
    const email = $('ch-kind').value === 'email';
    $('ch-email-fields').hidden = !email;
    $('ch-chat-fields').hidden = email;
  }

  // startEdit fills the form with a channel; saving then replaces it (PUT).
  // Its kind stays; an empty URL field keeps the stored URL, never shown.
  function startEdit(c) {
    const form = $('channel-form');
    form.dataset.editing = c.id;
    $('ch-kind').value = c.kind;
    $('ch-kind').disabled = true;
    showKindFields();
    $('ch-name').value = c.name || '';
    $('ch-recipients').value = (c.recipients || []).join(', ');
    $('ch-url').value = '';
    $('ch-url').placeholder = c.urlSet ? `set (${c.urlHost || 'hidden'}); leave empty to keep it` : '';
    for (const cb of document.querySelectorAll('#ch-kinds input')) cb.checked = (c.alertKinds || []).includes(cb.value);
    for (const o of $('ch-drones').options) o.selected = (c.droneIds || []).includes(o.value);
    for (const o of $('ch-fences').options) o.selected = (c.fenceIds || []).includes(o.value);
    $('ch-quiet-start').value = c.quietHours ? c.quietHours.start : '';
    $('ch-quiet-end').value = c.quietHours ? c.quietHours.end : '';
    if (c.quietHours) $('ch-quiet-tz').value = c.quietHours.timeZone || 'UTC';
    $('ch-submit').textContent = 'Save channel';
    $('ch-cancel').hidden = false;
    $('ch-name').focus();
  }

  function resetForm() {
    const form = $('channel-form');
    delete form.dataset.editing;
    $('ch-kind').disabled = false;
    for (const id of ['ch-name', 'ch-recipients', 'ch-url', 'ch-quiet-start', 'ch-quiet-end']) $(id).value = '';
    $('ch-url').placeholder = 'https://hooks.slack.com/services/…';
    for (const cb of document.querySelectorAll('#ch-kinds input')) cb.checked = false;
    for (const o of [...$('ch-drones').options, ...$('ch-fences').options]) o.selected = false;
    $('ch-submit').textContent = 'Add channel';
    $('ch-cancel').hidden = true;
  }

  function input() {
    const kind = $('ch-kind').value;
    const body = { kind, name: $('ch-name').value.trim() };
    if (kind === 'email') body.recipients = $('ch-recipients').value.split(/[,;\s]+/).filter(Boolean);
    else body.url = $('ch-url').value.trim();
    const kinds = [...document.querySelectorAll('#ch-kinds input:checked')].map((x) => x.value);
    if (kinds.length) body.alertKinds = kinds;
    const drones = [...$('ch-drones').selectedOptions].map((o) => o.value);
    if (drones.length) body.droneIds = drones;
    const fences = [...$('ch-fences').selectedOptions].map((o) => o.value);
    if (fences.length) body.fenceIds = fences;
    const start = $('ch-quiet-start').value, end = $('ch-quiet-end').value;
    if (start || end) body.quietHours = { start, end, timeZone: $('ch-quiet-tz').value.trim() };
    return body;
  }

  async function init() {
    const me = await api('GET', '/api/v1/me');
    const canManage = me.user.role !== 'viewer';
    $('channels').hidden = !canManage;
    $('channels-viewer').hidden = canManage;
    if (!canManage) return;
    $('ch-quiet-tz').value = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    $('ch-kind').addEventListener('change', showKindFields);
    showKindFields();
    const [drones, fences] = await Promise.all([api('GET', '/api/v1/drones'), api('GET', '/api/v1/geofences')]);
    options($('ch-drones'), (drones.drones || []).map((d) => [d.id, d.name || d.id]));
    options($('ch-fences'), (fences.geofences || []).map((f) => [f.id, f.name || f.id]));
    $('ch-cancel').addEventListener('click', resetForm);
    onSubmit($('channel-form'), async () => {
      const editing = $('channel-form').dataset.editing;
      let c;
      try {
        c = editing
          ? await api('PUT', `/api/v1/channels/${encodeURIComponent(editing)}`, input())
          : await api('POST', '/api/v1/channels', input());
      } catch (err) {
        showFieldError(err && err.field ? { field: FIELD_INPUT[err.field] || (err.field.startsWith('recipients') ? 'ch-recipients' : '') } : null);
        throw err;
      }
      showFieldError(null);
      list = editing ? list.map((x) => (x.id === c.id ? c : x)) : [...list, c];
      resetForm();
      render();
    });
    $('channels-refresh').addEventListener('click', () => load().catch(showError));
    await load();
  }

  init().catch(showError);
})();
