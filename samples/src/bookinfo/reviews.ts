// bookinfo's reviews service in its three versions, chosen by `--version` (or SERVICE_VERSION):
// v1 does not call ratings; v2 calls ratings (10 s timeout) and shows black stars; v3 calls
// ratings (2.5 s timeout) and shows red stars. ENABLE_RATINGS and STAR_COLOR override the version's
// defaults as in Istio's reviews. When ratings fails, each review carries
// `rating: {error: "Ratings service is currently unavailable"}` instead of stars.
import { hostname } from 'node:os';
import { UsageError, flagValue, parseFlags } from '../common/args.js';
import { requestUrl, sendJson, serveHttp, type AppServer } from '../common/http-server.js';
import { listenHost, listenPort } from '../common/listen-address.js';
import { logLine } from '../common/log.js';
import { fetchUrl } from '../common/outbound.js';
import { REVIEWS, RATINGS_UNAVAILABLE, parseProductId } from './catalog.js';
import { propagatedHeaders } from './trace-headers.js';
import { serviceBaseUrl } from './upstream.js';

/** How one reviews deployment behaves. */
export interface ReviewsConfig {
  readonly version: string;
  readonly ratingsEnabled: boolean;
  readonly starColor: string;
  readonly ratingsTimeoutMs: number;
  readonly ratingsBaseUrl: string;
  readonly podName: string;
}

const VERSIONS: Record<string, { ratings: boolean; color: string; timeoutMs: number }> = {
  v1: { ratings: false, color: 'black', timeoutMs: 10_000 },
  v2: { ratings: true, color: 'black', timeoutMs: 10_000 },
  v3: { ratings: true, color: 'red', timeoutMs: 2_500 },
};

/** Reads the configuration from `--version` and the environment. */
export function reviewsConfig(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ReviewsConfig {
  const parsed = parseFlags(args, ['version']);
  if (parsed.positional.length > 0)
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positional[0])}`);
  const version = flagValue(parsed, 'version') ?? env['SERVICE_VERSION'] ?? 'v1';
  const defaults = VERSIONS[version];
  if (defaults === undefined)
    throw new UsageError(`unknown reviews version ${JSON.stringify(version)} (v1, v2 or v3)`);
  const enable = env['ENABLE_RATINGS']?.trim().toLowerCase();
  const ratingsEnabled =
    enable === undefined || enable === '' ? defaults.ratings : enable === 'true';
  const starColor = env['STAR_COLOR']?.trim() || defaults.color;
  return {
    version,
    ratingsEnabled,
    starColor,
    // Istio's reviews waits 10 s for ratings with black stars and 2.5 s otherwise.
    ratingsTimeoutMs: env['STAR_COLOR']
      ? starColor === 'black'
        ? 10_000
        : 2_500
      : defaults.timeoutMs,
    ratingsBaseUrl: serviceBaseUrl('ratings', env),
    podName: env['POD_NAME']?.trim() || hostname(),
  };
}

type Rating = { stars: number; color: string } | { error: string };
type RatingsResult =
  { readonly kind: 'ok'; readonly stars: Record<string, unknown> } | { readonly kind: 'error' };

/** Starts reviews on HOST and TRELLIS_PORT_9080 / PORT / 9080. */
export function runReviews(
  config: ReviewsConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<AppServer> {
  const app = `reviews-${config.version}`;
  return serveHttp(
    { app, host: listenHost(env), port: listenPort(9080, env) },
    async (req, res) => {
      const path = requestUrl(req).pathname;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
        return;
      }
      if (path === '/health') {
        sendJson(res, 200, { status: 'Reviews is healthy' });
        return;
      }
      const m = /^\/reviews\/([^/]*)$/.exec(path);
      if (m === null) {
        sendJson(res, 404, { error: `no route for ${path}` });
        return;
      }
      const id = parseProductId(m[1]);
      if (id === undefined) {
        sendJson(res, 400, { error: 'please provide numeric product id' });
        return;
      }
      const ratings = config.ratingsEnabled
        ? await fetchRatings(app, config, id, propagatedHeaders(req.headers))
        : undefined;
      const reviews = REVIEWS.map((r) => {
        if (ratings === undefined) return { reviewer: r.reviewer, text: r.text };
        let rating: Rating;
        if (ratings.kind === 'error') {
          rating = { error: RATINGS_UNAVAILABLE };
        } else {
          const stars = ratings.stars[r.reviewer];
          rating =
            typeof stars === 'number'
              ? { stars, color: config.starColor }
              : { error: RATINGS_UNAVAILABLE };
        }
        return { reviewer: r.reviewer, text: r.text, rating };
      });
      sendJson(res, 200, {
        id: String(id),
        podname: config.podName,
        clustername: 'null',
        version: config.version,
        reviews,
      });
    },
  );
}

async function fetchRatings(
  app: string,
  config: ReviewsConfig,
  id: number,
  headers: ReturnType<typeof propagatedHeaders>,
): Promise<RatingsResult> {
  const url = `${config.ratingsBaseUrl}/ratings/${id}`;
  try {
    const res = await fetchUrl(url, { headers, timeoutMs: config.ratingsTimeoutMs });
    if (res.status !== 200) {
      logLine(app, `ratings answered ${res.status} for ${url}`);
      return { kind: 'error' };
    }
    const body = JSON.parse(res.body.toString('utf8')) as { ratings?: unknown };
    if (typeof body.ratings !== 'object' || body.ratings === null) return { kind: 'error' };
    return { kind: 'ok', stars: body.ratings as Record<string, unknown> };
  } catch (err) {
    logLine(app, `ratings call failed: ${(err as Error).message}`);
    return { kind: 'error' };
  }
}
