/**
 * The model registry against a real HTTP server on localhost: verified downloads (redirects,
 * resume after a cut connection, wrong SHA-256, 404, unreachable host), mirrors, --from, the cache
 * layout, and the import of a graph shaped like the model zoo's bvlcalexnet-12.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readContract } from '../../model/onnx/index.js';
import type { RegistryEntry } from '../../model/registry/index.js';
import { importedPath, partPath, pullModel, REGISTRY, RegistryError, registryLabels, removeModel, resolveModelArg, sourcePath } from '../../model/registry/index.js';
import { createSession } from '../../model/session.js';
import { zooLikeAlexnet } from './zoo-like.js';

const FILE = zooLikeAlexnet();
const SHA = createHash('sha256').update(FILE).digest('hex');
const work = mkdtempSync(join(tmpdir(), 'sightline-registry-'));

interface Seen {
  path: string;
  range?: string;
}
const seen: Seen[] = [];
let cutOnce = true;

/** Serves FILE with Range support; /cut drops the first connection halfway through the body. */
function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '/';
  seen.push({ path, range: req.headers.range });
  if (path === '/moved/zoo.onnx') {
    res.writeHead(302, { location: '/files/zoo.onnx' }).end();
    return;
  }
  if (path === '/bad/zoo.onnx') {
    const bad = Buffer.from(FILE);
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0xff;
    res.writeHead(200, { 'content-length': bad.length }).end(bad);
    return;
  }
  if (path !== '/files/zoo.onnx' && path !== '/cut/zoo.onnx') {
    res.writeHead(404).end('not here');
    return;
  }
  const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
  const body = Buffer.from(FILE).subarray(start);
  const headers: Record<string, string | number> = { 'content-length': body.length, 'accept-ranges': 'bytes' };
  if (start > 0) headers['content-range'] = `bytes ${start}-${FILE.length - 1}/${FILE.length}`;
  res.writeHead(start > 0 ? 206 : 200, headers);
  if (path === '/cut/zoo.onnx' && cutOnce) {
    cutOnce = false;
    // Destroyed a moment after the half is flushed, so the client has read it before the cut.
    res.write(body.subarray(0, Math.floor(body.length / 2)), () => setTimeout(() => res.destroy(), 50));
    return;
  }
  res.end(body);
}

let server: Server;
let base = '';
let closedPort = 0;

function entry(url: string, over: Partial<RegistryEntry> = {}): RegistryEntry {
  return { name: 'zoo-test', description: 'test', url, file: 'zoo.onnx', sha256: SHA, size: FILE.length, license: 'BSD-3-Clause', preset: 'caffe', labels: 'imagenet-1k', accuracy: { dataset: 'none', top1: 0 }, ...over };
}

function home(): string {
  return mkdtempSync(join(work, 'home-'));
}

async function pull(url: string, h: string, extra: { mirror?: string; from?: string; attempts?: number; over?: Partial<RegistryEntry> } = {}) {
  const e = entry(url, extra.over);
  return pullModel(e.name, { home: h, entries: [e], mirror: extra.mirror, from: extra.from, attempts: extra.attempts, idleTimeoutMs: 5000 });
}

async function rejectsWith(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof RegistryError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  });
}

before(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  closedPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(work, { recursive: true, force: true });
});

