// Envoy's TLS contexts (envoy.transport_sockets.tls: UpstreamTlsContext / DownstreamTlsContext)
// in two steps:
//
// 1. compileTlsContext (once per configuration, also by the xDS validator): the static checks
//    Envoy makes when it builds a context — certificate sources, SDS references, inline PEM
//    material that parses and whose key matches, SAN matchers, TLS versions, cipher suites,
//    curves and signature algorithms, ALPN — every problem with its field path.
// 2. TlsContextProvider.resolve (when a connection needs it): the certificates and validation
//    context from inline data, files, and SDS / agent-resolved secrets (SecretManager), merged
//    (combined_validation_context) and built into node SecureContexts. The result is cached by
//    the identity of everything it was built from, so a secret or file that changes takes effect
//    for the next connection, and nothing is rebuilt otherwise.
import { createSecureContext, getCiphers, type SecureContext, type SecureVersion } from 'node:tls';
import {
  CONFIG_TYPE_URL,
  type CertificateValidationContext,
  type Cluster,
  type CommonTlsContext,
  type DownstreamTlsContext,
  type Listener,
  type SdsSecretConfig,
  type Secret,
  type TlsCertificate,
  type TlsProtocol,
  type TransportSocket,
  type UpstreamTlsContext,
} from '@trellis/envoy';
import { errorMessage } from '@trellis/core';
import { compileRe2 } from '../xds/re2.js';
import { inlineData, readDataSource } from './data-source.js';
import { certificateAndKeyProblems, parseCertificates } from './pem.js';
import {
  compilePeerVerification,
  dnsSans,
  uriSans,
  verifiesPeer,
  type PeerVerification,
} from './peer-verifier.js';
import { isLocalSecretName, type SecretManager } from './secret-manager.js';

/** Which end of a connection a context is for. */
export type TlsSide = 'upstream' | 'downstream';

/** Where a certificate comes from. */
export type CertificateSource =
  | { readonly kind: 'static'; readonly cert: TlsCertificate }
  | { readonly kind: 'secret'; readonly name: string };

/** A TLS context, checked and ready to resolve. */
export interface CompiledTlsContext {
  readonly side: TlsSide;
  readonly certificates: readonly CertificateSource[];
  /** The static validation context (or combined's default one). */
  readonly staticValidation: CertificateValidationContext | undefined;
  /** The SDS (or agent-resolved) validation context's name. */
  readonly validationSecret: string | undefined;
  /** alpn_protocols (empty: the codec decides upstream; none offered downstream). */
  readonly alpn: readonly string[];
  readonly minVersion: SecureVersion | undefined;
  readonly maxVersion: SecureVersion | undefined;
  readonly ciphers: string | undefined;
  readonly ecdhCurve: string | undefined;
  readonly sigalgs: string | undefined;
  readonly requireClientCertificate: boolean;
  readonly requireSni: boolean;
  /** UpstreamTlsContext.sni. */
  readonly sni: string | undefined;
  /** Every secret name the context references (SDS and agent-resolved). */
  readonly secretNames: readonly string[];
}

