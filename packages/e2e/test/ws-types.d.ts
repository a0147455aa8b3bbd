// The part of the `ws` package's API the e2e tests use (the repo has no @types/ws): a WebSocket
// client that may ride on a socket the caller opened, and a server attached to an HTTP server.
declare module 'ws' {
  import type { EventEmitter } from 'node:events';
  import type { IncomingMessage, Server as HttpServer } from 'node:http';
  import type { Duplex } from 'node:stream';

  export interface ClientOptions {
    headers?: Record<string, string>;
    createConnection?: () => Duplex;
  }

  export default class WebSocket extends EventEmitter {
    constructor(address: string, options?: ClientOptions);
    send(data: string | Buffer): void;
    close(code?: number): void;
    terminate(): void;
    readonly readyState: number;
  }

  export class WebSocketServer extends EventEmitter {
    constructor(options: { server: HttpServer });
    on(event: 'connection', cb: (ws: WebSocket, req: IncomingMessage) => void): this;
    on(event: string, cb: (...args: unknown[]) => void): this;
    close(): void;
  }
}
