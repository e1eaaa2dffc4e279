/**
 * Which code the catalog uses: the configured codes model when it belongs to the served image
 * model, else the data-independent fallback (model/codes-fallback.ts), so that any model serves
 * search at once instead of refusing to start. The warning says how to get a trained code.
 */
import { existsSync } from 'node:fs';
import { sha256File, checkCodesFor, createCodesSession, fallbackCodes, fallbackCodesName, parseFallbackName, type CodesSession } from '../../model/index.js';

export interface ResolvedCodes {
  codes: CodesSession;
  /** What the catalog records: the codes model file's SHA-256, or the fallback's name. */
  codesHash: string;
}

/** What a caller is told when the fallback is chosen (the server logs it as a warning). */
export const FALLBACK_ADVICE =
  'no codes model for this image model: search uses the data-independent random-projection code; for better codes run `sightline train-codes --db DIR --out FILE` then `sightline reindex --codes FILE`';

/**
 * `recorded` is the code an existing catalog was made with (its meta), if any: a catalog made with
 * the fallback keeps it (same bits and seed) until `reindex --codes FILE` switches it over.
 */
export async function resolveCodes(
  codesPath: string,
  modelHash: string,
  embeddingDim: number,
  opts: { recorded?: string | undefined; onFallback?: (reason: string) => void } = {},
): Promise<ResolvedCodes> {
  const recorded = opts.recorded;
  const fallback = recorded === undefined ? undefined : parseFallbackName(recorded);
  if (fallback) return { codes: fallbackCodes(modelHash, embeddingDim, fallback.bits, fallback.seed), codesHash: recorded as string };
  let reason: string;
  if (existsSync(codesPath)) {
    const codes = await createCodesSession(codesPath);
    try {
      checkCodesFor(codes, modelHash, embeddingDim);
      return { codes, codesHash: await sha256File(codesPath) };
    } catch (err) {
      await codes.close();
      reason = (err as Error).message;
    }
  } else reason = `codes model '${codesPath}' does not exist`;
  opts.onFallback?.(reason);
  return { codes: fallbackCodes(modelHash, embeddingDim), codesHash: fallbackCodesName() };
}
