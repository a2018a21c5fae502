// The fleet as the page knows it: drone views from the list and the stream,
// with the derived status operators sort and colour by.

// The tenant's alert settings (GET /api/v1/alert-settings), so the map's
// 'low' and 'silent' colours and the battery.low and link.lost alerts use one
// threshold each. Until they load the server's defaults
// (alerting.DefaultSettings) apply.
export const alertSettings = { lowBatteryPct: 20, hysteresisPct: 5, minTimeToEmptySecs: 300, lostLinkSecs: 60 };

/** setAlertSettings takes the tenant's settings; it reports whether a threshold the map colours by changed. */
export function setAlertSettings(s) {
  const before = [alertSettings.lowBatteryPct, alertSettings.lostLinkSecs];
  for (const k of Object.keys(alertSettings)) if (typeof s?.[k] === 'number' && isFinite(s[k])) alertSettings[k] = s[k];
  return alertSettings.lowBatteryPct !== before[0] || alertSettings.lostLinkSecs !== before[1];
}

/** lowBattery is the battery.low rule's opening test: below the tenant's threshold. */
export function lowBattery(battery) {
  return typeof battery === 'number' && battery < alertSettings.lowBatteryPct;
}

// Silence on the map starts when the link.lost alert would open (the tenant's
// lostLinkSecs), so the map and the alert agree; a tenant that turned the
// alert off (0) still sees silent drones after the default minute.
const DEFAULT_LOST_LINK_SECS = 60;

/** silentMs is how long without a report makes a drone 'silent'. */
export function silentMs() {
  const s = alertSettings.lostLinkSecs;
  return (s > 0 ? s : DEFAULT_LOST_LINK_SECS) * 1000;
}

/** status is 'ok', 'low' (battery) or 'silent' (no report for the tenant's lost-link time). */
export function status(d, now) {
  const s = d.state;
  if (!s || !s.ts) return 'silent';
  if (now - d.t > silentMs()) return 'silent';
  if (lowBattery(s.battery)) return 'low';
  return 'ok';
}

export const STATUS_LABEL = { ok: 'OK', low: 'Low battery', silent: 'Silent' };

export class Fleet {
  constructor() {
    /** @type {Map<string, any>} id -> drone view plus t (report time, ms) */
    this.drones = new Map();
    this.dirty = new Set();
    this.listeners = [];
  }

  /** replace loads a full list (first load or resync). */
  replace(views) {
    this.renamed = true; // membership may change: the list rebuilds its name order
    const seen = new Set();
    for (const v of views) {
      seen.add(v.id);
      this.put(v);
    }
    for (const id of this.drones.keys()) if (!seen.has(id)) { this.drones.delete(id); this.dirty.add(id); }
    this.changed();
  }

  /** apply takes one streamed drone view; an older report never wins. */
  apply(v) {
    const cur = this.drones.get(v.id);
    if (cur && cur.state && v.state && Date.parse(v.state.ts) < cur.t) return;
    this.put(v);
    this.changed();
  }

  put(v) {
    const t = v.state && v.state.ts ? Date.parse(v.state.ts) : 0;
    const cur = this.drones.get(v.id);
    if (cur) { if (cur.name !== v.name) this.renamed = true; cur.name = v.name; cur.state = v.state; cur.t = t; } else this.drones.set(v.id, { id: v.id, name: v.name, state: v.state, t });
    this.dirty.add(v.id);
  }

  changed() { for (const f of this.listeners) f(); }
  onChange(f) { this.listeners.push(f); }

  /** takeDirty returns and clears the ids changed since the last call. */
  takeDirty() {
    const d = this.dirty;
    this.dirty = new Set();
    return d;
  }
}

// Formatting helpers (units as the API reports them: metres, m/s, degrees, percent).
export const fmt = {
  ago(ms) {
    if (!isFinite(ms)) return 'never';
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  },
  duration(sec) {
    if (typeof sec !== 'number' || !isFinite(sec) || sec < 0) return '—';
    if (sec < 90) return `${Math.round(sec)} s`;
    if (sec < 5400) return `${Math.round(sec / 60)} min`;
    return `${(sec / 3600).toFixed(1)} h`;
  },
  num(v, unit, digits = 0) { return typeof v === 'number' && isFinite(v) ? `${v.toFixed(digits)} ${unit}` : '—'; },
  speed(v) { return typeof v === 'number' && isFinite(v) ? `${v.toFixed(1)} m/s · ${(v * 3.6).toFixed(0)} km/h` : '—'; },
  heading(v) {
    if (typeof v !== 'number' || !isFinite(v)) return '—';
    const dirs = ['N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW'];
    const h = ((v % 360) + 360) % 360;
    return `${Math.round(h)}° ${dirs[Math.round(h / 45) % 8]}`;
  },
  pos(s) { return s ? `${s.lat.toFixed(5)}, ${s.lon.toFixed(5)}` : '—'; },
  battery(v) { return typeof v === 'number' && isFinite(v) ? `${Math.round(v)} %` : '—'; },
  /** gps is the fix type (MAVLink GPS_FIX_TYPE) and satellites, e.g. "3D fix · 14 sats". */
  gps(s) {
    if (!s || (typeof s.fix !== 'number' && typeof s.satellites !== 'number')) return '—';
    const parts = [];
    if (typeof s.fix === 'number') parts.push(FIX_LABEL[s.fix] ?? `fix ${s.fix}`);
    if (typeof s.satellites === 'number') parts.push(`${s.satellites} sats`);
    if (typeof s.hAcc === 'number') parts.push(`±${s.hAcc < 1 ? s.hAcc.toFixed(2) : s.hAcc < 10 ? s.hAcc.toFixed(1) : Math.round(s.hAcc)} m`);
    return parts.join(' · ');
  },
  armed(v) { return v === true ? 'Armed' : v === false ? 'Disarmed' : '—'; },
  climb(v) { return typeof v === 'number' && isFinite(v) ? `${v > 0 ? '+' : ''}${v.toFixed(1)} m/s` : '—'; },
  pct(v) { return typeof v === 'number' && isFinite(v) ? `${Math.round(v)} %` : '—'; },
};

/** FIX_LABEL names MAVLink GPS_FIX_TYPE values (the contract's fix field). */
export const FIX_LABEL = ['No GPS', 'No fix', '2D fix', '3D fix', 'DGPS', 'RTK float', 'RTK fixed', 'Static', 'PPP'];

/** heading picks the reported heading, else the course from successive positions. */
export function headingOf(s) {
  if (!s) return 0;
  if (typeof s.heading === 'number') return s.heading;
  if (typeof s.course === 'number') return s.course;
  return 0;
}
export function speedOf(s) {
  if (!s) return undefined;
  return typeof s.speed === 'number' ? s.speed : s.groundSpeed;
}
