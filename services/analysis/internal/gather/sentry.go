package gather

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// The label and annotations the gateway's Sentry source puts on an issue's
// alert (services/gateway/internal/source/sentry).
const (
	sentryIssueLabel     = "sentry_issue_id"
	sentryIssueURL       = "sentry_issue_url"
	sentryFirstSeen      = "sentry_first_seen"
	sentryRelease        = "sentry_release"
	maxSentryIssues      = 5
	maxSentrySummaryText = 200
)

// Sentry records the Sentry issues among alerts (those of the incident
// that incident.opened carried) in b: what each is, its link, when Sentry
// first saw it and the release that raised it. Nothing is fetched: the
// alert says it all, and its text is data.
func Sentry(alerts []*typesv1.IncidentAlert, b *evidence.Bundle) {
	byID := map[string]*evidence.ErrorIssue{}
	var order []string
	for _, ia := range alerts {
		a := ia.GetAlert()
		id := a.GetLabels()[sentryIssueLabel]
		if a.GetSource() != typesv1.AlertSource_ALERT_SOURCE_SENTRY || id == "" {
			continue
		}
		is := byID[id]
		if is == nil {
			if len(order) == maxSentryIssues {
				continue
			}
			is = &evidence.ErrorIssue{ID: id, Project: a.GetLabels()["project"]}
			byID[id] = is
			order = append(order, id)
		}
		ann := a.GetAnnotations()
		is.Title = cmp.Or(is.Title, ann["summary"])
		is.URL = cmp.Or(is.URL, ann[sentryIssueURL], a.GetGeneratorUrl())
		is.Release = cmp.Or(is.Release, ann[sentryRelease])
		if t, err := time.Parse(time.RFC3339Nano, ann[sentryFirstSeen]); err == nil {
			is.FirstSeen, is.FirstSeenKnown = t, true
		} else if start := a.GetStartsAt().AsTime(); !is.FirstSeenKnown && a.GetStartsAt() != nil && (is.FirstSeen.IsZero() || start.Before(is.FirstSeen)) {
			is.FirstSeen = start
		}
	}
	for _, id := range order {
		is := byID[id]
		b.Errors = append(b.Errors, *is)
		seen := "first seen " + is.FirstSeen.UTC().Format(time.RFC3339)
		if !is.FirstSeenKnown {
			seen = "first alerted " + is.FirstSeen.UTC().Format(time.RFC3339)
		}
		release := ""
		if is.Release != "" {
			release = ", release " + is.Release
		}
		b.Items = append(b.Items, evidence.Item{
			ID: "sentry/" + is.ID, Source: "sentry", At: is.FirstSeen,
			Summary: fmt.Sprintf("Sentry issue %s of project %s: %s (%s%s): %s", is.ID, orNone(is.Project), cut(is.Title), seen, release, is.URL),
		})
	}
}

func cut(s string) string {
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > maxSentrySummaryText {
		return string(r[:maxSentrySummaryText]) + "…"
	}
	return s
}
