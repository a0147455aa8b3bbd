// The runtime daemon (`trellis up --foreground`): the control plane in-process, an ingress gateway
// (and optionally an egress gateway) as child proxies, the workload controller, and the local HTTP
// API that `trellis status` and `trellis down` use. Start order: clean up what a killed run left,
// check the fixed ports, control plane, gateways (ready on /healthz/ready), controller. Stop
// order: apps, sidecars, gateways, control plane; the runtime's Pods leave the store.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { KubeObject } from '@trellis/api';
import {
  ConflictError,
  NotFoundError,
  TrellisError,
  errorMessage,
  systemTimers,
  type TimerApi,
} from '@trellis/core';
import { keyOf, openFileStore, type ConfigStore } from '@trellis/config';
import { ControlPlane, syncStatuses } from '@trellis/control-plane';
import type { BackoffOptions } from './backoff.js';
import { explicitCapture, transparentCapture, type CaptureMode } from './capture.js';
import { ClusterIpTable, ServiceAddressController } from './cluster-ips.js';
import {
  TransparentCaptureUnavailableError,
  TransparentNetwork,
  removeNetworkLeftovers,
  transparentPrerequisites,
} from './netns.js';
import { callControlApi, startControlApi, type ControlApi } from './control-api.js';
import { podName, podTemplateHash } from './pod-naming.js';
import { PortAllocator, PortInUseError, checkPortFree } from './ports.js';
import { identityOf, isAlive, signalTree } from './process-identity.js';
import { ProcessTable, killLeftovers, type ProcessRecord } from './process-table.js';
import type { ProbeCheck } from './readiness.js';
import { NODE_NAME, Replica, isRuntimePod, type ReplicaDeps } from './replica.js';
import {
  readDaemonInfo,
  removeFile,
  runtimePaths,
  writeJsonAtomic,
  type CaptureModeName,
  type DaemonInfo,
  type RuntimePaths,
} from './runtime-files.js';
import { syncSummary, type PodStatusRow, type StatusReport } from './status.js';
import { WorkloadController } from './workload-controller.js';

export type LogFn = (
  level: 'debug' | 'info' | 'warn' | 'error',
  message: string,
  fields?: Record<string, unknown>,
) => void;

export interface IngressOptions {
  /** Local port for Gateway servers on port 80 (default 8080; 0 picks one). */
  readonly httpPort?: number;
  /** Local port for Gateway servers on port 443 (default 8443). */
  readonly httpsPort?: number;
  /** Local port for Gateway servers on port 31400 (default 31400). */
  readonly tcpPort?: number;
}

export interface RuntimeOptions {
  readonly stateDir: string;
  /** packages/cli/bin/trellis.js: proxies run as `node <trellisBin> proxy ...`. */
  readonly trellisBin: string;
  /** Default 15010; 0 picks a free port. */
  readonly xdsPort?: number;
  /** Default 15014; 0 picks a free port. */
  readonly monitoringPort?: number;
  /** false: no ingress gateway. */
  readonly ingress?: IngressOptions | false;
  readonly egress?: boolean;
  /**
   * How pods' traffic reaches their sidecars (default explicit). `transparent` (Linux, root,
   * ip and iptables): a network namespace per pod and istio-iptables' REDIRECT rules.
   */
  readonly capture?: CaptureModeName;
  /** PATH entries put first for apps. */
  readonly binDirs?: readonly string[];
  readonly baseEnv?: Readonly<Record<string, string | undefined>>;
  readonly timers?: TimerApi;
  readonly backoff?: BackoffOptions;
  readonly check?: ProbeCheck;
  /** The cap of terminationGracePeriodSeconds (default 30 s). */
  readonly maxGraceMs?: number;
  /** The proxies' drain period on SIGTERM (default 1000 ms: the app has stopped already). */
  readonly proxyDrainMs?: number;
  /** How long to wait for the gateways to be ready (default 30 s). */
  readonly readyTimeoutMs?: number;
  readonly debounce?: { readonly quietMs?: number; readonly maxMs?: number };
  readonly log?: LogFn;
}

