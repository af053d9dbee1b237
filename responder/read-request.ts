import type { QueuedRequest } from '../shared/envelope.js';

/** A client's request as the responder read it, before it gets an id and a reply address. */
export type ReadRequest = Pick<QueuedRequest, 'method' | 'path' | 'headers' | 'body' | 'trailers'>;
