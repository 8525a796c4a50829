// The wire protocol's constants, apart from the message schemas (messages.ts, which re-exports them) so
// that the SDK and the page (web/) take these values and only the *types* of messages.ts: esbuild
// erases type imports, and the browser bundle carries none of TypeBox.

/** Sub-protocol the server selects; clients offer it (browsers: alongside `mtm.bearer.<key>`). */
export const PROTOCOL_NAME = 'mtm.v1';
/** Prefix of the Sec-WebSocket-Protocol entry that carries an API key (browsers cannot set headers). */
export const BEARER_PROTOCOL_PREFIX = 'mtm.bearer.';

/** WebSocket close codes the server uses (besides 1000/1001/1009 from RFC 6455). */
export const CloseCode = {
  /** Server shutting down. */
  goingAway: 1001,
  /** Too many malformed frames within the window, or a binary frame on a text-only protocol. */
  policyViolation: 1008,
  /** Frame larger than maxPayloadBytes (uWS closes these itself). */
  messageTooBig: 1009,
  /** The socket stayed above the backpressure soft bound for slowConsumerGraceMs, or passed the hard bound. */
  slowConsumer: 4008,
  /** Compat path: the engine refused the subscription after the upgrade (portfolio gone). Missing or out-of-scope portfolios are refused at the upgrade with 404. */
  notFound: 4004,
} as const;
