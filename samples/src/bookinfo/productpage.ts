// bookinfo's productpage: the HTML product page built from details and reviews, the login that
// makes every later call carry `end-user: <name>`, and the JSON API under /api/v1/products.
// Like Istio's productpage it waits 3 s for details (one try) and 3 s per try for reviews (two
// tries), and copies the tracing and user headers of the incoming request onto its calls.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import {
  readBody,
  requestUrl,
  send,
  sendJson,
  serveHttp,
  type AppServer,
} from '../common/http-server.js';
import { listenHost, listenPort } from '../common/listen-address.js';
import { logLine } from '../common/log.js';
import { fetchUrl } from '../common/outbound.js';
import {
  DETAILS_UNAVAILABLE,
  PRODUCTS,
  RATINGS_UNAVAILABLE_FOR_BOOK,
  REVIEWS_UNAVAILABLE,
  parseProductId,
} from './catalog.js';
import {
  PRODUCTPAGE_CSS,
  renderIndex,
  renderProductPage,
  type Fetched,
} from './productpage-html.js';
import { propagatedHeaders } from './trace-headers.js';
import { serviceBaseUrl } from './upstream.js';

const APP = 'productpage';
/** Istio's productpage: 3 s per call, and reviews is tried twice. */
export const UPSTREAM_TIMEOUT_MS = 3_000;
export const REVIEWS_ATTEMPTS = 2;
/** The cookie holding the signed-in user. */
export const SESSION_COOKIE = 'session';

interface Upstreams {
  readonly details: string;
  readonly reviews: string;
  readonly ratings: string;
}

/** Starts productpage on HOST and TRELLIS_PORT_9080 / PORT / 9080. */
export function runProductPage(env: NodeJS.ProcessEnv = process.env): Promise<AppServer> {
  const upstreams: Upstreams = {
    details: serviceBaseUrl('details', env),
    reviews: serviceBaseUrl('reviews', env),
    ratings: serviceBaseUrl('ratings', env),
  };
  return serveHttp({ app: APP, host: listenHost(env), port: listenPort(9080, env) }, (req, res) =>
    route(upstreams, req, res),
  );
}

async function route(up: Upstreams, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = requestUrl(req);
  const path = url.pathname;
  const method = req.method ?? 'GET';
  const user = sessionUser(req);
  const get = method === 'GET' || method === 'HEAD';
  if (path === '/health' && get) {
    sendJson(res, 200, { status: 'Product page is healthy' });
    return;
  }
  if (path === '/' && get) {
    send(res, 200, renderIndex(user), 'text/html; charset=utf-8');
    return;
  }
  if (path === '/static/style.css' && get) {
    send(res, 200, PRODUCTPAGE_CSS, 'text/css; charset=utf-8', {
      'cache-control': 'max-age=3600',
    });
    return;
  }
  if (path === '/productpage' && get) {
    const headers = upstreamHeaders(req, user);
    const product = PRODUCTS[0];
    if (product === undefined) throw new Error('no products');
    const [details, reviews] = await Promise.all([
      getDetails(up, product.id, headers),
      getReviews(up, product.id, headers),
    ]);
    const html = renderProductPage({
      product,
      user,
      details: details.fetched,
      reviews: reviews.fetched,
    });
    send(res, 200, html, 'text/html; charset=utf-8');
    return;
  }
  if (path === '/login') {
    if (method !== 'POST') {
      redirect(res, '/productpage');
      return;
    }
    const form = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8'));
    const name = (form.get('username') ?? url.searchParams.get('username') ?? '').trim();
    if (!isValidUser(name)) {
      redirect(res, backTo(req));
      return;
    }
    logLine(APP, `user ${JSON.stringify(name)} signed in`);
    redirect(res, backTo(req), {
      'set-cookie': `${SESSION_COOKIE}=${encodeSession(name)}; Path=/; HttpOnly; SameSite=Lax`,
    });
    return;
  }
  if (path === '/logout') {
    redirect(res, backTo(req), {
      'set-cookie': `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`,
    });
    return;
  }
  if (path === '/api/v1/products' && get) {
    sendJson(res, 200, PRODUCTS);
    return;
  }
  const api = /^\/api\/v1\/products\/([^/]+)(?:\/(reviews|ratings))?$/.exec(path);
  if (api !== null && get) {
    const id = parseProductId(api[1]);
    if (id === undefined) {
      sendJson(res, 400, { error: 'please provide numeric product id' });
      return;
    }
    const headers = upstreamHeaders(req, user);
    const result =
      api[2] === 'reviews'
        ? await getReviews(up, id, headers)
        : api[2] === 'ratings'
          ? await getRatings(up, id, headers)
          : await getDetails(up, id, headers);
    sendJson(
      res,
      result.status,
      result.fetched.ok ? result.fetched.body : { error: result.fetched.error },
    );
    return;
  }
  sendJson(res, 404, { error: `no route for ${method} ${path}` });
}

