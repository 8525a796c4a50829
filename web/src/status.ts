// Connection status, the seq on screen and the tick-to-screen latency. Latency is measured when an
// update is drawn: Date.now() minus the update's tick_ts (the source timestamp of the newest tick
// behind it), so it includes the feed, the engine, throttling, the network and the wait for the
// frame. It assumes the server's and the browser's clocks agree (same host, or NTP).

import { byId, setText } from './dom.js';

export type ConnStatus = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

const windowSize = 200;

export class StatusView {
  private readonly conn = byId('conn');
  private readonly connText = byId('conn-text').firstChild as Text;
  private readonly seqEl = byId('seq');
  private readonly seqText = byId('seq').firstChild as Text;
  private readonly latencyEl = byId('latency');
  private readonly latencyText = byId('latency').firstChild as Text;
  private readonly samples: number[] = [];
  private next = 0;

  setConnection(s: ConnStatus, detail = ''): void {
    this.conn.dataset.status = s;
    setText(this.connText, detail === '' ? s : `${s}: ${detail}`);
    document.body.classList.toggle('stale', s !== 'connected');
  }

  get connection(): ConnStatus {
    return this.conn.dataset.status as ConnStatus;
  }

  setSeq(seq: number | null): void {
    if (seq === null) {
      this.seqEl.removeAttribute('data-seq');
      setText(this.seqText, 'seq —');
      return;
    }
    this.seqEl.dataset.seq = String(seq);
    setText(this.seqText, `seq ${seq}`);
  }

  /** Records one drawn update's latency (ms) and shows the last value and the p95 of the window. */
  addLatency(ms: number): void {
    // A ring: the window covers the last `windowSize` drawn updates whatever the session length.
    if (this.samples.length < windowSize) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % windowSize;
    const sorted = [...this.samples].sort((a, b) => a - b);
    const p95 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))];
    this.latencyEl.dataset.ms = String(ms);
    this.latencyEl.dataset.p95 = String(p95);
    setText(this.latencyText, `tick→screen ${Math.round(ms)} ms · p95 ${Math.round(p95)} ms`);
  }

  resetLatency(): void {
    this.samples.length = 0;
    this.next = 0;
    this.latencyEl.removeAttribute('data-ms');
    this.latencyEl.removeAttribute('data-p95');
    setText(this.latencyText, 'tick→screen —');
  }
}
