// Gateway (networking.istio.io): servers a gateway proxy listens on, with TLS settings.
// Semantics: https://istio.io/latest/docs/reference/config/networking/gateway/
import { istioKind, NETWORKING_VERSIONS } from '../../kinds/istio-kind.js';
import { checkCidrOrIp, checkWildcardHost } from '../../validation/checks.js';
import {
  bool,
  enumOf,
  list,
  map,
  obj,
  req,
  str,
  uint32,
  type Infer,
  type ObjectOf,
} from '../../validation/schema.js';
import type { ValidationContext } from '../../validation/problem.js';

const PROTOCOLS = [
  'HTTP',
  'HTTPS',
  'GRPC',
  'GRPC-WEB',
  'HTTP2',
  'MONGO',
  'TCP',
  'TLS',
  'REDIS',
  'MYSQL',
];

/** istio.networking.v1.Port (Gateway flavour). */
export const gatewayPort = obj({
  number: req(uint32({ min: 1, max: 65535 })),
  protocol: req(
    str({
      check: (p, ctx) => {
        if (!PROTOCOLS.includes(p.toUpperCase()))
          ctx.error(`unknown protocol ${JSON.stringify(p)}; one of: ${PROTOCOLS.join(', ')}`);
      },
    }),
  ),
  name: req(str()),
  targetPort: uint32({ min: 1, max: 65535 }),
});

export const TLS_MODES = [
  'PASSTHROUGH',
  'SIMPLE',
  'MUTUAL',
  'AUTO_PASSTHROUGH',
  'ISTIO_MUTUAL',
  'OPTIONAL_MUTUAL',
] as const;
const TLS_VERSIONS = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'] as const;

/** istio.networking.v1.ServerTLSSettings */
const serverTlsFields = {
  httpsRedirect: bool(),
  mode: enumOf(TLS_MODES),
  serverCertificate: str(),
  privateKey: str(),
  caCertificates: str(),
  caCrl: str(),
  caCertCredentialName: str(),
  credentialName: str(),
  credentialNames: list(str(), { maxItems: 2 }),
  tlsCertificates: list(
    obj({ serverCertificate: str(), privateKey: str(), caCertificates: str() }),
    { maxItems: 2 },
  ),
  subjectAltNames: list(str()),
  verifyCertificateSpki: list(str({ check: checkSpkiPin })),
  verifyCertificateHash: list(str({ check: checkCertificateHash })),
  minProtocolVersion: enumOf(TLS_VERSIONS),
  maxProtocolVersion: enumOf(TLS_VERSIONS),
  cipherSuites: list(str()),
};
export type ServerTlsSettings = ObjectOf<typeof serverTlsFields>;
export const serverTlsSettings = obj(serverTlsFields, { check: checkServerTls });

/** A base64 SHA-256 of a certificate's SubjectPublicKeyInfo (Envoy: exactly 44 characters). */
function checkSpkiPin(v: string, ctx: ValidationContext): void {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(v))
    ctx.error(`must be the base64 SHA-256 of a public key (44 characters), not "${v}"`);
}

/** A hex SHA-256 of a certificate, optionally with colons (`DF:6F:...`), as Envoy takes it. */
function checkCertificateHash(v: string, ctx: ValidationContext): void {
  if (!/^[0-9A-Fa-f]{64}$/.test(v) && !/^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){31}$/.test(v))
    ctx.error(
      `must be the hex SHA-256 of a certificate (64 hex digits, colons allowed), not "${v}"`,
    );
}

