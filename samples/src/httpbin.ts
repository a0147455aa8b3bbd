// An httpbin-like echo service (the endpoints of go-httpbin that Istio's tasks use): /get,
// /headers, /ip, /user-agent, /anything, /post|put|patch|delete, /status/CODE (with `200,503`
// or `200:0.9,503:0.1` random picks), /delay/SECONDS (at most 10) and an index at /. Header
// values are lists, as go-httpbin returns them. Listens on container port 8080.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  readBody,
  requestUrl,
  send,
  sendJson,
  serveHttp,
  type AppServer,
} from './common/http-server.js';
import { listenHost, listenPort } from './common/listen-address.js';

export const MAX_DELAY_SECONDS = 10;

/** Starts httpbin on HOST and TRELLIS_PORT_8080 / PORT / 8080. */
export function runHttpbin(
  env: NodeJS.ProcessEnv = process.env,
  random: () => number = Math.random,
): Promise<AppServer> {
  return serveHttp(
    { app: 'httpbin', host: listenHost(env), port: listenPort(8080, env) },
    (req, res) => route(req, res, random),
  );
}

const BODY_METHODS: Record<string, string> = {
  '/post': 'POST',
  '/put': 'PUT',
  '/patch': 'PATCH',
  '/delete': 'DELETE',
};

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  random: () => number,
): Promise<void> {
  const url = requestUrl(req);
  const path = url.pathname;
  const method = req.method ?? 'GET';
  const get = method === 'GET' || method === 'HEAD';
  if (path === '/' && get) {
    send(res, 200, INDEX, 'text/html; charset=utf-8');
    return;
  }
  if (path === '/get') {
    if (!get) return methodNotAllowed(res, 'GET, HEAD');
    sendJson(res, 200, echo(req, url));
    return;
  }
  if (path === '/headers') {
    sendJson(res, 200, { headers: headerLists(req) });
    return;
  }
  if (path === '/ip') {
    sendJson(res, 200, { origin: origin(req) });
    return;
  }
  if (path === '/user-agent') {
    sendJson(res, 200, { 'user-agent': req.headers['user-agent'] ?? '' });
    return;
  }
  const bodyMethod = BODY_METHODS[path];
  if (bodyMethod !== undefined) {
    if (method !== bodyMethod) return methodNotAllowed(res, bodyMethod);
    sendJson(res, 200, await echoWithBody(req, url));
    return;
  }
  if (path === '/anything' || path.startsWith('/anything/')) {
    sendJson(res, 200, await echoWithBody(req, url));
    return;
  }
  const status = /^\/status\/([^/]+)$/.exec(path);
  if (status?.[1] !== undefined) {
    const code = pickStatus(decodeURIComponent(status[1]), random);
    if (code === undefined) {
      sendJson(res, 400, { error: `invalid status code(s): ${status[1]}` });
      return;
    }
    const headers: Record<string, string> = {};
    if ([301, 302, 303, 305, 307, 308].includes(code)) headers['location'] = '/redirect/1';
    if (code === 204 || code === 304 || code < 200) {
      res.writeHead(code, headers);
      res.end();
    } else {
      send(res, code, '', 'text/plain; charset=utf-8', headers);
    }
    return;
  }
  const delay = /^\/delay\/([^/]+)$/.exec(path);
  if (delay?.[1] !== undefined) {
    const seconds = Number(delay[1]);
    if (!Number.isFinite(seconds) || seconds < 0) {
      sendJson(res, 400, { error: `invalid delay: ${delay[1]}` });
      return;
    }
    const ms = Math.min(seconds, MAX_DELAY_SECONDS) * 1000;
    const done = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(true), ms);
      res.once('close', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (done) sendJson(res, 200, echo(req, url));
    return;
  }
  sendJson(res, 404, { error: `not found: ${path}` });
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  sendJson(res, 405, { error: 'method not allowed' }, { allow });
}

