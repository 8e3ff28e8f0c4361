// Writes generated/<name>.ts for every dashboard JSON given on the command line:
//   import type { Dashboard } from '@grafana/schema';
//   export const dashboard: JsonOf<Dashboard> = <the JSON>;
// (JsonOf, json-of.ts: string enums as their JSON string values; nothing else changes)
// so that `tsc --noEmit` type-checks each dashboard (with excess-property checks, as the
// JSON is a fresh object literal) against Grafana's published Dashboard type.
// Usage: node generate.mjs OUTDIR DASHBOARD.json...
import { readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { basename } from 'node:path';

const [outDir, ...files] = process.argv.slice(2);
if (!outDir || files.length === 0) {
  console.error('usage: node generate.mjs OUTDIR DASHBOARD.json...');
  process.exit(2);
}
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
let bad = 0;
for (const f of files) {
  let json;
  try {
    json = JSON.parse(readFileSync(f, 'utf8'));
  } catch (e) {
    console.error(`${f}: not valid JSON: ${e.message}`);
    bad++;
    continue;
  }
  const name = basename(f, '.json').replace(/[^A-Za-z0-9_-]/g, '_');
  const text =
    `// Generated from ${f} by scripts/lib/grafana-schema/generate.mjs; do not edit.\n` +
    `import type { Dashboard } from '@grafana/schema';\n` +
    `import type { JsonOf } from '../json-of';\n\n` +
    `export const dashboard: JsonOf<Dashboard> = ${JSON.stringify(json, null, 2)};\n`;
  writeFileSync(`${outDir}/${name}.ts`, text);
}
process.exit(bad ? 1 : 0);
