// Group commit for the embedded store: the writes that arrive in one turn of the event loop run one after
// the other, each atomic on its own (a savepoint), and commit together. A commit writes every page it
// changed to the WAL; fifty posts to one queue change its index pages fifty times but write them once.
import type { Database } from 'better-sqlite3';

interface Pending {
  write: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** A function that runs `write` in the next group commit and resolves with its result once committed. */
export type BatchedWrite = <T>(write: () => T) => Promise<T>;

/**
 * Batches writes on `db`. Each `write` must be atomic by itself: reads and at most one statement that
 * writes (a failed statement undoes itself), or a better-sqlite3 transaction function (inside the
 * group's transaction it becomes a savepoint), so that one that throws rolls back alone. Nothing is
 * acknowledged before the group's COMMIT; if that fails, every write of the group fails.
 */
export function createWriteBatcher(db: Database): BatchedWrite & { flush(): void } {
  let pending: Pending[] = [];
  const runAll = db.transaction((group: Pending[]): Outcome[] =>
    group.map(({ write }) => {
      try {
        return { ok: true, value: write() };
      } catch (error) {
        return { ok: false, error };
      }
    }),
  );
  const flush = () => {
    const group = pending;
    pending = [];
    if (group.length === 0) return;
    let outcomes: Outcome[];
    try {
      outcomes = runAll(group);
    } catch (error) {
      for (const { reject } of group) reject(error);
      return;
    }
    outcomes.forEach((outcome, i) => {
      const { resolve, reject } = group[i] as Pending;
      if (outcome.ok) resolve(outcome.value);
      else reject(outcome.error);
    });
  };
  const batched = <T>(write: () => T) =>
    new Promise<T>((resolve, reject) => {
      // After the poll phase: every request whose body arrived in this turn joins the group.
      if (pending.length === 0) setImmediate(flush);
      pending.push({ write, resolve: resolve as (value: unknown) => void, reject });
    });
  return Object.assign(batched, { flush });
}
