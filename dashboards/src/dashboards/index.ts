// The dashboards, in the order they are generated and listed.

import type { DashboardSpec } from '../panels.js';
import { clients } from './clients.js';
import { internals } from './internals.js';
import { latency } from './latency.js';
import { overview } from './overview.js';

export const dashboardSpecs: readonly DashboardSpec[] = [overview, latency, clients, internals];
