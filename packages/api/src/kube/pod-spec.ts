// The Kubernetes PodSpec, shared by Pod and Deployment templates: containers (name, image, command,
// ports, env, probes, resources), volumes and the pod-level fields the local runtime reads.
// Unknown fields are kept everywhere. Semantics follow Kubernetes' own validation (k8s.io/kubernetes
// pkg/apis/core/validation), with messages in Trellis' style.
import {
  checkCidrOrIp,
  checkDns1123Label,
  checkDns1123Subdomain,
  checkIanaSvcName,
  checkQualifiedName,
} from '../validation/checks.js';
import type { ValidationContext } from '../validation/problem.js';
import {
  bool,
  enumOf,
  int,
  int64,
  intOrString,
  list,
  map,
  obj,
  req,
  str,
  type ObjectOf,
} from '../validation/schema.js';
import { parseQuantity, quantity } from './quantity.js';

const keep = { unknownFields: 'keep' } as const;

export const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
/** core/v1 Protocol */
export type Protocol = (typeof PROTOCOLS)[number];

/** A port given as a number (1..65535) or as the name of a container port. */
export function checkPortNumberOrName(p: number | string, ctx: ValidationContext): void {
  if (typeof p === 'number') {
    if (p < 1 || p > 65535) ctx.error(`must be between 1 and 65535, not ${p}`);
  } else checkIanaSvcName(p, ctx);
}

// ---------- ports, env ----------

const containerPortFields = {
  containerPort: req(int({ min: 1, max: 65535 })),
  hostPort: int({ min: 0, max: 65535 }),
  name: str({ check: (n, ctx) => checkIanaSvcName(n, ctx) }),
  protocol: enumOf(PROTOCOLS),
  hostIP: str({ check: (ip, ctx) => checkCidrOrIp(ip, ctx) }),
};
/** core/v1 ContainerPort */
export type ContainerPort = ObjectOf<typeof containerPortFields>;

const keyRefFields = {
  name: str(),
  key: req(str({ nonEmpty: true })),
  optional: bool(),
};
const envVarSourceFields = {
  fieldRef: obj({ apiVersion: str(), fieldPath: req(str({ nonEmpty: true })) }, keep),
  resourceFieldRef: obj(
    { containerName: str(), resource: req(str({ nonEmpty: true })), divisor: quantity() },
    keep,
  ),
  configMapKeyRef: obj(keyRefFields, keep),
  secretKeyRef: obj(keyRefFields, keep),
};
/** core/v1 EnvVarSource: exactly one of fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef. */
export type EnvVarSource = ObjectOf<typeof envVarSourceFields>;
const envVarSource = obj(envVarSourceFields, {
  ...keep,
  oneOf: [
    { fields: ['fieldRef', 'resourceFieldRef', 'configMapKeyRef', 'secretKeyRef'], required: true },
  ],
});

function checkEnvName(name: string, ctx: ValidationContext): void {
  // Kubernetes accepts any printable ASCII character but '=' (relaxed environment variable names).
  if (!/^[\x20-\x3c\x3e-\x7e]+$/.test(name))
    ctx.error(
      `environment variable name ${JSON.stringify(name)} must be printable ASCII characters other than '='`,
    );
}

const envVarFields = {
  name: req(str({ nonEmpty: true, check: checkEnvName })),
  value: str(),
  valueFrom: envVarSource,
};
/** core/v1 EnvVar */
export type EnvVar = ObjectOf<typeof envVarFields>;
const envVar = obj(envVarFields, {
  ...keep,
  check: (e, ctx) => {
    if (e.value && e.valueFrom)
      ctx.field('valueFrom').error('must not be set when value is not empty');
  },
});

const envFromSourceFields = {
  prefix: str(),
  configMapRef: obj({ name: str(), optional: bool() }, keep),
  secretRef: obj({ name: str(), optional: bool() }, keep),
};
/** core/v1 EnvFromSource */
export type EnvFromSource = ObjectOf<typeof envFromSourceFields>;
const envFromSource = obj(envFromSourceFields, {
  ...keep,
  oneOf: [{ fields: ['configMapRef', 'secretRef'], required: true }],
});

// ---------- probes ----------

