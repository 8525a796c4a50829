// mtm-engine client SDK (package export "./client"): browser-safe; `ws` is imported only in Node
// when no global WebSocket exists.
export { MtmClient, MtmError, defaultWebSocketFactory } from './client.js';
export type { ClientOptions, ClientState, ClientStats, ReconnectOptions, SubscribeOptions, Subscription, SubscriptionHandlers, WebSocketFactory, WebSocketLike } from './client.js';
export { MtmFeed, type FeedOptions, type FeedTickInput } from './feed.js';
export { MtmRest, type RestOptions, type InstrumentDefinition, type AssetClass, type FxConversionInput, type Instrument } from './rest.js';
// The wire protocol's constants and message types, from the one module the server uses too.
export { BEARER_PROTOCOL_PREFIX, CloseCode, PROTOCOL_NAME } from '../protocol/wire.js';
export type {
  AckMessage,
  ClientOp,
  Encoding,
  ErrorMessage,
  EventMessage,
  EventsSubscribedMessage,
  FeedAckMessage,
  FeedOp,
  FeedRegisterOp,
  FeedTick,
  FeedTicksOp,
  PingOp,
  PongMessage,
  RegisteredMessage,
  RequestId,
  ResyncOp,
  ServerMessage,
  SnapshotMessage,
  SubscribeEventsOp,
  SubscribeOp,
  SubscribedMessage,
  TradeOp,
  UnsubscribeEventsOp,
  UnsubscribeOp,
  UnsubscribedMessage,
  UpdateMessage,
} from '../protocol/messages.js';
export { decodeUpdate, encodeUpdate, encodeFeedRegister, encodeFeedTicks, decodeFeedFrame, readTick, FrameKind, TICK_RECORD_BYTES } from '../protocol/binary.js';
export type { BinaryTick, BinaryUpdate, FeedFrame } from '../protocol/binary.js';
export { applyUpdate } from '../protocol/view.js';
// Version 4 binary updates: a tick record decodes against the positions the reader holds (its view).
export { heldPositionsOf } from '../protocol/delta.js';
export type { HeldPosition, HeldPositions } from '../protocol/delta.js';
