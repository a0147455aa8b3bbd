// The registry's model: services, their ports, the workloads behind them and the endpoints
// translation turns into clusters and EDS. Istio's model (pilot/pkg/model Service,
// IstioEndpoint, WorkloadInstance) is the reference: names and values match Istio's where Istio
// has them, so a reader who knows istiod recognises every field.
//
// Everything here is plain, JSON-like and deep-frozen once built; translation reads it, never
// changes it.

/** Labels of a workload, service or config: `key: value`. */
export type Labels = Readonly<Record<string, string>>;

/**
 * A port's application protocol, spelled as Istio's `protocol.Instance` values.
 * `UnsupportedProtocol` is what Istio records for an unknown or missing protocol: the proxy
 * detects the protocol from the first bytes (protocol sniffing, "auto").
 */
export type Protocol =
  | 'HTTP'
  | 'HTTPS'
  | 'HTTP2'
  | 'HTTP_PROXY'
  | 'GRPC'
  | 'GRPC-Web'
  | 'TCP'
  | 'TLS'
  | 'UDP'
  | 'Mongo'
  | 'Redis'
  | 'MySQL'
  | 'UnsupportedProtocol';

/**
 * How a client finds a service's endpoints, as Istio's `model.Resolution` names it:
 * - `ClientSideLB`: the proxy balances over endpoints sent by EDS (Kubernetes ClusterIP
 *   services, STATIC ServiceEntries);
 * - `DNSLB`: the proxy resolves the endpoint names and balances over every answer
 *   (ServiceEntry DNS; Envoy STRICT_DNS);
 * - `DNSRoundRobinLB`: the proxy resolves and uses one answer at a time (DNS_ROUND_ROBIN;
 *   Envoy LOGICAL_DNS);
 * - `Passthrough`: no load balancing, the original destination is used (headless Services,
 *   ServiceEntry NONE; Envoy ORIGINAL_DST);
 * - `Alias`: a Kubernetes ExternalName Service, an alias of `externalName`;
 * - `DynamicDNS`: ServiceEntry DYNAMIC_DNS (Envoy's dynamic forward proxy).
 */
export type Resolution =
  'ClientSideLB' | 'DNSLB' | 'DNSRoundRobinLB' | 'Passthrough' | 'Alias' | 'DynamicDNS';

/** Where a service runs, as ServiceEntry `location` names it. */
export type MeshLocation = 'MESH_INTERNAL' | 'MESH_EXTERNAL';

/** Which object a service comes from. */
export type ServiceOrigin = 'Kubernetes' | 'ServiceEntry';

/**
 * An endpoint's health, as Istio's `model.HealthStatus` names it. Only `Healthy` endpoints
 * receive traffic; the others are sent to proxies with their status so Envoy can drain them.
 */
export type HealthStatus = 'Healthy' | 'UnHealthy' | 'Draining' | 'Terminating';

/**
 * Whether a workload accepts Istio mutual TLS, from the `security.istio.io/tlsMode` label
 * (`istio` when a sidecar is injected, `disabled` otherwise). Auto-mTLS reads it.
 */
export type TlsMode = 'istio' | 'disabled';

/** Identifies the object something was built from. */
export interface ObjectRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/** One port of a service. */
export interface ServicePort {
  /** The port name; '' for the single unnamed port of a Kubernetes Service. */
  readonly name: string;
  /** The port number clients connect to. */
  readonly port: number;
  /** The application protocol, from the port name, `appProtocol` or ServiceEntry `protocol`. */
  readonly protocol: Protocol;
  /**
   * Where traffic goes on the workload when it differs from `port`: a Kubernetes targetPort as
   * written (a number, or the name of a container port) or a ServiceEntry `targetPort`.
   * Endpoints carry the resolved number.
   */
  readonly targetPort?: number | string;
  /** Kubernetes `appProtocol` as written, when set. */
  readonly appProtocol?: string;
}

/**
 * A service: one host name with ports, from a Kubernetes Service or one host of a ServiceEntry.
 * Identified by (`hostname`, `namespace`); the same host name may exist in several namespaces
 * (ServiceEntries), and visibility (`exportTo`) says who sees which.
 */
