// Serialization, once per message whatever the number of recipients: JSON text is encoded to UTF-8
// bytes once and the same bytes are published to a topic or sent to each socket.

import type { PortfolioSnapshot, PortfolioUpdate, StoredEvent } from '../domain/types.js';
import { encodeUpdate } from '../protocol/binary.js';
import type { ErrorMessage, RequestId, ServerMessage } from '../protocol/messages.js';
import type { EngineError } from '../errors.js';

export interface Encoded {
  readonly bytes: Buffer;
  readonly isBinary: boolean;
}

export function encodeJson(message: ServerMessage | Record<string, unknown>): Encoded {
  return { bytes: Buffer.from(JSON.stringify(message), 'utf8'), isBinary: false };
}

export function snapshotMessage(snapshot: PortfolioSnapshot, resync: boolean): Encoded {
  return encodeJson({ type: 'snapshot', resync, ...snapshot });
}

/** from_seq appears only when the update merges several (fromSeq < seq). */
export function updateMessageJson(update: PortfolioUpdate, fromSeq: number = update.seq): Encoded {
  return encodeJson(fromSeq < update.seq ? { type: 'update', from_seq: fromSeq, ...update } : { type: 'update', ...update });
}

/** frames: 'connection': already encoded update messages, one JSON frame (their bytes copied once). */
export function updatesMessageJson(updates: readonly Buffer[]): Encoded {
  const parts: Buffer[] = [updatesOpen];
  for (let i = 0; i < updates.length; i++) {
    if (i > 0) parts.push(comma);
    parts.push(updates[i]);
  }
  parts.push(updatesClose);
  return { bytes: Buffer.concat(parts), isBinary: false };
}
const updatesOpen = Buffer.from('{"type":"updates","updates":[', 'utf8');
const comma = Buffer.from(',', 'utf8');
const updatesClose = Buffer.from(']}', 'utf8');

/** Version 2 binary update (the SDK still reads it; the server now sends version 4, src/protocol/delta.ts). */
export function updateMessageBinary(update: PortfolioUpdate, fromSeq: number = update.seq): Encoded {
  const u8 = encodeUpdate(update, fromSeq);
  return { bytes: Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength), isBinary: true };
}

export function eventMessage(event: StoredEvent): Encoded {
  return encodeJson({ type: 'event', event });
}

export function errorMessage(
  error: Pick<EngineError, 'code' | 'message' | 'field'>,
  extra: { id?: RequestId; portfolio?: string; retry_after_ms?: number } = {},
): Encoded {
  const m: ErrorMessage = { type: 'error', code: error.code, message: error.message };
  if (extra.id !== undefined) m.id = extra.id;
  if (error.field !== undefined) m.field = error.field;
  if (extra.portfolio !== undefined) m.portfolio = extra.portfolio;
  if (extra.retry_after_ms !== undefined) m.retry_after_ms = extra.retry_after_ms;
  return encodeJson(m);
}

/** The body of every HTTP error: {"error":{"code","message"[,"field"]}}. */
export function httpErrorBody(error: Pick<EngineError, 'code' | 'message' | 'field' | 'command_id'>): string {
  const body: { code: string; message: string; field?: string; command_id?: string } = { code: error.code, message: error.message };
  if (error.field !== undefined) body.field = error.field;
  if (error.command_id !== undefined) body.command_id = error.command_id;
  return JSON.stringify({ error: body });
}

/** Full state kept per watched portfolio from the engine's snapshot plus every update since. */
export { applyUpdate as applyUpdateToView } from '../protocol/view.js';
