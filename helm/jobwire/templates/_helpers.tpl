{{/*
Names, labels and small shared pieces of the Jobwire chart.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "jobwire.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The resource name prefix: fullnameOverride, else "<release>-<chart>" (the release name
alone when it already contains the chart name). At most 63 characters (DNS label).
*/}}
{{- define "jobwire.fullname" -}}
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

{{/* "name-version" for the helm.sh/chart label. */}}
{{- define "jobwire.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource of the chart. */}}
{{- define "jobwire.labels" -}}
helm.sh/chart: {{ include "jobwire.chart" . }}
app.kubernetes.io/name: {{ include "jobwire.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: jobwire
{{- end }}

{{/*
Selector labels of one component; call with (dict "ctx" $ "component" "server").
*/}}
{{- define "jobwire.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jobwire.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of one component: the common ones plus its selector labels. */}}
{{- define "jobwire.componentLabels" -}}
{{ include "jobwire.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "jobwire.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "jobwire.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference; call with (dict "ctx" $ "image" <a {repository, tag} map or nil>).
Each part missing from "image" comes from .Values.image; the tag defaults to appVersion.
*/}}
{{- define "jobwire.image" -}}
{{- $image := .image | default dict }}
{{- $repository := $image.repository | default .ctx.Values.image.repository }}
{{- $tag := $image.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion }}
{{- printf "%s:%s" $repository (toString $tag) }}
{{- end }}

{{/* Name of the Secret with the tokens (the chart's, or auth.existingSecret). */}}
{{- define "jobwire.tokensSecretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-tokens" (include "jobwire.fullname" .)) }}
{{- end }}

{{/* Name of the Secret with the backend URL (the chart's, or backend.existingSecret). */}}
{{- define "jobwire.backendSecretName" -}}
{{- .Values.backend.existingSecret.name | default (printf "%s-backend" (include "jobwire.fullname" .)) }}
{{- end }}

{{/* The key of the backend Secret holding the URL. */}}
{{- define "jobwire.backendSecretKey" -}}
{{- if .Values.backend.existingSecret.name }}
{{- .Values.backend.existingSecret.key }}
{{- else -}}
url
{{- end }}
{{- end }}

{{/* Name of the bundled Redis (its StatefulSet and Service). */}}
{{- define "jobwire.redisName" -}}
{{- printf "%s-redis" (include "jobwire.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The store URL the chart writes into its backend Secret. */}}
{{- define "jobwire.backendUrl" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s:6379/0" (include "jobwire.redisName" .) }}
{{- else }}
{{- .Values.backend.url }}
{{- end }}
{{- end }}

{{/* The service's in-cluster REST URL, as workers reach it. */}}
{{- define "jobwire.serviceUrl" -}}
{{- printf "http://%s:%d" (include "jobwire.fullname" .) (int .Values.service.port) }}
{{- end }}

{{/* What worker pods pull from: the gRPC Work stream when gRPC is on (jobs pushed as
soon as they are due), else REST long polls. */}}
{{- define "jobwire.workerUrl" -}}
{{- if .Values.grpc.enabled }}
{{- printf "grpc://%s:%d" (include "jobwire.fullname" .) (int .Values.grpc.port) }}
{{- else }}
{{- include "jobwire.serviceUrl" . }}
{{- end }}
{{- end }}

{{/* Name of a worker group's Deployment; call with (dict "ctx" $ "worker" <entry>). */}}
{{- define "jobwire.workerName" -}}
{{- printf "%s-worker-%s" (include "jobwire.fullname" .ctx) .worker.name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Topology spread constraints for pods with the given selector labels: each constraint
without a labelSelector gets one. Call with (dict "constraints" <list> "selector" <map>).
*/}}
{{- define "jobwire.topologySpread" -}}
{{- range .constraints }}
- {{ toYaml (merge (deepCopy .) (dict "labelSelector" (dict "matchLabels" $.selector))) | nindent 2 | trim }}
{{- end }}
{{- end }}

{{/* The /tmp volume of every Jobwire pod (the root filesystem is read-only). */}}
{{- define "jobwire.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{/*
Refuse contradictory values with a message saying what to change; renders nothing.
*/}}
{{- define "jobwire.validate" -}}
{{- $external := or .Values.backend.url .Values.backend.existingSecret.name }}
{{- if and .Values.redis.enabled $external }}
{{- fail "backend: set redis.enabled=false when backend.url or backend.existingSecret.name is given (one store only)" }}
{{- end }}
{{- if and (not .Values.redis.enabled) (not $external) }}
{{- fail "backend: set backend.url, backend.existingSecret.name, or redis.enabled=true" }}
{{- end }}
{{- if and .Values.backend.url .Values.backend.existingSecret.name }}
{{- fail "backend: set backend.url or backend.existingSecret.name, not both" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "serviceMonitor.enabled needs metrics.enabled" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) }}
{{- fail "podDisruptionBudget: set maxUnavailable or minAvailable, not both (null the other)" }}
{{- end }}
{{- $names := dict }}
{{- range .Values.workers }}
{{- if hasKey $names .name }}
{{- fail (printf "workers: the name %q is used twice" .name) }}
{{- end }}
{{- $_ := set $names .name true }}
{{- if and (dig "autoscaling" "enabled" false .) (dig "keda" "enabled" false .) }}
{{- fail (printf "workers[%s]: enable autoscaling or keda, not both" .name) }}
{{- end }}
{{- if and (dig "keda" "enabled" false .) (not $.Values.metrics.enabled) }}
{{- fail (printf "workers[%s]: keda needs metrics.enabled (KEDA reads the queue depth from Prometheus)" .name) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
An autoscaling/v2 HPA of a Deployment; call with (dict "ctx" $ "name" <Deployment name>
"component" <label> "autoscaling" <{minReplicas, maxReplicas, targetCPU..., behavior}>).
*/}}
{{- define "jobwire.hpa" -}}
{{- $scaling := .autoscaling -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .name }}
  labels:
    {{- include "jobwire.componentLabels" (dict "ctx" .ctx "component" .component) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .name }}
  minReplicas: {{ $scaling.minReplicas | default 1 }}
  maxReplicas: {{ $scaling.maxReplicas | default 10 }}
  {{- if or $scaling.targetCPUUtilizationPercentage $scaling.targetMemoryUtilizationPercentage }}
  metrics:
    {{- with $scaling.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with $scaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  {{- end }}
  {{- with $scaling.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
