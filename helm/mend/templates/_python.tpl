{{/*
What every workload of the Python image shares: the container (image, command,
settings, secrets, security, scratch volumes) and the pod around it. The three
services, the trainer's CronJob and the hook Jobs are built from these.
*/}}

{{/* OTEL_RESOURCE_ATTRIBUTES: what every span says about where it came from. */}}
{{- define "mend.resourceAttributes" -}}
{{- $attributes := list "service.namespace=mend" (printf "service.version=%s" .Chart.AppVersion) "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" "k8s.pod.name=$(K8S_POD_NAME)" }}
{{- range $key, $value := .Values.telemetry.resourceAttributes }}
{{- $attributes = append $attributes (printf "%s=%s" $key $value) }}
{{- end }}
{{- join "," $attributes }}
{{- end }}

{{/* One secret as an environment variable. Call with (dict "root" $ "name" "DATABASE_URL" "key" "databaseUrl" "secret" NAME "optional" BOOL). */}}
{{- define "mend.python.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ index .root.Values.secrets.keys .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{/*
The environment of a Python container: where it runs (for telemetry), the
collector, and the secrets it needs, each through a secretKeyRef. Call with
(dict "root" $ "secrets" (list "database" "pageToken" "vectorStore" "chatModel" "embedder") ["databaseSecret" NAME]).
- database: DATABASE_URL
- pageToken: MEND_PAGE_TOKEN_SECRET (only where list RPCs sign their page tokens:
  the services, not the CronJob, the ingest Job or the hooks)
- vectorStore: PINECONE_API_KEY, with config.vectorStore=pinecone
- chatModel: the credentials of the chat model's provider (config.llm)
- embedder: the credentials of the embedder's provider (config.embeddings)
A provider's credentials are OPENAI_API_KEY for `openai`, the static AWS keys
for `bedrock`; both are optional references, because an endpoint may need no key
and AWS credentials may come from IRSA. `local` needs none.
Bearer tokens (mendkit/credentials.py): with "sends" IDENTITY the container gets
that identity's own token (MEND_<IDENTITY>_TOKEN: the bot's, the trainer's), to
call other services with; with "checks" (list IDENTITY...) the SHA-256 of each
other identity's token (MEND_<IDENTITY>_TOKEN_SHA256), by which its server tells
who calls (what each may call is the service's own rule) without holding a token
it could present: no pod holds the admin token or another service's.
*/}}
{{- define "mend.python.env" -}}
{{- $root := .root }}
{{- $secret := include "mend.secretName" $root -}}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ include "mend.resourceAttributes" $root | quote }}
{{- if not .settings }}
- name: LOG_LEVEL
  value: {{ $root.Values.config.logLevel | quote }}
{{- end }}
{{- if $root.Values.telemetry.enabled }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ printf "http://%s:%d" $root.Values.telemetry.collectorHost (int $root.Values.telemetry.collectorPort) | quote }}
{{- end }}
{{- if has "database" .secrets }}
{{ include "mend.python.secretEnv" (dict "root" $root "name" "DATABASE_URL" "key" "databaseUrl" "secret" (default $secret .databaseSecret)) }}
{{- end }}
{{- if has "pageToken" .secrets }}
{{ include "mend.python.secretEnv" (dict "root" $root "name" "MEND_PAGE_TOKEN_SECRET" "key" "pageTokenSecret" "secret" $secret) }}
{{- end }}
{{- if and (has "vectorStore" .secrets) (eq (include "mend.vectorStore" $root) "pinecone") }}
{{ include "mend.python.secretEnv" (dict "root" $root "name" "PINECONE_API_KEY" "key" "pineconeApiKey" "secret" $secret) }}
{{- end }}
{{- $providers := list }}
{{- if has "chatModel" .secrets }}
{{- $providers = append $providers $root.Values.config.llm }}
{{- end }}
{{- if has "embedder" .secrets }}
{{- $providers = append $providers $root.Values.config.embeddings }}
{{- end }}
{{- if has "openai" $providers }}
{{ include "mend.python.secretEnv" (dict "root" $root "name" "OPENAI_API_KEY" "key" "openaiApiKey" "secret" $secret "optional" true) }}
{{- end }}
{{- if has "bedrock" $providers }}
{{ include "mend.python.secretEnv" (dict "root" $root "name" "AWS_ACCESS_KEY_ID" "key" "awsAccessKeyId" "secret" $secret "optional" true) }}
{{ include "mend.python.secretEnv" (dict "root" $root "name" "AWS_SECRET_ACCESS_KEY" "key" "awsSecretAccessKey" "secret" $secret "optional" true) }}
{{- end }}
{{- range $identity := .checks | default list }}
{{ include "mend.python.secretEnv" (dict "root" $root "name" (printf "MEND_%s_TOKEN_SHA256" (upper $identity)) "key" (printf "%sTokenSha256" $identity) "secret" $secret) }}
{{- end }}
{{- with .sends }}
{{ include "mend.python.secretEnv" (dict "root" $root "name" (printf "MEND_%s_TOKEN" (upper .)) "key" (printf "%sToken" .) "secret" $secret) }}
{{- end }}
{{- end }}

