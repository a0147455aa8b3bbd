// The proxy's admin HTTP server (Envoy's admin interface, 127.0.0.1:15000 by default) and the
// health listener (Istio's 15021 `/healthz/ready`). Everything it shows or does comes from
// AdminProviders, so it runs and is tested on its own: configuration and xDS status for
// `/config_dump`, cluster views for `/clusters`, the stats store for `/stats`, the server state
// for `/ready`, and hooks for `/quitquitquit`, `/drain_listeners` and `/logging`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Listener } from '@trellis/envoy';
import { PROMETHEUS_TEXT_CONTENT_TYPE, type StatsStore } from '../observability/stats-store.js';
import type { ProxyConfig } from '../xds/config.js';
import {
  clusterStatusFromConfig,
  renderClustersJson,
  renderClustersText,
  type ClusterStatusView,
} from './clusters-view.js';
import { buildConfigDump, selectResource, type XdsStatusProvider } from './config-dump.js';

/** Envoy's server states, as `/ready` prints them. */
export type ServerState = 'LIVE' | 'DRAINING' | 'PRE_INITIALIZING' | 'INITIALIZING';

/** Envoy's log levels. */
export const LOG_LEVELS = [
  'trace',
  'debug',
  'info',
  'warning',
  'error',
  'critical',
  'off',
] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The proxy's loggers as `/logging` sees them. */
export interface AdminLogger {
  /** Every logger and its level. */
  levels(): Iterable<readonly [name: string, level: LogLevel]>;
  /** Changes one logger; false when there is no such logger. */
  setLevel(name: string, level: LogLevel): boolean;
  /** Changes every logger. */
  setAllLevels(level: LogLevel): void;
}

export interface DrainOptions {
  /** Enter the graceful drain period before closing listeners. */
  readonly graceful: boolean;
  /** Only inbound listeners (traffic_direction INBOUND). */
  readonly inboundOnly: boolean;
  /** Do not exit after the drain period. */
  readonly skipExit: boolean;
}

/** What `/server_info` reports beyond the state. */
export interface ServerInfo {
  readonly version?: string;
  /** The bootstrap node (proto3 JSON). */
  readonly node?: Readonly<Record<string, unknown>>;
  /** Process start, ms since the epoch (default: when the admin server was created). */
  readonly startTime?: number;
  readonly commandLineOptions?: Readonly<Record<string, unknown>>;
}

/** Everything the admin server shows or does. Only `config`, `stats` and `state` are required. */
export interface AdminProviders {
  config(): ProxyConfig;
  readonly stats: StatsStore;
  state(): ServerState;
  /** Live cluster and host state (default: derived from the configuration). */
  clusters?(): Iterable<ClusterStatusView>;
  readonly xdsStatus?: XdsStatusProvider;
  /** The bootstrap, shown first in `/config_dump`. */
  bootstrap?(): Readonly<Record<string, unknown>> | undefined;
  serverInfo?(): ServerInfo;
  /** `/quitquitquit`: called after the response is sent. */
  shutdown?(): void | Promise<void>;
  /** `/drain_listeners`. */
  drainListeners?(options: DrainOptions): void | Promise<void>;
  readonly logger?: AdminLogger;
  /** `/healthcheck/fail` and `/healthcheck/ok`. */
  setHealthCheckFailed?(failed: boolean): void;
  /** `/reopen_logs`. */
  reopenLogs?(): void | Promise<void>;
  /** `/healthz/ready` on the health listener; default: `state() === 'LIVE'`. */
  healthReady?(): boolean;
  /** `/certs`: Envoy's Certificates view of the TLS material in use. */
  certs?(): Readonly<Record<string, unknown>>;
}

export interface AdminServerOptions {
  /** Default 127.0.0.1. */
  readonly address?: string;
  /** Default 15000; 0 picks a free port. */
  readonly port?: number;
  /** The health listener (`/healthz/ready`): default 15021 on 0.0.0.0; null for none. */
  readonly healthPort?: number | null;
  readonly healthAddress?: string;
}

interface Request {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
}

interface Response {
  readonly status: number;
  readonly body: string;
  readonly contentType?: string;
  /** Run after the response has been sent. */
  readonly after?: () => void | Promise<void>;
}

