// A minimal curl for inside the mesh: `trellis-sample curl [options] URL...` sends requests through
// the HTTP proxy of http_proxy / HTTP_PROXY (the sidecar) like curl does, so users and tests can
// call services by name from the sleep workload. Supports the options Istio's tasks use:
// -s -S -v -i -I -f -k -L, -H, -X, -d, -o, -w '%{http_code}', -m, -b, -A, -u, -x, --noproxy.
import { writeFileSync } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import { UsageError } from './common/args.js';
import { OutboundError, fetchUrl, type OutboundResponse } from './common/outbound.js';

export const CURL_USER_AGENT = 'trellis-sample-curl/0.1.0';

/** The parsed command line. */
export interface CurlOptions {
  urls: string[];
  method: string | undefined;
  headers: [string, string][];
  data: string | undefined;
  output: string | undefined;
  writeOut: string | undefined;
  maxTimeSeconds: number | undefined;
  silent: boolean;
  showError: boolean;
  verbose: boolean;
  include: boolean;
  head: boolean;
  fail: boolean;
  insecure: boolean;
  location: boolean;
  proxy: string | undefined;
  noProxy: string | undefined;
}

const VALUED_SHORT: Record<string, string> = {
  H: 'header',
  X: 'request',
  d: 'data',
  o: 'output',
  w: 'write-out',
  m: 'max-time',
  b: 'cookie',
  A: 'user-agent',
  u: 'user',
  x: 'proxy',
  e: 'referer',
};
const BOOL_SHORT: Record<string, string> = {
  s: 'silent',
  S: 'show-error',
  v: 'verbose',
  i: 'include',
  I: 'head',
  f: 'fail',
  k: 'insecure',
  L: 'location',
};
const VALUED_LONG = new Set([
  ...Object.values(VALUED_SHORT),
  'data-raw',
  'data-binary',
  'connect-timeout',
  'noproxy',
  'max-redirs',
]);
const BOOL_LONG = new Set([...Object.values(BOOL_SHORT), 'http1.1', 'compressed', 'no-buffer']);

/** Parses curl's command line (the subset above); throws UsageError on anything else. */
export function parseCurlArgs(args: readonly string[]): CurlOptions {
  const o: CurlOptions = {
    urls: [],
    method: undefined,
    headers: [],
    data: undefined,
    output: undefined,
    writeOut: undefined,
    maxTimeSeconds: undefined,
    silent: false,
    showError: false,
    verbose: false,
    include: false,
    head: false,
    fail: false,
    insecure: false,
    location: false,
    proxy: undefined,
    noProxy: undefined,
  };
  const set = (name: string, value: string | true) => {
    switch (name) {
      case 'header': {
        const v = String(value);
        const colon = v.indexOf(':');
        if (colon <= 0)
          throw new UsageError(`bad header ${JSON.stringify(v)} (want "Name: value")`);
        o.headers.push([v.slice(0, colon).trim(), v.slice(colon + 1).trim()]);
        break;
      }
      case 'request':
        o.method = String(value).toUpperCase();
        break;
      case 'data':
      case 'data-raw':
      case 'data-binary':
        o.data = o.data === undefined ? String(value) : `${o.data}&${String(value)}`;
        break;
      case 'output':
        o.output = String(value);
        break;
      case 'write-out':
        o.writeOut = String(value);
        break;
      case 'max-time': {
        const n = Number(value);
        if (!(n > 0)) throw new UsageError(`bad --max-time ${JSON.stringify(value)}`);
        o.maxTimeSeconds = n;
        break;
      }
      case 'cookie':
        o.headers.push(['Cookie', String(value)]);
        break;
      case 'user-agent':
        o.headers.push(['User-Agent', String(value)]);
        break;
      case 'referer':
        o.headers.push(['Referer', String(value)]);
        break;
      case 'user':
        o.headers.push(['Authorization', `Basic ${Buffer.from(String(value)).toString('base64')}`]);
        break;
      case 'proxy':
        o.proxy = String(value);
        break;
      case 'noproxy':
        o.noProxy = String(value);
        break;
      case 'silent':
        o.silent = true;
        break;
      case 'show-error':
        o.showError = true;
        break;
      case 'verbose':
        o.verbose = true;
        break;
      case 'include':
        o.include = true;
        break;
      case 'head':
        o.head = true;
        break;
      case 'fail':
        o.fail = true;
        break;
      case 'insecure':
        o.insecure = true;
        break;
      case 'location':
        o.location = true;
        break;
      default:
        // Accepted for compatibility, without effect (connect-timeout, max-redirs, http1.1...).
        break;
    }
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg.startsWith('--') && arg.length > 2) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      if (VALUED_LONG.has(name)) {
        const value = eq === -1 ? args[++i] : arg.slice(eq + 1);
        if (value === undefined) throw new UsageError(`option --${name} needs a value`);
        set(name, value);
      } else if (BOOL_LONG.has(name) && eq === -1) {
        set(name, true);
      } else {
        throw new UsageError(`unknown option --${name}`);
      }
    } else if (arg.startsWith('-') && arg.length > 1) {
      // Bundled short options: -sS, -so /dev/null, -sw '%{http_code}', -o/dev/null.
      for (let j = 1; j < arg.length; j++) {
        const c = arg[j] ?? '';
        const valued = VALUED_SHORT[c];
        const bool = BOOL_SHORT[c];
        if (valued !== undefined) {
          const rest = arg.slice(j + 1);
          const value = rest !== '' ? rest : args[++i];
          if (value === undefined) throw new UsageError(`option -${c} needs a value`);
          set(valued, value);
          break;
        }
        if (bool === undefined) throw new UsageError(`unknown option -${c}`);
        set(bool, true);
      }
    } else {
      o.urls.push(arg);
    }
  }
  if (o.urls.length === 0) throw new UsageError('no URL specified');
  return o;
}

