package rules

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

const (
	// changeWindow is how long before an incident a deploy or a new
	// revision counts as its likely cause: a bad release shows within
	// minutes (the default progress deadline is 10 minutes), alerts wait
	// their `for:` (5-15 minutes), and a change from hours ago is not
	// "shortly before".
	changeWindow = 30 * time.Minute
	// rolloutLead is how long before a deploy's last event (its
	// success) the release's pods may already run: a rollout takes up to
	// the deploy service's timeout, 5 minutes by default.
	rolloutLead = 5 * time.Minute
	// stuckAfter is how long a pod may be terminating before it is
	// stuck: the grace period (30 s by default, rarely over a few
	// minutes; the bundle does not carry it) plus a wide margin.
	stuckAfter = 10 * time.Minute
	// crashLoopWindow is how recently a container that runs now must
	// have failed to be crash-looping still: the kubelet's back-off
	// between restarts grows to 5 min, and it forgives a container (starts
	// the back-off over) once it has run 10 min without failing.
	crashLoopWindow = 10 * time.Minute
	// wedgedAfter is how long a running pod may be unready while its
	// siblings are ready before it is wedged.
	wedgedAfter = 10 * time.Minute
	// saturated is the utilisation (of requests or limits) that counts
	// as saturation when every sample of saturationSpan holds it.
	saturated      = 0.8
	saturationSpan = 5 * time.Minute
	// The signal labels of the series gatherers record.
	signalCPU      = "cpu_utilization"
	signalReplicas = "replicas"
)

// facts reads a bundle for the rules.
type facts struct {
	b *evidence.Bundle
	w *evidence.Workload
	// now is the clock; at is when the incident opened (now when
	// unknown): changes are measured against at, durations against now.
	now, at time.Time
	lim     engine.Limits
	items   map[string]bool
	// lang is the language of the sentences (see tr).
	lang string
}

func newFacts(b *evidence.Bundle, now time.Time, lim engine.Limits, lang string) *facts {
	f := &facts{b: b, w: b.Workload, now: now, at: b.Incident.OpenedAt, lim: lim, items: map[string]bool{}, lang: lang}
	if f.at.IsZero() {
		f.at = now
	}
	for _, it := range b.Items {
		f.items[it.ID] = true
	}
	return f
}

// ref is one container of one pod.
type ref struct {
	pod *evidence.Pod
	c   *evidence.Container
}

func (r ref) id() string { return containerID(r.pod.Name, r.c.Name) }

// containers are the containers that satisfy pred, in bundle order.
func (f *facts) containers(pred func(p *evidence.Pod, c *evidence.Container) bool) []ref {
	var out []ref
	for i := range f.b.Pods {
		p := &f.b.Pods[i]
		for j := range p.Containers {
			if c := &p.Containers[j]; pred(p, c) {
				out = append(out, ref{p, c})
			}
		}
	}
	return out
}

func (f *facts) events(pred func(e evidence.Event) bool) []evidence.Event {
	var out []evidence.Event
	for _, e := range f.b.Events {
		if pred(e) {
			out = append(out, e)
		}
	}
	return out
}

func eventsWith(reason string, res ...*regexp.Regexp) func(evidence.Event) bool {
	return func(e evidence.Event) bool {
		if reason != "" && e.Reason != reason {
			return false
		}
		return len(res) == 0 || slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(e.Message) })
	}
}

func waiting(reasons ...string) func(*evidence.Pod, *evidence.Container) bool {
	return func(_ *evidence.Pod, c *evidence.Container) bool {
		return c.State == "waiting" && slices.Contains(reasons, c.Reason)
	}
}

