/**
 * Whether onnxruntime computes a quantized model's int8 products exactly on this CPU. Its x86 u8×s8
 * kernels use VNNI (VPDPBUSD, 32-bit sums) when the CPU has it, and otherwise VPMADDUBSW, which adds
 * pairs of u8×s8 products in 16 bits with saturation: weights over ±63 can overflow it
 * (onnx/quantize-math.ts). `sightline quantize` writes 7-bit weights by default; a file with 8-bit
 * weights (`--weight-bits 8`, or any int8 file made before the choice existed) is served with a
 * warning on a CPU without VNNI, since its scores may be far from the fp32 model's.
 */
import { readFileSync } from 'node:fs';
import type { ModelContract } from './contract.js';

/** CPU feature flags that give onnxruntime's int8 kernels 32-bit sums. */
const VNNI_FLAGS = ['avx512_vnni', 'avx_vnni', 'amx_int8'];

/** The `flags` of /proc/cpuinfo's first processor; undefined where it cannot be read (not Linux, not x86). */
export function readCpuFlags(cpuinfo = '/proc/cpuinfo'): ReadonlySet<string> | undefined {
  let text: string;
  try {
    text = readFileSync(cpuinfo, 'utf8');
  } catch {
    return undefined;
  }
  const line = /^flags\s*:(.*)$/m.exec(text);
  return line ? new Set((line[1] ?? '').trim().split(/\s+/)) : undefined;
}

/**
 * The warning to log for `contract` on a CPU with `flags`, or undefined when there is nothing to
 * warn about: a float model, 7-bit weights, a CPU with VNNI, or a CPU this was not seen on (flags
 * unknown, as off x86 Linux, or no AVX2: other kernels, not measured here).
 */
export function int8SaturationWarning(contract: ModelContract, flags: ReadonlySet<string> | undefined): string | undefined {
  const q = contract.quantization;
  if (!q || q.weightBits <= 7 || !flags || !flags.has('avx2')) return undefined;
  if (VNNI_FLAGS.some((f) => flags.has(f))) return undefined;
  return (
    `model '${contract.name}' has 8-bit int8 weights and this CPU has no VNNI (${VNNI_FLAGS.join(', ')} absent): ` +
    `onnxruntime's int8 products can saturate here and its scores may be far from the fp32 model's; ` +
    `re-quantize its fp32 original with \`sightline quantize\` (7-bit weights, the default)`
  );
}
