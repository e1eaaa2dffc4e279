/**
 * `npm run bench -- server [--model FILE] [--codes FILE] [--image JPEG] [--clients 1,8,32] [--seconds 8] [--rounds 1] [--crops 10] [--no-worker] [--spin] [--full] [--threads N] [--inflight N] [--decode-concurrency N] [--baseline DIR]`
 *
 * Starts the real server (port 0, empty temp database) and drives POST /v1/classify with 1, 8 and
 * 32 concurrent clients, each a closed loop of HTTP calls on a real JPEG, measured in a window
 * after a warm-up (requests completed inside it). Per level: requests/s,
 * p50/p99 latency, the mean inference batch size (from the server's own batch histogram), and
 * the ratio of crops/s served over HTTP to raw onnxruntime crops/s at that same batch size
 * (session.run on a ready batch, no HTTP, no decoding). Goal: ≥ 0.9 at 32 clients.
 * With --rounds R the level alternates R served windows with R raw windows (clients paused), so that
 * both sides see the same share of a machine other jobs are loading. The CPU columns are this
 * process's CPU time (user + system, all threads, the clients' included) per crop: unlike crops/s
 * they barely move with other processes' load, so served/raw CPU shows the cost of HTTP and decoding.
 * Without --model, uses model/default/sightline-fmnist.onnx, else a random-init alexnet-small.
 * Clients run in a worker thread of the same process (their own event loop, the same CPUs), and
 * decoding shares the CPUs with inference: on a small shared machine that is part of the ratio.
 * With --baseline DIR a second server is started from another checkout's server/ (e.g. /work/main
 * before a change; its node_modules must resolve), and each round measures both, in alternating
 * order (ABBA), so that before and after see the same machine; one row per level and server.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { Histogram } from 'prom-client';
import * as serverModule from '../server/index.js';
import { packageRoot } from '../server/index.js';
import type { RunningServer } from '../server/index.js';
import { tempDir, testCodesPath, testModelPath } from '../testing/models.js';

interface Level {
  clients: number;
  requests: number;
  errors: number;
  seconds: number;
  latencies: number[];
  meanBatch: number;
  /** Process CPU seconds spent during the windows. */
  cpu: number;
  batchSum: number;
  batchRuns: number;
}

type ServerModule = Pick<typeof serverModule, 'createLogger' | 'loadConfig' | 'startServer'>;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => `-${'-'.repeat(w)}:`).join('|')}|`, ...rows.map(line)].join('\n');
}

async function batchStats(srv: RunningServer): Promise<{ sum: number; count: number }> {
  const h = srv.runtime.metrics.registry.getSingleMetric('sightline_inference_batch_size') as Histogram | undefined;
  const values = (await h?.get())?.values ?? [];
  return {
    sum: values.find((v) => v.metricName === 'sightline_inference_batch_size_sum')?.value ?? 0,
    count: values.find((v) => v.metricName === 'sightline_inference_batch_size_count')?.value ?? 0,
  };
}

/**
 * The load generator, in a worker thread so that the clients' own fetch work does not run on the
 * server's event loop. Closed loops; the main thread opens and closes the measurement window, and
 * the requests that complete inside it count (throughput and latency of the steady state).
 */
const CLIENTS_JS = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { url, body, clients } = workerData;
// node:http with keep-alive rather than fetch: fetch copies the body per request and costs the
// shared CPUs about twice as much, which the server would be charged for in the ratio.
const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
const payload = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
let open = false, stop = false, paused = false, errors = 0, wake = null, inflight = 0;
const latencies = [];
parentPort.on('message', (m) => {
  if (m === 'open') open = true;
  else if (m === 'close') open = false;
  else if (m === 'stop') { stop = true; paused = false; }
  else if (m === 'pause') paused = true;
  else if (m === 'resume') paused = false;
  if (!paused && wake) { const w = wake; wake = null; w(); }
  // A pause is acknowledged once no request is in flight, so a raw window never overlaps serving.
  if (m === 'pause' && inflight === 0) parentPort.postMessage('paused');
});

function post() {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'image/jpeg', 'content-length': payload.length } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.end(payload);
  });
}
async function client() {
  while (!stop) {
    while (paused) await new Promise((r) => { const prev = wake; wake = () => { if (prev) prev(); r(); }; });
    if (stop) break;
    const start = performance.now();
    inflight++;
    const ok = await post();
    inflight--;
    if (paused && inflight === 0) parentPort.postMessage('paused');
    if (!open) continue;
    if (ok) latencies.push(performance.now() - start); else errors++;
  }
}
Promise.all(Array.from({ length: clients }, client)).then(() => parentPort.postMessage({ latencies, errors }));
`;