/** The propagated headers plus `end-user` for a signed-in user. */
function upstreamHeaders(req: IncomingMessage, user: string | undefined): OutgoingHttpHeaders {
  const headers = propagatedHeaders(req.headers);
  if (user !== undefined) headers['end-user'] = user;
  return headers;
}

interface CallResult {
  readonly status: number;
  readonly fetched: Fetched;
}

async function call(
  url: string,
  headers: OutgoingHttpHeaders,
  attempts: number,
  unavailable: string,
): Promise<CallResult> {
  let status = 500;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const res = await fetchUrl(url, { headers, timeoutMs: UPSTREAM_TIMEOUT_MS });
      status = res.status;
      if (res.status === 200) {
        return { status: 200, fetched: { ok: true, body: JSON.parse(res.body.toString('utf8')) } };
      }
      logLine(APP, `${url} answered ${res.status} (attempt ${attempt} of ${attempts})`);
    } catch (err) {
      status = 500;
      logLine(APP, `${url} failed: ${(err as Error).message} (attempt ${attempt} of ${attempts})`);
    }
  }
  return { status, fetched: { ok: false, error: unavailable } };
}

function getDetails(up: Upstreams, id: number, headers: OutgoingHttpHeaders): Promise<CallResult> {
  return call(`${up.details}/details/${id}`, headers, 1, DETAILS_UNAVAILABLE);
}

function getReviews(up: Upstreams, id: number, headers: OutgoingHttpHeaders): Promise<CallResult> {
  return call(`${up.reviews}/reviews/${id}`, headers, REVIEWS_ATTEMPTS, REVIEWS_UNAVAILABLE);
}

function getRatings(up: Upstreams, id: number, headers: OutgoingHttpHeaders): Promise<CallResult> {
  return call(`${up.ratings}/ratings/${id}`, headers, 1, RATINGS_UNAVAILABLE_FOR_BOOK);
}

function redirect(res: ServerResponse, location: string, headers: OutgoingHttpHeaders = {}): void {
  send(res, 302, `Redirecting to ${location}\n`, 'text/plain; charset=utf-8', {
    ...headers,
    location,
  });
}

/** Where to go after login/logout: the referring page on this site, else the product page. */
function backTo(req: IncomingMessage): string {
  const referer = req.headers.referer;
  if (typeof referer === 'string') {
    try {
      const u = new URL(referer);
      if (u.pathname !== '/login' && u.pathname !== '/logout') return `${u.pathname}${u.search}`;
    } catch {
      // Not a URL: ignore it.
    }
  }
  return '/productpage';
}

/** A user name fit for the `end-user` header: 1 to 100 printable ASCII characters. */
export function isValidUser(name: string): boolean {
  return /^[\x21-\x7e][\x20-\x7e]{0,99}$/.test(name);
}

/** The session cookie's value for `user` (base64url JSON; this sample does not sign it). */
export function encodeSession(user: string): string {
  return Buffer.from(JSON.stringify({ user })).toString('base64url');
}

/** The signed-in user from the session cookie, if any. */
export function sessionUser(req: IncomingMessage): string | undefined {
  const cookie = req.headers.cookie;
  if (cookie === undefined) return undefined;
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    try {
      const value = JSON.parse(
        Buffer.from(part.slice(eq + 1).trim(), 'base64url').toString('utf8'),
      ) as { user?: unknown };
      if (typeof value.user === 'string' && isValidUser(value.user)) return value.user;
    } catch {
      return undefined;
    }
  }
  return undefined;
}
