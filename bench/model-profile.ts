/**
 * `npm run bench -- model-profile [--int8 bundled,alexnet,alexnet-dense] [--batch 10] [--runs 3] [--threads 2] [--top 8]`
 *
 * Where the time goes inside onnxruntime, fp32 and int8 of each bench model (model-int8.ts):
 * onnxruntime's own session profiler (enableProfiling) over --runs runs at --batch, after one
 * untimed run, on the graph the session loads (LRN expanded, model/onnx/lrn.ts), summed per kind
 * of node (Conv, Gemm, LRN, pools, layout changes, Q/DQ), then the --top slowest nodes. It also
 * names what onnxruntime turned the graph into (QLinearConv, QGemm, NhwcMaxPool…). Per-node times
 * add up to about the run time on 2 threads; under load they grow with it, so compare shares.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { batchLength, expandLrn, InferenceSession, readContractSync, Tensor } from '../model/index.js';
import { fp32Model, INT8_MODELS, photoBatches, quantizeFile } from './model-int8.js';
import type { Int8Model } from './model-int8.js';

interface ProfileEvent {
  cat?: string;
  name?: string;
  dur?: number;
  args?: { op_name?: string };
}

/** Kind of a node as onnxruntime names it after its graph optimizations. */
export function nodeKind(op: string, name: string): string {
  if (name.includes('.expanded') || op === 'LRN') return 'LRN';
  if (/Conv/.test(op)) return 'Conv';
  if (/Gemm|MatMul/.test(op)) return 'Gemm (fc)';
  if (/Pool/.test(op)) return 'MaxPool';
  if (/Transpose|Reorder/.test(op)) return 'layout (Transpose, Reorder)';
  if (/QuantizeLinear/.test(op)) return 'QuantizeLinear / DequantizeLinear';
  return 'other';
}

/** Median ms per run of each node over the profiled runs, skipping each node's first (warm-up) run. */
export function nodeTimes(events: readonly ProfileEvent[]): Map<string, { op: string; ms: number }> {
  const runs = new Map<string, { op: string; us: number[] }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time')) continue;
    const name = e.name.slice(0, -'_kernel_time'.length);
    const r = runs.get(name) ?? { op: e.args?.op_name ?? '?', us: [] };
    r.us.push(e.dur ?? 0);
    runs.set(name, r);
  }
  const out = new Map<string, { op: string; ms: number }>();
  for (const [name, r] of runs) {
    const us = r.us.slice(1).sort((a, b) => a - b);
    out.set(name, { op: r.op, ms: (us[Math.floor(us.length / 2)] ?? 0) / 1000 });
  }
  return out;
}

async function profile(path: string, dir: string, batch: number, runs: number, threads: number): Promise<Map<string, { op: string; ms: number }>> {
  const bytes = readFileSync(path);
  const pre = readContractSync(bytes).preprocess;
  const prefix = join(dir, `profile-${Date.now()}`);
  const session = await InferenceSession.create(expandLrn(bytes)?.bytes ?? bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableProfiling: true,
    profileFilePrefix: prefix,
  });
  try {
    const crops = await photoBatches(path);
    const one = batchLength(pre, 1);
    const data = new Float32Array(batchLength(pre, batch));
    for (let i = 0; i < batch; i++) data.set((crops[Math.floor(i / 10) % crops.length] ?? new Float32Array()).subarray(0, one), i * one);
    const feeds = { [session.inputNames[0] ?? 'images']: new Tensor('float32', data, [batch, pre.channels === 'gray' ? 1 : 3, pre.inputSize, pre.inputSize]) };
    for (let r = 0; r <= runs; r++) await session.run(feeds);
    session.endProfiling();
  } finally {
    await session.release();
  }
  const file = readdirSync(dir).find((f) => join(dir, f).startsWith(prefix) && f.endsWith('.json'));
  if (!file) throw new Error(`onnxruntime wrote no profile under ${prefix}`);
  return nodeTimes(JSON.parse(readFileSync(join(dir, file), 'utf8')) as ProfileEvent[]);
}

function kindTable(times: Map<string, { op: string; ms: number }>): Map<string, number> {
  const kinds = new Map<string, number>();
  for (const [name, t] of times) kinds.set(nodeKind(t.op, name), (kinds.get(nodeKind(t.op, name)) ?? 0) + t.ms);
  return kinds;
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { int8: { type: 'string', default: INT8_MODELS.join(',') }, batch: { type: 'string', default: '10' }, runs: { type: 'string', default: '3' }, threads: { type: 'string', default: '2' }, top: { type: 'string', default: '8' } } });
  const [batch, runs, threads, top] = [values.batch, values.runs, values.threads, values.top].map(Number) as [number, number, number, number];
  for (const [k, v] of Object.entries({ batch, runs, threads, top })) if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer, got '${String(v)}'`);
  const models = values.int8.split(',');
  const bad = models.find((m) => !(INT8_MODELS as readonly string[]).includes(m));
  if (bad !== undefined) throw new Error(`--int8 takes a comma list of ${INT8_MODELS.join(', ')}; got '${bad}'`);
  const dir = mkdtempSync(join(tmpdir(), 'sightline-profile-'));
  try {
    console.log(`onnxruntime session profiles at batch ${batch}, ${threads} threads, median of ${runs} runs per node; load average ${loadavg()[0]?.toFixed(2)}`);
    for (const which of models as Int8Model[]) {
      const fp32 = fp32Model(which, dir);
      if (!fp32) continue;
      const int8 = await quantizeFile(fp32, join(dir, `${which}-int8.onnx`), threads);
      const [a, b] = [await profile(fp32, dir, batch, runs, threads), await profile(int8, dir, batch, runs, threads)];
      const [ka, kb] = [kindTable(a), kindTable(b)];
      const total = (m: Map<string, number>): number => [...m.values()].reduce((x, y) => x + y, 0);
      console.log(`\n${which}: ms per run by kind of node (sum of node medians)`);
      console.log(`| kind | fp32 ms | int8 ms |\n|---|---:|---:|`);
      for (const k of [...new Set([...ka.keys(), ...kb.keys()])].sort((x, y) => (ka.get(y) ?? 0) - (ka.get(x) ?? 0))) {
        console.log(`| ${k} | ${(ka.get(k) ?? 0).toFixed(1)} | ${(kb.get(k) ?? 0).toFixed(1)} |`);
      }
      console.log(`| total | ${total(ka).toFixed(1)} | ${total(kb).toFixed(1)} |`);
      for (const [label, t] of [['fp32', a], ['int8', b]] as const) {
        const slow = [...t].sort((x, y) => y[1].ms - x[1].ms).slice(0, top);
        console.log(`${label} slowest: ${slow.map(([n, v]) => `${n} (${v.op}) ${v.ms.toFixed(1)}`).join(', ')}`);
      }
      rmSync(int8, { force: true });
      if (which !== 'bundled') rmSync(fp32, { force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
