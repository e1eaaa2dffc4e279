/**
 * `npm run bench -- pg-uploads [--uploads 120]` (also the second part of `bench pg`): uploads per
 * second through `sightline serve` processes on one PostgreSQL 15 (a fresh database each), one
 * replica vs two, the same distinct PNGs sent by 8 clients taking replicas in turn. Each replica runs
 * the tiny test model with one onnxruntime thread, so the database's side of an upload weighs as
 * much as it can. On 2 shared cores two replicas compete for the same CPUs: the ratio says whether
 * a second replica on the same database costs throughput (no regression), not how far it scales.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { testCodesPath, testModelPath } from '../testing/models.js';
import { type PgCluster, postgresSkipReason, startPostgres } from '../testing/postgres.js';

const BIN = new URL('../bin/sightline.js', import.meta.url).pathname;
const CLIENTS = 8;

async function images(n: number): Promise<Buffer[]> {
  const px = Buffer.alloc(28 * 28);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < px.length; j++) px[j] = (i * 131 + j * 17 + ((i * j) % 7)) & 255;
    out.push(await sharp(px, { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer());
  }
  return out;
}

/** A `serve` child; resolves with its URL once /v2/health/ready answers 200. */
async function replica(dbUrl: string, dataDir: string, blobDir: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [BIN, 'serve', '--db', dbUrl, '--port', '0', '--host', '127.0.0.1', '--no-demo', '--model', testModelPath(), '--codes', testCodesPath()], {
    env: { ...process.env, SIGHTLINE_DATA: dataDir, SIGHTLINE_BLOB_DIR: blobDir, SIGHTLINE_THREADS: '1', SIGHTLINE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"msg":"listening"'));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    });
    proc.on('exit', (code) => reject(new Error(`serve exited (${String(code)}) before listening`)));
  });
  proc.stdout?.resume();
  for (;;) {
    if ((await fetch(`${url}/v2/health/ready`).then((r) => r.status, () => 0)) === 200) return { proc, url };
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function throughput(urls: string[], pngs: Buffer[]): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = next++; i < pngs.length; i = next++) {
        const res = await fetch(`${urls[i % urls.length]}/v1/images`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(pngs[i] as Buffer) });
        if (res.status !== 201) throw new Error(`upload ${i}: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      }
    }),
  );
  return pngs.length / ((performance.now() - t0) / 1000);
}

export async function uploadThroughput(cluster: PgCluster, dir: string, n: number): Promise<void> {
  const pngs = await images(n);
  const rates: number[] = [];
  for (const count of [1, 2]) {
    const db = await cluster.createDatabase();
    const blobs = join(dir, `blobs-${count}`);
    mkdirSync(blobs, { recursive: true });
    const reps = [];
    for (let r = 0; r < count; r++) reps.push(await replica(db, join(dir, `data-${count}-${r}`), blobs));
    try {
      await throughput(reps.map((x) => x.url), pngs.slice(0, 8)); // warm-up: schema, sessions, pool
      rates.push(await throughput(reps.map((x) => x.url), pngs.slice(8)));
    } finally {
      for (const x of reps) x.proc.kill('SIGTERM');
      await Promise.all(reps.map((x) => new Promise((r) => x.proc.once('exit', r))));
    }
  }
  console.log(`\nuploads through sightline serve on one PostgreSQL 15, ${n - 8} distinct 28×28 PNGs, ${CLIENTS} clients, tiny test model`);
  console.log('| replicas | uploads/s | vs one |\n|---|---|---|');
  rates.forEach((r, i) => console.log(`| ${i + 1} | ${r.toFixed(1)} | ${(r / (rates[0] as number)).toFixed(2)} |`));
}

export async function run(args: string[]): Promise<void> {
  const skip = postgresSkipReason();
  if (skip) {
    console.log(`skipped: ${skip}`);
    return;
  }
  const i = args.indexOf('--uploads');
  const cluster = await startPostgres();
  const dir = join(cluster.dir, 'bench');
  try {
    await uploadThroughput(cluster, dir, i >= 0 ? Number(args[i + 1]) : 120);
  } finally {
    await cluster.stop();
  }
}
