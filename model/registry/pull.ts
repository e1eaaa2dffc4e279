/**
 * `pull`: download (or copy from a mirror or a local file) a registry model, verify it, import it
 * once and cache the imported model; and the lookups that turn a name into a model path.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importOnnxDetailed } from '../onnx/import.js';
import { codesPathFor, importedPath, metaPath, modelDir, packageDir, registryLabels, sourcePath } from './cache.js';
import type { Progress } from './download.js';
import { ChecksumFailure, DownloadFailure, downloadVerified } from './download.js';
import type { RegistryEntry } from './entries.js';
import { findEntry, looksLikeModelName, REGISTRY } from './entries.js';
import { RegistryError } from './errors.js';

export interface PullOptions {
  home: string;
  /** SIGHTLINE_MODEL_MIRROR: a base URL or a folder holding the files under their own names. */
  mirror?: string;
  /** A copy of the file fetched elsewhere (`--from FILE`). */
  from?: string;
  /** Import again even if an imported model is cached. */
  force?: boolean;
  onProgress?: (p: Progress) => void;
  /** One line per step, for the terminal. */
  log?: (line: string) => void;
  entries?: readonly RegistryEntry[];
  attempts?: number;
  idleTimeoutMs?: number;
}

export interface PulledModel {
  entry: RegistryEntry;
  path: string;
  /** False when the cached import was reused. */
  fetched: boolean;
}

export function requireEntry(name: string, entries: readonly RegistryEntry[] = REGISTRY): RegistryEntry {
  const entry = findEntry(name, entries);
  if (!entry) throw new RegistryError('registry_unknown_model', `no model named '${name}' in the registry; known: ${entries.map((e) => e.name).join(', ')}`);
  return entry;
}

/** Where an entry's usable model is: the packaged file, or the imported copy in the cache. */
export function entryModelPath(entry: RegistryEntry, home: string): string {
  return entry.bundledPath ? join(packageDir(), entry.bundledPath) : importedPath(home, entry.name);
}

export function isPulled(entry: RegistryEntry, home: string): boolean {
  return existsSync(entryModelPath(entry, home));
}

/** The URL (or file) a pull reads from: the mirror when one is set, else the registry URL. */
export function fetchSource(entry: RegistryEntry, mirror: string | undefined): string {
  if (!mirror) return entry.url ?? '';
  if (/^https?:\/\//i.test(mirror)) return `${mirror.replace(/\/+$/, '')}/${encodeURIComponent(entry.file)}`;
  const dir = mirror.startsWith('file:') ? fileURLToPath(mirror) : resolve(mirror);
  return join(dir, entry.file);
}

function waysOut(entry: RegistryEntry): string {
  return `either set SIGHTLINE_MODEL_MIRROR to a URL or folder that holds ${entry.file}, or download ${entry.url ?? entry.file} elsewhere and run: sightline models pull ${entry.name} --from FILE`;
}

async function fetchFile(entry: RegistryEntry, opts: PullOptions): Promise<string> {
  const dest = sourcePath(opts.home, entry);
  const from = opts.from === undefined ? undefined : resolve(opts.from);
  const source = from ?? fetchSource(entry, opts.mirror);
  if (existsSync(dest) && from === undefined) return source;
  opts.log?.(`${from ? 'copying' : 'downloading'} ${entry.name} from ${source} (${entry.size} bytes)`);
  try {
    await downloadVerified({ source, dest, size: entry.size, sha256: entry.sha256, onProgress: opts.onProgress, attempts: opts.attempts, idleTimeoutMs: opts.idleTimeoutMs });
  } catch (err) {
    if (err instanceof ChecksumFailure && from) {
      throw new RegistryError('registry_checksum_mismatch', `'${from}' is not the registry's ${entry.file}: ${err.message.replace('the downloaded file', 'its copy')} (your file was left as it is)`);
    }
    if (err instanceof ChecksumFailure) throw new RegistryError('registry_checksum_mismatch', `${entry.name} from ${source}: ${err.message}; ${waysOut(entry)}`);
    if (err instanceof DownloadFailure && from) throw new RegistryError('registry_download_failed', `--from: ${err.message}`);
    if (err instanceof DownloadFailure) throw new RegistryError('registry_download_failed', `cannot download ${entry.name} from ${source}: ${err.message}; ${waysOut(entry)}`);
    throw err;
  }
  return source;
}

function writeAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Downloads, verifies and imports `name` unless its imported model is already cached. */
export async function pullModel(name: string, opts: PullOptions): Promise<PulledModel> {
  const entry = requireEntry(name, opts.entries);
  if (entry.bundledPath) {
    if (opts.from) throw new RegistryError('registry_unknown_model', `'${name}' is bundled with Sightline; --from applies to downloadable models only`);
    return { entry, path: entryModelPath(entry, opts.home), fetched: false };
  }
  const model = importedPath(opts.home, name);
  if (existsSync(model) && !opts.force && !opts.from) return { entry, path: model, fetched: false };
  mkdirSync(modelDir(opts.home, name), { recursive: true });
  const source = await fetchFile(entry, opts);
  const labels = registryLabels(entry);
  if (!labels || entry.preset === 'bundled') throw new RegistryError('registry_unknown_model', `registry entry '${name}' has no labels or import preset`);
  opts.log?.(`importing ${entry.file} (preset ${entry.preset}, ${labels.length} labels)`);
  const result = importOnnxDetailed(readFileSync(sourcePath(opts.home, entry)), { preset: entry.preset, labels, name: entry.name, modelVersion: entry.sha256.slice(0, 12) });
  const meta = { name, file: entry.file, sha256: entry.sha256, size: entry.size, source, pulledAt: new Date().toISOString(), importChanges: result.changes };
  writeAtomic(metaPath(opts.home, name), `${JSON.stringify(meta, null, 2)}\n`);
  writeAtomic(model, result.bytes);
  return { entry, path: model, fetched: true };
}

export function removeModel(name: string, home: string, entries?: readonly RegistryEntry[]): boolean {
  const entry = requireEntry(name, entries);
  if (entry.bundledPath) throw new RegistryError('registry_unknown_model', `'${name}' is bundled with Sightline and cannot be removed`);
  const dir = modelDir(home, name);
  if (!existsSync(dir)) return false;
  rmSync(dir, { recursive: true, force: true });
  return true;
}

/**
 * What `--model VALUE` / SIGHTLINE_MODEL means: a registry name resolves to its model (an error
 * with the pull command when it is not pulled yet); anything else is a file path.
 */
export function resolveModelArg(value: string, home: string, entries: readonly RegistryEntry[] = REGISTRY): string {
  const entry = findEntry(value, entries);
  if (entry) {
    const path = entryModelPath(entry, home);
    if (!existsSync(path)) {
      throw new RegistryError('registry_not_pulled', `model '${value}' is not pulled yet: run 'sightline models pull ${value}' (or add --pull)`);
    }
    return path;
  }
  const path = resolve(value);
  if (looksLikeModelName(value) && !isAbsolute(value) && !(existsSync(path) && statSync(path).isFile())) {
    throw new RegistryError('registry_unknown_model', `'${value}' is neither a model file nor a registry name; known names: ${entries.map((e) => e.name).join(', ')}`);
  }
  return path;
}

/** The codes model made at pull time for a downloaded registry model, when `value` names one and it exists. */
export function registryCodesPath(value: string, home: string, entries: readonly RegistryEntry[] = REGISTRY): string | undefined {
  const entry = findEntry(value, entries);
  if (!entry || entry.bundledPath) return undefined;
  const path = codesPathFor(home, entry.name);
  return existsSync(path) ? path : undefined;
}
