#!/usr/bin/env node
// Builds the positions page into dist/web/ with esbuild's JS API:
//   assets/app-<hash>.js (+ .map), assets/style-<hash>.css (+ .map), index.html
// plus .gz and .br siblings of every text file where compression pays, made once here so the
// server only picks the file that matches Accept-Encoding (no compression work per request).
// Content-hashed names let the server mark assets immutable; index.html (unhashed) is no-cache.
// Files are written next to the old ones (temp file + rename), index.html last and stale assets
// removed after it, so a running server never serves an index.html whose assets are missing.
// Usage: node web/build.mjs [--no-minify] [--outdir DIR]

import * as esbuild from 'esbuild';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outFlag = args.indexOf('--outdir');
// --outdir lets tests build into a temp dir instead of replacing the dist/web a running server uses.
const outDir = outFlag >= 0 && args[outFlag + 1] ? resolve(args[outFlag + 1]) : join(root, 'dist', 'web');
const minify = !args.includes('--no-minify');

const compressible = /\.(html|js|css|map|svg|json|txt)$/;
/** Below this the headers outweigh the saving. */
const compressMinBytes = 512;

function writeAtomic(file, data) {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/** Writes `file` and, when they are at least 10% smaller, its .br and .gz; returns the names written. */
function emit(file, data) {
  const written = [file];
  writeAtomic(file, data);
  const sizes = { raw: data.length };
  // A sibling left from an earlier build would be served in place of this content: drop it first.
  for (const ext of ['.br', '.gz']) rmSync(file + ext, { force: true });
  if (compressible.test(file) && data.length >= compressMinBytes) {
    const br = brotliCompressSync(data, {
      params: { [zlib.BROTLI_PARAM_QUALITY]: 11, [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_TEXT, [zlib.BROTLI_PARAM_SIZE_HINT]: data.length },
    });
    const gz = gzipSync(data, { level: 9 });
    for (const [ext, bytes] of [['.br', br], ['.gz', gz]]) {
      if (bytes.length > data.length * 0.9) continue;
      writeAtomic(file + ext, bytes);
      written.push(file + ext);
      sizes[ext.slice(1)] = bytes.length;
    }
  }
  const rel = relative(root, file);
  console.log(`  ${rel.padEnd(44)} ${String(sizes.raw).padStart(8)} B` + (sizes.br ? `  br ${sizes.br} B` : '') + (sizes.gz ? `  gz ${sizes.gz} B` : ''));
  return written;
}

function listFiles(dir) {
  try {
    return readdirSync(dir)
      .map((name) => join(dir, name))
      .filter((p) => statSync(p).isFile());
  } catch {
    return [];
  }
}

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { app: 'web/src/main.ts', style: 'web/src/styles.css' },
  outdir: join(outDir, 'assets'),
  entryNames: '[name]-[hash]',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  // Browsers of the last few years: no transpiling of classes, async or optional chaining needed.
  target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
  minify,
  sourcemap: 'linked',
  sourcesContent: true,
  legalComments: 'none',
  charset: 'utf8',
  // The SDK imports `ws` only in Node without a global WebSocket; browsers never execute that import.
  external: ['ws'],
  metafile: true,
  write: false,
  logLevel: 'warning',
});

const written = new Set();
const entryOut = {};
for (const [out, meta] of Object.entries(result.metafile.outputs)) {
  if (meta.entryPoint === 'web/src/main.ts') entryOut.app = out;
  if (meta.entryPoint === 'web/src/styles.css') entryOut.style = out;
}
if (!entryOut.app || !entryOut.style) throw new Error(`esbuild outputs without the expected entry points: ${Object.keys(result.metafile.outputs).join(', ')}`);

console.log('web build:');
for (const f of result.outputFiles) for (const w of emit(f.path, Buffer.from(f.contents))) written.add(w);

const name = (out) => out.split('/').pop();
const template = readFileSync(join(root, 'web', 'index.html'), 'utf8');
if (!template.includes('%APP%') || !template.includes('%STYLE%')) throw new Error('web/index.html must reference %APP% and %STYLE%');
const html = template.replaceAll('%APP%', name(entryOut.app)).replaceAll('%STYLE%', name(entryOut.style));
for (const w of emit(join(outDir, 'index.html'), Buffer.from(html))) written.add(w);

// Stale assets of earlier builds go only now, after the new index.html points away from them.
// Only hashed files under assets/ are candidates, so a mistaken --outdir never loses anything else.
for (const f of listFiles(join(outDir, 'assets'))) {
  if (!written.has(f) && /-[A-Z0-9]{8}\.[a-z.]+$/.test(f)) rmSync(f, { force: true });
}
console.log(`web build: ${relative(root, outDir)}/ (${minify ? 'minified' : 'not minified'})`);
