import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileStore, redact, redactUri, scrubSecrets, startRun } from '../../src/tracking/index.ts';
import { tempDir } from '../helpers.ts';

describe('secrets never reach params, tags or messages', () => {
  it('masks secret-named keys and credential URLs inside values', () => {
    const flat = {
      'train.lr': 0.001,
      'tracking.token': 'ghp_abc123',
      'redis.password': 'hunter2',
      'hf.api_key': 'hf_xyz',
      'cloud.credentials_file': '/home/me/.aws/credentials',
      'db.secret': '',
      'queue.url': 'redis://worker:hunter2@queue.internal:6379/0',
      'mlflow.uri': 'https://alice:pa%24s@mlflow.example.com/api',
      notes: 'plain text with http://example.com/path',
      use_audio: true,
      hf_token: 'hf_abc',
      'auth.accessToken': 'ya29',
      'model.tokenizer': 'qwen3',
      max_tokens: 64,
      pad_token: '<pad>',
      'openai-api-key': 'sk-1',
    };
    expect(scrubSecrets(flat)).toEqual({
      'train.lr': 0.001,
      'tracking.token': '***',
      'redis.password': '***',
      'hf.api_key': '***',
      'cloud.credentials_file': '***',
      'db.secret': '',
      'queue.url': 'redis://***@queue.internal:6379/0',
      'mlflow.uri': 'https://***@mlflow.example.com/api',
      notes: 'plain text with http://example.com/path',
      use_audio: true,
      hf_token: '***',
      'auth.accessToken': '***',
      'model.tokenizer': 'qwen3',
      max_tokens: 64,
      pad_token: '<pad>',
      'openai-api-key': '***',
    });
  });

  it('redacts URLs with user:pass@ and Authorization values in free text', () => {
    expect(redactUri('http://bob:s3cret@127.0.0.1:5000')).toBe('http://***@127.0.0.1:5000');
    expect(redact('GET https://tok@host/x failed; Authorization: Bearer abc.def-ghi')).toBe('GET https://***@host/x failed; Authorization: Bearer ***');
    expect(redact('nothing secret at http://host:5000/x')).toBe('nothing secret at http://host:5000/x');
    expect(redact('Authorization: Basic Ym9iOmh1bnRlcjI=; Basic setup, the bearer of news')).toBe('Authorization: Basic ***; Basic setup, the bearer of news');
  });

  it('scrubbed config logged as params leaves no secret on disk', async () => {
    const tmp = tempDir();
    try {
      const store = new FileStore(join(tmp.path, 'mlruns'));
      const run = await startRun(store, { experimentName: 'secrets' });
      await run.logParams(scrubSecrets({ 'redis.password': 'hunter2', 'queue.url': 'redis://w:hunter2@q:6379', lr: 0.1 }));
      await run.end();
      const got = await store.getRun(run.runId);
      expect(got.data.params).toEqual({ 'redis.password': '***', 'queue.url': 'redis://***@q:6379', lr: '0.1' });
      const dir = join(tmp.path, 'mlruns', run.experimentId, run.runId, 'params');
      expect(readFileSync(join(dir, 'queue.url'), 'utf8')).not.toContain('hunter2');
    } finally {
      tmp.cleanup();
    }
  });
});
