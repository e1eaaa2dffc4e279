/**
 * The models `sightline models` knows by name: where each file comes from, what it must hash to,
 * how it is imported and what it was published to score. A name resolves to a cached, imported
 * model (see cache.ts); the bundled model ships with the package and needs no download.
 */
import type { ImportPreset } from '../onnx/import.js';

export interface RegistryEntry {
  name: string;
  description: string;
  /** Where the original file is downloaded from; absent for a bundled model. */
  url?: string;
  /** The file's own name: a mirror holds it as `<mirror>/<file>`. */
  file: string;
  /** SHA-256 (hex) and size in bytes of the original file, checked before it is used. */
  sha256: string;
  size: number;
  license: string;
  /** Importer preset (preprocessing of the source framework); 'bundled' = already a Sightline model. */
  preset: ImportPreset | 'bundled';
  /** Class names: a label set shipped with the package, or those in the model's own contract. */
  labels: 'imagenet-1k' | 'contract';
  /** Published accuracy, as fractions, on `dataset`. */
  accuracy: { dataset: string; top1: number; top5?: number };
  /** Bundled models: the file inside the package. */
  bundledPath?: string;
}

const ZOO = 'https://github.com/onnx/models/raw/main/validated/vision/classification/alexnet/model';

export const REGISTRY: readonly RegistryEntry[] = Object.freeze([
  {
    name: 'alexnet-imagenet',
    description: "BVLC AlexNet from the ONNX model zoo: the paper's network (two-tower grouped conv2/4/5, LRN), 1,000 ImageNet classes",
    url: `${ZOO}/bvlcalexnet-12.onnx`,
    file: 'bvlcalexnet-12.onnx',
    sha256: '6b0da9510f27f234ee96a85dc3809dd210150fdefad87f6850f9788513216945',
    size: 243_863_787,
    license: 'BSD-3-Clause',
    preset: 'caffe',
    labels: 'imagenet-1k',
    accuracy: { dataset: 'ImageNet ILSVRC2012 validation', top1: 0.548, top5: 0.7823 },
  },
  {
    name: 'alexnet-imagenet-int8',
    description: 'the same BVLC AlexNet quantized to int8 by the ONNX model zoo (a quarter of the size)',
    url: `${ZOO}/bvlcalexnet-12-int8.onnx`,
    file: 'bvlcalexnet-12-int8.onnx',
    sha256: 'd53bbedf100be79277cf55d78c72bdcb67d88786988561bf5d530f038e443c7b',
    size: 60_984_008,
    license: 'BSD-3-Clause',
    preset: 'caffe',
    labels: 'imagenet-1k',
    accuracy: { dataset: 'ImageNet ILSVRC2012 validation', top1: 0.5468, top5: 0.7823 },
  },
  {
    name: 'sightline-fmnist',
    description: 'the bundled model: small AlexNet trained by Sightline on Fashion-MNIST (10 kinds of clothing, grayscale)',
    file: 'sightline-fmnist.onnx',
    sha256: '',
    size: 0,
    license: 'MIT',
    preset: 'bundled',
    labels: 'contract',
    accuracy: { dataset: 'Fashion-MNIST test (10 crops)', top1: 0.921 },
    bundledPath: 'model/default/sightline-fmnist.onnx',
  },
]);

/** Registry names are lowercase words joined by hyphens; anything else given as a model is a path. */
export function looksLikeModelName(value: string): boolean {
  return /^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(value);
}

export function findEntry(name: string, entries: readonly RegistryEntry[] = REGISTRY): RegistryEntry | undefined {
  return entries.find((e) => e.name === name);
}
