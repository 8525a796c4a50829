// `mtm import FILE --url URL [--key KEY]`: streams a file of trades (NDJSON, or CSV with a header row)
// to POST /api/v1/trades/import and reads the NDJSON answers as they come. The file is never read
// whole: the request body is piped with backpressure. A progress bar on a terminal (stderr), one
// summary line otherwise. Exit code 0 when every line was applied or a duplicate, 1 when a line was
// refused or the import stopped, 2 on bad arguments or when the server could not be reached.

import { createReadStream, statSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { Transform, type Readable } from 'node:stream';

export interface ImportArgs {
  file: string;
  url: string;
  key: string | null;
  format: 'ndjson' | 'csv';
}

export const importUsage = 'usage: mtm import FILE --url URL [--key KEY] [--format ndjson|csv]  (format: from the extension, .csv = CSV with a header row)';

/** Errors printed to stderr one by one; past it only counted (a file of bad lines must not flood a terminal). */
const errorLinesShownMax = 20;
/** CSV rows gathered into one request-body write. */
const csvChunkBytes = 64 * 1024;
const numericColumns = new Set(['quantity', 'price', 'fee', 'ts', 'fx_rate']);

export function parseImportArgs(argv: readonly string[]): { ok: true; args: ImportArgs } | { ok: false; message: string } {
  let file: string | null = null;
  let url: string | null = null;
  let key: string | null = process.env.MTM_KEY ?? null;
  let format: 'ndjson' | 'csv' | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--url') url = argv[++i] ?? null;
    else if (a === '--key') key = argv[++i] ?? null;
    else if (a === '--format') {
      const f = argv[++i];
      if (f !== 'ndjson' && f !== 'csv') return { ok: false, message: `--format must be ndjson or csv\n${importUsage}` };
      format = f;
    } else if (a.startsWith('--')) return { ok: false, message: `unknown option '${a}'\n${importUsage}` };
    else if (file === null) file = a;
    else return { ok: false, message: `one FILE only\n${importUsage}` };
  }
  if (file === null) return { ok: false, message: `FILE is required\n${importUsage}` };
  if (url === null || !/^https?:\/\//.test(url)) return { ok: false, message: `--url http(s)://host:port is required\n${importUsage}` };
  return { ok: true, args: { file, url: url.replace(/\/+$/, ''), key, format: format ?? (file.toLowerCase().endsWith('.csv') ? 'csv' : 'ndjson') } };
}

/** One CSV record's cells (RFC 4180 quotes, "" for a quote inside a quoted cell). */
export function csvCells(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      cells.push(cell);
      cell = '';
    } else cell += c;
  }
  cells.push(cell);
  return cells;
}

/**
 * A CSV row as the NDJSON trade the endpoint reads: empty cells are left out, numeric columns become
 * numbers when they parse as one (else they stay text, and the server names the field that is wrong),
 * lot_ids is split on ';'.
 */
export function csvRowToJson(header: readonly string[], cells: readonly string[]): string {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < header.length; i++) {
    const name = header[i];
    const raw = (cells[i] ?? '').trim();
    if (raw === '' || name === '') continue;
    if (numericColumns.has(name)) {
      const n = Number(raw);
      o[name] = Number.isFinite(n) ? n : raw;
    } else if (name === 'lot_ids') o[name] = raw.split(';').map((s) => s.trim());
    else o[name] = raw;
  }
  return JSON.stringify(o);
}

/** CSV text in, NDJSON out, line by line (the header row is consumed). */
function csvToNdjson(source: Readable): Readable {
  const lines = createInterface({ input: source, crlfDelay: Infinity });
  let header: string[] | null = null;
  const out = new Transform({ transform: (chunk, _enc, cb) => cb(null, chunk) });
  void (async () => {
    let buffered = '';
    for await (const line of lines) {
      if (line.trim() === '') continue;
      if (header === null) {
        header = csvCells(line).map((h) => h.trim());
        continue;
      }
      buffered += csvRowToJson(header, csvCells(line)) + '\n';
      if (buffered.length >= csvChunkBytes) {
        if (!out.write(buffered)) await once(out, 'drain');
        buffered = '';
      }
    }
    out.end(buffered);
  })().catch((e: unknown) => out.destroy(e instanceof Error ? e : new Error(String(e))));
  return out;
}

interface Tally {
  lines: number;
  applied: number;
  duplicate: number;
  errors: number;
  stopped: string | null;
  summarySeen: boolean;
}

function progressBar(fraction: number, tally: Tally, seconds: number): string {
  const width = 30;
  const done = Math.min(width, Math.round(fraction * width));
  const rate = seconds > 0 ? Math.round(tally.lines / seconds) : 0;
  return `\r[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${(fraction * 100).toFixed(1).padStart(5)}%  ${tally.lines} lines  ${rate} trades/s  ${tally.errors} errors `;
}

