// The command stream's message body (docs/CLUSTER.md): JSON {v, op, portfolio, args, reply?, command_id?}. The
// receiving node encodes it once; the owner decodes and checks its shape here, and the engine
// validates `args` exactly as for a local call (the stream is not trusted more than a client). A
// message that is not one of these (a foreign publisher on mtm.cmd.*, a newer version) is refused
// with a clear error, logged and counted by the consumer, and nothing is applied.

import { ErrorCode, fail, ok, type EngineError, type Result } from '../errors.js';
import { tradeIdPattern } from '../domain/rules.js';

export const commandVersion = 1;
/** Largest command body a node publishes or applies. */
export const commandBytesMax = 64 * 1024;

/**
 * corporate, corporateStep, instrument: broadcast to every partition's subject (broadcast.ts); their
 * portfolio field is '_corporate' or '_instruments' and their args are checked by the engine.
 */
export const commandOps = ['create', 'trade', 'cash', 'fxConvert', 'limits', 'pause', 'resume', 'close', 'corporate', 'corporateStep', 'instrument'] as const;
export type CommandOp = (typeof commandOps)[number];
const opSet: ReadonlySet<string> = new Set(commandOps);

export interface StreamCommand {
  readonly v: number;
  readonly op: CommandOp;
  readonly portfolio: string;
  /** The engine call's input (trade input, cash amount, limits, create input); validated by the engine. */
  readonly args: unknown;
  /** Where the owner sends the answer (the receiving node's inbox); absent: nobody waits. */
  readonly reply?: string;
  /** A non-trade command's idempotency id (the client's or the receiving node's): applied at most once per portfolio. */
  readonly command_id?: string;
}

/** The owner's answer on the reply subject: the engine's Result as it is. */
export type CommandAnswer = { ok: true; value: unknown } | { ok: false; error: EngineError };

export function encodeCommand(c: StreamCommand): Uint8Array {
  return Buffer.from(JSON.stringify(c), 'utf8');
}

export function decodeCommand(bytes: Uint8Array): Result<StreamCommand> {
  if (bytes.length > commandBytesMax) return fail(ErrorCode.payload_too_large, `command: body must be <= ${commandBytesMax} bytes, got ${bytes.length}`, 'command');
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    return fail(ErrorCode.invalid_json, 'command: body must be JSON {v, op, portfolio, args, reply?}', 'command');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(ErrorCode.invalid_field, 'command: body must be a JSON object {v, op, portfolio, args, reply?}', 'command');
  const c = v as Record<string, unknown>;
  if (c.v !== commandVersion) return fail(ErrorCode.invalid_field, `command.v must be ${commandVersion}, got ${JSON.stringify(c.v) ?? 'nothing'}`, 'v');
  if (typeof c.op !== 'string' || !opSet.has(c.op)) return fail(ErrorCode.unknown_op, `command.op must be one of ${commandOps.join(', ')}`, 'op');
  if (typeof c.portfolio !== 'string' || c.portfolio.length === 0 || c.portfolio.length > 128) return fail(ErrorCode.invalid_id, 'command.portfolio must be a portfolio id string of 1..128 characters', 'portfolio');
  if (c.reply !== undefined && (typeof c.reply !== 'string' || !/^[A-Za-z0-9_.-]{1,128}$/.test(c.reply))) return fail(ErrorCode.invalid_field, 'command.reply must be a subject of [A-Za-z0-9_.-]{1,128}', 'reply');
  if (c.command_id !== undefined && (typeof c.command_id !== 'string' || !tradeIdPattern.test(c.command_id))) return fail(ErrorCode.invalid_id, `command.command_id must match ${tradeIdPattern.source.slice(1, -1)}`, 'command_id');
  return ok({
    v: commandVersion,
    op: c.op as CommandOp,
    portfolio: c.portfolio,
    args: c.args,
    ...(c.reply === undefined ? {} : { reply: c.reply as string }),
    ...(c.command_id === undefined ? {} : { command_id: c.command_id as string }),
  });
}

export function encodeAnswer(r: Result<unknown>): Uint8Array {
  const a: CommandAnswer = r.ok ? { ok: true, value: r.value } : { ok: false, error: r.error };
  return Buffer.from(JSON.stringify(a), 'utf8');
}

export function decodeAnswer(bytes: Uint8Array): Result<unknown> {
  try {
    const a = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as CommandAnswer;
    if (a.ok === true) return ok(a.value);
    if (a.ok === false && typeof a.error?.code === 'string' && typeof a.error.message === 'string') return { ok: false, error: a.error };
  } catch {
    // falls through
  }
  return fail(ErrorCode.invalid_json, 'cluster: the owner answered something that is not {ok, value|error}');
}
