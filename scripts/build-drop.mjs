// Bundles the drop SDK (sdk/drop.ts, with the relay client and @noble) for the relay's /drop page: dist/public/drop.js.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const out = 'dist/public/drop.js';
await build({
  entryPoints: ['sdk/drop.ts'],
  outfile: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'eof',
  logLevel: 'warning',
});
const bytes = readFileSync(out);
console.log(`${out}: ${bytes.length} B minified, ${gzipSync(bytes).length} B gzipped`);
