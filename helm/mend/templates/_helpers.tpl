{{/*
Names, labels and the small pieces every template shares.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "mend.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, the prefix of every resource: `<release>-mend`, or
just the release name when it already holds the chart name, or fullnameOverride.
Kept to 40 characters so that the longest names stay valid: a Service name is
a DNS label (63: `<fullname>-interactions-headless`) and a CronJob name at most
52 characters (`<fullname>-trainer-run`).
*/}}
{{- define "mend.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* `<fullname>-<component>`. Call with (dict "root" $ "component" "bot"). */}}
{{- define "mend.componentName" -}}
{{- printf "%s-%s" (include "mend.fullname" .root) .component }}
{{- end }}

{{/* chart-version, as the helm.sh/chart label wants it. */}}
{{- define "mend.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: name and instance (plus the component, see below). */}}
{{- define "mend.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mend.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "mend.labels" -}}
helm.sh/chart: {{ include "mend.chart" . }}
{{ include "mend.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: mend
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of one component. The component is part of the selector because
the chart runs several workloads in one release, and their selectors must not
overlap. Call with (dict "root" $ "component" "bot").
*/}}
{{- define "mend.componentSelectorLabels" -}}
{{ include "mend.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of one component's resources. Call with (dict "root" $ "component" "bot"). */}}
{{- define "mend.componentLabels" -}}
{{ include "mend.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The metadata of a resource: name, namespace, labels (of a component, when given)
and annotations (commonAnnotations plus the resource's own). Call with
(dict "root" $ "name" NAME ["component" "bot"] ["annotations" MAP]).
*/}}
{{- define "mend.metadata" -}}
name: {{ .name }}
namespace: {{ .root.Release.Namespace }}
labels:
{{- if .component }}
  {{- include "mend.componentLabels" . | nindent 2 }}
{{- else }}
  {{- include "mend.labels" .root | nindent 2 }}
{{- end }}
{{- $annotations := merge (deepCopy (default (dict) .annotations)) .root.Values.commonAnnotations }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The ServiceAccount the services and the CronJob run as. */}}
{{- define "mend.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mend.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference from {repository, tag, digest}; the tag defaults to appVersion.
Call with (dict "root" $ "image" .Values.image). */}}
{{- define "mend.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/* The image of one Python component's containers: `image`, with the component's own
`<component>.image.tag` when set (so each service rolls out by its own tag; a tag of
its own replaces `image.digest` too). Call with (dict "root" $ "component" "bot"). */}}
{{- define "mend.pythonImageRef" -}}
{{- $image := deepCopy .root.Values.image }}
{{- $own := dig "image" "tag" "" (index .root.Values .component) }}
{{- if $own }}
{{- $_ := set $image "tag" $own }}
{{- $_ := set $image "digest" "" }}
{{- end }}
{{- include "mend.imageRef" (dict "root" .root "image" $image) }}
{{- end }}

{{/* Whether the migrations run as the pre-install/pre-upgrade hook: "true" or "". Not
with the demo database, which a pre-install hook would run before it exists: then
every service migrates itself at start (migrations are idempotent and serialised). */}}
{{- define "mend.migrationsHook" -}}
{{- if and .Values.migrations.enabled (not .Values.demoDatabase.enabled) }}true{{ end }}
{{- end }}

{{/*
In-cluster DNS names the gateway's Envoy configuration (files/envoy.yaml) routes
to. They are the components' headless Services, so that Envoy's STRICT_DNS
clusters see every ready pod and balance requests (not connections) across them.
*/}}
{{- define "mend.headlessHost" -}}
{{- printf "%s-headless.%s.svc.%s" (include "mend.componentName" .) .root.Release.Namespace .root.Values.clusterDomain }}
{{- end }}

{{- define "mend.interactionsHost" -}}
{{- include "mend.headlessHost" (dict "root" . "component" "interactions") }}
{{- end }}

{{- define "mend.botHost" -}}
{{- include "mend.headlessHost" (dict "root" . "component" "bot") }}
{{- end }}

{{- define "mend.webHost" -}}
{{- include "mend.headlessHost" (dict "root" . "component" "web") }}
{{- end }}

{{/* The origins allowed to call the gateway cross-origin (gateway.cors.allowedOrigins),
as the JSON list of Envoy string matchers files/envoy.yaml expects: exact, ignoring
case (browsers send origins lowercase). Empty: none, the page is same-origin. */}}
{{- define "mend.corsOriginMatchers" -}}
{{- $matchers := list }}
{{- range .Values.gateway.cors.allowedOrigins }}
{{- $matchers = append $matchers (dict "exact" . "ignore_case" true) }}
{{- end }}
{{- toJson $matchers }}
{{- end }}

{{/* `dns:///host:port` of a Python service's headless Service, for the services'
own clients: gRPC resolves every ready pod and its round_robin policy (set in
mendkit/clients.py) spreads calls across them, where a ClusterIP would pin each
long-lived HTTP/2 connection to one pod. */}}
{{- define "mend.serviceAddress" -}}
{{- printf "dns:///%s:%d" (include "mend.headlessHost" (dict "root" .root "component" .component)) (int (index .root.Values .component).port) }}
{{- end }}

{{/* The Secret holding DATABASE_URL and the other secrets. */}}
{{- define "mend.secretName" -}}
{{- default (include "mend.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* Whether a setting selects a cloud provider: "true" or "". */}}
{{- define "mend.usesBedrock" -}}
{{- if or (eq .Values.config.llm "bedrock") (eq .Values.config.embeddings "bedrock") }}true{{ end }}
{{- end }}

{{- define "mend.usesOpenAI" -}}
{{- if or (eq .Values.config.llm "openai") (eq .Values.config.embeddings "openai") }}true{{ end }}
{{- end }}

{{/*
Checks the chart cannot leave to the schema (they depend on one another), with
a message that names the value to set. Rendered once, by the ConfigMap.
*/}}
{{- define "mend.validate" -}}
{{- $s := .Values.secrets }}
{{- if not $s.existingSecret }}
{{- if and .Values.demoDatabase.enabled $s.databaseUrl }}
{{- fail "secrets.databaseUrl and demoDatabase.enabled exclude each other: the demo database writes DATABASE_URL itself" }}
{{- end }}
{{- if not (or $s.databaseUrl .Values.demoDatabase.enabled) }}
{{- fail "secrets.databaseUrl (or secrets.existingSecret) is required: Mend runs on a managed PostgreSQL in Kubernetes (for a demo, demoDatabase.enabled=true runs one in the cluster)" }}
{{- end }}
{{- if and (eq (include "mend.vectorStore" .) "pinecone") (not $s.pineconeApiKey) }}
{{- fail "secrets.pineconeApiKey (or secrets.existingSecret) is required with config.vectorStore=pinecone (config.vectorStore=pgvector keeps the vectors in PostgreSQL, the demo database too)" }}
{{- end }}
{{- end }}
{{- if and (include "mend.usesBedrock" .) (not .Values.config.aws.region) }}
{{- fail "config.aws.region is required with Bedrock (config.llm or config.embeddings = bedrock)" }}
{{- end }}
{{- if and (include "mend.usesOpenAI" .) (not .Values.config.openai.baseUrl) }}
{{- fail "config.openai.baseUrl is required with config.llm or config.embeddings = openai" }}
{{- end }}
{{- if and (eq .Values.config.llm "openai") (not .Values.config.openai.chatModel) }}
{{- fail "config.openai.chatModel is required with config.llm=openai" }}
{{- end }}
{{- if and (eq .Values.config.embeddings "openai") (or (not .Values.config.openai.embeddingModel) (not .Values.config.openai.embeddingDimension)) }}
{{- fail "config.openai.embeddingModel and config.openai.embeddingDimension are required with config.embeddings=openai" }}
{{- end }}
{{- if eq (int .Values.gateway.port) (int .Values.gateway.adminPort) }}
{{- fail "gateway.port and gateway.adminPort must differ" }}
{{- end }}
{{- if and (eq .Values.config.llm "local") (eq .Values.config.trainer.publishPolicy "auto") }}
{{- fail "config.trainer.publishPolicy=auto needs a cloud teacher (config.llm=bedrock or openai); the embedded model's fixes always wait for review" }}
{{- end }}
{{- end }}

{{/*
The vector store: config.vectorStore, or when that is empty (the default)
pgvector in the demo database with demoDatabase.enabled, else Pinecone. So a
demo install needs nothing outside the cluster.
*/}}
{{- define "mend.vectorStore" -}}
{{- .Values.config.vectorStore | default (ternary "pgvector" "pinecone" .Values.demoDatabase.enabled) -}}
{{- end }}
