// The seam between serving and translation: what each proxy should get.
import type { EncodedAny } from '@trellis/envoy';
import type { ProxyInfo } from './proxy-info.js';

/** The resources of one type for one proxy. */
export interface ResourceSet {
  /** Version of this view (SotW version_info, delta system_version_info). */
  readonly version: string;
  /** Resources by name, already encoded. */
  readonly resources: ReadonlyMap<string, EncodedAny>;
  /** Per-resource versions for delta xDS; a hash of the bytes is used for names not listed. */
  readonly versions?: ReadonlyMap<string, string>;
}

/**
 * What the xDS server asks for. `names` undefined means a wildcard subscription (every
 * resource of the type the proxy may see); otherwise only those names (missing ones are
 * simply absent from the result).
 */
export interface ResourceSource {
  resources(
    proxy: ProxyInfo,
    typeUrl: string,
    names: readonly string[] | undefined,
  ): ResourceSet | Promise<ResourceSet>;
}

/** Which proxies a push goes to. */
export type PushTarget = 'all' | readonly string[];

/** A request to push: to whom, which types, and why (for logs and debug). */
export interface PushRequest {
  /** Node ids, or 'all'. */
  readonly proxies: PushTarget;
  /** Type URLs, or 'all' (every type the proxy subscribed to). */
  readonly typeUrls: 'all' | readonly string[];
  readonly reason: string;
}