/**
 * Picks a status from `200`, `200,503` (uniformly) or `200:0.9,503:0.1` (by weight); undefined
 * when the spec is malformed or a code is outside 100-599.
 */
export function pickStatus(spec: string, random: () => number): number | undefined {
  const choices: { code: number; weight: number }[] = [];
  for (const part of spec.split(',')) {
    const [codeText, weightText] = part.split(':');
    const code = Number(codeText);
    const weight = weightText === undefined ? 1 : Number(weightText);
    if (!Number.isInteger(code) || code < 100 || code > 599) return undefined;
    if (!Number.isFinite(weight) || weight < 0) return undefined;
    choices.push({ code, weight });
  }
  const total = choices.reduce((s, c) => s + c.weight, 0);
  if (choices.length === 0 || total <= 0) return undefined;
  let r = random() * total;
  for (const c of choices) {
    if (r < c.weight) return c.code;
    r -= c.weight;
  }
  return choices[choices.length - 1]?.code;
}

/** Header names as Go canonicalizes them: `x-request-id` -> `X-Request-Id`. */
export function canonicalHeaderName(name: string): string {
  return name
    .toLowerCase()
    .split('-')
    .map((w) => (w === '' ? w : w[0]?.toUpperCase() + w.slice(1)))
    .join('-');
}

function headerLists(req: IncomingMessage): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = canonicalHeaderName(raw[i] ?? '');
    (out[name] ??= []).push(raw[i + 1] ?? '');
  }
  return out;
}

function argLists(url: URL): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) (out[k] ??= []).push(v);
  return out;
}

function origin(req: IncomingMessage): string {
  const xff = req.headers['x-forwarded-for'];
  const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
  return first || (req.socket.remoteAddress ?? '');
}

function fullUrl(req: IncomingMessage, url: URL): string {
  const proto = req.headers['x-forwarded-proto'];
  const scheme = typeof proto === 'string' && proto !== '' ? proto.split(',')[0]?.trim() : 'http';
  const host = req.headers.host ?? 'localhost';
  return `${scheme}://${host}${url.pathname}${url.search}`;
}

function echo(req: IncomingMessage, url: URL): Record<string, unknown> {
  return {
    args: argLists(url),
    headers: headerLists(req),
    method: req.method ?? 'GET',
    origin: origin(req),
    url: fullUrl(req, url),
  };
}

async function echoWithBody(req: IncomingMessage, url: URL): Promise<Record<string, unknown>> {
  const body = await readBody(req, 10 << 20);
  const type = String(req.headers['content-type'] ?? '');
  const text = body.toString('utf8');
  let json: unknown = null;
  let form: Record<string, string[]> = {};
  if (type.includes('application/json') && text !== '') {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  } else if (type.includes('application/x-www-form-urlencoded')) {
    form = {};
    for (const [k, v] of new URLSearchParams(text)) (form[k] ??= []).push(v);
  }
  return { ...echo(req, url), data: text, files: {}, form, json };
}

const INDEX = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>httpbin (Trellis sample)</title></head>
<body>
<h1>httpbin</h1>
<p>An HTTP request and response service, for trying out the mesh.</p>
<ul>
<li><a href="/get">/get</a>: the request's query args, headers, origin and URL</li>
<li><a href="/headers">/headers</a>: the request's headers</li>
<li><a href="/ip">/ip</a>: the caller's address</li>
<li><a href="/user-agent">/user-agent</a></li>
<li><code>/anything</code>, <code>/post</code>, <code>/put</code>, <code>/patch</code>, <code>/delete</code>: the request, body included</li>
<li><code>/status/:code</code>: answers that status; <code>/status/200,503</code> picks one at random, <code>/status/200:0.9,503:0.1</code> by weight</li>
<li><code>/delay/:seconds</code>: answers after that many seconds (at most ${MAX_DELAY_SECONDS})</li>
</ul>
</body>
</html>
`;