/** Where curl writes; swapped in tests. */
export interface CurlIo {
  stdout(data: string | Buffer): void;
  stderr(text: string): void;
}

const processIo: CurlIo = {
  stdout: (d) => void process.stdout.write(d),
  stderr: (t) => void process.stderr.write(t),
};

/** Runs curl; resolves with curl's exit code (0, 6, 7, 22, 28, 52, 56...). */
export async function runCurl(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  io: CurlIo = processIo,
): Promise<number> {
  const o = parseCurlArgs(args);
  const requestEnv: NodeJS.ProcessEnv = { ...env };
  if (o.proxy !== undefined) {
    for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY'])
      requestEnv[k] = o.proxy;
  }
  if (o.noProxy !== undefined) {
    requestEnv['no_proxy'] = o.noProxy;
    requestEnv['NO_PROXY'] = o.noProxy;
  }
  let exit = 0;
  for (const raw of o.urls) {
    const code = await fetchOne(raw.includes('://') ? raw : `http://${raw}`, o, requestEnv, io);
    if (code !== 0) exit = code;
  }
  return exit;
}

async function fetchOne(
  first: string,
  o: CurlOptions,
  env: NodeJS.ProcessEnv,
  io: CurlIo,
): Promise<number> {
  const started = process.hrtime.bigint();
  let url = first;
  let method = o.method ?? (o.head ? 'HEAD' : o.data !== undefined ? 'POST' : 'GET');
  let body = o.data;
  const headers: OutgoingHttpHeaders = { 'user-agent': CURL_USER_AGENT, accept: '*/*' };
  if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  for (const [k, v] of o.headers) {
    const name = k.toLowerCase();
    const prev = headers[name];
    headers[name] =
      prev === undefined || ['user-agent', 'accept', 'content-type'].includes(name)
        ? v
        : `${String(prev)}, ${v}`;
  }
  let res: OutboundResponse;
  let redirects = 0;
  const timeoutMs = o.maxTimeSeconds !== undefined ? o.maxTimeSeconds * 1000 : 300_000;
  while (true) {
    if (o.verbose) {
      const u = new URL(url);
      io.stderr(`> ${method} ${u.pathname}${u.search} HTTP/1.1\n> Host: ${u.host}\n`);
      for (const [k, v] of Object.entries(headers)) io.stderr(`> ${k}: ${String(v)}\n`);
      io.stderr('>\n');
    }
    try {
      res = await fetchUrl(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        timeoutMs,
        env,
        insecure: o.insecure,
      });
    } catch (err) {
      const e =
        err instanceof OutboundError ? err : new OutboundError('other', (err as Error).message);
      if (!o.silent || o.showError) io.stderr(`curl: (${e.curlExitCode}) ${e.message}\n`);
      if (o.writeOut !== undefined)
        io.stdout(formatWriteOut(o.writeOut, { status: 0, url, size: 0, started, type: '' }));
      return e.curlExitCode;
    }
    const location = res.headers.location;
    if (o.location && location !== undefined && res.status >= 300 && res.status < 400) {
      if (++redirects > 50) {
        if (!o.silent || o.showError) io.stderr('curl: (47) Maximum (50) redirects followed\n');
        return 47;
      }
      url = new URL(location, url).href;
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = 'GET';
        body = undefined;
        delete headers['content-type'];
      }
      continue;
    }
    break;
  }
  if (o.verbose) {
    io.stderr(`< HTTP/${res.httpVersion} ${res.status} ${res.statusText}\n`);
    for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
      io.stderr(`< ${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\n`);
    io.stderr('<\n');
  }
  if (o.fail && res.status >= 400) {
    if (!o.silent || o.showError)
      io.stderr(`curl: (22) The requested URL returned error: ${res.status}\n`);
    if (o.writeOut !== undefined)
      io.stdout(
        formatWriteOut(o.writeOut, { status: res.status, url, size: 0, started, type: '' }),
      );
    return 22;
  }
  let out = Buffer.alloc(0);
  if (o.include || o.head) {
    let head = `HTTP/${res.httpVersion} ${res.status} ${res.statusText}\r\n`;
    for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
      head += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`;
    out = Buffer.from(`${head}\r\n`);
  }
  out = Buffer.concat([out, res.body]);
  if (o.output !== undefined && o.output !== '-') {
    if (o.output !== '/dev/null') writeFileSync(o.output, out);
  } else {
    io.stdout(out);
  }
  if (o.writeOut !== undefined) {
    const type = res.headers['content-type'] ?? '';
    io.stdout(
      formatWriteOut(o.writeOut, { status: res.status, url, size: res.body.length, started, type }),
    );
  }
  return 0;
}

interface WriteOutValues {
  status: number;
  url: string;
  size: number;
  started: bigint;
  type: string;
}

/** Expands curl's -w format: %{http_code}, %{time_total}, %{size_download}, \n, %%... */
export function formatWriteOut(format: string, v: WriteOutValues): string {
  const seconds = Number(process.hrtime.bigint() - v.started) / 1e9;
  const vars: Record<string, string> = {
    http_code: String(v.status).padStart(3, '0'),
    response_code: String(v.status).padStart(3, '0'),
    time_total: seconds.toFixed(6),
    size_download: String(v.size),
    url_effective: v.url,
    content_type: v.type,
  };
  return format
    .replace(/%\{([a-z_]+)\}/g, (m, name: string) => vars[name] ?? m)
    .replace(/%%/g, '%')
    .replace(/\\([nrt\\])/g, (_m, c: string) =>
      c === 'n' ? '\n' : c === 'r' ? '\r' : c === 't' ? '\t' : '\\',
    );
}
