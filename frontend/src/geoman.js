// leaflet-geoman, loaded on demand: build.mjs splits this module (and the
// 300 KB of geoman with its pre-bundled lodash/turf/polyclip) into its own
// hashed chunk, fetched from our origin by geofences.js only when an owner
// or admin opens the Fences tab, so the map's first load and viewers never
// download it. Its stylesheet is a separate hashed asset (__GEOMAN_CSS_URL__,
// a <link> our CSP's style-src 'self' allows).
//
// Leaflet is not imported here: geoman extends the global `L`, which
// main.js set (./leaflet-global.js) long before this chunk loads. Importing
// it would make esbuild split Leaflet into a chunk shared by both, one more
// request on the map's first load.
import '@geoman-io/leaflet-geoman-free';

const L = globalThis.L;

// Opt-in: only layers created with pmIgnore: false (the fence being
// edited) get edit handlers; the drone markers stay out of snapping.
L.PM.setOptIn(true);

/**
 * attach gives an existing map its geoman handler (map.pm): geoman's own
 * init hook runs only for maps created after it loaded. main.js creates the
 * map with pmIgnore: false, which opt-in mode needs.
 */
export function attach(map) {
  if (!map.pm) {
    L.PM.reInitLayer(map);
    map.pm.setGlobalOptions({});
  }
  return map.pm;
}

/** stylesheet adds geoman's stylesheet to the page once. */
export function stylesheet() {
  const href = __GEOMAN_CSS_URL__;
  if (document.querySelector(`link[rel=stylesheet][href="${href}"]`)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    link.addEventListener('load', () => resolve());
    link.addEventListener('error', () => reject(new Error(`geoman stylesheet ${href} failed to load`)));
    document.head.appendChild(link);
  });
}