/** `trellis up` while a runtime runs in the same state directory. */
export class AlreadyRunningError extends TrellisError {
  readonly info: DaemonInfo;
  constructor(dir: string, info: DaemonInfo) {
    super('TRELLIS_ALREADY_RUNNING', `Trellis is already running in ${dir} (pid ${info.pid})`);
    this.name = 'AlreadyRunningError';
    this.info = info;
  }
}

const CONTROL_PLANE_NAME = 'trellis-control-plane';

/** Transparent capture: the pod network and the cluster IP allocator. */
interface NetworkParts {
  readonly network: TransparentNetwork;
  services: ServiceAddressController | undefined;
}

/** Gateway Service ports: Istio's ingress gateway Service (80 http2, 443 https, 31400 tcp). */
function gatewayService(
  name: string,
  labels: Record<string, string>,
  ports: readonly { name: string; port: number; targetPort: number }[],
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'istio-system', labels },
    spec: {
      selector: labels,
      ports: ports.map((p) => ({ ...p, protocol: 'TCP' })),
    },
  };
}

async function put(store: ConfigStore, o: KubeObject): Promise<void> {
  const existing = await store.get(keyOf(o));
  if (existing) await store.update(o);
  else await store.create(o);
}

/**
 * Deletes every Pod a runtime put in the store (nodeName `local`, owned by a ReplicaSet); the
 * Pods users applied stay (see isRuntimePod).
 */