interface Raw {
  crops: number;
  seconds: number;
  cpu: number;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Steady state only: windows open after a warm-up. Each of `rounds` rounds is a served window, then
 * (clients paused, nothing in flight) a raw window at the mean batch size served so far.
 */
async function drive(srv: RunningServer, url: string, body: Uint8Array, clients: number, seconds: number, warmup: number, rounds: number): Promise<{ level: Level; raw: Raw; batch: number }> {
  const worker = new Worker(CLIENTS_JS, { eval: true, workerData: { url, body, clients } });
  let pausedAck: (() => void) | undefined;
  const done = new Promise<{ latencies: number[]; errors: number }>((resolve, reject) => {
    worker.on('message', (m: unknown) => {
      if (m === 'paused') pausedAck?.();
      else resolve(m as { latencies: number[]; errors: number });
    });
    worker.once('error', reject);
  });
  const pause = (): Promise<void> =>
    new Promise<void>((resolve) => {
      pausedAck = resolve;
      worker.postMessage('pause');
    });
  await sleep(warmup * 1000);
  let served = 0;
  let cpu = 0;
  let batchSum = 0;
  let batchRuns = 0;
  const raw: Raw = { crops: 0, seconds: 0, cpu: 0 };
  let batch = 1;
  for (let r = 0; r < rounds; r++) {
    if (r > 0) {
      worker.postMessage('resume');
      await sleep(500);
    }
    const before = await batchStats(srv);
    const c0 = cpuSeconds();
    const t0 = performance.now();
    worker.postMessage('open');
    await sleep(seconds * 1000);
    worker.postMessage('close');
    served += (performance.now() - t0) / 1000;
    cpu += cpuSeconds() - c0;
    const after = await batchStats(srv);
    batchSum += after.sum - before.sum;
    batchRuns += after.count - before.count;
    batch = Math.max(1, Math.round(batchRuns > 0 ? batchSum / batchRuns : 1));
    await pause();
    const rc0 = cpuSeconds();
    const one = await rawCrops(srv, batch, Math.max(1, seconds / 2));
    raw.crops += one.crops;
    raw.seconds += one.seconds;
    raw.cpu += cpuSeconds() - rc0;
  }
  worker.postMessage('stop');
  const { latencies, errors } = await done;
  await worker.terminate();
  return { level: { clients, requests: latencies.length, errors, seconds: served, latencies: latencies.sort((a, b) => a - b), meanBatch: batchRuns > 0 ? batchSum / batchRuns : 0, cpu, batchSum, batchRuns }, raw, batch };
}

/** session.run alone on a ready batch of `n` crops, over about `seconds`. */
async function rawCrops(srv: RunningServer, n: number, seconds: number): Promise<{ crops: number; seconds: number }> {
  const session = srv.runtime.inference.session;
  const [c, h, w] = session.inputShape;
  const batch = new Float32Array(n * c * h * w).fill(0.5);
  await session.run(batch, n);
  let crops = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await session.run(batch, n);
    crops += n;
  }
  return { crops, seconds: (performance.now() - t0) / 1000 };
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      codes: { type: 'string' },
      image: { type: 'string' },
      clients: { type: 'string', default: '1,8,32' },
      seconds: { type: 'string', default: '8' },
      crops: { type: 'string', default: '10' },
      // Measure with onnxruntime in the main thread (the server's SIGHTLINE_INFERENCE_WORKER=0).
      'no-worker': { type: 'boolean', default: false },
      // Let onnxruntime's threads spin-wait (the server's SIGHTLINE_INFERENCE_SPIN=1; off by default).
      spin: { type: 'boolean', default: false },
      // A random-init full AlexNet (224 px RGB crops, the paper's network) instead of the bundled model.
      full: { type: 'boolean', default: false },
      // Alternating served/raw windows per level (see the header).
      rounds: { type: 'string', default: '1' },
      // onnxruntime intra-op threads (the server's SIGHTLINE_THREADS; 0 = its default, 2).
      threads: { type: 'string', default: '0' },
      // Batches handed to onnxruntime at once (SIGHTLINE_INFERENCE_INFLIGHT).
      inflight: { type: 'string' },
      // Images decoded at once, 0 = no limit of our own (SIGHTLINE_DECODE_CONCURRENCY).
      'decode-concurrency': { type: 'string' },
      // Another checkout to measure alternately with this one (see the header).
      baseline: { type: 'string' },
    },
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) throw new Error(`--rounds must be an integer in [1, 100], got '${values.rounds}'`);
  // Unset flags keep the server's defaults; loadConfig validates the values and names a bad one.
  const tuning = {
    threads: values.threads,
    ...(values.inflight !== undefined ? { inferenceInflight: values.inflight } : {}),
    ...(values['decode-concurrency'] !== undefined ? { decodeConcurrency: values['decode-concurrency'] } : {}),
  };
  const levels = (values.clients ?? '').split(',').map(Number);
  if (levels.some((n) => !Number.isInteger(n) || n < 1 || n > 1024)) throw new Error(`--clients must be integers in [1, 1024], got '${values.clients}'`);
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new Error(`--seconds must be positive, got '${values.seconds}'`);
  if (values.crops !== '1' && values.crops !== '10') throw new Error(`--crops must be 1 or 10, got '${values.crops}'`);
  const defaultModel = join(packageRoot(), 'model/default/sightline-fmnist.onnx');
  const defaultCodes = join(packageRoot(), 'model/default/codes-128.onnx');
  let model = values.model ?? (values.full ? testModelPath(7, 'full') : existsSync(defaultModel) ? defaultModel : undefined);
  let codes = values.codes ?? (model === defaultModel && existsSync(defaultCodes) ? defaultCodes : undefined);
  let origin = values.full && values.model === undefined ? 'random-init full alexnet (224 px RGB crops, 10 classes)' : (model ?? '');
  if (model === undefined) {
    model = testModelPath(7, 'small');
    origin = 'random-init alexnet-small (model/default/sightline-fmnist.onnx not found)';
  }
  codes ??= testCodesPath(128, 11, 'center', model);
  const image = new Uint8Array(readFileSync(values.image ?? join(packageRoot(), 'tests/fixtures/images/dog.jpg')));
  const baselineDir = values.baseline === undefined ? undefined : resolve(values.baseline);
  if (baselineDir !== undefined && !existsSync(join(baselineDir, 'server/index.ts'))) {
    throw new Error(`bench server: --baseline '${values.baseline}' is not a Sightline checkout (no server/index.ts there)`);
  }
  const builds: [string, ServerModule][] = [['this checkout', serverModule]];
  if (baselineDir !== undefined) builds.unshift([`baseline ${baselineDir}`, (await import(pathToFileURL(join(baselineDir, 'server/index.ts')).href)) as ServerModule]);
  const data = tempDir('sightline-bench-');
  const servers: { name: string; srv: RunningServer; url: string }[] = [];
  try {
    for (const [name, mod] of builds) {
      const dataDir = join(data.path, String(servers.length));
      const config = mod.loadConfig({ modelPath: model, codesPath: codes, dataDir, host: '127.0.0.1', port: 0, demo: false, logLevel: 'silent', maxQueue: 100_000, inferenceWorker: !values['no-worker'], inferenceSpin: values.spin === true, ...tuning }, {});
      const srv = await mod.startServer(config, { logger: mod.createLogger('silent') });
      servers.push({ name, srv, url: `${srv.url.replace('localhost', '127.0.0.1')}/v1/classify?crops=${values.crops}` });
      await srv.startup;
      if (servers.length === 1) {
        process.stdout.write(
          `server bench: ${origin}\nimage ${values.image ?? 'tests/fixtures/images/dog.jpg'}, ${values.crops} crops/request, max batch ${config.maxBatch}, max delay ${config.maxDelayMs} ms, onnxruntime in ${config.inferenceWorker ? 'a worker thread' : 'the main thread'}, spinning ${config.inferenceSpin ? 'on' : 'off'}, ` +
            `threads ${config.threads || 'default'}, inflight ${config.inferenceInflight}, decode concurrency ${config.decodeConcurrency || 'libuv pool'} (UV_THREADPOOL_SIZE ${process.env['UV_THREADPOOL_SIZE'] ?? '4, default'}), ` +
            `${cpus().length} CPUs, load ${loadavg()[0]?.toFixed(1)}, ${rounds} × ${seconds} s served + ${rounds} × ${Math.max(1, seconds / 2)} s raw per level${builds.length > 1 ? ' and server, servers alternating ABBA' : ''}\n\n`,
        );
      }
    }
    const rows: string[][] = [];
    for (const clients of levels) {
      const acc = servers.map(() => ({ level: undefined as Level | undefined, raw: { crops: 0, seconds: 0, cpu: 0 }, batch: 1 }));
      if (servers.length === 1) {
        const only = servers[0];
        if (only === undefined) throw new Error('no server');
        const one = await drive(only.srv, only.url, image, clients, seconds, Math.max(1, seconds / 4), rounds);
        acc[0] = one;
      } else {
        for (let r = 0; r < rounds; r++) {
          const order = r % 2 === 0 ? servers.map((_, i) => i) : servers.map((_, i) => servers.length - 1 - i);
          for (const i of order) {
            const s = servers[i];
            const a = acc[i];
            if (s === undefined || a === undefined) continue;
            const one = await drive(s.srv, s.url, image, clients, seconds, Math.max(1, seconds / 4), 1);
            a.level = a.level === undefined ? one.level : mergeLevels(a.level, one.level);
            a.raw = { crops: a.raw.crops + one.raw.crops, seconds: a.raw.seconds + one.raw.seconds, cpu: a.raw.cpu + one.raw.cpu };
            a.batch = one.batch;
          }
        }
      }
      acc.forEach((a, i) => {
        if (a.level === undefined) return;
        rows.push(levelRow(clients, servers.length > 1 ? (servers[i]?.name ?? '') : undefined, a.level, a.raw, a.batch, Number(values.crops)));
      });
    }
    const header = ['clients', 'req/s', 'p50 ms', 'p99 ms', 'mean batch', 'served crops/s', 'raw crops/s', 'served/raw', 'CPU ms/crop served', 'CPU ms/crop raw', 'raw/served CPU', 'CPU ms/image over raw', 'errors'];
    process.stdout.write(`${table(servers.length > 1 ? ['server', ...header] : header, rows)}\n`);
    process.stdout.write(
      '\nserved/raw: crops/s over HTTP ÷ session.run alone at the served mean batch size (goal ≥ 0.9 at 8 and 32 clients with --full, ≥ 0.85 bundled).\n' +
        'CPU ms/image over raw: (served − raw CPU per crop) × crops per request: what a request costs beyond inference (HTTP, decode, crops, batching).\n',
    );
  } finally {
    for (const { srv } of servers) await srv.close();
    data.cleanup();
  }
}

