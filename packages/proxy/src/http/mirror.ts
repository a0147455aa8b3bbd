// Request mirroring (Envoy's shadow requests from RouteAction.request_mirror_policies): for each
// policy whose runtime_fraction draws true, a fire-and-forget copy of the request (the headers as
// finalized by the router, the whole body when it fitted the retry/shadow buffer) goes to the
// policy's cluster with `-shadow` appended to the host (before any port) unless
// disable_shadow_host_suffix_append. The copy's response is read and dropped; its failures,
// slowness and timeout (the route's global timeout) never reach the client.
import type { RequestMirrorPolicy } from '@trellis/envoy';
import type { TimerApi } from '@trellis/core';
import type {
  ClusterManagerApi,
  DownstreamHttpProtocol,
  UpstreamLbContext,
  UpstreamRequestHead,
} from '../upstream/api.js';
import type { HeaderMap } from './headers.js';
import { fractionOf } from './fault.js';

/** `host[:port]` with `-shadow` appended to the host. */
export function shadowHost(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end < 0
      ? `${authority}-shadow`
      : `${authority.slice(0, end + 1)}-shadow${authority.slice(end + 1)}`;
  }
  const colon = authority.lastIndexOf(':');
  if (colon >= 0 && authority.indexOf(':') === colon)
    return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
  return `${authority}-shadow`;
}

/** The mirror policies selected for one request (runtime_fraction drawn with `random`). */
export function selectMirrors(
  policies: readonly RequestMirrorPolicy[] | undefined,
  header: (name: string) => string | undefined,
  random: () => number,
): { cluster: string; policy: RequestMirrorPolicy }[] {
  const out: { cluster: string; policy: RequestMirrorPolicy }[] = [];
  for (const p of policies ?? []) {
    const cluster = p.cluster || (p.clusterHeader ? header(p.clusterHeader) : undefined);
    if (!cluster) continue;
    const fraction = p.runtimeFraction?.defaultValue;
    // No runtime_fraction: every request is mirrored.
    if (fraction && !(random() < fractionOf(fraction))) continue;
    out.push({ cluster, policy: p });
  }
  return out;
}

/** A request to copy. */
export interface ShadowRequest {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly scheme: string;
  /** The request headers as sent upstream (copied here). */
  readonly headers: HeaderMap;
  /** The full body, or undefined when the request has none. */
  readonly body: Buffer | undefined;
  readonly protocol: DownstreamHttpProtocol;
}

export interface ShadowOptions {
  readonly clusterManager: ClusterManagerApi;
  readonly timers: TimerApi;
  /** The route's global timeout (0 = none). */
  readonly timeoutMs: number;
  readonly lbContext: UpstreamLbContext;
  /** Called once when the copy finished, failed or timed out (tests, logs). */
  readonly onDone?: ((outcome: string) => void) | undefined;
}

/** Sends one fire-and-forget copy of `req` to `cluster`. Never throws. */
export function sendShadow(
  cluster: string,
  policy: RequestMirrorPolicy,
  req: ShadowRequest,
  o: ShadowOptions,
): void {
  let finished = false;
  let timer: unknown;
  const done = (outcome: string): void => {
    if (finished) return;
    finished = true;
    if (timer !== undefined) o.timers.clearTimeout(timer);
    o.onDone?.(outcome);
  };
  try {
    const c = o.clusterManager.get(cluster);
    if (!c) return done('cluster_not_found');
    const host = c.choose(o.lbContext);
    if (!host) return done('no_healthy_upstream');
    const transport = c.transportSocketFor(host);
    if (transport !== 'raw_buffer' && transport !== 'tls') return done('transport_not_supported');
    const pool = c.httpPool(host, c.httpProtocol(req.protocol));
    const authority = policy.disableShadowHostSuffixAppend
      ? req.authority
      : shadowHost(req.authority);
    const headers: HeaderMap = { ...req.headers };
    delete headers.expect;
    if (req.body !== undefined) {
      // The length is known: a copy never streams.
      delete headers['transfer-encoding'];
      headers['content-length'] = String(req.body.length);
    }
    const head: UpstreamRequestHead = {
      method: req.method,
      path: req.path,
      authority,
      scheme: req.scheme,
      headers,
      endStream: req.body === undefined,
    };
    const stream = pool.newStream(head, {
      onReady: (sink) => {
        if (!sink) return;
        sink.on('error', () => {});
        if (req.body !== undefined) sink.end(req.body);
        else sink.end();
      },
      onHeaders: (status, _headers, endStream, body) => {
        // The pools' bodies never emit 'error' (failures come through onReset).
        if (endStream || !body) {
          body?.resume();
          return done(`status ${status}`);
        }
        body.once('end', () => done(`status ${status}`));
        body.resume();
      },
      onReset: (reason) => done(`reset ${reason}`),
      onUpgrade: (_status, _headers, socket) => {
        socket.destroy();
        done('upgrade');
      },
    });
    if (o.timeoutMs > 0 && !finished)
      timer = o.timers.setTimeout(() => {
        timer = undefined;
        if (finished) return;
        stream.reset();
        done('timeout');
      }, o.timeoutMs);
  } catch {
    done('error');
  }
}
