// CLI: writes the generated dashboards, rules, rule tests and metrics reference into the repository.
//   node dist/dashboards/src/generate.js            write the files
//   node dist/dashboards/src/generate.js --check    exit 1 if a committed file differs (for CI)
//   --runbook-base=<url>                            prefix of runbook_url (default dashboards/runbook.md)
// Paths are resolved from the repository root (the nearest package.json named mtm-engine above this
// file), so it works from dist/ and from any working directory.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateFiles } from './files.js';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'mtm-engine') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('generate: no package.json named mtm-engine above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const base = argv.find((a) => a.startsWith('--runbook-base='))?.slice('--runbook-base='.length);
  const root = repoRoot();
  const files = generateFiles(base === undefined ? {} : { runbookBase: base });
  let stale = 0;
  for (const f of files) {
    const target = join(root, ...f.path.split('/'));
    const current = existsSync(target) ? readFileSync(target, 'utf8') : null;
    if (current === f.content) continue;
    if (check) {
      console.error(`stale: ${f.path} (run npm run dashboards)`);
      stale++;
    } else {
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, f.content);
      console.log(`wrote ${f.path}`);
    }
  }
  if (!check) console.log(`${files.length} files up to date`);
  return stale === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