const VERSIONS: Readonly<Record<TlsProtocol, SecureVersion | undefined>> = {
  TLS_AUTO: undefined,
  TLSv1_0: 'TLSv1',
  TLSv1_1: 'TLSv1.1',
  TLSv1_2: 'TLSv1.2',
  TLSv1_3: 'TLSv1.3',
};
const VERSION_ORDER: readonly string[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** Envoy's defaults: TLS 1.2 to 1.3 on both ends. */
const DEFAULT_MIN: SecureVersion = 'TLSv1.2';
const DEFAULT_MAX: SecureVersion = 'TLSv1.3';

let knownCiphers: Set<string> | undefined;

function join(path: string, field: string): string {
  return path === '' ? field : `${path}.${field}`;
}

function checkSdsConfig(s: SdsSecretConfig, path: string, problems: string[]): string | undefined {
  const name = s.name ?? '';
  if (name === '') {
    problems.push(`${join(path, 'name')}: is required`);
    return undefined;
  }
  if (s.sdsConfig === undefined) {
    if (!isLocalSecretName(name))
      problems.push(
        `${join(path, 'sds_config')}: is required (the proxy has no static secrets; secret "${name}")`,
      );
  } else if (s.sdsConfig.ads === undefined) {
    problems.push(
      `${join(path, 'sds_config')}: must be ads: the proxy fetches secrets only over ADS`,
    );
  }
  return name;
}

function checkStaticCertificate(c: TlsCertificate, path: string, problems: string[]): void {
  if (!c.certificateChain) problems.push(`${join(path, 'certificate_chain')}: is required`);
  if (!c.privateKey) problems.push(`${join(path, 'private_key')}: is required`);
  if (!c.certificateChain || !c.privateKey) return;
  const chain = inlineData(c.certificateChain);
  const key = inlineData(c.privateKey);
  const pass = c.password ? inlineData(c.password)?.toString('utf8') : undefined;
  if (c.password?.filename) problems.push(`${join(path, 'password')}: must be inline`);
  // Files are read when a connection needs them (a missing file fails connections).
  if (chain === undefined || key === undefined) return;
  for (const p of certificateAndKeyProblems(chain, key, pass)) problems.push(`${path}.${p}`);
}

/** Static problems of a validation context (whose trusted CA may still come from SDS). */
function checkValidation(
  v: CertificateValidationContext,
  path: string,
  problems: string[],
  caFromSds: boolean,
): void {
  if (v.trustedCa) {
    const inline = inlineData(v.trustedCa);
    if (inline !== undefined) {
      const r = parseCertificates(inline);
      if (!r.ok) problems.push(`${join(path, 'trusted_ca')}: ${r.error}`);
    }
  }
  if (v.crl) {
    const inline = inlineData(v.crl);
    if (inline !== undefined) {
      try {
        createSecureContext({ crl: inline });
      } catch (e) {
        problems.push(`${join(path, 'crl')}: ${errorMessage(e)}`);
      }
    }
  }
  (v.matchTypedSubjectAltNames ?? []).forEach((m, i) => {
    const p = `${join(path, 'match_typed_subject_alt_names')}[${i}]`;
    const t = m.sanType ?? 'SAN_TYPE_UNSPECIFIED';
    if (t === 'SAN_TYPE_UNSPECIFIED') problems.push(`${join(p, 'san_type')}: must be set`);
    else if (t === 'OTHER_NAME')
      problems.push(`${join(p, 'san_type')}: OTHER_NAME is not implemented by the Trellis proxy`);
    checkStringMatcher(m.matcher, join(p, 'matcher'), problems);
  });
  const legacy = (v as { matchSubjectAltNames?: { safeRegex?: { regex?: string } }[] })
    .matchSubjectAltNames;
  (legacy ?? []).forEach((m, i) =>
    checkStringMatcher(m, `${join(path, 'match_subject_alt_names')}[${i}]`, problems),
  );
  (v.verifyCertificateHash ?? []).forEach((h, i) => {
    if (!/^([0-9a-fA-F]{2}:){31}[0-9a-fA-F]{2}$|^[0-9a-fA-F]{64}$/.test(h))
      problems.push(
        `${join(path, 'verify_certificate_hash')}[${i}]: invalid SHA-256 hash '${h}' (64 hex digits, optionally colon-separated)`,
      );
  });
  (v.verifyCertificateSpki ?? []).forEach((h, i) => {
    const b = Buffer.from(h, 'base64');
    if (b.length !== 32 || b.toString('base64') !== h)
      problems.push(
        `${join(path, 'verify_certificate_spki')}[${i}]: invalid base64-encoded SHA-256 '${h}'`,
      );
  });
  if (
    !caFromSds &&
    !v.trustedCa &&
    (v.matchTypedSubjectAltNames?.length ?? 0) + (legacy?.length ?? 0) > 0
  )
    problems.push(
      `${path}: SAN-based verification of peer certificates without trusted CA is insecure and not allowed`,
    );
  if (v.crl && !v.trustedCa && !caFromSds)
    problems.push(`${join(path, 'crl')}: a CRL needs a trusted_ca`);
}

function checkStringMatcher(
  m: { safeRegex?: { regex?: string } } | undefined,
  path: string,
  problems: string[],
): void {
  if (!m) {
    problems.push(`${path}: is required`);
    return;
  }
  const re = m.safeRegex?.regex;
  if (re !== undefined) {
    const r = compileRe2(re);
    if (!r.ok) problems.push(`${join(path, 'safe_regex.regex')}: ${r.error}`);
  }
}

function tlsVersion(
  v: TlsProtocol | undefined,
  path: string,
  problems: string[],
): SecureVersion | undefined {
  if (v === undefined) return undefined;
  if (!(v in VERSIONS)) {
    problems.push(`${path}: unknown TLS version '${String(v)}'`);
    return undefined;
  }
  return VERSIONS[v];
}

/** Envoy's cipher list (`[A|B]` equal-preference groups) as an OpenSSL cipher string. */
function cipherString(list: readonly string[], path: string, problems: string[]): string {
  knownCiphers ??= new Set(getCiphers());
  const names: string[] = [];
  list.forEach((entry, i) => {
    const inner = entry.startsWith('[') && entry.endsWith(']') ? entry.slice(1, -1) : entry;
    for (const c of inner.split('|')) {
      if (c === '') continue;
      if (!knownCiphers?.has(c.toLowerCase()))
        problems.push(`${path}[${i}]: unknown cipher suite '${c}'`);
      else names.push(c);
    }
  });
  return names.join(':');
}

/**
 * Checks a TLS context's typed config and compiles it. `problems` gets every problem prefixed
 * with `path` (proto field names); the result is only usable when none was added.
 */
export function compileTlsContext(
  typed: UpstreamTlsContext | DownstreamTlsContext,
  side: TlsSide,
  problems: string[],
  path = '',
): CompiledTlsContext {
  const ctx: CommonTlsContext = typed.commonTlsContext ?? {};
  const cp = join(path, 'common_tls_context');
  const secretNames: string[] = [];
  const certificates: CertificateSource[] = [];
  const staticCerts = ctx.tlsCertificates ?? [];
  const sdsCerts = ctx.tlsCertificateSdsSecretConfigs ?? [];
  const provider = (ctx as { tlsCertificateProviderInstance?: ProviderInstance })
    .tlsCertificateProviderInstance;
  const sources = [staticCerts.length > 0, sdsCerts.length > 0, provider !== undefined].filter(
    Boolean,
  ).length;
  if (sources > 1)
    problems.push(
      `${cp}: only one of tls_certificates, tls_certificate_sds_secret_configs and tls_certificate_provider_instance may be set`,
    );
  staticCerts.forEach((c, i) => {
    checkStaticCertificate(c, `${join(cp, 'tls_certificates')}[${i}]`, problems);
    certificates.push({ kind: 'static', cert: c });
  });
  sdsCerts.forEach((s, i) => {
    const name = checkSdsConfig(
      s,
      `${join(cp, 'tls_certificate_sds_secret_configs')}[${i}]`,
      problems,
    );
    if (name !== undefined) {
      certificates.push({ kind: 'secret', name });
      secretNames.push(name);
    }
  });
  if (provider !== undefined) {
    const name = providerSecretName(provider);
    certificates.push({ kind: 'secret', name });
    secretNames.push(name);
  }
  if (side === 'downstream' && certificates.length === 0)
    problems.push(`${cp}: a downstream (server) TLS context needs a certificate`);
  if (side === 'upstream' && certificates.length > 1)
    problems.push(`${cp}: multiple TLS certificates are not supported for client contexts`);

  // Validation: validation_context, its SDS form, or combined (static default + SDS).
  let staticValidation: CertificateValidationContext | undefined;
  let validationSecret: string | undefined;
  const forms = [
    ctx.validationContext !== undefined,
    ctx.validationContextSdsSecretConfig !== undefined,
    ctx.combinedValidationContext !== undefined,
  ].filter(Boolean).length;
  if (forms > 1)
    problems.push(
      `${cp}: only one of validation_context, validation_context_sds_secret_config and combined_validation_context may be set`,
    );
  if (ctx.validationContext) {
    staticValidation = ctx.validationContext;
    const caProvider = (
      ctx.validationContext as { caCertificateProviderInstance?: ProviderInstance }
    ).caCertificateProviderInstance;
    if (caProvider !== undefined) {
      validationSecret = providerSecretName(caProvider);
      secretNames.push(validationSecret);
      if (ctx.validationContext.trustedCa)
        problems.push(
          `${join(cp, 'validation_context')}: only one of trusted_ca and ca_certificate_provider_instance may be set`,
        );
    }
    checkValidation(
      ctx.validationContext,
      join(cp, 'validation_context'),
      problems,
      caProvider !== undefined,
    );
  } else if (ctx.validationContextSdsSecretConfig) {
    validationSecret = checkSdsConfig(
      ctx.validationContextSdsSecretConfig,
      join(cp, 'validation_context_sds_secret_config'),
      problems,
    );
    if (validationSecret !== undefined) secretNames.push(validationSecret);
  } else if (ctx.combinedValidationContext) {
    const c = ctx.combinedValidationContext;
    const p = join(cp, 'combined_validation_context');
    staticValidation = c.defaultValidationContext ?? {};
    if (!c.validationContextSdsSecretConfig)
      problems.push(`${join(p, 'validation_context_sds_secret_config')}: is required`);
    else {
      validationSecret = checkSdsConfig(
        c.validationContextSdsSecretConfig,
        join(p, 'validation_context_sds_secret_config'),
        problems,
      );
      if (validationSecret !== undefined) secretNames.push(validationSecret);
    }
    checkValidation(staticValidation, join(p, 'default_validation_context'), problems, true);
  }
  const down = side === 'downstream' ? (typed as DownstreamTlsContext) : undefined;
  const requireClientCertificate = down?.requireClientCertificate === true;
  if (requireClientCertificate && staticValidation === undefined && validationSecret === undefined)
    problems.push(
      `${join(path, 'require_client_certificate')}: needs a validation context (trusted_ca) to verify client certificates`,
    );

  // TLS parameters.
  const params = ctx.tlsParams ?? {};
  const pp = join(cp, 'tls_params');
  const minVersion = tlsVersion(
    params.tlsMinimumProtocolVersion,
    join(pp, 'tls_minimum_protocol_version'),
    problems,
  );
  const maxVersion = tlsVersion(
    params.tlsMaximumProtocolVersion,
    join(pp, 'tls_maximum_protocol_version'),
    problems,
  );
  if (
    VERSION_ORDER.indexOf(minVersion ?? DEFAULT_MIN) >
    VERSION_ORDER.indexOf(maxVersion ?? DEFAULT_MAX)
  )
    problems.push(
      `${pp}: tls_minimum_protocol_version (${minVersion ?? DEFAULT_MIN}) is above tls_maximum_protocol_version (${maxVersion ?? DEFAULT_MAX})`,
    );
  const ciphers =
    params.cipherSuites && params.cipherSuites.length > 0
      ? cipherString(params.cipherSuites, join(pp, 'cipher_suites'), problems)
      : undefined;
  const ecdhCurve =
    params.ecdhCurves && params.ecdhCurves.length > 0 ? params.ecdhCurves.join(':') : undefined;
  if (ecdhCurve !== undefined) {
    try {
      createSecureContext({ ecdhCurve });
    } catch {
      problems.push(`${join(pp, 'ecdh_curves')}: unknown curve in '${ecdhCurve}'`);
    }
  }
  const sigalgs =
    params.signatureAlgorithms && params.signatureAlgorithms.length > 0
      ? params.signatureAlgorithms.join(':')
      : undefined;
  if (sigalgs !== undefined) {
    try {
      createSecureContext({ sigalgs });
    } catch {
      problems.push(
        `${join(pp, 'signature_algorithms')}: unknown signature algorithm in '${sigalgs}'`,
      );
    }
  }
  const alpn = ctx.alpnProtocols ?? [];
  alpn.forEach((a, i) => {
    if (a === '' || Buffer.byteLength(a) > 255)
      problems.push(`${join(cp, 'alpn_protocols')}[${i}]: must be 1 to 255 bytes`);
  });
  const sni = side === 'upstream' ? (typed as UpstreamTlsContext).sni : undefined;
  if (sni !== undefined && Buffer.byteLength(sni) > 255)
    problems.push(`${join(path, 'sni')}: must be at most 255 bytes`);
  return {
    side,
    certificates,
    staticValidation,
    validationSecret,
    alpn,
    minVersion,
    maxVersion,
    ciphers: ciphers === '' ? undefined : ciphers,
    ecdhCurve,
    sigalgs,
    requireClientCertificate,
    requireSni: down?.requireSni === true,
    sni: sni === '' ? undefined : sni,
    secretNames: [...new Set(secretNames)],
  };
}

/** `CertificateProviderPluginInstance` (Istio's proxyless form) in its proto3-JSON shape. */
interface ProviderInstance {
  readonly instanceName?: string;
  readonly certificateName?: string;
}

/**
 * The secret a certificate provider instance stands for: the Trellis proxy resolves
 * `{instance_name: default, certificate_name: ROOTCA}` as the SDS secret `ROOTCA` (the
 * workload certificate `default` when no name is given).
 */
function providerSecretName(p: ProviderInstance): string {
  return p.certificateName || 'default';
}

/** Every secret a TLS transport socket's typed config references (for SDS subscriptions). */
export function tlsSecretNames(
  typed: UpstreamTlsContext | DownstreamTlsContext,
): readonly string[] {
  return compileTlsContext(typed, 'upstream', []).secretNames;
}

// ---------------------------------------------------------------------------------------
// Resolution

/** One server certificate's context, with the names it serves (SNI selection). */
export interface ServerCertificate {
  readonly context: SecureContext;
  readonly dnsNames: readonly string[];
}

/** A context's material, ready for connections. */
export interface ResolvedTls {
  /** Downstream: one per certificate (the first is the default). Upstream: exactly one. */
  readonly contexts: readonly ServerCertificate[];
  /** How the peer is verified; undefined: it is not (no validation context). */
  readonly verification: PeerVerification | undefined;
  /** Downstream: ask the client for a certificate. */
  readonly requestCert: boolean;
  /** The first URI SAN of our own certificate (Istio's local principal). */
  readonly localUriSan: string | undefined;
}

export type TlsResolution =
  | { readonly kind: 'ok'; readonly value: ResolvedTls }
  /** A secret has not been received (yet). */
  | { readonly kind: 'missing'; readonly name: string }
  | { readonly kind: 'error'; readonly message: string };

/** Envoy's MergeFrom of the SDS validation context onto the default one (combined). */
function mergeValidation(
  base: CertificateValidationContext | undefined,
  dynamic: CertificateValidationContext,
): CertificateValidationContext {
  if (!base) return dynamic;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(dynamic) as [string, unknown][]) {
    const b = out[k];
    out[k] = Array.isArray(v) && Array.isArray(b) ? [...(b as unknown[]), ...(v as unknown[])] : v;
  }
  return out;
}

