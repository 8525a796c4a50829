// The positions page: wires the picker, the live subscription (SDK MtmClient over /ws), the REST
// calls and the views. Data handlers only record the latest state and ask for a frame; every DOM
// write happens in one requestAnimationFrame callback (FrameScheduler), so however many updates
// arrive between two frames, each frame draws once.

import { MtmClient, type ClientState, type MtmError, type Subscription } from '../../src/client/client.js';
import type { PortfolioSnapshot, PortfolioStatus, StoredEvent } from '../../src/domain/types.js';
import { ApiError, eventsAfter, latestEvents, listPortfolios, storedKey, storeKey } from './api.js';
import { byId } from './dom.js';
import { EventsView, eventsMax } from './events.js';
import { FrameScheduler } from './frame.js';
import { Picker } from './picker.js';
import { PositionsTable } from './positions.js';
import { Sparkline } from './sparkline.js';
import { StatusView, type ConnStatus } from './status.js';
import { TotalsView } from './totals.js';

/** Server-side conflation interval: at most 10 updates/s per portfolio, each the merge of what changed. */
const throttleMs = 100;
/** The portfolio list is re-read when the picker opens and it is older than this. */
const listStaleMs = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const scheduler = new FrameScheduler();
const status = new StatusView();
const totals = new TotalsView(byId('totals'));
const table = new PositionsTable(byId<HTMLTableElement>('positions'), byId('positions-empty'), () => scheduler.request(drawPortfolio));
const sparkChange = byId('spark-change');
const spark = new Sparkline(document.getElementById('spark') as unknown as SVGSVGElement, {
  last: textOf(byId('spark-last')),
  change: textOf(sparkChange),
  range: textOf(byId('spark-range')),
  changeEl: sparkChange,
});
const events = new EventsView(byId<HTMLOListElement>('events'), byId('events-empty'));
const pickerInput = byId<HTMLInputElement>('picker-input');
const picker = new Picker({
  input: pickerInput,
  listbox: byId<HTMLUListElement>('picker-list'),
  popup: byId('picker-popup'),
  hint: byId('picker-hint'),
  onPick: (id) => select(id),
  onOpen: () => {
    if (Date.now() - listLoadedAt > listStaleMs) void loadList();
  },
});
const nameEl = byId('pf-name');
const idEl = byId('pf-id');
const stateEl = byId('state');
const countEl = byId('positions-count');
const messageEl = byId('message');

let key: string | null = storedKey();
let client: MtmClient | null = null;
let listLoadedAt = 0;
let listLoading: Promise<void> | null = null;
/** The portfolio on screen; `token` tells late answers for a previous choice from current ones. */
let current: { id: string; token: number; sub: Subscription | null; abort: AbortController } | null = null;
let tokens = 0;
/** Latest full state of the current portfolio (the SDK's view after each update). */
let view: PortfolioSnapshot | null = null;
/** Newest tick_ts received since the last frame (0: none; command-caused updates carry 0). */
let pendingTickTs = 0;
let everConnected = false;

function textOf(node: HTMLElement): Text {
  const t = document.createTextNode('');
  node.replaceChildren(t);
  return t;
}

