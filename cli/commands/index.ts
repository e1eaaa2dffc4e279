/**
 * Registry of sub-commands. A command's module, and what it imports (onnxruntime, sharp, express,
 * tfjs for training), loads only when that command runs: `sightline --help` reads this table, and
 * `serve` never loads training code. Each module exports `register(program)`; add one entry per command.
 */
import type { Command } from 'commander';

export interface CommandEntry {
  name: string;
  /** Arguments as the module declares them, for the command list of `sightline --help`. */
  args: string;
  /** One line for the command list; the module's own `.description()` is the full text. */
  summary: string;
  load(): Promise<{ register(program: Command): void }>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'classify', args: '<images...>', summary: "classify images, files or folders (top-k labels, softmax averaged over the paper's 10 crops)", load: () => import('./classify.js') },
  { name: 'embed', args: '<images...>', summary: 'print the fc7 embedding of images (files or folders) and their L2 norm', load: () => import('./embed.js') },
  { name: 'export', args: '', summary: 'write an AlexNet with freshly initialized weights as ONNX', load: () => import('./export.js') },
  { name: 'quantize', args: '<model>', summary: 'int8 quantization (QDQ) calibrated on real images, for faster CPU inference', load: () => import('./quantize.js') },
  { name: 'import', args: '<src>', summary: 'wrap a torchvision or Caffe AlexNet ONNX into a Sightline model', load: () => import('./import.js') },
  { name: 'stats', args: '', summary: 'number of images, HNSW index size, model hash and code length of an index', load: () => import('./stats.js') },
  { name: 'duplicates', args: '', summary: 'list groups of near-duplicate images', load: () => import('./duplicates.js') },
  { name: 'reindex', args: '', summary: 'rebuild the HNSW graph from SQLite, or re-embed every image with another model', load: () => import('./reindex.js') },
  { name: 'train', args: '', summary: 'train an AlexNet preset with TensorFlow.js and export ONNX', load: () => import('./train.js') },
  { name: 'serve', args: '', summary: 'start the HTTP server (/v1, /v2 Open Inference Protocol, /metrics, web page)', load: () => import('./serve.js') },
  { name: 'migrate', args: '', summary: 'copy a catalog between a SQLite folder and PostgreSQL, either way (resumable)', load: () => import('./migrate.js') },
  { name: 'index', args: '<dir>', summary: 'index the images of a folder into the local database', load: () => import('./index-dir.js') },
  { name: 'search', args: '<images...>', summary: 'find the indexed images most similar to an image', load: () => import('./search.js') },
  { name: 'train-codes', args: '', summary: 'train the autoencoder that turns embeddings into binary codes', load: () => import('./train-codes.js') },
  { name: 'eval', args: '', summary: 'measure a model: classification accuracy or retrieval quality', load: () => import('./eval.js') },
  { name: 'models', args: '', summary: 'pretrained models by name: list, pull, path, rm', load: () => import('./models.js') },
  { name: 'calibrate', args: '', summary: "fit when a classification is 'unknown' (out of distribution) for a model", load: () => import('./calibrate.js') },
];

/** The command a command line runs (`sightline help X` asks for X's help): the only module to load. */
export function commandNamed(argv: readonly string[]): string | undefined {
  const words = argv.filter((a) => !a.startsWith('-'));
  return words[0] === 'help' ? words[1] : words[0];
}

/**
 * Registers the command `argv` names from its module, and every other one as a name and a summary
 * only (enough for the help list and for commander's "unknown command, did you mean" message).
 */
export async function registerCommands(program: Command, argv: readonly string[]): Promise<void> {
  const wanted = commandNamed(argv);
  for (const entry of COMMANDS) {
    if (entry.name === wanted) (await entry.load()).register(program);
    else {
      const cmd = program.command(entry.name).description(entry.summary);
      if (entry.args) cmd.arguments(entry.args);
    }
  }
}
