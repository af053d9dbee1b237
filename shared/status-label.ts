import { STATUS_CODES } from 'node:http';

/**
 * A status as a metric label: the registered codes as themselves, anything
 * else an app may send (e.g. 299, 599) as its class ("2xx" … "5xx"), so a
 * label's values stay bounded whatever the app answers.
 */
export function statusLabel(status: number): string {
  if (STATUS_CODES[status] !== undefined) return String(status);
  if (Number.isInteger(status) && status >= 100 && status <= 599) return `${Math.floor(status / 100)}xx`;
  return 'other';
}
