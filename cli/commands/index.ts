/** Registry of sub-commands. Each module exports `register(program)`; add one line per command. */
import type { Command } from 'commander';

export type Register = (program: Command) => void;

export const commands: Register[] = [];
commands.push((await import('./classify.js')).register, (await import('./embed.js')).register);
commands.push((await import('./export.js')).register, (await import('./import.js')).register);
commands.push((await import('./stats.js')).register, (await import('./duplicates.js')).register, (await import('./reindex.js')).register);
commands.push((await import('./train.js')).register);
commands.push((await import('./serve.js')).register, (await import('./index-dir.js')).register, (await import('./search.js')).register);
commands.push((await import('./train-codes.js')).register, (await import('./eval.js')).register);
commands.push((await import('./models.js')).register);
