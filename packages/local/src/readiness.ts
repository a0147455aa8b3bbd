// Readiness of an app container, as the kubelet's prober decides it: a readinessProbe (httpGet or
// tcpSocket; the port by number or by container port name, mapped to the port the process really
// listens on) with initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold and
// failureThreshold; without a probe, the first containerPort opening (no ports: ready once
// started). Until the first success the probe runs at most 1 s apart (local processes start
// fast; the kubelet would wait a whole period). Timers are injected so tests need not sleep.
import { request } from 'node:http';
import { connect } from 'node:net';
import type { TimerApi } from '@trellis/core';
import type { Container, Probe } from '@trellis/api';

export type ProbeTarget =
  | {
      readonly kind: 'http';
      readonly port: number;
      readonly path: string;
      readonly headers: Readonly<Record<string, string>>;
    }
  | { readonly kind: 'tcp'; readonly port: number }
  | { readonly kind: 'started' };

export interface ProbeTiming {
  readonly initialDelayMs: number;
  readonly periodMs: number;
  readonly timeoutMs: number;
  readonly successThreshold: number;
  readonly failureThreshold: number;
}

export interface ReadinessSpec {
  readonly target: ProbeTarget;
  readonly timing: ProbeTiming;
  /** An explicit readinessProbe (probing goes on after the first success) or the implicit check. */
  readonly explicit: boolean;
  /** The period until the first success (default: the period, at most 1 s). */
  readonly pendingPeriodMs?: number;
}

/** The implicit check (port opening) polls this often until the port opens. */
export const PORT_OPEN_POLL_MS = 100;

/**
 * What readiness means for a container whose container ports run on `actualPorts`
 * (containerPort -> the port the process listens on). Errors name the unusable field.
 */
export function readinessSpec(
  container: Container,
  actualPorts: ReadonlyMap<number, number>,
): ReadinessSpec {
  const probe = container.readinessProbe;
  if (!probe || (!probe.httpGet && !probe.tcpSocket)) {
    const first = container.ports?.[0];
    const timing: ProbeTiming = {
      initialDelayMs: 0,
      periodMs: PORT_OPEN_POLL_MS,
      timeoutMs: 1_000,
      successThreshold: 1,
      failureThreshold: 1,
    };
    if (probe?.exec || probe?.grpc)
      throw new Error(
        'readinessProbe: only httpGet and tcpSocket probes are supported in local mode',
      );
    if (!first) return { target: { kind: 'started' }, timing, explicit: false };
    return {
      target: { kind: 'tcp', port: actualPorts.get(first.containerPort) ?? first.containerPort },
      timing,
      explicit: false,
    };
  }
  const timing = probeTiming(probe);
  if (probe.httpGet) {
    const headers: Record<string, string> = {};
    for (const h of probe.httpGet.httpHeaders ?? []) headers[h.name] = h.value;
    if (probe.httpGet.scheme === 'HTTPS')
      throw new Error('readinessProbe.httpGet.scheme: HTTPS is not supported in local mode');
    return {
      target: {
        kind: 'http',
        port: probePort(probe.httpGet.port, container, actualPorts, 'httpGet'),
        path: probe.httpGet.path ?? '/',
        headers,
      },
      timing,
      explicit: true,
    };
  }
  return {
    target: {
      kind: 'tcp',
      port: probePort(probe.tcpSocket!.port, container, actualPorts, 'tcpSocket'),
    },
    timing,
    explicit: true,
  };
}

function probeTiming(p: Probe): ProbeTiming {
  return {
    initialDelayMs: (p.initialDelaySeconds ?? 0) * 1000,
    periodMs: Math.max(1, p.periodSeconds ?? 10) * 1000,
    timeoutMs: Math.max(1, p.timeoutSeconds ?? 1) * 1000,
    successThreshold: Math.max(1, p.successThreshold ?? 1),
    failureThreshold: Math.max(1, p.failureThreshold ?? 3),
  };
}

