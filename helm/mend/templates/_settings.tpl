{{/*
The non-secret settings of each Python component: one ConfigMap per component
(templates/configmap.yaml), holding only the variables that component's
settings read (interactions/settings.py, bot/settings.py, trainer/settings.py,
composed from mendkit/settings.py and mendmodels/settings.py). Secrets never
come from here: they are secretKeyRefs (mend.python.env in _python.tpl).

- every component (mendkit.settings.Shared): LOG_LEVEL, MEND_HOME, MEND_MIGRATE_ON_START
- interactions: its listener and pool
- bot: its listener and pool, the vector store, the embedder, the chat model,
  INTERACTIONS_ADDR, the persona and retrieval (`python -m bot ingest` reads these too)
- trainer: its listener, the chat model only (its teacher and judge; never the
  embedder or the vector store), INTERACTIONS_ADDR, BOT_ADDR, its loop settings
  and MEND_BRAND_NAME (the admin server and the CronJob's runs)

A provider's variables are set only for the components whose chosen provider it is.
*/}}

{{/* The settings of the chat model (mendmodels.settings.ChatModelSettings), as JSON. Call with $. */}}
{{- define "mend.settings.chatModel" -}}
{{- $c := .Values.config }}
{{- $data := dict "MEND_LLM" $c.llm }}
{{- if eq $c.llm "local" }}
{{- $_ := set $data "MEND_LLM_THREADS" (toString (int .Values.bot.llmThreads)) }}
{{- else if eq $c.llm "bedrock" }}
{{- $_ := set $data "AWS_REGION" $c.aws.region }}
{{- $_ := set $data "BEDROCK_CHAT_MODEL" $c.bedrock.chatModel }}
{{- else if eq $c.llm "openai" }}
{{- $_ := set $data "OPENAI_BASE_URL" $c.openai.baseUrl }}
{{- $_ := set $data "OPENAI_CHAT_MODEL" $c.openai.chatModel }}
{{- end }}
{{- toJson $data }}
{{- end }}

{{/* The settings of the embedder (mendmodels.settings.EmbedderSettings), as JSON. Call with $. */}}
{{- define "mend.settings.embedder" -}}
{{- $c := .Values.config }}
{{- $data := dict "MEND_EMBEDDINGS" $c.embeddings }}
{{- if eq $c.embeddings "bedrock" }}
{{- $_ := set $data "AWS_REGION" $c.aws.region }}
{{- $_ := set $data "BEDROCK_EMBEDDING_MODEL" $c.bedrock.embeddingModel }}
{{- $_ := set $data "BEDROCK_EMBEDDING_DIMENSION" (toString (int $c.bedrock.embeddingDimension)) }}
{{- else if eq $c.embeddings "openai" }}
{{- $_ := set $data "OPENAI_BASE_URL" $c.openai.baseUrl }}
{{- $_ := set $data "OPENAI_EMBEDDING_MODEL" $c.openai.embeddingModel }}
{{- $_ := set $data "OPENAI_EMBEDDING_DIMENSION" (ternary (toString (int $c.openai.embeddingDimension)) "" (gt (int $c.openai.embeddingDimension) 0)) }}
{{- end }}
{{- toJson $data }}
{{- end }}