export interface Service {
  /**
   * The fully qualified host name: `reviews.default.svc.cluster.local` for a Kubernetes
   * Service; a ServiceEntry host exactly as written (possibly a wildcard, `*.example.com`).
   */
  readonly hostname: string;
  /** The namespace of the object that defines the service. */
  readonly namespace: string;
  /**
   * Istio's `Attributes.Name`: the Kubernetes Service name, or the host name for a
   * ServiceEntry (it labels metrics as `destination_service_name`).
   */
  readonly name: string;
  readonly origin: ServiceOrigin;
  /** The Service or ServiceEntry this came from. */
  readonly source: ObjectRef;
  readonly ports: readonly ServicePort[];
  /**
   * Virtual IPs (Kubernetes clusterIPs; ServiceEntry addresses, which may be CIDR ranges, a
   * `/32` written as a bare IP); empty when there is none (headless, ExternalName, DNS entries).
   */
  readonly addresses: readonly string[];
  /** The first address, or `0.0.0.0` when there is none (as Istio's `DefaultAddress`). */
  readonly defaultAddress: string;
  /**
   * `exportTo` as written (`.`, `*`, `~`, namespace names), from ServiceEntry `exportTo` or the
   * Service annotation `networking.istio.io/exportTo`; empty means the mesh default.
   * Use `isVisible` / `Snapshot.isVisible` rather than reading it.
   */
  readonly exportTo: readonly string[];
  /** Labels of the Service or ServiceEntry object. */
  readonly labels: Labels;
  /**
   * The workload selector: a Kubernetes Service's `spec.selector` or a ServiceEntry's
   * `workloadSelector.labels`; undefined when the service selects nothing itself.
   */
  readonly selector?: Labels;
  /** MESH_EXTERNAL for ServiceEntries by default and ExternalName Services; else MESH_INTERNAL. */
  readonly location: MeshLocation;
  /** Shorthand for `location === 'MESH_EXTERNAL'` (Istio's `MeshExternal`). */
  readonly meshExternal: boolean;
  readonly resolution: Resolution;
  /** For `Alias` (ExternalName) services: the name they alias. */
  readonly externalName?: string;
  /**
   * SPIFFE identities allowed to serve this service (for SAN checks), sorted: the identities of
   * its endpoints, plus ServiceEntry `subjectAltNames` and the Service annotations
   * `alpha.istio.io/canonical-serviceaccounts` / `alpha.istio.io/kubernetes-serviceaccounts`.
   */
  readonly serviceAccounts: readonly string[];
  /** Kubernetes `publishNotReadyAddresses`: not-ready pods are sent as healthy. */
  readonly publishNotReadyAddresses: boolean;
  /** Creation time of the defining object (RFC 3339), for Istio's oldest-first ordering. */
  readonly creationTimestamp?: string;
  readonly resourceVersion?: string;
}

/**
 * A workload: one running instance that can serve traffic and may run a sidecar. Built from a
 * Pod or a WorkloadEntry. A proxy finds its own workload by kind, namespace and name (its node
 * ID names the pod), not by address: in local mode many workloads share 127.0.0.1.
 */
export interface Workload {
  readonly kind: 'Pod' | 'WorkloadEntry';
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
  /**
   * The address: a Pod's `status.podIP`; a WorkloadEntry's address (IP, DNS name, or a Unix
   * socket path without its `unix://` prefix). '' when a Pod has no IP yet.
   */
  readonly address: string;
  /** Whether `address` is a Unix domain socket (a WorkloadEntry `unix://` address). */
  readonly unixSocket: boolean;
  readonly labels: Labels;
  /** Kubernetes service account name ('' when a WorkloadEntry names none). */
  readonly serviceAccount: string;
  /** `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`; absent without an account. */
  readonly identity?: string;
  /** `region/zone/subzone` (a Pod's `istio-locality` label with dots, or WorkloadEntry `locality`). */
  readonly locality?: string;
  /** Network ID (WorkloadEntry `network`, or the `topology.istio.io/network` label). */
  readonly network?: string;
  /** Load-balancing weight (WorkloadEntry `weight`); absent means the default. */
  readonly weight?: number;
  readonly health: HealthStatus;
  /** `health === 'Healthy'`. */
  readonly ready: boolean;
  readonly tlsMode: TlsMode;
  /**
   * Named ports: a Pod's container ports by name, a WorkloadEntry's `ports` map. Service
   * ports whose targetPort is a name resolve through this.
   */
  readonly ports: Readonly<Record<string, number>>;
  /**
   * Local mode: the sidecar's inbound port for each application port (keys are the
   * application's port numbers), from the Pod annotation `trellis.io/inbound-ports`. Peers dial
   * the inbound port; the sidecar forwards to the application port.
   */
  readonly inboundPorts: Readonly<Record<string, number>>;
  /**
   * Local mode: where the application listens on the loopback address for each declared port
   * (keys are declared port numbers), from the Pod annotation `trellis.io/app-ports`.
   */
  readonly appPorts: Readonly<Record<string, number>>;
  readonly nodeName?: string;
  readonly creationTimestamp?: string;
}

/**
 * One endpoint of one service port: what EDS sends for cluster
 * `outbound|<servicePort>|<subset>|<hostname>` (subsets filter on `labels`).
 */
export interface Endpoint {
  /** The service this endpoint serves (its hostname and namespace identify it). */
  readonly hostname: string;
  readonly serviceNamespace: string;
  /** The service port's name and number. */
  readonly servicePortName: string;
  readonly servicePort: number;
  /** The address peers dial: IP, DNS name (DNS ServiceEntries) or Unix socket path. */
  readonly address: string;
  readonly unixSocket: boolean;
  /**
   * The port peers dial (0 for a Unix socket). In local mode, the sidecar's inbound port when
   * the workload's Pod maps one; otherwise equal to `targetPort`.
   */
  readonly port: number;
  /**
   * The application's own port on the workload (the resolved targetPort). Inbound clusters
   * (`inbound|<targetPort>||`) forward here.
   */
  readonly targetPort: number;
  /** Labels of the workload (subsets match these); empty for synthesized DNS endpoints. */
  readonly labels: Labels;
  /** The SPIFFE identity of the workload, when it has a service account. */
  readonly serviceAccount?: string;
  readonly locality?: string;
  readonly network?: string;
  readonly weight?: number;
  readonly health: HealthStatus;
  /** `health === 'Healthy'`. */
  readonly ready: boolean;
  readonly tlsMode: TlsMode;
  /**
   * The workload behind the endpoint: a Pod or WorkloadEntry; absent for ServiceEntry inline
   * endpoints and the endpoints synthesized for DNS ServiceEntries (the host itself).
   */
  readonly workload?: ObjectRef;
}

/** A problem found while building the registry: the object is skipped or partly used. */
export interface RegistryProblem {
  readonly object: ObjectRef;
  readonly message: string;
}
