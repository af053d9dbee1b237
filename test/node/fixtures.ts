/**
 * What the real-node test files share: go-httpbin (a program nobody here
 * wrote) as an opted-in Deployment with its Service, and a poll-until helper
 * that says what it waited for and what the cluster looked like.
 */

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 250 ms until it returns a truthy value; on timeout, throws naming `what` and `describeState()`. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => T | undefined | false | null, describeState?: () => string): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describeState ? `\n${describeState()}` : ''}`);
    await sleep(250);
  }
}

/** go-httpbin as Deployment `name` (pods labelled app=<name> and kueuer.io/inject=true) and its opted-in Service on port 80. */
export const httpbinDeployment = (
  namespace: string,
  name: string,
  image: string,
  opts: { replicas: number; annotations?: Record<string, string>; podAnnotations?: Record<string, string> },
) => `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: ${namespace}
  annotations: ${JSON.stringify(opts.annotations ?? {})}
spec:
  replicas: ${opts.replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata:
      labels: {app: ${name}, kueuer.io/inject: "true"}
      annotations: ${JSON.stringify(opts.podAnnotations ?? {})}
    spec:
      terminationGracePeriodSeconds: 30
      containers:
        - name: app
          image: ${image}
          env: [{name: USE_REAL_HOSTNAME, value: "true"}]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /status/200, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: ${namespace}
  labels: {kueuer.io/inject: "true"}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 80, targetPort: http}]
`;
