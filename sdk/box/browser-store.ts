// What the /box page keeps in the browser (IndexedDB): the user's key pair, the last descriptor of each worker, and
// the tickets of requests waiting for a stopped worker.

const DATABASE = 'deadrop-box';
const STORE = 'kv';

let opened: Promise<IDBDatabase> | undefined;

function database(): Promise<IDBDatabase> {
  opened ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB cannot be opened here.'));
  });
  return opened;
}

/** Runs one request on the store and answers its result once the transaction is complete. */
async function run<T>(mode: IDBTransactionMode, make: (store: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await database();
  return new Promise<T>((resolve, reject) => {
    const transaction = db.transaction(STORE, mode);
    const request = make(transaction.objectStore(STORE));
    transaction.oncomplete = () => resolve(request.result as T);
    transaction.onerror = () => reject(transaction.error ?? request.error);
    transaction.onabort = () => reject(transaction.error ?? new Error('The browser refused to store it.'));
  });
}

/** The value kept under `key`, or undefined. */
export const loadValue = <T>(key: string): Promise<T | undefined> =>
  run<T | undefined>('readonly', (store) => store.get(key));

/** Keeps `value` under `key` (structured clone: byte arrays stay byte arrays). */
export const storeValue = (key: string, value: unknown): Promise<void> =>
  run<void>('readwrite', (store) => store.put(value, key));

/** Forgets what is under `key`. */
export const forgetValue = (key: string): Promise<void> =>
  run<void>('readwrite', (store) => store.delete(key));
