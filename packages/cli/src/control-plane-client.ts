// Reads the control plane's monitoring endpoint (15014) for proxy-status and proxy-config.
import { request } from 'node:http';
import { TrellisError } from '@trellis/core';
import type { FlagSpec, ParsedArgs } from './args.js';
import { flagString } from './args.js';
import type { Io } from './io.js';

export const CONTROL_PLANE_FLAG: FlagSpec = {
  name: 'control-plane',
  type: 'string',
  value: 'HOST:PORT',
  help: 'the control plane monitoring address (default $TRELLIS_CONTROL_PLANE, else 127.0.0.1:15014)',
};

export function controlPlaneAddress(args: ParsedArgs, io: Io): string {
  return flagString(args, 'control-plane') ?? io.env.TRELLIS_CONTROL_PLANE ?? '127.0.0.1:15014';
}

/** GETs a JSON page; errors say what could not be reached and what to do. */
export function getJson(
  address: string,
  path: string,
  timeoutMs = 5_000,
): Promise<{ status: number; body: unknown }> {
  const url = new URL(`http://${address}${path}`);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        } catch {
          reject(
            new TrellisError(
              'TRELLIS_BAD_RESPONSE',
              `${url.href} answered ${res.statusCode} with non-JSON: ${text.slice(0, 200)}`,
            ),
          );
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ECONNREFUSED' ? 'connection refused' : e.message;
      reject(
        new TrellisError(
          'TRELLIS_UNREACHABLE',
          `cannot reach the control plane at ${address}: ${why} (is 'trellis control-plane' running? set --control-plane or TRELLIS_CONTROL_PLANE)`,
        ),
      );
    });
    req.end();
  });
}
