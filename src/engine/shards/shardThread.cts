// The file piscina starts each shard thread with. piscina loads its worker file with require() first,
// and on Node 20.19+ require() of an ES module takes the require(esm) path, whose module facade asserts
// that instantiation succeeded: a thread ended (pool destroyed, engine closed or refused) while that
// path instantiates the module aborts the whole process (node::loader::ModuleWrap::
// CreateRequiredModuleFacade; the CI run of 453bacc lost test/restart.test.ts's process to it). This
// CommonJS file has nothing of that to instantiate: it starts the ES module's dynamic import at once
// (so a booted standby thread still has the shard's modules loaded before its task comes, as before)
// and hands each task to it.

type ShardTask = (typeof import('./shardWorker.js'))['default'];

const loading: Promise<ShardTask> = import('./shardWorker.js').then((m) => m.default);
// A thread ended while importing: nothing waits for it, and no unhandled rejection is reported.
loading.catch(() => undefined);

const shardThread = async (task: Parameters<ShardTask>[0]): Promise<Awaited<ReturnType<ShardTask>>> => (await loading)(task);

export = shardThread;
