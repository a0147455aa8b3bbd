// Crash safety: a writer process is SIGKILLed at a random moment, over and over. After every
// kill each object file must parse, carry a payload matching its hash, and be a version the
// journal committed (the latest one, or the one before if the kill fell between the journal
// commit and the object rename); the journal must read cleanly; and the store must open, break
// the dead writer's lock, finish its half-applied change and accept a write.
// TRELLIS_TEST_SEED replays a schedule; TRELLIS_CRASH_ROUNDS changes the number of rounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeObject } from '@trellis/api';
import { openFileStore, readJournal, type JournalEntry } from '../src/index.js';
import { Worker, configMap, seededRandom, testSeed, walkFiles, withStateDir } from './helpers.js';
import { CRASH_NAMESPACE, payloadHash } from './worker-protocol.js';

const ROUNDS = Number(process.env.TRELLIS_CRASH_ROUNDS ?? 40);
const JOURNAL = { segmentMaxEntries: 25, retainSegments: 3 };

interface Stats {
  writes: number;
  unapplied: number;
  tornTails: number;
  staleLocks: number;
  tempFiles: number;
}

test('a writer killed at random points never leaves a corrupt or half-written store', async (t) => {
  const seed = testSeed();
  const note = `crash test seed ${seed} (TRELLIS_TEST_SEED=${seed} replays it), ${ROUNDS} rounds`;
  console.log(note);
  t.diagnostic(note);
  const random = seededRandom(seed);
  const stats: Stats = { writes: 0, unapplied: 0, tornTails: 0, staleLocks: 0, tempFiles: 0 };

  await withStateDir(async (dir) => {
    const journalDir = join(dir, 'journal');
    const objectsDir = join(dir, 'objects/_core/ConfigMap', CRASH_NAMESPACE);
    const seqs = new Map<string, number>();
    let lastRevBefore = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const delayMs = Math.floor(random() * 51);
      const worker = new Worker({
        mode: 'crash',
        dir,
        objects: 4,
        payloadBytes: 3000,
        journal: JOURNAL,
      });
      await worker.next('ready');
      await sleep(delayMs);
      await worker.kill();
      const where = `round ${round} (kill after ${delayMs} ms, seed ${seed})`;

      // 1. The state exactly as the kill left it.
      const files = await walkFiles(dir);
      if (files.includes('store.lock')) stats.staleLocks++;
      stats.tempFiles += files.filter((f) => f.endsWith('.tmp')).length;
      stats.tornTails += await countTornTails(journalDir);
      const entries = await readJournal(journalDir);
      const lastEntry = entries[entries.length - 1];
      stats.writes += (lastEntry?.rev ?? 0) - lastRevBefore;
      let unapplied = false;
      for (const name of await objectNames(objectsDir)) {
        const path = join(objectsDir, `${name}.json`);
        const o = parseChecked(await readFile(path, 'utf8'), name, `${where}: ${path}`);
        const seq = Number((o.data as Record<string, string>).seq);
        assert.ok(seq >= (seqs.get(name) ?? 0), `${where}: ${name} went back to seq ${seq}`);
        const history = entries.filter((e) => e.object.metadata.name === name);
        const latest = history[history.length - 1];
        if (!latest) continue; // its history was compacted away; the hash check still holds
        if (o.metadata.resourceVersion === String(latest.rev)) {
          assert.deepEqual(o, latest.object, `${where}: ${name} differs from its journal entry`);
        } else {
          // Only the very last change may be committed but not yet applied.
          assert.equal(
            latest,
            lastEntry,
            `${where}: ${name} is behind a change that is not the last`,
          );
          const previous = history[history.length - 2];
          if (previous)
            assert.deepEqual(o, previous.object, `${where}: ${name} is not the previous version`);
          unapplied = true;
        }
      }
      if (lastEntry && lastEntry.type === 'ADDED' && !(await exists(objectsDir, lastEntry)))
        unapplied = true;
      if (unapplied) stats.unapplied++;

      // 2. The store opens, breaks the dead writer's lock, recovers, and takes a write.
      const started = Date.now();
      const store = await openFileStore(dir, { lockTimeoutMs: 5_000, journal: JOURNAL });
      try {
        const probeKey = { group: '', kind: 'ConfigMap', namespace: 'probe', name: 'probe' };
        const cur = await store.get(probeKey);
        const probe = cur
          ? await store.update({ ...cur, data: { round: String(round) } })
          : await store.create(configMap('probe', 'probe', { round: String(round) }));
        const took = Date.now() - started;
        assert.ok(took < 3_000, `${where}: recovery and a write took ${took} ms`);

        // 3. Afterwards every object is its latest committed version and no temp file is left.
        const after = await readJournal(journalDir);
        const last = after[after.length - 1];
        assert.equal(last?.object.metadata.resourceVersion, probe.metadata.resourceVersion);
        lastRevBefore = last?.rev ?? 0;
        for (const name of await objectNames(objectsDir)) {
          const o = parseChecked(
            await readFile(join(objectsDir, `${name}.json`), 'utf8'),
            name,
            `${where} after recovery`,
          );
          const history = after.filter((e) => e.object.metadata.name === name);
          const latest = history[history.length - 1];
          if (latest) assert.deepEqual(o, latest.object, `${where}: ${name} not recovered`);
          seqs.set(name, Number((o.data as Record<string, string>).seq));
        }
        const leftovers = (await walkFiles(dir)).filter(
          (f) => f.endsWith('.tmp') || f.includes('lock'),
        );
        assert.deepEqual(leftovers, [], `${where}: files left behind`);
      } finally {
        await store.close();
      }
    }
  });
  const summary =
    `${stats.writes} writes killed ${ROUNDS} times: ${stats.staleLocks} stale locks, ` +
    `${stats.unapplied} committed-but-unapplied changes, ${stats.tornTails} torn journal lines, ` +
    `${stats.tempFiles} stray temp files`;
  console.log(summary);
  t.diagnostic(summary);
  assert.ok(stats.writes >= ROUNDS, 'the writer got some writes done before being killed');
});

/** Parses an object file and checks its payload against its hash. */
function parseChecked(text: string, name: string, where: string): KubeObject {
  let o: KubeObject;
  try {
    o = JSON.parse(text) as KubeObject;
  } catch (e) {
    assert.fail(`${where}: does not parse: ${String(e)}`);
  }
  const d = o.data as Record<string, string>;
  assert.equal(o.metadata.name, name, where);
  assert.equal(d.hash, payloadHash(name, d.seq ?? '', d.payload ?? ''), `${where}: hash mismatch`);
  return o;
}

async function objectNames(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir))
      .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
      .map((n) => n.slice(0, -5));
  } catch {
    return [];
  }
}

async function exists(objectsDir: string, e: JournalEntry): Promise<boolean> {
  return (await objectNames(objectsDir)).includes(e.object.metadata.name);
}

async function countTornTails(journalDir: string): Promise<number> {
  let torn = 0;
  for (const name of await readdir(journalDir)) {
    const text = await readFile(join(journalDir, name), 'utf8');
    if (text.length > 0 && !text.endsWith('\n')) torn++;
  }
  return torn;
}
