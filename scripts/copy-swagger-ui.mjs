// Copies the Swagger UI files /docs serves, with their licences, out of swagger-ui-dist (a devDependency).
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** What public/docs.html loads, and the licence texts that must travel with it (Apache-2.0). */
const FILES = [
  'swagger-ui-bundle.js',
  'swagger-ui.css',
  'swagger-ui-bundle.js.LICENSE.txt',
  'LICENSE',
  'NOTICE',
];

/** Copies the files into `outDir` (served at /docs/assets), so the relay needs swagger-ui-dist only to build. */
export function copySwaggerUi(outDir) {
  const source = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  mkdirSync(outDir, { recursive: true });
  for (const file of FILES) copyFileSync(join(source, file), join(outDir, file));
  console.log(`${outDir}: ${FILES.length} files of swagger-ui-dist`);
}
