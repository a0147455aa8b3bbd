// The benchmark's synthetic mesh, as pure functions of its sizes: namespaces, services, pods
// and which pods carry the simulated proxies. generate.mjs writes these objects, proxies.mjs
// derives its node ids from them and run.mjs picks the objects it changes, so the three agree
// without passing lists around.

/** The service port every generated service exposes (an http port, as bookinfo's). */
export const SERVICE_PORT = 9080;

/**
 * @typedef {object} MeshSize
 * @property {number} services  number of services
 * @property {number} endpoints pods (endpoints) per service
 * @property {number} namespaces namespaces the services are spread over
 */

/** The namespace of namespace index `n`. */
export function namespaceName(n) {
  return `bench-${n}`;
}

/** Service `i`: its name and namespace (round-robin over the namespaces). */
export function service(size, i) {
  return { name: `svc-${i}`, namespace: namespaceName(i % size.namespaces) };
}

/** A distinct IPv4 address 10.x.y.z for pod `j` of service `i` (never .0, never repeated). */
export function podIp(size, i, j) {
  const k = i * size.endpoints + j + 1;
  if (k >= 1 << 24) throw new RangeError('too many pods for 10.0.0.0/8');
  return `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
}

/** Pod `j` of service `i`: name, namespace, IP and labels (v1 for even j, v2 for odd). */
export function pod(size, i, j) {
  const s = service(size, i);
  return {
    name: `${s.name}-${j}`,
    namespace: s.namespace,
    ip: podIp(size, i, j),
    serviceAccount: s.name,
    labels: { app: s.name, version: j % 2 === 0 ? 'v1' : 'v2' },
  };
}

/**
 * The pod simulated proxy `p` stands for: pod 0 of each service in turn, then pod 1, and so
 * on, so proxies spread over every namespace.
 */
export function proxyPod(size, p) {
  const i = p % size.services;
  const j = Math.floor(p / size.services) % size.endpoints;
  return { service: i, index: j, ...pod(size, i, j) };
}

/** Whether pod `j` of service `i` carries one of `proxies` simulated proxies. */
export function isProxyPod(size, proxies, i, j) {
  for (let p = i; p < proxies; p += size.services) {
    if (Math.floor(p / size.services) % size.endpoints === j) return true;
  }
  return false;
}

/** The Istio node id and metadata of simulated proxy `p` (a sidecar of its pod). */
export function proxyNode(size, p) {
  const pd = proxyPod(size, p);
  return {
    id: `sidecar~${pd.ip}~${pd.name}.${pd.namespace}~${pd.namespace}.svc.cluster.local`,
    metadata: {
      NAMESPACE: pd.namespace,
      NAME: pd.name,
      LABELS: pd.labels,
      SERVICE_ACCOUNT: pd.serviceAccount,
      WORKLOAD_NAME: pd.labels.app,
      INSTANCE_IPS: pd.ip,
      CLUSTER_ID: 'Kubernetes',
      ISTIO_VERSION: '1.24.0',
    },
  };
}

/** The Service object of service `i`. */
export function serviceObject(size, i) {
  const s = service(size, i);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: s.name, namespace: s.namespace, labels: { app: s.name } },
    spec: {
      selector: { app: s.name },
      ports: [{ name: 'http', port: SERVICE_PORT, targetPort: SERVICE_PORT }],
    },
  };
}

/** The VirtualService of service `i`: a weighted split between subsets v1 and v2. */
export function virtualServiceObject(size, i, v1Weight = 90) {
  const s = service(size, i);
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: s.name, namespace: s.namespace },
    spec: {
      hosts: [s.name],
      http: [
        {
          route: [
            { destination: { host: s.name, subset: 'v1' }, weight: v1Weight },
            { destination: { host: s.name, subset: 'v2' }, weight: 100 - v1Weight },
          ],
        },
      ],
    },
  };
}

/** The DestinationRule of service `i`: subsets v1 and v2 by the version label. */
export function destinationRuleObject(size, i, trafficPolicy) {
  const s = service(size, i);
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: s.name, namespace: s.namespace },
    spec: {
      host: s.name,
      ...(trafficPolicy ? { trafficPolicy } : {}),
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    },
  };
}

/** The Pod object of pod `j` of service `i` (Running, Ready unless `ready` is false). */
export function podObject(size, i, j, ready = true) {
  const pd = pod(size, i, j);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: pd.name, namespace: pd.namespace, labels: pd.labels },
    spec: {
      serviceAccountName: pd.serviceAccount,
      containers: [
        {
          name: 'app',
          image: 'bench/app:1',
          ports: [{ name: 'http', containerPort: SERVICE_PORT }],
        },
      ],
    },
    status: {
      phase: 'Running',
      podIP: pd.ip,
      podIPs: [{ ip: pd.ip }],
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    },
  };
}

/** The Namespace object of namespace index `n`. */
export function namespaceObject(n) {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespaceName(n) } };
}
