// The TLS a proxy originates to an upstream cluster, from a DestinationRule's `tls` and auto
// mTLS (Istio's cluster_tls.go buildUpstreamTLSSettings / buildUpstreamClusterTLSContext /
// applyUpstreamTLSSettings):
// - DISABLE: plain text;
// - ISTIO_MUTUAL: the workload certificate (`default`) and the mesh root (`ROOTCA`) over SDS, SANs
//   from the rule or else the service's identities, SNI `outbound_.PORT_.SUBSET_.HOST`, ALPN
//   `istio-peer-exchange`, `istio` (and `h2` for HTTP/2 clusters), TLS 1.2 to 1.3;
// - SIMPLE / MUTUAL: certificates from `credentialName` (gateways, or rules with a
//   workloadSelector) or files, the CA defaulting to the system roots; auto SNI and SAN
//   validation when the rule names none;
// - no `tls` at all: auto mTLS. When the service's servers accept mTLS (PeerAuthentication not
//   DISABLE) the cluster gets two transport socket matches: ISTIO_MUTUAL for endpoints whose
//   metadata says `tlsMode: istio` (they run a sidecar), plain text for the others.
import type { StringMatcher, TransportSocket } from '@trellis/envoy';
import { CONFIG_TYPE_URL, toAny } from '@trellis/envoy';
import type { ClientTLSSettings as IstioClientTls } from '@trellis/api';
import { httpOptions, isHttp2Cluster, type ClusterDraft } from './cluster-draft.js';
import type { CommonTlsContextJson, UpstreamTlsContextJson } from './cluster-types.js';
import {
  SDS_CA_SUFFIX,
  SDS_DEFAULT_RESOURCE,
  SDS_ROOT_RESOURCE,
  credentialResourceName,
  fileCertResourceName,
  fileRootResourceName,
  sdsSecretConfig,
} from './tls-sds.js';
import type { MtlsMode } from './tls-mtls-mode.js';

/** The name of the TLS transport socket. */
export const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';
/** The name of the plain-text transport socket. */
export const RAW_BUFFER_TRANSPORT_SOCKET = 'envoy.transport_sockets.raw_buffer';
/** ALPN of in-mesh mTLS: metadata exchange, then Istio's marker. */
export const ALPN_IN_MESH = Object.freeze(['istio-peer-exchange', 'istio']);
/** ALPN of in-mesh mTLS to an HTTP/2 cluster. */
export const ALPN_IN_MESH_H2 = Object.freeze(['istio-peer-exchange', 'istio', 'h2']);

/** A plain-text transport socket. */
export function rawBufferTransportSocket(): TransportSocket {
  return { name: RAW_BUFFER_TRANSPORT_SOCKET, typedConfig: toAny(CONFIG_TYPE_URL.RawBuffer, {}) };
}

/** A TLS transport socket around an upstream TLS context. */
export function tlsTransportSocket(ctx: UpstreamTlsContextJson): TransportSocket {
  return {
    name: TLS_TRANSPORT_SOCKET,
    typedConfig: toAny(CONFIG_TYPE_URL.UpstreamTlsContext, ctx),
  };
}

/** Exact string matchers for SANs (none when the list is empty). */
export function exactMatchers(values: readonly string[] | undefined): StringMatcher[] | undefined {
  return values && values.length > 0 ? values.map((exact) => ({ exact })) : undefined;
}

/** What the TLS of one cluster depends on. */
export interface UpstreamTlsInput {
  /** The `tls` of the cluster's effective DestinationRule policy. */
  readonly tls: IstioClientTls | undefined;
  /** Identities of the service's workloads (SANs for ISTIO_MUTUAL, and SIMPLE/MUTUAL to ServiceEntries). */
  readonly serviceAccounts: readonly string[];
  /** `outbound_.PORT_.SUBSET_.HOST`. */
  readonly sni: string;
  readonly autoMtls: boolean;
  readonly meshExternal: boolean;
  /** Whether the service comes from a ServiceEntry (its subjectAltNames become the SANs). */
  readonly serviceEntry: boolean;
  readonly serviceMtlsMode: MtlsMode;
  /** Sidecars may not read credentialName secrets unless the rule selects them. */
  readonly sidecar: boolean;
  readonly ruleHasWorkloadSelector: boolean;
}

/** The TLS settings to apply and whether they were inferred (auto mTLS). */
interface ResolvedTls {
  readonly tls: IstioClientTls | undefined;
  readonly autoDetected: boolean;
}

function resolveTls(input: UpstreamTlsInput): ResolvedTls {
  const tls = input.tls;
  if (tls) {
    if (tls.mode !== 'ISTIO_MUTUAL') return { tls, autoDetected: false };
    return {
      tls: {
        mode: 'ISTIO_MUTUAL',
        subjectAltNames:
          tls.subjectAltNames && tls.subjectAltNames.length > 0
            ? tls.subjectAltNames
            : [...input.serviceAccounts],
        sni: tls.sni !== undefined && tls.sni !== '' ? tls.sni : input.sni,
      },
      autoDetected: false,
    };
  }
  if (
    input.meshExternal ||
    !input.autoMtls ||
    input.serviceMtlsMode === 'UNKNOWN' ||
    input.serviceMtlsMode === 'DISABLE'
  )
    return { tls: undefined, autoDetected: false };
  return {
    tls: { mode: 'ISTIO_MUTUAL', subjectAltNames: [...input.serviceAccounts], sni: input.sni },
    autoDetected: true,
  };
}

