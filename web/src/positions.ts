// The positions table. One <tr> per symbol lives as long as the position: a render compares the
// latest values with what each cell shows and writes only the cells whose text changed, so 60
// updates/s of 50 positions cost a few hundred comparisons and the changed text nodes, never a
// rebuild. Rows are re-ordered only when the order actually changes (moving the misplaced <tr>s),
// and at most once a second for a value column, so rows do not jump around under the reader's eyes.

import type { PositionView } from '../../src/domain/types.js';
import { el, setText } from './dom.js';
import { fmtMoney, fmtPct, fmtPnl, fmtPrice, fmtQuantity, fmtSignedPct, signOf } from './format.js';

type NumKey = 'quantity' | 'avg_cost' | 'last_price' | 'market_value' | 'unrealized_pnl' | 'return_rate' | 'weight';
export type SortKey = 'symbol' | NumKey;

interface Column {
  key: NumKey;
  label: string;
  fmt: (n: number) => string;
  /** Flashes up/down when the value changes. */
  flash: boolean;
  /** Shows the direction of the last change as an arrow (colour is not the only signal). */
  arrow: boolean;
  /** Coloured by sign (the text carries +/− too). */
  tone: boolean;
}

const columns: readonly Column[] = [
  { key: 'quantity', label: 'Quantity', fmt: fmtQuantity, flash: false, arrow: false, tone: false },
  { key: 'avg_cost', label: 'Avg cost', fmt: fmtPrice, flash: false, arrow: false, tone: false },
  { key: 'last_price', label: 'Last', fmt: fmtPrice, flash: true, arrow: true, tone: false },
  { key: 'market_value', label: 'Market value', fmt: fmtMoney, flash: true, arrow: false, tone: false },
  { key: 'unrealized_pnl', label: 'Unrealized P&L', fmt: fmtPnl, flash: true, arrow: false, tone: true },
  { key: 'return_rate', label: 'Return %', fmt: fmtSignedPct, flash: true, arrow: false, tone: true },
  { key: 'weight', label: 'Weight', fmt: fmtPct, flash: false, arrow: false, tone: false },
];

interface Cell {
  td: HTMLTableCellElement;
  text: Text;
  /** Arrow of the last change (arrow columns only). */
  dir: Text | null;
  value: number;
  /** Alternates between two identical keyframes: switching animation-name restarts the flash without forcing a reflow. */
  flip: boolean;
}

interface Row {
  symbol: string;
  tr: HTMLTableRowElement;
  cells: Cell[];
  pos: PositionView;
  seen: number;
}

const resortIntervalMs = 1000;

export class PositionsTable {
  private readonly rows = new Map<string, Row>();
  private sortKey: SortKey = 'symbol';
  private sortDesc = false;
  private lastSortAt = 0;
  private orderDirty = true;
  private generation = 0;
  private readonly buttons = new Map<SortKey, HTMLButtonElement>();

  constructor(
    private readonly table: HTMLTableElement,
    private readonly empty: HTMLElement,
    private readonly requestRender: () => void,
  ) {
    const headRow = el('tr');
    const heads: { key: SortKey; label: string; numeric: boolean }[] = [
      { key: 'symbol', label: 'Symbol', numeric: false },
      ...columns.map((c) => ({ key: c.key, label: c.label, numeric: true })),
    ];
    for (const h of heads) {
      const button = el('button', { type: 'button', 'data-sort': h.key }, h.label, el('span', { class: 'sort-ind', 'aria-hidden': 'true' }));
      button.addEventListener('click', () => this.sortBy(h.key));
      this.buttons.set(h.key, button);
      headRow.append(el('th', { scope: 'col', class: h.numeric ? 'num' : 'sym' }, button));
    }
    table.tHead!.replaceChildren(headRow);
    this.paintSortHeaders();
  }

  /** Forgets every row (another portfolio was chosen). */
  clear(): void {
    this.rows.clear();
    this.table.tBodies[0].replaceChildren();
    this.orderDirty = true;
    this.empty.hidden = true;
  }

