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

{{/* Liveness/readiness probes on port "metrics". With a web config, every path may need
basic auth (which probes cannot send), so they only check that the port accepts connections. */}}
{{- define "hpcmon.probes" -}}
{{- if .Values.webConfig.enabled }}
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
  periodSeconds: 30
  timeoutSeconds: 5
readinessProbe:
  httpGet:
    path: /-/ready
    port: metrics
  periodSeconds: 10
  timeoutSeconds: 5
{{- end }}
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
