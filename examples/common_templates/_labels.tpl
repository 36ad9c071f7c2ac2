{{- define "labels.standard" -}}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
