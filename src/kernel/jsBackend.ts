// The plain-TypeScript reference kernel. Same algorithm and summation order as assembly/kernel.ts,
// so that on the same input both produce the same bits. Selected with --kernel js.

import type { KernelBackend } from './backend.js';
import {
  BREACH_MAX_DRAWDOWN,
  BREACH_MAX_LOSS,
  BREACH_MAX_WEIGHT,
  FLAG_BREACH_LATCHED,
  H,
  HEADER_BYTES,
  NONE,
  viewColumns,
  type Columns,
  type Layout,
} from './layout.js';

export class JsBackend implements KernelBackend {
  readonly kind = 'js' as const;
  private c!: Columns;
  private header!: Int32Array;

  resize(bytes: number): ArrayBuffer {
    return new ArrayBuffer(bytes);
  }

  bind(buffer: ArrayBuffer, layout: Layout): void {
    this.c = viewColumns(buffer, layout);
    this.header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
  }

  revalue(n: number): number {
    const c = this.c;
    const h = this.header;
    const stamp = (h[H.stamp] = (h[H.stamp] + 1) | 0);
    const { batchSym, batchPrice, symPrice, symHead, posNextSym, posMark, posQty, posFx, posMv, posUpnl, posAvg, posPf, pfStamp, pfDirty } = c;
    let dirty = 0;
    let touched = 0;
    for (let k = 0; k < n; k++) {
      const s = batchSym[k];
      const price = batchPrice[k];
      if (symPrice[s] === price) continue;
      symPrice[s] = price;
      for (let pos = symHead[s]; pos !== NONE; pos = posNextSym[pos]) {
        posMark[pos] = price;
        const q = posQty[pos];
        if (q === 0) continue;
        const fx = posFx[pos];
        posMv[pos] = q * price * fx;
        posUpnl[pos] = (price - posAvg[pos]) * q * fx;
        touched++;
        const f = posPf[pos];
        if (pfStamp[f] !== stamp) {
          pfStamp[f] = stamp;
          pfDirty[dirty++] = f;
        }
      }
    }
    let breaches = 0;
    for (let i = 0; i < dirty; i++) {
      const f = pfDirty[i];
      if (this.recompute(f) !== 0) c.pfBreach[breaches++] = f;
    }
    h[H.dirtyCount] = dirty;
    h[H.breachCount] = breaches;
    h[H.touched] = touched;
    return dirty;
  }

  recompute(f: number): number {
    const c = this.c;
    let holdings = 0;
    let cost = 0;
    let upnl = 0;
    let gross = 0;
    let maxAbs = 0;
    for (let pos = c.pfHead[f]; pos !== NONE; pos = c.posNextPf[pos]) {
      const q = c.posQty[pos];
      if (q === 0) continue;
      const mv = c.posMv[pos];
      holdings += mv;
      cost += Math.abs(q) * c.posAvg[pos] * c.posFx[pos];
      upnl += c.posUpnl[pos];
      const a = Math.abs(mv);
      gross += a;
      if (a > maxAbs) maxAbs = a;
    }
    c.pfHoldings[f] = holdings;
    c.pfCostBasis[f] = cost;
    c.pfUpnl[f] = upnl;
    c.pfGross[f] = gross;
    c.pfMaxAbsMv[f] = maxAbs;
    const equity = c.pfCash[f] + holdings;
    if (equity > c.pfHwm[f]) c.pfHwm[f] = equity;
    if ((c.pfFlags[f] & FLAG_BREACH_LATCHED) !== 0) return 0;
    let kind = 0;
    let value = 0;
    const maxLoss = c.pfMaxLoss[f];
    const maxDd = c.pfMaxDdPct[f];
    const maxW = c.pfMaxWeightPct[f];
    const hwm = c.pfHwm[f];
    const totalReturn = c.pfRealized[f] + upnl;
    if (maxLoss === maxLoss && totalReturn < -maxLoss) {
      kind = BREACH_MAX_LOSS;
      value = totalReturn;
    } else if (maxDd === maxDd && hwm > 0 && ((hwm - equity) / hwm) * 100 > maxDd) {
      kind = BREACH_MAX_DRAWDOWN;
      value = ((hwm - equity) / hwm) * 100;
    } else if (maxW === maxW && gross > 0 && (maxAbs / gross) * 100 > maxW) {
      kind = BREACH_MAX_WEIGHT;
      value = (maxAbs / gross) * 100;
    }
    if (kind !== 0) {
      c.pfFlags[f] |= FLAG_BREACH_LATCHED;
      c.pfBreachKind[f] = kind;
      c.pfBreachValue[f] = value;
    }
    return kind;
  }
}
