import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import request from 'supertest';
import { demoImage, startTestServer } from './helpers.js';

test('overload: a full queue answers 503 with Retry-After, everything else succeeds, no other 5xx', async () => {
  // Room for two 10-crop requests, which then wait up to 1 s for a 32-crop batch to fill: every
  // other request of the burst that arrives meanwhile finds the queue full.
  const s = await startTestServer({ maxBatch: 32, maxQueue: 20, maxDelayMs: 1000 });
  const server = s.app.listen(0);
  await once(server, 'listening');
  try {
    const png = demoImage('pullover/00.png');
    const burst = await Promise.all(Array.from({ length: 60 }, () => request(server).post('/v1/classify').set('content-type', 'image/png').send(png)));
    const byStatus = new Map<number, number>();
    for (const r of burst) byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
    assert.deepEqual(
      [...byStatus.keys()].sort(),
      [200, 503],
      `statuses: ${JSON.stringify([...byStatus])}`,
    );
    for (const r of burst.filter((x) => x.status === 503)) {
      assert.equal(r.body.error.code, 'unavailable');
      assert.equal(r.body.error.reason, 'overloaded');
      assert.match(r.headers['retry-after'] ?? '', /^[1-9]\d*$/);
    }
    for (const r of burst.filter((x) => x.status === 200)) assert.equal(r.body.predictions.length, 5);
    const metrics = (await request(server).get('/metrics')).text;
    assert.match(metrics, /sightline_queue_rejected_total\{reason="overloaded"\} [1-9]/);
    assert.match(metrics, /sightline_http_requests_total\{route="\/v1\/classify",method="POST",status="503"\} [1-9]/);
    // Once the burst is over the server answers normally again.
    assert.equal((await request(server).post('/v1/classify').set('content-type', 'image/png').send(png)).status, 200);
  } finally {
    server.close();
    await s.close();
  }
});

test('a request that waits past its deadline gets 503 with Retry-After', async () => {
  // The lone crop would wait 500 ms for company; its deadline is 1 ms.
  const s = await startTestServer({ maxBatch: 32, maxDelayMs: 500, requestTimeoutMs: 1 });
  try {
    const res = await request(s.app).post('/v1/classify?crops=1').set('content-type', 'image/png').send(demoImage('pullover/01.png'));
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'unavailable');
    assert.equal(res.body.error.reason, 'timeout');
    assert.match(res.body.error.message, /within 1 ms/);
    assert.match(res.headers['retry-after'] ?? '', /^[1-9]\d*$/);
  } finally {
    await s.close();
  }
});
