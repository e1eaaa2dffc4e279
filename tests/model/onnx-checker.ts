/**
 * Test helpers for the ONNX tests: the reference checker (python3-onnx through /usr/bin/python3,
 * deliberately not whatever `python3` is first on PATH) and the error metric the parity tests use.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

export const PYTHON = '/usr/bin/python3';

// One interpreter for all models (startup + numpy import is most of a small model's check time);
// check_model(path) lets the C++ checker read the file itself instead of re-serializing it.
const CHECK_SCRIPT = [
  'import json, sys, onnx',
  'for path in sys.argv[1:]:',
  '    try:',
  '        onnx.checker.check_model(path, full_check=True)',
  '        print(json.dumps({"path": path, "ok": True, "msg": "ok"}))',
  '    except Exception as e:',
  '        print(json.dumps({"path": path, "ok": False, "msg": f"{type(e).__name__}: {e}"}))',
].join('\n');

/** Why the checker cannot run here (a skip reason naming the package), or false when it can. */
export function checkerMissing(): string | false {
  const res = spawnSync(PYTHON, ['-c', 'import onnx'], { encoding: 'utf8', timeout: 60_000 });
  return res.status === 0 ? false : `${PYTHON} cannot import onnx (Debian package: python3-onnx)`;
}

export interface CheckResult {
  ok: boolean;
  /** The checker's verdict, or why it could not run (e.g. python3-onnx missing), for the assertion message. */
  output: string;
}

/** Runs onnx.checker.check_model(full_check=True) on each model; a missing python3-onnx fails every one. */
export function checkModels(models: readonly Uint8Array[]): CheckResult[] {
  const dir = mkdtempSync(join(tmpdir(), 'sightline-onnx-check-'));
  try {
    const files = models.map((bytes, i) => {
      const file = join(dir, `model-${i}.onnx`);
      writeFileSync(file, bytes);
      return file;
    });
    const res = spawnSync(PYTHON, ['-c', CHECK_SCRIPT, ...files], { encoding: 'utf8', timeout: 120_000 });
    const verdicts = new Map<string, CheckResult>();
    for (const line of (res.stdout ?? '').split('\n')) {
      if (!line.startsWith('{')) continue;
      const v = JSON.parse(line) as { path: string; ok: boolean; msg: string };
      verdicts.set(v.path, { ok: v.ok, output: v.msg });
    }
    const failure = `checker did not run (${PYTHON} exit ${res.status}): ${res.stderr ?? ''}${res.error ? String(res.error) : ''}`;
    return files.map((f) => verdicts.get(f) ?? { ok: false, output: failure });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Relative error used throughout: max|a − b| / max(max|b|, 1e-6), i.e. the worst absolute
 * difference scaled by the reference's largest magnitude (element-wise ratios blow up near zero).
 */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? NaN;
    const y = b[i] ?? NaN;
    diff = Math.max(diff, Math.abs(x - y));
    scale = Math.max(scale, Math.abs(y));
    if (Number.isNaN(x) || Number.isNaN(y)) return Infinity;
  }
  return diff / Math.max(scale, 1e-6);
}

/** Runs a model once in onnxruntime-node and returns the requested outputs as Float32Arrays. */
export async function runOrt(bytes: Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>, outputs: readonly string[]): Promise<Record<string, Float32Array>> {
  // Severity 3 = errors only: the graphs under test trigger expected warnings (e.g. old-IR weight inputs).
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    const input: Record<string, ort.Tensor> = {};
    for (const [name, { data, dims }] of Object.entries(feeds)) input[name] = new ort.Tensor('float32', data, dims);
    const res = await session.run(input, [...outputs]);
    const out: Record<string, Float32Array> = {};
    for (const name of outputs) {
      const t = res[name];
      if (!t) throw new Error(`onnxruntime returned no '${name}'`);
      out[name] = t.data as Float32Array;
    }
    return out;
  } finally {
    await session.release();
  }
}
