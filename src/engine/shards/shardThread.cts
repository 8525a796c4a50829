// The file piscina starts each shard thread with. piscina loads its worker file with require() first,
// and on Node 20.19+ require() of an ES module takes the require(esm) path, whose module facade asserts
// that instantiation succeeded: a thread ended (pool destroyed, engine closed or refused) while that
// path instantiates the module aborts the whole process (node::loader::ModuleWrap::
// CreateRequiredModuleFacade; the CI run of 453bacc lost test/restart.test.ts's process to it). This
// CommonJS file has nothing of that to instantiate: it starts the ES module's dynamic import at once.
//
// Its export is the import's promise, as an ES module's `default`: piscina awaits `default` before the
// thread reports ready, so a thread is ready only once the shard's modules are loaded. Exporting a
// function that awaited the import on its first task left the import to finish then: an idle piscina
// thread blocks its event loop in Atomics.wait, so the booted standby thread (shardThreadsStandby)
// still had most of its modules to load when a supervised restart's task came (200-450 ms of the
// restart, docs/BENCHMARKS.md "Restart, seventh session (load)").

type ShardTask = (typeof import('./shardWorker.js'))['default'];

const loading: Promise<ShardTask> = import('./shardWorker.js').then((m) => m.default);
// A thread ended while importing: nothing waits for it, and no unhandled rejection is reported.
loading.catch(() => undefined);

const shardThread: { __esModule: true; default: Promise<ShardTask> } = { __esModule: true, default: loading };

export = shardThread;
