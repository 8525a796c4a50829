// A small module-graph walk over the TypeScript sources (no dependency): every relative import,
// re-export, side-effect import and import('...') type or call, resolved to its .ts file. Used by the
// import-direction test; test code, so it may read files.

import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Files by path relative to the root (forward slashes), each with the files it imports. */
export type ModuleGraph = Map<string, string[]>;

const specifierPatterns = [
  // import x from '...', import type { x } from '...', export { x } from '...', export * from '...'
  /\b(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/g,
  // import('...') as a call or in a type position
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
];

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Comments could name an import that is not there: drop them first (strings keep their content). */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

function resolveSpecifier(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const base = resolve(dirname(from), specifier);
  for (const candidate of [base.replace(/\.js$/, '.ts'), base + '.ts', join(base, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return null;
}

export function moduleGraph(root: string, dirs: readonly string[]): ModuleGraph {
  const graph: ModuleGraph = new Map();
  const rel = (p: string): string => relative(root, p).split('\\').join('/');
  for (const dir of dirs) {
    for (const file of tsFiles(join(root, dir))) {
      const text = withoutComments(readFileSync(file, 'utf8'));
      const targets = new Set<string>();
      for (const pattern of specifierPatterns) {
        for (const m of text.matchAll(pattern)) {
          const target = resolveSpecifier(file, m[1]);
          if (target !== null) targets.add(rel(target));
        }
      }
      graph.set(rel(file), [...targets].sort());
    }
  }
  return graph;
}

/** Every import circle, each as its path of files (first file repeated at the end), found once. */
export function importCircles(graph: ModuleGraph): string[][] {
  const circles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      const s = state.get(next);
      if (s === 'open') circles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (s === undefined) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return circles;
}
