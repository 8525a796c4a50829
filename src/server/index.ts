// The streaming server's public surface (for the CLI and tests).
export { startServer, type RunningServer } from './server.js';
export { defaultLimits, type ServerLimits, type ServerOptions } from './options.js';
export { loadKeysFile, parseKeys, type ApiKey } from './auth.js';
export { httpLatencyBucketsMs, type HttpRouteStats, type ServerStats, type WsProtocol } from './stats.js';
export { loadUws, type UwsBinary } from './uws.js';
