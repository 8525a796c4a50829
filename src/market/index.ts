// Market data: the pure core (bars, roll-ups, gap filling, query parsing, feed gaps, alert rules).
// Persistence, HTTP and WebSocket wiring build on this API; nothing here does I/O or reads a clock.

export * from './timeframe.js';
export * from './bar.js';
export * from './symbols.js';
export * from './barBook.js';
export * from './rollup.js';
export * from './fill.js';
export * from './query.js';
export * from './alertRules.js';
export * from './alerts.js';
export { ExtremaWindow, RollingStats } from './window.js';