/** The material of a TLS context, resolved when connections need it and cached. */
export class TlsContextProvider {
  readonly config: CompiledTlsContext;
  readonly #secrets: SecretManager;
  #tokens: readonly object[] = [];
  #cached: TlsResolution | undefined;

  constructor(config: CompiledTlsContext, secrets: SecretManager) {
    this.config = config;
    this.#secrets = secrets;
  }

  /** The context's material now (built again only when a secret or file changed). */
  resolve(): TlsResolution {
    const c = this.config;
    const files = this.#secrets.files;
    const tokens: object[] = [];
    const certs: { chain: Buffer; key: Buffer; passphrase: string | undefined }[] = [];
    for (const src of c.certificates) {
      let cert: TlsCertificate;
      if (src.kind === 'static') cert = src.cert;
      else {
        const r = this.#secrets.certificate(src.name);
        if (r.kind !== 'ok') return r;
        cert = r.value;
      }
      tokens.push(cert);
      if (!cert.certificateChain || !cert.privateKey)
        return {
          kind: 'error',
          message: 'TLS certificate needs a certificate_chain and a private_key',
        };
      const chain = readDataSource(cert.certificateChain, files);
      if (!chain.ok) return { kind: 'error', message: `certificate_chain: ${chain.error}` };
      const key = readDataSource(cert.privateKey, files);
      if (!key.ok) return { kind: 'error', message: `private_key: ${key.error}` };
      tokens.push(chain.token, key.token);
      const pass = cert.password ? inlineData(cert.password)?.toString('utf8') : undefined;
      certs.push({ chain: chain.data, key: key.data, passphrase: pass });
    }
    let validation = c.staticValidation;
    if (c.validationSecret !== undefined) {
      const r = this.#secrets.validationContext(c.validationSecret);
      if (r.kind !== 'ok') return r;
      tokens.push(r.value);
      validation = mergeValidation(c.staticValidation, r.value);
    }
    let ca: Buffer | undefined;
    let crl: Buffer | undefined;
    if (validation?.trustedCa) {
      const r = readDataSource(validation.trustedCa, files);
      if (!r.ok) return { kind: 'error', message: `trusted_ca: ${r.error}` };
      tokens.push(r.token);
      ca = r.data;
    }
    if (validation?.crl) {
      const r = readDataSource(validation.crl, files);
      if (!r.ok) return { kind: 'error', message: `crl: ${r.error}` };
      tokens.push(r.token);
      crl = r.data;
    }
    if (this.#cached && sameTokens(tokens, this.#tokens)) return this.#cached;
    const built = this.#build(certs, validation, ca, crl);
    this.#tokens = tokens;
    this.#cached = built;
    return built;
  }

  #build(
    certs: readonly { chain: Buffer; key: Buffer; passphrase: string | undefined }[],
    validation: CertificateValidationContext | undefined,
    ca: Buffer | undefined,
    crl: Buffer | undefined,
  ): TlsResolution {
    const c = this.config;
    if (ca !== undefined) {
      const r = parseCertificates(ca);
      if (!r.ok) return { kind: 'error', message: `trusted_ca: ${r.error}` };
    }
    if (validation && ca === undefined && compileSanCount(validation) > 0)
      return {
        kind: 'error',
        message:
          'SAN-based verification of peer certificates without trusted CA is insecure and not allowed',
      };
    const base = {
      minVersion: c.minVersion ?? DEFAULT_MIN,
      maxVersion: c.maxVersion ?? DEFAULT_MAX,
      ...(c.ciphers !== undefined ? { ciphers: c.ciphers } : {}),
      ...(c.ecdhCurve !== undefined ? { ecdhCurve: c.ecdhCurve } : {}),
      ...(c.sigalgs !== undefined ? { sigalgs: c.sigalgs } : {}),
      ...(ca !== undefined ? { ca } : {}),
      ...(crl !== undefined ? { crl } : {}),
    };
    const contexts: ServerCertificate[] = [];
    let localUriSan: string | undefined;
    try {
      if (certs.length === 0) contexts.push({ context: createSecureContext(base), dnsNames: [] });
      for (const cert of certs) {
        const problems = certificateAndKeyProblems(cert.chain, cert.key, cert.passphrase);
        if (problems.length > 0) return { kind: 'error', message: problems.join('; ') };
        const parsed = parseCertificates(cert.chain);
        const leaf = parsed.ok ? parsed.certs[0] : undefined;
        localUriSan ??= uriSans(leaf)[0];
        contexts.push({
          context: createSecureContext({
            ...base,
            cert: cert.chain,
            key: cert.key,
            ...(cert.passphrase !== undefined ? { passphrase: cert.passphrase } : {}),
          }),
          dnsNames: dnsSans(leaf),
        });
      }
    } catch (e) {
      return { kind: 'error', message: `cannot build the TLS context: ${errorMessage(e)}` };
    }
    const verification = validation
      ? compilePeerVerification(validation, ca !== undefined)
      : undefined;
    const verifying = verification !== undefined && verifiesPeer(verification);
    return {
      kind: 'ok',
      value: {
        contexts,
        verification: verifying ? verification : undefined,
        requestCert: c.side === 'downstream' && (verifying || c.requireClientCertificate),
        localUriSan,
      },
    };
  }
}