/** Reading textContent costs no layout; writing equal text would still invalidate it. */
function setTextOf(node: HTMLElement, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

function showMessage(text: string | null): void {
  messageEl.hidden = text === null;
  messageEl.textContent = text ?? '';
}

// ---------------- drawing (inside requestAnimationFrame only) ----------------

const stateIcons: Record<PortfolioStatus, string> = { active: '●', paused: '❚❚', closed: '✕' };

function drawPortfolio(): void {
  if (view === null) return;
  const v = view;
  totals.render(v);
  table.render(v.positions, performance.now());
  if (stateEl.dataset.state !== v.state) {
    stateEl.dataset.state = v.state;
    // Icon and word, so the state does not rest on the badge colour.
    stateEl.textContent = `${stateIcons[v.state]} ${v.state}`;
  }
  setTextOf(nameEl, v.name || v.portfolio_id);
  setTextOf(countEl, `· ${v.positions.length} open`);
  status.setSeq(v.seq);
  if (pendingTickTs > 0) {
    status.addLatency(Math.max(0, Date.now() - pendingTickTs));
    pendingTickTs = 0;
  }
  spark.render();
}

function drawEvents(): void {
  events.render();
}

// ---------------- data ----------------

function onSnapshot(token: number, snap: PortfolioSnapshot): void {
  if (current?.token !== token) return;
  view = snap;
  showMessage(null);
  spark.add(Date.now(), snap.equity);
  scheduler.request(drawPortfolio);
}

function onUpdate(token: number, tickTs: number, v: PortfolioSnapshot): void {
  if (current?.token !== token) return;
  view = v;
  if (tickTs > pendingTickTs) pendingTickTs = tickTs;
  spark.add(Date.now(), v.equity);
  scheduler.request(drawPortfolio);
}

function onEvents(token: number, batch: readonly StoredEvent[]): void {
  if (current?.token !== token) return;
  events.add(batch);
  scheduler.request(drawEvents);
}

/** Subscribes the current portfolio on the client (at selection, or when the client arrives later). */
function attach(): void {
  const c = client;
  const cur = current;
  if (c === null || cur === null || cur.sub !== null) return;
  const { id, token } = cur;
  cur.sub = c.subscribe(
    [id],
    {
      onSnapshot: (snap) => onSnapshot(token, snap),
      onUpdate: (u, v) => onUpdate(token, u.tick_ts, v),
      onError: (e: MtmError) => {
        if (current?.token !== token) return;
        showMessage(
          e.code === 'portfolio_not_found' ? `Portfolio ${id} was not found (closed, removed, or outside your key's scopes).` : `Subscription to ${id} failed: ${e.message}`,
        );
      },
    },
    { throttleMs },
  );
  // One events subscription per connection: this replaces the previous portfolio's filter.
  c.subscribeEvents({ portfolios: [id] }, (e) => {
    if (e.portfolio_id === id) onEvents(token, [e]);
  });
}

function select(id: string): void {
  if (current?.id === id) return;
  current?.sub?.unsubscribe();
  current?.abort.abort();
  const abort = new AbortController();
  current = { id, token: ++tokens, sub: null, abort };
  const token = current.token;
  view = null;
  pendingTickTs = 0;
  table.clear();
  totals.clear();
  spark.reset();
  events.clear();
  status.setSeq(null);
  status.resetLatency();
  stateEl.dataset.state = 'none';
  stateEl.textContent = '…';
  nameEl.textContent = id;
  idEl.textContent = id;
  countEl.textContent = '';
  document.title = `${id} · mtm positions`;
  picker.setChosen(id);
  history.replaceState(null, '', '#' + encodeURIComponent(id));
  scheduler.request(drawEvents);
  scheduler.request(() => spark.render());
  attach();
  // Older events from REST; live ones arrive through subscribe_events meanwhile, merged by seq.
  latestEvents(id, key, eventsMax, abort.signal).then(
    (list) => onEvents(token, list),
    (e: unknown) => {
      if (!abort.signal.aborted && current?.token === token) showMessage(`Could not load the events of ${id}: ${errorText(e)}`);
    },
  );
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---------------- key, list, connection ----------------

const keyDialog = byId<HTMLDialogElement>('key-dialog');
const keyForm = byId<HTMLFormElement>('key-form');
const keyInput = byId<HTMLInputElement>('key-input');
const keyReason = byId('key-reason');

function askForKey(reason: string): Promise<string> {
  keyReason.textContent = reason;
  keyInput.value = '';
  return new Promise((resolve) => {
    let answered = false;
    const onSubmit = (e: SubmitEvent) => {
      e.preventDefault();
      const k = keyInput.value.trim();
      if (!keyInput.checkValidity() || k === '') return;
      answered = true;
      keyForm.removeEventListener('submit', onSubmit);
      keyDialog.removeEventListener('cancel', onCancel);
      keyDialog.removeEventListener('close', onClose);
      keyDialog.close();
      resolve(k);
    };
    // Without a key there is nothing to show: Escape must not leave the page stuck behind a closed dialog.
    const onCancel = (e: Event) => e.preventDefault();
    // Browsers let a repeated Escape close a modal despite preventDefault: open it again.
    const onClose = () => {
      if (!answered) keyDialog.showModal();
    };
    keyForm.addEventListener('submit', onSubmit);
    keyDialog.addEventListener('cancel', onCancel);
    keyDialog.addEventListener('close', onClose);
    keyDialog.showModal();
    keyInput.focus();
  });
}

/** Reads every portfolio the key can see; asks for a key on 401; retries transient failures. */
function loadList(): Promise<void> {
  listLoading ??= (async () => {
    for (let delay = 500; ; delay = Math.min(10_000, delay * 2)) {
      try {
        const r = await listPortfolios(key);
        picker.setItems(r.portfolios);
        listLoadedAt = Date.now();
        pickerInput.placeholder = `Search ${r.portfolios.length.toLocaleString('en-US')} portfolios…`;
        if (r.truncated) showMessage(`Only the first ${r.portfolios.length.toLocaleString('en-US')} portfolios are listed.`);
        return;
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) {
          storeKey(null);
          key = await askForKey(key === null ? 'This server requires an API key with read access.' : 'That key was refused. Enter another one.');
          storeKey(key);
          continue;
        }
        showMessage(`Cannot load the portfolio list (${errorText(e)}); retrying.`);
        await sleep(delay);
      }
    }
  })().finally(() => {
    listLoading = null;
  });
  return listLoading;
}

const connStatus: Record<ClientState, ConnStatus> = { connecting: 'connecting', open: 'connected', reconnecting: 'reconnecting', closed: 'disconnected' };

function onStateChange(s: ClientState): void {
  status.setConnection(connStatus[s]);
  if (s !== 'open') return;
  if (!everConnected) {
    everConnected = true;
    return;
  }
  // Back after a disconnect: the SDK resubscribed (a fresh snapshot is on its way); fetch the events
  // that happened meanwhile, and the list (the server may have restarted with other portfolios).
  const cur = current;
  const after = events.lastSeq;
  if (cur !== null && after !== null) {
    eventsAfter(cur.id, key, after, eventsMax, cur.abort.signal).then(
      (list) => onEvents(cur.token, list),
      () => {
        /* the live subscription still runs; the gap only shows as missing history */
      },
    );
  }
  void loadList();
}

/** First connection; afterwards the SDK reconnects (backoff with jitter) and resubscribes by itself. */
async function connect(): Promise<void> {
  for (let delay = 500; ; delay = Math.min(8_000, delay * 2)) {
    status.setConnection('connecting');
    try {
      client = await MtmClient.connect({
        url: new URL('.', location.href).href,
        ...(key === null ? {} : { key }),
        // Capped low: a restarted server should see the page back within seconds, not 30 s later.
        reconnect: { initialDelayMs: 250, maxDelayMs: 4_000 },
        onStateChange,
        onError: (e) => console.warn('mtm:', e.code, e.message),
      });
      everConnected = true;
      status.setConnection('connected');
      return;
    } catch {
      // Browsers do not expose why an upgrade failed (e.g. 401): the list request (with the key) tells.
      status.setConnection('disconnected', `retrying in ${Math.round(delay / 1000)} s`);
      await sleep(delay);
      await loadList();
    }
  }
}

function fromHash(): string | null {
  if (location.hash.length < 2) return null;
  try {
    return decodeURIComponent(location.hash.slice(1));
  } catch {
    return null;
  }
}

async function boot(): Promise<void> {
  status.setConnection('connecting');
  await loadList();
  const wanted = fromHash();
  const first = wanted !== null && picker.has(wanted) ? wanted : picker.first();
  if (first !== null) select(first);
  else showMessage('No portfolios yet: create one with POST /api/v1/portfolios, or start the server with --demo.');
  await connect();
  attach();
}

window.addEventListener('hashchange', () => {
  const id = fromHash();
  if (id !== null && picker.has(id)) select(id);
});
// "/" jumps to the picker, as in many list UIs (not while typing somewhere).
document.addEventListener('keydown', (e) => {
  if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target as HTMLElement;
  if (t.closest('input, textarea, select, [contenteditable="true"]') !== null) return;
  e.preventDefault();
  pickerInput.focus();
});

void boot();