function mergeLevels(a: Level, b: Level): Level {
  const batchSum = a.batchSum + b.batchSum;
  const batchRuns = a.batchRuns + b.batchRuns;
  return {
    clients: a.clients,
    requests: a.requests + b.requests,
    errors: a.errors + b.errors,
    seconds: a.seconds + b.seconds,
    latencies: [...a.latencies, ...b.latencies].sort((x, y) => x - y),
    meanBatch: batchRuns > 0 ? batchSum / batchRuns : 0,
    cpu: a.cpu + b.cpu,
    batchSum,
    batchRuns,
  };
}

function levelRow(clients: number, name: string | undefined, lv: Level, raw: Raw, batch: number, cropsPerRequest: number): string[] {
  const rps = lv.requests / lv.seconds;
  const served = rps * cropsPerRequest;
  const servedCrops = lv.requests * cropsPerRequest;
  const rawRate = raw.crops / raw.seconds;
  const cpuServed = (lv.cpu / servedCrops) * 1000;
  const cpuRaw = (raw.cpu / raw.crops) * 1000;
  return [
    ...(name === undefined ? [] : [name]),
    String(clients),
    rps.toFixed(1),
    percentile(lv.latencies, 50).toFixed(1),
    percentile(lv.latencies, 99).toFixed(1),
    lv.meanBatch.toFixed(1),
    served.toFixed(0),
    `${rawRate.toFixed(0)} @${batch}`,
    (served / rawRate).toFixed(2),
    cpuServed.toFixed(2),
    cpuRaw.toFixed(2),
    (cpuRaw / cpuServed).toFixed(2),
    ((cpuServed - cpuRaw) * cropsPerRequest).toFixed(1),
    String(lv.errors),
  ];
}
