// Desktop notifications for alerts while the map is open. The person at
// this browser turns them on with a button (the Notification API asks for
// permission on that click, a user gesture, as browsers require), picks the
// alert kinds that should notify and whether a sound plays; the choice is
// kept in this browser (localStorage), not on the server. Each alert
// raised while the page is open notifies once (by alert id); updates,
// acknowledgements and closes of the same alert do not. The Alerts tab's
// badge is main.js's, unchanged.

const KEY = 'dronetrack.notify';
const KINDS = [
  ['battery.low', 'Low battery'],
  ['battery.exhaustion', 'Battery nearly empty'],
  ['geofence.breach', 'Geofence breach'],
  ['link.lost', 'Link lost'],
];
// Alerts opened longer ago than this are old news by the time the stream
// brings them (a reconnect, a late write): no pop-up.
const FRESH_MS = 10 * 60 * 1000;

function load() {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) || '{}');
    return { enabled: !!v.enabled, sound: !!v.sound, kinds: Array.isArray(v.kinds) ? v.kinds : KINDS.map((k) => k[0]) };
  } catch { return { enabled: false, sound: false, kinds: KINDS.map((k) => k[0]) }; }
}

export class Notifier {
  // panel: the element the controls go into; droneName(id) names a drone;
  // onOpen(droneId) runs when a notification is clicked.
  constructor({ panel, droneName, onOpen }) {
    this.prefs = load();
    this.droneName = droneName;
    this.onOpen = onOpen;
    this.seen = new Set();
    this.shown = 0;
    this.audio = null;
    this.supported = typeof window.Notification === 'function';
    this.render(panel);
  }

  save() { try { localStorage.setItem(KEY, JSON.stringify(this.prefs)); } catch { /* private mode: this page only */ } }

  // active: the person turned notifications on and the browser allows them.
  get active() { return this.supported && this.prefs.enabled && Notification.permission === 'granted'; }

  render(panel) {
    const box = document.createElement('fieldset');
    box.className = 'notify';
    box.id = 'notify';
    const legend = document.createElement('legend');
    legend.textContent = 'Desktop notifications';
    const toggle = document.createElement('button');
    toggle.type = 'button';
    toggle.className = 'btn';
    toggle.id = 'notify-toggle';
    const note = document.createElement('p');
    note.className = 'shown small';
    note.id = 'notify-note';
    note.setAttribute('role', 'status');
    const kinds = document.createElement('div');
    kinds.className = 'notify-kinds';
    for (const [kind, label] of KINDS) {
      const l = document.createElement('label');
      const cb = document.createElement('input');
      cb.type = 'checkbox';
      cb.value = kind;
      cb.checked = this.prefs.kinds.includes(kind);
      cb.addEventListener('change', () => {
        this.prefs.kinds = [...kinds.querySelectorAll('input:checked')].map((x) => x.value);
        this.save();
      });
      l.append(cb, ' ', label);
      kinds.append(l);
    }
    const sl = document.createElement('label');
    const sound = document.createElement('input');
    sound.type = 'checkbox';
    sound.id = 'notify-sound';
    sound.checked = this.prefs.sound;
    sound.addEventListener('change', () => { this.prefs.sound = sound.checked; this.save(); if (sound.checked) this.unlockAudio(); });
    sl.append(sound, ' Play a sound');
    box.append(legend, toggle, note, kinds, sl);
    panel.append(box);
    this.els = { toggle, note, kinds, sound };
    toggle.addEventListener('click', () => this.toggle());
    this.update();
  }

  update() {
    const { toggle, note, kinds, sound } = this.els;
    if (!this.supported) {
      toggle.hidden = true;
      note.textContent = 'This browser does not offer desktop notifications.';
      return;
    }
    const perm = Notification.permission;
    toggle.textContent = this.active ? 'Turn off' : 'Turn on';
    toggle.setAttribute('aria-pressed', String(this.active));
    note.textContent = perm === 'denied'
      ? 'Notifications are blocked for this site in the browser settings.'
      : this.active ? 'On: raised alerts of the kinds below pop up while this page is open.' : 'Off.';
    for (const cb of kinds.querySelectorAll('input')) cb.disabled = !this.active;
    sound.disabled = !this.active;
  }

  // toggle runs on the click: the permission request needs that gesture.
  async toggle() {
    if (this.active) {
      this.prefs.enabled = false;
    } else {
      let perm = Notification.permission;
      if (perm === 'default') perm = await Notification.requestPermission();
      this.prefs.enabled = perm === 'granted';
      if (this.prefs.sound) this.unlockAudio();
    }
    this.save();
    this.update();
  }

  // unlockAudio creates the audio context during a gesture, so later
  // beeps (from stream events, not gestures) may play.
  unlockAudio() {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    if (!this.audio) { try { this.audio = new AC(); } catch { this.audio = null; } }
    this.audio?.resume?.().catch(() => {});
  }

  beep() {
    const ctx = this.audio;
    if (!ctx) return;
    const o = ctx.createOscillator(), g = ctx.createGain();
    o.frequency.value = 880;
    g.gain.setValueAtTime(0.2, ctx.currentTime);
    g.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.4);
    o.connect(g).connect(ctx.destination);
    o.start();
    o.stop(ctx.currentTime + 0.4);
  }

  // onAlert takes an "alert" event's data from the stream.
  onAlert(data) {
    let a;
    try { a = JSON.parse(data); } catch { return; }
    if (!a || !a.id || a.closedAt || this.seen.has(a.id)) return;
    this.seen.add(a.id);
    if (!this.active || !this.prefs.kinds.includes(a.kind)) return;
    if (Date.now() - Date.parse(a.openedAt) > FRESH_MS) return;
    const name = this.droneName(a.droneId);
    const label = (KINDS.find((k) => k[0] === a.kind) || [a.kind, a.kind])[1];
    let body = a.message || '';
    if (typeof a.battery === 'number') body += ` (battery ${Math.round(a.battery)} %)`;
    try {
      const n = new Notification(`${name}: ${label}`, { body, tag: a.id });
      n.onclick = () => { window.focus(); this.onOpen(a.droneId); n.close(); };
      this.shown++;
    } catch (err) { console.warn('notification failed', err); return; }
    if (this.prefs.sound) this.beep();
  }
}
