// loadConfig: defaults, the Redis rules, and one clear sentence per bad value.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('loadConfig', () => {
  it('defaults to SQLite in ./data on port 8080 with the documented limits', () => {
    expect(loadConfig({})).toMatchObject({
      port: 8080,
      host: undefined,
      store: 'sqlite',
      dataDir: './data',
      redisUrl: undefined,
      secret: undefined,
      ttlSeconds: 86_400,
      bodyLimit: 10_240,
      maxQueue: 1000,
      maxFields: 1000,
      logLevel: 'info',
      hookTtlSeconds: 86_400,
      webhookTimeoutMs: 4000,
      webhookAllowPrivate: false,
      rateWindowSeconds: 60,
      trustProxy: 0,
      pipeTtlSeconds: 60,
      pipeMax: 5,
      publicUrl: undefined,
      pipingUrl: undefined,
    });
  });

  it('reads flags and base URLs strictly', () => {
    expect(
      loadConfig({ DEADROP_WEBHOOK_ALLOW_PRIVATE: 'true', DEADROP_PUBLIC_URL: 'https://a.example/' }),
    ).toMatchObject({
      webhookAllowPrivate: true,
      publicUrl: 'https://a.example',
    });
    expect(problemsOf({ DEADROP_WEBHOOK_ALLOW_PRIVATE: 'yes', DEADROP_PIPING_URL: 'ftp://x' })).toEqual([
      expect.stringMatching(/^DEADROP_WEBHOOK_ALLOW_PRIVATE must be true or false/),
      expect.stringMatching(/^DEADROP_PIPING_URL must be an http or https URL/),
    ]);
  });

  it('picks Redis when REDIS_URL is set, unless DEADROP_STORE says otherwise', () => {
    const secret = 's'.repeat(32);
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', DEADROP_SECRET: secret }).store).toBe('redis');
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', DEADROP_STORE: 'memory' }).store).toBe('memory');
  });

  it('reads every setting', () => {
    const config = loadConfig({
      PORT: '9000',
      HOST: '127.0.0.1',
      DEADROP_STORE: 'memory',
      DEADROP_DATA_DIR: '/tmp/x',
      DEADROP_SECRET: 'a-secret-of-enough-length',
      DEADROP_TTL: '60',
      DEADROP_BODY_LIMIT: '2048',
      DEADROP_MAX_QUEUE: '5',
      DEADROP_MAX_FIELDS: '6',
      LOG_LEVEL: 'warn',
    });
    expect(config).toMatchObject({
      port: 9000,
      host: '127.0.0.1',
      ttlSeconds: 60,
      bodyLimit: 2048,
      maxQueue: 5,
      maxFields: 6,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names every bad value in its own sentence', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      DEADROP_STORE: 'postgres',
      DEADROP_TTL: '-1',
      DEADROP_BODY_LIMIT: '1.5',
      DEADROP_MAX_QUEUE: '0',
      DEADROP_SECRET: 'short',
      LOG_LEVEL: 'loud',
    });
    expect(problems).toHaveLength(7);
    for (const name of [
      'PORT',
      'DEADROP_STORE',
      'DEADROP_TTL',
      'DEADROP_BODY_LIMIT',
      'DEADROP_MAX_QUEUE',
      'DEADROP_SECRET',
      'LOG_LEVEL',
    ]) {
      expect(problems.some((problem) => problem.startsWith(name))).toBe(true);
    }
    for (const problem of problems) expect(problem).toMatch(/\.$/);
  });

  it('requires REDIS_URL and DEADROP_SECRET for the Redis store', () => {
    expect(problemsOf({ DEADROP_STORE: 'redis' })).toEqual([
      expect.stringContaining('REDIS_URL must be set'),
      expect.stringContaining('DEADROP_SECRET must be set'),
    ]);
    expect(problemsOf({ REDIS_URL: 'http://x' })).toEqual([
      expect.stringContaining('REDIS_URL must start with redis://'),
      expect.stringContaining('DEADROP_SECRET must be set'),
    ]);
  });

  it('serves /metrics on the main port by default, or not at all, or on a port of its own', () => {
    expect(loadConfig({})).toMatchObject({ metrics: 'on', shutdownGraceMs: 10_000 });
    expect(loadConfig({ DEADROP_METRICS: 'off' }).metrics).toBe('off');
    expect(loadConfig({ DEADROP_METRICS: 'OFF' }).metrics).toBe('off');
    expect(loadConfig({ DEADROP_METRICS: '9464' }).metrics).toBe(9464);
    expect(loadConfig({ DEADROP_SHUTDOWN_GRACE: '0' }).shutdownGraceMs).toBe(0);
    expect(problemsOf({ DEADROP_METRICS: 'yes' })).toEqual([
      'DEADROP_METRICS must be on, off, or a port other than PORT (8080) such as 9464, but it is "yes".',
    ]);
    expect(problemsOf({ DEADROP_METRICS: '8080' })).toEqual([expect.stringContaining('other than PORT')]);
    expect(problemsOf({ DEADROP_METRICS: '70000' })).toEqual([expect.stringContaining('DEADROP_METRICS')]);
    expect(problemsOf({ DEADROP_SHUTDOWN_GRACE: '10s' })).toEqual([
      'DEADROP_SHUTDOWN_GRACE must be a number of seconds from 0 to 86400, but it is "10s".',
    ]);
  });
});
