/**
 * The /metrics exposition checked by Prometheus's own linter: `promtool check metrics` reads the
 * text on stdin and prints one line per problem (a `_total` gauge, a counter without `_total`, a
 * missing HELP...). It must print nothing. Needs Debian's `prometheus` package (`.ci/run` installs it).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import request from 'supertest';
import { demoImage, startTestServer } from './helpers.js';
import type { TestServer } from './helpers.js';

const PROMTOOL = '/usr/bin/promtool';
const skip = existsSync(PROMTOOL) ? false : `${PROMTOOL} not found (Debian package: prometheus)`;
let s: TestServer | undefined;

before(async () => {
  if (skip) return;
  s = await startTestServer();
  // Touch the histograms and labelled counters so that every family has samples.
  const res = await request(s.app).post('/v1/classify').set('content-type', 'image/png').send(demoImage('bag/00.png'));
  assert.equal(res.status, 200);
});
after(async () => {
  await s?.close();
});

test('promtool check metrics finds nothing to warn about', { skip }, async () => {
  assert.ok(s);
  const text = (await request(s.app).get('/metrics')).text;
  assert.match(text, /^process_cpu_seconds_total \d/m, 'process metrics keep their conventional names');
  assert.match(text, /^nodejs_eventloop_lag_seconds \d/m, 'Node.js metrics keep their conventional names');
  assert.doesNotMatch(text, /^sightline_(process|nodejs)_/m);
  const run = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(`${run.stdout}${run.stderr}`.trim(), '', 'promtool output');
  assert.equal(run.status, 0);
});
