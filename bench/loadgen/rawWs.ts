// A minimal WebSocket client over a raw TCP socket, for the load generator's subscribers: the HTTP
// upgrade done by hand, every read landing in ONE buffer shared by all the connections of the process
// (net's `onread`), and the frame loop by hand (RFC 6455: server frames are unmasked; continuation,
// ping, pong and close handled). A message is handed to the caller as a byte range of that shared
// buffer (or of the connection's carry buffer when it spanned reads) with the time of the read it
// completed in: one clock read per socket read, not per message. Nothing is allocated per message
// unless it spans reads or fragments.
//
// Why not the `ws` package: on a 2-core machine the subscriber processes share the cores with the
// server, and `ws` (a Buffer per frame, an event per message, UTF-8 checks) made them, not the
// servers, the first bottleneck (issue 14).
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { nowMs } from './common.js';

export const Opcode = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** Bytes of the read buffer shared by every connection of the process (one socket read at most). */
export const readBufferBytes = 256 * 1024;
/** The largest message reassembled (a frame, or the fragments of one message); larger closes the connection. */
export const messageBytesMax = 16 * 1024 * 1024;
/** The largest HTTP upgrade answer read before the first frame. */
export const handshakeBytesMax = 16 * 1024;
/** The carry buffer (a frame spanning reads) starts this small and doubles up to messageBytesMax + 14. */
const carryBytesInitial = 16 * 1024;

export interface RawWsHandler {
  /** One complete message: opcode text or binary, payload bytes [start, end) of buf, t = the read's clock. */
  message(ws: RawWs, opcode: number, buf: Buffer, start: number, end: number, t: number): void;
  /** The connection ended; `why` is '' after a clean close this side asked for. */
  closed(ws: RawWs, why: string): void;
}

const wsGuid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
let shared: Buffer | null = null;

function sharedReadBuffer(): Buffer {
  shared ??= Buffer.allocUnsafe(readBufferBytes);
  return shared;
}

/** A masked client frame (RFC 6455 5.3: every client frame is masked). */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const h = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const out = Buffer.allocUnsafe(h + 4 + n);
  out[0] = 0x80 | opcode;
  if (h === 2) out[1] = 0x80 | n;
  else if (h === 4) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  const mask = randomBytes(4);
  mask.copy(out, h);
  for (let i = 0; i < n; i++) out[h + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}

export class RawWs {
  private readonly socket: Socket;
  private open = false;
  private ended = false;
  /** Bytes of a frame (or of the upgrade answer) that arrived without their end: kept for the next read. */
  private carry: Buffer | null = null;
  private carryLen = 0;
  /** A fragmented message being reassembled. */
  private frag: Buffer | null = null;
  private fragLen = 0;
  private fragOpcode = 0;
  private readonly key = randomBytes(16).toString('base64');
  readonly opened: Promise<void>;

  /** url: ws://host:port/path. `tag` is the caller's (its connection index). */
  constructor(
    url: string,
    private readonly handler: RawWsHandler,
    readonly tag: number,
  ) {
    const u = new URL(url);
    const port = Number(u.port || (u.protocol === 'wss:' ? 443 : 80));
    let resolveOpen!: () => void;
    let rejectOpen!: (e: Error) => void;
    this.opened = new Promise<void>((res, rej) => {
      resolveOpen = res;
      rejectOpen = rej;
    });
    this.onOpen = resolveOpen;
    this.onFail = rejectOpen;
    this.socket = connect({
      host: u.hostname,
      port,
      noDelay: true,
      onread: {
        buffer: sharedReadBuffer(),
        callback: (nread: number, buf: Uint8Array): boolean => {
          this.onBytes(buf as Buffer, nread, nowMs());
          return true;
        },
      },
    });
    this.socket.on('connect', () => {
      this.socket.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${this.key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    this.socket.on('error', (e) => this.end(`socket error: ${e.message}`));
    this.socket.on('close', () => this.end('socket closed by the server'));
  }

  private readonly onOpen: () => void;
  private readonly onFail: (e: Error) => void;

  get isOpen(): boolean {
    return this.open && !this.ended;
  }

  sendText(text: string): void {
    if (this.isOpen) this.socket.write(clientFrame(Opcode.text, Buffer.from(text, 'utf8')));
  }

  /** Closes with a close frame (1000), then the socket. */
  close(): void {
    if (this.ended) return;
    if (this.isOpen) this.socket.write(clientFrame(Opcode.close, Buffer.from([0x03, 0xe8])));
    this.end('');
    this.socket.end();
  }

  terminate(): void {
    this.end('');
    this.socket.destroy();
  }

  private end(why: string): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.open) this.onFail(new Error(why || 'closed before the upgrade'));
    this.handler.closed(this, why);
    if (why !== '') this.socket.destroy();
  }

  private fail(why: string): void {
    this.end(why);
    this.socket.destroy();
  }

  private ensureCarry(need: number): Buffer {
    let c = this.carry;
    if (c === null || c.length < need) {
      let size = c === null ? carryBytesInitial : c.length;
      while (size < need) size *= 2;
      const grown = Buffer.allocUnsafe(size);
      if (c !== null && this.carryLen > 0) c.copy(grown, 0, 0, this.carryLen);
      this.carry = c = grown;
    }
    return c;
  }

  /** One socket read: bytes [0, n) of the shared buffer. */
  private onBytes(buf: Buffer, n: number, t: number): void {
    if (this.ended) return;
    if (this.carryLen === 0) {
      const used = this.open ? this.frames(buf, 0, n, t) : this.handshake(buf, 0, n, t);
      if (used < n && !this.ended) {
        this.ensureCarry(n - used);
        buf.copy(this.carry as Buffer, 0, used, n);
        this.carryLen = n - used;
      }
      return;
    }
    const c = this.ensureCarry(this.carryLen + n);
    buf.copy(c, this.carryLen, 0, n);
    const len = this.carryLen + n;
    this.carryLen = 0;
    const used = this.open ? this.frames(c, 0, len, t) : this.handshake(c, 0, len, t);
    if (used < len && !this.ended) {
      // The carry's own bytes move to its start (copy handles the overlap).
      c.copy(c, 0, used, len);
      this.carryLen = len - used;
    }
  }

  /** The upgrade answer; returns the bytes consumed (frames may follow it in the same read). */
  private handshake(buf: Buffer, start: number, end: number, t: number): number {
    const at = buf.indexOf('\r\n\r\n', start, 'latin1');
    if (at < 0 || at + 4 > end) {
      if (end - start > handshakeBytesMax) this.fail(`upgrade answer longer than ${handshakeBytesMax} bytes`);
      return start;
    }
    const head = buf.toString('latin1', start, at);
    if (!/^HTTP\/1\.1 101 /.test(head)) {
      this.fail(`upgrade refused: ${head.split('\r\n')[0]}`);
      return end;
    }
    const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1];
    const want = createHash('sha1').update(this.key + wsGuid).digest('base64');
    if (accept !== want) {
      this.fail('upgrade answer has a wrong Sec-WebSocket-Accept');
      return end;
    }
    this.open = true;
    this.onOpen();
    return this.frames(buf, at + 4, end, t);
  }

