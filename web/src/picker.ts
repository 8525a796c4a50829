// The portfolio picker: an ARIA 1.2 combobox (an <input role="combobox"> controlling a
// role="listbox" popup). Thousands of portfolios stay usable because the list is filtered as you type
// and only the first `shownMax` matches are rendered (a count says how many more there are); focus
// stays in the input and the active option is announced through aria-activedescendant.

import type { PortfolioSummary } from './api.js';
import { el } from './dom.js';

/** Options rendered at most: enough to scroll through, few enough to rebuild on every keystroke. */
export const shownMax = 50;

interface Item {
  summary: PortfolioSummary;
  /** Lower-cased "id name": one substring test per item per keystroke. */
  hay: string;
}

export interface PickerOptions {
  input: HTMLInputElement;
  listbox: HTMLUListElement;
  popup: HTMLElement;
  hint: HTMLElement;
  onPick: (id: string) => void;
  /** Called when the popup opens; the owner refreshes the list when it is stale. */
  onOpen?: () => void;
}

export class Picker {
  private items: Item[] = [];
  private shown: Item[] = [];
  private active = -1;
  private open = false;
  private chosen: string | null = null;
  private filterQueued = false;

  constructor(private readonly o: PickerOptions) {
    const { input, listbox } = o;
    input.addEventListener('input', () => {
      this.show();
      this.queueFilter();
    });
    input.addEventListener('focus', () => {
      input.select();
      this.show();
      this.queueFilter();
    });
    input.addEventListener('blur', () => this.hide());
    input.addEventListener('keydown', (e) => this.onKey(e));
    // mousedown would move focus out of the input (closing the popup before the click lands).
    listbox.addEventListener('mousedown', (e) => e.preventDefault());
    listbox.addEventListener('click', (e) => {
      const li = (e.target as Element).closest('li[role="option"]');
      if (li === null) return;
      const i = Number((li as HTMLElement).dataset.index);
      if (this.shown[i] !== undefined) this.pick(this.shown[i].summary.id);
    });
  }

  setItems(list: readonly PortfolioSummary[]): void {
    this.items = list.map((summary) => ({ summary, hay: `${summary.id} ${summary.name}`.toLowerCase() }));
    if (this.open) this.filter();
  }

  has(id: string): boolean {
    return this.items.some((i) => i.summary.id === id);
  }

  first(): string | null {
    return this.items[0]?.summary.id ?? null;
  }

  /** Shows `id` as the current choice (without calling onPick). */
  setChosen(id: string): void {
    this.chosen = id;
    if (document.activeElement !== this.o.input) this.o.input.value = id;
  }

  private queueFilter(): void {
    // Typing fast: filter once per frame, not once per input event.
    if (this.filterQueued) return;
    this.filterQueued = true;
    requestAnimationFrame(() => {
      if (!this.filterQueued) return; // already applied (Enter right after typing)
      this.filterQueued = false;
      if (this.open) this.filter();
    });
  }

  private filter(): void {
    const q = this.o.input.value.trim().toLowerCase();
    // When the input still shows the current choice, show everything (so the user can browse).
    const all = q === '' || q === this.chosen?.toLowerCase();
    // Id-prefix matches first (what people type), then other substring matches; both bounded.
    const prefix: Item[] = [];
    const other: Item[] = [];
    let total = 0;
    for (const it of this.items) {
      if (all) {
        total++;
        if (prefix.length < shownMax) prefix.push(it);
        continue;
      }
      const at = it.hay.indexOf(q);
      if (at < 0) continue;
      total++;
      if (at === 0) {
        if (prefix.length < shownMax) prefix.push(it);
      } else if (other.length < shownMax) other.push(it);
    }
    this.shown = prefix.concat(other).slice(0, shownMax);
    const keep = this.active >= 0 && this.active < this.shown.length ? this.active : -1;
    this.render(total);
    this.setActive(keep >= 0 ? keep : this.shown.length > 0 ? 0 : -1);
  }

