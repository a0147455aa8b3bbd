// resolveStateDir: the flag, else TRELLIS_STATE_DIR, else ./.trellis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveStateDir } from '../src/index.js';

test('the flag wins, then the environment, then .trellis in the working directory', () => {
  const env = { TRELLIS_STATE_DIR: '/var/lib/trellis' };
  assert.equal(resolveStateDir({ flag: '/tmp/s', env, cwd: '/home/u' }), '/tmp/s');
  assert.equal(resolveStateDir({ flag: 'rel', env, cwd: '/home/u' }), '/home/u/rel');
  assert.equal(resolveStateDir({ env, cwd: '/home/u' }), '/var/lib/trellis');
  assert.equal(resolveStateDir({ env: { TRELLIS_STATE_DIR: 'st' }, cwd: '/w' }), '/w/st');
  assert.equal(resolveStateDir({ env: {}, cwd: '/home/u' }), '/home/u/.trellis');
  assert.equal(
    resolveStateDir({ flag: '', env: { TRELLIS_STATE_DIR: '' }, cwd: '/x' }),
    '/x/.trellis',
  );
  assert.equal(resolveStateDir({ flag: undefined, env: {}, cwd: '/x' }), '/x/.trellis');
});
