/**
 * Out-of-distribution calibration kept beside a model file as `<model>.ood.json`, so that fitting
 * it never rewrites a large model (the bundled model is 47 MB in git, imported ones 244 MB). The
 * sidecar names the SHA-256 of the model it was fitted for; a sidecar of another model is ignored.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import type { ModelContract } from './contract.js';
import { ContractError } from './contract.js';
import { sha256File } from './hash.js';
import { DEFAULT_OOD, oodSchema } from './ood.js';
import type { OodContract } from './ood.js';

const sidecarSchema = z.object({ modelSha256: z.string().regex(/^[0-9a-f]{64}$/), ood: oodSchema });

export function oodSidecarPath(modelPath: string): string {
  return `${modelPath.replace(/\.onnx$/i, '')}.ood.json`;
}

export async function writeOodSidecar(modelPath: string, ood: OodContract): Promise<string> {
  const path = oodSidecarPath(modelPath);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ modelSha256: await sha256File(modelPath), ood })}\n`);
  renameSync(tmp, path);
  return path;
}

/** The contract with its `ood`: the file's own, else a matching sidecar's, else the default. */
export async function withOod(contract: ModelContract, modelPath: string, warn?: (msg: string) => void): Promise<ModelContract> {
  if (contract.ood) return contract;
  const path = oodSidecarPath(modelPath);
  let ood: OodContract = DEFAULT_OOD;
  if (existsSync(path)) {
    let parsed;
    try {
      parsed = sidecarSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    } catch (err) {
      throw new ContractError(`'${path}' is not valid JSON (${(err as Error).message})`);
    }
    if (!parsed.success) throw new ContractError(`'${path}': field '${parsed.error.issues[0]?.path.join('.') ?? '?'}' ${parsed.error.issues[0]?.message ?? 'is invalid'}`);
    if (parsed.data.modelSha256 === (await sha256File(modelPath))) ood = parsed.data.ood;
    else warn?.(`'${path}' was fitted for another model file (SHA-256 ${parsed.data.modelSha256.slice(0, 12)}…); using the default unknown-image threshold`);
  }
  return Object.freeze({ ...contract, ood });
}
