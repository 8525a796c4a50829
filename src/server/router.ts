// HTTP routing, pure: (method, path) -> route template + decoded params. Route templates are what the
// stats (and so the metrics) are labelled with, never raw paths (bounded label cardinality).

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RouteDef<H extends string> {
  method: Method;
  template: string;
  handler: H;
}

export type RouteMatch<H extends string> =
  | { kind: 'found'; route: RouteDef<H>; params: string[] }
  | { kind: 'method_not_allowed'; template: string; allow: Method[] }
  | { kind: 'not_found' };

interface Compiled<H extends string> {
  def: RouteDef<H>;
  parts: (string | null)[];
}

export class Router<H extends string> {
  private readonly compiled: Compiled<H>[];

  constructor(routes: readonly RouteDef<H>[]) {
    this.compiled = routes.map((def) => ({
      def,
      parts: def.template
        .split('/')
        .slice(1)
        .map((p) => (p.startsWith('{') && p.endsWith('}') ? null : p)),
    }));
  }

  get routes(): RouteDef<H>[] {
    return this.compiled.map((c) => c.def);
  }

  match(method: string, path: string): RouteMatch<H> {
    if (path.length === 0 || path[0] !== '/' || path.length > 2048) return { kind: 'not_found' };
    const segments = path.split('/').slice(1);
    let allow: Method[] | null = null;
    let allowTemplate = '';
    for (const c of this.compiled) {
      if (c.parts.length !== segments.length) continue;
      const params: string[] = [];
      let matched = true;
      for (let i = 0; i < segments.length; i++) {
        const want = c.parts[i];
        if (want === null) {
          let v: string;
          try {
            v = decodeURIComponent(segments[i]);
          } catch {
            matched = false;
            break;
          }
          if (v.length === 0) {
            matched = false;
            break;
          }
          params.push(v);
        } else if (want !== segments[i]) {
          matched = false;
          break;
        }
      }
      if (!matched) continue;
      if (c.def.method === method) return { kind: 'found', route: c.def, params };
      (allow ??= []).push(c.def.method);
      allowTemplate = c.def.template;
    }
    return allow === null ? { kind: 'not_found' } : { kind: 'method_not_allowed', template: allowTemplate, allow };
  }
}

/** Query-string values, first occurrence wins; bounded. */
export function parseQuery(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  if (raw.length === 0 || raw.length > 4096) return out;
  for (const [k, v] of new URLSearchParams(raw)) {
    if (!out.has(k)) out.set(k, v);
    if (out.size >= 32) break;
  }
  return out;
}