const httpGetFields = {
  path: str(),
  port: req(intOrString({ check: checkPortNumberOrName })),
  host: str(),
  scheme: enumOf(['HTTP', 'HTTPS'] as const),
  httpHeaders: list(obj({ name: req(str({ nonEmpty: true })), value: req(str()) }, keep)),
};
/** core/v1 HTTPGetAction */
export type HttpGetAction = ObjectOf<typeof httpGetFields>;

const probeFields = {
  exec: obj({ command: list(str()) }, keep),
  httpGet: obj(httpGetFields, keep),
  tcpSocket: obj({ port: req(intOrString({ check: checkPortNumberOrName })), host: str() }, keep),
  grpc: obj({ port: req(int({ min: 1, max: 65535 })), service: str() }, keep),
  initialDelaySeconds: int({ min: 0 }),
  timeoutSeconds: int({ min: 0 }),
  periodSeconds: int({ min: 0 }),
  successThreshold: int({ min: 0 }),
  failureThreshold: int({ min: 0 }),
  terminationGracePeriodSeconds: int64({ min: 1 }),
};
/** core/v1 Probe: one handler (exec, httpGet, tcpSocket or grpc) and its timing. */
export type Probe = ObjectOf<typeof probeFields>;
export const probe = obj(probeFields, {
  ...keep,
  oneOf: [{ fields: ['exec', 'httpGet', 'tcpSocket', 'grpc'], required: true }],
});

// ---------- resources ----------

const STANDARD_RESOURCES = ['cpu', 'memory', 'ephemeral-storage', 'storage'];

function checkResourceName(name: string, ctx: ValidationContext): void {
  if (STANDARD_RESOURCES.includes(name) || name.startsWith('hugepages-')) return;
  if (name.includes('/')) return checkQualifiedName(name, ctx, 'resource name');
  ctx.error(
    `resource name ${JSON.stringify(name)} must be cpu, memory, ephemeral-storage, hugepages-<size> or a domain-prefixed name such as example.com/gpu`,
  );
}

const resourceRequirementsFields = {
  limits: map(quantity(), { key: checkResourceName }),
  requests: map(quantity(), { key: checkResourceName }),
  claims: list(obj({ name: req(str({ nonEmpty: true })) }, keep)),
};
/** core/v1 ResourceRequirements: requests must not exceed limits. */
export type ResourceRequirements = ObjectOf<typeof resourceRequirementsFields>;
const resourceRequirements = obj(resourceRequirementsFields, {
  ...keep,
  check: (r, ctx) => {
    for (const [name, req] of Object.entries(r.requests ?? {})) {
      const limit = r.limits?.[name];
      if (limit === undefined) continue;
      const a = parseQuantity(req);
      const b = parseQuantity(limit);
      if (a !== undefined && b !== undefined && a > b)
        ctx
          .at('requests', name)
          .error(`must be at most the ${name} limit (${String(limit)}), not ${String(req)}`);
    }
  },
});

// ---------- containers ----------

const volumeMountFields = {
  name: req(str({ nonEmpty: true })),
  mountPath: req(str({ nonEmpty: true })),
  readOnly: bool(),
  subPath: str(),
};
/** core/v1 VolumeMount */
export type VolumeMount = ObjectOf<typeof volumeMountFields>;

const containerFields = {
  name: req(str({ check: (n, ctx) => checkDns1123Label(n, ctx, 'container name') })),
  image: req(str({ nonEmpty: true })),
  command: list(str()),
  args: list(str()),
  workingDir: str(),
  ports: list(obj(containerPortFields, keep)),
  env: list(envVar),
  envFrom: list(envFromSource),
  resources: resourceRequirements,
  readinessProbe: probe,
  livenessProbe: probe,
  startupProbe: probe,
  volumeMounts: list(obj(volumeMountFields, keep)),
  imagePullPolicy: enumOf(['Always', 'IfNotPresent', 'Never'] as const),
  restartPolicy: enumOf(['Always'] as const),
  terminationMessagePolicy: enumOf(['File', 'FallbackToLogsOnError'] as const),
};
/** core/v1 Container: the process Trellis' local runtime runs (its `command` and `args`). */
export type Container = ObjectOf<typeof containerFields>;
export const container = obj(containerFields, { ...keep, check: checkContainer });

