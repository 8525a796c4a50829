// The engine's lifecycle flags, shared by its stations: ready once recovery is done, closing from
// the first close() call, closed once everything is flushed.

export class Lifecycle {
  closing = false;
  closed = false;
  ready: Promise<void> = Promise.resolve();
}
