// Proto3-JSON shapes of the TLS transport socket configs and of Secret (SDS).
import type { AnyMessage } from './codec.js';
import type { ConfigSource, DataSource, Duration } from './core.js';
import type { StringMatcher } from './matcher.js';

/** TLS protocol versions (envoy.extensions.transport_sockets.tls.v3.TlsParameters.TlsProtocol). */
export type TlsProtocol = 'TLS_AUTO' | 'TLSv1_0' | 'TLSv1_1' | 'TLSv1_2' | 'TLSv1_3';

/** `envoy.extensions.transport_sockets.tls.v3.TlsParameters`: versions, ciphers and curves. */
export interface TlsParameters {
  tlsMinimumProtocolVersion?: TlsProtocol;
  tlsMaximumProtocolVersion?: TlsProtocol;
  cipherSuites?: string[];
  ecdhCurves?: string[];
  signatureAlgorithms?: string[];
}

/** `envoy.extensions.transport_sockets.tls.v3.TlsCertificate`: a certificate chain and its key. */
export interface TlsCertificate {
  certificateChain?: DataSource;
  privateKey?: DataSource;
  password?: DataSource;
  ocspStaple?: DataSource;
}

/** `envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher`: one SAN to accept. */
export interface SubjectAltNameMatcher {
  sanType?: 'SAN_TYPE_UNSPECIFIED' | 'EMAIL' | 'DNS' | 'URI' | 'IP_ADDRESS' | 'OTHER_NAME';
  matcher?: StringMatcher;
  oid?: string;
}

/** `envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext`: how peers are verified. */
export interface CertificateValidationContext {
  trustedCa?: DataSource;
  verifyCertificateSpki?: string[];
  verifyCertificateHash?: string[];
  matchTypedSubjectAltNames?: SubjectAltNameMatcher[];
  crl?: DataSource;
  allowExpiredCertificate?: boolean;
  trustChainVerification?: 'VERIFY_TRUST_CHAIN' | 'ACCEPT_UNTRUSTED';
  customValidatorConfig?: { name?: string; typedConfig?: AnyMessage };
}

/** `envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig`: a secret fetched by name over SDS. */
export interface SdsSecretConfig {
  /** Istio names: `default` (the workload certificate), `ROOTCA`, or a credentialName. */
  name?: string;
  sdsConfig?: ConfigSource;
}

/** `envoy.extensions.transport_sockets.tls.v3.CommonTlsContext.CombinedCertificateValidationContext`: SDS validation plus static SAN checks. */
export interface CombinedCertificateValidationContext {
  defaultValidationContext?: CertificateValidationContext;
  validationContextSdsSecretConfig?: SdsSecretConfig;
}

/** `envoy.extensions.transport_sockets.tls.v3.CommonTlsContext`: what upstream and downstream TLS share. */
export interface CommonTlsContext {
  tlsParams?: TlsParameters;
  tlsCertificates?: TlsCertificate[];
  tlsCertificateSdsSecretConfigs?: SdsSecretConfig[];
  validationContext?: CertificateValidationContext;
  validationContextSdsSecretConfig?: SdsSecretConfig;
  combinedValidationContext?: CombinedCertificateValidationContext;
  /** e.g. `['istio-peer-exchange', 'istio']` for Istio mTLS, `['h2', 'http/1.1']`. */
  alpnProtocols?: string[];
}

/** `envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`: TLS to an upstream (originating). */
export interface UpstreamTlsContext {
  commonTlsContext?: CommonTlsContext;
  sni?: string;
  allowRenegotiation?: boolean;
  maxSessionKeys?: number;
}

/** `envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`: TLS from a downstream (terminating). */
export interface DownstreamTlsContext {
  commonTlsContext?: CommonTlsContext;
  requireClientCertificate?: boolean;
  requireSni?: boolean;
  sessionTimeout?: Duration;
  disableStatelessSessionResumption?: boolean;
  fullScanCertsOnSniMismatch?: boolean;
}

/** `envoy.extensions.transport_sockets.tls.v3.Secret`: an SDS resource (certificate or validation context). */
export interface Secret {
  name?: string;
  tlsCertificate?: TlsCertificate;
  validationContext?: CertificateValidationContext;
}
