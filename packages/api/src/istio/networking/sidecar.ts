// Sidecar (networking.istio.io): narrows what a sidecar proxy listens on and which services
// it can reach (ingress and egress listeners, outbound traffic policy).
// Semantics: https://istio.io/latest/docs/reference/config/networking/sidecar/
// The rules follow Istio's webhook (pilot/pkg/config/validation/validation.go).
import { istioKind, NETWORKING_VERSIONS } from '../../kinds/istio-kind.js';
import { isIpAddress } from '../../validation/checks.js';
import type { ValidationContext } from '../../validation/problem.js';
import { enumOf, list, obj, req, str, uint32, type ObjectOf } from '../../validation/schema.js';
import {
  checkFqdn,
  checkIstioDnsLabel,
  checkPortNumber,
  checkProtocol,
  isHttpProtocol,
  isIstioDnsLabel,
  networkingWorkloadSelector,
  wildcardHostProblem,
} from '../common.js';
import { connectionPoolSettings } from './destination-rule.js';
import { serverTlsSettings } from './gateway.js';
import { destination } from './virtual-service.js';
import { UNIX_ADDRESS_PREFIX, unixAddressProblem } from './workload-entry.js';

const sidecarPortFields = {
  number: uint32(),
  protocol: str({ check: checkProtocol }),
  name: str({ check: (n, ctx) => n !== '' && checkIstioDnsLabel(n, ctx, 'port name') }),
  /** Not used by sidecars; Istio rejects it. */
  targetPort: uint32(),
};
/** istio.networking.v1.SidecarPort: the port of a sidecar listener. */
export type SidecarPort = ObjectOf<typeof sidecarPortFields>;
export const sidecarPort = obj(sidecarPortFields, {
  check: (p, ctx) => {
    if ((p.targetPort ?? 0) > 0)
      ctx.field('targetPort').error('has no effect on a Sidecar; remove it');
  },
});

export const CAPTURE_MODES = ['DEFAULT', 'IPTABLES', 'NONE'] as const;

function checkBindIp(bind: string, ctx: ValidationContext): void {
  if (!isIpAddress(bind)) ctx.error(`must be an IP address, not ${JSON.stringify(bind)}`);
}

/** `127.0.0.1:8080`, `0.0.0.0:8080`, `[::1]:8080`, `[::]:8080`, `:8080` or `unix:///path`. */
function checkDefaultEndpoint(endpoint: string, ctx: ValidationContext): void {
  if (endpoint === '') return;
  if (endpoint.startsWith(UNIX_ADDRESS_PREFIX)) {
    const p = unixAddressProblem(endpoint);
    if (p) ctx.error(p);
    return;
  }
  const m = /^(?:\[([^\]]*)\]|([^:]*)):([^:]*)$/.exec(endpoint);
  const host = m?.[1] ?? m?.[2];
  const port = m?.[3];
  if (!m || host === undefined || port === undefined)
    return ctx.error(
      `must be 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port> or unix://<path>, not ${JSON.stringify(endpoint)}`,
    );
  if (!['', '127.0.0.1', '0.0.0.0', '::1', '::'].includes(host))
    ctx.error(
      `must forward to a local address (127.0.0.1, 0.0.0.0, ::1 or ::) or a unix:// socket, not ${JSON.stringify(host)}`,
    );
  if (!/^[0-9]+$/.test(port)) ctx.error(`port ${JSON.stringify(port)} is not a number`);
  else checkPortNumber(Number(port), ctx);
}

const ingressFields = {
  port: req(sidecarPort),
  bind: str({ check: checkBindIp }),
  captureMode: enumOf(CAPTURE_MODES),
  defaultEndpoint: str({ check: checkDefaultEndpoint }),
  tls: serverTlsSettings,
  connectionPool: connectionPoolSettings,
};
/** istio.networking.v1.IstioIngressListener: a port the sidecar accepts inbound traffic on. */
export type IstioIngressListener = ObjectOf<typeof ingressFields>;
export const istioIngressListener = obj(ingressFields, { check: checkIngress });

