// The store contract against each real backend: memory, SQLite in a temp dir, and Redis.
import { openTestStore } from './helpers.js';
import { storeContract } from './store.contract.js';

storeContract('memory', () => openTestStore('memory'));
storeContract('sqlite', () => openTestStore('sqlite'));
storeContract('redis', () => openTestStore('redis'));
