// bookinfo's ratings service: `GET /ratings/<id>` answers the stars per reviewer; `POST` with a
// JSON object `{"Reviewer1": 3}` changes them (1 to 5 stars, kept in memory).
import {
  readBody,
  requestUrl,
  sendJson,
  serveHttp,
  type AppServer,
} from '../common/http-server.js';
import { listenHost, listenPort } from '../common/listen-address.js';
import { DEFAULT_RATINGS, parseProductId } from './catalog.js';

/** Starts ratings on HOST and TRELLIS_PORT_9080 / PORT / 9080. */
export function runRatings(env: NodeJS.ProcessEnv = process.env): Promise<AppServer> {
  const store = new Map<number, Record<string, number>>();
  return serveHttp(
    { app: 'ratings', host: listenHost(env), port: listenPort(9080, env) },
    async (req, res) => {
      const path = requestUrl(req).pathname;
      if (path === '/health') {
        sendJson(res, 200, { status: 'Ratings is healthy' });
        return;
      }
      const m = /^\/ratings\/([^/]*)$/.exec(path);
      if (m === null) {
        sendJson(res, 404, { error: `no route for ${path}` });
        return;
      }
      const id = parseProductId(m[1]);
      if (id === undefined) {
        sendJson(res, 400, { error: 'please provide numeric product ID' });
        return;
      }
      if (req.method === 'GET' || req.method === 'HEAD') {
        sendJson(res, 200, { id, ratings: store.get(id) ?? DEFAULT_RATINGS });
        return;
      }
      if (req.method !== 'POST') {
        sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD, POST' });
        return;
      }
      let update: unknown;
      try {
        update = JSON.parse((await readBody(req, 64 * 1024)).toString('utf8'));
      } catch {
        sendJson(res, 400, { error: 'please provide valid ratings JSON' });
        return;
      }
      if (typeof update !== 'object' || update === null || Array.isArray(update)) {
        sendJson(res, 400, { error: 'please provide valid ratings JSON' });
        return;
      }
      const next = { ...(store.get(id) ?? DEFAULT_RATINGS) };
      for (const [reviewer, stars] of Object.entries(update)) {
        if (typeof stars !== 'number' || !Number.isInteger(stars) || stars < 1 || stars > 5) {
          sendJson(res, 400, { error: `rating of ${reviewer} must be an integer from 1 to 5` });
          return;
        }
        next[reviewer] = stars;
      }
      store.set(id, next);
      sendJson(res, 200, { id, ratings: next });
    },
  );
}
