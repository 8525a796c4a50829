// The domain's bounds and patterns: plain values, below both the vocabulary (types.ts re-exports
// them) and the message schemas (schemas.ts), so neither imports the other in a circle.

/** Quantities are fixed point: an integer count of 1e-8 units held exactly in a float64. */
export const QUANTITY_DECIMALS = 8;
export const QUANTITY_SCALE = 1e8;
/** Largest |quantity| a trade or a position may hold: 2^53 units of 1e-8, rounded down. */
export const quantityMax = 90_000_000;
export const priceMax = 1e12;
export const amountMax = 1e15;
export const symbolPattern = /^[A-Za-z0-9._:/-]{1,32}$/;
export const portfolioIdPattern = /^[A-Za-z0-9._:-]{1,64}$/;
export const tradeIdPattern = /^[A-Za-z0-9._:/-]{1,128}$/;
export const nameLengthMax = 128;
/** ISO 4217 style: three capital letters. */
export const currencyPattern = /^[A-Z]{3}$/;
export const baseCurrencyDefault = 'USD';
/** Open lots one position may hold (lot-based methods); a trade that would open one more is refused. */
export const lotsPerPositionMax = 1000;
/** lot_ids one trade may name. */
export const lotIdsPerTradeMax = 100;
/** Largest FX rate accepted (quote -> base); the smallest is any positive price. */
export const fxRateMax = 1e6;
/** Largest share count on either side of a split ratio (`to` new shares for every `from` old). */
export const splitRatioMax = 1_000_000;

/** Largest contract multiplier an instrument may have (money per point per unit held). */
export const multiplierMax = 1_000_000;
export const instrumentDescriptionLengthMax = 256;
/** Instruments the engine keeps (reference data; each one a log event). */
export const instrumentsMaxDefault = 100_000;

export type AssetClass = 'equity' | 'etf' | 'future' | 'option' | 'fx' | 'crypto' | 'bond' | 'index' | 'cfd' | 'commodity';
export const assetClasses: readonly AssetClass[] = ['equity', 'etf', 'future', 'option', 'fx', 'crypto', 'bond', 'index', 'cfd', 'commodity'];

/** How a reducing trade picks the cost it realizes against. */
export type CostBasisMethod = 'average' | 'fifo' | 'lifo';
export const costBasisMethods: readonly CostBasisMethod[] = ['average', 'fifo', 'lifo'];
