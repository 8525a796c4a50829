// The market ops of the /ws protocol, parsed from a frame's JSON object (protocol.ts dispatches here):
// history, cancel, subscribe_bars, unsubscribe_bars. Structure is checked here (a malformed op is a
// bad frame); a history's values (symbol, tf, from, to, fill, span) are checked when it runs, so
// the answer is an error naming the field, with the request id, as for a trade.

import { ErrorCode, fail, ok } from '../errors.js';
import { validSymbol } from '../domain/validate.js';
import { isTimeframe, timeframes, type Timeframe } from '../market/timeframe.js';
import type { RequestId } from '../client/protocol.js';

export interface HistoryOp {
  op: 'history';
  /** Required: every chunk, progress and history_end carries it, and cancel names it. */
  id: RequestId;
  symbol: unknown;
  tf: unknown;
  from: unknown;
  /** Omitted: now. */
  to: unknown;
  fill: unknown;
}

export interface CancelOp {
  op: 'cancel';
  /** The id of the history to stop. */
  id: RequestId;
}

export interface SubscribeBarsOp {
  op: 'subscribe_bars' | 'unsubscribe_bars';
  id?: RequestId;
  symbols: string[];
  tf: Timeframe;
}

export type MarketOp = HistoryOp | CancelOp | SubscribeBarsOp;

export const marketOps: readonly string[] = ['history', 'cancel', 'subscribe_bars', 'unsubscribe_bars'];

/** Symbols one subscribe_bars / unsubscribe_bars frame may name (the per-connection bound is MarketWsLimits'). */
export const barSymbolsPerOpMax = 256;

type Parsed = { ok: true; value: MarketOp } | { ok: false; error: { code: ErrorCode; message: string; field?: string }; id?: RequestId };

function withId(r: { ok: false; error: { code: ErrorCode; message: string; field?: string } }, id: RequestId | undefined): Parsed {
  return id === undefined ? r : { ...r, id };
}

export function isMarketOp(op: { op: string }): op is MarketOp {
  return marketOps.includes(op.op);
}

/** m.op is one of marketOps; id was validated by the caller. */
export function parseMarketOp(m: Record<string, unknown>, id: RequestId | undefined): Parsed {
  switch (m.op) {
    case 'history':
      if (id === undefined) return fail(ErrorCode.invalid_field, 'history needs an id: its chunks, progress and end carry it', 'id');
      return ok({ op: 'history', id, symbol: m.symbol, tf: m.tf, from: m.from, to: m.to, fill: m.fill });
    case 'cancel':
      if (id === undefined) return fail(ErrorCode.invalid_field, 'cancel needs the id of the history to stop', 'id');
      return ok({ op: 'cancel', id });
    default: {
      const s = m.symbols;
      if (!Array.isArray(s) || s.length === 0) return withId(fail(ErrorCode.invalid_field, 'symbols must be a non-empty array of symbols', 'symbols'), id);
      if (s.length > barSymbolsPerOpMax) return withId(fail(ErrorCode.limit_exceeded, `symbols may hold at most ${barSymbolsPerOpMax} symbols`, 'symbols'), id);
      for (let i = 0; i < s.length; i++) {
        if (!validSymbol(s[i])) return withId(fail(ErrorCode.invalid_symbol, `symbols[${i}] must match [A-Za-z0-9._:/-]{1,32}`, `symbols[${i}]`), id);
      }
      if (!isTimeframe(m.tf)) return withId(fail(ErrorCode.invalid_field, `tf must be one of ${timeframes.join(', ')}`, 'tf'), id);
      const op = m.op === 'subscribe_bars' ? 'subscribe_bars' : 'unsubscribe_bars';
      return ok({ op, ...(id === undefined ? {} : { id }), symbols: [...new Set(s as string[])], tf: m.tf });
    }
  }
}
