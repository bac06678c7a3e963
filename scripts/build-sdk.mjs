// Bundles the SDK and the drop page's script for pages served by the relay (dist/public/), prints the relay client's gzipped size, and copies Swagger UI for /docs.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { copySwaggerUi } from './copy-swagger-ui.mjs';

/** The relay client must stay small enough to drop into any page (the SDK issue's target). */
const CLIENT_BUDGET_BYTES = 3 * 1024;

const bundles = [
  { entry: 'sdk/index.ts', out: 'dist/public/deadrop.js' },
  // noble is bundled in, so that a page needs this one file for the worker's encryption.
  { entry: 'sdk/crypto.ts', out: 'dist/public/deadrop-crypto.js' },
  // The /drop page's script: drops with the relay client and noble.
  { entry: 'sdk/drop.ts', out: 'dist/public/drop.js' },
  // The /box page's script, and its service worker (a classic script, served at /box/sw.js for the /box/ scope).
  { entry: 'sdk/box/page.ts', out: 'dist/public/box-page.js' },
  { entry: 'sdk/box/download-sw.ts', out: 'dist/public/box-sw.js', format: 'iife' },
];

for (const { entry, out, format = 'esm' } of bundles) {
  await build({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    format,
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'eof',
    logLevel: 'warning',
  });
  const bytes = readFileSync(out);
  console.log(`${out}: ${bytes.length} B minified, ${gzipSync(bytes).length} B gzipped`);
}

const clientGzip = gzipSync(readFileSync(bundles[0].out)).length;
console.log(
  `relay client: ${clientGzip} B minified+gzipped (budget ${CLIENT_BUDGET_BYTES} B)${clientGzip > CLIENT_BUDGET_BYTES ? ' — OVER BUDGET' : ''}`,
);

copySwaggerUi('dist/swagger-ui');