/** TLS 1.2 to 1.3, Istio's upstream default. */
function defaultCommonTlsContext(): CommonTlsContextJson {
  return {
    tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2', tlsMaximumProtocolVersion: 'TLSv1_3' },
  };
}

/** Credential names that any proxy may read (a ConfigMap CA, the unresolved-CA sentinel). */
function isPrivilegedCredential(name: string | undefined): boolean {
  return (
    name !== undefined && name !== '' && !name.startsWith('configmap://') && name !== 'invalid://'
  );
}

function buildContext(
  d: ClusterDraft,
  input: UpstreamTlsInput,
  tls: IstioClientTls,
): UpstreamTlsContextJson | undefined {
  const mode = tls.mode ?? 'DISABLE';
  if (
    (mode === 'SIMPLE' || mode === 'MUTUAL') &&
    isPrivilegedCredential(tls.credentialName) &&
    input.sidecar &&
    !input.ruleHasWorkloadSelector
  )
    return undefined;
  switch (mode) {
    case 'DISABLE':
      return undefined;
    case 'ISTIO_MUTUAL': {
      const common = defaultCommonTlsContext();
      common.tlsCertificateSdsSecretConfigs = [sdsSecretConfig(SDS_DEFAULT_RESOURCE)];
      const sans = exactMatchers(tls.subjectAltNames);
      common.combinedValidationContext = {
        defaultValidationContext: sans ? { matchSubjectAltNames: sans } : {},
        validationContextSdsSecretConfig: sdsSecretConfig(SDS_ROOT_RESOURCE),
      };
      common.alpnProtocols = [...(isHttp2Cluster(d) ? ALPN_IN_MESH_H2 : ALPN_IN_MESH)];
      const sni = tls.sni !== undefined && tls.sni !== '' ? tls.sni : (d.cluster.name ?? '');
      return { commonTlsContext: common, sni };
    }
    case 'SIMPLE':
    case 'MUTUAL':
      return originatedTls(d, input, tls, mode === 'MUTUAL');
  }
}

function originatedTls(
  d: ClusterDraft,
  input: UpstreamTlsInput,
  given: IstioClientTls,
  mutual: boolean,
): UpstreamTlsContextJson | undefined {
  const common = defaultCommonTlsContext();
  const ctx: UpstreamTlsContextJson = { commonTlsContext: common };
  if (given.sni !== undefined && given.sni !== '') ctx.sni = given.sni;
  const insecure = given.insecureSkipVerify === true;
  const noSans = (given.subjectAltNames ?? []).length === 0;
  // Envoy picks the SNI (and checks the SAN) from the request's host when the rule names none.
  const autoSni = given.sni === undefined || given.sni === '';
  const autoSan = autoSni && noSans && !insecure;
  if (autoSni || autoSan) {
    const o = httpOptions(d);
    o.upstreamHttpProtocolOptions = {
      ...o.upstreamHttpProtocolOptions,
      ...(autoSni ? { autoSni: true } : {}),
      ...(autoSan ? { autoSanValidation: true } : {}),
    };
  }
  const sanList =
    input.serviceEntry && noSans ? [...input.serviceAccounts] : [...(given.subjectAltNames ?? [])];
  const sans = exactMatchers(sanList);
  if (given.credentialName !== undefined && given.credentialName !== '') {
    if (mutual)
      common.tlsCertificateSdsSecretConfigs = [
        sdsSecretConfig(credentialResourceName(given.credentialName)),
      ];
    if (!insecure)
      common.combinedValidationContext = {
        defaultValidationContext: sans ? { matchSubjectAltNames: sans } : {},
        validationContextSdsSecretConfig: sdsSecretConfig(
          credentialResourceName(given.credentialName + SDS_CA_SUFFIX),
        ),
      };
  } else {
    if (mutual) {
      if (!given.clientCertificate || !given.privateKey) return undefined;
      common.tlsCertificateSdsSecretConfigs = [
        sdsSecretConfig(fileCertResourceName(given.clientCertificate, given.privateKey)),
      ];
    }
    if (insecure) common.validationContext = {};
    else {
      const ca =
        given.caCertificates !== undefined && given.caCertificates !== ''
          ? given.caCertificates
          : 'system';
      common.combinedValidationContext = {
        defaultValidationContext: {
          ...(sans ? { matchSubjectAltNames: sans } : {}),
          ...(given.caCrl ? { crl: { filename: given.caCrl } } : {}),
        },
        validationContextSdsSecretConfig: sdsSecretConfig(fileRootResourceName(ca)),
      };
    }
  }
  if (isHttp2Cluster(d)) common.alpnProtocols = ['h2'];
  return ctx;
}

/**
 * Applies the upstream TLS of a cluster: a transport socket, or transport socket matches for auto
 * mTLS. Returns the TLS mode that was applied (for metadata), undefined for plain text.
 */
export function applyUpstreamTls(
  d: ClusterDraft,
  input: UpstreamTlsInput,
): IstioClientTls['mode'] | undefined {
  const { tls, autoDetected } = resolveTls(input);
  if (!tls) return undefined;
  const ctx = buildContext(d, input, tls);
  const socket = ctx ? tlsTransportSocket(ctx) : undefined;
  if (socket) d.cluster.transportSocket = socket;
  if (autoDetected && d.cluster.type !== 'ORIGINAL_DST' && socket) {
    delete d.cluster.transportSocket;
    d.cluster.transportSocketMatches = [
      { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transportSocket: socket },
      { name: 'tlsMode-disabled', match: {}, transportSocket: rawBufferTransportSocket() },
    ];
  }
  return socket ? tls.mode : undefined;
}