  sortBy(key: SortKey): void {
    if (this.sortKey === key) this.sortDesc = !this.sortDesc;
    else {
      this.sortKey = key;
      // Symbols read A→Z; values are most interesting largest first.
      this.sortDesc = key !== 'symbol';
    }
    this.paintSortHeaders();
    this.orderDirty = true;
    this.requestRender();
  }

  private paintSortHeaders(): void {
    for (const [key, button] of this.buttons) {
      const th = button.parentElement!;
      const ind = button.lastElementChild!;
      if (key === this.sortKey) {
        th.setAttribute('aria-sort', this.sortDesc ? 'descending' : 'ascending');
        ind.textContent = this.sortDesc ? ' ▼' : ' ▲';
      } else {
        th.removeAttribute('aria-sort');
        ind.textContent = '';
      }
    }
  }

  /** Draws `positions` (the full current list). Called from a requestAnimationFrame callback. */
  render(positions: readonly PositionView[], now: number): void {
    const gen = ++this.generation;
    const tbody = this.table.tBodies[0];
    for (const p of positions) {
      let row = this.rows.get(p.symbol);
      if (row === undefined) {
        row = this.createRow(p);
        this.rows.set(p.symbol, row);
        this.orderDirty = true;
      } else if (row.pos !== p) {
        this.patchRow(row, p);
      }
      row.seen = gen;
    }
    if (this.rows.size !== positions.length) {
      for (const [symbol, row] of this.rows) {
        if (row.seen === gen) continue;
        this.rows.delete(symbol);
        row.tr.remove();
        this.orderDirty = true;
      }
    }
    const valueSort = this.sortKey !== 'symbol';
    if (this.orderDirty || (valueSort && now - this.lastSortAt >= resortIntervalMs)) {
      this.reorder(tbody);
      this.lastSortAt = now;
      this.orderDirty = false;
    }
    this.empty.hidden = this.rows.size > 0;
  }

  private createRow(p: PositionView): Row {
    const tr = el('tr', { 'data-symbol': p.symbol });
    tr.append(el('th', { scope: 'row', class: 'sym' }, p.symbol));
    const cells: Cell[] = columns.map((c) => {
      const td = el('td', { class: 'num', 'data-col': c.key });
      let dir: Text | null = null;
      if (c.arrow) {
        dir = document.createTextNode('');
        td.append(el('span', { class: 'dir', 'aria-hidden': 'true' }, dir));
      }
      const value = p[c.key];
      const text = document.createTextNode(c.fmt(value));
      td.append(text);
      if (c.tone) td.dataset.sign = signOf(text.data);
      return { td, text, dir, value, flip: false };
    });
    for (const c of cells) tr.append(c.td);
    return { symbol: p.symbol, tr, cells, pos: p, seen: 0 };
  }

  private patchRow(row: Row, p: PositionView): void {
    row.pos = p;
    for (let i = 0; i < columns.length; i++) {
      const c = columns[i];
      const cell = row.cells[i];
      const v = p[c.key];
      if (v === cell.value) continue;
      const up = v > cell.value;
      cell.value = v;
      if (!setText(cell.text, c.fmt(v))) continue; // moved below the displayed precision: nothing to show
      if (c.tone) {
        const s = signOf(cell.text.data);
        if (cell.td.dataset.sign !== s) cell.td.dataset.sign = s;
      }
      if (c.arrow && cell.dir !== null) setText(cell.dir, up ? '▲ ' : '▼ ');
      if (c.flash) {
        cell.flip = !cell.flip;
        cell.td.dataset.flash = (up ? 'up' : 'down') + (cell.flip ? '1' : '2');
      }
    }
  }

  private reorder(tbody: HTMLTableSectionElement): void {
    const key = this.sortKey;
    const sign = this.sortDesc ? -1 : 1;
    const rows = [...this.rows.values()];
    rows.sort((a, b) => {
      if (key === 'symbol') return sign * (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0);
      const d = a.pos[key] - b.pos[key];
      // Ties fall back to the symbol so equal values keep a stable order between re-sorts.
      return d !== 0 ? sign * d : a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0;
    });
    // Move only the rows that are out of place: an unchanged order costs no DOM write at all.
    let node = tbody.firstElementChild;
    for (const r of rows) {
      if (r.tr === node) node = node.nextElementSibling;
      else tbody.insertBefore(r.tr, node);
    }
  }
}