function probePort(
  port: number | string,
  container: Container,
  actualPorts: ReadonlyMap<number, number>,
  field: string,
): number {
  let containerPort: number;
  if (typeof port === 'number') containerPort = port;
  else if (/^\d+$/.test(port)) containerPort = Number(port);
  else {
    const named = container.ports?.find((p) => p.name === port);
    if (!named)
      throw new Error(
        `readinessProbe.${field}.port: no container port is named ${JSON.stringify(port)}`,
      );
    containerPort = named.containerPort;
  }
  return actualPorts.get(containerPort) ?? containerPort;
}

/** Runs one check: true on success (HTTP 200-399, TCP connected) within the timeout. */
export type ProbeCheck = (target: ProbeTarget, timeoutMs: number) => Promise<boolean>;

/**
 * The network check against `host` (the pod's address), from `localAddress` when given
 * (transparent capture: a source the pod's iptables rules do not capture).
 */
export function networkCheckVia(host: string, localAddress?: string): ProbeCheck {
  const from = localAddress !== undefined ? { localAddress } : {};
  return (target, timeoutMs) => {
    if (target.kind === 'started') return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      if (target.kind === 'tcp') {
        const s = connect({ host, port: target.port, ...from });
        const done = (ok: boolean): void => {
          s.destroy();
          resolve(ok);
        };
        s.setTimeout(timeoutMs, () => done(false));
        s.once('connect', () => done(true));
        s.once('error', () => done(false));
        return;
      }
      const req = request(
        {
          host,
          port: target.port,
          path: target.path,
          method: 'GET',
          headers: { 'user-agent': 'kube-probe/1.30', ...target.headers },
          timeout: timeoutMs,
          agent: false,
          ...from,
        },
        (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          resolve(code >= 200 && code < 400);
        },
      );
      req.once('timeout', () => req.destroy(new Error('timeout')));
      req.once('error', () => resolve(false));
      req.end();
    });
  };
}

/** The check of pods on 127.0.0.1. */
export const networkCheck: ProbeCheck = networkCheckVia('127.0.0.1');

export interface ProberOptions {
  readonly spec: ReadinessSpec;
  readonly timers: TimerApi;
  readonly check?: ProbeCheck;
  /** Called when readiness changes (starts false). */
  readonly onChange: (ready: boolean) => void;
}

/** Probes one running container until stopped. */
export class ReadinessProber {
  readonly #o: ProberOptions;
  readonly #check: ProbeCheck;
  #timer: unknown;
  #stopped = false;
  #ready = false;
  #everReady = false;
  #successes = 0;
  #failures = 0;
  /** Checks run (for tests and status). */
  probes = 0;

  constructor(o: ProberOptions) {
    this.#o = o;
    this.#check = o.check ?? networkCheck;
  }

  get ready(): boolean {
    return this.#ready;
  }

  start(): void {
    this.#schedule(this.#o.spec.timing.initialDelayMs);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = undefined;
      void this.#probe();
    }, ms);
  }

  async #probe(): Promise<void> {
    if (this.#stopped) return;
    const { target, timing, explicit } = this.#o.spec;
    this.probes++;
    let ok: boolean;
    try {
      ok = await this.#check(target, timing.timeoutMs);
    } catch {
      ok = false;
    }
    if (this.#stopped) return;
    if (ok) {
      this.#failures = 0;
      this.#successes++;
      if (!this.#ready && this.#successes >= timing.successThreshold) this.#set(true);
    } else {
      this.#successes = 0;
      this.#failures++;
      if (this.#ready && this.#failures >= timing.failureThreshold) this.#set(false);
    }
    // The implicit check stops once the port has opened; an explicit probe goes on.
    if (this.#ready && !explicit) return;
    this.#schedule(
      this.#everReady
        ? timing.periodMs
        : (this.#o.spec.pendingPeriodMs ?? Math.min(timing.periodMs, 1_000)),
    );
  }

  #set(ready: boolean): void {
    this.#ready = ready;
    if (ready) this.#everReady = true;
    this.#o.onChange(ready);
  }
}
