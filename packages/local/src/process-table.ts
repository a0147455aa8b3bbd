// Every process the runtime started (gateways, sidecars, apps), persisted in
// runtime/processes.json as it changes, so that a run killed with SIGKILL leaves nothing behind:
// the next `trellis up` or `trellis down` kills the recorded processes whose identity still
// matches (a reused pid is left alone).
import {
  identityOf,
  isAlive,
  parseIdentity,
  signalTree,
  type ProcessIdentity,
} from './process-identity.js';
import { readJson, writeJsonAtomic } from './runtime-files.js';

export interface ProcessRecord {
  readonly identity: ProcessIdentity;
  /** `app`, `proxy` or `gateway`. */
  readonly role: string;
  /** `namespace/pod`. */
  readonly pod: string;
}

export class ProcessTable {
  readonly #file: string;
  readonly #records = new Map<number, ProcessRecord>();

  constructor(file: string) {
    this.#file = file;
  }

  add(pid: number, role: string, pod: string): ProcessRecord {
    const r = { identity: identityOf(pid), role, pod };
    this.#records.set(pid, r);
    this.#flush();
    return r;
  }

  remove(pid: number): void {
    if (this.#records.delete(pid)) this.#flush();
  }

  get size(): number {
    return this.#records.size;
  }

  #flush(): void {
    writeJsonAtomic(this.#file, { processes: [...this.#records.values()] });
  }
}

/** The records of a processes.json (empty if absent or unreadable). */
export function readProcessRecords(file: string): ProcessRecord[] {
  const v = readJson(file) as { processes?: unknown } | undefined;
  if (!v || !Array.isArray(v.processes)) return [];
  const out: ProcessRecord[] = [];
  for (const p of v.processes as unknown[]) {
    if (typeof p !== 'object' || p === null) continue;
    const o = p as Record<string, unknown>;
    const identity = parseIdentity(o.identity);
    if (!identity) continue;
    out.push({
      identity,
      role: typeof o.role === 'string' ? o.role : 'process',
      pod: typeof o.pod === 'string' ? o.pod : '',
    });
  }
  return out;
}

/**
 * Kills what a previous run left (SIGTERM, then SIGKILL after `graceMs`), apps before proxies.
 * Returns the records that were still running.
 */
export async function killLeftovers(file: string, graceMs = 3_000): Promise<ProcessRecord[]> {
  const alive = readProcessRecords(file).filter((r) => isAlive(r.identity));
  const order = ['app', 'proxy', 'gateway'];
  alive.sort((a, b) => order.indexOf(a.role) - order.indexOf(b.role));
  for (const r of alive) signalTree(r.identity.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive.some((r) => isAlive(r.identity)) && Date.now() < deadline)
    await new Promise((res) => setTimeout(res, 50));
  for (const r of alive) if (isAlive(r.identity)) signalTree(r.identity.pid, 'SIGKILL');
  while (alive.some((r) => isAlive(r.identity)) && Date.now() < deadline + 2_000)
    await new Promise((res) => setTimeout(res, 20));
  writeJsonAtomic(file, { processes: [] });
  return alive;
}
