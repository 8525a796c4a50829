// The load generator's minimal subscriber reader (bench/loadgen/rawWs.ts, updateFields.ts) reads
// exactly what a server sends: over a real TCP socket, whatever the framing (7-, 16- and 64-bit
// lengths, fragmented messages, pings between fragments) and however the byte stream is cut into
// reads, every message arrives whole and in order, pings are answered with masked pongs carrying the
// same payload, and a close frame is answered and reported. The fields read in place from binary
// updates (layout 2 and the version 3 and 4 deltas), per-connection frames and JSON updates equal those of
// the reference codecs (src/client/binary.ts, src/client/delta.ts, src/server/encoding.ts).
import { createHash } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawWs, type RawWsHandler } from '../bench/loadgen/rawWs.js';
import { forEachJsonUpdate, forEachRecord, isJsonUpdates, isUpdatesFrame, newUpdateFields, numberAt, readBinaryUpdate, readJsonUpdate, trailingNumber } from '../bench/loadgen/updateFields.js';
import { encodeUpdate, totalsFields } from '../src/protocol/binary.js';
import { encodeDelta, encodeDeltaV3, encodeUpdatesFrame } from '../src/protocol/delta.js';
import type { PortfolioUpdate, PositionView } from '../src/domain/types.js';
import { updateMessageJson, updatesMessageJson } from '../src/server/encoding.js';

