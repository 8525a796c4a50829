// The entry of a shard worker thread as the engine starts it (piscina's filename): the shard task
// (src/shard/worker.ts) given the store's read-only reader (src/store/logReader.ts), so a recovering
// shard reads its own snapshot and tail in its own thread. Composed here because a shard imports
// nothing from the store (test/imports.test.ts) and the store knows no workers.

import { shardTaskWith } from '../../shard/worker.js';
import { openLogReader } from '../../store/logReader.js';

export default shardTaskWith(openLogReader);
