// AsyncAPI 3.0 description of the WebSocket protocols, served at GET /asyncapi.json. The document
// describes the server: `send` operations are what it sends, `receive` what it accepts. Every payload is
// the one definition of src/protocol/messages.ts (the ops as the server's limits shape them), named
// parts as $refs under components.schemas. test/server.api.test.ts validates real frames against it.

import { toJsonSchema } from '../schema.js';
import { CloseCode, asyncApiMessageSchemas, type ProtocolLimits } from '../protocol/messages.js';
import { defaultLimits } from './options.js';

type Json = Record<string, unknown>;

const msgRef = (name: string): Json => ({ $ref: `#/components/messages/${name}` });
const schemaRef = (name: string): string => `#/components/schemas/${name}`;

const binary = (description: string): Json => ({
  contentType: 'application/octet-stream',
  payload: { type: 'string', format: 'binary' },
  description,
});

const channelMessages = (names: string[]): Json => Object.fromEntries(names.map((n) => [n, msgRef(n)]));
const opMessages = (channel: string, names: string[]): Json[] => names.map((n) => ({ $ref: `#/channels/${channel}/messages/${n}` }));

export const mainIn = ['Subscribe', 'Unsubscribe', 'Resync', 'SubscribeEvents', 'UnsubscribeEvents', 'Trade', 'Ping', 'History', 'Cancel', 'SubscribeBars', 'UnsubscribeBars'];
export const mainOut = [
  'Snapshot',
  'Update',
  'Updates',
  'UpdateBinary',
  'UpdatesBinary',
  'Event',
  'Ack',
  'Error',
  'Pong',
  'Subscribed',
  'Unsubscribed',
  'EventsSubscribed',
  'HistoryChunk',
  'Progress',
  'HistoryEnd',
  'BarsSubscribed',
  'BarsUnsubscribed',
  'Bar',
];
const feedIn = ['FeedRegister', 'FeedTicks', 'FeedRegisterBinary', 'FeedTicksBinary'];
const feedOut = ['Registered', 'FeedAck', 'Error'];

/** The document for a server with these limits (list lengths and throttle range are the server's own). */
export function asyncApiDocument(limits: ProtocolLimits = defaultLimits): Json {
  const schemas: Record<string, unknown> = {};
  const messages: Json = Object.fromEntries(
    Object.entries(asyncApiMessageSchemas(limits)).map(([name, schema]) => [name, { name, contentType: 'application/json', payload: toJsonSchema({ s: schema }, schemaRef, schemas) as Json }]),
  );
  for (const m of Object.values(messages) as Json[]) m.payload = (m.payload as Json).s;
  messages.UpdateBinary = {
    name: 'UpdateBinary',
    ...binary('Update of a subscription with encoding "binary": the binary delta, layout in docs/PROTOCOL.md (kind 0x01, version 4, little-endian: a position a tick only re-marked is a tick record, price and price_ts, decoded against the position the reader holds; the SDK also reads versions 3 and 2).'),
  };
  messages.UpdatesBinary = {
    name: 'UpdatesBinary',
    ...binary('Per-connection frame (subscribe with frames "connection", encoding "binary"): kind 0x02, version 4, u32 count, then count x (u32 length, one version 4 update record): docs/PROTOCOL.md.'),
  };
  messages.FeedRegisterBinary = { name: 'FeedRegisterBinary', ...binary('Binary symbol registration (kind 0x10): docs/PROTOCOL.md.') };
  messages.FeedTicksBinary = { name: 'FeedTicksBinary', ...binary('Binary tick batch (kind 0x11), 28-byte records: docs/PROTOCOL.md.') };
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'mtm-engine WebSocket protocols',
      version: '1',
      description:
        'Auth: `Authorization: Bearer <key>` on the upgrade request, or (browsers) Sec-WebSocket-Protocol `mtm.v1, mtm.bearer.<key>`; the server selects `mtm.v1`. ' +
        `Close codes: 1001 shutdown, 1008 too many bad frames, 1009 frame over maxPayloadBytes, ${CloseCode.notFound} compat portfolio unavailable, ${CloseCode.slowConsumer} slow consumer. ` +
        'Every JSON message has `type`. Prose: docs/PROTOCOL.md.',
    },
    defaultContentType: 'application/json',
    servers: { local: { host: 'localhost', protocol: 'ws', description: 'mtm serve (port from --port)' } },
    channels: {
      main: {
        address: '/ws',
        description: 'Main protocol: subscriptions to snapshots/updates, events, trades; market data (history, subscribe_bars; scope read:market).',
        messages: channelMessages([...mainIn, ...mainOut.filter((m) => !mainIn.includes(m))]),
      },
      compat: {
        address: '/ws/realtime/positions/{portfolio_id}',
        description: 'Compatibility path of the older system: a full snapshot on connect and after every change. Client frames are ignored.',
        parameters: { portfolio_id: { description: 'Portfolio id' } },
        messages: channelMessages(['CompatSnapshot']),
      },
      feed: {
        address: '/ws/feed',
        description: 'Price publishers (scope feed): JSON or binary tick batches, one feed_ack per batch (accepted, rejected, held: suspect ticks kept back).',
        messages: channelMessages([...feedIn, ...feedOut]),
      },
    },
    operations: {
      mainReceive: { action: 'receive', channel: { $ref: '#/channels/main' }, messages: opMessages('main', mainIn) },
      mainSend: { action: 'send', channel: { $ref: '#/channels/main' }, messages: opMessages('main', mainOut) },
      compatSend: { action: 'send', channel: { $ref: '#/channels/compat' }, messages: opMessages('compat', ['CompatSnapshot']) },
      feedReceive: { action: 'receive', channel: { $ref: '#/channels/feed' }, messages: opMessages('feed', feedIn) },
      feedSend: { action: 'send', channel: { $ref: '#/channels/feed' }, messages: opMessages('feed', feedOut) },
    },
    components: {
      schemas,
      messages,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'On the upgrade request' },
        bearerProtocol: { type: 'httpApiKey', name: 'Sec-WebSocket-Protocol', in: 'header', description: 'mtm.bearer.<key> next to mtm.v1 (browsers)' },
      },
    },
  };
}
