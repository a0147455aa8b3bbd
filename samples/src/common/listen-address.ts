// Where a sample listens: HOST (default 0.0.0.0) and, per container port, TRELLIS_PORT_<port>
// (set by Trellis' local runtime for every containerPort) or PORT (the first container port),
// falling back to the container port itself, as the app would listen in a Kubernetes pod.

/** The bind address: $HOST, else every interface. */
export function listenHost(env: NodeJS.ProcessEnv = process.env): string {
  const host = env['HOST']?.trim();
  return host ? host : '0.0.0.0';
}

/** True when the local runtime assigned ports (some TRELLIS_PORT_<n> is set). */
export function hasAssignedPorts(env: NodeJS.ProcessEnv = process.env): boolean {
  return Object.keys(env).some((k) => k.startsWith('TRELLIS_PORT_'));
}

/** The runtime's TRELLIS_PORT_<containerPort>, if set. */
export function assignedPort(
  containerPort: number,
  env: NodeJS.ProcessEnv = process.env,
): number | undefined {
  const raw = env[`TRELLIS_PORT_${containerPort}`];
  return raw === undefined || raw.trim() === ''
    ? undefined
    : parsePort(raw, `TRELLIS_PORT_${containerPort}`);
}

/**
 * The port to listen on for `containerPort`: TRELLIS_PORT_<containerPort>, else PORT when this is
 * the app's first (primary) container port, else the container port. Port 0 asks the OS for one.
 */
export function listenPort(
  containerPort: number,
  env: NodeJS.ProcessEnv = process.env,
  primary = true,
): number {
  const assigned = assignedPort(containerPort, env);
  if (assigned !== undefined) return assigned;
  const port = env['PORT'];
  if (primary && port !== undefined && port.trim() !== '') return parsePort(port, 'PORT');
  return containerPort;
}

/** Parses a port number (0-65535) or throws an error naming the variable. */
export function parsePort(raw: string, what: string): number {
  const n = Number(raw.trim());
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`${what}: ${JSON.stringify(raw)} is not a port number (0-65535)`);
  return n;
}

/** host:port for a URL or log line (IPv6 in brackets). */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
