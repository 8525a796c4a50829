// POST /api/v1/trades/import: NDJSON trades in, one NDJSON result a line out, in input order.
//
// A station with the state it owns: the bytes of the line being read, the chunk being cut, the chunks
// submitted and not yet answered (at most importChunksInFlightMax, answered strictly in input order),
// and the counts. It knows nothing about uWS: the transport hands it chunks (push) and gives it an
// ImportOutput (write with backpressure, pause/resume of the request body, end).
//
// Chunks, not lines: lines are cut into chunks of importChunkTradesMax; each line is parsed, its scope
// checked and its trade validated once, here (validateTrade: the single-trade route's schema and codes);
// a refused line is answered in place, a valid one joins the chunk's items; one engine.importTrades call
// (one promise) books a chunk (engine/bulkImport.ts), and its answer lines are made from the answer
// columns and written as one write once every booking of the chunk is durable.
//
// Bounded memory whatever the body size: while importChunksInFlightMax chunks or importTradesInFlightMax
// lines are in flight, or the socket is backpressured, the rest of the body chunk is kept (one at most)
// and the request body is paused until answers drained, so a 1 GB body costs what one body chunk, one
// line and the chunks in flight cost. A line longer than importLineBytesMax, or one that is not a JSON
// object, stops the import cleanly: the trades before it are answered, then one error line names the
// line number, then the summary; nothing after it is applied. Per-line errors (validation, unknown or
// out-of-scope portfolio, refusals) are answered on their line and the import goes on. Idempotent per
// trade id: the engine answers a trade id it has seen with "duplicate".

import { ErrorCode, type EngineError } from '../errors.js';
import { ImportKind, type Engine, type ImportAnswers, type ImportItem } from '../engine/api.js';
import { validatePortfolioId, validateTrade } from '../domain/validate.js';
import { canSee, canTrade, type Principal } from './auth.js';

export interface ImportLimits {
  /** Longest line (bytes, newline excluded); a longer one stops the import with payload_too_large. */
  importLineBytesMax: number;
  /** Lines submitted and not yet answered (every chunk in flight); past it the request body is paused. */
  importTradesInFlightMax: number;
  /** Lines in one chunk: validated together, booked per shard as one message, logged in one append per shard. */
  importChunkTradesMax: number;
  /** Chunks of one import submitted and not yet answered (the next is cut while they book); past it the body is paused. */
  importChunksInFlightMax: number;
}

/** The content types the endpoint reads (NDJSON); anything else is answered 415 before a byte is read. */
export const importContentTypes: readonly string[] = ['application/x-ndjson', 'application/ndjson', 'application/jsonl'];

export function isImportContentType(header: string): boolean {
  const base = header.split(';')[0].trim().toLowerCase();
  return importContentTypes.includes(base);
}

export interface ImportOutput {
  /** Writes one chunk of the response body; false = the socket is backpressured (it was buffered). */
  write(chunk: string): boolean;
  /** Calls back once the socket drained what was buffered. */
  onWritable(cb: () => void): void;
  pauseInput(): void;
  resumeInput(): void;
  /** Ends the response (the last chunk), closing the connection when the body was not read to its end. */
  end(chunk: string, closeConnection: boolean): void;
}

export interface ImportSummary {
  lines: number;
  applied: number;
  duplicate: number;
  errors: number;
  stopped: boolean;
}

/**
 * A chunk of lines: each line's number and either its answer already made at the boundary (a refused
 * portfolio, a validation error) or the index of its trade among the chunk's items; the engine's
 * answers once it was booked.
 */
class ImportChunk {
  readonly lines: number[] = [];
  readonly made: (string | null)[] = [];
  readonly itemOf: number[] = [];
  readonly items: ImportItem[] = [];
  answers: ImportAnswers | null = null;
}

const newline = 0x0a;
const noAnswers: ImportAnswers = { kinds: new Uint8Array(0), realized: new Float64Array(0), errors: new Map() };

