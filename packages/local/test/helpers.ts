// Shared by the local runtime's integration tests: paths of the CLI and the fixture apps,
// polling, HTTP requests, and manifests of tiny Deployments.
import { request } from 'node:http';
import { join } from 'node:path';
import type { KubeObject } from '@trellis/api';

export const TRELLIS_BIN = join(import.meta.dirname, '..', '..', '..', 'cli', 'bin', 'trellis.js');
const FIXTURES = join(import.meta.dirname, '..', '..', 'test', 'fixtures');
export const HTTP_APP = join(FIXTURES, 'http-app.mjs');
export const CRASH_APP = join(FIXTURES, 'crash-app.mjs');
export const JOB_APP = join(FIXTURES, 'job-app.mjs');

export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** GET; `proxy` sends an absolute-form request to an HTTP proxy. */
export function get(
  url: string,
  proxyPort?: number,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      proxyPort !== undefined
        ? {
            host: '127.0.0.1',
            port: proxyPort,
            path: u.href,
            headers: { host: u.host, ...headers },
            agent: false,
          }
        : { host: u.hostname, port: u.port, path: u.pathname + u.search, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export function deployment(
  name: string,
  namespace: string,
  opts: {
    replicas?: number;
    command: string[];
    port?: number;
    env?: Record<string, string>;
    labels?: Record<string, string>;
  },
): KubeObject {
  const labels = { app: name, ...(opts.labels ?? {}) };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas: opts.replicas ?? 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: 2,
          containers: [
            {
              name,
              image: `example/${name}`,
              command: opts.command,
              env: [
                { name: 'APP_NAME', value: name },
                { name: 'MY_POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                ...Object.entries(opts.env ?? {}).map(([k, v]) => ({ name: k, value: v })),
              ],
              ...(opts.port ? { ports: [{ name: 'http', containerPort: opts.port }] } : {}),
            },
          ],
        },
      },
    },
  };
}

export function service(name: string, namespace: string, port: number): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { selector: { app: name }, ports: [{ name: 'http', port, targetPort: port }] },
  };
}

/** A Pod as a user applies it (`kind: Pod`): one container running `command`. */
export function pod(
  name: string,
  namespace: string,
  opts: {
    command: string[];
    restartPolicy?: 'Always' | 'OnFailure' | 'Never';
    labels?: Record<string, string>;
  },
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: name, ...(opts.labels ?? {}) } },
    spec: {
      ...(opts.restartPolicy ? { restartPolicy: opts.restartPolicy } : {}),
      terminationGracePeriodSeconds: 2,
      containers: [{ name, image: `example/${name}`, command: opts.command }],
    },
  };
}

/** Whether a process with this pid exists. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
