/**
 * Benchmark dispatcher: `npm run bench -- <name> [args...]` runs `run(args)` of bench/<name>.ts.
 * Each benchmark prints its own table; nothing here measures anything.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

type BenchModule = { run?: (args: string[]) => unknown };

const dir = fileURLToPath(new URL('.', import.meta.url));
const available = readdirSync(dir)
  .filter((f) => /^[a-z0-9-]+\.ts$/.test(f) && f !== 'main.ts')
  .map((f) => f.slice(0, -3))
  .sort();

const [name, ...args] = process.argv.slice(2);
if (name === undefined || !available.includes(name)) {
  const got = name === undefined ? 'nothing' : `'${name}'`;
  process.stderr.write(`usage: npm run bench -- <${available.join('|')}> [args...]  (got ${got})\n`);
  process.exit(2);
}
const mod = (await import(`./${name}.js`)) as BenchModule;
if (typeof mod.run !== 'function') {
  process.stderr.write(`bench/${name}.ts does not export run(args)\n`);
  process.exit(2);
}
await mod.run(args);