export async function deleteRuntimePods(store: ConfigStore): Promise<number> {
  const { items } = await store.list({ group: '', kind: 'Pod' });
  let n = 0;
  for (const p of items) {
    if (!isRuntimePod(p)) continue;
    try {
      await store.delete(keyOf(p));
      n++;
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
  }
  return n;
}

/**
 * Users' Pods a killed run left Running or Pending (nodeName `local`): back to Pending, not
 * Ready (peers stop sending); they run again on the next `up`. Finished ones keep their status.
 */
export async function resetUserPods(store: ConfigStore): Promise<number> {
  const { items } = await store.list({ group: '', kind: 'Pod' });
  let n = 0;
  for (const p of items) {
    if (isRuntimePod(p)) continue;
    if ((p.spec as { nodeName?: unknown } | undefined)?.nodeName !== NODE_NAME) continue;
    const phase = (p.status as { phase?: unknown } | undefined)?.phase;
    if (phase === 'Succeeded' || phase === 'Failed' || phase === undefined) continue;
    try {
      await store.update({
        ...p,
        status: {
          phase: 'Pending',
          message: 'the local runtime stopped; the pod runs again on the next trellis up',
          conditions: [
            { type: 'PodScheduled', status: 'True' },
            { type: 'Ready', status: 'False' },
          ],
        },
      });
      n++;
    } catch (e) {
      if (!(e instanceof NotFoundError) && !(e instanceof ConflictError)) throw e;
    }
  }
  return n;
}

/** The running daemon of a state directory, if any. */
export function runningDaemon(stateDir: string): DaemonInfo | undefined {
  const info = readDaemonInfo(runtimePaths(stateDir));
  return info && isAlive(info.identity) ? info : undefined;
}

export class LocalRuntime {
  readonly paths: RuntimePaths;
  readonly store: ConfigStore;
  readonly cp: ControlPlane;
  readonly controller: WorkloadController;
  readonly gateways: readonly Replica[];
  readonly #api: ControlApi;
  readonly #table: ProcessTable;
  readonly #net: NetworkParts | undefined;
  readonly #log: LogFn;
  #info: DaemonInfo;
  #stopping: Promise<void> | undefined;
  readonly #done: Promise<void>;
  #resolveDone!: () => void;

  private constructor(
    paths: RuntimePaths,
    store: ConfigStore,
    cp: ControlPlane,
    controller: WorkloadController,
    gateways: Replica[],
    api: ControlApi,
    table: ProcessTable,
    info: DaemonInfo,
    log: LogFn,
    net: NetworkParts | undefined,
  ) {
    this.paths = paths;
    this.store = store;
    this.cp = cp;
    this.controller = controller;
    this.gateways = gateways;
    this.#api = api;
    this.#table = table;
    this.#info = info;
    this.#log = log;
    this.#net = net;
    this.#done = new Promise((r) => (this.#resolveDone = r));
  }

  get info(): DaemonInfo {
    return this.#info;
  }

  /** Resolves once the runtime has stopped (after `stop()` or POST /shutdown). */
  get done(): Promise<void> {
    return this.#done;
  }

  static async start(opts: RuntimeOptions): Promise<LocalRuntime> {
    const log: LogFn = opts.log ?? (() => {});
    const captureName: CaptureModeName = opts.capture ?? 'explicit';
    const prerequisites =
      captureName === 'transparent'
        ? transparentPrerequisites(opts.baseEnv ?? process.env)
        : undefined;
    if (prerequisites && !prerequisites.tools)
      throw new TransparentCaptureUnavailableError(prerequisites.missing);
    const paths = runtimePaths(opts.stateDir);
    mkdirSync(paths.runtimeDir, { recursive: true });
    mkdirSync(paths.logsDir, { recursive: true });
    const existing = readDaemonInfo(paths);
    if (existing && isAlive(existing.identity))
      throw new AlreadyRunningError(opts.stateDir, existing);
    // A killed run: its children may still run, its Pods are still in the store.
    const leftovers = await killLeftovers(paths.processesFile);
    if (leftovers.length > 0)
      log('warn', 'stopped processes left by a previous run', {
        processes: leftovers.map((r) => `${r.role} ${r.pod} (pid ${r.identity.pid})`),
      });
    const netLeft = await removeNetworkLeftovers(opts.stateDir, paths.runtimeDir);
    if (netLeft.length > 0)
      log('warn', 'removed the pod network left by a previous run', { removed: netLeft });
    removeFile(paths.daemonFile);
    // Claim the state directory: exactly one of two concurrent `up`s creates daemon.json.
    const self = identityOf(process.pid);
    const claim: DaemonInfo = {
      pid: process.pid,
      identity: self,
      startedAt: new Date().toISOString(),
      controlPort: 0,
      xdsPort: 0,
      monitoringPort: 0,
      capture: captureName,
      state: 'starting',
    };
    try {
      const fd = openSync(paths.daemonFile, 'wx');
      writeSync(fd, JSON.stringify(claim, null, 2) + '\n');
      closeSync(fd);
    } catch {
      const other = readDaemonInfo(paths);
      if (other) throw new AlreadyRunningError(opts.stateDir, other);
      throw new TrellisError(
        'TRELLIS_STATE_DIR_BUSY',
        `another runtime is starting in ${opts.stateDir}`,
      );
    }
    const cleanups: (() => Promise<void> | void)[] = [() => removeFile(paths.daemonFile)];
    const cleanup = async (): Promise<void> => {
      for (const c of cleanups.reverse())
        try {
          await c();
        } catch (e) {
          log('warn', 'cleanup failed', { error: errorMessage(e) });
        }
    };
    try {
      const xdsPort = opts.xdsPort ?? 15010;
      const monitoringPort = opts.monitoringPort ?? 15014;
      const ingress = opts.ingress === false ? undefined : (opts.ingress ?? {});
      const ingressPorts = ingress
        ? {
            httpPort: ingress.httpPort ?? 8080,
            httpsPort: ingress.httpsPort ?? 8443,
            tcpPort: ingress.tcpPort ?? 31400,
          }
        : undefined;
      // Transparent capture: the bridge first; pods reach xDS on the host's bridge address.
      let net: NetworkParts | undefined;
      if (prerequisites?.tools) {
        const network = await TransparentNetwork.create({
          stateDir: opts.stateDir,
          runtimeDir: paths.runtimeDir,
          tools: prerequisites.tools,
          log,
        });
        cleanups.push(() => network.close());
        net = { network, services: undefined };
        log('info', 'pod network ready', {
          bridge: network.bridge,
          subnet: network.subnet,
          host: network.hostIP,
        });
      }
      const xdsHost = net?.network.hostIP ?? '127.0.0.1';
      await checkPortFree(xdsPort, 'xDS', '--xds-port', xdsHost);
      await checkPortFree(monitoringPort, 'control plane monitoring', '--monitoring-port');
      if (ingressPorts) {
        await checkPortFree(ingressPorts.httpPort, 'ingress gateway http', '--ingress-port');
        await checkPortFree(
          ingressPorts.httpsPort,
          'ingress gateway https',
          '--ingress-https-port',
        );
        await checkPortFree(ingressPorts.tcpPort, 'ingress gateway tcp', '--ingress-tcp-port');
      }
      const store = await openFileStore(opts.stateDir);
      cleanups.push(() => store.close());
      const stale = await deleteRuntimePods(store);
      await resetUserPods(store);
      if (stale > 0) log('info', 'removed pods of a previous run from the store', { pods: stale });
      if (net) {
        const { network } = net;
        const services = new ServiceAddressController({
          store,
          table: new ClusterIpTable(join(paths.runtimeDir, 'cluster-ips.json')),
          onChange: (list) => network.setServices(list),
          log,
        });
        await services.start();
        cleanups.push(() => services.close());
        net.services = services;
      }
      let cp: ControlPlane;
      try {
        cp = await ControlPlane.start({
          store,
          xdsAddress: `${xdsHost}:${xdsPort}`,
          monitoringHost: '127.0.0.1',
          monitoringPort,
          ...(opts.debounce ? { debounce: opts.debounce } : {}),
          log: (level, message, fields) => log(level, message, fields),
        });
      } catch (e) {
        // Lost a race for the port after the check.
        if (/EADDRINUSE|address already in use|No address added/i.test(errorMessage(e)))
          throw new PortInUseError(xdsPort, 'xDS or monitoring', '--xds-port / --monitoring-port');
        throw e;
      }
      cleanups.push(() => cp.close());
      const table = new ProcessTable(paths.processesFile);
      const ports = new PortAllocator();
      const timers = opts.timers ?? systemTimers;
      const capture: CaptureMode = net ? transparentCapture(net.network) : explicitCapture;
      const deps: Omit<ReplicaDeps, 'onChange'> = {
        store,
        table,
        ports,
        paths,
        timers,
        now: () => Date.now(),
        capture,
        trellisBin: opts.trellisBin,
        xdsAddress: () => `${xdsHost}:${cp.xdsPort}`,
        binDirs: opts.binDirs ?? [],
        baseEnv: opts.baseEnv ?? process.env,
        cwd: dirname(opts.stateDir),
        ...(opts.backoff ? { backoff: opts.backoff } : {}),
        ...(opts.check ? { check: opts.check } : {}),
        maxGraceMs: opts.maxGraceMs ?? 30_000,
        proxyDrainMs: opts.proxyDrainMs ?? 1_000,
        log,
      };
      await put(store, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system' } });
      const gateways: Replica[] = [];
      cleanups.push(async () => {
        await Promise.all(gateways.map((g) => g.stop()));
      });
      let httpPort = 0;
      let httpsPort = 0;
      let tcpPort = 0;
      if (ingressPorts) {
        httpPort = ingressPorts.httpPort || (await ports.allocate());
        httpsPort = ingressPorts.httpsPort || (await ports.allocate());
        tcpPort = ingressPorts.tcpPort || (await ports.allocate());
        ports.reserve(httpPort);
        ports.reserve(httpsPort);
        ports.reserve(tcpPort);
        const labels = { app: 'istio-ingressgateway', istio: 'ingressgateway' };
        await put(
          store,
          gatewayService('istio-ingressgateway', labels, [
            { name: 'http2', port: 80, targetPort: httpPort },
            { name: 'https', port: 443, targetPort: httpsPort },
            { name: 'tcp', port: 31400, targetPort: tcpPort },
            // Gateway servers on the gateway pod's own ports (Istio's bookinfo-gateway uses 8080)
            // listen on the same local ports as 80 and 443.
            { name: 'http-alt', port: 8080, targetPort: httpPort },
            { name: 'https-alt', port: 8443, targetPort: httpsPort },
          ]),
        );
        gateways.push(
          gatewayReplica(
            'istio-ingressgateway',
            labels,
            { http2: httpPort, https: httpsPort, tcp: tcpPort },
            deps,
          ),
        );
      }
      if (opts.egress) {
        const labels = { app: 'istio-egressgateway', istio: 'egressgateway' };
        const http = await ports.allocate();
        const https = await ports.allocate();
        await put(
          store,
          gatewayService('istio-egressgateway', labels, [
            { name: 'http2', port: 80, targetPort: http },
            { name: 'https', port: 443, targetPort: https },
          ]),
        );
        gateways.push(gatewayReplica('istio-egressgateway', labels, { http2: http, https }, deps));
      }
      await Promise.all(gateways.map((g) => g.start()));
      await waitReady(gateways, opts.readyTimeoutMs ?? 30_000, paths);
      const controller = new WorkloadController(deps);
      cleanups.push(() => controller.close());
      await controller.start();
      const self: { rt?: LocalRuntime } = {};
      const api = await startControlApi({
        status: () => {
          if (!self.rt) throw new Error('starting');
          return self.rt.status();
        },
        shutdown: () => void self.rt?.stop(),
      });
      cleanups.push(() => api.close());
      const info: DaemonInfo = {
        ...claim,
        controlPort: api.port,
        xdsPort: cp.xdsPort,
        monitoringPort: cp.monitoringPort,
        ...(ingressPorts ? { ingress: { httpPort, httpsPort, tcpPort } } : {}),
        egress: opts.egress === true,
        ...(net
          ? {
              network: {
                bridge: net.network.bridge,
                subnet: net.network.subnet,
                hostIP: net.network.hostIP,
              },
            }
          : {}),
        state: 'running',
      };
      const rt = new LocalRuntime(
        paths,
        store,
        cp,
        controller,
        gateways,
        api,
        table,
        info,
        log,
        net,
      );
      self.rt = rt;
      writeJsonAtomic(paths.daemonFile, info);
      log('info', 'Trellis runtime ready', {
        capture: captureName,
        xds: `${xdsHost}:${info.xdsPort}`,
        monitoring: `127.0.0.1:${info.monitoringPort}`,
        control: `127.0.0.1:${info.controlPort}`,
      });
      return rt;
    } catch (e) {
      await cleanup();
      throw e;
    }
  }

  status(): StatusReport {
    const syncs = new Map(
      syncStatuses(this.cp.xds.connections(), 'Kubernetes').map((s) => [s.proxy, s]),
    );
    const row = (r: Replica): PodStatusRow => ({
      ...r.view(),
      sync:
        r.pod.kind !== 'gateway' && (!r.injected || r.result !== undefined)
          ? '-'
          : syncSummary(syncs.get(`${r.name}.${r.namespace}`)),
    });
    const pods = [
      ...this.controller.replicas.map(row),
      ...this.controller.finishedPods().map((v) => ({ ...v, sync: '-' })),
    ].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    return {
      daemon: this.#info,
      stateDir: this.paths.stateDir,
      components: [
        {
          namespace: 'istio-system',
          name: CONTROL_PLANE_NAME,
          ready: '1/1',
          status: this.#stopping ? 'Terminating' : 'Running',
          restarts: 0,
          ports: {
            xds: this.cp.xdsPort,
            monitoring: this.cp.monitoringPort,
            control: this.#api.port,
          },
        },
      ],
      gateways: this.gateways.map(row),
      pods,
    };
  }

  /** Stops apps, sidecars, gateways, the control plane; removes daemon.json. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#log('info', 'Trellis runtime stopping');
    this.#info = { ...this.#info, state: 'stopping' };
    try {
      writeJsonAtomic(this.paths.daemonFile, this.#info);
      await this.controller.close();
      await Promise.all(this.gateways.map((g) => g.stop()));
      await this.#net?.services?.close();
      await this.#net?.network.close();
      await this.cp.close();
      await deleteRuntimePods(this.store).catch(() => 0);
      await this.store.close();
      await this.#api.close();
    } finally {
      if (this.#table.size === 0) writeJsonAtomic(this.paths.processesFile, { processes: [] });
      removeFile(this.paths.daemonFile);
      this.#log('info', 'Trellis runtime stopped');
      this.#resolveDone();
    }
  }
}

function gatewayReplica(
  name: string,
  labels: Record<string, string>,
  ports: Record<string, number>,
  deps: Omit<ReplicaDeps, 'onChange'>,
): Replica {
  const hash = podTemplateHash({ name, labels });
  return new Replica(
    podName(name, hash),
    'istio-system',
    { kind: 'gateway', labels, serviceAccount: `${name}-service-account`, ports },
    { ...deps, onChange: () => {} },
  );
}

async function waitReady(
  gateways: readonly Replica[],
  ms: number,
  paths: RuntimePaths,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!gateways.every((g) => g.ready)) {
    if (Date.now() > deadline) {
      const g = gateways.find((x) => !x.ready)!;
      throw new TrellisError(
        'TRELLIS_GATEWAY_NOT_READY',
        `${g.name} did not become ready within ${ms / 1000} s (status ${g.view().status}); see ${join(paths.logsDir, g.namespace, g.name, 'proxy.log')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface StopResult {
  /** A daemon was running and was stopped. */
  readonly daemon: boolean;
  /** Processes of a killed run that were still running. */
  readonly leftovers: readonly ProcessRecord[];
  /** Pods of a killed run removed from the store. */
  readonly stalePods: number;
  /** What a killed run left of its pod network (transparent capture), removed. */
  readonly network: readonly string[];
}

/**
 * `trellis down`: asks the daemon to stop (POST /shutdown; SIGTERM if its API does not answer;
 * SIGKILL after `timeoutMs`), then kills what a killed run left and removes its Pods.
 */
export async function stopRuntime(stateDir: string, timeoutMs = 60_000): Promise<StopResult> {
  const paths = runtimePaths(stateDir);
  const info = readDaemonInfo(paths);
  let daemon = false;
  if (info && isAlive(info.identity)) {
    daemon = true;
    try {
      if (info.controlPort === 0) throw new Error('starting');
      await callControlApi(info.controlPort, 'POST', '/shutdown');
    } catch {
      signalTree(info.pid, 'SIGTERM');
    }
    const deadline = Date.now() + timeoutMs;
    while (isAlive(info.identity) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    if (isAlive(info.identity)) signalTree(info.pid, 'SIGKILL');
  }
  const leftovers = await killLeftovers(paths.processesFile);
  const network = await removeNetworkLeftovers(stateDir, paths.runtimeDir);
  let stalePods = 0;
  if (info || leftovers.length > 0) {
    const store = await openFileStore(stateDir);
    try {
      stalePods = await deleteRuntimePods(store);
      await resetUserPods(store);
    } finally {
      await store.close();
    }
  }
  removeFile(paths.daemonFile);
  return { daemon, leftovers, stalePods, network };
}
