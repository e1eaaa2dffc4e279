import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJsonChunked } from '../../server/json-body.js';
import { mulberry32 } from '../../training/network.js';

/** A seeded random JSON value: nested arrays/objects, escaped strings, numbers of every shape. */
function randomValue(rand: () => number, depth: number): unknown {
  const r = rand();
  if (depth > 4 || r < 0.35) {
    const k = Math.floor(rand() * 7);
    if (k === 0) return (rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 20);
    if (k === 1) return Math.floor(rand() * 1e6) - 5e5;
    if (k === 2) return ['', 'plain', 'quote " and \\ backslash', 'tab\tnew\nline', 'é ☃ 😀', '\u0001\u001f', '__proto__'][Math.floor(rand() * 7)];
    return [true, false, null, -0][k - 3];
  }
  if (r < 0.7) return Array.from({ length: Math.floor(rand() * 6) }, () => randomValue(rand, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 5); i > 0; i--) o[`k${Math.floor(rand() * 9)}${rand() < 0.1 ? '"\\' : ''}`] = randomValue(rand, depth + 1);
  return o;
}

test('parses exactly what JSON.parse parses: 300 random documents, compact and indented, with tiny slices', async () => {
  const rand = mulberry32(5);
  for (let i = 0; i < 300; i++) {
    const text = JSON.stringify(randomValue(rand, 0), null, i % 2 === 0 ? undefined : 2);
    assert.deepEqual(await parseJsonChunked(text, { sliceChars: 7 }), JSON.parse(text), text);
  }
  const edge = ['0', '-0', '1E+2', '1e400', '-1.5e-7', '"\\u00e9\\ud83d\\ude00"', ' [ ] ', '{}', '{"__proto__": {"x": 1}}', '[[],[[]],{}]'];
  for (const text of edge) assert.deepEqual(await parseJsonChunked(text), JSON.parse(text), text);
  const proto = (await parseJsonChunked('{"__proto__": {"polluted": true}}')) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(proto), Object.prototype, '__proto__ is an own key, as with JSON.parse');
  assert.deepEqual(Object.keys(proto), ['__proto__']);
});

test('refuses what JSON.parse refuses, with a 400 naming the position', async () => {
  const bad = ['', ' ', '[1,]', '{"a":1,}', '[01]', '[1.]', '[.5]', '[+1]', 'tru', '[1]x', '{"a" 1}', '{a:1}', '"unterminated', '"ctl \u0001"', '"bad \\x"', '[1 2]', '{"a":1 "b":2}', ']', '[}', '{]', "['x']", 'NaN', '[Infinity]'];
  for (const text of bad) {
    assert.throws(() => JSON.parse(text), SyntaxError, `JSON.parse accepts ${text}`);
    await assert.rejects(parseJsonChunked(text), (err: unknown) => {
      const e = err as { status?: number; code?: string; message?: string };
      assert.equal(e.status, 400, text);
      assert.equal(e.code, 'invalid_json');
      assert.match(e.message ?? '', /not valid JSON: .* at position \d+/);
      return true;
    });
  }
});

test('nesting is capped without recursion: 100,000 levels is a 400, not a stack overflow', async () => {
  await assert.rejects(parseJsonChunked('['.repeat(100_000) + ']'.repeat(100_000)), /nested deeper than 64 levels/);
  assert.deepEqual(await parseJsonChunked('['.repeat(64) + ']'.repeat(64)), JSON.parse('['.repeat(64) + ']'.repeat(64)));
});

test('the event loop gets a turn every slice while a large body is parsed', async () => {
  const text = JSON.stringify({ inputs: [{ data: Array.from({ length: 200_000 }, (_, i) => i / 7) }] });
  let turns = 0;
  let spinning = true;
  const spin = (): void => {
    turns++;
    if (spinning) setImmediate(spin);
  };
  setImmediate(spin);
  const parsed = await parseJsonChunked(text, { sliceChars: 64 * 1024 });
  spinning = false;
  assert.deepEqual(parsed, JSON.parse(text));
  // ~3.9 MB in 64 Ki slices: about 60 yields, each letting the spinning callback run once.
  assert.ok(turns >= Math.floor(text.length / (64 * 1024)) - 1, `${turns} turns for ${text.length} chars`);
});
