// The REST side of the SDK for reference data and cash conversions (docs/PROTOCOL.md): instruments
// (PUT/GET /api/v1/instruments[/{symbol}]) and FX conversions between a portfolio's cash balances.
// Uses the platform fetch (Node 20, browsers); errors are thrown as MtmError with the server's code,
// message and field.

import type { AssetClass, FxConversionInput, Instrument, PortfolioSnapshot } from '../domain/types.js';
import { MtmError } from './client.js';

export type { AssetClass, FxConversionInput, Instrument };

export interface RestOptions {
  /** http(s)://host:port of the server. */
  baseUrl: string;
  /** API key (Authorization: Bearer); absent when the server runs without keys. */
  apiKey?: string;
  requestTimeoutMs?: number;
}

export type InstrumentDefinition = Omit<Instrument, 'symbol'>;

export class MtmRest {
  constructor(private readonly o: RestOptions) {}

  /** Defines or redefines an instrument (admin key); resolves with the definition in force. */
  defineInstrument(symbol: string, definition: InstrumentDefinition): Promise<Instrument> {
    return this.call<Instrument>('PUT', `/api/v1/instruments/${encodeURIComponent(symbol)}`, definition);
  }

  instrument(symbol: string): Promise<Instrument> {
    return this.call<Instrument>('GET', `/api/v1/instruments/${encodeURIComponent(symbol)}`);
  }

  async instruments(): Promise<Instrument[]> {
    return (await this.call<{ instruments: Instrument[] }>('GET', '/api/v1/instruments')).instruments;
  }

  /** Moves cash between two balances of the portfolio at the given rate; resolves with the snapshot after. */
  convertCash(portfolio: string, conversion: FxConversionInput): Promise<PortfolioSnapshot> {
    return this.call<PortfolioSnapshot>('POST', `/api/v1/portfolios/${encodeURIComponent(portfolio)}/fx-conversions`, conversion);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.o.apiKey !== undefined) headers.authorization = `Bearer ${this.o.apiKey}`;
    const res = await fetch(this.o.baseUrl.replace(/\/$/, '') + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.o.requestTimeoutMs ?? 10_000),
    });
    const payload = (await res.json()) as { error?: { code: string; message: string; field?: string } };
    if (!res.ok || payload.error !== undefined) {
      const e = payload.error ?? { code: 'internal', message: `HTTP ${res.status}` };
      throw new MtmError(e.code, e.field === undefined ? e.message : `${e.message} (field ${e.field})`);
    }
    return payload as T;
  }
}
