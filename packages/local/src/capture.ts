// How a replica's traffic reaches its sidecar. EXPLICIT (this module): the app is handed the
// sidecar's outbound HTTP proxy as HTTP_PROXY & co., and peers dial the sidecar's inbound ports
// (the pod's `trellis.io/inbound-ports`), which forward to the app's own ports
// (`trellis.io/app-ports`). A TRANSPARENT mode (netns + iptables, Linux as root) implements the
// same interface later without touching the controller.

/** The ports of one injected replica. */
export interface SidecarPorts {
  readonly admin: number;
  readonly status: number;
  readonly httpProxy: number;
  /** containerPort -> sidecar inbound port. */
  readonly inbound: ReadonlyMap<number, number>;
}

export interface CaptureMode {
  readonly name: 'explicit';
  /** Environment variables of an injected app. */
  appEnv(ports: SidecarPorts): Record<string, string>;
  /** Environment variables of the sidecar process. */
  sidecarEnv(): Record<string, string>;
  /** The pod's annotations describing where peers and the sidecar send traffic. */
  podAnnotations(
    injected: boolean,
    appPorts: ReadonlyMap<number, number>,
    sidecar: SidecarPorts | undefined,
  ): Record<string, string>;
}

const objectOf = (m: ReadonlyMap<number, number>): Record<string, number> =>
  Object.fromEntries([...m].map(([k, v]) => [String(k), v]));

export const explicitCapture: CaptureMode = {
  name: 'explicit',
  appEnv(ports) {
    const proxy = `http://127.0.0.1:${ports.httpProxy}`;
    return {
      HTTP_PROXY: proxy,
      http_proxy: proxy,
      HTTPS_PROXY: proxy,
      https_proxy: proxy,
      grpc_proxy: proxy,
      NO_PROXY: 'localhost,127.0.0.1',
      no_proxy: 'localhost,127.0.0.1',
    };
  },
  sidecarEnv() {
    // No capture listeners (NONE), and no per-service outbound listeners either: every sidecar
    // shares 127.0.0.1, so each binds only the ports allocated to it.
    return { ISTIO_META_INTERCEPTION_MODE: 'NONE', ISTIO_META_TRELLIS_CAPTURE: 'explicit' };
  },
  podAnnotations(injected, appPorts, sidecar) {
    if (!injected || !sidecar)
      return appPorts.size > 0
        ? { 'trellis.io/inbound-ports': JSON.stringify(objectOf(appPorts)) }
        : {};
    if (appPorts.size === 0) return {};
    return {
      'trellis.io/inbound-ports': JSON.stringify(objectOf(sidecar.inbound)),
      'trellis.io/app-ports': JSON.stringify(objectOf(appPorts)),
    };
  },
};