interface Handler {
  readonly path: string;
  readonly help: string;
  /** Envoy's mutates_server_state: POST only. */
  readonly post: boolean;
  readonly params?: readonly (readonly [string, string])[];
  readonly run: (req: Request) => Response | Promise<Response>;
}

const TEXT = 'text/plain; charset=UTF-8';
const JSON_TYPE = 'application/json';

function text(body: string, status = 200): Response {
  return { status, body, contentType: TEXT };
}

function json(body: unknown, status = 200): Response {
  return { status, body: JSON.stringify(body, null, 2) + '\n', contentType: JSON_TYPE };
}

function flag(q: URLSearchParams, name: string): boolean {
  return q.has(name) && q.get(name) !== 'false';
}

function listenerAddress(l: Listener): string {
  const sa = l.address?.socketAddress;
  if (sa) return `${sa.address ?? ''}:${sa.portValue ?? 0}`;
  if (l.address?.pipe?.path !== undefined) return l.address.pipe.path;
  return '';
}

function seconds(ms: number): string {
  return `${Math.max(0, Math.floor(ms / 1000))}s`;
}

/** The admin server and its health listener. */
export class AdminServer {
  private readonly handlers: Handler[];
  private admin: Server | undefined;
  private health: Server | undefined;
  private readonly created = Date.now();

  constructor(
    private readonly providers: AdminProviders,
    private readonly options: AdminServerOptions = {},
  ) {
    this.handlers = this.makeHandlers().sort((a, b) => (a.path < b.path ? -1 : 1));
  }

  /** Starts both listeners; resolves with the bound ports. */
  async start(): Promise<{ adminPort: number; healthPort: number | undefined }> {
    this.admin = createServer((req, res) => this.serve(req, res));
    const adminPort = await listen(
      this.admin,
      this.options.port ?? 15000,
      this.options.address ?? '127.0.0.1',
    );
    let healthPort: number | undefined;
    const hp = this.options.healthPort === undefined ? 15021 : this.options.healthPort;
    if (hp !== null) {
      this.health = createServer((req, res) => this.serveHealth(req, res));
      try {
        healthPort = await listen(this.health, hp, this.options.healthAddress ?? '0.0.0.0');
      } catch (e) {
        await this.close();
        throw e;
      }
    }
    return { adminPort, healthPort };
  }

  /** The admin listener's port (after start). */
  get adminPort(): number | undefined {
    return (this.admin?.address() as AddressInfo | null)?.port;
  }

  get healthPort(): number | undefined {
    return (this.health?.address() as AddressInfo | null)?.port;
  }

  /** Closes both listeners and their connections. */
  async close(): Promise<void> {
    await Promise.all([closeServer(this.admin), closeServer(this.health)]);
    this.admin = undefined;
    this.health = undefined;
  }

  /** Handles one admin request without a socket (path with query), as Envoy's Admin::request. */
  async request(method: string, pathAndQuery: string): Promise<{ status: number; body: string }> {
    const r = await this.dispatch(method, pathAndQuery);
    return { status: r.status, body: r.body };
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    // The body (if any) is not used; drain it so keep-alive connections stay usable.
    req.resume();
    this.dispatch(req.method ?? 'GET', req.url ?? '/')
      .catch((e: unknown) => text(`error: ${e instanceof Error ? e.message : String(e)}\n`, 500))
      .then((r) => {
        res.writeHead(r.status, {
          'content-type': r.contentType ?? TEXT,
          'cache-control': 'no-cache, max-age=0',
          'x-content-type-options': 'nosniff',
          'content-length': Buffer.byteLength(r.body),
        });
        res.end(req.method === 'HEAD' ? undefined : r.body);
        if (r.after) {
          const after = r.after;
          res.once('finish', () => {
            setImmediate(() => {
              void Promise.resolve()
                .then(after)
                .catch(() => undefined);
            });
          });
        }
      })
      .catch(() => res.destroy());
  }

