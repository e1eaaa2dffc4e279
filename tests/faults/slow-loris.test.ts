/**
 * Slow-loris clients on a real listening server: connections that trickle their headers, or
 * send headers and then trickle the body, are closed once the configured header / request timeouts
 * pass (short ones here), while ordinary requests keep being answered.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { createLogger, loadConfig, startServer } from '../../server/index.js';
import type { RunningServer } from '../../server/index.js';
import { tempDir, testCodesPath, testModelPath } from '../server/helpers.js';
import { faultReport } from './report.js';

const report = faultReport('slow-loris connections');
const HEADERS_MS = 600;
const REQUEST_MS = 1500;
const tmp = tempDir('sightline-loris-');
let srv: RunningServer;
let port: number;

before(async () => {
  const config = loadConfig(
    { modelPath: testModelPath(), codesPath: testCodesPath(), dataDir: tmp.path, port: 0, host: '127.0.0.1', demo: false, logLevel: 'silent', threads: 1, headersTimeoutMs: HEADERS_MS, httpRequestTimeoutMs: REQUEST_MS },
    {},
  );
  srv = await startServer(config, { logger: createLogger('silent') });
  port = Number(new URL(srv.url).port);
});
after(async () => {
  await srv.close(1000);
  tmp.cleanup();
});

interface Loris {
  closedAfterMs: Promise<number>;
  received: () => string;
  stop(): void;
}

/** A client that sends `head` at once, then one byte of `trickle` every 100 ms, forever. */
function loris(head: string, trickle: string): Loris {
  const t0 = performance.now();
  const socket: Socket = connect(port, '127.0.0.1');
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  socket.on('error', () => undefined);
  socket.write(head);
  let i = 0;
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write(trickle[i++ % trickle.length] ?? 'x');
  }, 100);
  const closedAfterMs = new Promise<number>((resolve) =>
    socket.on('close', () => {
      clearInterval(timer);
      resolve(performance.now() - t0);
    }),
  );
  return { closedAfterMs, received: () => got, stop: () => socket.destroy() };
}

test('trickled headers and trickled bodies are cut off by the timeouts; other requests are served meanwhile', async () => {
  const headerLoris = Array.from({ length: 20 }, () => loris('GET /v1/info HTTP/1.1\r\nHost: x\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaa\r\n'));
  const bodyLoris = Array.from({ length: 10 }, () =>
    loris('POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000000\r\n\r\n', '\x89PNG'),
  );
  // While 30 slow connections are held open, ordinary requests are answered.
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`${srv.url}/healthz`);
    assert.equal(res.status, 200);
  }
  // Generous bounds: without the timeouts Node keeps these connections 300 s (requestTimeout) or forever.
  const limit = (ms: number) => new Promise<number>((resolve) => setTimeout(() => resolve(Infinity), ms));
  const headerTimes = await Promise.all(headerLoris.map((l) => Promise.race([l.closedAfterMs, limit(HEADERS_MS + 5000)])));
  const bodyTimes = await Promise.all(bodyLoris.map((l) => Promise.race([l.closedAfterMs, limit(REQUEST_MS + 5000)])));
  for (const l of [...headerLoris, ...bodyLoris]) l.stop();
  for (const t of headerTimes) assert.ok(t >= HEADERS_MS - 50 && t < HEADERS_MS + 5000, `header loris closed after ${t} ms`);
  for (const t of bodyTimes) assert.ok(t >= REQUEST_MS - 50 && t < REQUEST_MS + 5000, `body loris closed after ${t} ms`);
  assert.match(headerLoris[0]?.received() ?? '', /^HTTP\/1\.1 408/, 'a 408 is sent before closing');
  const max = (xs: number[]) => Math.round(Math.max(...xs));
  report.add({ kind: `20 clients trickling headers (headers timeout ${HEADERS_MS} ms)`, outcome: `408 + closed, slowest after ${max(headerTimes)} ms`, lost: 0 });
  report.add({ kind: `10 clients trickling a body (request timeout ${REQUEST_MS} ms)`, outcome: `closed, slowest after ${max(bodyTimes)} ms`, lost: 0 });
  assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
});