  /** The frame loop over [start, end); returns where the first incomplete frame starts. */
  private frames(buf: Buffer, start: number, end: number, t: number): number {
    let o = start;
    // Bounded: every turn consumes a whole frame or stops.
    while (end - o >= 2 && !this.ended) {
      const b0 = buf[o];
      const b1 = buf[o + 1];
      if ((b1 & 0x80) !== 0) {
        this.fail('masked frame from the server');
        return end;
      }
      if ((b0 & 0x70) !== 0) {
        this.fail('reserved bits set (no extension was negotiated)');
        return end;
      }
      let len = b1 & 0x7f;
      let h = 2;
      if (len === 126) {
        if (end - o < 4) break;
        len = buf.readUInt16BE(o + 2);
        h = 4;
      } else if (len === 127) {
        if (end - o < 10) break;
        len = buf.readUInt32BE(o + 2) * 2 ** 32 + buf.readUInt32BE(o + 6);
        h = 10;
      }
      if (len > messageBytesMax) {
        this.fail(`frame of ${len} bytes > messageBytesMax ${messageBytesMax}`);
        return end;
      }
      if (end - o < h + len) {
        // Make room once for the whole frame rather than growing the carry read by read.
        if (buf !== this.carry) this.ensureCarry(h + len);
        break;
      }
      this.frame(b0 & 0x0f, (b0 & 0x80) !== 0, buf, o + h, o + h + len, t);
      o += h + len;
    }
    return o;
  }

  private frame(opcode: number, fin: boolean, buf: Buffer, start: number, end: number, t: number): void {
    switch (opcode) {
      case Opcode.text:
      case Opcode.binary:
        if (this.frag !== null && this.fragOpcode !== 0) return this.fail('new message inside a fragmented one');
        if (fin) this.handler.message(this, opcode, buf, start, end, t);
        else {
          this.fragOpcode = opcode;
          this.appendFrag(buf, start, end);
        }
        return;
      case Opcode.continuation:
        if (this.fragOpcode === 0) return this.fail('continuation frame without a message');
        this.appendFrag(buf, start, end);
        if (fin && !this.ended) {
          const op = this.fragOpcode;
          const len = this.fragLen;
          this.fragOpcode = 0;
          this.fragLen = 0;
          this.handler.message(this, op, this.frag as Buffer, 0, len, t);
        }
        return;
      case Opcode.ping:
        if (this.isOpen) this.socket.write(clientFrame(Opcode.pong, buf.subarray(start, end)));
        return;
      case Opcode.pong:
        return;
      case Opcode.close: {
        const code = end - start >= 2 ? buf.readUInt16BE(start) : 1005;
        const reason = end - start > 2 ? buf.toString('utf8', start + 2, end) : '';
        if (this.isOpen) this.socket.write(clientFrame(Opcode.close, Buffer.from(buf.subarray(start, Math.min(end, start + 2)))));
        this.end(`closed by the server: ${code}${reason ? ' ' + reason : ''}`);
        this.socket.end();
        return;
      }
      default:
        this.fail(`unknown opcode ${opcode}`);
    }
  }

  private appendFrag(buf: Buffer, start: number, end: number): void {
    const need = this.fragLen + (end - start);
    if (need > messageBytesMax) return this.fail(`fragmented message > messageBytesMax ${messageBytesMax}`);
    if (this.frag === null || this.frag.length < need) {
      let size = this.frag === null ? carryBytesInitial : this.frag.length;
      while (size < need) size *= 2;
      const grown = Buffer.allocUnsafe(size);
      if (this.frag !== null) this.frag.copy(grown, 0, 0, this.fragLen);
      this.frag = grown;
    }
    buf.copy(this.frag, this.fragLen, start, end);
    this.fragLen = need;
  }
}
