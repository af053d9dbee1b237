import type { Registry } from 'prom-client';

/**
 * Memoizes a set of metric objects per registry: prom-client refuses a second
 * metric of the same name in one registry, and several queues (the responder's
 * routes) share one, told apart by the queue label.
 */
export function perRegistry<T>(create: (registry: Registry) => T): (registry: Registry) => T {
  const cache = new WeakMap<Registry, T>();
  return (registry) => {
    let value = cache.get(registry);
    if (!value) {
      value = create(registry);
      cache.set(registry, value);
    }
    return value;
  };
}
