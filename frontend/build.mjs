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

const res = await build({
  entryPoints: [join(here, 'src', 'main.js')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outdir: out,
  entryNames: 'assets/[name]-[hash]',
  assetNames: 'assets/[name]-[hash]',
  loader: { '.png': 'file', '.svg': 'file' },
  define: { __COUNTRIES_URL__: JSON.stringify(`/assets/${topoName}`) },
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});

const outputs = Object.keys(res.metafile.outputs).map((p) => '/' + relative(out, p).split('\\').join('/'));
const js = outputs.find((p) => p.endsWith('.js'));
const css = outputs.find((p) => p.endsWith('.css'));
if (!js || !css) throw new Error(`build: missing js or css output in ${outputs.join(', ')}`);
const html = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('%CSS%', css)
  .replace('%JS%', js)
  .replace('%LICENSES%', `/assets/${noticesName}`);
writeFileSync(join(out, 'index.html'), html);
console.log(`built ${[...outputs, '/assets/' + topoName, '/assets/' + noticesName, '/index.html'].join(' ')}`);