function checkIngress(l: IstioIngressListener, ctx: ValidationContext): void {
  const port = l.port as SidecarPort | undefined;
  if (!port) return; // reported as required
  checkPortNumber(port.number ?? 0, ctx.at('port', 'number'));
  const tls = l.tls;
  if (tls) {
    const c = ctx.field('tls');
    if ((tls.subjectAltNames?.length ?? 0) > 0)
      c.field('subjectAltNames').error('is not supported for sidecar ingress TLS');
    if (tls.httpsRedirect)
      c.field('httpsRedirect').error('is not supported for sidecar ingress TLS');
    if (tls.credentialName)
      c.field('credentialName').error('is not supported for sidecar ingress TLS');
    if (tls.mode === 'ISTIO_MUTUAL' || tls.mode === 'AUTO_PASSTHROUGH')
      c.field('mode').error(`must not be ${tls.mode} for sidecar ingress TLS`);
  }
  const protocol = port.protocol ?? '';
  if (l.connectionPool?.http && !isHttpProtocol(protocol))
    ctx
      .at('connectionPool', 'http')
      .warn(
        `applies only to HTTP ports; port ${port.number ?? 0} has protocol ${JSON.stringify(protocol)}, so only the tcp settings are used`,
      );
}

/** An egress host: `namespace/dnsName`, namespace `*`, `.`, `~` or a name; dnsName an FQDN or wildcard. */
export function checkEgressHost(host: string, ctx: ValidationContext): void {
  const slash = host.indexOf('/');
  if (slash < 0)
    return ctx.error(
      `host ${JSON.stringify(host)} must be "namespace/dnsName" (for example "./*" or "istio-system/*")`,
    );
  const ns = host.slice(0, slash);
  const dns = host.slice(slash + 1);
  if (ns === '' || dns === '')
    return ctx.error(`host ${JSON.stringify(host)}: namespace and dnsName must not be empty`);
  if (!['*', '.', '~'].includes(ns) && !isIstioDnsLabel(ns))
    ctx.error(
      `host ${JSON.stringify(host)}: namespace must be "*", ".", "~" or a namespace name, not ${JSON.stringify(ns)}`,
    );
  if (dns !== '*' && !dns.includes('.'))
    ctx.error(
      `host ${JSON.stringify(host)}: short names are not allowed; use a fully qualified name such as "${dns}.<namespace>.svc.cluster.local"`,
    );
  const p = wildcardHostProblem(dns);
  if (p) ctx.error(p);
  else if (dns.includes('*') && dns !== '*' && !dns.startsWith('*.'))
    ctx.error(`host ${JSON.stringify(host)}: partial wildcards are not allowed; use "*.<domain>"`);
}

const egressFields = {
  port: sidecarPort,
  bind: str(),
  captureMode: enumOf(CAPTURE_MODES),
  hosts: req(list(str({ check: checkEgressHost }), { minItems: 1 })),
};
/** istio.networking.v1.IstioEgressListener: services the sidecar can reach, per port or for all. */
export type IstioEgressListener = ObjectOf<typeof egressFields>;
export const istioEgressListener = obj(egressFields, { check: checkEgress });

function checkEgress(l: IstioEgressListener, ctx: ValidationContext): void {
  const bind = l.bind ?? '';
  if (l.port) {
    const number = l.port.number ?? 0;
    if (number === 0) {
      if (!bind.startsWith(UNIX_ADDRESS_PREFIX))
        ctx.field('bind').error('must be a unix:// socket when the port number is 0 (or unset)');
      else {
        const p = unixAddressProblem(bind);
        if (p) ctx.field('bind').error(p);
      }
      if (l.captureMode && l.captureMode !== 'DEFAULT' && l.captureMode !== 'NONE')
        ctx.field('captureMode').error('must be DEFAULT or NONE for a Unix domain socket listener');
    } else {
      checkPortNumber(number, ctx.at('port', 'number'));
      if (bind !== '') checkBindIp(bind, ctx.field('bind'));
    }
  }
  const hosts = l.hosts as readonly string[] | undefined;
  if (hosts) warnDuplicateEgressHosts(hosts, ctx.field('hosts'));
}