{{/*
What the chart itself sets for one component, as JSON (config.extra not
included). Empty values are left out, so the service's own default applies.
Call with (dict "root" $ "component" "bot").
*/}}
{{- define "mend.settings.managed" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $c := $v.config }}
{{- /* The hook migrates the components it lists; any other migrates itself at start. */}}
{{- $hooked := and (eq (include "mend.migrationsHook" $root) "true") (has .component $v.migrations.components) }}
{{- $data := dict "LOG_LEVEL" $c.logLevel "MEND_HOME" "/var/lib/mend" "MEND_MIGRATE_ON_START" (ternary "false" "true" $hooked) }}
{{- if eq .component "interactions" }}
{{- $data = merge $data (dict
  "INTERACTIONS_HOST" "0.0.0.0"
  "INTERACTIONS_PORT" (toString (int $v.interactions.port))
  "INTERACTIONS_DB_POOL_SIZE" (toString (int $v.interactions.dbPoolSize))
  "INTERACTIONS_RETENTION_DAYS" (toString (int $v.interactions.retention.days))
  "INTERACTIONS_RETENTION_ACTION" $v.interactions.retention.action
) }}
{{- else if eq .component "bot" }}
{{- $data = merge $data (dict
  "BOT_HOST" "0.0.0.0"
  "BOT_PORT" (toString (int $v.bot.port))
  "BOT_DB_POOL_SIZE" (toString (int $v.bot.dbPoolSize))
  "INTERACTIONS_ADDR" (include "mend.serviceAddress" (dict "root" $root "component" "interactions"))
  "MEND_VECTOR_STORE" (include "mend.vectorStore" $root)
  "MEND_BRAND_NAME" $c.persona.brandName
  "MEND_BOT_NAME" $c.persona.botName
  "MEND_BRAND_TONE" $c.persona.tone
  "MEND_HANDOFF" $c.persona.handoff
  "MEND_SYSTEM_PROMPT" $c.persona.systemPrompt
  "MEND_GREETING" $c.persona.greeting
  "MEND_ANSWER_MODE" $c.retrieval.answerMode
  "MEND_RETRIEVAL_K" (toString (int $c.retrieval.k))
  "MEND_SIMILARITY_THRESHOLD" (toString $c.retrieval.similarityThreshold)
  "MEND_TRACE_CHAT_TEXT" (toString $c.traceChatText)
) (include "mend.settings.chatModel" $root | fromJson) (include "mend.settings.embedder" $root | fromJson) }}
{{- if eq (include "mend.vectorStore" $root) "pinecone" }}
{{- $data = merge $data (dict
  "PINECONE_INDEX_NAME" $c.pinecone.indexName
  "PINECONE_HOST" $c.pinecone.host
  "PINECONE_NAMESPACE" $c.pinecone.namespace
) }}
{{- end }}
{{- else if eq .component "trainer" }}
{{- $data = merge $data (dict
  "TRAINER_HOST" "0.0.0.0"
  "TRAINER_PORT" (toString (int $v.trainer.port))
  "INTERACTIONS_ADDR" (include "mend.serviceAddress" (dict "root" $root "component" "interactions"))
  "BOT_ADDR" (include "mend.serviceAddress" (dict "root" $root "component" "bot"))
  "FEEDBACK_THRESHOLD" (toString (int $c.trainer.feedbackThreshold))
  "MEND_PUBLISH_POLICY" $c.trainer.publishPolicy
  "MEND_COVERED_SIMILARITY" (toString $c.trainer.coveredSimilarity)
  "MEND_DUPLICATE_SIMILARITY" (toString $c.trainer.duplicateSimilarity)
  "MEND_LIKED_AS_PHRASINGS" (toString $c.trainer.likedAsPhrasings)
  "MEND_TEACHER_MODEL" $c.trainer.teacherModel
  "MEND_JUDGE_MODEL" $c.trainer.judgeModel
  "MEND_BRAND_NAME" $c.persona.brandName
) (include "mend.settings.chatModel" $root | fromJson) }}
{{- else }}
{{- fail (printf "mend.settings: %s is not a Python component" .component) }}
{{- end }}
{{- $set := dict }}
{{- range $name, $value := $data }}
{{- if ne (toString $value) "" }}
{{- $_ := set $set $name (toString $value) }}
{{- end }}
{{- end }}
{{- toJson $set }}
{{- end }}

{{/*
The data of one component's settings ConfigMap, as JSON: what the chart sets
for it, plus `config.extra`. config.extra goes to every component (the
Deployments, the CronJob and the ingest Job; not the migrations hook), but never
replaces or spreads a setting the chart manages: a name the chart sets for any
component is left to the chart. Call with (dict "root" $ "component" "bot").
*/}}
{{- define "mend.settings" -}}
{{- $root := .root }}
{{- $managed := dict }}
{{- range $component := list "interactions" "bot" "trainer" }}
{{- $managed = merge $managed (include "mend.settings.managed" (dict "root" $root "component" $component) | fromJson) }}
{{- end }}
{{- $data := include "mend.settings.managed" . | fromJson }}
{{- range $name, $value := $root.Values.config.extra }}
{{- if not (hasKey $managed $name) }}
{{- $_ := set $data $name (toString $value) }}
{{- end }}
{{- end }}
{{- toJson $data }}
{{- end }}

{{/* The name of a component's settings ConfigMap. Call with (dict "root" $ "component" "bot"). */}}
{{- define "mend.settingsName" -}}
{{- include "mend.componentName" . }}
{{- end }}
