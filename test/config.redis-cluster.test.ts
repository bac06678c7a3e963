// loadConfig's REDIS_CLUSTER: seed nodes, the Redis store it implies, and a sentence per bad value.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

const secret = 's'.repeat(32);

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('REDIS_CLUSTER', () => {
  it('lists seed nodes, picks the Redis store, and leaves REDIS_URL unset', () => {
    const config = loadConfig({
      REDIS_CLUSTER: ' redis://10.0.0.1:7000, rediss://user:pw@10.0.0.2:7001 ,',
      DEADROP_SECRET: secret,
    });
    expect(config.store).toBe('redis');
    expect(config.redisCluster).toEqual(['redis://10.0.0.1:7000', 'rediss://user:pw@10.0.0.2:7001']);
    expect(config.redisUrl).toBeUndefined();
    expect(loadConfig({}).redisCluster).toBeUndefined();
  });

  it('yields to DEADROP_STORE, as REDIS_URL does', () => {
    expect(loadConfig({ REDIS_CLUSTER: 'redis://10.0.0.1:7000', DEADROP_STORE: 'memory' }).store).toBe(
      'memory',
    );
  });

  it('needs DEADROP_SECRET, and is not set together with REDIS_URL', () => {
    expect(problemsOf({ REDIS_CLUSTER: 'redis://10.0.0.1:7000' })).toEqual([
      expect.stringMatching(/^DEADROP_SECRET must be set with the Redis store/),
    ]);
    expect(
      problemsOf({
        REDIS_CLUSTER: 'redis://10.0.0.1:7000',
        REDIS_URL: 'redis://10.0.0.1:6379',
        DEADROP_SECRET: secret,
      }),
    ).toEqual([
      expect.stringMatching(/^REDIS_URL and REDIS_CLUSTER are both set; set REDIS_URL .*not both\.$/),
    ]);
  });

  it('says which seed is not a redis://host:port URL, without echoing a password', () => {
    for (const seeds of ['http://10.0.0.1:7000', 'redis://10.0.0.1', 'not a url', 'redis://:7000']) {
      const problems = problemsOf({
        REDIS_CLUSTER: `redis://10.0.0.9:7000,${seeds}`,
        DEADROP_SECRET: secret,
      });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^REDIS_CLUSTER must list seed nodes as redis:\/\/host:port/);
      expect(problems[0]).toContain(`"${seeds}" is not one.`);
    }
    expect(problemsOf({ REDIS_CLUSTER: ',', DEADROP_SECRET: secret })).toEqual([
      expect.stringMatching(/^REDIS_CLUSTER must list seed nodes .* but it names none\.$/),
    ]);
    const [problem] = problemsOf({ REDIS_CLUSTER: 'redis://admin:hunter2@10.0.0.1', DEADROP_SECRET: secret });
    expect(problem).toContain('"redis://…@10.0.0.1" is not one.');
    expect(problem).not.toContain('hunter2');
  });

  it('names REDIS_CLUSTER when DEADROP_STORE is redis and no Redis is given', () => {
    expect(problemsOf({ DEADROP_STORE: 'redis', DEADROP_SECRET: secret })).toEqual([
      expect.stringContaining('or REDIS_CLUSTER for a Redis Cluster'),
    ]);
  });
});