function checkContainer(c: Container, ctx: ValidationContext): void {
  const names = new Map<string, number>();
  c.ports?.forEach((p, i) => {
    if (!p.name) return;
    const first = names.get(p.name);
    if (first !== undefined)
      ctx
        .at('ports', i, 'name')
        .error(`port name ${JSON.stringify(p.name)} is already used by ports[${first}]`);
    else names.set(p.name, i);
  });
  for (const field of ['livenessProbe', 'startupProbe'] as const) {
    const t = c[field]?.successThreshold;
    if (t !== undefined && t !== 1) ctx.at(field, 'successThreshold').error(`must be 1, not ${t}`);
  }
}

// ---------- pod spec ----------

const volumeFields = {
  name: req(str({ check: (n, ctx) => checkDns1123Label(n, ctx, 'volume name') })),
};
/** core/v1 Volume: only the name is read; the source is kept as written. */
export type Volume = ObjectOf<typeof volumeFields>;

const podSpecFields = {
  containers: req(list(container, { minItems: 1 })),
  initContainers: list(container),
  volumes: list(obj(volumeFields, keep)),
  restartPolicy: enumOf(['Always', 'OnFailure', 'Never'] as const),
  serviceAccountName: str({
    check: (n, ctx) => checkDns1123Subdomain(n, ctx, 'service account name'),
  }),
  serviceAccount: str(),
  automountServiceAccountToken: bool(),
  terminationGracePeriodSeconds: int64({ min: 0 }),
  activeDeadlineSeconds: int64({ min: 1 }),
  dnsPolicy: enumOf(['ClusterFirstWithHostNet', 'ClusterFirst', 'Default', 'None'] as const),
  nodeSelector: map(str()),
  hostNetwork: bool(),
  hostname: str({ check: (n, ctx) => checkDns1123Label(n, ctx, 'hostname') }),
  subdomain: str({ check: (n, ctx) => checkDns1123Label(n, ctx, 'subdomain') }),
  imagePullSecrets: list(obj({ name: str() }, keep)),
};
/** core/v1 PodSpec: the fields Trellis reads, with every other field kept. */
export type PodSpec = ObjectOf<typeof podSpecFields>;
export const podSpec = obj(podSpecFields, { ...keep, check: checkPodSpec });

function checkPodSpec(spec: PodSpec, ctx: ValidationContext): void {
  // Container names are unique across containers and init containers.
  const names = new Map<string, string>();
  for (const field of ['initContainers', 'containers'] as const) {
    spec[field]?.forEach((c, i) => {
      if (c.name === undefined) return;
      const first = names.get(c.name);
      if (first !== undefined)
        ctx
          .at(field, i, 'name')
          .error(`container name ${JSON.stringify(c.name)} is already used by ${first}`);
      else names.set(c.name, `${field}[${i}]`);
    });
  }
  const volumes = new Map<string, number>();
  spec.volumes?.forEach((v, i) => {
    if (v.name === undefined) return;
    const first = volumes.get(v.name);
    if (first !== undefined)
      ctx
        .at('volumes', i, 'name')
        .error(`volume name ${JSON.stringify(v.name)} is already used by volumes[${first}]`);
    else volumes.set(v.name, i);
  });
  for (const field of ['initContainers', 'containers'] as const) {
    spec[field]?.forEach((c, i) => {
      c.volumeMounts?.forEach((m, j) => {
        if (m.name && !volumes.has(m.name))
          ctx
            .at(field, i, 'volumeMounts', j, 'name')
            .error(`no volume named ${JSON.stringify(m.name)} in volumes`);
      });
    });
  }
  // Init containers run to completion, so probes make sense only for sidecars (restartPolicy: Always).
  spec.initContainers?.forEach((c, i) => {
    if (c.restartPolicy === 'Always') return;
    for (const field of ['readinessProbe', 'livenessProbe', 'startupProbe'] as const) {
      if (c[field] !== undefined)
        ctx
          .at('initContainers', i, field)
          .error('is only allowed on init containers with restartPolicy: Always');
    }
  });
}
