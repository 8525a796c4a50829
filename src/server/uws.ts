// Loads uWebSockets.js and tells whether its native binary loaded or the package fell back to its
// Node shim (it does so silently when no binary matches the platform/ABI, e.g. Node 22+, or with
// UWS_USE_FALLBACK=1). The shim lacks what the server needs (custom upgrade, pub/sub, user data), so
// on 'fallback' the server runs on nodeTransport.ts (node:http + ws) instead; /health and the metrics
// report which binary loaded and which transport runs.

import { createRequire } from 'node:module';
import type * as UwsTypes from 'uWebSockets.js';

export type Uws = typeof UwsTypes;
export type UwsBinary = 'native' | 'fallback';

const require = createRequire(import.meta.url);
let loaded: { uws: Uws; binary: UwsBinary } | null = null;

/** A native binding's functions print as `function () { [native code] }`; the shim's App is plain JS. */
export function isNativeFunction(f: unknown): boolean {
  return typeof f === 'function' && /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(f));
}

export function loadUws(): { uws: Uws; binary: UwsBinary } {
  if (loaded === null) {
    const uws = require('uWebSockets.js') as Uws;
    loaded = { uws, binary: isNativeFunction(uws.App) ? 'native' : 'fallback' };
  }
  return loaded;
}
