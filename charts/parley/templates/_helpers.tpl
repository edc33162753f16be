{{/*
Expand the name of the chart.
*/}}
{{- define "parley.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A default fully qualified app name, truncated at 63 characters because some
Kubernetes name fields are limited to that (by the DNS naming spec). If the
release name contains the chart name it is used as the full name.
*/}}
{{- define "parley.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version as used by the chart label.
*/}}
{{- define "parley.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "parley.labels" -}}
helm.sh/chart: {{ include "parley.chart" . }}
{{ include "parley.selectorLabels" . }}
app.kubernetes.io/version: {{ include "parley.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: parley
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels: stable for the life of a release (never add the version).
*/}}
{{- define "parley.selectorLabels" -}}
app.kubernetes.io/name: {{ include "parley.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the pod runs as.
*/}}
{{- define "parley.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "parley.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "parley.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
The container image: repository:tag, or repository@digest when a digest is given.
*/}}
{{- define "parley.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "parley.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Where the config file and the database live inside the container.
*/}}
{{- define "parley.configDir" -}}/etc/parley{{- end }}
{{- define "parley.dataDir" -}}/var/lib/parley{{- end }}
{{- /* The user-defined actions' folder: a mount of its own, beside the
config folder (a mount inside another read-only ConfigMap mount would
need a mount point in it). */}}
{{- define "parley.actionsDir" -}}/etc/parley-actions{{- end }}

{{/*
parley.actionsConfigMap is the ConfigMap holding the user-defined action
files: actions.existingConfigMap, or the chart's own when actions.files is
set; empty when there are none.
*/}}
{{- define "parley.actionsConfigMap" -}}
{{- if .Values.actions.existingConfigMap }}
{{- .Values.actions.existingConfigMap }}
{{- else if .Values.actions.files }}
{{- printf "%s-actions" (include "parley.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
parley.scopedName names what lives outside the release namespace
(ClusterRoles, ClusterRoleBindings, and Roles and RoleBindings in other
namespaces): the full name and the release namespace, so the same release
name installed in two namespaces does not collide.
*/}}
{{- define "parley.scopedName" -}}
{{- printf "%s-%s" (include "parley.fullname" .) .Release.Namespace | trunc 253 | trimSuffix "-" }}
{{- end }}

{{/*
parley.namespaces is the namespaces Parley reads when a request names
none (config kubernetes.namespaces): kubernetes.namespaces, else
rbac.readNamespaces, as a YAML list ("[]" for every namespace).
*/}}
{{- define "parley.namespaces" -}}
{{- $ns := .Values.kubernetes.namespaces | default .Values.rbac.readNamespaces | default list }}
{{- toYaml ($ns | uniq) }}
{{- end }}

{{/*
The lease used for leader election.
*/}}
{{- define "parley.leaseName" -}}
{{- default (include "parley.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
The secrets the chart knows, in a fixed order: the values key, the
environment variable the container gets, and the config path that
references it. Secret VALUES never pass through the chart: only the name
and key of an existing Secret, turned into a secretKeyRef.
*/}}
{{- define "parley.secretEnv" -}}
slackBotToken: SLACK_BOT_TOKEN
slackAppToken: SLACK_APP_TOKEN
slackSigningSecret: SLACK_SIGNING_SECRET
discordToken: DISCORD_TOKEN
prometheusToken: PROMETHEUS_BEARER_TOKEN
lokiToken: LOKI_BEARER_TOKEN
llmApiKey: LLM_API_KEY
alertmanagerToken: ALERTMANAGER_WEBHOOK_TOKEN
alertmanagerPassword: ALERTMANAGER_WEBHOOK_PASSWORD
postgresDsn: PARLEY_POSTGRES_DSN
{{- end }}

{{/*
parley.secretRefs returns a dict values-key -> {name, key} of the secrets
that are configured (name and key both set), including the PostgreSQL DSN.
*/}}
{{- define "parley.secretRefs" -}}
{{- $out := dict }}
{{- range $k, $ref := .Values.secrets }}
{{- if and $ref $ref.name $ref.key }}
{{- $_ := set $out $k (dict "name" $ref.name "key" $ref.key) }}
{{- else if and $ref (or $ref.name $ref.key) }}
{{- fail (printf "secrets.%s: give both name and key of an existing Secret (or neither)" $k) }}
{{- end }}
{{- end }}
{{- if eq .Values.store.driver "postgres" }}
{{- $ref := .Values.store.postgres.dsnSecret }}
{{- if not $ref.name }}
{{- fail "store.driver=postgres needs store.postgres.dsnSecret.name: the name of an existing Secret holding the PostgreSQL DSN" }}
{{- end }}
{{- if not $ref.key }}
{{- fail "store.driver=postgres needs store.postgres.dsnSecret.key: the key of the DSN in Secret store.postgres.dsnSecret.name" }}
{{- end }}
{{- $_ := set $out "postgresDsn" (dict "name" $ref.name "key" $ref.key) }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
parley.validate stops rendering on combinations that would not run.
*/}}
{{- define "parley.validate" -}}
{{- $v := .Values }}
{{- if gt (int $v.replicas) 1 }}
{{- if ne $v.store.driver "postgres" }}
{{- fail "replicas > 1 needs store.driver=postgres: the embedded SQLite database cannot be shared between pods" }}
{{- end }}
{{- if not $v.leaderElection.enabled }}
{{- fail "replicas > 1 needs leaderElection.enabled=true: only one pod may hold the chat connections and run the sweeper" }}
{{- end }}
{{- end }}
{{- $cfg := $v.config | default dict }}
{{- range $k := list "listen" "database" "policy" "store" "actions_dir" }}
{{- if hasKey $cfg $k }}
{{- fail (printf "config.%s is set by the chart; remove it (see the chart README)" $k) }}
{{- end }}
{{- end }}
{{- $k8s := $cfg.kubernetes | default dict }}
{{- range $k := list "sandbox" "manifests" "kubeconfig" "context" "in_cluster" "namespaces" "impersonate" }}
{{- if hasKey $k8s $k }}
{{- fail (printf "config.kubernetes.%s is set by the chart; use the top-level kubernetes values instead" $k) }}
{{- end }}
{{- end }}
{{- $refs := include "parley.secretRefs" . | fromYaml }}
{{- if hasKey $cfg "slack" }}
{{- $slack := $cfg.slack | default dict }}
{{- range $k := list "bot_token" "app_token" "signing_secret" }}
{{- if hasKey $slack $k }}
{{- fail (printf "config.slack.%s is set by the chart from secrets.*; remove it" $k) }}
{{- end }}
{{- end }}
{{- if not (hasKey $refs "slackBotToken") }}
{{- fail "config.slack needs secrets.slackBotToken (an existing Secret holding the xoxb- token)" }}
{{- end }}
{{- if and (eq (default "socket" $slack.mode) "socket") (not (hasKey $refs "slackAppToken")) }}
{{- fail "config.slack.mode=socket needs secrets.slackAppToken (an xapp- token with connections:write)" }}
{{- end }}
{{- if and (eq (default "socket" $slack.mode) "events") (not (hasKey $refs "slackSigningSecret")) }}
{{- fail "config.slack.mode=events needs secrets.slackSigningSecret" }}
{{- end }}
{{- if and (eq (default "socket" $slack.mode) "events") (not (and $v.ingress.enabled $v.ingress.host)) }}
{{- fail "config.slack.mode=events needs ingress.enabled=true and ingress.host: Slack's Events API must reach POST https://HOST/slack/events from the internet (or use config.slack.mode=socket, which needs no inbound traffic)" }}
{{- end }}
{{- end }}
{{- if hasKey $cfg "discord" }}
{{- if hasKey ($cfg.discord | default dict) "token" }}
{{- fail "config.discord.token is set by the chart from secrets.discordToken; remove it" }}
{{- end }}
{{- if not (hasKey $refs "discordToken") }}
{{- fail "config.discord needs secrets.discordToken (an existing Secret holding the bot token)" }}
{{- end }}
{{- end }}
{{- range $k := list "prometheus" "loki" }}
{{- if hasKey (index $cfg $k | default dict) "bearer_token" }}
{{- fail (printf "config.%s.bearer_token is set by the chart from secrets.%sToken; remove it" $k $k) }}
{{- end }}
{{- end }}
{{- $router := $cfg.router | default dict }}
{{- if hasKey $router "llm" }}
{{- if hasKey ($router.llm | default dict) "api_key" }}
{{- fail "config.router.llm.api_key is set by the chart from secrets.llmApiKey; remove it" }}
{{- end }}
{{- if and (ne (($router.llm | default dict).provider | default "") "openai") (not (hasKey $refs "llmApiKey")) }}
{{- fail "config.router.llm needs secrets.llmApiKey for providers other than an OpenAI-compatible endpoint without a key" }}
{{- end }}
{{- end }}
{{- if hasKey $cfg "incidents" }}
{{- $auth := ($cfg.incidents | default dict).auth | default dict }}
{{- if or (hasKey $auth "bearer_token") (hasKey ($auth.basic | default dict) "password") }}
{{- fail "config.incidents.auth: the bearer token or basic password is set by the chart from secrets.alertmanagerToken / secrets.alertmanagerPassword; remove it" }}
{{- end }}
{{- if hasKey $auth "basic" }}
{{- if not (hasKey $refs "alertmanagerPassword") }}
{{- fail "config.incidents.auth.basic needs secrets.alertmanagerPassword" }}
{{- end }}
{{- else if not (hasKey $refs "alertmanagerToken") }}
{{- fail "config.incidents needs secrets.alertmanagerToken (the bearer token Alertmanager sends; the webhook is never open)" }}
{{- end }}
{{- end }}
{{- if and $v.ingress.enabled (not $v.ingress.host) }}
{{- fail "ingress.enabled needs ingress.host: the public host name Slack calls" }}
{{- end }}
{{- $imp := $v.kubernetes.impersonation }}
{{- if $imp.enabled }}
{{- if not $imp.identities }}
{{- fail "kubernetes.impersonation.enabled needs kubernetes.impersonation.identities (chat subject -> Kubernetes user and groups): without users nobody could act" }}
{{- end }}
{{- if and $v.rbac.create $v.rbac.writeNamespaces (not (or $imp.writeUsers $imp.writeGroups)) }}
{{- fail "rbac.writeNamespaces with kubernetes.impersonation.enabled: changes run as the chat user, so name who may make them with kubernetes.impersonation.writeGroups (e.g. [sre]) or writeUsers; or leave rbac.writeNamespaces empty and grant those users RBAC yourself" }}
{{- end }}
{{- if and $v.rbac.create $v.rbac.jobNamespaces (not (or $imp.writeUsers $imp.writeGroups)) }}
{{- fail "rbac.jobNamespaces with kubernetes.impersonation.enabled: user-defined Job actions run as the chat user, so name who may start Jobs with kubernetes.impersonation.writeGroups (e.g. [sre]) or writeUsers; or leave rbac.jobNamespaces empty and grant those users RBAC yourself" }}
{{- end }}
{{- $names := include "parley.impersonationNames" . | fromYaml }}
{{- range $imp.writeUsers }}
{{- if not (has . $names.users) }}
{{- fail (printf "kubernetes.impersonation.writeUsers: %s is not a user Parley impersonates (kubernetes.impersonation.identities or extraUsers)" .) }}
{{- end }}
{{- end }}
{{- range $imp.writeGroups }}
{{- if not (has . $names.groups) }}
{{- fail (printf "kubernetes.impersonation.writeGroups: %s is not a group Parley impersonates (kubernetes.impersonation.identities or extraGroups)" .) }}
{{- end }}
{{- end }}
{{- else if or $imp.writeUsers $imp.writeGroups }}
{{- fail "kubernetes.impersonation.writeUsers/writeGroups are for kubernetes.impersonation.enabled=true; without impersonation Parley writes as its ServiceAccount" }}
{{- end }}
{{- include "parley.validateActions" . }}
{{- if and $v.kubernetes.namespaces $v.rbac.create $v.rbac.readNamespaces }}
{{- range $v.kubernetes.namespaces }}
{{- if not (has . $v.rbac.readNamespaces) }}
{{- fail (printf "kubernetes.namespaces lists %s, which rbac.readNamespaces does not grant: Parley could not read it" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
parley.validateActions stops rendering on user-defined actions that could
not run as installed: checks what Parley checks only at start (or at the
first request), where the chart can see it. With actions.existingConfigMap
the files are not the chart's to read; Parley checks them at start.
*/}}
{{- define "parley.validateActions" -}}
{{- $v := .Values }}
{{- $a := $v.actions }}
{{- $files := $a.files | default dict }}
{{- if and $files $a.existingConfigMap }}
{{- fail "actions.files and actions.existingConfigMap: give one of them (the files inline, or the name of a ConfigMap you manage), not both" }}
{{- end }}
{{- if and $a.secretEnv (not (include "parley.actionsConfigMap" .)) }}
{{- fail "actions.secretEnv is for user-defined actions: set actions.files or actions.existingConfigMap too (or remove it)" }}
{{- end }}
{{- /* The env vars the container gets: the chart's own, extraEnv and
actions.secretEnv. */}}
{{- $reserved := list "PARLEY_DB" "POD_NAME" "POD_NAMESPACE" }}
{{- range $k, $name := include "parley.secretEnv" . | fromYaml }}
{{- $reserved = append $reserved $name }}
{{- end }}
{{- $env := list }}
{{- range $v.extraEnv }}
{{- $env = append $env .name }}
{{- end }}
{{- range $i, $e := $a.secretEnv }}
{{- if has $e.name $reserved }}
{{- fail (printf "actions.secretEnv[%d]: %s is set by the chart; give the action's secret another name" $i $e.name) }}
{{- end }}
{{- if has $e.name $env }}
{{- fail (printf "actions.secretEnv[%d]: %s is already set (extraEnv or an earlier actions.secretEnv entry)" $i $e.name) }}
{{- end }}
{{- $env = append $env $e.name }}
{{- end }}
{{- /* First pass: the Job templates the actions name. */}}
{{- $templates := dict }}
{{- range $file, $content := $files }}
{{- $doc := fromYaml $content }}
{{- if hasKey $doc "Error" }}
{{- fail (printf "actions.files.%s is not a YAML mapping: %s" $file $doc.Error) }}
{{- end }}
{{- $job := (and (kindIs "map" $doc.run) $doc.run.kubernetes_job) | default dict }}
{{- if and (kindIs "map" $job) $job.template }}
{{- $tmpl := trimPrefix "./" (toString $job.template) }}
{{- if not (hasKey $files $tmpl) }}
{{- fail (printf "actions.files.%s: its Job template %s is not in actions.files (add it under that name; a ConfigMap holds no folders)" $file $job.template) }}
{{- end }}
{{- $_ := set $templates $tmpl $file }}
{{- end }}
{{- end }}
{{- $http := list }}
{{- range $file, $content := $files }}
{{- $doc := fromYaml $content }}
{{- if hasKey $templates $file }}
{{- continue }}
{{- end }}
{{- if hasKey $doc "apiVersion" }}
{{- fail (printf "actions.files.%s is a Kubernetes manifest, but no action names it as its run.kubernetes_job.template" $file) }}
{{- end }}
{{- $run := $doc.run | default dict }}
{{- if not (kindIs "map" $run) }}
{{- continue }}
{{- end }}
{{- $job := $run.kubernetes_job | default dict }}
{{- if and (kindIs "map" $job) $job.namespace $v.rbac.create (not (has (toString $job.namespace) $v.rbac.jobNamespaces)) }}
{{- fail (printf "actions.files.%s runs its Job in namespace %s, which rbac.jobNamespaces does not list: Parley could not create it there" $file $job.namespace) }}
{{- end }}
{{- $h := $run.http | default dict }}
{{- if kindIs "map" $h }}
{{- if $h }}
{{- $http = append $http $file }}
{{- end }}
{{- range $header, $hv := ($h.headers | default dict) }}
{{- $secret := (and (kindIs "map" $hv) $hv.secret) | default dict }}
{{- if kindIs "map" $secret }}
{{- if and $secret.env (not (has (toString $secret.env) $env)) }}
{{- fail (printf "actions.files.%s: header %s reads its secret from env var %s, which the container does not get: add {name: %s, secretName: ..., key: ...} to actions.secretEnv" $file $header $secret.env $secret.env) }}
{{- end }}
{{- if $secret.file }}
{{- fail (printf "actions.files.%s: header %s reads its secret from file %s, which the chart does not mount: use {secret: {env: NAME}} and actions.secretEnv" $file $header $secret.file) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $http $v.networkPolicy.enabled (not $v.networkPolicy.egress.destinations) }}
{{- fail (printf "networkPolicy.egress.destinations is empty, but the HTTP actions %s call hosts the NetworkPolicy blocks (it allows only DNS and the API server): add a destination for each host they call" (join ", " $http)) }}
{{- end }}
{{- end }}

{{/*
parley.impersonationNames returns {users: [...], groups: [...]}: every
user and group that kubernetes.impersonation may assume, sorted.
*/}}
{{- define "parley.impersonationNames" -}}
{{- $users := list }}
{{- $groups := list }}
{{- range $subject, $id := .Values.kubernetes.impersonation.identities }}
{{- $users = append $users $id.user }}
{{- range $id.groups }}
{{- $groups = append $groups . }}
{{- end }}
{{- end }}
{{- $users = concat $users .Values.kubernetes.impersonation.extraUsers }}
{{- $groups = concat $groups .Values.kubernetes.impersonation.extraGroups }}
{{- toYaml (dict "users" ($users | uniq | sortAlpha) "groups" ($groups | uniq | sortAlpha)) }}
{{- end }}

{{/*
parley.config renders config.yaml: the `config` value with the fields the
chart owns (listen, database, policy, in-cluster Kubernetes, secret
references) merged over it.
*/}}
{{- define "parley.config" -}}
{{- $v := .Values }}
{{- $cfg := deepCopy ($v.config | default dict) }}
{{- $refs := include "parley.secretRefs" . | fromYaml }}
{{- $env := include "parley.secretEnv" . | fromYaml }}
{{- $_ := set $cfg "listen" (printf "0.0.0.0:%d" (int $v.containerPort)) }}
{{- $_ := set $cfg "database" (printf "%s/parley.db" (include "parley.dataDir" .)) }}
{{- $_ := set $cfg "policy" (printf "%s/policy.yaml" (include "parley.configDir" .)) }}
{{- $k8s := deepCopy ($cfg.kubernetes | default dict) }}
{{- $_ := set $k8s "in_cluster" true }}
{{- with (include "parley.namespaces" . | fromYamlArray) }}
{{- $_ := set $k8s "namespaces" . }}
{{- end }}
{{- if $v.kubernetes.impersonation.enabled }}
{{- $_ := set $k8s "impersonate" $v.kubernetes.impersonation.identities }}
{{- end }}
{{- $_ := set $cfg "kubernetes" $k8s }}
{{- if hasKey $cfg "slack" }}
{{- $slack := deepCopy ($cfg.slack | default dict) }}
{{- range $k, $field := dict "slackBotToken" "bot_token" "slackAppToken" "app_token" "slackSigningSecret" "signing_secret" }}
{{- if hasKey $refs $k }}
{{- $_ := set $slack $field (dict "env" (index $env $k)) }}
{{- end }}
{{- end }}
{{- $_ := set $cfg "slack" $slack }}
{{- end }}
{{- if hasKey $cfg "discord" }}
{{- $discord := deepCopy ($cfg.discord | default dict) }}
{{- $_ := set $discord "token" (dict "env" $env.discordToken) }}
{{- $_ := set $cfg "discord" $discord }}
{{- end }}
{{- range $section, $k := dict "prometheus" "prometheusToken" "loki" "lokiToken" }}
{{- if hasKey $refs $k }}
{{- $s := deepCopy (index $cfg $section | default dict) }}
{{- $_ := set $s "bearer_token" (dict "env" (index $env $k)) }}
{{- $_ := set $cfg $section $s }}
{{- end }}
{{- end }}
{{- if eq $v.store.driver "postgres" }}
{{- $_ := set $cfg "store" (dict "driver" "postgres" "dsn" (dict "env" $env.postgresDsn)) }}
{{- end }}
{{- if and (hasKey ($cfg.router | default dict) "llm") (hasKey $refs "llmApiKey") }}
{{- $router := deepCopy $cfg.router }}
{{- $llm := deepCopy ($router.llm | default dict) }}
{{- $_ := set $llm "api_key" (dict "env" $env.llmApiKey) }}
{{- $_ := set $router "llm" $llm }}
{{- $_ := set $cfg "router" $router }}
{{- end }}
{{- if hasKey $cfg "incidents" }}
{{- $in := deepCopy ($cfg.incidents | default dict) }}
{{- $auth := deepCopy ($in.auth | default dict) }}
{{- if hasKey $auth "basic" }}
{{- $basic := deepCopy ($auth.basic | default dict) }}
{{- $_ := set $basic "password" (dict "env" $env.alertmanagerPassword) }}
{{- $_ := set $auth "basic" $basic }}
{{- else }}
{{- $_ := set $auth "bearer_token" (dict "env" $env.alertmanagerToken) }}
{{- end }}
{{- $_ := set $in "auth" $auth }}
{{- $_ := set $cfg "incidents" $in }}
{{- end }}
{{- if include "parley.actionsConfigMap" . }}
{{- $_ := set $cfg "actions_dir" (include "parley.actionsDir" .) }}
{{- end }}
{{- if $v.leaderElection.enabled }}
{{- $_ := set $cfg "leader_election" (dict "lease_name" (include "parley.leaseName" .) "lease_namespace" .Release.Namespace) }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}
