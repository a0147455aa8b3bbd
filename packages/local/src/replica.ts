// One local pod: a replica of a Deployment (its app containers, plus a sidecar started first when
// injected), a Pod the user applied (run the same way, its status written onto that object), or a
// gateway (the proxy alone, `trellis proxy router`). It owns the pod's Pod object in the store
// (labels, annotations and status as the contract in docs/local-runtime.md says), allocates the
// pod's ports, starts the sidecar and waits for its /healthz/ready before starting the apps, and
// stops apps first, then the sidecar, then deletes the Pod (a user's Pod stays: the user deletes
// it). When every app container has finished for good (restartPolicy OnFailure or Never) the pod
// completes: the sidecar is stopped (it drains), then the phase becomes Succeeded or Failed.
import { join } from 'node:path';
import type { Container, KubeObject, PodTemplateSpec } from '@trellis/api';
import { ConflictError, NotFoundError, errorMessage, type TimerApi } from '@trellis/core';
import type { ConfigStore } from '@trellis/config';
import { appEnv, expand } from './app-env.js';
import type { BackoffOptions } from './backoff.js';
import {
  ISTIO_SIDECAR_PORTS,
  type CaptureMode,
  type PodSandbox,
  type SidecarPorts,
} from './capture.js';
import { ContainerRunner, type RestartPolicy } from './container-runner.js';
import { resolveExecutable } from './executable.js';
import type { PortAllocator } from './ports.js';
import type { ProcessTable } from './process-table.js';
import { readinessSpec, type ProbeCheck, type ReadinessSpec } from './readiness.js';
import { podLogPath, type RuntimePaths } from './runtime-files.js';

export const SIDECAR_CONTAINER = 'istio-proxy';

/**
 * Node.js flags for every proxy process (sidecars and gateways), before the CLI's path.
 * - `--max-semi-space-size=4`: V8's young generation may otherwise grow to 16 MB semi-spaces;
 *   capped, a sidecar under load holds about 25 MB less (RSS and private memory).
 * - `--single-threaded-gc`: the collector's work stays on the proxy's own thread instead of
 *   waking helper threads that compete with it for the same small CPU budget (a sidecar's
 *   limit; the benchmark's one core for both proxies): p99 at 1,000 req/s was the lowest of the
 *   three settings in each of three runs, throughput unchanged.
 * Measured in BENCHMARKS.md, *Data plane*; bench/proxy/run.mjs starts its sidecars the same way.
 */
export const PROXY_NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=4',
  '--single-threaded-gc',
];
export const NODE_NAME = 'local';

export interface ReplicaDeps {
  readonly store: ConfigStore;
  readonly table: ProcessTable;
  readonly ports: PortAllocator;
  readonly paths: RuntimePaths;
  readonly timers: TimerApi;
  readonly now: () => number;
  readonly capture: CaptureMode;
  /** `packages/cli/bin/trellis.js`: proxies run as `node <trellisBin> proxy ...`. */
  readonly trellisBin: string;
  readonly xdsAddress: () => string;
  /** PATH entries put first for apps (`<trellis root>/node_modules/.bin`). */
  readonly binDirs: readonly string[];
  readonly baseEnv: Readonly<Record<string, string | undefined>>;
  /** Working directory of apps without `workingDir` (the state directory's parent). */
  readonly cwd: string;
  readonly backoff?: BackoffOptions;
  readonly check?: ProbeCheck;
  /** Cap of terminationGracePeriodSeconds, in ms. */
  readonly maxGraceMs: number;
  /** The proxies' drain period on SIGTERM. */
  readonly proxyDrainMs: number;
  readonly log: (
    level: 'info' | 'warn' | 'error',
    msg: string,
    f?: Record<string, unknown>,
  ) => void;
  /** Readiness or state changed (the controller reconciles). */
  readonly onChange: (r: Replica) => void;
}

