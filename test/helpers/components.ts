/**
 * The components' start functions, for tests that run them over a transport
 * they hold; they live with their components (kueuer local imports them there).
 */
export { startResponder, type RunningResponder } from '../../responder/start.js';
export { startSidecar, type RunningSidecar } from '../../sidecar/start.js';
export type { SidecarSettings } from '../../sidecar/config.js';
