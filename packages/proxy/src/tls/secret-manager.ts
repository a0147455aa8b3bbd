// The proxy's secrets (Envoy's SecretManager): the SDS secrets received over ADS, by name, and
// the names Istio's agent resolves locally, which the Trellis proxy (its own agent) reads itself:
// `file-cert:CERT~KEY` (a certificate chain and key from files) and `file-root:CA` (a CA bundle
// from a file; `file-root:system` for the system roots).
//
// Lookups happen when a TLS context needs its material (for a new connection), never while
// configuration warms: a listener or cluster whose secret has not arrived is applied at once
// and its connections fail until the secret is there (see docs/proxy.md, "TLS"). The objects
// handed out are immutable and keep their identity until the secret changes, so TLS contexts
// cache what they build from them by identity.
import { rootCertificates } from 'node:tls';
import type { CertificateValidationContext, Secret, TlsCertificate } from '@trellis/envoy';
import type { StatsScope } from '../observability/stats-api.js';
import { FileCache } from './data-source.js';

/** Istio's agent-resolved secret name prefixes. */
export const FILE_CERT_PREFIX = 'file-cert:';
export const FILE_ROOT_PREFIX = 'file-root:';
/** `file-root:system`: the system's trusted roots. */
export const SYSTEM_ROOTS = 'system';

/** Whether a secret name is resolved by the proxy itself (never subscribed over SDS). */
export function isLocalSecretName(name: string): boolean {
  return name.startsWith(FILE_CERT_PREFIX) || name.startsWith(FILE_ROOT_PREFIX);
}

/** The result of looking a secret up. */
export type SecretLookup<T> =
  | { readonly kind: 'ok'; readonly value: T }
  /** Not received (yet): connections needing it fail. */
  | { readonly kind: 'missing'; readonly name: string }
  | { readonly kind: 'error'; readonly message: string };

/** One SDS secret in force, for `/config_dump`. */
export interface ActiveSecret {
  readonly name: string;
  readonly secret: Secret;
  readonly versionInfo: string;
  /** ms since the epoch. */
  readonly lastUpdated: number;
}

/** Called when secrets change (names of those added, changed or removed). */
export type SecretsListener = (names: readonly string[]) => void;

export interface SecretManagerOptions {
  /** Root stats scope (`sds.<name>.update_success`). */
  readonly stats?: StatsScope;
  readonly files?: FileCache;
  /** Wall clock for last_updated (default Date.now). */
  readonly now?: () => number;
}

/** Secrets by name. One per proxy. */
export class SecretManager {
  readonly files: FileCache;
  readonly #stats: StatsScope | undefined;
  readonly #now: () => number;
  #active = new Map<string, ActiveSecret>();
  readonly #local = new Map<string, TlsCertificate | CertificateValidationContext>();
  readonly #listeners = new Set<SecretsListener>();
  #generation = 0;

  constructor(opts: SecretManagerOptions = {}) {
    this.#stats = opts.stats;
    this.#now = opts.now ?? Date.now;
    this.files = opts.files ?? new FileCache();
  }

  /** Bumped whenever an SDS secret is added, changed or removed. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Applies the SDS secrets in force (a secret that is the same object as before is
   * unchanged). `versionInfo` is the SDS version they came with.
   */
  update(secrets: ReadonlyMap<string, Secret>, versionInfo: string): void {
    const changed: string[] = [];
    const next = new Map<string, ActiveSecret>();
    for (const [name, secret] of secrets) {
      const prev = this.#active.get(name);
      if (prev && prev.secret === secret) {
        next.set(name, prev);
        continue;
      }
      next.set(name, { name, secret, versionInfo, lastUpdated: this.#now() });
      changed.push(name);
      this.#stats?.scope('sds').scope(name).counter('update_success').inc();
    }
    for (const name of this.#active.keys()) if (!next.has(name)) changed.push(name);
    this.#active = next;
    if (changed.length === 0) return;
    this.#generation++;
    for (const l of this.#listeners) l(changed);
  }

  /** Registers a listener of secret changes; returns its removal. */
  onChange(l: SecretsListener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  /** The SDS secrets in force, by name. */
  active(): ReadonlyMap<string, ActiveSecret> {
    return this.#active;
  }

  /** The agent-resolved secrets looked up so far (`file-cert:` / `file-root:`), by name. */
  local(): ReadonlyMap<string, TlsCertificate | CertificateValidationContext> {
    return this.#local;
  }

  /** A TLS certificate (and key) by SDS name, or a `file-cert:CERT~KEY` name. */
  certificate(name: string): SecretLookup<TlsCertificate> {
    if (name.startsWith(FILE_CERT_PREFIX)) {
      let v = this.#local.get(name) as TlsCertificate | undefined;
      if (!v) {
        const rest = name.slice(FILE_CERT_PREFIX.length);
        const i = rest.indexOf('~');
        if (i <= 0 || i === rest.length - 1)
          return { kind: 'error', message: `secret "${name}": expected file-cert:CERT~KEY` };
        v = Object.freeze({
          certificateChain: Object.freeze({ filename: rest.slice(0, i) }),
          privateKey: Object.freeze({ filename: rest.slice(i + 1) }),
        });
        this.#local.set(name, v);
      }
      return { kind: 'ok', value: v };
    }
    if (name.startsWith(FILE_ROOT_PREFIX))
      return {
        kind: 'error',
        message: `secret "${name}" is a CA bundle, not a certificate`,
      };
    const s = this.#active.get(name)?.secret;
    if (!s) return { kind: 'missing', name };
    if (!s.tlsCertificate)
      return { kind: 'error', message: `secret "${name}" holds no tls_certificate` };
    return { kind: 'ok', value: s.tlsCertificate };
  }

  /** A validation context by SDS name, or a `file-root:CA` name. */
  validationContext(name: string): SecretLookup<CertificateValidationContext> {
    if (name.startsWith(FILE_ROOT_PREFIX)) {
      let v = this.#local.get(name) as CertificateValidationContext | undefined;
      if (!v) {
        const path = name.slice(FILE_ROOT_PREFIX.length);
        if (path === '')
          return { kind: 'error', message: `secret "${name}": expected file-root:CA` };
        v = Object.freeze({
          trustedCa: Object.freeze(
            path === SYSTEM_ROOTS
              ? { inlineString: rootCertificates.join('\n') }
              : { filename: path },
          ),
        });
        this.#local.set(name, v);
      }
      return { kind: 'ok', value: v };
    }
    if (name.startsWith(FILE_CERT_PREFIX))
      return {
        kind: 'error',
        message: `secret "${name}" is a certificate, not a validation context`,
      };
    const s = this.#active.get(name)?.secret;
    if (!s) return { kind: 'missing', name };
    if (!s.validationContext)
      return { kind: 'error', message: `secret "${name}" holds no validation_context` };
    return { kind: 'ok', value: s.validationContext };
  }
}
