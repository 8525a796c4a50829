// Tiny DOM helpers: the page is plain DOM (no framework), so these keep construction readable.

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> | null = null,
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (attrs !== null) for (const k in attrs) node.setAttribute(k, attrs[k]);
  for (const c of children) node.append(c);
  return node;
}

/** An element the static skeleton (index.html) must contain; a missing one is a build bug, so it throws. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`#${id} is missing from index.html`);
  return node as T;
}

/** Sets a text node's data only when it changed: writing equal text still costs a layout invalidation. */
export function setText(node: Text, text: string): boolean {
  if (node.data === text) return false;
  node.data = text;
  return true;
}
