// Leaflet as the global `L`: leaflet-geoman (./geoman.js, loaded on
// demand) is a plain script that extends the global, so this module must
// have run before it.
import L from 'leaflet';

globalThis.L = L;
export default L;
