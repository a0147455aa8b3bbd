// Label and annotation names the registry reads: Istio's (so existing manifests work) and the
// one Trellis adds for local mode.

/**
 * Trellis, local mode: on a Pod, the sidecar inbound port for each application port, as a JSON
 * object from application port number to inbound port, e.g.
 * `trellis.io/inbound-ports: '{"9080": 15106, "9090": 15107}'`. Endpoints of the Pod then carry
 * the inbound port (what peers dial) and the application port as `targetPort` (where the
 * sidecar forwards). Ports not listed are dialled directly. Written by the local runtime when
 * it allocates ports for a sidecar that cannot capture traffic transparently.
 */
export const ANNOTATION_INBOUND_PORTS = 'trellis.io/inbound-ports';

/**
 * Trellis, local mode: on a Pod with a sidecar, where the application really listens on the
 * loopback address for each of its declared ports, as a JSON object from declared port number to
 * local port, e.g. `trellis.io/app-ports: '{"9080": 41234}'`. Many replicas share 127.0.0.1 in
 * local mode, so the runtime gives each its own ports; the sidecar's `inbound|9080||` cluster
 * forwards to 127.0.0.1:41234. Ports not listed are forwarded to the declared port.
 */
export const ANNOTATION_APP_PORTS = 'trellis.io/app-ports';

/** Service annotation: comma-separated exportTo of a Kubernetes Service. */
export const ANNOTATION_EXPORT_TO = 'networking.istio.io/exportTo';

/** Service annotation: SPIFFE identities (comma-separated) allowed to serve the service. */
export const ANNOTATION_CANONICAL_SERVICE_ACCOUNTS = 'alpha.istio.io/canonical-serviceaccounts';

/** Service annotation: Kubernetes service account names (comma-separated) serving the service. */
export const ANNOTATION_KUBERNETES_SERVICE_ACCOUNTS = 'alpha.istio.io/kubernetes-serviceaccounts';

/** Pod annotation the sidecar injector sets; its presence means a sidecar runs in the Pod. */
export const ANNOTATION_SIDECAR_STATUS = 'sidecar.istio.io/status';

/** Workload label: `istio` when the workload accepts Istio mTLS, `disabled` otherwise. */
export const LABEL_TLS_MODE = 'security.istio.io/tlsMode';

/** Pod label: the locality as `region.zone.subzone` (dots, since labels cannot hold '/'). */
export const LABEL_LOCALITY = 'istio-locality';

/** Workload label: the network the workload is on. */
export const LABEL_NETWORK = 'topology.istio.io/network';

/** EndpointSlice label naming the Service the slice belongs to. */
export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