var imagePullReasons = []string{"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}

// crashing: the container crash-loops. That is read from what lasts
// across its restarts, not from the moment the pod is read: between two
// crashes the container runs (and, without a readiness probe, is even
// Ready), and right after one it is terminated until the kubelet backs
// off. So: waiting in CrashLoopBackOff, terminated by a failure, or
// restarted after a failure that ended within crashLoopWindow; a container
// that failed long ago and has run since is not crashing.
func (f *facts) crashing(_ *evidence.Pod, c *evidence.Container) bool {
	switch {
	case c.State == "waiting" && c.Reason == "CrashLoopBackOff", c.State == "terminated" && c.ExitCode != 0:
		return true
	case c.RestartCount == 0 || c.LastExitCode == 0:
		return false
	case c.LastFinished.IsZero():
		// When is unknown: only repeated failures count.
		return c.RestartCount >= 3
	}
	return f.now.Sub(c.LastFinished) <= crashLoopWindow
}

func oomKilled(_ *evidence.Pod, c *evidence.Container) bool {
	return c.Reason == "OOMKilled" || c.LastReason == "OOMKilled"
}

// unready: a running pod whose containers run but fail readiness.
func unready(p *evidence.Pod) bool {
	if p.Phase != "Running" || !p.DeletingSince.IsZero() || p.Conditions["Ready"].Status != "False" {
		return false
	}
	return !slices.ContainsFunc(p.Containers, func(c evidence.Container) bool { return c.State != "running" })
}

func isReady(p *evidence.Pod) bool {
	return p.Conditions["Ready"].Status == "True" && p.DeletingSince.IsZero()
}

// failing are the containers that fail in a way a new revision can cause,
// and the unready pods, on the current revision (or of unknown revision).
func (f *facts) failing() (refs []ref, pods []*evidence.Pod) {
	current := func(p *evidence.Pod) bool { return f.w == nil || p.Revision == 0 || p.Revision == f.w.Revision }
	refs = f.containers(func(p *evidence.Pod, c *evidence.Container) bool {
		return current(p) && (f.crashing(p, c) || waiting(imagePullReasons...)(p, c))
	})
	for i := range f.b.Pods {
		if p := &f.b.Pods[i]; current(p) && unready(p) {
			pods = append(pods, p)
		}
	}
	return refs, pods
}

// pending are the pods waiting to be scheduled.
func (f *facts) pending() []*evidence.Pod {
	var out []*evidence.Pod
	for i := range f.b.Pods {
		if p := &f.b.Pods[i]; p.Phase == "Pending" && p.Conditions["PodScheduled"].Status != "True" {
			out = append(out, p)
		}
	}
	return out
}

// recentChange is the deploy or new revision in the change window before
// the incident, with the evidence and a sentence; ok false when none.
func (f *facts) recentChange() (ids []string, what string, ok bool) {
	from, to := f.at.Add(-changeWindow), f.at.Add(time.Minute)
	in := func(t time.Time) bool { return !t.Before(from) && !t.After(to) }
	for _, d := range f.b.Deploys {
		if in(d.At) && (f.w == nil || d.Revision == 0 || d.Revision == f.w.Revision) {
			ids = append(ids, deployID(d))
			if what == "" {
				what = f.tr("deployed %s %s before the incident", d.Image, f.at.Sub(d.At).Round(time.Second))
			}
		}
	}
	if f.w != nil {
		for _, r := range f.w.Revisions {
			if r.Number == f.w.Revision && in(r.CreatedAt) {
				ids = append(ids, revisionID(f.b, r.Number))
				if what == "" {
					what = f.tr("revision %d created %s before the incident", r.Number, f.at.Sub(r.CreatedAt).Round(time.Second))
				}
			}
		}
	}
	return ids, what, len(ids) > 0
}

// errorAfterDeploy is the first Sentry issue first seen within
// changeWindow after a Vigil deploy of the app (from rolloutLead before
// its last event) whose revision the workload runs, and that deploy.
func (f *facts) errorAfterDeploy() (evidence.ErrorIssue, evidence.Deploy, bool) {
	if f.w == nil {
		return evidence.ErrorIssue{}, evidence.Deploy{}, false
	}
	for _, is := range f.b.Errors {
		for _, d := range f.b.Deploys {
			if d.Status != "requested" && d.Status != "succeeded" || (d.Revision != 0 && d.Revision != f.w.Revision) {
				continue
			}
			if since := is.FirstSeen.Sub(d.At); since >= -rolloutLead && since <= changeWindow {
				return is, d, true
			}
		}
	}
	return evidence.ErrorIssue{}, evidence.Deploy{}, false
}

// short is an issue's title cut for a sentence.
func short(title string) string {
	if r := []rune(strings.TrimSpace(title)); len(r) > 120 {
		return string(r[:120]) + "…"
	}
	return strings.TrimSpace(title)
}

// lastGood is the revision a rollback returns to: the workload model's
// last good revision (pkg/workload), skipping bad ones in between.
func (f *facts) lastGood() (evidence.Revision, bool) {
	if f.w == nil || f.w.LastGood == 0 {
		return evidence.Revision{}, false
	}
	i := slices.IndexFunc(f.w.Revisions, func(r evidence.Revision) bool { return r.Number == f.w.LastGood })
	if i < 0 {
		return evidence.Revision{}, false
	}
	return f.w.Revisions[i], true
}

// spec is the pod template's container by name.
func (f *facts) spec(name string) (evidence.ContainerSpec, bool) {
	if f.w == nil {
		return evidence.ContainerSpec{}, false
	}
	i := slices.IndexFunc(f.w.Containers, func(c evidence.ContainerSpec) bool { return c.Name == name })
	if i < 0 {
		return evidence.ContainerSpec{}, false
	}
	return f.w.Containers[i], true
}

// series is the series with the signal label.
func (f *facts) series(signal string) (evidence.Series, bool) {
	i := slices.IndexFunc(f.b.Metrics, func(s evidence.Series) bool { return s.Labels["signal"] == signal })
	if i < 0 {
		return evidence.Series{}, false
	}
	return f.b.Metrics[i], true
}

// sustained: the series' samples in the 15 minutes before the incident
// (and 5 after) span saturationSpan and every one is at least v. lowest
// is -1 when there are fewer than 3 samples.
func (f *facts) sustained(s evidence.Series, v float64) (lowest float64, ok bool) {
	var pts []evidence.Point
	for _, p := range s.Points {
		if !p.At.Before(f.at.Add(-15*time.Minute)) && !p.At.After(f.at.Add(5*time.Minute)) {
			pts = append(pts, p)
		}
	}
	if len(pts) < 3 {
		return -1, false
	}
	slices.SortFunc(pts, func(a, b evidence.Point) int { return a.At.Compare(b.At) })
	lowest = slices.MinFunc(pts, func(a, b evidence.Point) int { return cmp.Compare(a.Value, b.Value) }).Value
	return lowest, lowest >= v && pts[len(pts)-1].At.Sub(pts[0].At) >= saturationSpan
}

func (f *facts) labels() string {
	var kv []string
	for k, v := range f.b.Incident.Labels {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return strings.Join(kv, ", ")
}

func eventIDs(es []evidence.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, eventID(e))
	}
	return out
}

func refIDs(rs []ref) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.id(), podID(r.pod.Name), logID(r.pod.Name, r.c.Name))
	}
	return out
}

func podIDs(ps []*evidence.Pod) []string {
	var out []string
	for _, p := range ps {
		out = append(out, podID(p.Name))
	}
	return out
}

// bytes reads as a person writes a memory limit.
func bytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGi", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%dMi", (n+1<<20-1)>>20)
	default:
		return fmt.Sprintf("%d", n)
	}
}

// firstMessage is the first event's message, trimmed for a summary.
func firstMessage(es []evidence.Event) string {
	if len(es) == 0 {
		return ""
	}
	m := strings.TrimSpace(es[0].Message)
	if len(m) > 200 {
		m = m[:200] + "..."
	}
	return m
}