export async function runImport(args: ImportArgs, io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WriteStream | NodeJS.WritableStream } = process): Promise<number> {
  let size: number;
  try {
    size = statSync(args.file).size;
  } catch (e) {
    io.stderr.write(`mtm import: cannot read '${args.file}': ${(e as Error).message}\n`);
    return 2;
  }
  const started = performance.now();
  const file = createReadStream(args.file, { highWaterMark: 256 * 1024 });
  let bytesRead = 0;
  file.on('data', (c: Buffer | string) => (bytesRead += c.length));
  const body = args.format === 'csv' ? csvToNdjson(file) : file;
  const target = new URL(args.url + '/api/v1/trades/import');
  const headers: Record<string, string> = { 'Content-Type': 'application/x-ndjson' };
  if (args.key !== null) headers.Authorization = `Bearer ${args.key}`;
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const req = request(target, { method: 'POST', headers });
  const tally: Tally = { lines: 0, applied: 0, duplicate: 0, errors: 0, stopped: null, summarySeen: false };
  const tty = 'isTTY' in io.stderr && io.stderr.isTTY === true;
  const timer = tty ? setInterval(() => io.stderr.write(progressBar(size > 0 ? bytesRead / size : 1, tally, (performance.now() - started) / 1000)), 200) : null;
  let shownErrors = 0;
  try {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
      body.once('error', (e: Error) => reject(e));
      body.pipe(req);
    });
    if (res.statusCode !== 200) {
      let text = '';
      for await (const c of res) text += String(c);
      io.stderr.write(`mtm import: ${res.statusCode}: ${text.trim()}\n`);
      body.unpipe(req);
      file.destroy();
      return res.statusCode === 401 || res.statusCode === 403 || res.statusCode === 415 ? 2 : 1;
    }
    // Answers are read as they come, line by line; the common ones (applied, duplicate) are counted
    // from their text, only the rest parsed: at 100k lines a second, a JSON.parse per answer line was
    // the client's largest cost.
    res.setEncoding('utf8');
    let carry = '';
    const onLine = (line: string): void => {
      if (line.length === 0) return;
      if (line.startsWith('{"line":')) {
        // Ids are JSON strings (their quotes escaped), so this text can only be the result field.
        if (line.includes('"result":"applied"')) {
          tally.lines++;
          tally.applied++;
          return;
        }
        if (line.includes('"result":"duplicate"')) {
          tally.lines++;
          tally.duplicate++;
          return;
        }
      }
      const a = JSON.parse(line) as { line?: number; result?: string; error?: { code: string; message: string }; summary?: unknown };
      if (a.summary !== undefined) {
        tally.summarySeen = true;
        return;
      }
      if (a.result === 'stopped') {
        tally.stopped = a.error?.message ?? `stopped at line ${a.line}`;
        return;
      }
      tally.lines++;
      if (a.result === 'applied') tally.applied++;
      else if (a.result === 'duplicate') tally.duplicate++;
      else {
        tally.errors++;
        if (shownErrors++ < errorLinesShownMax) io.stderr.write(`${tty ? '\r' : ''}line ${a.line}: ${a.error?.code}: ${a.error?.message}\n`);
      }
    };
    for await (const piece of res as AsyncIterable<string>) {
      const text = carry + piece;
      let at = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', at)) {
        onLine(text.slice(at, nl));
        at = nl + 1;
      }
      carry = text.slice(at);
    }
    onLine(carry);
  } catch (e) {
    if (timer !== null) clearInterval(timer);
    io.stderr.write(`${tty ? '\n' : ''}mtm import: ${(e as Error).message}\n`);
    file.destroy();
    return 2;
  }
  if (timer !== null) {
    clearInterval(timer);
    io.stderr.write(progressBar(1, tally, (performance.now() - started) / 1000) + '\n');
  }
  const seconds = (performance.now() - started) / 1000;
  const rate = seconds > 0 ? Math.round(tally.lines / seconds) : 0;
  const hidden = shownErrors > errorLinesShownMax ? ` (${shownErrors - errorLinesShownMax} errors not shown)` : '';
  io.stdout.write(
    `imported ${args.file}: ${tally.lines} lines, ${tally.applied} applied, ${tally.duplicate} duplicate, ${tally.errors} errors in ${seconds.toFixed(2)} s (${rate} trades/s)${hidden}` +
      (tally.stopped !== null ? `; stopped: ${tally.stopped}` : '') +
      (tally.summarySeen ? '' : '; the server ended without its summary line') +
      '\n',
  );
  return tally.errors === 0 && tally.stopped === null && tally.summarySeen ? 0 : 1;
}
