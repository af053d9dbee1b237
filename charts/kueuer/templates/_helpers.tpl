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
{{- end -}}

{{/* caBundle (source=secret) or cert-manager's inject-ca-from annotation. */}}
{{- define "kueuer.caAnnotations" -}}
{{- if eq .Values.certificates.source "cert-manager" }}
  annotations:
    cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/kueuer-webhook
{{- end }}
{{- end -}}
