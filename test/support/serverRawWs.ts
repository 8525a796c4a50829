// A bare-TCP WebSocket client for tests that need to misbehave: stop reading (slow consumer), send
// half-open connections or raw bytes. Frames are built and parsed by hand (RFC 6455).

import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

export interface RawWs {
  socket: Socket;
  /** Bytes received after the handshake (only while reading). */
  received: Buffer[];
}

export async function rawConnect(port: number, path: string, headers: Record<string, string> = {}): Promise<RawWs> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const key = randomBytes(16).toString('base64');
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mtm.v1\r\n${extra}\r\n`,
  );
  const received: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const status = head.subarray(0, end).toString();
      if (!status.startsWith('HTTP/1.1 101')) return reject(new Error(`handshake refused: ${status.split('\r\n')[0]}`));
      if (head.length > end + 4) received.push(head.subarray(end + 4));
      resolve();
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
  socket.on('data', (c: Buffer) => received.push(c));
  socket.on('error', () => {});
  return { socket, received };
}

/** A client frame (masked, FIN set). */
export function clientFrame(opcode: number, payload: Buffer | string): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = randomBytes(4);
  const len = data.length;
  const header = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (len >= 126 && len < 65536) {
    header[0] = 0x80 | opcode;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(len, 2);
  } else if (len >= 65536) {
    header[0] = 0x80 | opcode;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = data[i] ^ mask[i & 3];
  return Buffer.concat([header, mask, masked]);
}

export interface Frame {
  opcode: number;
  payload: Buffer;
}

/** Server frames (unmasked) in `buf`; an incomplete tail is left out. */
export function parseFrames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  let o = 0;
  while (o + 2 <= buf.length) {
    const opcode = buf[o] & 0x0f;
    let len = buf[o + 1] & 0x7f;
    let p = o + 2;
    if (len === 126) {
      if (p + 2 > buf.length) break;
      len = buf.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      if (p + 8 > buf.length) break;
      len = Number(buf.readBigUInt64BE(p));
      p += 8;
    }
    if (p + len > buf.length) break;
    out.push({ opcode, payload: buf.subarray(p, p + len) });
    o = p + len;
  }
  return out;
}
