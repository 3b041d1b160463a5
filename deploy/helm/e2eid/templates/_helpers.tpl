{{/* Name and labels of the e2eid chart. */}}
{{- define "e2eid.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "e2eid.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "e2eid.labels" -}}
{{ include "e2eid.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "e2eid.passphraseSecret" -}}
{{- .Values.ca.passphrase.existingSecret | default (printf "%s-ca" (include "e2eid.fullname" .)) -}}
{{- end -}}

{{/* e2eid.toml from .Values.config: one [section] per map, strings quoted, lists as arrays. */}}
{{- define "e2eid.toml" -}}
{{- range $section, $keys := .Values.config }}
[{{ $section }}]
{{- range $key, $value := $keys }}
{{- if kindIs "string" $value }}
{{ $key }} = {{ $value | toJson }}
{{- else if kindIs "slice" $value }}
{{ $key }} = {{ $value | toJson }}
{{- else }}
{{ $key }} = {{ $value }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
