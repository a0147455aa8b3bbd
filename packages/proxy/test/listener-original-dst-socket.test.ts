// SO_ORIGINAL_DST through koffi: a connection iptables REDIRECTed to the listener reports the
// address the client dialled; a direct connection reports the accepting address. The redirect
// test runs in a network namespace of its own (root, `ip` and `iptables`, which CI installs);
// it fails, never skips, where they are missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  originalDstUnavailable,
  socketOriginalDestination,
} from '../src/listener/original-dst-socket.js';

test('original_dst: getsockopt is callable on Linux', () => {
  if (process.platform !== 'linux') return;
  assert.equal(originalDstUnavailable(), undefined);
});

test('original_dst: a connection that was not redirected reports the accepting address', async () => {
  let seen: ReturnType<typeof socketOriginalDestination>;
  const server = createServer((s: Socket) => {
    seen = socketOriginalDestination(s);
    s.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve, reject) => {
    const c = connect(port, '127.0.0.1');
    c.on('close', () => resolve());
    c.on('error', reject);
    c.resume();
  });
  server.close();
  assert.deepEqual(seen, { address: '127.0.0.1', port });
});

test('original_dst: a connection REDIRECTed by iptables reports the dialled address (netns, root)', () => {
  if (process.platform !== 'linux') return;
  assert.equal(process.getuid?.(), 0, 'this test needs root (CI runs as root)');
  for (const tool of ['ip', 'iptables'])
    assert.equal(
      spawnSync('sh', ['-c', `command -v ${tool}`]).status,
      0,
      `${tool} is missing: apt-get install iproute2 iptables`,
    );
  const ns = `trl-odst-${process.pid}`;
  const module = pathToFileURL(
    join(import.meta.dirname, '..', 'src', 'listener', 'original-dst-socket.js'),
  ).href;
  // The child listens on 15001 inside the namespace, where connections to 10.96.0.5 are
  // redirected to it, and prints what it read.
  const script = `
    const { socketOriginalDestination } = await import(${JSON.stringify(module)});
    const net = await import('node:net');
    const srv = net.createServer((s) => { s.end(JSON.stringify(socketOriginalDestination(s))); });
    srv.listen(15001, '0.0.0.0', () => {
      const c = net.connect(9080, '10.96.0.5');
      let out = '';
      c.on('data', (d) => (out += d));
      c.on('close', () => { console.log(out); srv.close(); });
      c.on('error', (e) => { console.log('error ' + e.message); srv.close(); });
    });`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const inNs = (...args: string[]): string =>
      execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', timeout: 20_000 });
    inNs('ip', 'link', 'set', 'lo', 'up');
    // A source address for the dialled range (in a pod, the default route's interface has one).
    inNs('ip', 'addr', 'add', '10.96.0.9/32', 'dev', 'lo');
    inNs('ip', 'route', 'add', '10.96.0.0/16', 'dev', 'lo', 'src', '10.96.0.9');
    inNs(
      'iptables',
      '-t',
      'nat',
      '-A',
      'OUTPUT',
      '-p',
      'tcp',
      '-d',
      '10.96.0.5',
      '-j',
      'REDIRECT',
      '--to-ports',
      '15001',
    );
    const out = inNs(process.execPath, '--input-type=module', '-e', script).trim();
    assert.deepEqual(JSON.parse(out), { address: '10.96.0.5', port: 9080 });
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
});
