// Proves, in Debian's headless Chromium, the page's behaviour under exact control of its input:
// - picker: 5,000 portfolios are loaded by following the list's `next` pages, filtered as you type
//   into a bounded listbox, and driven by ArrowDown/ArrowUp/PageDown/Enter with aria-activedescendant;
// - rendering: 60 updates/s (bursts of 4 every 66 ms) of a 50-position portfolio (a scripted /ws, see
//   support/pageMock.ts) end with the screen equal to the last state, with every <tr> the same node
//   throughout (no tbody child-list change, no rebuild), cells of positions that never changed left
//   untouched, DOM writes coalesced to at most one batch per frame, and the frame work measured;
//   sorting by a header moves the same rows and sets aria-sort;
// - keys: against a real server with API keys, the page asks for a key, keeps it in sessionStorage,
//   sends it in the Authorization header and the WebSocket sub-protocol, and never in a URL.
// Without /usr/bin/chromium the tests are skipped, loudly.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page, WebSocketRoute } from 'playwright-core';
import { fmtPrice, fmtMoney, fmtPct, fmtPnl, fmtQuantity, fmtSignedPct } from '../web/src/format.js';
import { totalFields } from '../web/src/totals.js';
import { shownMax } from '../web/src/picker.js';
import { MockBook, installMock, mockOrigin, type MockServer } from './support/pageMock.js';
import { announceSkip, ensureServerBuilt, ensureWebBuilt, hasChromium, launchChromium, root, sleep, webDir } from './support/pageHarness.js';
import { startHarness, type Harness } from './support/serverHarness.js';

announceSkip('test/page.render.test.ts');

let browser: Browser | null = null;

beforeAll(async () => {
  if (!hasChromium) return;
  ensureWebBuilt();
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close().catch(() => {});
});

