#!/usr/bin/env node
// Replaces dist/src/vendor/*.js (tsc's output: re-exports of a dependency) with one bundled module
// each, so Node loads one file instead of the dependency's hundreds (src/vendor/typebox.ts says why).
// Runs after tsc in `npm run build:ts`; without it the re-exports still work, only slower to load.
import * as esbuild from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'dist', 'src', 'vendor');
for (const name of readdirSync(dir).filter((f) => f.endsWith('.js'))) {
  const file = join(dir, name);
  await esbuild.build({ entryPoints: [file], bundle: true, format: 'esm', platform: 'neutral', target: 'es2022', outfile: file, allowOverwrite: true, logLevel: 'warning' });
  // tsc's source map describes the re-exports, not the bundle.
  rmSync(`${file}.map`, { force: true });
}