describe('models pull', () => {
  it('downloads, verifies and imports into the cache layout; a second pull reuses the import', async () => {
    const h = home();
    const res = await pull(`${base}/files/zoo.onnx`, h);
    assert.equal(res.fetched, true);
    assert.equal(res.path, importedPath(h, 'zoo-test'));
    assert.deepEqual(readdirSync(join(h, 'models', 'zoo-test')).sort(), ['entry.json', 'model.onnx', 'zoo.onnx']);
    assert.deepEqual(readFileSync(sourcePath(h, entry(''))), Buffer.from(FILE));
    const meta = JSON.parse(readFileSync(join(h, 'models', 'zoo-test', 'entry.json'), 'utf8')) as { sha256: string; source: string };
    assert.equal(meta.sha256, SHA);
    assert.equal(meta.source, `${base}/files/zoo.onnx`);
    const contract = await readContract(res.path);
    assert.equal(contract.name, 'zoo-test');
    assert.equal(contract.labels.length, 1000);
    assert.equal(contract.labels[0], 'tench');
    assert.equal(contract.io.input, 'data_0');
    assert.equal(contract.preprocess.channels, 'bgr');
    const again = await pull(`${base}/nowhere`, h);
    assert.equal(again.fetched, false);
    assert.equal(resolveModelArg('zoo-test', h, [entry('')]), res.path);
  });

  it('the imported zoo-shaped model runs: symbolic batch, 1000 logits, fc7 embedding', async () => {
    const h = home();
    const { path } = await pull(`${base}/files/zoo.onnx`, h);
    const s = await createSession(path, { device: 'cpu', threads: 1 });
    try {
      const out = await s.run(new Float32Array(2 * 3 * 32 * 32).fill(0.5), 2);
      assert.equal(out.logits.length, 2 * 1000);
      assert.equal(out.embedding.length, 2 * 16);
    } finally {
      await s.close();
    }
  });

  it('follows redirects', async () => {
    const h = home();
    const res = await pull(`${base}/moved/zoo.onnx`, h);
    assert.ok(existsSync(res.path));
  });

  it('resumes after a cut connection with an HTTP Range request', async () => {
    const h = home();
    seen.length = 0;
    cutOnce = true;
    await pull(`${base}/cut/zoo.onnx`, h);
    const tries = seen.filter((s) => s.path === '/cut/zoo.onnx');
    assert.equal(tries.length, 2);
    assert.equal(tries[0]?.range, undefined);
    const from = Number(/^bytes=(\d+)-$/.exec(tries[1]?.range ?? '')?.[1]);
    assert.ok(from > 0 && from < FILE.length, `resumed from ${from}`);
    assert.deepEqual(readFileSync(sourcePath(h, entry(''))), Buffer.from(FILE));
  });

  it('keeps the part file when a pull gives up, and the next pull resumes it', async () => {
    const h = home();
    cutOnce = true;
    await rejectsWith(pull(`${base}/cut/zoo.onnx`, h, { attempts: 1 }), 'registry_download_failed', /connection cut/);
    const part = partPath(sourcePath(h, entry('')));
    assert.ok(existsSync(part));
    seen.length = 0;
    await pull(`${base}/cut/zoo.onnx`, h);
    assert.match(seen[0]?.range ?? '', /^bytes=\d+-$/);
    assert.ok(!existsSync(part));
  });

  it('a wrong SHA-256 deletes the download and says so', async () => {
    const h = home();
    await rejectsWith(pull(`${base}/bad/zoo.onnx`, h), 'registry_checksum_mismatch', /has SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}; it was deleted/);
    assert.deepEqual(readdirSync(join(h, 'models', 'zoo-test')), []);
  });

  it('404 and an unreachable host name the URL and both ways out', async () => {
    const h = home();
    const waysOut = /SIGHTLINE_MODEL_MIRROR.*--from FILE/;
    await rejectsWith(pull(`${base}/gone/zoo.onnx`, h), 'registry_download_failed', new RegExp(`${base}/gone/zoo.onnx: HTTP 404`));
    await rejectsWith(pull(`${base}/gone/zoo.onnx`, h), 'registry_download_failed', waysOut);
    const url = `http://127.0.0.1:${closedPort}/zoo.onnx`;
    await rejectsWith(pull(url, h), 'registry_download_failed', new RegExp(`${url}: ECONNREFUSED`));
    assert.ok(!existsSync(importedPath(h, 'zoo-test')));
  });

  it('SIGHTLINE_MODEL_MIRROR: a base URL or a local folder replaces the registry URL', async () => {
    const viaUrl = await pull('http://127.0.0.1:1/unused', home(), { mirror: `${base}/files/` });
    assert.ok(existsSync(viaUrl.path));
    const folder = join(work, 'mirror');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'zoo.onnx'), FILE);
    const viaDir = await pull('http://127.0.0.1:1/unused', home(), { mirror: folder });
    assert.ok(existsSync(viaDir.path));
    await rejectsWith(pull('http://127.0.0.1:1/unused', home(), { mirror: join(work, 'empty-mirror') }), 'registry_download_failed', /empty-mirror\/zoo.onnx/);
  });

  it('--from FILE registers a local copy after the same checks, and never deletes it', async () => {
    const copy = join(work, 'elsewhere.onnx');
    writeFileSync(copy, FILE);
    const h = home();
    const res = await pull('http://127.0.0.1:1/unused', h, { from: copy });
    assert.ok(existsSync(res.path));
    const wrong = join(work, 'wrong.onnx');
    writeFileSync(wrong, FILE.subarray(0, 100));
    await rejectsWith(pull('http://127.0.0.1:1/unused', home(), { from: wrong }), 'registry_checksum_mismatch', /is not the registry's zoo.onnx: its copy has 100 bytes/);
    assert.ok(existsSync(wrong));
  });

  it('rm deletes the cached folder; names resolve only once pulled', async () => {
    const h = home();
    const e = [entry(`${base}/files/zoo.onnx`)];
    assert.throws(() => resolveModelArg('zoo-test', h, e), (err: unknown) => err instanceof RegistryError && /not pulled yet: run 'sightline models pull zoo-test'/.test(err.message));
    await pullModel('zoo-test', { home: h, entries: e });
    assert.equal(removeModel('zoo-test', h, e), true);
    assert.ok(!existsSync(join(h, 'models', 'zoo-test')));
    assert.equal(removeModel('zoo-test', h, e), false);
    assert.throws(() => resolveModelArg('no-such-model', h, e), (err: unknown) => err instanceof RegistryError && err.code === 'registry_unknown_model');
  });
});

describe('registry entries', () => {
  it('the issue\'s zoo files with their sizes and hashes; 1000 ImageNet labels in class order', () => {
    const byName = new Map(REGISTRY.map((e) => [e.name, e]));
    assert.equal(byName.get('alexnet-imagenet')?.sha256, '6b0da9510f27f234ee96a85dc3809dd210150fdefad87f6850f9788513216945');
    assert.equal(byName.get('alexnet-imagenet')?.size, 243_863_787);
    assert.equal(byName.get('alexnet-imagenet-int8')?.sha256, 'd53bbedf100be79277cf55d78c72bdcb67d88786988561bf5d530f038e443c7b');
    assert.equal(byName.get('alexnet-imagenet-int8')?.size, 60_984_008);
    assert.ok(byName.has('sightline-fmnist'));
    const labels = registryLabels(entry('')) ?? [];
    assert.equal(labels.length, 1000);
    assert.equal(new Set(labels).size, 1000);
    assert.deepEqual([labels[0], labels[207], labels[281], labels[999]], ['tench', 'golden retriever', 'tabby', 'toilet tissue']);
  });
});
