{{/* Names and labels. */}}
{{- define "gnlc.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gnlc.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gnlc.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ include "gnlc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "email"). */}}
{{- define "gnlc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gnlc.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "gnlc.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if eq $tag "latest" -}}
{{- fail "image.tag: pin a version, not \"latest\"" -}}
{{- end -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{- define "gnlc.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "gnlc.fullname" .)) -}}
{{- end -}}

{{/* No default secrets and no guessed addresses: every required value fails with a message
     naming it. Included by every Deployment. */}}
{{- define "gnlc.validate" -}}
{{- $_ := required "kafka.bootstrapServers is required: the Kafka cluster's bootstrap address (Strimzi: <cluster>-kafka-bootstrap.<namespace>.svc:9092)" .Values.kafka.bootstrapServers -}}
{{- $_ := required "smtp.host is required: the SMTP relay the email service sends through" .Values.smtp.host -}}
{{- $_ := required "mail.publicUrl is required: the email service's address as recipients reach it (unsubscribe links)" .Values.mail.publicUrl -}}
{{- if not .Values.secrets.existingSecret -}}
{{- $_ := required "postgresql.url is required (or secrets.existingSecret): postgresql+asyncpg://user:password@host:5432/gnlc" .Values.postgresql.url -}}
{{- $token := required "secrets.operatorToken is required (or secrets.existingSecret): the operator API's bearer token; there is no default" .Values.secrets.operatorToken -}}
{{- if lt (len $token) 16 -}}
{{- fail "secrets.operatorToken is too short: 16 characters or more" -}}
{{- end -}}
{{- if and .Values.smtp.username (not .Values.secrets.smtpPassword) -}}
{{- fail "secrets.smtpPassword is required when smtp.username is set (or secrets.existingSecret)" -}}
{{- end -}}
{{- if not .Values.secrets.unsubscribeSecrets -}}
{{- fail "secrets.unsubscribeSecrets is required (or secrets.existingSecret): a list of HMAC secrets for unsubscribe links, current last" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* An environment variable from the chart's Secret: (list $ "GNLC_X" "key" optional). */}}
{{- define "gnlc.secretEnv" -}}
{{- $root := index . 0 -}}
- name: {{ index . 1 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "gnlc.secretName" $root }}
      key: {{ index . 2 }}
      {{- if index . 3 }}
      optional: true
      {{- end }}
{{- end -}}

{{/* name: value pairs of a map, sorted, quoted. */}}
{{- define "gnlc.envMap" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end -}}
{{- end -}}