/** A Deployment replica. */
export interface WorkloadPod {
  readonly kind: 'workload';
  readonly deployment: string;
  readonly hash: string;
  readonly template: PodTemplateSpec;
  readonly injected: boolean;
}

/** A Pod the user applied (`kind: Pod`): the runtime is its kubelet, not its owner. */
export interface StandalonePod {
  readonly kind: 'pod';
  /** metadata.uid of the Pod object run (a Pod deleted and created again is another pod). */
  readonly uid: string | undefined;
  /** The Pod's labels, annotations and spec. */
  readonly template: PodTemplateSpec;
  readonly injected: boolean;
}

/** A gateway: the proxy is the pod's only container. */
export interface GatewayPod {
  readonly kind: 'gateway';
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  /** Named listen ports the gateway's Service targets (shown by status). */
  readonly ports: Readonly<Record<string, number>>;
}

export interface ReplicaStatusView {
  readonly namespace: string;
  readonly name: string;
  readonly kind: 'workload' | 'gateway' | 'pod';
  readonly deployment?: string;
  readonly injected: boolean;
  readonly ready: string;
  readonly status: string;
  readonly restarts: number;
  readonly ports: Readonly<Record<string, number>>;
  /** status.podIP once the pod has a network. */
  readonly podIP?: string;
  readonly containers: readonly Record<string, unknown>[];
  readonly pids: Readonly<Record<string, number>>;
}

export class Replica {
  readonly name: string;
  readonly namespace: string;
  readonly pod: WorkloadPod | GatewayPod | StandalonePod;
  readonly #d: ReplicaDeps;
  readonly #apps: ContainerRunner[] = [];
  #proxy: ContainerRunner | undefined;
  /** containerPort -> app port */
  readonly #appPorts = new Map<number, number>();
  #sidecarPorts: SidecarPorts | undefined;
  #sandbox: PodSandbox | undefined;
  /** Ports taken from the allocator (given back when the pod stops). */
  readonly #allocated: number[] = [];
  #starting: Promise<void> = Promise.resolve();
  #phase: 'Pending' | 'Running' | 'Terminating' | 'Stopped' = 'Pending';
  /** Every app finished for good: the sidecar is being stopped. */
  #completing = false;
  /** The pod's final phase once it completed (sidecar stopped). */
  #result: 'Succeeded' | 'Failed' | undefined;
  /** A user's Pod whose runtime stopped before it finished: written back as Pending. */
  #nodeStopped = false;
  #released = false;
  #startTime: string | undefined;
  #appsStarted = false;
  #writes: Promise<void> = Promise.resolve();
  #dirty = false;
  #deleted = false;
  #error: string | undefined;
  #appsStopped: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;
  readonly #labels: Record<string, string>;
  readonly #annotations: Record<string, string> = {};

  constructor(
    name: string,
    namespace: string,
    pod: WorkloadPod | GatewayPod | StandalonePod,
    deps: ReplicaDeps,
  ) {
    this.name = name;
    this.namespace = namespace;
    this.pod = pod;
    this.#d = deps;
    this.#labels =
      pod.kind === 'workload'
        ? { ...(pod.template.metadata?.labels ?? {}), 'pod-template-hash': pod.hash }
        : pod.kind === 'pod'
          ? { ...(pod.template.metadata?.labels ?? {}) }
          : { ...pod.labels };
    if (pod.kind !== 'gateway' && pod.injected)
      // TODO(mtls): `istio` once the proxy speaks mTLS; today auto-mTLS would make clients send TLS.
      this.#labels['security.istio.io/tlsMode'] = 'disabled';
  }

  get injected(): boolean {
    return this.pod.kind !== 'gateway' && this.pod.injected;
  }

  /** The Pod object's uid for a user's Pod. */
  get uid(): string | undefined {
    return this.pod.kind === 'pod' ? this.pod.uid : undefined;
  }

  /** The pod completed (every app finished for good, the sidecar stopped): its final phase. */
  get result(): 'Succeeded' | 'Failed' | undefined {
    return this.#result;
  }

