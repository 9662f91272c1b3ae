import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus } from '../../core/bus-memory.js';
import { busConformance } from './bus-conformance.js';
import { waitFor } from '../peers/util.js';

busConformance('memory', async () => new MemoryBus({ retryMinMs: 10, retryMaxMs: 50 }), { settleMs: 2_000, quietMs: 100 });
