// The secrets (SDS) a proxy asks for by name, as istiod's SDS generator serves them
// (pilot/pkg/xds/sds.go): `kubernetes://NAME` is a Secret's certificate and key (a Secret `type:
// tlsCertificate`), `kubernetes://NAME-cacert` its CA bundle (`validationContext`), read from the
// Secret `NAME-cacert` if there is one, else from `NAME` itself.
//
// Who may read what, as istiod's filterAuthorizedResources: only Secrets of the proxy's own
// namespace; a certificate and key only by a gateway (router proxy; istiod asks Kubernetes
// whether the proxy's service account may list Secrets, which gateways' may and sidecars'
// usually not); a CA bundle, public by nature, by any proxy of the namespace. Anything refused,
// missing or broken is left out of the answer and reported as a warning, never failing the
// request: one bad reference must not break the others or the proxy's stream.
//
// Names the control plane does not serve are left out without a warning: `default` and
// `ROOTCA` (the workload certificate and the mesh roots, a CA's business) and `file-cert:` /
// `file-root:` (files the proxy reads itself, as Istio's agent does).
import type { Secret } from '@trellis/envoy';
import type { Snapshot } from '@trellis/registry';
import type { Proxy } from './proxy.js';
import { caCredential, certificateCredential } from './secret-credential.js';
import { parseCredentialResourceName, type CredentialRef } from './secret-name.js';
import { SDS_CA_SUFFIX } from './tls-sds.js';

/** Options of secret generation. */
export interface SecretGenerationOptions {
  /** The time (ms since the epoch) to check expiry against; without it, expiry is not checked. */
  readonly now?: number;
}

/** A problem with one requested name: left out of the answer, or served with a caveat. */
export interface SecretWarning {
  /** The SDS resource name asked for. */
  readonly resourceName: string;
  /** `namespace/name` of the Secret it refers to, when it names one. */
  readonly secret?: string;
  readonly message: string;
}

/** The secrets served for a request, and what went wrong with the rest. */
export interface GeneratedSecrets {
  /** Sorted by name; at most one per requested name. */
  readonly secrets: Secret[];
  readonly warnings: SecretWarning[];
}

type KubernetesRef = Extract<CredentialRef, { kind: 'kubernetes' }>;

const base64 = (b: Buffer): string => b.toString('base64');

/** Why `proxy` may not read `ref`, or undefined when it may. */
function refusal(ref: KubernetesRef, proxy: Proxy): string | undefined {
  if (ref.namespace !== proxy.namespace)
    return `proxy ${proxy.id} may not read a Secret of namespace ${ref.namespace}: credentials are served only from the proxy's own namespace (${proxy.namespace})`;
  if (!ref.caOnly && proxy.type !== 'router')
    return `proxy ${proxy.id} is a sidecar: only gateways (router proxies) may read certificates and keys`;
  return undefined;
}

function expiryWarning(
  what: string,
  notAfter: number,
  opts: SecretGenerationOptions,
): string | undefined {
  if (opts.now === undefined || Number.isNaN(notAfter) || notAfter >= opts.now) return undefined;
  return `${what} expired at ${new Date(notAfter).toISOString()} (served anyway, as istiod does)`;
}

type Warn = (secret: string, message: string) => void;

/** `kubernetes://NAME-cacert`: the CA bundle of Secret `NAME-cacert`, else of `NAME`. */
function caSecret(
  snapshot: Snapshot,
  ref: KubernetesRef,
  warn: Warn,
  opts: SecretGenerationOptions,
): Secret | undefined {
  const base = ref.name.slice(0, -SDS_CA_SUFFIX.length);
  const own = snapshot.secret(ref.namespace, ref.name);
  const object = own ?? snapshot.secret(ref.namespace, base);
  const secret = `${ref.namespace}/${own || !object ? ref.name : base}`;
  if (!object) {
    warn(secret, `neither Secret ${ref.namespace}/${ref.name} nor ${ref.namespace}/${base} exists`);
    return undefined;
  }
  const ca = caCredential(object);
  if (!ca.ok) {
    warn(secret, ca.error);
    return undefined;
  }
  const expired = expiryWarning('a CA certificate', ca.value.notAfter, opts);
  if (expired !== undefined) warn(secret, expired);
  return {
    name: ref.resourceName,
    validationContext: {
      trustedCa: { inlineBytes: base64(ca.value.trustedCa) },
      ...(ca.value.crl ? { crl: { inlineBytes: base64(ca.value.crl) } } : {}),
    },
  };
}

/** `kubernetes://NAME`: the certificate chain and key of Secret `NAME`. */
function certificateSecret(
  snapshot: Snapshot,
  ref: KubernetesRef,
  warn: Warn,
  opts: SecretGenerationOptions,
): Secret | undefined {
  const secret = `${ref.namespace}/${ref.name}`;
  const object = snapshot.secret(ref.namespace, ref.name);
  if (!object) {
    warn(secret, 'the Secret does not exist');
    return undefined;
  }
  const cert = certificateCredential(object);
  if (!cert.ok) {
    warn(secret, cert.error);
    return undefined;
  }
  const expired = expiryWarning('the certificate', cert.value.notAfter, opts);
  if (expired !== undefined) warn(secret, expired);
  return {
    name: ref.resourceName,
    tlsCertificate: {
      certificateChain: { inlineBytes: base64(cert.value.certificateChain) },
      privateKey: { inlineBytes: base64(cert.value.privateKey) },
      ...(cert.value.ocspStaple
        ? { ocspStaple: { inlineBytes: base64(cert.value.ocspStaple) } }
        : {}),
    },
  };
}

/**
 * The secrets `proxy` asked for by `names`, from the snapshot's Secrets. SDS is never a wildcard
 * subscription: without names, nothing is served.
 */
export function generateSecrets(
  snapshot: Snapshot,
  proxy: Proxy,
  names: readonly string[] | undefined,
  opts: SecretGenerationOptions = {},
): GeneratedSecrets {
  const secrets: Secret[] = [];
  const warnings: SecretWarning[] = [];
  for (const resourceName of [...new Set(names ?? [])].sort()) {
    const ref = parseCredentialResourceName(resourceName, proxy.namespace);
    if (ref.kind === 'local') continue;
    if (ref.kind === 'invalid') {
      warnings.push({ resourceName, message: ref.error });
      continue;
    }
    const warn: Warn = (secret, message) => warnings.push({ resourceName, secret, message });
    const refused = refusal(ref, proxy);
    if (refused !== undefined) {
      warn(`${ref.namespace}/${ref.name}`, refused);
      continue;
    }
    const s = ref.caOnly
      ? caSecret(snapshot, ref, warn, opts)
      : certificateSecret(snapshot, ref, warn, opts);
    if (s) secrets.push(s);
  }
  return { secrets, warnings };
}

/** A warning as one log line: `SDS kubernetes://x (Secret ns/x): message`. */
export function formatSecretWarning(w: SecretWarning): string {
  return `SDS ${w.resourceName}${w.secret !== undefined ? ` (Secret ${w.secret})` : ''}: ${w.message}`;
}
