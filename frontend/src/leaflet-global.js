// Leaflet as the global `L`: leaflet-geoman is a plain script that extends
// the global, so this module must be imported before it.
import L from 'leaflet';

globalThis.L = L;
export default L;