/** Istio's warnings for egress hosts that repeat or are covered by `ns/*` or `*\/*`. */
function warnDuplicateEgressHosts(hosts: readonly string[], ctx: ValidationContext): void {
  const byNamespace = new Map<string, Set<string>>();
  hosts.forEach((h, i) => {
    const slash = h.indexOf('/');
    if (slash < 0) return;
    const ns = h.slice(0, slash);
    const svc = h.slice(slash + 1);
    const seen = byNamespace.get(ns) ?? new Set<string>();
    byNamespace.set(ns, seen);
    if (svc === '*' ? seen.size > 0 : seen.has(svc) || seen.has('*'))
      ctx.index(i).warn(`host ${JSON.stringify(h)} repeats or overlaps an earlier host`);
    seen.add(svc);
  });
  if (byNamespace.get('*')?.has('*') && byNamespace.size > 1)
    ctx.warn('"*/*" selects every service, so the other hosts add nothing');
}

const outboundTrafficPolicyFields = {
  mode: enumOf(['REGISTRY_ONLY', 'ALLOW_ANY'] as const),
  egressProxy: destination,
};
/** istio.networking.v1.OutboundTrafficPolicy: what to do with traffic to unknown destinations. */
export type OutboundTrafficPolicy = ObjectOf<typeof outboundTrafficPolicyFields>;
export const outboundTrafficPolicy = obj(outboundTrafficPolicyFields, {
  check: (p, ctx) => {
    const proxy = p.egressProxy;
    if (!proxy) return;
    const c = ctx.field('egressProxy');
    if (p.mode !== 'ALLOW_ANY') return c.error('is allowed only with mode ALLOW_ANY');
    if (proxy.host !== '*' && wildcardHostProblem(proxy.host) === undefined)
      checkFqdn(proxy.host, c.field('host'));
    if (!proxy.port) c.field('port').error('is required for an egress proxy');
  },
});

const sidecarFields = {
  workloadSelector: networkingWorkloadSelector,
  ingress: list(istioIngressListener),
  egress: list(istioEgressListener),
  inboundConnectionPool: connectionPoolSettings,
  outboundTrafficPolicy,
};
/** istio.networking.v1.Sidecar: the spec of a Sidecar. */
export type SidecarSpec = ObjectOf<typeof sidecarFields>;
export const sidecarSpec = obj(sidecarFields, { check: checkSidecar });

function checkSidecar(s: SidecarSpec, ctx: ValidationContext): void {
  if (
    !s.ingress?.length &&
    !s.egress?.length &&
    !s.outboundTrafficPolicy &&
    !s.inboundConnectionPool
  )
    ctx.error(
      'must set at least one of ingress, egress, outboundTrafficPolicy or inboundConnectionPool',
    );
  const ingressPorts = new Map<number, number>();
  s.ingress?.forEach((l, i) => {
    const port = l.port as SidecarPort | undefined;
    if (!port) return;
    const n = port.number ?? 0;
    const first = ingressPorts.get(n);
    if (first !== undefined)
      ctx
        .at('ingress', i, 'port', 'number')
        .error(`port ${n} is already used by ingress[${first}]`);
    else ingressPorts.set(n, i);
  });
  const egressPorts = new Map<number, number>();
  const sockets = new Map<string, number>();
  const egress = s.egress ?? [];
  egress.forEach((l, i) => {
    const c = ctx.at('egress', i);
    if (!l.port) {
      if (i !== egress.length - 1)
        c.error('the egress listener without a port (the catch-all) must be the last one');
      return;
    }
    const n = l.port.number ?? 0;
    if (n === 0) {
      const bind = l.bind ?? '';
      const first = sockets.get(bind);
      if (first !== undefined)
        c.field('bind').error(`socket ${JSON.stringify(bind)} is already used by egress[${first}]`);
      else sockets.set(bind, i);
    } else {
      const first = egressPorts.get(n);
      if (first !== undefined)
        c.at('port', 'number').error(`port ${n} is already used by egress[${first}]`);
      else egressPorts.set(n, i);
    }
  });
}

export const SIDECAR = istioKind({
  group: 'networking.istio.io',
  kind: 'Sidecar',
  versions: NETWORKING_VERSIONS,
  plural: 'sidecars',
  spec: sidecarSpec,
});
