package guard

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/human"
	"github.com/vigil-ops/vigil/pkg/server"
)

// Bounds of what a scope may set. The lower ones follow from meaning (a
// count below zero, a confidence above one); the upper ones are far beyond
// any sensible setting and catch typos (a cooldown of "10h" meant as 10
// minutes still passes; 10 days does not).
const (
	maxHourly        = 1000
	maxPods          = 10_000
	maxHealthy       = 1000
	maxReplicasBound = 1000
	maxMemoryBound   = 1 << 40 // 1 TiB
	maxCooldown      = 24 * time.Hour
	maxApprovalTTL   = 24 * time.Hour
	maxVerifyWindow  = time.Hour
	maxDenyLen       = 64
	maxNamespacesLen = 1000
)

// violations collects the field violations of guardrails, every one of
// them, so that one answer tells a person everything to fix: a
// *server.BadRequestError, which the gRPC port answers InvalidArgument with
// google.rpc.BadRequest field violations. Fields are named with the
// proto field names: "cooldown", "deny[2]", "scopes[0].max_auto_per_hour"
// in a file, "guardrails.cooldown" and "clear[1]" for Apply.
type violations struct{ server.BadRequestError }

func (v *violations) add(field, format string, args ...any) { v.Addf(field, format, args...) }

// err returns the violations as a *server.BadRequestError, or nil for none.
func (v *violations) err() error { return v.Err("invalid guardrails") }

// Validate checks guardrails as set for a scope (through the API or in the
// configuration file) and returns a *server.BadRequestError listing every
// violation, with fields named as in the proto. Unset fields are fine: they
// inherit. A nil g is an empty global scope.
func Validate(g *repairv1.Guardrails) error {
	var v violations
	v.guardrails("", g)
	return v.err()
}

// guardrails adds the violations of g, with fields prefixed by prefix.
func (v *violations) guardrails(prefix string, g *repairv1.Guardrails) {
	if g == nil {
		g = &repairv1.Guardrails{}
	}
	f := func(name string) string { return prefix + name }
	sc, err := ParseScope(g.GetScope())
	if err != nil {
		v.add(f("scope"), "%v", err)
	} else if !sc.IsGlobal() {
		globalOnly := func(name string, set bool) {
			if set {
				v.add(f(name), "can be set only in the global scope, not in %s", sc)
			}
		}
		globalOnly("max_auto_per_hour", g.MaxAutoPerHour != nil)
		globalOnly("allowed_namespaces", len(g.GetAllowedNamespaces()) > 0)
		globalOnly("paused", g.Paused != nil)
	}
	v.count(f("max_auto_per_hour"), g.MaxAutoPerHour, 0, maxHourly)
	v.count(f("max_auto_per_resource"), g.MaxAutoPerResource, 0, maxHourly)
	v.duration(f("cooldown"), g.GetCooldown(), maxCooldown)
	if g.MinConfidence != nil {
		if c := g.GetMinConfidence(); !(c >= 0 && c <= 1) {
			v.add(f("min_confidence"), "must be between 0 and 1, got %v", c)
		}
	}
	switch r := g.GetMaxAutoRisk(); {
	case r == typesv1.Risk_RISK_UNSPECIFIED:
	case !definedRisk(r):
		v.add(f("max_auto_risk"), "unknown risk %d", r)
	case r == typesv1.Risk_RISK_CRITICAL:
		v.add(f("max_auto_risk"), "must be LOW, MEDIUM or HIGH: CRITICAL repairs are never automatic")
	}
	v.count(f("max_pods_affected"), g.MaxPodsAffected, 0, maxPods)
	v.count(f("min_healthy_replicas"), g.MinHealthyReplicas, 0, maxHealthy)
	if n := len(g.GetDeny()); n > maxDenyLen {
		v.add(f("deny"), "must list at most %d actions, got %d", maxDenyLen, n)
	} else {
		for i, a := range g.GetDeny() {
			if !deniable(a) {
				v.add(fmt.Sprintf("%s[%d]", f("deny"), i), "%s is not an action that can be denied", actionName(a))
			}
		}
	}
	if n := len(g.GetAllowedNamespaces()); n > maxNamespacesLen {
		v.add(f("allowed_namespaces"), "must list at most %d namespaces, got %d", maxNamespacesLen, n)
	} else {
		for i, ns := range g.GetAllowedNamespaces() {
			if err := label("namespace", ns); err != nil {
				v.add(fmt.Sprintf("%s[%d]", f("allowed_namespaces"), i), "%v", err)
			}
		}
	}
	v.duration(f("approval_ttl"), g.GetApprovalTtl(), maxApprovalTTL)
	v.duration(f("verify_window"), g.GetVerifyWindow(), maxVerifyWindow)
	v.count(f("max_replicas"), g.MaxReplicas, 1, maxReplicasBound)
	if g.MaxMemoryBytes != nil {
		if b := g.GetMaxMemoryBytes(); b <= 0 || b > maxMemoryBound {
			v.add(f("max_memory_bytes"), "must be 1 to %d (%s), got %d", int64(maxMemoryBound), quantity(maxMemoryBound), b)
		}
	}
}

func (v *violations) count(field string, n *int32, lo, hi int32) {
	if n != nil && (*n < lo || *n > hi) {
		v.add(field, "must be %d to %d, got %d", lo, hi, *n)
	}
}

func (v *violations) duration(field string, d *durationpb.Duration, hi time.Duration) {
	if d == nil {
		return
	}
	if d.CheckValid() != nil {
		// Not protobuf's message: its wording is unstable on purpose.
		v.add(field, "invalid duration (seconds %d, nanos %d): out of range, or signs that differ", d.GetSeconds(), d.GetNanos())
		return
	}
	switch dd := d.AsDuration(); {
	case dd <= 0:
		v.add(field, "must be positive, got %s", human.Duration(dd))
	case dd > hi:
		v.add(field, "must be at most %s, got %s", human.Duration(hi), human.Duration(dd))
	}
}

// actionName is an action's name without its prefix: "DELETE_POD".
func actionName(a typesv1.RepairAction) string {
	if !definedAction(a) {
		return fmt.Sprintf("action %d", a)
	}
	return strings.TrimPrefix(a.String(), "REPAIR_ACTION_")
}

// riskName is a risk's name without its prefix: "LOW".
func riskName(r typesv1.Risk) string {
	if !definedRisk(r) {
		return fmt.Sprintf("risk %d", r)
	}
	return strings.TrimPrefix(r.String(), "RISK_")
}
