// examples/deadrop.service stays a valid, hardened unit: a strict parse of its sections and keys always,
// and `systemd-analyze verify` where the machine has it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const UNIT = 'examples/deadrop.service';
const SECTIONS = ['Unit', 'Service', 'Install'];

type Unit = Map<string, Map<string, string[]>>;

/**
 * Parses a unit file as systemd.syntax(7) describes it: `[Section]` headers, `Key=value` lines (a key may
 * repeat), `#` and `;` comments, a trailing backslash continuing a line. Anything else is an error.
 */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      const name = header[1] as string;
      if (!SECTIONS.includes(name) || unit.has(name)) throw new Error(`line ${index + 1}: section [${name}]`);
      section = new Map();
      unit.set(name, section);
      return;
    }
    const entry = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!entry || !section) throw new Error(`line ${index + 1} is neither a section nor a key: ${line}`);
    const [, key, value] = entry as unknown as [string, string, string];
    section.set(key, [...(section.get(key) ?? []), value.trim()]);
  });
  return unit;
}

const text = await readFile(UNIT, 'utf8');
const unit = parseUnit(text);
const value = (section: string, key: string) => unit.get(section)?.get(key)?.at(-1);
const { bin } = JSON.parse(await readFile('package.json', 'utf8')) as { bin: Record<string, string> };

describe(UNIT, () => {
  it('has the three sections and what a service needs', () => {
    expect([...unit.keys()]).toEqual(SECTIONS);
    expect(value('Unit', 'Description')).toBeTruthy();
    expect(value('Service', 'Type')).toBe('exec');
    expect(value('Install', 'WantedBy')).toBe('multi-user.target');
  });

  it('starts the package bin, as npm installs it into a folder, with "serve"', () => {
    const [binary, ...args] = (value('Service', 'ExecStart') ?? '').split(/\s+/);
    expect(binary).toMatch(new RegExp(`^(/[\\w.-]+)+/node_modules/\\.bin/${Object.keys(bin)[0]}$`));
    expect(args).toEqual(['serve']);
  });

  it('runs hardened, as its own user, with a state directory, restarts and an optional settings file', () => {
    for (const [key, expected] of Object.entries({
      DynamicUser: 'yes',
      StateDirectory: 'deadrop',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      CapabilityBoundingSet: '',
      Restart: 'on-failure',
    })) {
      expect(value('Service', key), key).toBe(expected);
    }
    expect(value('Service', 'EnvironmentFile')).toMatch(/^-?\/\S+$/);
    expect(unit.get('Service')?.get('Environment')).toContain('DEADROP_DATA_DIR=/var/lib/deadrop');
    // V8 writes executable code: this setting would kill the relay at start.
    expect(unit.get('Service')?.has('MemoryDenyWriteExecute')).toBe(false);
  });

  it('refuses what is not a unit file (the parser is strict)', () => {
    expect(() => parseUnit('Description=outside a section')).toThrow(/neither/);
    expect(() => parseUnit('[Unit]\nDescription deadrop')).toThrow(/neither/);
    expect(() => parseUnit('[Servce]\nType=exec')).toThrow(/section/);
  });

  it.runIf(existsSync('/usr/bin/systemd-analyze'))('passes systemd-analyze verify', async () => {
    const result = await promisify(execFile)('systemd-analyze', ['verify', '--man=no', UNIT]).catch(
      (error: { stdout: string; stderr: string }) => error,
    );
    // The binary exists where the package is installed, not on the test machine: that one line is expected.
    const [binary] = (value('Service', 'ExecStart') ?? '').split(/\s+/);
    const problems = `${result.stdout}${result.stderr}`
      .split('\n')
      .filter((line) => line.trim() !== '')
      .filter((line) => existsSync(binary as string) || !line.includes(`${binary} is not executable`));
    expect(problems).toEqual([]);
  });
});
