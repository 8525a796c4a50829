// The session's equity as an inline SVG sparkline. Memory and drawing cost are bounded whatever the
// session length: samples go into time buckets (the last value of a bucket wins) and when there are
// more than `pointsMax` buckets, neighbours are merged and the bucket width doubles. The newest
// minutes stay at fine resolution until the session grows long enough to coarsen them too.

import { setText } from './dom.js';
import { fmtMoney, fmtSignedPct } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
export const pointsMax = 240;
const width = 600;
const height = 80;

interface Point {
  t: number;
  v: number;
}

export class Sparkline {
  private points: Point[] = [];
  private bucketMs = 250;
  private dirty = false;
  private readonly line: SVGPathElement;
  private readonly area: SVGPathElement;

  constructor(
    svg: SVGSVGElement,
    private readonly label: { last: Text; change: Text; range: Text; changeEl: HTMLElement },
  ) {
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    this.area = document.createElementNS(SVG, 'path');
    this.area.setAttribute('class', 'spark-area');
    this.line = document.createElementNS(SVG, 'path');
    this.line.setAttribute('class', 'spark-line');
    // Keeps the stroke 1.5 px wide although the viewBox is stretched to the card's width.
    this.line.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.replaceChildren(this.area, this.line);
  }

  reset(): void {
    this.points = [];
    this.bucketMs = 250;
    this.dirty = true;
  }

  /** Records a sample; cheap, called for every update even while the tab is hidden. */
  add(t: number, v: number): void {
    const last = this.points[this.points.length - 1];
    if (last !== undefined && Math.floor(last.t / this.bucketMs) === Math.floor(t / this.bucketMs)) {
      last.t = t;
      last.v = v;
    } else {
      this.points.push({ t, v });
      if (this.points.length > pointsMax) this.coarsen();
    }
    this.dirty = true;
  }

  private coarsen(): void {
    this.bucketMs *= 2;
    const merged: Point[] = [];
    for (const p of this.points) {
      const prev = merged[merged.length - 1];
      if (prev !== undefined && Math.floor(prev.t / this.bucketMs) === Math.floor(p.t / this.bucketMs)) {
        prev.t = p.t;
        prev.v = p.v;
      } else merged.push({ ...p });
    }
    this.points = merged;
  }

  /** Redraws when something was added since the last frame. */
  render(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const pts = this.points;
    const { last, change, range, changeEl } = this.label;
    if (pts.length === 0) {
      this.line.setAttribute('d', '');
      this.area.setAttribute('d', '');
      setText(last, '—');
      setText(change, '');
      setText(range, '');
      return;
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of pts) {
      if (p.v < lo) lo = p.v;
      if (p.v > hi) hi = p.v;
    }
    const t0 = pts[0].t;
    const span = Math.max(1, pts[pts.length - 1].t - t0);
    const pad = (hi - lo) * 0.1 || Math.max(1, Math.abs(hi) * 0.001);
    const y = (v: number) => (height - ((v - (lo - pad)) / (hi - lo + 2 * pad)) * height).toFixed(1);
    const x = (t: number) => (pts.length === 1 ? width : ((t - t0) / span) * width).toFixed(1);
    let d = '';
    for (let i = 0; i < pts.length; i++) d += (i === 0 ? 'M' : 'L') + x(pts[i].t) + ' ' + y(pts[i].v);
    this.line.setAttribute('d', d);
    this.area.setAttribute('d', `${d}L${x(pts[pts.length - 1].t)} ${height}L${x(t0)} ${height}Z`);
    const first = pts[0].v;
    const now = pts[pts.length - 1].v;
    const pct = first !== 0 ? ((now - first) / Math.abs(first)) * 100 : 0;
    setText(last, fmtMoney(now));
    // Arrow and sign as well as colour.
    setText(change, `${now > first ? '▲' : now < first ? '▼' : '■'} ${fmtSignedPct(pct)} this session`);
    changeEl.dataset.sign = now > first ? 'pos' : now < first ? 'neg' : 'zero';
    setText(range, `low ${fmtMoney(lo)} · high ${fmtMoney(hi)}`);
  }
}
