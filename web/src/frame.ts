// Coalesces DOM writes into one requestAnimationFrame callback. Data arrives faster than frames
// (and in bursts); renderers are idempotent "draw the latest state" functions, so queuing one twice
// in a frame is the same as once. In a hidden tab rAF pauses: the set stays bounded by the number
// of renderers and the first visible frame draws the latest state.

export class FrameScheduler {
  private readonly tasks = new Set<() => void>();
  private requested = false;

  request(task: () => void): void {
    this.tasks.add(task);
    if (this.requested) return;
    this.requested = true;
    requestAnimationFrame(this.run);
  }

  private readonly run = (): void => {
    this.requested = false;
    const tasks = [...this.tasks];
    this.tasks.clear();
    for (const t of tasks) {
      try {
        t();
      } catch (e) {
        // One broken renderer must not stop the others (or every later frame).
        console.error('render failed', e);
      }
    }
  };
}
