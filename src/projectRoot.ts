// Finds files of this package whether code runs from src/ (under vitest) or from dist/ (compiled):
// walk up to the package.json named mtm-engine.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | null = null;

export function projectRoot(): string {
  if (cached !== null) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'mtm-engine') {
      cached = dir;
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('mtm-engine package root not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** A compiled artifact under dist/, with a clear error when the build has not run. */
export function distFile(relative: string): string {
  const file = join(projectRoot(), 'dist', relative);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
  return file;
}