export class TradeImport {
  /** Chunks submitted to the engine, oldest first: answered strictly in this order. */
  private readonly inFlight: ImportChunk[] = [];
  /** The chunk being cut (not submitted yet). */
  private open: ImportChunk | null = null;
  /** Lines of the chunks in flight and the open one. */
  private linesHeld = 0;
  /** Bytes of the line being read (only while a line spans chunks), bounded by importLineBytesMax. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** The unread rest of the last body chunk while no line may be taken (limits, backpressure). */
  private rest: Buffer | null = null;
  private restAt = 0;
  private lastChunk = false;
  private line = 0;
  private readonly summary: ImportSummary = { lines: 0, applied: 0, duplicate: 0, errors: 0, stopped: false };
  private stopLine: string | null = null;
  private waitingWritable = false;
  private paused = false;
  /** consume() is running: answers given synchronously inside it must not re-enter it. */
  private consuming = false;
  private finished = false;
  private tailWritten = false;
  private aborted = false;
  /** The validation clock of the chunk being cut (read once a chunk, not once a line). */
  private now = 0;

  constructor(
    private readonly engine: Engine,
    private readonly principal: Principal,
    private readonly out: ImportOutput,
    private readonly limits: ImportLimits,
    private readonly clock: () => number = Date.now,
  ) {}

  /** A chunk of the request body (the transport may reuse its memory once this call returns). */
  push(chunk: Uint8Array, isLast: boolean): void {
    if (this.finished || this.aborted) return;
    this.lastChunk = isLast;
    if (this.stopLine !== null) return this.maybeEnd();
    const view = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    // A chunk the transport delivered while we were pausing it joins the unread rest.
    this.rest = this.rest === null ? view : Buffer.concat([this.rest.subarray(this.restAt), view]);
    this.restAt = 0;
    this.consume();
    // What is left is read later: copy it out of the transport's memory (one chunk at most).
    if (this.rest !== null && this.rest.buffer === chunk.buffer) {
      this.rest = Buffer.from(this.rest.subarray(this.restAt));
      this.restAt = 0;
    }
  }

  /** The client went away: nothing more is written; chunks already submitted still complete. */
  abort(): void {
    this.aborted = true;
  }

  /** Whether another line may be cut now: a chunk with room (or one can be opened), within the line bound, the socket writable. */
  private canTake(): boolean {
    if (this.waitingWritable || this.linesHeld >= this.limits.importTradesInFlightMax) return false;
    if (this.open !== null && this.open.lines.length >= this.limits.importChunkTradesMax) this.submit();
    return this.open === null || this.open.lines.length < this.limits.importChunkTradesMax;
  }

  /** Submits the open chunk when fewer than importChunksInFlightMax are in flight. */
  private submit(): void {
    const c = this.open;
    if (c === null || c.lines.length === 0 || this.inFlight.length >= this.limits.importChunksInFlightMax) return;
    this.open = null;
    this.inFlight.push(c);
    if (c.items.length === 0) {
      c.answers = noAnswers;
      return;
    }
    this.engine.importTrades(c.items).then(
      (a) => this.answered(c, a),
      (e: unknown) => {
        const error = { code: ErrorCode.store_failed, message: e instanceof Error ? e.message : String(e) };
        const a: ImportAnswers = { kinds: new Uint8Array(c.items.length).fill(ImportKind.error), realized: new Float64Array(c.items.length), errors: new Map() };
        for (let i = 0; i < c.items.length; i++) a.errors.set(i, error);
        this.answered(c, a);
      },
    );
  }

  private answered(c: ImportChunk, a: ImportAnswers): void {
    c.answers = a;
    if (c === this.inFlight[0]) this.drain();
  }

  /** Cuts lines from the unread rest while they may be taken, then submits, pauses or asks for more input. */
  private consume(): void {
    if (this.consuming) return;
    this.consuming = true;
    try {
      // Chunks answered at the boundary alone (every line refused) need no engine: written here, they
      // free their slots at once, so cutting goes on (else a body of refused lines stalled, paused).
      let written = 0;
      do {
        this.cutLines();
        // A partial chunk goes when nothing is in flight (small bodies answer at once), at the end, or at a stop.
        if (this.inFlight.length === 0 || (this.rest === null && this.lastChunk) || this.stopLine !== null) this.submit();
        written = this.writeAnswered();
      } while (written > 0 && !this.waitingWritable && this.stopLine === null && (this.rest !== null || this.open !== null));
    } finally {
      this.consuming = false;
    }
    if (this.stopLine !== null || (this.rest === null && this.lastChunk)) return this.maybeEnd();
    if (this.rest !== null) this.pause();
    else this.resume();
  }