  private serveHealth(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    const path = (req.url ?? '/').split('?')[0];
    let status: number;
    let body: string;
    if (path !== '/healthz/ready') {
      status = 404;
      body = 'not found\n';
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      status = 405;
      body = `Method ${req.method ?? ''} not allowed, GET required.\n`;
    } else {
      const ready = this.providers.healthReady
        ? this.providers.healthReady()
        : this.providers.state() === 'LIVE';
      status = ready ? 200 : 503;
      body = ready ? '' : `proxy not ready: ${this.providers.state()}\n`;
    }
    res.writeHead(status, { 'content-type': TEXT, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private async dispatch(method: string, pathAndQuery: string): Promise<Response> {
    const q = pathAndQuery.indexOf('?');
    const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : pathAndQuery.slice(q + 1));
    const handler = this.handlers.find((h) => h.path === path);
    if (!handler) return text(`invalid path. ${this.helpText()}`, 404);
    if (handler.post && method !== 'POST')
      return text(`Method ${method} not allowed, POST required.`, 405);
    if (!handler.post && method !== 'GET' && method !== 'HEAD' && method !== 'POST')
      return text(`Method ${method} not allowed, GET required.`, 405);
    return handler.run({ method, path, query });
  }

  private helpText(): string {
    let out = 'admin commands are:\n';
    for (const h of this.handlers) {
      out += `  ${h.path}${h.post ? ' (POST)' : ''}: ${h.help}\n`;
      for (const [id, help] of h.params ?? []) out += `      ${id}: ${help}\n`;
    }
    return out;
  }

  private makeHandlers(): Handler[] {
    const p = this.providers;
    const hs: Handler[] = [
      {
        path: '/',
        help: 'Admin home page',
        post: false,
        run: () => text(this.helpText()),
      },
      {
        path: '/help',
        help: 'print out list of admin commands',
        post: false,
        run: () => text(this.helpText()),
      },
      {
        path: '/certs',
        help: 'print certs on machine',
        post: false,
        run: () => json(p.certs?.() ?? { certificates: [] }),
      },
      {
        path: '/clusters',
        help: 'upstream cluster status',
        post: false,
        params: [['format', 'File format to use; One of (text, json)']],
        run: ({ query }) => {
          const views = p.clusters ? [...p.clusters()] : clusterStatusFromConfig(p.config());
          return query.get('format') === 'json'
            ? { status: 200, body: renderClustersJson(views) + '\n', contentType: JSON_TYPE }
            : text(renderClustersText(views));
        },
      },
      {
        path: '/config_dump',
        help: 'dump current Envoy configs (experimental)',
        post: false,
        params: [
          ['resource', 'The resource to dump'],
          [
            'name_regex',
            'Dump only the currently loaded configurations whose names match the specified regex',
          ],
          ['include_eds', 'Dump currently loaded configuration including EDS'],
        ],
        run: ({ query }) => this.configDump(query),
      },
      {
        path: '/listeners',
        help: 'print listener info',
        post: false,
        params: [['format', 'File format to use; One of (text, json)']],
        run: ({ query }) => {
          const ls = [...p.config().listeners].sort((a, b) => (a[0] < b[0] ? -1 : 1));
          if (query.get('format') === 'json')
            return json({
              listener_statuses: ls.map(([name, l]) => ({
                name,
                local_address: l.address?.socketAddress
                  ? {
                      socket_address: {
                        address: l.address.socketAddress.address ?? '',
                        port_value: l.address.socketAddress.portValue ?? 0,
                      },
                    }
                  : {},
              })),
            });
          return text(ls.map(([name, l]) => `${name}::${listenerAddress(l)}\n`).join(''));
        },
      },
      {
        path: '/stats',
        help: 'print server stats',
        post: false,
        params: [
          ['usedonly', 'Only include stats that have been written by system since restart'],
          ['filter', 'Regular expression (ECMAScript) for filtering stats'],
          ['format', 'Format to use; One of (text, json, prometheus)'],
        ],
        run: ({ query }) => {
          const q = this.statsQuery(query);
          if (typeof q === 'string') return text(q, 400);
          switch (query.get('format') ?? 'text') {
            case 'json':
              return { status: 200, body: p.stats.renderJson(q) + '\n', contentType: JSON_TYPE };
            case 'prometheus':
              return {
                status: 200,
                body: p.stats.renderPrometheus(q),
                contentType: PROMETHEUS_TEXT_CONTENT_TYPE,
              };
            case 'text':
              return text(p.stats.renderText(q));
            default:
              return text(`usage: /stats?format=(text|json|prometheus)\n`, 400);
          }
        },
      },
      {
        path: '/stats/prometheus',
        help: 'print server stats in prometheus format',
        post: false,
        params: [
          ['usedonly', 'Only include stats that have been written by system since restart'],
          ['filter', 'Regular expression (ECMAScript) for filtering stats'],
        ],
        run: ({ query }) => {
          const q = this.statsQuery(query);
          if (typeof q === 'string') return text(q, 400);
          return {
            status: 200,
            body: p.stats.renderPrometheus(q),
            contentType: PROMETHEUS_TEXT_CONTENT_TYPE,
          };
        },
      },
      {
        path: '/reset_counters',
        help: 'reset all counters to zero',
        post: true,
        run: () => {
          p.stats.resetCounters();
          return text('OK\n');
        },
      },
      {
        path: '/ready',
        help: 'print server state, return 200 if LIVE, otherwise return 503',
        post: false,
        run: () => {
          const s = p.state();
          return text(`${s}\n`, s === 'LIVE' ? 200 : 503);
        },
      },
      {
        path: '/server_info',
        help: 'print server version/status information',
        post: false,
        run: () => {
          const info = p.serverInfo?.() ?? {};
          const up = seconds(Date.now() - (info.startTime ?? this.created));
          return json({
            version: info.version ?? 'trellis',
            state: p.state(),
            hot_restart_version: 'disabled',
            command_line_options: info.commandLineOptions ?? {},
            node: info.node ?? {},
            uptime_current_epoch: up,
            uptime_all_epochs: up,
          });
        },
      },
      {
        path: '/memory',
        help: 'print current allocation/heap usage',
        post: false,
        run: () => {
          const m = process.memoryUsage();
          return json({
            allocated: String(m.heapUsed + m.external),
            heap_size: String(m.heapTotal),
            resident: String(m.rss),
            total_physical_bytes: String(m.rss),
          });
        },
      },
    ];
    if (p.shutdown) {
      const shutdown = p.shutdown.bind(p);
      hs.push({
        path: '/quitquitquit',
        help: 'exit the server',
        post: true,
        run: () => ({ status: 200, body: 'OK\n', contentType: TEXT, after: shutdown }),
      });
    }
    if (p.drainListeners) {
      const drain = p.drainListeners.bind(p);
      hs.push({
        path: '/drain_listeners',
        help: 'drain listeners',
        post: true,
        params: [
          [
            'graceful',
            'When draining listeners, enter a graceful drain period prior to closing listeners',
          ],
          [
            'skip_exit',
            'When draining listeners, do not exit after the drain period. This must be used with graceful',
          ],
          ['inboundonly', 'Drains all inbound listeners'],
        ],
        run: async ({ query }) => {
          const options: DrainOptions = {
            graceful: flag(query, 'graceful'),
            inboundOnly: flag(query, 'inboundonly'),
            skipExit: flag(query, 'skip_exit'),
          };
          if (options.skipExit && !options.graceful)
            return text('skip_exit requires graceful\n', 400);
          await drain(options);
          return text('OK\n');
        },
      });
    }
    if (p.logger) {
      const logger = p.logger;
      hs.push({
        path: '/logging',
        help: 'query/change logging levels',
        post: false,
        params: [
          [
            'paths',
            'Change multiple logging levels by setting to <logger_name1>:<desired_level1>,<logger_name2>:<desired_level2>',
          ],
          [
            'level',
            `desired logging level, this will change all loggers's level; One of (, ${LOG_LEVELS.join(', ')})`,
          ],
        ],
        run: ({ method, query }) => this.logging(logger, method, query),
      });
    }
    if (p.setHealthCheckFailed) {
      const set = p.setHealthCheckFailed.bind(p);
      hs.push(
        {
          path: '/healthcheck/fail',
          help: 'cause the server to fail health checks',
          post: true,
          run: () => {
            set(true);
            return text('OK\n');
          },
        },
        {
          path: '/healthcheck/ok',
          help: 'cause the server to pass health checks',
          post: true,
          run: () => {
            set(false);
            return text('OK\n');
          },
        },
      );
    }
    if (p.reopenLogs) {
      const reopen = p.reopenLogs.bind(p);
      hs.push({
        path: '/reopen_logs',
        help: 'reopen access logs',
        post: true,
        run: async () => {
          await reopen();
          return text('OK\n');
        },
      });
    }
    return hs;
  }

  private statsQuery(query: URLSearchParams): { usedOnly: boolean; filter?: RegExp } | string {
    const usedOnly = flag(query, 'usedonly');
    const f = query.get('filter');
    if (f === null || f === '') return { usedOnly };
    try {
      return { usedOnly, filter: new RegExp(f) };
    } catch (e) {
      return `Invalid re2 regex: ${e instanceof Error ? e.message : String(e)}\n`;
    }
  }

  private configDump(query: URLSearchParams): Response {
    const p = this.providers;
    if (query.has('mask')) return text('mask is not supported by this proxy\n', 400);
    let nameRegex: RegExp | undefined;
    const nr = query.get('name_regex');
    if (nr !== null && nr !== '') {
      try {
        nameRegex = new RegExp(nr);
      } catch (e) {
        return text(
          `Error while parsing name_regex: ${e instanceof Error ? e.message : String(e)}\n`,
          400,
        );
      }
    }
    const bootstrap = p.bootstrap?.();
    const startTime = p.serverInfo?.().startTime;
    const dump = buildConfigDump(p.config(), p.xdsStatus ?? {}, {
      includeEds:
        flag(query, 'include_eds') || query.get('resource') === 'dynamic_endpoint_configs',
      ...(nameRegex ? { nameRegex } : {}),
      ...(bootstrap ? { bootstrap } : {}),
      ...(startTime !== undefined ? { bootstrapLoaded: startTime } : {}),
    });
    const resource = query.get('resource');
    if (resource !== null && resource !== '') {
      const selected = selectResource(dump, resource);
      if (!selected) return text(`${resource} not found in config dump\n`, 404);
      return json(selected);
    }
    return json(dump);
  }

  private logging(logger: AdminLogger, method: string, query: URLSearchParams): Response {
    const list = (): string => {
      let out = 'active loggers:\n';
      for (const [name, level] of [...logger.levels()].sort((a, b) => (a[0] < b[0] ? -1 : 1)))
        out += `  ${name}: ${level}\n`;
      return out;
    };
    const usage =
      'usage: /logging?<name>=<level> (change single level)\n' +
      'usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\n' +
      'usage: /logging?level=<level> (change all levels)\n' +
      `levels: ${LOG_LEVELS.join(' ')}\n`;
    const entries = [...query.entries()];
    if (entries.length === 0) return text(list());
    if (method !== 'POST') return text(`Method ${method} not allowed, POST required.`, 405);
    const isLevel = (l: string): l is LogLevel => (LOG_LEVELS as readonly string[]).includes(l);
    const level = query.get('level');
    if (level !== null && level !== '') {
      if (entries.length !== 1 || !isLevel(level)) return text(usage, 404);
      logger.setAllLevels(level);
      return text(list());
    }
    const changes: [string, LogLevel][] = [];
    const paths = query.get('paths');
    if (paths !== null) {
      if (entries.length !== 1) return text(usage, 404);
      for (const part of paths.split(',')) {
        const i = part.lastIndexOf(':');
        const name = part.slice(0, i);
        const l = part.slice(i + 1);
        if (i <= 0 || !isLevel(l)) return text(usage, 404);
        changes.push([name, l]);
      }
    } else {
      if (entries.length !== 1) return text(usage, 404);
      const [name, l] = entries[0] as [string, string];
      if (!isLevel(l)) return text(usage, 404);
      changes.push([name, l]);
    }
    const known = new Set([...logger.levels()].map(([n]) => n));
    for (const [name] of changes) if (!known.has(name)) return text(usage, 404);
    for (const [name, l] of changes) logger.setLevel(name, l);
    return text(list());
  }
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server | undefined): Promise<void> {
  if (!server || !server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
