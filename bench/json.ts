/**
 * `npm run bench -- json [--mb 8] [--rounds 3]`
 *
 * Event-loop stall of the server while it takes large JSON bodies: the real server (tiny test
 * model, port 0, empty temp database) receives Open Inference Protocol requests from a client in a
 * worker thread, while the main thread's longest stall is measured (gaps between ticks of a 1 ms interval). Scenarios: an `--mb` MB body of numbers (parsed, then refused: more items than the
 * queue allows), four of them at once, and the largest valid batch (maxQueue items) answered with
 * logits only. Also, in-process, the longest synchronous stretch of JSON.parse vs the chunked parser
 * on the same text, and the idle loop's own stalls as the noise floor. Goal: no stall much longer than one parser slice (a few ms) while a body is parsed.
 */
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { createLogger, loadConfig, startServer } from '../server/index.js';
import { tempDir, testCodesPath, testModelPath } from '../testing/models.js';

const CLIENT = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', async ({ url, body, n }) => {
  const t0 = performance.now();
  const res = await Promise.all(Array.from({ length: n }, () => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(async (r) => { await r.arrayBuffer(); return r.status; })));
  parentPort.postMessage({ statuses: res, ms: performance.now() - t0 });
});`;

function numbersBody(bytes: number, shape: number[]): string {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const s = ((i * 7919) % 100000 / 100000).toFixed(6);
    parts.push(s);
    size += s.length + 1;
  }
  return JSON.stringify({ inputs: [{ name: 'images', shape, datatype: 'FP32', data: [] }] }).replace('"data":[]', `"data":[${parts.join(',')}]`);
}

/**
 * Longest synchronous stretch while `work` runs: the largest gap between ticks of a 1 ms interval
 * (minus the 1 ms period), waiting one more tick after `work` so a final synchronous stretch counts.
 */
async function stall(work: () => Promise<unknown>): Promise<{ maxMs: number; over50: number; ms: number }> {
  let last = performance.now();
  let max = 0;
  let over50 = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const gap = now - last - 1;
    if (gap > max) max = gap;
    if (gap > 50) over50++;
    last = now;
  }, 1);
  const t0 = performance.now();
  await work();
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 5));
  clearInterval(timer);
  return { maxMs: Math.max(0, max), over50, ms };
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { mb: { type: 'string', default: '8' }, rounds: { type: 'string', default: '3' } } });
  const mb = Number(values.mb);
  const rounds = Number(values.rounds);
  const tmp = tempDir('sightline-bench-json-');
  const config = loadConfig({ modelPath: testModelPath(), codesPath: testCodesPath(), dataDir: tmp.path, port: 0, host: '127.0.0.1', demo: false, logLevel: 'silent', maxJsonBytes: 64 * 1024 * 1024 }, {});
  const srv = await startServer(config, { logger: createLogger('silent') });
  await srv.startup;
  const worker = new Worker(CLIENT, { eval: true });
  const send = (body: string, n: number) =>
    new Promise<{ statuses: number[]; ms: number }>((resolve) => {
      worker.once('message', resolve);
      worker.postMessage({ url: `${srv.url}/v2/models/test-fmnist/infer`, body, n });
    });
  const big = numbersBody(mb * 1024 * 1024, [100000, 1, 28, 28]);
  const q = config.maxQueue;
  const valid = JSON.stringify({ inputs: [{ name: 'images', shape: [q, 1, 28, 28], datatype: 'FP32', data: Array.from({ length: q * 784 }, (_, i) => Number((((i * 7919) % 1000) / 1000).toFixed(3))) }], outputs: [{ name: 'logits' }] });
  const rows: string[][] = [];
  for (let r = 0; r < rounds; r++) {
    // The noise floor: the same measurement with nothing to do (a loaded machine deschedules us).
    const idle = await stall(() => new Promise((resolve) => setTimeout(resolve, 1000)));
    rows.push(['idle server, 1 s (noise floor)', String(r + 1), '-', idle.ms.toFixed(0), idle.maxMs.toFixed(1), String(idle.over50)]);
  }
  const scenarios: [string, string, number][] = [
    [`${(big.length / 1e6).toFixed(1)} MB numbers (400 after parse)`, big, 1],
    [`${(big.length / 1e6).toFixed(1)} MB numbers, 4 at once`, big, 4],
    [`valid batch of ${q} (${(valid.length / 1e6).toFixed(1)} MB), logits`, valid, 1],
    [`valid batch of ${q}, logits + embedding out`, valid.replace(',"outputs":[{"name":"logits"}]', ''), 1],
  ];
  for (const [name, body, n] of scenarios) {
    for (let r = 0; r < rounds; r++) {
      let statuses: number[] = [];
      const s = await stall(async () => {
        statuses = (await send(body, n)).statuses;
      });
      rows.push([name, String(r + 1), [...new Set(statuses)].join('/'), s.ms.toFixed(0), s.maxMs.toFixed(1), String(s.over50)]);
    }
  }
  await worker.terminate();
  await srv.close();
  tmp.cleanup();
  const chunked = await import('../server/json-body.js').catch(() => undefined);
  for (let r = 0; r < rounds; r++) {
    const a = await stall(async () => JSON.parse(big));
    rows.push(['in-process JSON.parse', String(r + 1), '-', a.ms.toFixed(0), a.maxMs.toFixed(1), String(a.over50)]);
    if (chunked) {
      const b = await stall(() => chunked.parseJsonChunked(big));
      rows.push(['in-process parseJsonChunked', String(r + 1), '-', b.ms.toFixed(0), b.maxMs.toFixed(1), String(b.over50)]);
    }
  }
  const header = ['scenario', 'round', 'status', 'wall ms', 'max stall ms', 'stalls > 50 ms'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write([line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n') + '\n');
}