  private render(total: number): void {
    const frag = document.createDocumentFragment();
    this.shown.forEach((it, i) => {
      const s = it.summary;
      const li = el(
        'li',
        { role: 'option', id: `picker-opt-${i}`, 'aria-selected': 'false', 'data-index': String(i), 'data-id': s.id },
        el('span', { class: 'opt-id' }, s.id),
        el('span', { class: 'opt-name' }, s.name),
      );
      if (s.state !== 'active') li.append(el('span', { class: `opt-state state-${s.state}` }, s.state));
      if (s.id === this.chosen) li.classList.add('chosen');
      frag.append(li);
    });
    this.o.listbox.replaceChildren(frag);
    this.o.hint.textContent =
      total === 0
        ? 'No portfolio matches'
        : total > this.shown.length
          ? `${this.shown.length} of ${total.toLocaleString('en-US')} shown: keep typing to narrow`
          : `${total.toLocaleString('en-US')} portfolio${total === 1 ? '' : 's'}`;
  }

  private setActive(i: number): void {
    const { input, listbox } = this.o;
    const prev = listbox.children[this.active];
    if (prev !== undefined) prev.setAttribute('aria-selected', 'false');
    this.active = i;
    const li = listbox.children[i];
    if (li === undefined) {
      input.removeAttribute('aria-activedescendant');
      return;
    }
    li.setAttribute('aria-selected', 'true');
    input.setAttribute('aria-activedescendant', li.id);
    li.scrollIntoView({ block: 'nearest' });
  }

  private show(): void {
    if (this.open) return;
    this.open = true;
    this.o.popup.hidden = false;
    this.o.input.setAttribute('aria-expanded', 'true');
    this.o.onOpen?.();
  }

  private hide(): void {
    if (!this.open) return;
    this.open = false;
    this.o.popup.hidden = true;
    this.o.input.setAttribute('aria-expanded', 'false');
    this.o.input.removeAttribute('aria-activedescendant');
    this.active = -1;
    // Leaving without picking restores the current choice instead of a half-typed filter.
    if (this.chosen !== null && document.activeElement !== this.o.input) this.o.input.value = this.chosen;
  }

  private pick(id: string): void {
    this.chosen = id;
    this.o.input.value = id;
    this.hide();
    // Focus stays in the input with its text selected: typing again starts a new search.
    this.o.input.select();
    this.o.onPick(id);
  }

  private onKey(e: KeyboardEvent): void {
    const n = this.shown.length;
    switch (e.key) {
      case 'ArrowDown':
        e.preventDefault();
        if (!this.open) {
          this.show();
          this.filter();
        } else if (n > 0) this.setActive(Math.min(n - 1, this.active + 1));
        return;
      case 'ArrowUp':
        e.preventDefault();
        if (!this.open) {
          this.show();
          this.filter();
        } else if (n > 0) this.setActive(Math.max(0, this.active - 1));
        return;
      case 'PageDown':
        if (!this.open || n === 0) return;
        e.preventDefault();
        this.setActive(Math.min(n - 1, this.active + 10));
        return;
      case 'PageUp':
        if (!this.open || n === 0) return;
        e.preventDefault();
        this.setActive(Math.max(0, this.active - 10));
        return;
      case 'Enter': {
        if (!this.open) return;
        e.preventDefault();
        // The filter may still be queued (Enter right after typing): apply it first.
        if (this.filterQueued) {
          this.filterQueued = false;
          this.filter();
        }
        const it = this.shown[this.active];
        if (it !== undefined) this.pick(it.summary.id);
        return;
      }
      case 'Escape':
        e.preventDefault();
        if (this.open) {
          this.hide();
          if (this.chosen !== null) this.o.input.value = this.chosen;
          this.o.input.select();
        } else this.o.input.value = '';
        return;
      case 'Tab':
        this.hide();
        return;
    }
  }
}
