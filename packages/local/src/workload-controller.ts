// The Deployment controller of the local runtime (the ReplicaSet controller and kubelet in one):
// watches Namespaces and Deployments in the store and keeps each Deployment's replicas running as
// local pods: scales on `replicas`, stops the pods of a deleted Deployment, and rolls a changed
// pod template (new replicas start at once; an old one stops for each new one that is Ready).
// As the local kubelet it also runs the Pods users applied (`kind: Pod`, not the runtime's own):
// one local pod named as the Pod, run once per Pod object (uid) unless it already finished,
// stopped when the Pod is deleted; a finished one stays in the store and in `status`.
// Injection is decided when a pod is created, from its namespace's labels at that time (as
// Istio's webhook does: relabelling a namespace affects new pods only).
import type { KubeObject, PodSpec, PodTemplateSpec } from '@trellis/api';
import { errorMessage } from '@trellis/core';
import type { ConfigStore, Watch, WatchEvent } from '@trellis/config';
import { injectionDecision } from './injection.js';
import { podName, podTemplateHash } from './pod-naming.js';
import {
  NODE_NAME,
  Replica,
  isRuntimePod,
  standaloneTemplate,
  storedPodView,
  type ReplicaDeps,
  type ReplicaStatusView,
} from './replica.js';

interface DeploymentSpecLike {
  readonly replicas?: number;
  readonly template?: PodTemplateSpec;
  readonly paused?: boolean;
}

export type ControllerDeps = Omit<ReplicaDeps, 'onChange'>;

export class WorkloadController {
  readonly #d: ControllerDeps;
  readonly #store: ConfigStore;
  readonly #namespaces = new Map<string, Readonly<Record<string, string>>>();
  readonly #deployments = new Map<string, KubeObject>();
  /** The users' Pods this node runs (namespace/name). */
  readonly #pods = new Map<string, KubeObject>();
  readonly #replicas = new Set<Replica>();
  readonly #watches: Watch[] = [];
  #scheduled = false;
  #closed = false;
  /** Notified after each reconcile pass (tests). */
  onReconcile: (() => void) | undefined;

  constructor(deps: ControllerDeps) {
    this.#d = deps;
    this.#store = deps.store;
  }

  /**
   * Lists Namespaces, then Deployments and Pods (so namespace labels are at least as new as the
   * workloads they decide injection for), then watches every kind from the oldest of the
   * versions: one watch keeps the store's order. A watch that fails is replaced by a new list.
   */
  async start(): Promise<void> {
    const ns = await this.#store.list({ group: '', kind: 'Namespace' });
    const deps = await this.#store.list({ group: 'apps', kind: 'Deployment' });
    const pods = await this.#store.list({ group: '', kind: 'Pod' });
    this.#namespaces.clear();
    for (const n of ns.items) this.#namespaces.set(n.metadata.name, n.metadata.labels ?? {});
    this.#deployments.clear();
    for (const d of deps.items) this.#deployments.set(deploymentKey(d), d);
    this.#pods.clear();
    for (const p of pods.items) if (isUserPod(p)) this.#pods.set(deploymentKey(p), p);
    const from = olderVersion(
      olderVersion(ns.resourceVersion, deps.resourceVersion),
      pods.resourceVersion,
    );
    const watch = await this.#store.watch(
      { resourceVersion: from },
      {
        onEvent: (e) => {
          if (e.object.kind === 'Namespace' && e.object.apiVersion === 'v1') this.#onNamespace(e);
          else if (e.object.kind === 'Deployment' && e.object.apiVersion.startsWith('apps/'))
            this.#onDeployment(e);
          else if (e.object.kind === 'Pod' && e.object.apiVersion === 'v1') this.#onPod(e);
        },
        onError: (err) => {
          this.#d.log('warn', 'config watch failed; listing again', { error: err.message });
          void watch.close().then(() => this.#restart());
        },
      },
    );
    this.#watches.push(watch);
    this.#schedule();
  }

