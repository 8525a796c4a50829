// The package's main entry (`import { createEngine } from 'mtm-engine'`, README "In-process API"): the
// engine, the network server and its metrics wiring, the market data service and the error codes. The
// client SDK is the separate export `mtm-engine/client`; `mtm` is the command line.
export { createEngine, EngineStartError, MtmEngine } from './engine/engine.js';
export type { Engine, EngineLimits, EngineMessage, EngineOptions, EngineStats, EventQuery, Listener, PortfolioSummary, TickIngestResult } from './engine/api.js';
export { startServer, type RunningServer } from './server/server.js';
export type { ServerLimits, ServerOptions } from './server/options.js';
export { startObservability, type Observability } from './server/observability.js';
export { startMarketService, type MarketServiceLimits, type MarketServiceOptions } from './market/service.js';
export { ErrorCode, type EngineError, type Result } from './errors.js';
