{{/* Helm's own labels, added to the labels of every object (never to selectors). */}}
{{- define "kueuer.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* The image of every component and of the injected sidecar. */}}
{{- define "kueuer.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "kueuer.validate" -}}
{{- if not (has .Values.broker.type (list "" "rabbitmq" "kafka")) -}}
{{- fail (printf "broker.type: expected rabbitmq, kafka or \"\", got %q" .Values.broker.type) -}}
{{- end -}}
{{- if not (has .Values.autoscaling.mode (list "external" "prometheus-adapter" "keda" "off")) -}}
{{- fail (printf "autoscaling.mode: expected external, prometheus-adapter, keda or off, got %q" .Values.autoscaling.mode) -}}
{{- end -}}
{{- if not (has .Values.certificates.source (list "self" "secret" "cert-manager")) -}}
{{- fail (printf "certificates.source: expected self, secret or cert-manager, got %q" .Values.certificates.source) -}}
{{- end -}}
{{- if and (eq .Values.certificates.source "secret") (not .Values.certificates.caBundle) -}}
{{- fail "certificates.source=secret needs certificates.caBundle: the base64 of the PEM CA that signed the Secret kueuer-webhook-tls (base64 -w0 ca.crt of scripts/gen-certs.sh); without it the apiserver cannot verify the webhook and every opted-in pod and Service is refused" -}}
{{- end -}}
{{- if and .Values.broker.type (not .Values.broker.url) -}}
{{- fail (printf "broker.type=%s needs broker.url (KUEUER_BACKEND, e.g. %s); or set broker.type=\"\" and create the Secret kueuer-backend yourself" .Values.broker.type (ternary "amqp://user:pass@rabbitmq.queues.svc:5672" "kafka://my-cluster-kafka-bootstrap.kafka.svc:9093?tls=true&sasl=scram-sha-512" (eq .Values.broker.type "rabbitmq"))) -}}
{{- end -}}
{{- $timeout := include "kueuer.ms" (list "config.timeout" .Values.config.timeout) | int64 -}}
{{- $drain := include "kueuer.ms" (list "responder.drainTimeout" .Values.responder.drainTimeout) | int64 -}}
{{- if gt $timeout $drain -}}
{{- fail (printf "config.timeout (%s) is longer than responder.drainTimeout (%s): a client still waiting would be cut off when its responder pod stops; raise responder.drainTimeout and responder.terminationGracePeriodSeconds with it" .Values.config.timeout .Values.responder.drainTimeout) -}}
{{- end -}}
{{- $grace := .Values.responder.terminationGracePeriodSeconds | int64 -}}
{{- $needed := add (div (add $drain 999) 1000) 15 -}}
{{- if lt $grace $needed -}}
{{- fail (printf "responder.terminationGracePeriodSeconds (%d) must be at least responder.drainTimeout (%s) + 15 s = %d: 5 s of accepting while kube-proxy catches up, the drain, and time to close" $grace .Values.responder.drainTimeout $needed) -}}
{{- end -}}
{{- end -}}

{{/* A duration as Kueuer reads it (500ms, 60s, 2m, 1h) in milliseconds; args: (list "value.name" value). */}}
{{- define "kueuer.ms" -}}
{{- $name := index . 0 -}}
{{- $raw := index . 1 | toString | trim -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$" $raw) -}}
{{- fail (printf "%s: expected a duration such as 500ms, 60s or 5m, got %q" $name $raw) -}}
{{- end -}}
{{- $unit := regexFind "(ms|s|m|h)$" $raw -}}
{{- $factor := get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit -}}
{{- mulf (trimSuffix $unit $raw | float64) $factor | floor | int64 -}}
{{- end -}}

{{/* Scheduling and pull settings of a component's pod; arg: (list $ .Values.webhook). */}}
{{- define "kueuer.podPlacement" -}}
{{- $root := index . 0 -}}
{{- $c := index . 1 -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* caBundle (source=secret) or cert-manager's inject-ca-from annotation. */}}
{{- define "kueuer.caAnnotations" -}}
{{- if eq .Values.certificates.source "cert-manager" }}
  annotations:
    cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/kueuer-webhook
{{- end }}
{{- end -}}

{{/* Who may reach the admin/metrics ports: namespaces labelled kueuer.io/admin-access=allowed and those in networkPolicy.adminNamespaces. */}}
{{- define "kueuer.adminPeers" -}}
- namespaceSelector:
    matchLabels: {kueuer.io/admin-access: allowed}
{{- with .Values.networkPolicy.adminNamespaces }}
- namespaceSelector:
    matchExpressions:
      - {key: kubernetes.io/metadata.name, operator: In, values: {{ toJson . }}}
{{- end }}
{{- end -}}
