// What an SDS resource name refers to, as istiod parses it (pilot/pkg/model/credentials
// ParseResourceName): `kubernetes://NAME` is the Secret NAME in the proxy's own namespace,
// `kubernetes://NAMESPACE/NAME` a Secret in a named namespace; a name ending in `-cacert` asks
// for the CA part only. Names the control plane does not serve are told apart from bad ones:
// `default` and `ROOTCA` (the workload certificate and the mesh roots) and `file-cert:` /
// `file-root:` (files the proxy reads itself, as Istio's agent does) are resolved elsewhere.
import {
  KUBERNETES_SECRET_PREFIX,
  SDS_CA_SUFFIX,
  SDS_DEFAULT_RESOURCE,
  SDS_ROOT_RESOURCE,
} from './tls-sds.js';

/** Prefix of Gateway API certificate references (`kubernetes-gateway://NAMESPACE/NAME`). */
export const KUBERNETES_GATEWAY_SECRET_PREFIX = 'kubernetes-gateway://';

/** A parsed SDS resource name. */
export type CredentialRef =
  /** A Kubernetes Secret: its certificate and key, or (`caOnly`) its CA bundle. */
  | {
      readonly kind: 'kubernetes';
      readonly resourceName: string;
      readonly namespace: string;
      /** The name as asked for, `-cacert` suffix included. */
      readonly name: string;
      readonly caOnly: boolean;
    }
  /** Resolved by the proxy itself or by a CA, never by Secrets: not served here. */
  | { readonly kind: 'local'; readonly resourceName: string }
  /** A name Trellis cannot serve; `error` says why. */
  | { readonly kind: 'invalid'; readonly resourceName: string; readonly error: string };

const LOCAL_PREFIXES = ['file-cert:', 'file-root:'];

/** Kubernetes object names: DNS subdomains (lowercase alphanumerics, `-` and `.`). */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Parses `resourceName` as a proxy in `proxyNamespace` asks for it. */
export function parseCredentialResourceName(
  resourceName: string,
  proxyNamespace: string,
): CredentialRef {
  if (
    resourceName === SDS_DEFAULT_RESOURCE ||
    resourceName === SDS_ROOT_RESOURCE ||
    LOCAL_PREFIXES.some((p) => resourceName.startsWith(p))
  )
    return { kind: 'local', resourceName };
  if (resourceName.startsWith(KUBERNETES_GATEWAY_SECRET_PREFIX))
    return {
      kind: 'invalid',
      resourceName,
      error: 'Gateway API certificate references (kubernetes-gateway://) are not supported',
    };
  if (!resourceName.startsWith(KUBERNETES_SECRET_PREFIX))
    return {
      kind: 'invalid',
      resourceName,
      error: `unknown kind of SDS resource (expected ${KUBERNETES_SECRET_PREFIX}NAME or ${KUBERNETES_SECRET_PREFIX}NAMESPACE/NAME)`,
    };
  const parts = resourceName.slice(KUBERNETES_SECRET_PREFIX.length).split('/');
  const [first, second] = parts;
  const namespace = parts.length === 2 ? (first ?? '') : proxyNamespace;
  const name = parts.length === 2 ? (second ?? '') : (first ?? '');
  if (parts.length > 2 || !OBJECT_NAME.test(name) || !OBJECT_NAME.test(namespace))
    return {
      kind: 'invalid',
      resourceName,
      error: `not a Secret reference (expected ${KUBERNETES_SECRET_PREFIX}NAME or ${KUBERNETES_SECRET_PREFIX}NAMESPACE/NAME)`,
    };
  return {
    kind: 'kubernetes',
    resourceName,
    namespace,
    name,
    caOnly: name.endsWith(SDS_CA_SUFFIX),
  };
}
