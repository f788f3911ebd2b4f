{{/*
One component's NetworkPolicy (networkpolicy.yaml says who gets what). Call with
(dict "root" $ "component" NAME ["ingress" "public"|"release"] "egress" LIST
["models" PARTS]):
- ingress: "public" (the gateway's ports, from anywhere), "release" (from this
  release's pods and networkPolicy.adminFrom), "database" (the demo database's
  port, from the release's pods that use the database), or nothing (no ingress at all)
- egress: what the pods reach: "dns", "database", "collector" (only with
  telemetry.enabled) and the components "interactions", "bot", "trainer",
  "web", "gateway" (their pods, on their container ports)
- models: the model parts the pods use, "chat" (config.llm), "embedder"
  (config.embeddings), "vectorStore" (config.vectorStore): their endpoints, only
  for providers outside the cluster's pods (Bedrock, Pinecone, OpenAI-compatible)
*/}}
{{- define "mend.networkPolicy" -}}
{{- $root := .root }}
{{- $values := $root.Values.networkPolicy }}
{{- $ctx := dict "root" $root "component" .component }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "mend.metadata" (dict "root" $root "name" (include "mend.componentName" $ctx) "component" .component) | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- include "mend.componentSelectorLabels" $ctx | nindent 6 }}
  policyTypes:
    - Ingress
    {{- if $values.egress.enabled }}
    - Egress
    {{- end }}
  {{- if eq (default "" .ingress) "public" }}
  ingress:
    - ports:
        - port: {{ $root.Values.gateway.port }}
          protocol: TCP
        - port: {{ $root.Values.gateway.adminPort }}
          protocol: TCP
  {{- else if eq (default "" .ingress) "release" }}
  ingress:
    - from:
        - podSelector:
            matchLabels:
              {{- include "mend.selectorLabels" $root | nindent 14 }}
        {{- with $values.adminFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  {{- else if eq (default "" .ingress) "database" }}
  ingress:
    - from:
        - podSelector:
            matchLabels:
              {{- include "mend.selectorLabels" $root | nindent 14 }}
            matchExpressions:
              - key: app.kubernetes.io/component
                operator: In
                values: {{ include "mend.databaseClients" $root }}
      ports:
        - port: {{ $root.Values.demoDatabase.port }}
          protocol: TCP
  {{- else }}
  ingress: []
  {{- end }}
  {{- if $values.egress.enabled }}
  egress:
    {{- include "mend.egressRules" . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* A rule to `to` (empty: any destination) on `ports`. Call with (dict "to" LIST "ports" LIST). */}}
{{- define "mend.egressRule" -}}
{{- $rule := dict "ports" .ports }}
{{- with .to }}
{{- $_ := set $rule "to" . }}
{{- end }}
{{- toJson $rule }}
{{- end }}

{{/* The egress rules of one NetworkPolicy, as YAML. Call as mend.networkPolicy. */}}
{{- define "mend.egressRules" -}}
{{- $root := .root }}
{{- $egress := $root.Values.networkPolicy.egress }}
{{- $rules := list }}
{{- range $use := .egress }}
{{- if eq $use "dns" }}
{{- $rules = append $rules (include "mend.egressRule" (dict "to" $egress.dns.to "ports" $egress.dns.ports) | fromJson) }}
{{- else if and (eq $use "database") (not $root.Values.demoDatabase.enabled) }}
{{- $rules = append $rules (include "mend.egressRule" (dict "to" $egress.database.to "ports" $egress.database.ports) | fromJson) }}
{{- else if eq $use "collector" }}
{{- if $root.Values.telemetry.enabled }}
{{- $ports := list (dict "port" (int $root.Values.telemetry.collectorPort) "protocol" "TCP") }}
{{- $rules = append $rules (include "mend.egressRule" (dict "to" $egress.collector.to "ports" $ports) | fromJson) }}
{{- end }}
{{- else }}
{{- /* Mend pods on their container ports; "database" here is the demo database's pods
(networkPolicy.egress.database is for a database outside the release). */}}
{{- $component := $use }}
{{- $port := 0 }}
{{- if eq $use "database" }}
{{- $component = "postgresql" }}
{{- $port = $root.Values.demoDatabase.port }}
{{- else }}
{{- $port = (index $root.Values $use).port }}
{{- end }}
{{- $selector := include "mend.componentSelectorLabels" (dict "root" $root "component" $component) | fromYaml }}
{{- $to := list (dict "podSelector" (dict "matchLabels" $selector)) }}
{{- $rules = append $rules (dict "to" $to "ports" (list (dict "port" (int $port) "protocol" "TCP"))) }}
{{- end }}
{{- end }}
{{- with .models }}
{{- $config := $root.Values.config }}
{{- $providers := list }}
{{- if has "chat" . }}
{{- $providers = append $providers $config.llm }}
{{- end }}
{{- if has "embedder" . }}
{{- $providers = append $providers $config.embeddings }}
{{- end }}
{{- if and (has "vectorStore" .) (eq (include "mend.vectorStore" $root) "pinecone") }}
{{- $providers = append $providers "pinecone" }}
{{- end }}
{{- $ports := list }}
{{- if or (has "bedrock" $providers) (has "pinecone" $providers) }}
{{- $ports = concat $ports $egress.models.ports }}
{{- end }}
{{- if has "openai" $providers }}
{{- /* The OpenAI-compatible endpoint's own port: explicit in config.openai.baseUrl, or its scheme's. */}}
{{- $url := urlParse $config.openai.baseUrl }}
{{- $port := regexFind ":[0-9]+$" $url.host | trimPrefix ":" | default (ternary "443" "80" (eq $url.scheme "https")) | int }}
{{- $listed := false }}
{{- range $ports }}
{{- if and (eq (int .port) $port) (eq (default "TCP" .protocol) "TCP") }}
{{- $listed = true }}
{{- end }}
{{- end }}
{{- if not $listed }}
{{- $ports = append $ports (dict "port" $port "protocol" "TCP") }}
{{- end }}
{{- end }}
{{- if $ports }}
{{- $rules = append $rules (include "mend.egressRule" (dict "to" $egress.models.to "ports" $ports) | fromJson) }}
{{- end }}
{{- end }}
{{- $rules = concat $rules $egress.extra }}
{{- if $rules }}
{{- toYaml $rules }}
{{- else -}}
[]
{{- end }}
{{- end }}


{{/* The components whose pods connect to the database, as a JSON list. */}}
{{- define "mend.databaseClients" -}}
{{- $clients := list "interactions" "bot" "trainer" }}
{{- if .Values.trainer.cronJob.enabled }}
{{- $clients = append $clients "trainer-run" }}
{{- end }}
{{- if .Values.ingest.enabled }}
{{- $clients = append $clients "ingest" }}
{{- end }}
{{- if include "mend.migrationsHook" . }}
{{- $clients = append $clients "migrations" }}
{{- end }}
{{- toJson $clients }}
{{- end }}
