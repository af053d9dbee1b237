/** The autoscaler's RabbitMQ queue depth with several management nodes: the next one is asked when one is down. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { managementUrlsFor, RabbitMqDepth } from '../../shared/transport/amqp/depth.js';
import { defaultWebhookSettings } from '../../webhook/config.js';
import { freePort } from '../helpers/net.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A management API stand-in answering every queue with these counts; records the paths it was asked. */
async function managementNode(ready: number, unacked: number, paths: string[] = []): Promise<string> {
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ messages_ready: ready, messages_unacknowledged: unacked }));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}`;
}

/** A stand-in answering every request with `handle`. */
async function standIn(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handle);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}`;
}

describe('RabbitMQ queue depth: answers that are not a depth', () => {
  it('asks the next node when one sends its headers and then stalls the body (bounded by the 5 s timeout)', async () => {
    const stalled = await standIn((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"messages_ready":');
    });
    const up = await managementNode(4, 1);
    const depth = new RabbitMqDepth('amqp://u:p@127.0.0.1:5672', `${stalled},${up}`);
    const started = Date.now();
    expect(await depth.read('shop.web')).toEqual({ backlog: 5 });
    expect(Date.now() - started).toBeLessThan(9_000);
  }, 20_000);

  it('asks the next node when one answers 200 with something other than JSON (a proxy or login page), naming it', async () => {
    const html = await standIn((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>sign in</html>'));
    const depth = new RabbitMqDepth('amqp://u:p@127.0.0.1:5672', html);
    const err = (await depth.read('shop.web').catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(new RegExp(`${html}.*not RabbitMQ's JSON`));
    const up = await managementNode(2, 0);
    expect(await new RabbitMqDepth('amqp://u:p@127.0.0.1:5672', `${html},${up}`).read('shop.web')).toEqual({ backlog: 2 });
  });

  it("reads 0 for a queue not declared yet only on RabbitMQ's own 404, not on a proxy's or for a vhost that does not exist", async () => {
    // RabbitMQ: the queue is missing in an existing vhost.
    const rabbit = await standIn((req, res) => {
      const status = req.url === '/api/vhosts/prod' ? 200 : 404;
      res
        .writeHead(status, { 'content-type': 'application/json' })
        .end(status === 200 ? '{"name":"prod"}' : '{"error":"Object Not Found","reason":"Not Found"}');
    });
    expect(await new RabbitMqDepth('amqp://u:p@127.0.0.1:5672/prod', rabbit).read('shop.web')).toEqual({ backlog: 0 });
    // A wrong URL: an ingress or another server answering 404 to everything would read as an empty queue forever.
    const proxy = await standIn((_req, res) => res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>404 Not Found</h1>'));
    const wrong = (await new RabbitMqDepth('amqp://u:p@127.0.0.1:5672/prod', proxy).read('shop.web').catch((e: unknown) => e)) as Error;
    expect(wrong.message).toMatch(/answered 404/);
    // RabbitMQ, but the vhost is not there.
    const novhost = await standIn((_req, res) =>
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Object Not Found","reason":"Not Found"}'),
    );
    const missing = (await new RabbitMqDepth('amqp://u:p@127.0.0.1:5672/prod', novhost).read('shop.web').catch((e: unknown) => e)) as Error;
    expect(missing.message).toMatch(/vhost "prod" does not exist/);
  });
});

describe('RabbitMQ queue depth from a cluster', () => {
  it('asks the next management node when the first does not answer, and keeps asking the one that did', async () => {
    const down = await freePort();
    const paths: string[] = [];
    const up = await managementNode(3, 2, paths);
    const depth = new RabbitMqDepth('amqp://u:p@127.0.0.1:5672/prod', `http://u:p@127.0.0.1:${down},${up}`);
    expect(await depth.read('shop.web')).toEqual({ backlog: 5 });
    expect(await depth.read('shop.web')).toEqual({ backlog: 5 });
    expect(paths).toEqual(['/api/queues/prod/shop.web', '/api/queues/prod/shop.web']);
  });

  it('names every node that failed when none answers', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const depth = new RabbitMqDepth('amqp://u:secret@127.0.0.1:5672', `http://u:secret@127.0.0.1:${a},http://127.0.0.1:${b}`);
    const err = (await depth.read('shop.web').catch((e: unknown) => e)) as Error;
    expect(err.message).toContain(`RabbitMQ's management API at http://127.0.0.1:${a} did not answer`);
    expect(err.message).toContain(`RabbitMQ's management API at http://127.0.0.1:${b} did not answer`);
    expect(err.message).not.toContain('secret');
  });

  it("defaults to each AMQP node's host on port 15672, with the AMQP URL's credentials unless a URL has its own", () => {
    const urls = managementUrlsFor('amqp://u:p@rabbit-0:5672,rabbit-1:5672,rabbit-2/prod');
    expect(urls.map((u) => u.base)).toEqual(['http://rabbit-0:15672', 'http://rabbit-1:15672', 'http://rabbit-2:15672']);
    expect(new Set(urls.map((u) => u.vhost))).toEqual(new Set(['prod']));
    const explicit = managementUrlsFor('amqp://u:p@rabbit:5672', 'http://admin:pw@m1:15672, https://m2:443');
    expect(explicit.map((u) => u.base)).toEqual(['http://m1:15672', 'https://m2']);
    expect(explicit[0]!.authorization).toBe(`Basic ${Buffer.from('admin:pw').toString('base64')}`);
    expect(explicit[1]!.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
  });

  it('takes several management URLs in --rabbitmq-management-url and names the flag and the bad one', () => {
    const urls = 'http://u:p@m1:15672,http://m2:15672';
    expect(defaultWebhookSettings(['--rabbitmq-management-url', urls]).rabbitmqManagementUrl).toBe(urls);
    expect(() => defaultWebhookSettings(['--rabbitmq-management-url', 'http://m1:15672,amqp://m2:5672'])).toThrow(
      /--rabbitmq-management-url.*expected http\(s\):\/\/ URLs, got "amqp:\/\/m2:5672"/s,
    );
  });
});
