// Builds the Dronetrack web app into functions/serve-map/web, which serve-map
// embeds with go:embed. The output is a pure function of the sources and the
// locked npm packages (no timestamps), so CI rebuilds it and fails when the
// committed copy differs: `npm ci && npm run build && git diff --exit-code`.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'functions', 'serve-map', 'web');
const assets = join(out, 'assets');
const require = createRequire(import.meta.url);

rmSync(assets, { recursive: true, force: true });
rmSync(join(out, 'index.html'), { force: true });
rmSync(join(out, 'track.html'), { force: true });
mkdirSync(assets, { recursive: true });

// The offline basemap: Natural Earth country outlines (world-atlas TopoJSON),
// shipped as a hashed asset the app fetches from its own origin.
const topo = readFileSync(require.resolve('world-atlas/countries-50m.json'));
const topoName = `countries-${createHash('sha256').update(topo).digest('hex').slice(0, 10)}.json`;
writeFileSync(join(assets, topoName), topo);

// Third-party notices: each package the page ships (bundled code, the
// basemap data) and the packages they depend on, with their licence texts,
// which their (MIT, BSD, ISC) licences ask copies to carry. leaflet-geoman
// ships its dependencies pre-bundled, so they are found by walking
// package.json dependencies rather than from esbuild's inputs.
const shipped = ['leaflet', 'topojson-client', 'world-atlas', '@geoman-io/leaflet-geoman-free'];
function packageDir(name, fromDir) {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const cand = join(dir, 'node_modules', name);
    if (existsSync(join(cand, 'package.json'))) return cand;
    if (dir === here || dir === dirname(dir)) throw new Error(`build: package ${name} not installed`);
  }
}
const found = new Map(); // name -> { version, license, text }
(function walk(names, fromDir) {
  for (const name of names) {
    if (found.has(name)) continue;
    const dir = packageDir(name, fromDir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const file = readdirSync(dir).sort().find((f) => /^(licen[cs]e|copying)/i.test(f));
    found.set(name, { version: pkg.version, license: pkg.license || 'see the package', text: file ? readFileSync(join(dir, file), 'utf8').trim() : '' });
    walk(Object.keys(pkg.dependencies || {}), dir);
  }
})(shipped, here);
const notices = [...found.keys()].sort().map((name) => {
  const p = found.get(name);
  return `${name} ${p.version} (${p.license})\n\n${p.text || '(no licence file in the package)'}\n`;
}).join(`\n${'-'.repeat(72)}\n\n`);
const noticesName = `third-party-licenses-${createHash('sha256').update(notices).digest('hex').slice(0, 10)}.txt`;
writeFileSync(join(assets, noticesName), notices);

const target = ['es2020', 'chrome100', 'firefox100', 'safari15'];
const urlOf = (p) => '/' + relative(out, p).split('\\').join('/');

// leaflet-geoman's stylesheet, a hashed asset of its own: the editor's
// chunk (src/geoman.js) links it when it loads, as esbuild does not load
// the CSS of a lazily imported chunk by itself.
const gmCSS = await build({
  entryPoints: { 'leaflet-geoman': require.resolve('@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css') },
  bundle: true,
  minify: true,
  target,
  outdir: out,
  entryNames: 'assets/[name]-[hash]',
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});
const geomanCSS = urlOf(Object.keys(gmCSS.metafile.outputs).find((p) => p.endsWith('.css')));

// The app, split (ESM): main.js and what it imports statically is the map's
// first load; the geofence editor's leaflet-geoman (src/geoman.js, a
// dynamic import) becomes a hashed chunk fetched only when a manager opens
// the Fences tab. Chunks are named by content hash, as the entry is.
const res = await build({
  entryPoints: [join(here, 'src', 'main.js')],
  bundle: true,
  splitting: true,
  minify: true,
  format: 'esm',
  target,
  outdir: out,
  entryNames: 'assets/[name]-[hash]',
  chunkNames: 'assets/[name]-[hash]',
  assetNames: 'assets/[name]-[hash]',
  loader: { '.png': 'file', '.svg': 'file' },
  define: { __COUNTRIES_URL__: JSON.stringify(`/assets/${topoName}`), __GEOMAN_CSS_URL__: JSON.stringify(geomanCSS) },
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});

const outs = res.metafile.outputs;
const entry = Object.keys(outs).find((p) => outs[p].entryPoint === 'src/main.js');
if (!entry || !outs[entry].cssBundle) throw new Error(`build: missing the main js or css in ${Object.keys(outs).join(', ')}`);
// The entry's static imports (none today: geoman.js shares no module with
// main.js) are preloaded, so the first load has no waterfall.
const preload = outs[entry].imports.filter((i) => i.kind === 'import-statement')
  .map((i) => `<link rel="modulepreload" href="${urlOf(i.path)}">\n`).join('');
const html = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('%CSS%', urlOf(outs[entry].cssBundle))
  .replace(/^(.*)%JS%(.*)$/m, (_, a, b) => `${preload}${a}${urlOf(entry)}${b}`)
  .replace('%LICENSES%', `/assets/${noticesName}`);
writeFileSync(join(out, 'index.html'), html);

// The public tracking page (/t/TOKEN, src/track.js): a separate entry
// built on its own, without splitting, so it shares no chunk with the
// fleet app and a customer's phone loads only Leaflet and the page.
const tr = await build({
  entryPoints: [join(here, 'src', 'track.js')],
  bundle: true,
  minify: true,
  format: 'esm',
  target,
  outdir: out,
  entryNames: 'assets/[name]-[hash]',
  assetNames: 'assets/[name]-[hash]',
  loader: { '.png': 'file', '.svg': 'file' },
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});
const trOuts = tr.metafile.outputs;
const trEntry = Object.keys(trOuts).find((p) => trOuts[p].entryPoint === 'src/track.js');
if (!trEntry || !trOuts[trEntry].cssBundle) throw new Error(`build: missing the track js or css in ${Object.keys(trOuts).join(', ')}`);
writeFileSync(join(out, 'track.html'), readFileSync(join(here, 'src', 'track.html'), 'utf8')
  .replace('%CSS%', urlOf(trOuts[trEntry].cssBundle))
  .replace('%JS%', urlOf(trEntry))
  .replace('%LICENSES%', `/assets/${noticesName}`));

const outputs = [...new Set([...Object.keys(outs), ...Object.keys(gmCSS.metafile.outputs), ...Object.keys(trOuts)])].map(urlOf);
console.log(`built ${[...outputs, '/assets/' + topoName, '/assets/' + noticesName, '/index.html', '/track.html'].join(' ')}`);
