// Kubernetes kinds: the fields that matter are validated as Kubernetes does, and every field
// Trellis does not know is kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveKind, validateManifests } from '../src/index.js';
import { assertValid, runInvalidCases, type InvalidCase } from './invalid-cases.js';

const svc = (spec: string) =>
  `apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n${spec}`;

const deploy = (spec: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n${spec}`;

/** A Deployment whose only container is given (indented under `containers:`). */
const deployWith = (container: string) =>
  deploy(
    `  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n${container}`,
  );

const pod = (spec: string) => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n${spec}`;

test('kube: a Deployment with every container feature is valid', () => {
  assertValid(
    deploy(`  replicas: 2
  selector:
    matchLabels: {app: web}
    matchExpressions:
    - {key: version, operator: In, values: [v1, v2]}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web, version: v1}
    spec:
      serviceAccountName: web
      volumes:
      - name: tmp
        emptyDir: {}
      containers:
      - name: web
        image: docker.io/istio/examples-bookinfo-productpage-v1:1.20.2
        command: [node, server.js]
        args: ["--port", "9080"]
        ports:
        - {containerPort: 9080, name: http}
        env:
        - {name: LOG_DIR, value: /tmp/logs}
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        envFrom:
        - configMapRef: {name: web-config}
        readinessProbe:
          httpGet: {path: /health, port: http}
          periodSeconds: 5
        livenessProbe:
          tcpSocket: {port: 9080}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: 1, memory: 128Mi}
        volumeMounts:
        - {name: tmp, mountPath: /tmp}
`),
  );
});

test('kube: name rules per kind (Service: DNS-1035 label, Namespace: DNS-1123 label)', () => {
  assertValid('apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bookinfo\n');
  assertValid(svc('  ports:\n  - port: 80\n'));
  assert.equal(resolveKind('svc')?.kind, 'Service');
  assert.equal(resolveKind('deploy')?.group, 'apps');
  assert.equal(resolveKind('cm')?.kind, 'ConfigMap');
  assert.equal(resolveKind('ns')?.namespaced, false);
});

export const SERVICE_CASES: InvalidCase[] = [
  {
    name: 'Service: a port out of range and a port without a number',
    yaml: svc('  ports:\n  - {name: a, port: 0}\n  - {name: b, targetPort: 80}\n'),
    errors: [
      'spec.ports[0].port: must be between 1 and 65535, not 0',
      'spec.ports[1].port: is required',
    ],
  },
  {
    name: 'Service: several ports need unique names',
    yaml: svc(
      '  ports:\n  - {name: http, port: 80}\n  - {port: 81}\n  - {name: http, port: 82}\n  - {name: Web_1, port: 83}\n',
    ),
    errors: [
      'spec.ports[1].name: is required when the Service has more than one port',
      'spec.ports[2].name: port name "http" is already used by ports[0]',
      `spec.ports[3].name: port name "Web_1" must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit`,
    ],
  },
  {
    name: 'Service: bad protocol, targetPort and type',
    yaml: svc(
      '  type: Internal\n  ports:\n  - {port: 80, protocol: HTTP, targetPort: "http_port"}\n',
    ),
    errors: [
      'spec.type: must be one of: ClusterIP, NodePort, LoadBalancer, ExternalName; not "Internal"',
      'spec.ports[0].protocol: must be one of: TCP, UDP, SCTP; not "HTTP"',
      `spec.ports[0].targetPort: target port name "http_port" must be at most 15 lower-case letters, digits and '-', with at least one letter and no '-' at either end or twice in a row`,
    ],
  },
  {
    name: 'Service: no ports on a non-headless Service',
    yaml: svc('  selector: {app: web}\n'),
    errors: [
      'spec.ports: must have at least one port unless the Service is headless (clusterIP: None) or of type ExternalName',
    ],
  },
  {
    name: 'Service: a bad clusterIP, a duplicate port and a nodePort on a ClusterIP Service',
    yaml: svc(
      '  clusterIP: 10.0.0.300\n  ports:\n  - {name: a, port: 80, nodePort: 30080}\n  - {name: b, port: 80}\n',
    ),
    errors: [
      'spec.clusterIP: must be an IP address, not "10.0.0.300"',
      'spec.ports[0].nodePort: may only be set when type is NodePort or LoadBalancer, not ClusterIP',
      'spec.ports[1]: port 80/TCP is already declared by ports[0]',
    ],
  },
  {
    name: 'Service: ExternalName without externalName',
    yaml: svc('  type: ExternalName\n'),
    errors: ['spec.externalName: is required when type is ExternalName'],
  },
  {
    name: 'Service: a name that is not a DNS-1035 label',
    yaml: 'apiVersion: v1\nkind: Service\nmetadata:\n  name: 1web\nspec:\n  ports:\n  - port: 80\n',
    errors: [
      `metadata.name: name "1web" must be a DNS-1035 label: at most 63 lower-case letters, digits and '-', starting with a letter`,
    ],
  },
  {
    name: 'Service: a selector with a bad label value',
    yaml: svc('  selector: {app: "web app"}\n  ports:\n  - port: 80\n'),
    errors: [
      `spec.selector.app: label value "web app" must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit`,
    ],
  },
];

export const DEPLOYMENT_CASES: InvalidCase[] = [
  {
    name: 'Deployment: selector does not match template labels',
    yaml: deploy(
      '  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: api}}\n    spec:\n      containers: [{name: web, image: web}]\n',
    ),
    errors: [
      'spec.template.metadata.labels: selector does not match template labels: every pod of the template must match spec.selector',
    ],
  },
  {
    name: 'Deployment: no selector, negative replicas',
    yaml: deploy(
      '  replicas: -1\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: web}]\n',
    ),
    errors: [
      'spec.replicas: must be between 0 and 2147483647, not -1',
      'spec.selector: is required',
    ],
  },
  {
    name: 'Deployment: an empty selector',
    yaml: deploy(
      '  selector: {}\n  template:\n    spec:\n      containers: [{name: web, image: web}]\n',
    ),
    errors: [
      'spec.selector: must have matchLabels or matchExpressions: an empty selector is not allowed for a Deployment',
    ],
  },
  {
    name: 'Deployment: container without image, bad and duplicate names',
    yaml: deploy(
      '  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: Web\n      - {name: web, image: a}\n      - {name: web, image: b}\n',
    ),
    errors: [
      `spec.template.spec.containers[0].name: container name "Web" must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit`,
      'spec.template.spec.containers[0].image: is required',
      'spec.template.spec.containers[2].name: container name "web" is already used by containers[1]',
    ],
  },
  {
    name: 'Deployment: no containers',
    yaml: deploy(
      '  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: []\n',
    ),
    errors: ['spec.template.spec.containers: must have at least one item'],
  },
  {
    name: 'Deployment: command as a string, bad ports',
    yaml: deployWith(
      '      - name: web\n        image: web\n        command: node server.js\n        ports:\n        - {containerPort: 70000}\n        - {containerPort: 80, name: http, protocol: http}\n',
    ),
    errors: [
      'spec.template.spec.containers[0].command: must be a list, not a string ("node server.js")',
      'spec.template.spec.containers[0].ports[0].containerPort: must be between 1 and 65535, not 70000',
      'spec.template.spec.containers[0].ports[1].protocol: must be one of: TCP, UDP, SCTP; not "http"',
    ],
  },
  {
    name: 'Deployment: env with value and valueFrom, env without a source',
    yaml: deployWith(
      '      - name: web\n        image: web\n        env:\n        - name: A\n          value: x\n          valueFrom: {secretKeyRef: {name: s, key: k}}\n        - name: B\n          valueFrom: {}\n        - {value: y}\n',
    ),
    errors: [
      'spec.template.spec.containers[0].env[0].valueFrom: must not be set when value is not empty',
      'spec.template.spec.containers[0].env[1].valueFrom: one of "fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef" must be set',
      'spec.template.spec.containers[0].env[2].name: is required',
    ],
  },
  {
    name: 'Deployment: probes need exactly one handler',
    yaml: deployWith(
      '      - name: web\n        image: web\n        readinessProbe: {periodSeconds: 5}\n        livenessProbe:\n          httpGet: {port: 80}\n          tcpSocket: {port: 80}\n          successThreshold: 2\n',
    ),
    errors: [
      'spec.template.spec.containers[0].readinessProbe: one of "exec", "httpGet", "tcpSocket", "grpc" must be set',
      'spec.template.spec.containers[0].livenessProbe: only one of "exec", "httpGet", "tcpSocket", "grpc" may be set; found "httpGet" and "tcpSocket"',
      'spec.template.spec.containers[0].livenessProbe.successThreshold: must be 1, not 2',
    ],
  },
  {
    name: 'Deployment: resources above their limits and not quantities',
    yaml: deployWith(
      '      - name: web\n        image: web\n        resources:\n          requests: {cpu: "2", memory: lots}\n          limits: {cpu: 500m, gpu: 1}\n',
    ),
    errors: [
      'spec.template.spec.containers[0].resources.requests.memory: must be a quantity such as "500m", "128Mi" or "1", not "lots"',
      'spec.template.spec.containers[0].resources.limits.gpu: resource name "gpu" must be cpu, memory, ephemeral-storage, hugepages-<size> or a domain-prefixed name such as example.com/gpu',
      'spec.template.spec.containers[0].resources.requests.cpu: must be at most the cpu limit (500m), not 2',
    ],
  },
  {
    name: 'Deployment: a volume mount of an undeclared volume and a non-Always restart policy',
    yaml: deploy(
      '  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: web\n        image: web\n        volumeMounts: [{name: data, mountPath: /data}]\n',
    ),
    errors: [
      'spec.template.spec.containers[0].volumeMounts[0].name: no volume named "data" in volumes',
      'spec.template.spec.restartPolicy: must be Always for a Deployment, not Never',
    ],
  },
  {
    name: 'Deployment: a rolling update that can make no progress',
    yaml: deploy(
      '  selector: {matchLabels: {app: web}}\n  strategy:\n    rollingUpdate: {maxSurge: 0, maxUnavailable: "0%"}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: web}]\n',
    ),
    errors: ['spec.strategy.rollingUpdate.maxUnavailable: must not be 0 when maxSurge is 0'],
  },
];

export const POD_CASES: InvalidCase[] = [
  {
    name: 'Pod: no spec',
    yaml: 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n',
    errors: ['spec: is required'],
  },
  {
    name: 'Pod: a grpc probe without a port',
    yaml: pod(
      '  containers:\n  - name: web\n    image: web\n    startupProbe: {grpc: {service: health}}\n',
    ),
    errors: ['spec.containers[0].startupProbe.grpc.port: is required'],
  },
  {
    name: 'Pod: an init container with a readiness probe',
    yaml: pod(
      '  initContainers:\n  - name: init\n    image: busybox\n    readinessProbe: {exec: {command: ["true"]}}\n  containers:\n  - name: web\n    image: web\n',
    ),
    errors: [
      'spec.initContainers[0].readinessProbe: is only allowed on init containers with restartPolicy: Always',
    ],
  },
  {
    name: 'Pod: a container named like an init container',
    yaml: pod('  initContainers: [{name: web, image: a}]\n  containers: [{name: web, image: b}]\n'),
    errors: ['spec.containers[0].name: container name "web" is already used by initContainers[0]'],
  },
];

export const NAMESPACE_CASES: InvalidCase[] = [
  {
    name: 'Namespace: a name with a dot',
    yaml: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: book.info\n',
    errors: [
      `metadata.name: name "book.info" must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit`,
    ],
  },
  {
    name: 'Namespace: with a namespace of its own',
    yaml: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bookinfo\n  namespace: default\n',
    errors: ['metadata.namespace: Namespace is not namespaced; remove metadata.namespace'],
  },
  {
    name: 'Namespace: finalizers that are not a list',
    yaml: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bookinfo\nspec:\n  finalizers: kubernetes\n',
    errors: ['spec.finalizers: must be a list, not a string ("kubernetes")'],
  },
];

export const SERVICE_ACCOUNT_CASES: InvalidCase[] = [
  {
    name: 'ServiceAccount: a bad name',
    yaml: 'apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: Bookinfo_Reviews\n',
    errors: [
      `metadata.name: name "Bookinfo_Reviews" must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', each part starting and ending with a letter or digit`,
    ],
  },
  {
    name: 'ServiceAccount: automount that is not a boolean',
    yaml: 'apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\nautomountServiceAccountToken: "no"\n',
    errors: [
      'automountServiceAccountToken: must be a boolean (true or false), not a string ("no")',
    ],
  },
];

export const SECRET_CASES: InvalidCase[] = [
  {
    name: 'Secret: data that is not base64 and a bad key',
    yaml: 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  password: not base64!\n  "a/b": YQ==\n',
    errors: [
      'data.password: must be base64-encoded (standard alphabet with padding); put plain text under stringData instead',
      `data["a/b"]: key "a/b" must consist of letters, digits, '-', '_' or '.' (like a file name)`,
    ],
  },
  {
    name: 'Secret: a TLS secret without its key',
    yaml: 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: cert\n',
    errors: ['data: must have key "tls.key" for a Secret of type kubernetes.io/tls'],
  },
  {
    name: 'Secret: stringData that is not a string',
    yaml: 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  port: 5432\n',
    errors: ['stringData.port: must be a string, not a number (5432)'],
  },
];

export const CONFIG_MAP_CASES: InvalidCase[] = [
  {
    name: 'ConfigMap: a key in both data and binaryData',
    yaml: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: x\nbinaryData:\n  a: eA==\n',
    errors: ['binaryData.a: key "a" is also in data; a key may be in only one of them'],
  },
  {
    name: 'ConfigMap: bad keys and binaryData that is not base64',
    yaml: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  "..": x\n  "my key": y\nbinaryData:\n  b: "%%%"\n',
    errors: [
      'data[".."]: key ".." is not allowed',
      `data["my key"]: key "my key" must consist of letters, digits, '-', '_' or '.' (like a file name)`,
      'binaryData.b: must be base64-encoded (standard alphabet with padding); put plain text under data instead',
    ],
  },
  {
    name: 'ConfigMap: a number as a data value',
    yaml: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  port: 8080\n',
    errors: ['data.port: must be a string, not a number (8080)'],
  },
];

runInvalidCases('kube', [
  ...SERVICE_CASES,
  ...DEPLOYMENT_CASES,
  ...POD_CASES,
  ...NAMESPACE_CASES,
  ...SERVICE_ACCOUNT_CASES,
  ...SECRET_CASES,
  ...CONFIG_MAP_CASES,
]);

test('kube: unknown fields of Kubernetes objects are kept, at every level', () => {
  const yaml = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  finalizers: [example.com/keep]
spec:
  selector: {matchLabels: {app: web}}
  futureSpecField: {a: 1}
  template:
    metadata: {labels: {app: web}}
    spec:
      priorityClassName: high
      tolerations: [{key: k, operator: Exists}]
      containers:
      - name: web
        image: web
        securityContext: {runAsNonRoot: true}
        ports: [{containerPort: 80, futurePortField: x}]
status:
  replicas: 1
---
apiVersion: v1
kind: Secret
metadata: {name: s}
type: Opaque
data: {a: YQ==}
futureTopLevel: kept
`;
  const r = validateManifests(yaml, 'keep.yaml');
  assert.equal(r.errorCount, 0);
  const d = r.objects[0]!.object as unknown as {
    metadata: { finalizers: string[] };
    spec: {
      futureSpecField: unknown;
      template: {
        spec: {
          priorityClassName: string;
          tolerations: unknown;
          containers: { securityContext: unknown; ports: { futurePortField: string }[] }[];
        };
      };
    };
    status: unknown;
  };
  assert.deepEqual(d.metadata.finalizers, ['example.com/keep']);
  assert.deepEqual(d.spec.futureSpecField, { a: 1 });
  assert.equal(d.spec.template.spec.priorityClassName, 'high');
  assert.deepEqual(d.spec.template.spec.tolerations, [{ key: 'k', operator: 'Exists' }]);
  assert.deepEqual(d.spec.template.spec.containers[0]!.securityContext, { runAsNonRoot: true });
  assert.equal(d.spec.template.spec.containers[0]!.ports[0]!.futurePortField, 'x');
  assert.deepEqual(d.status, { replicas: 1 });
  assert.equal(r.objects[1]!.object.futureTopLevel, 'kept');
});
