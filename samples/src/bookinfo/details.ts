// bookinfo's details service: `GET /details/<id>` answers the book's author, year, ISBNs...
import { serveHttp, sendJson, requestUrl, type AppServer } from '../common/http-server.js';
import { listenHost, listenPort } from '../common/listen-address.js';
import { bookDetails, parseProductId } from './catalog.js';

/** Starts details on HOST and TRELLIS_PORT_9080 / PORT / 9080. */
export function runDetails(env: NodeJS.ProcessEnv = process.env): Promise<AppServer> {
  return serveHttp(
    { app: 'details', host: listenHost(env), port: listenPort(9080, env) },
    (req, res) => {
      const path = requestUrl(req).pathname;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
        return;
      }
      if (path === '/health') {
        sendJson(res, 200, { status: 'Details is healthy' });
        return;
      }
      const m = /^\/details\/([^/]*)$/.exec(path);
      if (m === null) {
        sendJson(res, 404, { error: `no route for ${path}` });
        return;
      }
      const id = parseProductId(m[1]);
      if (id === undefined) {
        sendJson(res, 400, { error: 'please provide numeric product id' });
        return;
      }
      sendJson(res, 200, bookDetails(id));
    },
  );
}