  get hash(): string | undefined {
    return this.pod.kind === 'workload' ? this.pod.hash : undefined;
  }

  get terminating(): boolean {
    return this.#phase === 'Terminating' || this.#phase === 'Stopped';
  }

  /** Ready as Kubernetes means it: every container ready. */
  get ready(): boolean {
    if (this.terminating) return false;
    const all = [...this.#apps, ...(this.#proxy ? [this.#proxy] : [])];
    return this.#appsStarted && all.length > 0 && all.every((c) => c.ready);
  }

  get serviceAccount(): string {
    if (this.pod.kind === 'gateway') return this.pod.serviceAccount;
    return (
      this.pod.template.spec?.serviceAccountName ??
      this.pod.template.spec?.serviceAccount ??
      'default'
    );
  }

  /**
   * Sets up the pod's network, allocates ports, writes the Pod, starts the sidecar (then the
   * apps once it is ready).
   */
  start(): Promise<void> {
    this.#starting = this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    try {
      this.#sandbox = await this.#d.capture.sandbox({
        namespace: this.namespace,
        name: this.name,
        injected: this.injected,
        kind: this.pod.kind === 'gateway' ? 'gateway' : 'workload',
      });
      if (this.terminating) return;
      await this.#allocatePorts();
      this.#buildRunners();
    } catch (e) {
      this.#error = errorMessage(e);
      this.#d.log('error', 'cannot start pod', {
        pod: `${this.namespace}/${this.name}`,
        error: this.#error,
      });
    }
    if (this.terminating) return;
    await this.#write();
    if (this.#error !== undefined || this.terminating) return;
    this.#startTime = new Date(this.#d.now()).toISOString();
    this.#phase = 'Running';
    if (this.#proxy) this.#proxy.start();
    else this.#startApps();
    this.#changed();
  }

  async #allocate(): Promise<number> {
    const p = await this.#d.ports.allocate();
    this.#allocated.push(p);
    return p;
  }

  async #allocatePorts(): Promise<void> {
    if (this.pod.kind === 'gateway') {
      this.#sidecarPorts = {
        admin: await this.#allocate(),
        status: await this.#allocate(),
        httpProxy: 0,
        inbound: new Map(),
      };
      return;
    }
    // A pod with a network of its own listens on its ports as declared, the sidecar on Istio's.
    const own = this.#sandbox?.ownNetwork === true;
    const spec = this.pod.template.spec;
    for (const c of spec?.containers ?? [])
      for (const p of c.ports ?? [])
        if (!this.#appPorts.has(p.containerPort))
          this.#appPorts.set(p.containerPort, own ? p.containerPort : await this.#allocate());
    if (this.pod.injected && own) this.#sidecarPorts = ISTIO_SIDECAR_PORTS;
    else if (this.pod.injected) {
      const inbound = new Map<number, number>();
      for (const cp of this.#appPorts.keys()) inbound.set(cp, await this.#allocate());
      this.#sidecarPorts = {
        admin: await this.#allocate(),
        status: await this.#allocate(),
        httpProxy: await this.#allocate(),
        inbound,
      };
    }
    Object.assign(
      this.#annotations,
      this.pod.template.metadata?.annotations ?? {},
      this.#d.capture.podAnnotations(this.pod.injected, this.#appPorts, this.#sidecarPorts),
      this.pod.injected
        ? { 'sidecar.istio.io/status': JSON.stringify({ containers: [SIDECAR_CONTAINER] }) }
        : {},
    );
  }

  #buildRunners(): void {
    const d = this.#d;
    const sb = this.#sandbox!;
    const podKey = `${this.namespace}/${this.name}`;
    const check = d.check ?? sb.check;
    const deps = {
      table: d.table,
      timers: d.timers,
      ...(d.backoff ? { backoff: d.backoff } : {}),
      ...(check ? { check } : {}),
      now: d.now,
      onChange: () => this.#changed(),
    };
    const s = this.#sidecarPorts;
    if (s) {
      const gateway = this.pod.kind === 'gateway';
      const labels = Object.entries(this.#labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
      const logFile = podLogPath(d.paths, this.namespace, this.name, 'proxy');
      const args = [
        ...PROXY_NODE_FLAGS,
        d.trellisBin,
        'proxy',
        gateway ? 'router' : 'sidecar',
        '--pod',
        `${this.name}.${this.namespace}`,
        '--ip',
        sb.ip,
        '--xds-address',
        d.xdsAddress(),
        ...labels,
        '--service-account',
        this.serviceAccount,
        '--admin-port',
        String(s.admin),
        '--status-port',
        String(s.status),
        ...(s.httpProxy > 0 ? ['--http-proxy-port', String(s.httpProxy)] : []),
        '--access-log',
        sb.proxyAccessLog(logFile),
        '--drain-time',
        String(d.proxyDrainMs),
      ];
      const proxyReadiness: ReadinessSpec = {
        target: { kind: 'http', port: s.status, path: '/healthz/ready', headers: {} },
        timing: {
          initialDelayMs: 0,
          periodMs: 2_000,
          timeoutMs: 1_000,
          successThreshold: 1,
          failureThreshold: 3,
        },
        explicit: true,
        pendingPeriodMs: 100,
      };
      this.#proxy = new ContainerRunner(
        {
          name: SIDECAR_CONTAINER,
          role: gateway ? 'gateway' : 'proxy',
          pod: podKey,
          image: 'trellis/proxy',
          command: () => sb.exec({ file: process.execPath, args }, 'proxy'),
          env: {
            ...definedOnly(d.baseEnv),
            ...(gateway ? {} : d.capture.sidecarEnv()),
          },
          cwd: d.cwd,
          logFile,
          readiness: proxyReadiness,
          graceMs: d.proxyDrainMs + 5_000,
        },
        {
          ...deps,
          onChange: () => {
            if (this.#proxy?.ready && !this.#appsStarted) this.#startApps();
            this.#changed();
          },
        },
      );
    }
    if (this.pod.kind === 'gateway') return;
    const spec = this.pod.template.spec;
    // A Deployment's pods are always restarted (the API allows only Always there).
    const restartPolicy: RestartPolicy =
      this.pod.kind === 'pod' ? (spec?.restartPolicy ?? 'Always') : 'Always';
    const graceMs = Math.min(
      d.maxGraceMs,
      Math.max(0, spec?.terminationGracePeriodSeconds ?? 30) * 1000,
    );
    for (const c of spec?.containers ?? []) {
      const { env, warnings } = appEnv({
        container: c,
        podName: this.name,
        namespace: this.namespace,
        serviceAccount: this.serviceAccount,
        labels: this.#labels,
        annotations: this.#annotations,
        podIP: sb.ip,
        hostIP: sb.hostIP,
        bindHost: sb.bindHost,
        actualPorts: this.#appPorts,
        captureEnv: s ? d.capture.appEnv(s) : {},
        baseEnv: d.baseEnv,
        binDirs: d.binDirs,
      });
      for (const w of warnings) d.log('warn', w, { pod: podKey, container: c.name });
      const cwd = c.workingDir ?? d.cwd;
      const readiness = readinessSpec(c, this.#appPorts);
      this.#apps.push(
        new ContainerRunner(
          {
            name: c.name,
            role: 'app',
            pod: podKey,
            image: c.image ?? '',
            command: () => {
              const cmd = commandOf(c, env, cwd);
              return cmd instanceof Error ? cmd : sb.exec(cmd, 'app');
            },
            env,
            cwd,
            logFile:
              (spec?.containers.length ?? 1) > 1
                ? join(d.paths.logsDir, this.namespace, this.name, `app-${c.name}.log`)
                : podLogPath(d.paths, this.namespace, this.name, 'app'),
            readiness,
            graceMs,
            restartPolicy,
          },
          { ...deps, onChange: () => this.#appChanged() },
        ),
      );
    }
  }

  #startApps(): void {
    if (this.#appsStarted || this.terminating) return;
    this.#appsStarted = true;
    for (const a of this.#apps) a.start();
  }

  #appChanged(): void {
    this.#changed();
    if (
      this.#completing ||
      this.terminating ||
      !this.#appsStarted ||
      this.#apps.length === 0 ||
      !this.#apps.every((a) => a.finished)
    )
      return;
    // Every app finished for good: the pod completes. The sidecar goes after its app (SIGTERM: it
    // drains), then the phase is final, so a pod seen Succeeded has no process left.
    this.#completing = true;
    const result = this.#apps.every((a) => a.exitCode === 0) ? 'Succeeded' : 'Failed';
    this.#d.log('info', 'pod completed; stopping its sidecar', {
      pod: `${this.namespace}/${this.name}`,
      phase: result,
    });
    void (async () => {
      await this.#proxy?.stop();
      await this.#release();
      // Final only now: nothing of the pod is left once a reader sees Succeeded or Failed.
      this.#result = result;
      this.#changed();
    })();
  }

  /** Gives the pod's ports and network back (once). */
  async #release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    this.#d.ports.release(...this.#allocated);
    try {
      await this.#sandbox?.release();
    } catch (e) {
      this.#d.log('warn', 'cannot remove the pod network', {
        pod: `${this.namespace}/${this.name}`,
        error: errorMessage(e),
      });
    }
  }

  /** The user deleted the Pod: nothing more is written to the store. */
  markDeleted(): void {
    this.#deleted = true;
  }

  /** Marks the pod terminating (not Ready: peers stop sending) and stops its apps. */
  stopApps(): Promise<void> {
    if (!this.#appsStopped) {
      if (this.#phase !== 'Stopped') this.#phase = 'Terminating';
      this.#changed();
      this.#appsStopped = Promise.all(this.#apps.map((a) => a.stop())).then(() => undefined);
    }
    return this.#appsStopped;
  }

  /** Apps first (grace period), then the sidecar (it drains), then the Pod leaves the store. */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    if (this.#phase !== 'Stopped') this.#phase = 'Terminating';
    await this.#starting.catch(() => undefined);
    await this.stopApps();
    await this.#proxy?.stop();
    this.#phase = 'Stopped';
    await this.#release();
    if (this.pod.kind === 'pod') {
      // The user's object stays: a finished pod keeps its final status; one stopped with the
      // runtime goes back to Pending (it runs again on the next `trellis up`).
      if (!this.#deleted && this.#result === undefined) {
        // Stopped while completing: the apps' outcome is known, the pod is finished.
        if (this.#completing)
          this.#result = this.#apps.every((a) => a.exitCode === 0) ? 'Succeeded' : 'Failed';
        else this.#nodeStopped = true;
        this.#changed();
      }
      await this.#writes;
      this.#deleted = true;
      this.#d.onChange(this);
      return;
    }
    await this.#writes;
    this.#deleted = true;
    try {
      await this.#d.store.delete({
        group: '',
        kind: 'Pod',
        namespace: this.namespace,
        name: this.name,
      });
    } catch (e) {
      if (!(e instanceof NotFoundError))
        this.#d.log('warn', 'cannot delete pod', { pod: this.name, error: errorMessage(e) });
    }
    this.#d.onChange(this);
  }

  /** SIGKILL every process now (the daemon is dying). */
  kill(): void {
    for (const a of this.#apps) a.kill();
    this.#proxy?.kill();
  }

  #changed(): void {
    this.#dirty = true;
    this.#writes = this.#writes.then(() => (this.#dirty ? this.#write() : undefined));
    this.#d.onChange(this);
  }

  async #write(): Promise<void> {
    this.#dirty = false;
    if (this.#deleted) return;
    if (this.pod.kind === 'pod') return this.#writeUserPod();
    const pod = this.toPod();
    try {
      const existing = await this.#d.store.get({
        group: '',
        kind: 'Pod',
        namespace: this.namespace,
        name: this.name,
      });
      if (this.#deleted) return;
      if (existing) await this.#d.store.update(pod);
      else await this.#d.store.create(pod);
    } catch (e) {
      this.#d.log('warn', 'cannot write pod status', { pod: this.name, error: errorMessage(e) });
    }
  }

  /**
   * Writes status (and what injection adds: labels, annotations; the scheduler's nodeName) onto
   * the user's Pod object, never creating it: a Pod deleted, or deleted and created again (another
   * uid), is left alone. A concurrent change (resourceVersion conflict) is read again.
   */
  async #writeUserPod(): Promise<void> {
    const key = { group: '', kind: 'Pod', namespace: this.namespace, name: this.name };
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const existing = await this.#d.store.get(key);
        if (this.#deleted || !existing) return;
        if (this.uid !== undefined && existing.metadata.uid !== this.uid) return;
        const own = this.toPod();
        await this.#d.store.update({
          ...existing,
          metadata: {
            ...existing.metadata,
            labels: {
              ...withoutKeys(existing.metadata.labels, RUNTIME_LABELS),
              ...own.metadata.labels,
            },
            annotations: {
              ...withoutKeys(existing.metadata.annotations, RUNTIME_ANNOTATIONS),
              ...this.#annotations,
            },
          },
          spec: {
            ...(existing.spec ?? {}),
            serviceAccountName: this.serviceAccount,
            nodeName: NODE_NAME,
          },
          status: own.status,
        });
        return;
      } catch (e) {
        if (e instanceof NotFoundError) return;
        if (e instanceof ConflictError) continue;
        this.#d.log('warn', 'cannot write pod status', { pod: this.name, error: errorMessage(e) });
        return;
      }
    }
  }

  /** The Pod object as the store (and the control plane's registry) sees it. */
  toPod(): KubeObject {
    const containers = [...this.#apps, ...(this.#proxy ? [this.#proxy] : [])];
    const ready = this.ready;
    const podSpec =
      this.pod.kind !== 'gateway'
        ? {
            ...(this.pod.template.spec ?? {}),
            serviceAccountName: this.serviceAccount,
            nodeName: NODE_NAME,
          }
        : {
            serviceAccountName: this.serviceAccount,
            nodeName: NODE_NAME,
            containers: [
              {
                name: SIDECAR_CONTAINER,
                image: 'trellis/proxy',
                ports: Object.entries(this.pod.ports).map(([name, containerPort]) => ({
                  name,
                  containerPort,
                })),
              },
            ],
          };
    const started =
      !this.#nodeStopped &&
      (this.#phase === 'Running' || this.#phase === 'Terminating' || this.#result !== undefined);
    const hostIP = this.#sandbox?.hostIP ?? '127.0.0.1';
    const podIP = this.#sandbox?.ip;
    const phase =
      this.#error !== undefined ? 'Failed' : (this.#result ?? (started ? 'Running' : 'Pending'));
    // Kubernetes' reason for a pod that is not ready because it ran to completion.
    const notReady = this.#completing ? { reason: 'PodCompleted' } : {};
    const status: Record<string, unknown> = {
      phase,
      hostIP,
      hostIPs: [{ ip: hostIP }],
      ...(started && podIP !== undefined ? { podIP, podIPs: [{ ip: podIP }] } : {}),
      ...(this.#startTime && !this.#nodeStopped ? { startTime: this.#startTime } : {}),
      ...(this.#error !== undefined ? { reason: 'Failed', message: this.#error } : {}),
      ...(this.#nodeStopped
        ? { message: 'the local runtime stopped; the pod runs again on the next trellis up' }
        : {}),
      conditions: [
        { type: 'PodScheduled', status: 'True' },
        { type: 'Initialized', status: 'True' },
        { type: 'ContainersReady', status: ready ? 'True' : 'False', ...(ready ? {} : notReady) },
        { type: 'Ready', status: ready ? 'True' : 'False', ...(ready ? {} : notReady) },
      ],
      containerStatuses: containers.map((c) => c.status()),
    };
    const owner =
      this.pod.kind === 'workload'
        ? {
            ownerReferences: [
              {
                apiVersion: 'apps/v1',
                kind: 'ReplicaSet',
                name: `${this.pod.deployment}-${this.pod.hash}`,
                controller: true,
              },
            ],
          }
        : this.pod.kind === 'gateway'
          ? {
              // Gateways are Deployments on Kubernetes; the owner also tells the runtime's own
              // Pods from the user's (see isRuntimePod).
              ownerReferences: [
                {
                  apiVersion: 'apps/v1',
                  kind: 'ReplicaSet',
                  name: this.name.replace(/-[a-z0-9]{5}$/, ''),
                  controller: true,
                },
              ],
            }
          : {};
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        labels: this.#labels,
        ...(Object.keys(this.#annotations).length > 0 ? { annotations: this.#annotations } : {}),
        ...owner,
      },
      spec: podSpec,
      status,
    };
  }

  /** What `trellis status` shows. */
  view(): ReplicaStatusView {
    const containers = [...this.#apps, ...(this.#proxy ? [this.#proxy] : [])];
    const readyCount = containers.filter((c) => c.ready && !this.terminating).length;
    let status: string = this.#phase === 'Stopped' ? 'Terminating' : this.#phase;
    if (this.#error !== undefined) status = 'Failed';
    else if (this.#result !== undefined) status = completedStatus(this.#result, this.#apps);
    // kubectl's word for a pod whose apps are done while a container still runs.
    else if (this.#completing && !this.terminating) status = 'NotReady';
    else if (!this.terminating)
      for (const c of containers) {
        const w = 'waiting' in c.state ? c.state.waiting : undefined;
        if (w && w.reason !== 'ContainerCreating') {
          status = w.reason;
          break;
        }
      }
    if (status === 'Running' && this.#proxy && !this.#appsStarted) status = 'PodInitializing';
    const ports: Record<string, number> = {};
    if (this.pod.kind === 'gateway') Object.assign(ports, this.pod.ports);
    const s = this.#sidecarPorts;
    for (const [cp, p] of this.#appPorts) {
      ports[`app:${cp}`] = p;
      const inbound = s?.inbound.get(cp);
      if (inbound !== undefined) ports[`inbound:${cp}`] = inbound;
    }
    if (s && s.httpProxy > 0) ports.proxy = s.httpProxy;
    if (s) ports.admin = s.admin;
    if (s) ports.status = s.status;
    const pids: Record<string, number> = {};
    for (const c of containers) if (c.pid !== undefined) pids[c.spec.name] = c.pid;
    return {
      namespace: this.namespace,
      name: this.name,
      kind: this.pod.kind,
      ...(this.pod.kind === 'workload' ? { deployment: this.pod.deployment } : {}),
      injected: this.injected,
      ready: `${readyCount}/${containers.length || 1}`,
      status,
      restarts: containers.reduce((n, c) => n + c.restartCount, 0),
      ports,
      ...(this.#sandbox ? { podIP: this.#sandbox.ip } : {}),
      containers: containers.map((c) => c.status()),
      pids,
      ...(this.#error !== undefined ? { message: this.#error } : {}),
    };
  }
}

/** `Completed` for a Succeeded pod; else the first failed app's reason (Error, StartError). */
function completedStatus(result: 'Succeeded' | 'Failed', apps: readonly ContainerRunner[]): string {
  if (result === 'Succeeded') return 'Completed';
  for (const a of apps) {
    const t = 'terminated' in a.state ? a.state.terminated : undefined;
    if (t && t.exitCode !== 0) return t.reason;
  }
  return 'Error';
}

/** What `trellis status` shows for a user's Pod that finished in an earlier run (its stored status). */
export function storedPodView(p: KubeObject): ReplicaStatusView {
  const st = (p.status ?? {}) as {
    phase?: string;
    reason?: string;
    podIP?: string;
    containerStatuses?: Record<string, unknown>[];
  };
  const cs = Array.isArray(st.containerStatuses) ? st.containerStatuses : [];
  let status = st.phase === 'Succeeded' ? 'Completed' : (st.reason ?? 'Error');
  if (st.phase === 'Failed')
    for (const c of cs) {
      const t = (c.state as { terminated?: { exitCode?: number; reason?: string } } | undefined)
        ?.terminated;
      if (c.name !== SIDECAR_CONTAINER && t && t.exitCode !== 0 && t.reason) {
        status = t.reason;
        break;
      }
    }
  const containers = (p.spec as { containers?: unknown[] } | undefined)?.containers ?? [];
  return {
    namespace: p.metadata.namespace ?? 'default',
    name: p.metadata.name,
    kind: 'pod',
    injected: p.metadata.annotations?.['sidecar.istio.io/status'] !== undefined,
    ready: `0/${cs.length || containers.length || 1}`,
    status,
    restarts: cs.reduce((n, c) => n + (typeof c.restartCount === 'number' ? c.restartCount : 0), 0),
    ports: {},
    ...(st.podIP !== undefined ? { podIP: st.podIP } : {}),
    containers: cs,
    pids: {},
  };
}

/** A Pod the runtime made itself (a Deployment's replica or a gateway), not one the user applied. */
export function isRuntimePod(p: KubeObject): boolean {
  if ((p.spec as { nodeName?: unknown } | undefined)?.nodeName !== NODE_NAME) return false;
  const owners = p.metadata.ownerReferences;
  return (
    Array.isArray(owners) &&
    owners.some(
      (o) =>
        typeof o === 'object' &&
        o !== null &&
        (o as { kind?: unknown }).kind === 'ReplicaSet' &&
        (o as { controller?: unknown }).controller === true,
    )
  );
}

/** A user's Pod as a template: its labels, annotations and spec, without what a run added. */
export function standaloneTemplate(p: KubeObject): PodTemplateSpec {
  return {
    metadata: {
      labels: withoutKeys(p.metadata.labels, RUNTIME_LABELS),
      annotations: withoutKeys(p.metadata.annotations, RUNTIME_ANNOTATIONS),
    },
    spec: p.spec,
  } as PodTemplateSpec;
}

/** What injection and explicit capture add to a Pod (rewritten on each run). */
const RUNTIME_LABELS = ['security.istio.io/tlsMode'];
const RUNTIME_ANNOTATIONS = [
  'sidecar.istio.io/status',
  'trellis.io/inbound-ports',
  'trellis.io/app-ports',
];

function withoutKeys(
  m: Readonly<Record<string, string>> | undefined,
  keys: readonly string[],
): Record<string, string> {
  const out = { ...(m ?? {}) };
  for (const k of keys) delete out[k];
  return out;
}

function definedOnly(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/** The container's command and args with `$(VAR)` expanded; an Error when it cannot run. */
function commandOf(
  c: Container,
  env: Readonly<Record<string, string>>,
  cwd: string,
): { file: string; args: readonly string[] } | Error {
  const argv = [...(c.command ?? []), ...(c.args ?? [])].map((a) => expand(a, env));
  const [first, ...rest] = argv;
  if (first === undefined)
    return new Error(
      `container ${JSON.stringify(c.name)} has no command: local mode runs the container's command and args (image ${JSON.stringify(c.image)} is not pulled)`,
    );
  const file = resolveExecutable(first, env.PATH ?? '', cwd);
  if (file instanceof Error) return file;
  return { file, args: rest };
}
