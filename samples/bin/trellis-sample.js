#!/usr/bin/env node
// Entry point of the `trellis-sample` command: runs one of the compiled sample applications.
import { main } from '../dist/src/main.js';

const code = await main(process.argv.slice(2));
if (code !== undefined) process.exitCode = code;
