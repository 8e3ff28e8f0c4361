{{/* Chart name, possibly overridden. */}}
{{- define "hpcmon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name. */}}
{{- define "hpcmon.fullname" -}}
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

{{/* Name of one component's objects: (dict "ctx" $ "component" "node-exporter"). */}}
{{- define "hpcmon.componentName" -}}
{{- printf "%s-%s" (include "hpcmon.fullname" .ctx) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object of a component. */}}
{{- define "hpcmon.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: hpcmon
{{ include "hpcmon.selectorLabels" . }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of a component. */}}
{{- define "hpcmon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hpcmon.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Image of a component: (dict "ctx" $ "image" .Values.node.image). */}}
{{- define "hpcmon.image" -}}
{{- $img := merge (deepCopy (default dict .image)) .ctx.Values.image }}
{{- printf "%s:%s" $img.repository (default .ctx.Chart.AppVersion $img.tag) }}
{{- end }}

{{/* Pull policy of a component. */}}
{{- define "hpcmon.pullPolicy" -}}
{{- $img := merge (deepCopy (default dict .image)) .ctx.Values.image }}
{{- $img.pullPolicy }}
{{- end }}

{{/* Name of the web config Secret ("" when disabled). */}}
{{- define "hpcmon.webConfigSecret" -}}
{{- if .Values.webConfig.enabled }}
{{- default (printf "%s-web-config" (include "hpcmon.fullname" .)) .Values.webConfig.existingSecret }}
{{- end }}
{{- end }}

{{/* Common arguments of every binary: listen address, web config, logging. (dict "ctx" $ "port" N) */}}
{{- define "hpcmon.commonArgs" -}}
- --web.listen-address=:{{ .port }}
{{- if .ctx.Values.webConfig.enabled }}
- --web.config.file=/etc/hpcmon/web-config.yml
{{- end }}
- --log.level={{ .ctx.Values.log.level }}
- --log.format={{ .ctx.Values.log.format }}
{{- end }}

{{/* Web config volume mounts (inside a container's volumeMounts list). */}}
{{- define "hpcmon.webConfigMounts" -}}
{{- if .Values.webConfig.enabled }}
- name: web-config
  mountPath: /etc/hpcmon/web-config.yml
  subPath: web-config.yml
  readOnly: true
{{- if .Values.webConfig.tlsSecret }}
- name: tls
  mountPath: /etc/hpcmon/tls
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{/* Web config volumes (inside a pod's volumes list). */}}
{{- define "hpcmon.webConfigVolumes" -}}
{{- if .Values.webConfig.enabled }}
- name: web-config
  secret:
    secretName: {{ include "hpcmon.webConfigSecret" . }}
{{- if .Values.webConfig.tlsSecret }}
- name: tls
  secret:
    secretName: {{ .Values.webConfig.tlsSecret }}
{{- end }}
{{- end }}
{{- end }}

{{/* How probes reach a component: "HTTP", "HTTPS" or "TCP" (probes.scheme, or with "auto":
HTTP without a web config; with an inline web config, HTTPS when it only sets up TLS and TCP
when it asks for basic auth or a client certificate, which a kubelet probe cannot send; TCP with
an existing web config Secret, whose content the chart cannot see). */}}
{{- define "hpcmon.probeScheme" -}}
{{- $s := .Values.probes.scheme }}
{{- if ne $s "auto" }}
{{- $s }}
{{- else if not .Values.webConfig.enabled }}
{{- "HTTP" }}
{{- else if .Values.webConfig.existingSecret }}
{{- "TCP" }}
{{- else }}
{{- $cfg := .Values.webConfig.config }}
{{- $tls := default dict (get $cfg "tls_server_config") }}
{{- $clientAuth := default "NoClientCert" (get $tls "client_auth_type") }}
{{- if or (get $cfg "basic_auth_users") (has $clientAuth (list "RequireAnyClientCert" "RequireAndVerifyClientCert")) }}
{{- "TCP" }}
{{- else if $tls }}
{{- "HTTPS" }}
{{- else }}
{{- "HTTP" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Liveness/readiness probes on port "metrics": /-/healthy and /-/ready (the alert bridge's
/-/ready pings its database, the Slurm exporter's waits for its first snapshot), or only a
TCP connect when the web config demands credentials (see hpcmon.probeScheme). */}}
{{- define "hpcmon.probes" -}}
{{- $scheme := include "hpcmon.probeScheme" . }}
{{- if eq $scheme "TCP" }}
livenessProbe:
  tcpSocket:
    port: metrics
  periodSeconds: 30
readinessProbe:
  tcpSocket:
    port: metrics
  periodSeconds: 10
{{- else }}
livenessProbe:
  httpGet:
    path: /-/healthy
    port: metrics
    scheme: {{ $scheme }}
  periodSeconds: 30
  timeoutSeconds: 5
readinessProbe:
  httpGet:
    path: /-/ready
    port: metrics
    scheme: {{ $scheme }}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
{{- end }}
{{- end }}

{{/* The ServiceAccount every pod runs as. */}}
{{- define "hpcmon.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hpcmon.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Pod-level identity shared by every component: ServiceAccount, no API token. */}}
{{- define "hpcmon.podIdentity" -}}
serviceAccountName: {{ include "hpcmon.serviceAccountName" . }}
automountServiceAccountToken: false
{{- end }}

{{/* The Prometheus `job` label of each component: what rules/*.rules.yml match (up{job="node"},
up{job="slurm"}, up{job="alert-bridge"}) and what the demo and the file/HTTP SD examples use. */}}
{{- define "hpcmon.jobNames" -}}
node-exporter: node
gpu-exporter: gpu
ipmi-exporter: ipmi
slurm-exporter: slurm
alert-bridge: alert-bridge
{{- end }}

{{/* Security context of an unprivileged container. */}}
{{- define "hpcmon.restrictedSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65534
runAsGroup: 65534
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}
