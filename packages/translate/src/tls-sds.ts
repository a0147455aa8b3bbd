// Secrets a TLS context names, fetched over SDS. Istio's names are kept: `default` is the
// workload certificate, `ROOTCA` the mesh trust bundle, `kubernetes://NAME` a credentialName
// (`kubernetes://NAME-cacert` its CA), `file-cert:CERT~KEY` / `file-root:CA` certificates a
// DestinationRule names by path (pilot/pkg/model/credentials, pkg/security SdsCertificateConfig).
// Trellis serves every secret over the same ADS stream as the rest of the configuration.
import type { SdsSecretConfig } from '@trellis/envoy';

/** The workload certificate and key. */
export const SDS_DEFAULT_RESOURCE = 'default';
/** The mesh root certificate(s) used to validate peers. */
export const SDS_ROOT_RESOURCE = 'ROOTCA';
/** The resource-name prefix of a Kubernetes Secret named by `credentialName`. */
export const KUBERNETES_SECRET_PREFIX = 'kubernetes://';
/** Suffix of the CA part of a credential (`NAME-cacert`). */
export const SDS_CA_SUFFIX = '-cacert';

/** An SDS reference to `name`, served over ADS. */
export function sdsSecretConfig(name: string): SdsSecretConfig {
  return { name, sdsConfig: { ads: {}, resourceApiVersion: 'V3' } };
}

/** The SDS name of a credentialName: `kubernetes://NAME` unless it already has a scheme. */
export function credentialResourceName(credentialName: string): string {
  return credentialName.includes('://')
    ? credentialName
    : KUBERNETES_SECRET_PREFIX + credentialName;
}

/** `file-cert:CERT~KEY`: a client certificate and key read from files. */
export function fileCertResourceName(certPath: string, keyPath: string): string {
  return `file-cert:${certPath}~${keyPath}`;
}

/** `file-root:CA`: a CA bundle read from a file (`system` for the system roots). */
export function fileRootResourceName(caPath: string): string {
  return `file-root:${caPath}`;
}
