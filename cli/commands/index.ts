/** Registry of sub-commands. Each module exports `register(program)`; add one line per command. */
import type { Command } from 'commander';

export type Register = (program: Command) => void;

export const commands: Register[] = [];
