// A store whose every backend failure is a 503 (`errors.storeUnavailable`) and feeds the outage watch.
import { errors } from '../errors.js';
import type { Store } from '../store/store.js';
import type { OutageWatch } from './outage.js';

/** Wraps each method of `store`: a failure becomes storeUnavailable, a success after one ends the outage. */
export function guardStore(store: Store, outage: OutageWatch): Store {
  const guarded = {} as Record<string, unknown>;
  for (const name of Object.keys(store) as (keyof Store)[]) {
    const method = store[name] as (...args: unknown[]) => Promise<unknown>;
    guarded[name] = async (...args: unknown[]) => {
      let result: unknown;
      const begunIn = outage.epoch;
      try {
        result = await method(...args);
      } catch (error) {
        outage.failed(error, true, begunIn);
        throw errors.storeUnavailable(error);
      }
      if (outage.down) outage.recovered();
      return result;
    };
  }
  return guarded as unknown as Store;
}