function compileSanCount(v: CertificateValidationContext): number {
  const legacy = (v as { matchSubjectAltNames?: unknown[] }).matchSubjectAltNames;
  return (v.matchTypedSubjectAltNames?.length ?? 0) + (legacy?.length ?? 0);
}

function sameTokens(a: readonly object[], b: readonly object[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Problems of an SDS Secret (NACKed with the secret's name): its material must be usable. */
export function secretProblems(secret: Secret): string[] {
  const problems: string[] = [];
  const kinds = [secret.tlsCertificate, secret.validationContext].filter((x) => x !== undefined);
  if (kinds.length === 0) problems.push('a secret needs a tls_certificate or a validation_context');
  if (secret.tlsCertificate)
    checkStaticCertificate(secret.tlsCertificate, 'tls_certificate', problems);
  if (secret.validationContext)
    checkValidation(secret.validationContext, 'validation_context', problems, false);
  return problems;
}

const namesByTransportSocket = new WeakMap<object, readonly string[]>();

/**
 * The secrets a transport socket fetches over SDS (not the agent-resolved `file-cert:` /
 * `file-root:` ones): cached per (immutable) configuration object.
 */
export function sdsSecretNames(ts: TransportSocket | undefined): readonly string[] {
  const typed = ts?.typedConfig;
  if (!typed) return [];
  const type = typed['@type'];
  if (type !== CONFIG_TYPE_URL.UpstreamTlsContext && type !== CONFIG_TYPE_URL.DownstreamTlsContext)
    return [];
  let names = namesByTransportSocket.get(typed);
  if (!names) {
    names = tlsSecretNames(typed as UpstreamTlsContext).filter((n) => !isLocalSecretName(n));
    namesByTransportSocket.set(typed, names);
  }
  return names;
}

/** The SDS secrets a listener's filter chains or a cluster's transport sockets reference. */
export function referencedSecrets(resource: Listener | Cluster): string[] {
  const out = new Set<string>();
  const add = (ts: TransportSocket | undefined): void => {
    for (const n of sdsSecretNames(ts)) out.add(n);
  };
  const l = resource as Listener;
  for (const fc of l.filterChains ?? []) add(fc.transportSocket);
  add(l.defaultFilterChain?.transportSocket);
  const c = resource as Cluster;
  add(c.transportSocket);
  for (const m of c.transportSocketMatches ?? []) add(m.transportSocket);
  return [...out];
}