  private cutLines(): void {
    const buf = this.rest;
    this.now = this.clock();
    if (buf !== null) {
      while (this.stopLine === null && this.restAt < buf.length && this.canTake()) {
        const nl = buf.indexOf(newline, this.restAt);
        const end = nl < 0 ? buf.length : nl;
        const piece = end - this.restAt;
        if (this.partialBytes + piece > this.limits.importLineBytesMax) {
          this.stop(this.line + 1, ErrorCode.payload_too_large, `line ${this.line + 1}: longer than importLineBytesMax (${this.limits.importLineBytesMax} bytes)`);
          break;
        }
        if (nl < 0) {
          // The line goes on in the next chunk: keep a copy of its bytes (bounded above).
          this.partial.push(Buffer.from(buf.subarray(this.restAt, end)));
          this.partialBytes += piece;
          this.restAt = buf.length;
          break;
        }
        let lineBytes: Buffer;
        if (this.partialBytes > 0) {
          this.partial.push(buf.subarray(this.restAt, end));
          lineBytes = Buffer.concat(this.partial, this.partialBytes + piece);
          this.partial = [];
          this.partialBytes = 0;
        } else lineBytes = buf.subarray(this.restAt, end);
        this.restAt = nl + 1;
        this.handleLine(lineBytes);
      }
      if (this.restAt >= buf.length) this.rest = null;
    }
    if (this.rest === null && this.lastChunk && this.stopLine === null && this.partialBytes > 0 && this.canTake()) {
      // The last line had no newline.
      const lineBytes = Buffer.concat(this.partial, this.partialBytes);
      this.partial = [];
      this.partialBytes = 0;
      this.handleLine(lineBytes);
    }
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.out.pauseInput();
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.out.resumeInput();
  }

  /** One line, checked once here (JSON, scope, the trade schema): a refusal is answered in place, a valid trade joins the chunk. */
  private handleLine(bytes: Buffer): void {
    const n = ++this.line;
    let text = bytes.toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (text.trim().length === 0) return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return this.stop(n, ErrorCode.invalid_json, `line ${n}: not valid JSON`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return this.stop(n, ErrorCode.invalid_json, `line ${n}: must be a JSON object (one trade with its portfolio_id)`);
    }
    this.summary.lines++;
    const c = (this.open ??= new ImportChunk());
    this.linesHeld++;
    c.lines.push(n);
    const trade = value as Record<string, unknown>;
    const refused = this.access(trade.portfolio_id);
    if (typeof refused !== 'string') return this.made(c, n, trade.portfolio_id, trade.trade_id, refused);
    const v = validateTrade(trade, this.now);
    if (!v.ok) return this.made(c, n, refused, trade.trade_id, v.error);
    c.made.push(null);
    c.itemOf.push(c.items.length);
    c.items.push({ portfolio: refused, trade: v.value });
  }

  /** A line answered at the boundary. */
  private made(c: ImportChunk, line: number, portfolio: unknown, tradeId: unknown, error: EngineError): void {
    c.made.push(errorLine(line, typeof portfolio === 'string' ? portfolio : null, typeof tradeId === 'string' ? tradeId : null, error));
    c.itemOf.push(-1);
    this.summary.errors++;
  }

  /** The portfolio id when the key may trade it; else the error, the same the single-trade route gives. */
  private access(raw: unknown): string | EngineError {
    const v = validatePortfolioId(raw, 'portfolio_id');
    if (!v.ok) return v.error;
    const id = v.value;
    const notFound: EngineError = { code: ErrorCode.portfolio_not_found, message: `portfolio '${id}' not found`, field: 'portfolio_id' };
    if (!canSee(this.principal, id) || !this.engine.has(id)) return notFound;
    if (!canTrade(this.principal, id)) return { code: ErrorCode.forbidden, message: `this key may not trade portfolio '${id}'`, field: 'portfolio_id' };
    return id;
  }

