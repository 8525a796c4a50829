// The portfolio totals: one <dd> per figure, text patched only when it changes. Each <dd> carries
// data-total (the field) and data-value (the exact number shown), so tests can compare the screen
// with a REST snapshot of the same seq.

import type { PortfolioSnapshot, Totals } from '../../src/domain/types.js';
import { el, setText } from './dom.js';
import { fmtMoney, fmtPnl, fmtSignedPct, signOf } from './format.js';

type Field = keyof Totals;

export const totalFields: readonly { field: Field; label: string; fmt: (n: number) => string; tone: boolean }[] = [
  { field: 'holdings_value', label: 'Holdings value', fmt: fmtMoney, tone: false },
  { field: 'cash', label: 'Cash', fmt: fmtMoney, tone: false },
  { field: 'equity', label: 'Equity', fmt: fmtMoney, tone: false },
  { field: 'realized_pnl', label: 'Realized P&L', fmt: fmtPnl, tone: true },
  { field: 'unrealized_pnl', label: 'Unrealized P&L', fmt: fmtPnl, tone: true },
  { field: 'total_return', label: 'Total return', fmt: fmtPnl, tone: true },
  { field: 'return_rate', label: 'Return rate', fmt: fmtSignedPct, tone: true },
];

interface Slot {
  dd: HTMLElement;
  text: Text;
  value: number | null;
}

export class TotalsView {
  private readonly slots: Slot[];

  constructor(dl: HTMLElement) {
    this.slots = totalFields.map((f) => {
      const text = document.createTextNode('—');
      const dd = el('dd', { 'data-total': f.field }, text);
      dl.append(el('div', { class: 'stat' }, el('dt', null, f.label), dd));
      return { dd, text, value: null };
    });
  }

  clear(): void {
    for (const s of this.slots) {
      s.value = null;
      setText(s.text, '—');
      s.dd.removeAttribute('data-value');
      s.dd.removeAttribute('data-sign');
    }
  }

  render(v: PortfolioSnapshot): void {
    totalFields.forEach((f, i) => {
      const s = this.slots[i];
      const n = v[f.field];
      if (n === s.value) return;
      s.value = n;
      setText(s.text, f.fmt(n));
      s.dd.dataset.value = String(n);
      if (f.tone) s.dd.dataset.sign = signOf(s.text.data);
    });
  }
}
