// The helloworld sample: `GET /hello` answers `Hello version: v1, instance: <pod name>`, so a
// client sees which version and which replica served it (Istio's helloworld, ports 5000).
import { hostname } from 'node:os';
import { UsageError, flagValue, parseFlags } from './common/args.js';
import { requestUrl, sendText, serveHttp, type AppServer } from './common/http-server.js';
import { listenHost, listenPort } from './common/listen-address.js';

/** Starts helloworld; the version comes from `--version`, else SERVICE_VERSION, else v1. */
export function runHelloworld(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<AppServer> {
  const parsed = parseFlags(args, ['version']);
  if (parsed.positional.length > 0)
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positional[0])}`);
  const version = flagValue(parsed, 'version') ?? env['SERVICE_VERSION']?.trim() ?? 'v1';
  if (!/^[\w.-]+$/.test(version)) throw new UsageError(`bad version ${JSON.stringify(version)}`);
  const instance = env['POD_NAME']?.trim() || env['HOSTNAME']?.trim() || hostname();
  return serveHttp(
    { app: `helloworld-${version}`, host: listenHost(env), port: listenPort(5000, env) },
    (req, res) => {
      const path = requestUrl(req).pathname;
      if (path === '/hello') {
        sendText(res, 200, `Hello version: ${version}, instance: ${instance}\n`);
      } else if (path === '/health') {
        sendText(res, 200, 'Helloworld is healthy\n');
      } else {
        sendText(res, 404, `Not found: ${path}\n`);
      }
    },
  );
}
