package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
)

// webhookPath is where the gateway takes Alertmanager's webhooks.
const webhookPath = "/api/v1/webhooks/alertmanager"

// webhookBody is req as Alertmanager's webhook_configs posts it (payload
// version 4): one group per webhook, with its group key and labels, each
// alert with its fingerprint; resolutions have status "resolved" and
// endsAt now. The body is written by hand rather than through
// encoding/json: the load generator shares the machine with the system it
// measures, so building bodies must cost little.
func (s *spec) webhookBody(req request, now time.Time) []byte {
	name, ns := s.alertname(req.group), s.namespace(req.group)
	status := "resolved"
	for _, a := range req.alerts {
		if a.kind != resolve {
			status = "firing"
			break
		}
	}
	b := make([]byte, 0, 512+len(req.alerts)*480)
	b = append(b, `{"version":"4","status":`...)
	b = strconv.AppendQuote(b, status)
	b = append(b, `,"receiver":"vigil","groupKey":`...)
	b = strconv.AppendQuote(b, fmt.Sprintf(`{}:{alertname=%q, namespace=%q}`, name, ns))
	b = append(b, `,"truncatedAlerts":0,"groupLabels":{"alertname":`...)
	b = strconv.AppendQuote(b, name)
	b = append(b, `,"namespace":`...)
	b = strconv.AppendQuote(b, ns)
	b = append(b, `},"commonLabels":{"alertname":`...)
	b = strconv.AppendQuote(b, name)
	b = append(b, `,"`+runLabel+`":`...)
	b = strconv.AppendQuote(b, s.runID)
	b = append(b, `,"`+jobLabel+`":"`+jobValue+`","namespace":`...)
	b = strconv.AppendQuote(b, ns)
	b = append(b, `,"severity":"`+severity+`"},"commonAnnotations":{"summary":"`+summary+`"},"externalURL":"`+externalURL+`","alerts":[`...)
	startsAt := s.startsAt.UTC().Format(time.RFC3339Nano)
	endsAt := now.UTC().Format(time.RFC3339Nano)
	for i, a := range req.alerts {
		if i > 0 {
			b = append(b, ',')
		}
		labels := s.labels(req.group, a.n)
		if a.kind == resolve {
			b = append(b, `{"status":"resolved","labels":`...)
		} else {
			b = append(b, `{"status":"firing","labels":`...)
		}
		b = appendLabels(b, labels)
		b = append(b, `,"annotations":{"summary":"`+summary+`"},"startsAt":"`...)
		b = append(b, startsAt...)
		if a.kind == resolve {
			b = append(b, `","endsAt":"`...)
			b = append(b, endsAt...)
		} else {
			b = append(b, `","endsAt":"0001-01-01T00:00:00Z`...)
		}
		b = append(b, `","generatorURL":"`+generatorURL+`","fingerprint":"`...)
		b = append(b, alertlabel.Fingerprint(labels)...)
		b = append(b, `"}`...)
	}
	return append(b, "]}"...)
}

// labelOrder is the order labels are written in: sorted, as Alertmanager
// writes them.
var labelOrder = []string{"alertname", runLabel, "instance", jobLabel, "namespace", "severity"}

// appendLabels writes labels as a JSON object. Names and values are the
// run's own (letters, digits, '_' and '-'), for which Go's quoting is
// JSON's.
func appendLabels(b []byte, labels map[string]string) []byte {
	b = append(b, '{')
	for i, k := range labelOrder {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, k)
		b = append(b, ':')
		b = strconv.AppendQuote(b, labels[k])
	}
	return append(b, '}')
}

// webhookSender posts requests to the gateway's Alertmanager webhook.
type webhookSender struct {
	spec          *spec
	client        *http.Client
	url           string
	authorization string
}

func newWebhookSender(s *spec, baseURL, token string, senders int) *webhookSender {
	return &webhookSender{
		spec: s,
		// One kept-alive connection per sender, as each Alertmanager
		// replica keeps its own.
		client:        &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders, MaxIdleConns: senders}},
		url:           strings.TrimSuffix(baseURL, "/") + webhookPath,
		authorization: "Bearer " + token,
	}
}

func (w *webhookSender) send(ctx context.Context, req request) outcome {
	body := w.spec.webhookBody(req, time.Now())
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return outcome{status: "invalid request", detail: err.Error()}
	}
	hr.Header.Set("Authorization", w.authorization)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(hr)
	if err != nil {
		return outcome{status: transportStatus(err), detail: err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		// Drained, so the connection is reused.
		_, _ = io.Copy(io.Discard, resp.Body)
		return outcome{accepted: true}
	}
	detail, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body)
	return outcome{status: "HTTP " + strconv.Itoa(resp.StatusCode), detail: strings.TrimSpace(string(detail))}
}

func (w *webhookSender) close() { w.client.CloseIdleConnections() }

// transportStatus names a request that got no answer.
func transportStatus(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	default:
		return "transport error"
	}
}
