/**
 * The components' start functions, for code that runs them over a transport it
 * holds (the integration tests, `kueuer local`); they live with their components.
 */
export { startResponder, type RunningResponder } from '../responder/start.js';
export { startSidecar, type RunningSidecar } from '../sidecar/start.js';
export type { SidecarSettings } from '../sidecar/config.js';
