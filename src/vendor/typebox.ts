// typebox's runtime values, from one module. `npm run build` bundles this file's output
// (scripts/bundleVendor.mjs): typebox 1.x ships ~700 ES modules, and resolving and compiling them took
// ~250 ms of every start, on the main thread and again in each shard worker (docs/BENCHMARKS.md,
// "Restart, sixth session"); bundled, the same code loads in ~17 ms. Types come from 'typebox' itself.
export { default as Type } from 'typebox';
export { Compile } from 'typebox/compile';