{{/*
A Python container (its image: the tag of the component `args` starts with, see
mend.pythonImageRef). Call with (dict "root" $ "name" NAME "args" (list "bot" "serve")
"secrets" LIST "resources" MAP ["settings" COMPONENT] ["databaseSecret" NAME]
["sends" IDENTITY] ["checks" LIST]).
`settings` mounts that component's settings ConfigMap (_settings.tpl) as
environment variables; the pre-install hook Jobs run before it exists and pass
their few settings inline.
*/}}
{{- define "mend.python.container" -}}
{{- $root := .root -}}
- name: {{ .name }}
  image: {{ include "mend.pythonImageRef" (dict "root" $root "component" (first .args)) | quote }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command:
    - python
    - -m
    {{- range .args }}
    - {{ . | quote }}
    {{- end }}
  securityContext:
    {{- toYaml $root.Values.containerSecurityContext | nindent 4 }}
  {{- if .settings }}
  envFrom:
    - configMapRef:
        name: {{ include "mend.settingsName" (dict "root" $root "component" .settings) }}
  {{- end }}
  env:
    {{- include "mend.python.env" . | nindent 4 }}
  {{- with .resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    - name: home
      mountPath: /var/lib/mend
{{- end }}

{{/*
Scratch volumes of a Python pod: /tmp and MEND_HOME (/var/lib/mend), where only
the `local` chat model writes (its joined weights). The root filesystem is read-only.
*/}}
{{/* MEND_HOME's size for a pod that loads the chat model (bot, trainer): room for the `local` model's weights. */}}
{{- define "mend.modelHomeSizeLimit" -}}
{{- if eq .Values.config.llm "local" }}{{ .Values.bot.homeSizeLimit }}{{ else }}64Mi{{ end }}
{{- end }}

{{- define "mend.python.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
- name: home
  emptyDir:
    sizeLimit: {{ .homeSizeLimit | default "64Mi" }}
{{- end }}

{{/*
Pod-level settings: the service account (with `serviceAccount`; otherwise the
namespace's default account, as for the pre-install hook, which runs before the
chart's ServiceAccount exists), never an API token unless asked for, the pod
security context (`securityContext`, or the Python image's), pull secrets,
placement and priority. Call with (dict "root" $ "values" COMPONENT_VALUES
["serviceAccount" true] ["securityContext" MAP]).
*/}}
{{- define "mend.podSpec" -}}
{{- $root := .root -}}
{{- if .serviceAccount -}}
serviceAccountName: {{ include "mend.serviceAccountName" $root }}
automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
{{- else -}}
automountServiceAccountToken: false
{{- end }}
# Settings come from the chart only, never from other Services' link variables.
enableServiceLinks: false
securityContext:
  {{- toYaml (default $root.Values.podSecurityContext .securityContext) | nindent 2 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.terminationGracePeriodSeconds }}
terminationGracePeriodSeconds: {{ . }}
{{- end }}
{{- end }}

{{/* Native gRPC health probes (grpc.health.v1) of a service on `port`: startup and
readiness ask the overall status, which follows the database; liveness asks the
kit's `liveness` service, which does not, so a database outage takes pods out of
rotation without restarting them. */}}
{{- define "mend.python.probes" -}}
{{- $port := int .values.port }}
{{- range $i, $probe := list "startupProbe" "readinessProbe" "livenessProbe" }}
{{- if $i }}{{ "\n" }}{{ end }}
{{- $probe }}:
  grpc:
    port: {{ $port }}
    {{- if eq $probe "livenessProbe" }}
    service: liveness
    {{- end }}
  {{- toYaml (index $.values $probe) | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Annotations that roll a pod when its settings (its component's ConfigMap only)
or the chart-made Secret change. Call with (dict "root" $ "component" "bot").
*/}}
{{- define "mend.checksums" -}}
{{- $root := .root }}
checksum/config: {{ include "mend.settings" . | sha256sum }}
{{- if not $root.Values.secrets.existingSecret }}
checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
{{- end }}
{{- end }}

{{/*
One Python service: a Deployment running `python -m <component> serve` with
gRPC health probes. Call with (dict "root" $ "component" "bot" "secrets" LIST
"checks" LIST ["sends" IDENTITY] ["homeSizeLimit" SIZE]): its own identity, and
every other, whose token its server tells by the digest.
*/}}
{{- define "mend.python.deployment" -}}
{{- $root := .root }}
{{- $values := index $root.Values .component }}
{{- $ctx := dict "root" $root "component" .component }}
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "mend.metadata" (dict "root" $root "name" (include "mend.componentName" $ctx) "component" .component) | nindent 2 }}
spec:
  {{- if not (dig "autoscaling" "enabled" false $values) }}
  replicas: {{ $values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "mend.componentSelectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "mend.componentLabels" $ctx | nindent 8 }}
        {{- with $values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- include "mend.checksums" $ctx | nindent 8 }}
        {{- with $values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- include "mend.podSpec" (dict "root" $root "values" $values "serviceAccount" true) | nindent 6 }}
      containers:
        {{- include "mend.python.container" (dict "root" $root "name" .component "args" (list .component "serve") "secrets" .secrets "checks" .checks "sends" .sends "resources" $values.resources "settings" .component) | nindent 8 }}
          ports:
            - name: grpc
              containerPort: {{ $values.port }}
              protocol: TCP
          {{- include "mend.python.probes" (dict "values" $values) | nindent 10 }}
      volumes:
        {{- include "mend.python.volumes" (dict "homeSizeLimit" .homeSizeLimit) | nindent 8 }}
{{- end }}
