// Envoy fields cluster generation writes that @trellis/envoy's shapes do not declare yet, as
// intersections with those shapes (every field exists in the loaded protos; verifyResource checks
// them in the golden tests).
import type {
  CertificateValidationContext,
  Cluster,
  CommonTlsContext,
  Duration,
  HttpProtocolOptions,
  LeastRequestLbConfig,
  Percent,
  SocketAddress,
  StringMatcher,
  UpstreamHttpProtocolOptions,
  UpstreamTlsContext,
} from '@trellis/envoy';

/** `envoy.config.cluster.v3.Cluster.SlowStartConfig`: ramp traffic up to new endpoints. */
export interface SlowStartConfig {
  slowStartWindow?: Duration;
  aggression?: { defaultValue?: number; runtimeKey?: string };
  minWeightPercent?: Percent;
}

/** `envoy.config.core.v3.BindConfig`: the source address of upstream connections. */
export interface BindConfig {
  sourceAddress?: SocketAddress;
  extraSourceAddresses?: { address?: SocketAddress }[];
}

/** A Cluster with the fields Istio sets that the shared shapes leave out. */
export type ClusterJson = Cluster & {
  leastRequestLbConfig?: LeastRequestLbConfig & { slowStartConfig?: SlowStartConfig };
  roundRobinLbConfig?: { slowStartConfig?: SlowStartConfig };
  upstreamBindConfig?: BindConfig;
};

/** The upstream HTTP options of a cluster, including SNI / SAN handling. */
export type HttpProtocolOptionsJson = HttpProtocolOptions & {
  upstreamHttpProtocolOptions?: UpstreamHttpProtocolOptions;
};

/** `envoy.extensions.transport_sockets.tls.v3.CertificateProviderPluginInstance`. */
export interface CertificateProviderPluginInstance {
  instanceName?: string;
  certificateName?: string;
}

/** A validation context with Istio's (deprecated in Envoy, still read) SAN list and gRPC's provider. */
export type CertificateValidationContextJson = CertificateValidationContext & {
  matchSubjectAltNames?: StringMatcher[];
  caCertificateProviderInstance?: CertificateProviderPluginInstance;
};

/** A common TLS context whose validation contexts carry the fields above. */
export type CommonTlsContextJson = Omit<
  CommonTlsContext,
  'validationContext' | 'combinedValidationContext'
> & {
  validationContext?: CertificateValidationContextJson;
  combinedValidationContext?: {
    defaultValidationContext?: CertificateValidationContextJson;
    validationContextSdsSecretConfig?: NonNullable<
      CommonTlsContext['combinedValidationContext']
    >['validationContextSdsSecretConfig'];
  };
  tlsCertificateProviderInstance?: CertificateProviderPluginInstance;
};

/** An upstream TLS context built from the parts above. */
export type UpstreamTlsContextJson = Omit<UpstreamTlsContext, 'commonTlsContext'> & {
  commonTlsContext?: CommonTlsContextJson;
};
