// Builds the Dronetrack web app into functions/serve-map/web, which serve-map
// embeds with go:embed. The output is a pure function of the sources and the
// locked npm packages (no timestamps), so CI rebuilds it and fails when the
// committed copy differs: `npm ci && npm run build && git diff --exit-code`.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  .replace('%JS%', js);
writeFileSync(join(out, 'index.html'), html);
console.log(`built ${[...outputs, '/assets/' + topoName, '/index.html'].join(' ')}`);
