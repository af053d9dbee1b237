/**
 * The RabbitMQ Cluster Operator's `<cluster>-default-user` Secret, with the
 * keys and value formats the operator writes (internal/resource/default_user_secret.go
 * of rabbitmq/cluster-operator), for a real node's URL.
 */
export function rabbitmqDefaultUserFor(amqpUrl: string): Record<string, string> {
  const u = new URL(amqpUrl);
  return {
    username: u.username,
    password: u.password,
    'default_user.conf': `default_user = ${u.username}\ndefault_pass = ${u.password}`,
    provider: 'rabbitmq',
    type: 'rabbitmq',
    host: u.hostname,
    port: u.port,
  };
}