  /** Writes the answered chunks at the head, in input order, then reads on (or waits for the socket). */
  private drain(): void {
    this.writeAnswered();
    if (!this.waitingWritable) this.consume();
    else this.maybeEnd();
  }

  /** The answer lines of every answered chunk at the head, as one write: made from the answer columns, no object a line. */
  private writeAnswered(): number {
    let chunk = '';
    let chunks = 0;
    while (this.inFlight.length > 0 && this.inFlight[0].answers !== null) {
      const c = this.inFlight.shift() as ImportChunk;
      chunk += this.render(c, c.answers as ImportAnswers);
      this.linesHeld -= c.lines.length;
      chunks++;
    }
    if (chunk.length > 0 && !this.aborted && !this.out.write(chunk) && !this.waitingWritable) {
      this.waitingWritable = true;
      this.out.onWritable(() => {
        this.waitingWritable = false;
        this.consume();
      });
    }
    return chunks;
  }

  private render(c: ImportChunk, a: ImportAnswers): string {
    let text = '';
    const s = this.summary;
    for (let j = 0; j < c.lines.length; j++) {
      const made = c.made[j];
      if (made !== null) {
        text += made;
        continue;
      }
      const i = c.itemOf[j];
      const item = c.items[i];
      const kind = a.kinds[i];
      if (kind === ImportKind.error) {
        s.errors++;
        text += errorLine(c.lines[j], item.portfolio, item.trade.trade_id, a.errors.get(i) as EngineError);
        continue;
      }
      if (kind === ImportKind.applied) s.applied++;
      else s.duplicate++;
      text += `{"line":${c.lines[j]},"portfolio_id":${JSON.stringify(item.portfolio)},"trade_id":${JSON.stringify(item.trade.trade_id)},"result":"${kind === ImportKind.applied ? 'applied' : 'duplicate'}","realized_pnl":${JSON.stringify(a.realized[i])}}\n`;
    }
    return text;
  }

  private stop(line: number, code: ErrorCode, message: string): void {
    this.summary.stopped = true;
    this.stopLine = JSON.stringify({ line, result: 'stopped', error: { code, message } }) + '\n';
    this.rest = null;
    this.partial = [];
    this.partialBytes = 0;
  }

  /**
   * Ends once every submitted trade was answered and written. After a stop, the stop line and the
   * summary are written at once, and the rest of the body is read and dropped (not kept) until it
   * ends: closing mid-body would cut the chunked answer the client is reading.
   */
  private maybeEnd(): void {
    if (this.finished || this.inFlight.length > 0 || this.open !== null || this.waitingWritable) return;
    if (this.stopLine === null && !(this.lastChunk && this.rest === null)) return;
    if (!this.tailWritten) {
      this.tailWritten = true;
      const tail = (this.stopLine ?? '') + JSON.stringify({ summary: this.summary }) + '\n';
      if (!this.lastChunk) {
        if (!this.aborted) this.out.write(tail);
        this.resume();
        return;
      }
      this.finished = true;
      // A body read whole while paused leaves the socket paused: a kept-alive connection's next request would never be read.
      this.resume();
      if (!this.aborted) this.out.end(tail, false);
      return;
    }
    if (!this.lastChunk) return;
    this.finished = true;
    this.resume();
    if (!this.aborted) this.out.end('', false);
  }
}

/** An error answer line, as the single-trade route names the error (code, message, field when there is one). */
function errorLine(line: number, portfolio: string | null, tradeId: string | null, e: EngineError): string {
  const error = e.field === undefined ? { code: e.code, message: e.message } : { code: e.code, message: e.message, field: e.field };
  return JSON.stringify({ line, portfolio_id: portfolio, trade_id: tradeId, result: 'error', error }) + '\n';
}
