package guard

import (
	"math"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Effective returns the guardrails that apply under scopes: base (Defaults
// overlaid with the configuration file's global guardrails) overlaid with
// each scope in turn, from the least specific to the most (global,
// namespace, app). Nil scopes are skipped.
//
// A field a scope leaves unset keeps the value before it. Deny lists add
// up: a scope may deny more, never less, and the built-in deny list is
// always part of the result. max_auto_per_hour, allowed_namespaces and
// paused count only in the global scope (Validate refuses them elsewhere;
// here they are ignored). A repeated field cannot be told unset from empty,
// so an empty allowed_namespaces inherits too.
//
// To layer the configuration file's own scopes (File.Scopes) under the
// ones set through the API, pass each just before the stored scope of the
// same name: the API's values win field by field.
func Effective(base Settings, scopes ...*repairv1.Guardrails) Settings {
	s := base
	s.Deny = slices.Clone(base.Deny)
	s.AllowedNamespaces = slices.Clone(base.AllowedNamespaces)
	for _, g := range scopes {
		if g == nil {
			continue
		}
		if isGlobal(g.GetScope()) {
			setInt(&s.MaxAutoPerHour, g.MaxAutoPerHour)
			if len(g.GetAllowedNamespaces()) > 0 {
				s.AllowedNamespaces = slices.Clone(g.GetAllowedNamespaces())
			}
			setBool(&s.Paused, g.Paused)
		}
		setInt(&s.MaxAutoPerResource, g.MaxAutoPerResource)
		setDuration(&s.Cooldown, g.GetCooldown())
		if g.MinConfidence != nil {
			s.MinConfidence = g.GetMinConfidence()
		}
		if g.GetMaxAutoRisk() != typesv1.Risk_RISK_UNSPECIFIED {
			s.MaxAutoRisk = g.GetMaxAutoRisk()
		}
		setInt(&s.MaxPodsAffected, g.MaxPodsAffected)
		setInt(&s.MinHealthyReplicas, g.MinHealthyReplicas)
		s.Deny = append(s.Deny, g.GetDeny()...)
		setBool(&s.DryRun, g.DryRun)
		setDuration(&s.ApprovalTTL, g.GetApprovalTtl())
		setBool(&s.UndoOnFailure, g.UndoOnFailure)
		setDuration(&s.VerifyWindow, g.GetVerifyWindow())
		setInt(&s.MaxReplicas, g.MaxReplicas)
		if g.MaxMemoryBytes != nil {
			s.MaxMemoryBytes = g.GetMaxMemoryBytes()
		}
		setBool(&s.Auto, g.Auto)
	}
	s.Deny = denyList(s.Deny)
	return s
}

func setInt(dst *int, v *int32) {
	if v != nil {
		*dst = int(*v)
	}
}

func setBool(dst *bool, v *bool) {
	if v != nil {
		*dst = *v
	}
}

func setDuration(dst *time.Duration, v *durationpb.Duration) {
	if v != nil {
		*dst = v.AsDuration()
	}
}

// ToProto returns s as the guardrails of scope with every field set: the
// effective view of GetGuardrails. Global-only fields are included, as they
// apply to every scope, so the result is a view: Validate refuses it for a
// scope other than the global one.
func ToProto(s Settings, scope string) *repairv1.Guardrails {
	return &repairv1.Guardrails{
		Scope:              canonical(scope),
		MaxAutoPerHour:     int32Ptr(s.MaxAutoPerHour),
		MaxAutoPerResource: int32Ptr(s.MaxAutoPerResource),
		Cooldown:           durationpb.New(s.Cooldown),
		MinConfidence:      &s.MinConfidence,
		MaxAutoRisk:        s.MaxAutoRisk,
		MaxPodsAffected:    int32Ptr(s.MaxPodsAffected),
		MinHealthyReplicas: int32Ptr(s.MinHealthyReplicas),
		Deny:               denyList(s.Deny),
		AllowedNamespaces:  slices.Clone(s.AllowedNamespaces),
		DryRun:             &s.DryRun,
		Paused:             &s.Paused,
		ApprovalTtl:        durationpb.New(s.ApprovalTTL),
		UndoOnFailure:      &s.UndoOnFailure,
		VerifyWindow:       durationpb.New(s.VerifyWindow),
		MaxReplicas:        int32Ptr(s.MaxReplicas),
		MaxMemoryBytes:     &s.MaxMemoryBytes,
		Auto:               &s.Auto,
	}
}

// int32Ptr clamps n into an int32: Settings made by Effective always fit.
func int32Ptr(n int) *int32 {
	v := int32(max(math.MinInt32, min(math.MaxInt32, n)))
	return &v
}
