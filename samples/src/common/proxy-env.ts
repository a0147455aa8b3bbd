// Which proxy a sample's outbound request goes through, from the environment as curl and Go read
// it: http_proxy / HTTP_PROXY for http URLs, https_proxy / HTTPS_PROXY for https ones, skipped for
// hosts matched by no_proxy / NO_PROXY (`*`, exact names, domain suffixes, IPs, CIDRs, `host:port`).
// Trellis' local runtime sets these to the sidecar's HTTP proxy port in explicit capture mode.
import { BlockList, isIP } from 'node:net';

/** The proxy URL for `target`, or undefined to connect directly. */
export function proxyForUrl(target: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  const scheme = target.protocol === 'https:' ? 'https' : 'http';
  const raw = firstSet(env, [`${scheme}_proxy`, `${scheme.toUpperCase()}_PROXY`]);
  if (raw === undefined) return undefined;
  const noProxy = firstSet(env, ['no_proxy', 'NO_PROXY']) ?? '';
  const port = target.port ? Number(target.port) : scheme === 'https' ? 443 : 80;
  if (noProxyMatches(unbracket(target.hostname), port, noProxy)) return undefined;
  return parseProxyUrl(raw);
}

/** Parses a proxy setting; a bare `host:port` means http://host:port. */
export function parseProxyUrl(raw: string): URL {
  const text = raw.includes('://') ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`proxy setting ${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== 'http:')
    throw new Error(`proxy ${JSON.stringify(raw)}: only http:// proxies are supported`);
  return url;
}

/** True when `host` (a name or IP, no brackets) on `port` is excluded by the no_proxy list. */
export function noProxyMatches(host: string, port: number, noProxy: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  for (const raw of noProxy.split(/[,\s]+/)) {
    let entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    // An optional :port (IPv6 entries carry brackets when they have one).
    let entryPort: number | undefined;
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
    if (m?.[1] !== undefined && m[2] !== undefined) {
      entry = m[1];
      entryPort = Number(m[2]);
    }
    if (entryPort !== undefined && entryPort !== port) continue;
    entry = unbracket(entry);
    if (entry.includes('/')) {
      if (cidrContains(entry, name)) return true;
      continue;
    }
    if (isIP(entry) !== 0 || isIP(name) !== 0) {
      if (entry === name) return true;
      continue;
    }
    const domain = entry.startsWith('*.') ? entry.slice(1) : entry;
    if (domain.startsWith('.')) {
      if (name.endsWith(domain) || name === domain.slice(1)) return true;
    } else if (name === domain || name.endsWith(`.${domain}`)) {
      return true;
    }
  }
  return false;
}

function cidrContains(cidr: string, host: string): boolean {
  const [base, bits] = cidr.split('/');
  const family = isIP(base ?? '');
  const hostFamily = isIP(host);
  if (family === 0 || hostFamily !== family || base === undefined) return false;
  const prefix = Number(bits);
  if (!Number.isInteger(prefix)) return false;
  const list = new BlockList();
  try {
    list.addSubnet(base, prefix, family === 4 ? 'ipv4' : 'ipv6');
  } catch {
    return false;
  }
  return list.check(host, hostFamily === 4 ? 'ipv4' : 'ipv6');
}

function firstSet(env: NodeJS.ProcessEnv, names: readonly string[]): string | undefined {
  for (const name of names) {
    const v = env[name]?.trim();
    if (v) return v;
  }
  return undefined;
}

/** Strips the brackets of an IPv6 literal as URL.hostname keeps them. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