  #restart(): void {
    if (this.#closed) return;
    this.#d.timers.setTimeout(() => {
      if (this.#closed) return;
      this.start().catch((e: unknown) => {
        this.#d.log('error', 'cannot list the store', { error: errorMessage(e) });
        this.#restart();
      });
    }, 1_000);
  }

  /** Every live pod (including terminating ones). */
  get replicas(): readonly Replica[] {
    return [...this.#replicas];
  }

  #onNamespace(e: WatchEvent): void {
    if (e.type === 'DELETED') this.#namespaces.delete(e.object.metadata.name);
    else this.#namespaces.set(e.object.metadata.name, e.object.metadata.labels ?? {});
  }

  #onDeployment(e: WatchEvent): void {
    const key = deploymentKey(e.object);
    if (e.type === 'DELETED') this.#deployments.delete(key);
    else this.#deployments.set(key, e.object);
    this.#schedule();
  }

  #onPod(e: WatchEvent): void {
    const key = deploymentKey(e.object);
    if (e.type === 'DELETED') {
      if (!this.#pods.delete(key)) return;
    } else if (isUserPod(e.object)) this.#pods.set(key, e.object);
    else return;
    this.#schedule();
  }

  /** Users' Pods that finished in an earlier run (no local pod of this run): as `status` shows them. */
  finishedPods(): ReplicaStatusView[] {
    const live = new Set(
      [...this.#replicas]
        .filter((r) => r.pod.kind === 'pod')
        .map((r) => `${r.namespace}/${r.name}`),
    );
    return [...this.#pods]
      .filter(([key, p]) => !live.has(key) && finished(p))
      .map(([, p]) => storedPodView(p));
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      if (this.#closed) return;
      try {
        this.#reconcile();
      } catch (e) {
        this.#d.log('error', 'reconcile failed', { error: errorMessage(e) });
      }
      this.onReconcile?.();
    });
  }

  #reconcile(): void {
    const keys = new Set<string>(this.#deployments.keys());
    for (const r of this.#replicas)
      if (r.pod.kind === 'workload') keys.add(`${r.namespace}/${r.pod.deployment}`);
    for (const key of keys) this.#reconcileOne(key);
    this.#reconcilePods();
  }

  /** The kubelet's part for users' Pods: run new ones, stop deleted (or replaced) ones. */
  #reconcilePods(): void {
    const running = new Map<string, Replica[]>();
    for (const r of this.#replicas) {
      if (r.pod.kind !== 'pod') continue;
      const key = `${r.namespace}/${r.name}`;
      running.set(key, [...(running.get(key) ?? []), r]);
    }
    for (const [key, rs] of running) {
      const p = this.#pods.get(key);
      for (const r of rs)
        if (!r.terminating && (!p || p.metadata.uid !== r.uid)) {
          r.markDeleted();
          this.#stop(r);
        }
    }
    for (const [key, p] of this.#pods) {
      // An older Pod of the same name still stopping: the new one starts once it is gone.
      if ((running.get(key) ?? []).length > 0) continue;
      if (finished(p)) continue;
      const spec = p.spec as PodSpec | undefined;
      if (!Array.isArray(spec?.containers)) continue;
      const namespace = p.metadata.namespace ?? 'default';
      const template = standaloneTemplate(p);
      const { inject } = injectionDecision({
        namespaceLabels: this.#namespaces.get(namespace),
        podLabels: template.metadata?.labels,
        podAnnotations: template.metadata?.annotations,
      });
      const r = new Replica(
        p.metadata.name,
        namespace,
        { kind: 'pod', uid: p.metadata.uid, template, injected: inject },
        { ...this.#d, onChange: () => this.#schedule() },
      );
      this.#replicas.add(r);
      this.#d.log('info', 'starting pod', { pod: key, injected: inject });
      void r.start();
    }
  }

  #reconcileOne(key: string): void {
    const dep = this.#deployments.get(key);
    const spec = dep?.spec as DeploymentSpecLike | undefined;
    const template = spec?.template;
    const usable = template !== undefined && Array.isArray(template.spec?.containers);
    const desired = usable ? Math.max(0, spec?.replicas ?? 1) : 0;
    const hash = usable ? podTemplateHash(template) : undefined;
    const [namespace = 'default', name = ''] = key.split('/');
    const live = [...this.#replicas].filter(
      (r) =>
        r.pod.kind === 'workload' &&
        r.namespace === namespace &&
        r.pod.deployment === name &&
        !r.terminating,
    );
    const current = live.filter((r) => r.hash === hash);
    const old = live.filter((r) => r.hash !== hash);
    // Scale the current template's replicas.
    if (template && hash && current.length < desired) {
      const decision = injectionDecision({
        namespaceLabels: this.#namespaces.get(namespace),
        podLabels: template.metadata?.labels,
        podAnnotations: template.metadata?.annotations,
      });
      for (let i = current.length; i < desired; i++) {
        const r = this.#create(namespace, name, hash, template, decision.inject);
        current.push(r);
      }
    } else if (current.length > desired) {
      for (const r of byStopPreference(current).slice(0, current.length - desired)) this.#stop(r);
    }
    // Old replicas go as new ones become Ready.
    const readyNew = current.filter((r) => r.ready).length;
    const keepOld = Math.max(0, desired - readyNew);
    for (const r of byStopPreference(old).slice(0, Math.max(0, old.length - keepOld)))
      this.#stop(r);
  }

  #create(
    namespace: string,
    deployment: string,
    hash: string,
    template: PodTemplateSpec,
    injected: boolean,
  ): Replica {
    const taken = new Set([...this.#replicas].map((r) => `${r.namespace}/${r.name}`));
    const name = podName(deployment, hash, (n) => taken.has(`${namespace}/${n}`));
    const r = new Replica(
      name,
      namespace,
      { kind: 'workload', deployment, hash, template, injected },
      { ...this.#d, onChange: () => this.#schedule() },
    );
    this.#replicas.add(r);
    this.#d.log('info', 'starting pod', { pod: `${namespace}/${name}`, injected });
    void r.start();
    return r;
  }

  #stop(r: Replica): void {
    this.#d.log('info', 'stopping pod', { pod: `${r.namespace}/${r.name}` });
    void r.stop().then(() => {
      this.#replicas.delete(r);
      this.#schedule();
    });
  }

  /** Stops watching, then every app, then every sidecar; Pods leave the store. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#watches.splice(0).map((w) => w.close()));
    const all = [...this.#replicas];
    await Promise.all(all.map((r) => r.stopApps()));
    await Promise.all(all.map((r) => r.stop()));
    this.#replicas.clear();
  }

  /** SIGKILL everything (fatal paths). */
  kill(): void {
    for (const r of this.#replicas) r.kill();
  }
}

/** A Pod for this node that a user applied: not the runtime's own, not bound to another node. */
function isUserPod(p: KubeObject): boolean {
  if (isRuntimePod(p)) return false;
  const node = (p.spec as { nodeName?: unknown } | undefined)?.nodeName;
  return node === undefined || node === '' || node === NODE_NAME;
}

function finished(p: KubeObject): boolean {
  const phase = (p.status as { phase?: unknown } | undefined)?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

function deploymentKey(o: KubeObject): string {
  return `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;
}

/** The older of two store versions (numeric when both are). */
function olderVersion(a: string, b: string): string {
  const x = Number(a);
  const y = Number(b);
  if (Number.isFinite(x) && Number.isFinite(y)) return x <= y ? a : b;
  return a;
}

/** Not-ready pods first, then the newest. */
function byStopPreference(rs: readonly Replica[]): Replica[] {
  return [...rs].reverse().sort((a, b) => Number(a.ready) - Number(b.ready));
}
