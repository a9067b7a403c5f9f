{{/* The services, in the order their objects are rendered. */}}
{{- define "vigil.services" -}}gateway monitor analysis repair notify deploy{{- end -}}

{{/* The NATS users: the services', the admin (provisioning) and direct publishers'. */}}
{{- define "vigil.natsUsers" -}}admin publisher gateway monitor analysis repair notify deploy{{- end -}}

{{- define "vigil.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains "vigil" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-vigil" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vigil.labels" -}}
app.kubernetes.io/name: vigil
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selects every pod of the release. */}}
{{- define "vigil.releaseSelector" -}}
app.kubernetes.io/name: vigil
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selects one component's pods; call with (dict "root" $ "component" NAME). */}}
{{- define "vigil.selector" -}}
{{ include "vigil.releaseSelector" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "vigil.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secrets' names: the user's own, or the ones `vigil secrets ensure` makes. */}}
{{- define "vigil.keysSecret" -}}{{ default (printf "%s-keys" (include "vigil.fullname" .)) .Values.keys.existingSecret }}{{- end -}}
{{- define "vigil.natsSecret" -}}{{ default (printf "%s-nats" (include "vigil.fullname" .)) .Values.nats.existingSecret }}{{- end -}}
{{- define "vigil.postgresSecret" -}}{{ default (printf "%s-postgres" (include "vigil.fullname" .)) .Values.postgres.existingSecret }}{{- end -}}

{{/* The role `vigil db bootstrap` logs in as, and where its password is. */}}
{{- define "vigil.postgresAdminUser" -}}{{ if .Values.eval.enabled }}postgres{{ else }}{{ .Values.postgres.admin.user }}{{ end }}{{- end -}}
{{- define "vigil.postgresAdminSecret" -}}
{{- if .Values.eval.enabled -}}{{ include "vigil.postgresSecret" . }}
{{- else -}}{{ default (printf "%s-postgres-admin" (include "vigil.fullname" .)) .Values.postgres.admin.existingSecret }}
{{- end -}}
{{- end -}}
{{- define "vigil.postgresAdminKey" -}}{{ if .Values.eval.enabled }}admin{{ else }}{{ .Values.postgres.admin.secretKey }}{{ end }}{{- end -}}

{{- define "vigil.natsURL" -}}
{{- if .Values.eval.enabled -}}nats://{{ include "vigil.fullname" . }}-nats:4222{{- else -}}{{ .Values.nats.url }}{{- end -}}
{{- end -}}
{{- define "vigil.postgresHost" -}}
{{- if .Values.eval.enabled -}}{{ include "vigil.fullname" . }}-postgres{{- else -}}{{ .Values.postgres.host }}{{- end -}}
{{- end -}}
{{- define "vigil.postgresPort" -}}{{ if .Values.eval.enabled }}5432{{ else }}{{ .Values.postgres.port }}{{ end }}{{- end -}}
{{- define "vigil.sslmode" -}}{{ if .Values.eval.enabled }}disable{{ else }}{{ .Values.postgres.sslmode }}{{ end }}{{- end -}}

{{/*
VIGIL_DATABASE_URL for a role; the password comes from PGPASSWORD (a
secretKeyRef), which pgx reads, so it is never part of the pod spec.
Call with (dict "root" $ "user" ROLE).
*/}}
{{- define "vigil.databaseURL" -}}
postgres://{{ .user }}@{{ include "vigil.postgresHost" .root }}:{{ include "vigil.postgresPort" .root }}/{{ .root.Values.postgres.database }}?sslmode={{ include "vigil.sslmode" .root }}
{{- end -}}

{{/* Helm hooks for the provisioning Jobs: before the services with an external
NATS and Postgres, after the release's own with eval (they do not exist yet
before it). */}}
{{- define "vigil.provisionHook" -}}
{{- if .Values.eval.enabled -}}post-install,post-upgrade{{- else -}}pre-install,pre-upgrade{{- end -}}
{{- end -}}

{{/* The container securityContext every Vigil container runs with. */}}
{{- define "vigil.containerSecurityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The pod securityContext: distroless's nonroot user. */}}
{{- define "vigil.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Egress rules to NATS and Postgres: the release's own with eval, else
where networkPolicy.natsTo / postgresTo say (anywhere when empty). */}}
{{- define "vigil.natsEgress" -}}
- ports:
    - {port: 4222, protocol: TCP}
  {{- if .Values.eval.enabled }}
  to:
    - podSelector:
        matchLabels:
          {{- include "vigil.selector" (dict "root" . "component" "nats") | nindent 10 }}
  {{- else if .Values.networkPolicy.natsTo }}
  to:
    {{- toYaml .Values.networkPolicy.natsTo | nindent 4 }}
  {{- end }}
{{- end -}}
{{- define "vigil.postgresEgress" -}}
- ports:
    - {port: {{ include "vigil.postgresPort" . }}, protocol: TCP}
  {{- if .Values.eval.enabled }}
  to:
    - podSelector:
        matchLabels:
          {{- include "vigil.selector" (dict "root" . "component" "postgres") | nindent 10 }}
  {{- else if .Values.networkPolicy.postgresTo }}
  to:
    {{- toYaml .Values.networkPolicy.postgresTo | nindent 4 }}
  {{- end }}
{{- end -}}
