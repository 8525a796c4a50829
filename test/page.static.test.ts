// Proves how the engine ships the positions page, without a browser: web/build.mjs (esbuild) emits
// content-hashed assets with .br/.gz siblings that decompress to the same bytes, an index.html that
// references them and nothing off-host (no CDN); the sources type-check under strict; and the server's
// static route answers with the right Content-Type, Cache-Control (hashed assets: a year, immutable;
// index.html: no-cache with an ETag and 304 on revalidation), the precompressed variant that
// Accept-Encoding allows (brotli first, q=0 respected, Vary: Accept-Encoding), no-store on the API,
// and nothing outside the directory.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { acceptsEncoding } from '../src/server/server.js';
import { startHarness, type Harness } from './support/serverHarness.js';
import { ensureServerBuilt, root } from './support/pageHarness.js';

let out = '';
let h: Harness;
let appJs = '';
let styleCss = '';

/** A raw GET: fetch() would add its own Accept-Encoding and decompress behind our back. */
function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(h.url + path, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  ensureServerBuilt();
  out = mkdtempSync(join(tmpdir(), 'mtm-web-build-'));
  // A build of its own: the dist/web a running server (or another test) uses is left alone.
  execFileSync(process.execPath, [join(root, 'web', 'build.mjs'), '--outdir', out], { cwd: root, stdio: 'pipe', timeout: 60_000 });
  const assets = readdirSync(join(out, 'assets'));
  appJs = assets.find((f) => /^app-[A-Z0-9]{8}\.js$/.test(f)) ?? '';
  styleCss = assets.find((f) => /^style-[A-Z0-9]{8}\.css$/.test(f)) ?? '';
  h = await startHarness({ staticDir: out }, { workers: 1 });
}, 120_000);

afterAll(async () => {
  await h?.close();
  if (out !== '') rmSync(out, { recursive: true, force: true });
});

describe('web/build.mjs', () => {
  it('emits hashed assets referenced by index.html, each with .br and .gz siblings of the same bytes', () => {
    expect(appJs).not.toBe('');
    expect(styleCss).not.toBe('');
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    expect(html).toContain(`<script type="module" src="assets/${appJs}"></script>`);
    expect(html).toContain(`<link rel="stylesheet" href="assets/${styleCss}">`);
    expect(html).not.toMatch(/%APP%|%STYLE%/);
    for (const f of ['index.html', `assets/${appJs}`, `assets/${styleCss}`]) {
      const raw = readFileSync(join(out, f));
      expect(brotliDecompressSync(readFileSync(join(out, f + '.br'))).equals(raw), f + '.br').toBe(true);
      expect(gunzipSync(readFileSync(join(out, f + '.gz'))).equals(raw), f + '.gz').toBe(true);
      expect(readFileSync(join(out, f + '.br')).length).toBeLessThan(raw.length * 0.9);
    }
  });

  it('is light and self-contained: small bundle, no framework, nothing loaded from another host', () => {
    const js = readFileSync(join(out, 'assets', appJs), 'utf8');
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    expect(readFileSync(join(out, 'assets', appJs + '.br')).length).toBeLessThan(40 * 1024);
    // The only absolute URL is the SVG namespace (an identifier, never fetched).
    expect(js.match(/https?:\/\/[^\s"'`)]+/g) ?? []).toEqual(['http://www.w3.org/2000/svg']);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).toMatch(/Content-Security-Policy" content="default-src 'self'/);
    expect(js).not.toMatch(/\bReact\b|\bvue\b|jQuery/);
  });

  it('type-checks the page sources under strict (esbuild only strips types)', () => {
    expect(() => execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'web/tsconfig.json')], { cwd: root, stdio: 'pipe', timeout: 120_000 })).not.toThrow();
  }, 120_000);
});

describe('static route', () => {
  it('serves index.html as no-cache HTML with an ETag, and 304 when it did not change', async () => {
    const r = await get('/', { 'Accept-Encoding': 'identity' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.headers.vary).toBe('Accept-Encoding');
    expect(r.body.equals(readFileSync(join(out, 'index.html')))).toBe(true);
    const etag = String(r.headers.etag);
    expect(etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    const again = await get('/', { 'Accept-Encoding': 'identity', 'If-None-Match': etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect((await get('/', { 'Accept-Encoding': 'identity', 'If-None-Match': '"other"' })).status).toBe(200);
  });

  it('serves hashed assets for a year as immutable, with their content types', async () => {
    const js = await get(`/assets/${appJs}`, { 'Accept-Encoding': 'identity' });
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const css = await get(`/assets/${styleCss}`, { 'Accept-Encoding': 'identity' });
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(css.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const map = await get(`/assets/${appJs}.map`, { 'Accept-Encoding': 'identity' });
    expect(map.headers['content-type']).toBe('application/json');
  });

  it('picks the precompressed file Accept-Encoding allows: brotli first, then gzip, q=0 respected', async () => {
    const raw = readFileSync(join(out, 'assets', appJs));
    const br = await get(`/assets/${appJs}`, { 'Accept-Encoding': 'gzip, deflate, br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers.vary).toBe('Accept-Encoding');
    expect(brotliDecompressSync(br.body).equals(raw)).toBe(true);
    const gz = await get(`/assets/${appJs}`, { 'Accept-Encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).equals(raw)).toBe(true);
    const notBr = await get(`/assets/${appJs}`, { 'Accept-Encoding': 'br;q=0, gzip;q=0.5' });
    expect(notBr.headers['content-encoding']).toBe('gzip');
    const none = await get(`/assets/${appJs}`, {});
    expect(none.headers['content-encoding']).toBeUndefined();
    expect(none.body.equals(raw)).toBe(true);
    // Each variant has its own ETag, so a cache never answers one encoding's 304 for another.
    expect(br.headers.etag).not.toBe(gz.headers.etag);
  });

  it('keeps the API no-store and answers 404 outside the directory', async () => {
    const list = await get('/api/v1/portfolios');
    expect(list.status).toBe(200);
    expect(list.headers['cache-control']).toBe('no-store');
    expect((await get('/assets/missing-ABCDEFGH.js')).status).toBe(404);
    expect((await get('/..%2Fpackage.json')).status).toBe(404);
    expect((await get('/assets/..%2F..%2Fpackage.json')).status).toBe(404);
  });

  it('parses Accept-Encoding like RFC 9110: explicit entries beat *, q=0 refuses', () => {
    expect(acceptsEncoding('gzip, deflate, br', 'br')).toBe(true);
    expect(acceptsEncoding('gzip', 'br')).toBe(false);
    expect(acceptsEncoding('', 'gzip')).toBe(false);
    expect(acceptsEncoding('*', 'br')).toBe(true);
    expect(acceptsEncoding('*, br;q=0', 'br')).toBe(false);
    expect(acceptsEncoding('BR;Q=0.8', 'br')).toBe(true);
    expect(acceptsEncoding('gzip;q=0', 'gzip')).toBe(false);
    expect(acceptsEncoding('gzip; q=0.000', 'gzip')).toBe(false);
  });
});
