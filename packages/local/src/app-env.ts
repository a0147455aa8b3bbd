// The environment of an app process: the container's `env` (plain values and the fieldRefs a
// local pod can answer), the pod's identity (POD_NAME, POD_NAMESPACE, POD_IP, HOST,
// SERVICE_ACCOUNT), its ports (PORT, TRELLIS_PORT_<containerPort>), the capture variables of an
// injected pod, and PATH with `<trellis root>/node_modules/.bin` first.
import { delimiter } from 'node:path';
import type { Container } from '@trellis/api';

export interface AppEnvInput {
  readonly container: Container;
  readonly podName: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** status.podIP (default 127.0.0.1). */
  readonly podIP?: string;
  /** status.hostIP (default 127.0.0.1). */
  readonly hostIP?: string;
  /** The address the app binds, HOST (default 127.0.0.1; 0.0.0.0 in a pod network of its own). */
  readonly bindHost?: string;
  /** containerPort -> the port the app listens on. */
  readonly actualPorts: ReadonlyMap<number, number>;
  /** Capture variables (HTTP_PROXY ...), injected pods only. */
  readonly captureEnv: Readonly<Record<string, string>>;
  /** The runtime's own environment (PATH, HOME, ...). */
  readonly baseEnv: Readonly<Record<string, string | undefined>>;
  /** Prepended to PATH (`<trellis root>/node_modules/.bin`). */
  readonly binDirs: readonly string[];
}

const LABEL_REF = /^metadata\.labels\['([^']+)'\]$/;
const ANNOTATION_REF = /^metadata\.annotations\['([^']+)'\]$/;

/** The value of a `fieldRef`; an Error for a field a local pod does not have. */
export function fieldRefValue(fieldPath: string, input: AppEnvInput): string | Error {
  switch (fieldPath) {
    case 'metadata.name':
      return input.podName;
    case 'metadata.namespace':
      return input.namespace;
    case 'status.podIP':
    case 'status.podIPs':
      return input.podIP ?? '127.0.0.1';
    case 'status.hostIP':
    case 'status.hostIPs':
      return input.hostIP ?? '127.0.0.1';
    case 'spec.serviceAccountName':
      return input.serviceAccount;
    case 'spec.nodeName':
      return 'local';
  }
  const label = LABEL_REF.exec(fieldPath);
  if (label) return input.labels[label[1]!] ?? '';
  const annotation = ANNOTATION_REF.exec(fieldPath);
  if (annotation) return input.annotations[annotation[1]!] ?? '';
  return new Error(`env fieldRef ${JSON.stringify(fieldPath)} is not supported in local mode`);
}

/** Builds the environment; `warnings` lists env entries that could not be resolved. */
export function appEnv(input: AppEnvInput): { env: Record<string, string>; warnings: string[] } {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.baseEnv)) if (v !== undefined) env[k] = v;
  // The runtime's own proxy settings must not leak into the apps.
  for (const k of [
    'HTTP_PROXY',
    'http_proxy',
    'HTTPS_PROXY',
    'https_proxy',
    'grpc_proxy',
    'NO_PROXY',
    'no_proxy',
    'ALL_PROXY',
    'all_proxy',
  ])
    delete env[k];
  env.PATH = [...input.binDirs, env.PATH ?? ''].filter((p) => p !== '').join(delimiter);
  env.POD_NAME = input.podName;
  env.POD_NAMESPACE = input.namespace;
  env.POD_IP = input.podIP ?? '127.0.0.1';
  env.HOST = input.bindHost ?? '127.0.0.1';
  env.SERVICE_ACCOUNT = input.serviceAccount;
  const ports = input.container.ports ?? [];
  const first = ports[0];
  if (first) env.PORT = String(input.actualPorts.get(first.containerPort) ?? first.containerPort);
  for (const p of ports)
    env[`TRELLIS_PORT_${p.containerPort}`] = String(
      input.actualPorts.get(p.containerPort) ?? p.containerPort,
    );
  Object.assign(env, input.captureEnv);
  const warnings: string[] = [];
  for (const e of input.container.env ?? []) {
    if (e.valueFrom?.fieldRef) {
      const v = fieldRefValue(e.valueFrom.fieldRef.fieldPath, input);
      if (v instanceof Error) warnings.push(`env ${e.name}: ${v.message}`);
      else env[e.name] = v;
    } else if (e.valueFrom) {
      warnings.push(`env ${e.name}: only value and valueFrom.fieldRef are supported in local mode`);
    } else env[e.name] = expand(e.value ?? '', env);
  }
  return { env, warnings };
}

/** Kubernetes' `$(VAR)` expansion of env values and args (`$$` escapes). */
export function expand(s: string, env: Readonly<Record<string, string>>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) =>
    m === '$$' ? '$' : name !== undefined && env[name] !== undefined ? env[name] : m,
  );
}
