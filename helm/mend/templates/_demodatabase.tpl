{{/*
The optional in-cluster demo PostgreSQL (demoDatabase.enabled, demo-database.yaml).
Its password is the Secret's `secrets.keys.demoDatabasePassword` (made and kept by
secret.yaml, or in `secrets.existingSecret`); the chart-made Secret's DATABASE_URL
points at it.
*/}}

{{/* Its Service's in-cluster name. */}}
{{- define "mend.demoDatabase.host" -}}
{{- printf "%s.%s.svc.%s" (include "mend.componentName" (dict "root" . "component" "postgresql")) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{/* DATABASE_URL of the demo database. Call with (dict "root" $ "password" PASSWORD). */}}
{{- define "mend.demoDatabase.url" -}}
{{- $db := .root.Values.demoDatabase }}
{{- printf "postgresql://%s:%s@%s:%d/%s" $db.username (urlquery .password) (include "mend.demoDatabase.host" .root) (int $db.port) $db.database }}
{{- end }}