describe('with a scripted server', () => {
  let page: Page;
  let mock: MockServer;
  const books = new Map<string, MockBook>();
  let streaming: { ws: WebSocketRoute; book: MockBook } | null = null;

  beforeAll(async () => {
    if (!hasChromium) return;
    page = await browser!.newPage({ viewport: { width: 1400, height: 1400 } });
    page.setDefaultTimeout(10_000);
    mock = await installMock(page, webDir, 5_000, (ws, id) => {
      let book = books.get(id);
      if (book === undefined) books.set(id, (book = new MockBook(id)));
      ws.send(JSON.stringify({ type: 'snapshot', resync: false, ...book.snapshot() }));
      streaming = { ws, book };
    });
    // Test-only instruments, injected before the page's own code: the time spent in each
    // requestAnimationFrame callback, and a free-running frame clock.
    await page.addInitScript(() => {
      const w = window as unknown as { __probe: { work: number[]; frames: number[] } };
      w.__probe = { work: [], frames: [] };
      const raf = window.requestAnimationFrame.bind(window);
      window.requestAnimationFrame = (cb) =>
        raf((t) => {
          const s = performance.now();
          try {
            cb(t);
          } finally {
            w.__probe.work.push(performance.now() - s);
          }
        });
      const tick = (t: number) => {
        w.__probe.frames.push(t);
        raf(tick);
      };
      raf(tick);
    });
    await page.goto(mockOrigin + '/');
  }, 60_000);

  afterAll(async () => {
    await page?.close().catch(() => {});
  });

  it.skipIf(!hasChromium)(
    'loads 5,000 portfolios page by page; the picker filters into a bounded listbox and follows the keyboard',
    async () => {
      await page.waitForFunction(() => /Search 5,000 portfolios/.test((document.getElementById('picker-input') as HTMLInputElement).placeholder), null, { timeout: 10_000 });
      const listPages = mock.requests.filter((r) => r.startsWith('/api/v1/portfolios?'));
      expect(listPages).toEqual([
        '/api/v1/portfolios?limit=1000',
        '/api/v1/portfolios?limit=1000&after=pf-00999',
        '/api/v1/portfolios?limit=1000&after=pf-01999',
        '/api/v1/portfolios?limit=1000&after=pf-02999',
        '/api/v1/portfolios?limit=1000&after=pf-03999',
      ]);
      // The first portfolio is shown at once.
      await page.waitForFunction(() => document.querySelectorAll('#positions tbody tr').length === 50, null, { timeout: 10_000 });

      const input = page.locator('#picker-input');
      await input.focus();
      // The filter runs in the next animation frame after focus.
      await page.waitForFunction((n) => document.querySelectorAll('#picker-list [role="option"]').length === n, shownMax, { timeout: 5_000 });
      await expect(page.textContent('#picker-hint')).resolves.toBe(`${shownMax} of 5,000 shown: keep typing to narrow`);
      await page.keyboard.type('pf-012');
      await page.waitForFunction(() => document.getElementById('picker-hint')?.textContent === '50 of 100 shown: keep typing to narrow', null, { timeout: 5_000 });
      await page.keyboard.type('3');
      await page.waitForFunction(() => document.querySelectorAll('#picker-list [role="option"]').length === 10, null, { timeout: 5_000 });
      const active = () => input.getAttribute('aria-activedescendant');
      expect(await active()).toBe('picker-opt-0');
      for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowDown');
      expect(await active()).toBe('picker-opt-3');
      await page.keyboard.press('PageDown');
      expect(await active()).toBe('picker-opt-9'); // clamped to the last option
      await page.keyboard.press('ArrowUp');
      expect(await active()).toBe('picker-opt-8');
      expect(await page.locator('[role="option"][aria-selected="true"]').count()).toBe(1);
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.getElementById('pf-id')?.textContent === 'pf-01238', null, { timeout: 5_000 });
      expect(mock.ops.filter((o) => o.op === 'unsubscribe').at(-1)?.portfolios).toEqual(['pf-00000']);
      const sub = mock.ops.filter((o) => o.op === 'subscribe').at(-1)!;
      expect(sub.portfolios).toEqual(['pf-01238']);
      expect(sub.throttle_ms).toBe(100);
      expect(mock.ops.filter((o) => o.op === 'subscribe_events').at(-1)?.portfolios).toEqual(['pf-01238']);
    },
    30_000,
  );

  it.skipIf(!hasChromium)(
    'draws 60 updates/s of 50 positions by patching cells: same rows, untouched quiet cells, one write batch per frame',
    async () => {
      await page.waitForFunction(() => document.querySelectorAll('#positions tbody tr').length === 50, null, { timeout: 10_000 });
      const { ws, book } = streaming!;
      expect(book.id).toBe('pf-01238');
      const frozen = new Set(['S00', 'S17', 'S33']);
      await page.evaluate((frozenList) => {
        const tbody = document.querySelector('#positions tbody')!;
        const w = window as unknown as { __rows: Map<string, Element>; __mut: { callbacks: number; childList: number; texts: Record<string, number> } };
        w.__rows = new Map([...tbody.querySelectorAll<HTMLElement>('tr')].map((tr) => [tr.dataset.symbol!, tr]));
        w.__mut = { callbacks: 0, childList: 0, texts: {} };
        new MutationObserver((records) => {
          w.__mut.callbacks++;
          for (const r of records) {
            if (r.type === 'childList' && r.target === tbody) w.__mut.childList++;
            if (r.type !== 'characterData') continue;
            const td = r.target.parentElement?.closest('td');
            const sym = td?.closest('tr')?.dataset.symbol;
            if (td && sym && frozenList.includes(sym)) w.__mut.texts[`${sym}/${td.dataset.col}`] = (w.__mut.texts[`${sym}/${td.dataset.col}`] ?? 0) + 1;
          }
        }).observe(tbody, { childList: true, subtree: true, characterData: true });
        const p = (window as unknown as { __probe: { work: number[]; frames: number[] } }).__probe;
        p.work.length = 0;
        p.frames.length = 0;
      }, [...frozen]);

      // 45 bursts of 4 updates, one burst per 66 ms: 180 updates in 3 s, 60/s, each moving 12 prices.
      const bursts = 45;
      for (let b = 0; b < bursts; b++) {
        const t = Date.now();
        for (let i = 0; i < 4; i++) ws.send(JSON.stringify(book.update(12, frozen)));
        await sleep(Math.max(0, 66 - (Date.now() - t)));
      }
      const final = book.snapshot();
      await page.waitForFunction((seq) => document.getElementById('seq')?.dataset.seq === String(seq), final.seq, { timeout: 5_000 });
      await sleep(100); // a couple more frames for the instruments

      const r = await page.evaluate(() => {
        const w = window as unknown as {
          __rows: Map<string, Element>;
          __mut: { callbacks: number; childList: number; texts: Record<string, number> };
          __probe: { work: number[]; frames: number[] };
        };
        const trs = [...document.querySelectorAll<HTMLElement>('#positions tbody tr')];
        const rows: Record<string, Record<string, string>> = {};
        for (const tr of trs) {
          const cells: Record<string, string> = {};
          for (const td of tr.querySelectorAll<HTMLElement>('td[data-col]')) cells[td.dataset.col!] = (td.textContent ?? '').replace(/^[▲▼]\s*/, '');
          rows[tr.dataset.symbol!] = cells;
        }
        const totals: Record<string, { value: number; text: string }> = {};
        for (const dd of document.querySelectorAll<HTMLElement>('[data-total]')) totals[dd.dataset.total!] = { value: Number(dd.dataset.value), text: dd.textContent ?? '' };
        return {
          sameNodes: trs.length === w.__rows.size && trs.every((tr) => w.__rows.get(tr.dataset.symbol!) === tr),
          mut: w.__mut,
          work: w.__probe.work,
          frames: w.__probe.frames,
          rows,
          totals,
          latency: document.getElementById('latency')?.dataset.ms ?? null,
        };
      });

      // The screen is the last state.
      for (const f of totalFields) expect(r.totals[f.field], f.field).toEqual({ value: final[f.field], text: f.fmt(final[f.field]) });
      for (const p of final.positions) {
        expect(r.rows[p.symbol], p.symbol).toEqual({
          quantity: fmtQuantity(p.quantity),
          avg_cost: fmtPrice(p.avg_cost),
          last_price: fmtPrice(p.last_price),
          market_value: fmtMoney(p.market_value),
          unrealized_pnl: fmtPnl(p.unrealized_pnl),
          return_rate: fmtSignedPct(p.return_rate),
          weight: fmtPct(p.weight),
        });
      }
      // No rebuild: the same 50 <tr> nodes, never re-inserted (the sort is by symbol, which did not change).
      expect(r.sameNodes).toBe(true);
      expect(r.mut.childList).toBe(0);
      // Positions that never changed kept their cells; only their weight moves (it is relative to the whole book).
      expect(Object.keys(r.mut.texts).filter((k) => !k.endsWith('/weight'))).toEqual([]);
      // Writes are coalesced into animation frames: 180 updates arrived in 180 separate tasks, but the
      // DOM was written in at most one batch per frame (one MutationObserver delivery per batch).
      const updates = bursts * 4;
      const frameCount = r.frames.length;
      expect(r.mut.callbacks).toBeLessThanOrEqual(frameCount + 2);
      expect(r.mut.callbacks).toBeLessThan(updates / 2);
      // Frame work: time inside the page's requestAnimationFrame callbacks (table, totals, sparkline).
      const work = [...r.work].sort((a, b) => a - b);
      const p50 = work[Math.floor(work.length * 0.5)];
      const p95 = work[Math.floor(work.length * 0.95)];
      const intervals = r.frames.slice(1).map((t, i) => t - r.frames[i]);
      const late = intervals.filter((d) => d > 1000 / 60 + 8).length;
      console.log(
        `page render: ${updates} updates in ${Math.round(r.frames.at(-1)! - r.frames[0])} ms, ${frameCount} frames (${late} late), ` +
          `${r.mut.callbacks} write batches; frame work p50 ${p50.toFixed(2)} ms, p95 ${p95.toFixed(2)} ms, max ${work.at(-1)!.toFixed(2)} ms`,
      );
      // The budget of a 60 Hz frame is 16.7 ms. The median is asserted: on a loaded 2-core CI box the
      // tail measures the scheduler (the renderer descheduled inside a callback), not the page.
      expect(p50).toBeLessThan(6);
      expect(Number(r.latency)).toBeGreaterThanOrEqual(0);
      mkdirSync(join(root, 'test-artifacts'), { recursive: true });
      await page.screenshot({ path: join(root, 'test-artifacts', 'page-50-positions.png'), fullPage: true });
    },
    30_000,
  );

  it.skipIf(!hasChromium)(
    'sorts by a clicked header with aria-sort, moving the same row nodes',
    async () => {
      const book = streaming!.book;
      const byPrice = [...book.snapshot().positions].sort((a, b) => b.last_price - a.last_price || (a.symbol < b.symbol ? -1 : 1)).map((p) => p.symbol);
      await page.click('#positions th button[data-sort="last_price"]');
      await page.waitForFunction(() => document.querySelector('#positions th:has(button[data-sort="last_price"])')?.getAttribute('aria-sort') === 'descending', null, { timeout: 5_000 });
      // aria-sort is set on the click; the rows move on the next animation frame (CI run of ede0ee5 read
      // the old order): wait for the order, then assert it (a wrong order still fails, naming the rows).
      await untilRowOrder(page, byPrice);
      expect(await rowOrder(page)).toEqual(byPrice);
      expect(await page.getAttribute('#positions th:has(button[data-sort="symbol"])', 'aria-sort')).toBeNull();
      expect(await page.evaluate(() => {
        const w = window as unknown as { __rows: Map<string, Element> };
        return [...document.querySelectorAll<HTMLElement>('#positions tbody tr')].every((tr) => w.__rows.get(tr.dataset.symbol!) === tr);
      })).toBe(true);
      await page.click('#positions th button[data-sort="last_price"]');
      await page.waitForFunction(() => document.querySelector('#positions th:has(button[data-sort="last_price"])')?.getAttribute('aria-sort') === 'ascending', null, { timeout: 5_000 });
      await untilRowOrder(page, [...byPrice].reverse());
      expect(await rowOrder(page)).toEqual([...byPrice].reverse());
      // Headers are buttons: reachable and operable from the keyboard.
      await page.focus('#positions th button[data-sort="symbol"]');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.querySelector('#positions th:has(button[data-sort="symbol"])')?.getAttribute('aria-sort') === 'ascending', null, { timeout: 5_000 });
    },
    30_000,
  );
});

