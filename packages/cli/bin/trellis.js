#!/usr/bin/env node
// Entry point of the `trellis` command: runs the compiled CLI.
import { main } from '../dist/src/main.js';

process.exitCode = await main(process.argv.slice(2));
