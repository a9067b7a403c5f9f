// Package alertmanager parses and validates the body of a Prometheus
// Alertmanager webhook notification (a webhook_configs receiver, payload
// version "4"). It is the gateway's only door for Alertmanager input, so it
// is strict about what it relies on and precise about what it rejects: every
// rejection is a *server.BadRequestError naming each offending field in the
// JSON spelling (at most server.MaxViolations of them), which the caller
// answers with a 400 problem document or a gRPC InvalidArgument with field
// violations.
package alertmanager

import "time"

// Status is the state of an alert or of a whole notification.
type Status string

// The two statuses Alertmanager sends.
const (
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
)

// Message is one webhook notification: the alerts of one aggregation group
// as routed to one receiver. The JSON tags mirror Alertmanager's payload, but
// decode with Parse, never with json.Unmarshal, to get the validation.
type Message struct {
	// Version is the payload version; Parse accepts only "4".
	Version string `json:"version"`
	// GroupKey identifies the aggregation group in Alertmanager, e.g.
	// `{}/{team="db"}:{alertname="DiskFull"}`.
	GroupKey string `json:"groupKey"`
	// TruncatedAlerts counts the alerts left out by the receiver's
	// max_alerts setting.
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
	// Status is resolved only when every alert in the group is resolved.
	Status   Status `json:"status"`
	Receiver string `json:"receiver"`
	// GroupLabels, CommonLabels and CommonAnnotations are never nil.
	// Alertmanager computes the common ones over the alerts it sends, that
	// is after truncation.
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	// Alerts holds at least one alert.
	Alerts []Alert `json:"alerts"`
}

// Alert is one alert of a Message.
type Alert struct {
	Status Status `json:"status"`
	// Labels identify the alert. Labels with an empty value are dropped, as
	// Alertmanager does on ingestion, so a label set means the same here as
	// there and Fingerprint agrees with Alertmanager's. Never empty.
	Labels map[string]string `json:"labels"`
	// Annotations is never nil.
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	// EndsAt is the zero time when unset; Alertmanager sends
	// "0001-01-01T00:00:00Z" for every firing alert, even one it knows an end
	// time for. Never zero for a resolved alert.
	EndsAt       time.Time `json:"endsAt"`
	GeneratorURL string    `json:"generatorURL"`
	// Fingerprint is the 16 lower-case hex digits of the label set's
	// model.LabelSet.Fingerprint: as sent by Alertmanager, or computed when
	// the sender left it out.
	Fingerprint string `json:"fingerprint"`
}