const guid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A server frame (unmasked). */
function frame(opcode: number, fin: boolean, payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.alloc(2) : n < 0x10000 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (n < 126) head[1] = n;
  else if (n < 0x10000) {
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else {
    head[1] = 127;
    head.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    head.writeUInt32BE(n >>> 0, 6);
  }
  return Buffer.concat([head, payload]);
}

/** Unmasks the client frames in `bytes`; returns [opcode, payload] of each complete one. */
function clientFrames(bytes: Buffer): [number, Buffer, boolean][] {
  const out: [number, Buffer, boolean][] = [];
  let o = 0;
  while (bytes.length - o >= 2) {
    const masked = (bytes[o + 1] & 0x80) !== 0;
    let len = bytes[o + 1] & 0x7f;
    let h = 2;
    if (len === 126) {
      len = bytes.readUInt16BE(o + 2);
      h = 4;
    } else if (len === 127) {
      len = bytes.readUInt32BE(o + 6);
      h = 10;
    }
    const mask = bytes.subarray(o + h, o + h + 4);
    const p = Buffer.from(bytes.subarray(o + h + 4, o + h + 4 + len));
    for (let i = 0; i < p.length; i++) p[i] ^= mask[i & 3];
    out.push([bytes[o] & 0x0f, p, masked]);
    o += h + 4 + len;
  }
  return out;
}

interface Peer {
  socket: Socket;
  received: Buffer;
}

let server: Server;
let port = 0;
const peers: Peer[] = [];
const waiting: ((p: Peer) => void)[] = [];

beforeAll(async () => {
  server = createServer((socket) => {
    const peer: Peer = { socket, received: Buffer.alloc(0) };
    let upgraded = false;
    socket.on('data', (d: Buffer) => {
      if (upgraded) {
        peer.received = Buffer.concat([peer.received, d]);
        return;
      }
      const text = d.toString('latin1');
      const key = /sec-websocket-key:\s*(\S+)/i.exec(text)?.[1] ?? '';
      const accept = createHash('sha1').update(key + guid).digest('base64');
      upgraded = true;
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      const w = waiting.shift();
      if (w !== undefined) w(peer);
      else peers.push(peer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function nextPeer(): Promise<Peer> {
  const p = peers.shift();
  return p !== undefined ? Promise.resolve(p) : new Promise((resolve) => waiting.push(resolve));
}

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function writeInChunks(socket: Socket, bytes: Buffer, cuts: number[]): Promise<void> {
  let at = 0;
  for (const c of [...cuts.filter((x) => x > 0 && x < bytes.length)].sort((a, b) => a - b).concat(bytes.length)) {
    if (c <= at) continue;
    socket.write(bytes.subarray(at, c));
    at = c;
    // Let each chunk arrive as its own read.
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe('raw WebSocket reader', () => {
  it('delivers every message whole and in order, however framed and cut into reads; answers pings; reports the close', { timeout: 120_000 }, async () => {
    const message = fc.record({
      binary: fc.boolean(),
      size: fc.oneof(fc.integer({ min: 0, max: 130 }), fc.constantFrom(125, 126, 65_535, 65_536, 70_000), fc.integer({ min: 0, max: 20_000 })),
      fragments: fc.integer({ min: 1, max: 4 }),
      pingBetween: fc.boolean(),
      seed: fc.integer({ min: 0, max: 255 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 400_000 }), { maxLength: 12 }), async (messages, cuts) => {
        const got: { opcode: number; bytes: Buffer }[] = [];
        let closedWhy: string | null = null;
        const handler: RawWsHandler = {
          message: (_ws, opcode, buf, start, end) => void got.push({ opcode, bytes: Buffer.from(buf.subarray(start, end)) }),
          closed: (_ws, why) => void (closedWhy = why),
        };
        const ws = new RawWs(`ws://127.0.0.1:${port}/ws`, handler, 0);
        const peer = await nextPeer();
        await ws.opened;
        const stream: Buffer[] = [];
        const pings: Buffer[] = [];
        const want: { opcode: number; bytes: Buffer }[] = [];
        for (const m of messages) {
          const payload = Buffer.alloc(m.size);
          for (let i = 0; i < m.size; i++) payload[i] = (i * 31 + m.seed) & 0xff;
          const opcode = m.binary ? 2 : 1;
          if (!m.binary) payload.fill(0x61);
          want.push({ opcode, bytes: payload });
          const pieces = Math.min(m.fragments, Math.max(1, m.size));
          const step = Math.ceil(m.size / pieces);
          for (let k = 0; k < pieces; k++) {
            const part = payload.subarray(k * step, Math.min(m.size, (k + 1) * step));
            stream.push(frame(k === 0 ? opcode : 0, k === pieces - 1, part));
            if (m.pingBetween && k === 0) {
              const ping = Buffer.from(`ping-${pings.length}`);
              pings.push(ping);
              stream.push(frame(9, true, ping));
            }
          }
        }
        stream.push(frame(8, true, Buffer.from([0x03, 0xe8])));
        await writeInChunks(peer.socket, Buffer.concat(stream), cuts);
        await until(() => closedWhy !== null);
        expect(closedWhy).toBe('closed by the server: 1000');
        expect(got.length).toBe(want.length);
        for (let i = 0; i < want.length; i++) {
          expect(got[i].opcode).toBe(want[i].opcode);
          expect(got[i].bytes.equals(want[i].bytes)).toBe(true);
        }
        await until(() => clientFrames(peer.received).some(([op]) => op === 8));
        const answers = clientFrames(peer.received);
        expect(answers.every(([, , masked]) => masked)).toBe(true);
        expect(answers.filter(([op]) => op === 10).map(([, p]) => p.toString())).toEqual(pings.map((p) => p.toString()));
        expect(answers[answers.length - 1][1].readUInt16BE(0)).toBe(1000);
        peer.socket.destroy();
      }),
      { numRuns: 25 },
    );
  });

  it('refuses a masked server frame and a frame larger than messageBytesMax (closes, reports why)', async () => {
    for (const [bytes, why] of [
      [Buffer.from([0x82, 0x81, 1, 2, 3, 4, 5]), 'masked frame from the server'],
      [Buffer.from([0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0]), 'frame of 4294967296 bytes > messageBytesMax'],
    ] as const) {
      let closedWhy = '';
      const ws = new RawWs(`ws://127.0.0.1:${port}/ws`, { message: () => {}, closed: (_w, w) => void (closedWhy = w) }, 0);
      const peer = await nextPeer();
      await ws.opened;
      peer.socket.write(bytes);
      await until(() => closedWhy !== '');
      expect(closedWhy).toContain(why);
      expect(ws.isOpen).toBe(false);
      peer.socket.destroy();
    }
  });
});

const position = (symbol: string, n: number): PositionView => ({
  symbol,
  currency: 'USD',
  quantity: n,
  avg_cost: n / 3,
  last_price: n * 1.5,
  market_value: n * n * 1.5,
  unrealized_pnl: -n,
  realized_pnl: 0,
  return_rate: 0.01,
  weight: 0.2,
  fx_rate: null,
  price_ts: 1_765_000_000_000.5,
  price_age_ms: 3.25,
  stale: false,
});

function update(id: string, seq: number, tickTs: number, positions: number): PortfolioUpdate {
  const totals = Object.fromEntries(totalsFields.map((f, i) => [f, i * 1000.125])) as Record<(typeof totalsFields)[number], number>;
  return {
    portfolio_id: id,
    seq,
    as_of: 1_765_000_000_123,
    state: 'active',
    tick_ts: tickTs,
    positions: Array.from({ length: positions }, (_, i) => position(`SYM${String(i).padStart(4, '0')}`, i + 1)),
    ...totals,
  };
}

describe('update fields read in place', () => {
  it('binary and JSON updates give the codecs\' portfolio, seq, from_seq and tick_ts', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 999_999 }),
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.integer({ min: 0, max: 50 }),
        fc.double({ min: 1e12, max: 2e12, noNaN: true }),
        fc.integer({ min: 0, max: 25 }),
        (p, seq, merged, tickTs, positions) => {
          const id = 'w-' + String(p).padStart(6, '0');
          const fromSeq = Math.max(1, seq - merged);
          const u = update(id, seq, tickTs, positions);
          const out = newUpdateFields();
          // A frame inside a larger buffer: the reader must stay within [start, end).
          const bin = Buffer.concat([Buffer.from('xx'), Buffer.from(encodeUpdate(u, fromSeq)), Buffer.from('yy')]);
          expect(readBinaryUpdate(bin, 2, bin.length - 2, out)).toBe(true);
          expect(out).toEqual({ portfolio: p, seq, fromSeq, tickTs, asOf: u.as_of });
          // The version 4 delta mtm sends (and version 3, still read), alone and inside a per-connection updates frame.
          for (const encoded of [encodeDelta(u, fromSeq), encodeDeltaV3(u, fromSeq)]) {
            const delta = Buffer.concat([Buffer.from('xx'), Buffer.from(encoded), Buffer.from('yy')]);
            expect(readBinaryUpdate(delta, 2, delta.length - 2, out)).toBe(true);
            expect(out).toEqual({ portfolio: p, seq, fromSeq, tickTs, asOf: u.as_of });
          }
          const other = update('w-000007', seq + 1, tickTs + 1, 1);
          const frame = Buffer.from(encodeUpdatesFrame([encodeDelta(u, fromSeq), encodeDelta(other)]));
          expect(isUpdatesFrame(frame, 0, frame.length)).toBe(true);
          const seen: string[] = [];
          expect(forEachRecord(frame, 0, frame.length, (a, b) => void (readBinaryUpdate(frame, a, b, out) && seen.push(`${out.portfolio}/${out.seq}/${out.fromSeq}/${out.tickTs}`)))).toBe(2);
          expect(seen).toEqual([`${p}/${seq}/${fromSeq}/${tickTs}`, `7/${seq + 1}/${seq + 1}/${tickTs + 1}`]);
          expect(forEachRecord(frame, 0, frame.length - 1, () => {})).toBe(-1);
          const jsonFrame = updatesMessageJson([updateMessageJson(u, fromSeq).bytes, updateMessageJson(other).bytes]).bytes;
          expect(isJsonUpdates(jsonFrame, 0, jsonFrame.length)).toBe(true);
          const seenJson: string[] = [];
          forEachJsonUpdate(jsonFrame, 0, jsonFrame.length, (a, b) => void (readJsonUpdate(jsonFrame, a, b, out) && seenJson.push(`${out.portfolio}/${out.seq}/${out.fromSeq}`)));
          expect(seenJson).toEqual([`${p}/${seq}/${fromSeq}`, `7/${seq + 1}/${seq + 1}`]);
          const json = Buffer.concat([Buffer.from('zz'), updateMessageJson(u, fromSeq).bytes]);
          expect(readJsonUpdate(json, 2, json.length, out)).toBe(true);
          expect(out.portfolio).toBe(p);
          expect(out.seq).toBe(seq);
          expect(out.fromSeq).toBe(fromSeq);
          // Parsed from the digits: within a few units in the last place of the double.
          expect(Math.abs(out.tickTs - tickTs)).toBeLessThanOrEqual(Math.abs(tickTs) * 4 * Number.EPSILON);
          expect(out.asOf).toBe(u.as_of);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('numberAt reads JSON numbers as Number() does, within a few units in the last place', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        const text = JSON.stringify(x);
        const b = Buffer.from(text + ',');
        const v = numberAt(b, 0, b.length);
        expect(Math.abs(v - Number(text))).toBeLessThanOrEqual(Math.abs(Number(text)) * 4 * Number.EPSILON);
      }),
      { numRuns: 1000 },
    );
    expect(Number.isNaN(numberAt(Buffer.from('"x"'), 0, 3))).toBe(true);
  });

  it('refuses what is not an update and reads ids without digits as -1', () => {
    const out = newUpdateFields();
    const u = Buffer.from(encodeUpdate(update('w-000001', 1, 1, 0)));
    u[1] = 99;
    expect(readBinaryUpdate(u, 0, u.length, out)).toBe(false);
    expect(readBinaryUpdate(u, 0, 10, out)).toBe(false);
    expect(readJsonUpdate(Buffer.from('{"type":"snapshot","seq":1}'), 0, 27, out)).toBe(false);
    expect(trailingNumber(Buffer.from('abc'), 0, 3)).toBe(-1);
    expect(trailingNumber(Buffer.from('w-000042'), 0, 8)).toBe(42);
  });
});