/** The positions table's rows, by symbol, in the order shown. */
function rowOrder(page: Page): Promise<(string | undefined)[]> {
  return page.$$eval('#positions tbody tr', (trs) => trs.map((tr) => (tr as HTMLElement).dataset.symbol));
}

/** Waits (bounded) until the rows show `want`; the caller asserts the order after, so a timeout fails there. */
async function untilRowOrder(page: Page, want: readonly string[]): Promise<void> {
  const joined = want.join(',');
  await page
    .waitForFunction((w) => [...document.querySelectorAll<HTMLElement>('#positions tbody tr')].map((tr) => tr.dataset.symbol).join(',') === w, joined, { timeout: 5_000 })
    .catch(() => undefined);
}

describe('with a server that requires API keys', () => {
  const KEY = 'page-reader-key-0123456789';
  let h: Harness | null = null;
  let page: Page;

  beforeAll(async () => {
    if (!hasChromium) return;
    ensureServerBuilt();
    h = await startHarness({ staticDir: webDir, keys: [{ key: KEY, name: 'reader', scopes: ['admin'] }] }, { workers: 1 });
    const auth = { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' };
    expect((await fetch(h.url + '/api/v1/portfolios', { method: 'POST', headers: auth, body: JSON.stringify({ id: 'keyed', name: 'Keyed', cash: 5_000 }) })).status).toBe(201);
    const trade = { trade_id: 'k1', symbol: 'KEYX', side: 'buy', quantity: 3, price: 10 };
    expect((await fetch(h.url + '/api/v1/portfolios/keyed/trades', { method: 'POST', headers: auth, body: JSON.stringify(trade) })).status).toBe(201);
    page = await browser!.newPage();
    page.setDefaultTimeout(10_000);
  }, 60_000);

  afterAll(async () => {
    await page?.close().catch(() => {});
    await h?.close();
  });

  it.skipIf(!hasChromium)(
    'asks for the key, keeps it in sessionStorage, sends it in headers and the sub-protocol, never in a URL',
    async () => {
      const urls: string[] = [];
      const authHeaders: string[] = [];
      page.on('request', (req) => {
        urls.push(req.url());
        const a = req.headers().authorization;
        if (a !== undefined) authHeaders.push(a);
      });
      const sockets: string[] = [];
      page.on('websocket', (ws) => sockets.push(ws.url()));
      await page.goto(h!.url + '/');
      await page.waitForSelector('#key-dialog[open]', { timeout: 10_000 });
      await page.fill('#key-input', 'wrong-key-0123456789');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => /refused/.test(document.getElementById('key-reason')?.textContent ?? ''), null, { timeout: 10_000 });
      await page.fill('#key-input', KEY);
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.getElementById('conn')?.dataset.status === 'connected', null, { timeout: 10_000 });
      await page.waitForSelector('#positions tbody tr[data-symbol="KEYX"]', { timeout: 10_000 });
      expect(await page.evaluate(() => sessionStorage.getItem('mtm.apiKey'))).toBe(KEY);
      expect(authHeaders).toContain(`Bearer ${KEY}`);
      // The WebSocket opened with the key (the server refuses an upgrade without one) ...
      expect(sockets.length).toBeGreaterThan(0);
      // ... and the key is in no URL the page loaded or connected to.
      for (const u of [...urls, ...sockets]) expect(u).not.toContain(KEY);
      // A reload in the same tab needs no prompt: the key comes from sessionStorage.
      await page.reload();
      await page.waitForFunction(() => document.getElementById('conn')?.dataset.status === 'connected', null, { timeout: 10_000 });
      expect(await page.evaluate(() => (document.getElementById('key-dialog') as HTMLDialogElement).open)).toBe(false);
    },
    30_000,
  );
});
