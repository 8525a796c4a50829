// POST /api/v1/trades/import: NDJSON trades in, one NDJSON result a line out, in input order.
//
// A station with the state it owns: the bytes of the line being read, the trades submitted and not yet
// answered (a ring of at most importTradesInFlightMax, answered strictly in input order), and the
// counts. It knows nothing about uWS: the transport hands it chunks (push) and gives it an ImportOutput
// (write with backpressure, pause/resume of the request body, end).
//
// Bounded memory whatever the body size: a chunk is cut into lines as it arrives; when the ring is full
// or the socket is backpressured, the rest of the chunk is kept (one chunk at most) and the request
// body is paused until answers drained, so a 1 GB body costs what one chunk, one line and the ring
// cost. A line longer than importLineBytesMax, or one that is not a JSON object, stops the import
// cleanly: the trades before it are answered, then one error line names the line number, then the
// summary; nothing after it is applied. Per-line errors (validation, unknown or out-of-scope
// portfolio, refusals) are answered on their line and the import goes on. Idempotent per trade id:
// the engine answers a trade id it has seen with applied: false ("duplicate").

import { ErrorCode, type EngineError } from '../errors.js';
import type { Engine } from '../engine/api.js';
import type { TradeInput, TradeResult } from '../domain/types.js';
import { validatePortfolioId } from '../domain/validate.js';
import type { Result } from '../errors.js';
import { canSee, canTrade, type Principal } from './auth.js';

export interface ImportLimits {
  /** Longest line (bytes, newline excluded); a longer one stops the import with payload_too_large. */
  importLineBytesMax: number;
  /** Trades submitted and not yet answered; past it the request body is paused. */
  importTradesInFlightMax: number;
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

type Slot = { line: number; text: string | null };

const newline = 0x0a;

export class TradeImport {
  private readonly ring: Slot[];
  private head = 0;
  private count = 0;
  /** Bytes of the line being read (only while a line spans chunks), bounded by importLineBytesMax. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** The unread rest of the last chunk while the ring is full or the socket is backpressured. */
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

  constructor(
    private readonly engine: Engine,
    private readonly principal: Principal,
    private readonly out: ImportOutput,
    private readonly limits: ImportLimits,
  ) {
    this.ring = new Array<Slot>(limits.importTradesInFlightMax);
    for (let i = 0; i < this.ring.length; i++) this.ring[i] = { line: 0, text: null };
  }

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

  /** The client went away: nothing more is written; trades already submitted still complete. */
  abort(): void {
    this.aborted = true;
  }

  private room(): boolean {
    return this.count < this.ring.length && !this.waitingWritable;
  }

  /** Cuts lines from the unread rest while there is room, then pauses or asks for more input. */
  private consume(): void {
    if (this.consuming) return;
    this.consuming = true;
    try {
      this.cutLines();
    } finally {
      this.consuming = false;
    }
    if (this.stopLine !== null || (this.rest === null && this.lastChunk)) return this.maybeEnd();
    if (this.rest !== null) this.pause();
    else this.resume();
  }

  private cutLines(): void {
    const buf = this.rest;
    if (buf !== null) {
      while (this.stopLine === null && this.restAt < buf.length && this.room()) {
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
    if (this.rest === null && this.lastChunk && this.stopLine === null && this.partialBytes > 0) {
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
    const slot = this.ring[(this.head + this.count) % this.ring.length];
    this.count++;
    slot.line = n;
    slot.text = null;
    const trade = value as Record<string, unknown>;
    const refused = this.access(trade.portfolio_id);
    if (typeof refused !== 'string') {
      this.answer(slot, n, trade.portfolio_id, trade.trade_id, { ok: false, error: refused });
      return;
    }
    const id = refused;
    this.engine.trade(id, trade as unknown as TradeInput).then(
      (r) => this.answer(slot, n, id, trade.trade_id, r),
      (e: unknown) => this.answer(slot, n, id, trade.trade_id, { ok: false, error: { code: ErrorCode.store_failed, message: e instanceof Error ? e.message : String(e) } }),
    );
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

  private answer(slot: Slot, line: number, portfolio: unknown, tradeId: unknown, r: Result<TradeResult>): void {
    const head = { line, portfolio_id: typeof portfolio === 'string' ? portfolio : null, trade_id: typeof tradeId === 'string' ? tradeId : null };
    if (r.ok) {
      if (r.value.applied) this.summary.applied++;
      else this.summary.duplicate++;
      slot.text = JSON.stringify({ ...head, result: r.value.applied ? 'applied' : 'duplicate', realized_pnl: r.value.realized_pnl }) + '\n';
    } else {
      this.summary.errors++;
      const error = r.error.field === undefined ? { code: r.error.code, message: r.error.message } : { code: r.error.code, message: r.error.message, field: r.error.field };
      slot.text = JSON.stringify({ ...head, result: 'error', error }) + '\n';
    }
    if (slot === this.ring[this.head]) this.drain();
  }

  /** Writes the answered head of the ring, in input order, as one chunk per turn of answers. */
  private drain(): void {
    let chunk = '';
    while (this.count > 0) {
      const s = this.ring[this.head];
      if (s.text === null) break;
      chunk += s.text;
      s.text = null;
      this.head = (this.head + 1) % this.ring.length;
      this.count--;
    }
    if (chunk.length > 0 && !this.aborted && !this.out.write(chunk) && !this.waitingWritable) {
      this.waitingWritable = true;
      this.out.onWritable(() => {
        this.waitingWritable = false;
        this.consume();
      });
    }
    if (!this.waitingWritable) this.consume();
    else this.maybeEnd();
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
    if (this.finished || this.count > 0 || this.waitingWritable) return;
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
      if (!this.aborted) this.out.end(tail, false);
      return;
    }
    if (!this.lastChunk) return;
    this.finished = true;
    if (!this.aborted) this.out.end('', false);
  }
}
