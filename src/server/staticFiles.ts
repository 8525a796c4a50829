// Static files: the positions page built by web/build.mjs into dist/web, served by the HTTP
// intake for GET paths outside /api/ that no route matches.

import { readFile, stat } from 'node:fs/promises';
import { extname, normalize, resolve, sep } from 'node:path';
import type { HttpResult } from './httpTypes.js';

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};
const staticFileBytesMax = 16 * 1024 * 1024;

/**
 * Static files (the positions page built by web/build.mjs into dist/web). Caching: a content-hashed
 * name (`name-HASH.ext`, esbuild's [hash]) never changes content, so it is cached for a year as
 * immutable; anything else (index.html) is `no-cache`: revalidated on every load with its ETag (304).
 * Compression is done at build time: a `.br` or `.gz` sibling is served when Accept-Encoding allows
 * it (brotli first), with Vary: Accept-Encoding so caches keep the variants apart.
 */
const hashedAsset = /-[A-Z0-9]{8,}\.[A-Za-z0-9]+(\.map)?$/;
const precompressed: readonly (readonly [coding: string, ext: string])[] = [
  ['br', '.br'],
  ['gzip', '.gz'],
];

/** Whether Accept-Encoding allows `coding`: listed (or `*`) with q > 0; an explicit entry wins over `*`. */
export function acceptsEncoding(header: string, coding: string): boolean {
  let star: boolean | null = null;
  for (const part of header.toLowerCase().split(',')) {
    const [name, ...params] = part.split(';').map((x) => x.trim());
    const q = params.find((p) => p.startsWith('q='));
    const ok = q === undefined || Number(q.slice(2)) > 0;
    if (name === coding) return ok;
    if (name === '*') star = ok;
  }
  return star ?? false;
}

async function fileStat(file: string): Promise<import('node:fs').Stats | null> {
  try {
    const st = await stat(file);
    return st.isFile() && st.size <= staticFileBytesMax ? st : null;
  } catch {
    return null;
  }
}

export async function serveStatic(dir: string, urlPath: string, want: { acceptEncoding: string; ifNoneMatch: string }): Promise<HttpResult | null> {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (rel.includes('\0')) return null;
  if (rel.endsWith('/')) rel += 'index.html';
  const root = resolve(dir);
  const file = resolve(root, '.' + normalize('/' + rel));
  if (file !== root && !file.startsWith(root + sep)) return null;
  const original = await fileStat(file);
  if (original === null) return null;
  let served = file;
  let st = original;
  let coding: string | null = null;
  for (const [c, ext] of precompressed) {
    if (!acceptsEncoding(want.acceptEncoding, c)) continue;
    const variant = await fileStat(file + ext);
    if (variant === null) continue;
    served = file + ext;
    st = variant;
    coding = c;
    break;
  }
  const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}${coding === null ? '' : '-' + coding}"`;
  const headers: Record<string, string> = {
    'Cache-Control': hashedAsset.test(file) ? 'public, max-age=31536000, immutable' : 'no-cache',
    ETag: etag,
    Vary: 'Accept-Encoding',
  };
  if (coding !== null) headers['Content-Encoding'] = coding;
  const contentType = contentTypes[extname(file).toLowerCase()] ?? 'application/octet-stream';
  if (want.ifNoneMatch !== '' && want.ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) {
    return { status: 304, body: '', contentType, headers };
  }
  try {
    return { status: 200, body: await readFile(served), contentType, headers };
  } catch {
    return null;
  }
}
