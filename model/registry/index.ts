/** Named pretrained models: the registry, its cache folder, verified downloads and name lookup. */
export { REGISTRY, findEntry, looksLikeModelName } from './entries.js';
export type { RegistryEntry } from './entries.js';
export { sightlineHome, codesPathFor, modelDir, importedPath, sourcePath, metaPath, registryLabels } from './cache.js';
export { downloadVerified, partPath, DownloadFailure, ChecksumFailure } from './download.js';
export type { DownloadOptions, Progress } from './download.js';
export { pullModel, removeModel, resolveModelArg, registryCodesPath, requireEntry, entryModelPath, isPulled, fetchSource } from './pull.js';
export type { PullOptions, PulledModel } from './pull.js';
export { RegistryError } from './errors.js';
export type { RegistryErrorCode } from './errors.js';
