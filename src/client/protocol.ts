// The WebSocket protocol's message shapes, shared by the server and the client SDK.
// Browser-safe: imports types only. docs/PROTOCOL.md is the prose version of this file.

import type {
  DomainEventType,
  PortfolioSnapshot,
  PortfolioUpdate,
  StoredEvent,
  TradeInput,
  TradeResult,
} from '../domain/types.js';

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

export type RequestId = string | number;
export type Encoding = 'json' | 'binary';
/**
 * How updates are framed: 'single' (default) = one message per update; 'connection' = one message per
 * connection per engine batch carrying every update it owes (JSON `updates`, binary kind 0x02).
 */
export type Frames = 'single' | 'connection';

// ---- client -> server (/ws) ----
export interface SubscribeOp {
  op: 'subscribe';
  id?: RequestId;
  portfolios: string[];
  throttle_ms?: number;
  encoding?: Encoding;
  frames?: Frames;
}
export interface UnsubscribeOp {
  op: 'unsubscribe';
  id?: RequestId;
  portfolios: string[];
}
export interface ResyncOp {
  op: 'resync';
  id?: RequestId;
  portfolio: string;
}
export interface SubscribeEventsOp {
  op: 'subscribe_events';
  id?: RequestId;
  /** Omitted: every portfolio the key may read. */
  portfolios?: string[];
  /** Omitted: every event type. */
  types?: DomainEventType[];
}
export interface UnsubscribeEventsOp {
  op: 'unsubscribe_events';
  id?: RequestId;
}
export interface TradeOp {
  op: 'trade';
  id: RequestId;
  portfolio: string;
  trade: TradeInput;
}
export interface PingOp {
  op: 'ping';
  id?: RequestId;
}
export type ClientOp = SubscribeOp | UnsubscribeOp | ResyncOp | SubscribeEventsOp | UnsubscribeEventsOp | TradeOp | PingOp;

// ---- client -> server (/ws/feed, JSON) ----
export interface FeedTick {
  symbol: string;
  price: number;
  ts: number;
  size?: number;
}
export interface FeedRegisterOp {
  op: 'register';
  id?: RequestId;
  symbols: string[];
}
export interface FeedTicksOp {
  op: 'ticks';
  id?: RequestId;
  ticks: FeedTick[];
}
export type FeedOp = FeedRegisterOp | FeedTicksOp;

// ---- server -> client ----
export type SnapshotMessage = { type: 'snapshot'; resync: boolean } & PortfolioSnapshot;
/** from_seq is present when several updates were merged (throttling or conflation): seqs from_seq..seq. */
export type UpdateMessage = { type: 'update'; from_seq?: number } & PortfolioUpdate;
/** frames: 'connection': the update messages of one engine batch for one connection, in order. */
export interface UpdatesMessage {
  type: 'updates';
  updates: UpdateMessage[];
}
export interface EventMessage {
  type: 'event';
  event: StoredEvent;
}
export type AckMessage = { type: 'ack'; id: RequestId } & TradeResult;
export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
  id?: RequestId;
  field?: string;
  portfolio?: string;
  retry_after_ms?: number;
}
export interface PongMessage {
  type: 'pong';
  id?: RequestId;
  ts: number;
}
export interface SubscribedMessage {
  type: 'subscribed';
  id?: RequestId;
  portfolios: string[];
}
export interface UnsubscribedMessage {
  type: 'unsubscribed';
  id?: RequestId;
  portfolios: string[];
}
export interface EventsSubscribedMessage {
  type: 'events_subscribed';
  id?: RequestId;
  portfolios: string[] | null;
  types: DomainEventType[] | null;
}
export interface RegisteredMessage {
  type: 'registered';
  id?: RequestId;
  symbols: { symbol: string; id: number }[];
  rejected: { index: number; code: string }[];
}
export interface FeedAckMessage {
  type: 'feed_ack';
  id?: RequestId;
  /** Number of this batch on the connection, from 1. */
  batch: number;
  /** Ticks taken, held ones included (accepted + rejected = ticks in the batch). */
  accepted: number;
  rejected: number;
  /** Of the accepted, ticks held as suspect (not applied until confirmed). */
  held: number;
  /** The first rejected ticks (at most 32) with their reason. */
  errors: { index: number; code: string }[];
}
export type ServerMessage =
  | SnapshotMessage
  | UpdateMessage
  | UpdatesMessage
  | EventMessage
  | AckMessage
  | ErrorMessage
  | PongMessage
  | SubscribedMessage
  | UnsubscribedMessage
  | EventsSubscribedMessage
  | RegisteredMessage
  | FeedAckMessage;
