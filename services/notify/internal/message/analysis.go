package message

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Bounds of the free text of an analysis (an LLM's words may run long),
// in characters, cut before escaping so no cut falls inside an entity. They
// keep the message well under Telegram's 4096 characters, so the lines
// that matter (the action, the ids) always make it.
const (
	maxSummary     = 300
	maxRootCause   = 1500
	maxBlastRadius = 400
	maxShort       = 100 // names: target, container, engine, model, app
)

// Analysis renders an incident's analysis.
func Analysis(e *eventsv1.AnalysisCompleted, m Markup) string {
	esc := m.Escape
	short := func(s string) string { return esc(clip(s, maxShort)) }
	var b strings.Builder
	fmt.Fprintf(&b, "🔎 %s\n", m.Bold("Analysis: "+esc(clip(oneOf(e.GetSummary(), "no summary"), maxSummary))))
	if rc := e.GetRootCause(); rc != "" && rc != e.GetSummary() {
		fmt.Fprintf(&b, "Cause: %s\n", esc(clip(rc, maxRootCause)))
	}
	fmt.Fprintf(&b, "\n%s %s\n", m.Bold("Proposed action:"), esc(Action(e.GetProposal())))
	fmt.Fprintf(&b, "Confidence: %s · Risk: %s\n", percent(e.GetConfidence()), riskName(e.GetRisk()))
	if br := blastRadius(e); br != "" {
		fmt.Fprintf(&b, "Blast radius: %s\n", br)
	}
	if note := e.GetBlastRadius(); note != "" {
		fmt.Fprintf(&b, "%s\n", m.Italic(esc(clip(note, maxBlastRadius))))
	}
	b.WriteString("\nEngine: " + short(oneOf(e.GetEngine(), "unknown")))
	if m := e.GetModel(); m != "" {
		b.WriteString(" · model " + short(m))
	}
	if in, out := e.GetInputTokens(), e.GetOutputTokens(); in > 0 || out > 0 {
		fmt.Fprintf(&b, " · tokens %d in / %d out", in, out)
	}
	if c := e.GetCostUsd(); c > 0 {
		fmt.Fprintf(&b, " · cost $%.4f", c)
	}
	b.WriteString("\n")
	if app := e.GetApp(); app != "" {
		fmt.Fprintf(&b, "App: %s\n", short(app))
	}
	fmt.Fprintf(&b, "Incident: %s\n", m.Code(short(e.GetIncidentId())))
	fmt.Fprintf(&b, "Analysis: %s", m.Code(short(e.GetAnalysisId())))
	return b.String()
}

// Action says what a proposal would do, in words, not escaped.
func Action(p *typesv1.RepairProposal) string {
	target := targetName(p.GetTarget())
	switch p.GetAction() {
	case typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED, typesv1.RepairAction_REPAIR_ACTION_NONE:
		return "Nothing to repair automatically: needs a person"
	case typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT:
		return "Restart " + target
	case typesv1.RepairAction_REPAIR_ACTION_DELETE_POD:
		return "Delete pod " + target + " so that it is recreated"
	case typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT:
		n := p.GetScale().GetReplicas()
		return fmt.Sprintf("Scale %s to %d %s", target, n, plural(int64(n), "replica", "replicas"))
	case typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT:
		if r := p.GetRollback().GetRevision(); r > 0 {
			return fmt.Sprintf("Roll back %s to revision %d", target, r)
		}
		return "Roll back " + target + " to its previous revision"
	case typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT:
		m := p.GetMemoryLimit()
		container := clip(oneOf(m.GetContainer(), "?"), maxShort)
		return fmt.Sprintf("Raise the memory limit of container %s in %s to %s", container, target, bytesIEC(m.GetLimitBytes()))
	}
	return fmt.Sprintf("Unknown action %d on %s", int32(p.GetAction()), target)
}

// targetName is namespace/name, and the cluster when one is named.
func targetName(r *typesv1.ResourceRef) string {
	name := clip(oneOf(r.GetName(), "?"), maxShort)
	if ns := r.GetNamespace(); ns != "" {
		name = clip(ns, maxShort) + "/" + name
	}
	if c := r.GetCluster(); c != "" {
		name += " (cluster " + clip(c, maxShort) + ")"
	}
	return name
}

func blastRadius(e *eventsv1.AnalysisCompleted) string {
	var parts []string
	if n := e.GetBlastRadiusPods(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", n, plural(int64(n), "pod", "pods")))
	}
	if d := e.GetExpectedDowntime(); d != nil {
		if dd := d.AsDuration(); dd > 0 {
			parts = append(parts, "expected downtime "+dd.String())
		} else {
			parts = append(parts, "no downtime expected")
		}
	}
	return strings.Join(parts, ", ")
}

// percent shows a 0..1 confidence as a whole percentage.
func percent(c float64) string {
	if math.IsNaN(c) {
		c = 0
	}
	return fmt.Sprintf("%.0f%%", math.Round(min(max(c, 0), 1)*100))
}

func riskName(r typesv1.Risk) string {
	switch r {
	case typesv1.Risk_RISK_LOW:
		return "low"
	case typesv1.Risk_RISK_MEDIUM:
		return "medium"
	case typesv1.Risk_RISK_HIGH:
		return "high"
	case typesv1.Risk_RISK_CRITICAL:
		return "critical"
	}
	return "unknown"
}

// bytesIEC writes a size the way Kubernetes quantities are read: whole GiB
// or MiB when it is one, else MiB with a decimal.
func bytesIEC(n int64) string {
	const (
		mib = 1 << 20
		gib = 1 << 30
	)
	switch {
	case n <= 0:
		return "an unstated size"
	case n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n < mib:
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/mib)
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func oneOf(s, fallback string) string {
	if strings.TrimSpace(s) == "" {
		return fallback
	}
	return s
}

// clip cuts s to at most n characters, ending it with "…" when it cuts.
// It works on the text before escaping: no entity can be cut.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}