function checkServerTls(tls: ServerTlsSettings, ctx: ValidationContext): void {
  const mode = tls.mode ?? 'PASSTHROUGH';
  const hasCredential = !!tls.credentialName || (tls.credentialNames?.length ?? 0) > 0;
  if (mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') {
    if (!hasCredential && (tls.tlsCertificates?.length ?? 0) === 0) {
      if (!tls.serverCertificate)
        ctx
          .field('serverCertificate')
          .error(`is required when mode is ${mode} and no credentialName is set`);
      if (!tls.privateKey)
        ctx
          .field('privateKey')
          .error(`is required when mode is ${mode} and no credentialName is set`);
      if (mode !== 'SIMPLE' && !tls.caCertificates && !tls.caCertCredentialName)
        ctx
          .field('caCertificates')
          .error(`is required when mode is ${mode} and no credentialName is set`);
    }
  }
  if (tls.credentialName && tls.credentialNames)
    ctx.error('only one of "credentialName", "credentialNames" may be set');
  const order = (v: string | undefined): number =>
    v ? TLS_VERSIONS.indexOf(v as (typeof TLS_VERSIONS)[number]) : 0;
  if (
    tls.minProtocolVersion &&
    tls.maxProtocolVersion &&
    order(tls.maxProtocolVersion) > 0 &&
    order(tls.minProtocolVersion) > order(tls.maxProtocolVersion)
  )
    ctx.field('minProtocolVersion').error('must not be above maxProtocolVersion');
}

/** istio.networking.v1.Server */
const serverFields = {
  port: req(gatewayPort),
  bind: str({
    check: (b, ctx) => {
      if (!b.startsWith('unix://')) checkCidrOrIp(b, ctx);
    },
  }),
  hosts: req(list(str({ check: checkServerHost }), { minItems: 1 })),
  tls: serverTlsSettings,
  defaultEndpoint: str(),
  name: str(),
};
export type Server = ObjectOf<typeof serverFields>;
export const server = obj(serverFields, { check: checkServer });

/** A server host: `[namespace/]dnsName`, the namespace part `*`, `.` or a namespace name. */
function checkServerHost(host: string, ctx: ValidationContext): void {
  const parts = host.split('/');
  if (parts.length > 2)
    return ctx.error(`host ${JSON.stringify(host)} must be "namespace/dnsName" or "dnsName"`);
  const dns = parts.length === 2 ? parts[1]! : parts[0]!;
  if (parts.length === 2) {
    const ns = parts[0]!;
    if (ns === '')
      return ctx.error(`host ${JSON.stringify(host)}: namespace part must not be empty`);
    if (ns !== '*' && ns !== '.' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns))
      return ctx.error(
        `host ${JSON.stringify(host)}: namespace part must be "*", "." or a namespace name`,
      );
  }
  checkWildcardHost(dns, ctx);
}

function checkServer(s: Server, ctx: ValidationContext): void {
  // Required fields may be missing (reported already, but not type errors).
  const port = s.port as Infer<typeof gatewayPort> | undefined;
  if (!port?.protocol) return;
  const proto = port.protocol.toUpperCase();
  const tlsProto = proto === 'HTTPS' || proto === 'TLS';
  if (tlsProto && !s.tls) ctx.field('tls').error(`is required for a server with protocol ${proto}`);
  if (!tlsProto && s.tls && !s.tls.httpsRedirect && s.tls.mode != null)
    ctx
      .field('tls')
      .error(
        `TLS settings apply only to HTTPS and TLS servers, not ${proto} (only httpsRedirect is allowed)`,
      );
}

export const gatewaySpec = obj(
  {
    servers: list(server),
    selector: map(str()),
  },
  {
    check: (spec, ctx) => {
      const names = new Map<string, number>();
      spec.servers?.forEach((s, i) => {
        const name = (s.port as Infer<typeof gatewayPort> | undefined)?.name;
        if (name == null || name === '') return;
        const first = names.get(name);
        if (first !== undefined)
          ctx
            .at('servers', i, 'port', 'name')
            .error(`port name ${JSON.stringify(name)} is already used by servers[${first}]`);
        else names.set(name, i);
      });
    },
  },
);

export type GatewaySpec = Infer<typeof gatewaySpec>;

export const GATEWAY = istioKind({
  group: 'networking.istio.io',
  kind: 'Gateway',
  versions: NETWORKING_VERSIONS,
  plural: 'gateways',
  shortNames: ['gw'],
  spec: gatewaySpec,
});
