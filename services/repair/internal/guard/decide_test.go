package guard_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/reserved"
	"github.com/vigil-ops/vigil/services/repair/internal/guard"
)

var now = time.Date(2026, 12, 2, 21, 0, 0, 0, time.UTC)

const (
	auto     = repairv1.Decision_DECISION_AUTO
	approval = repairv1.Decision_DECISION_NEEDS_APPROVAL
	blocked  = repairv1.Decision_DECISION_BLOCKED

	restart  = typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT
	scale    = typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT
	rollback = typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT
	memory   = typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT
	delPod   = typesv1.RepairAction_REPAIR_ACTION_DELETE_POD

	low      = typesv1.Risk_RISK_LOW
	medium   = typesv1.Risk_RISK_MEDIUM
	high     = typesv1.Risk_RISK_HIGH
	critical = typesv1.Risk_RISK_CRITICAL
)

// autoSettings are the defaults with automatic repairs on.
func autoSettings() guard.Settings {
	s := guard.Defaults()
	s.Auto = true
	return s
}

// okFacts pass every guardrail of autoSettings.
func okFacts() guard.Facts {
	return guard.Facts{
		Proposal: &typesv1.RepairProposal{
			Action: restart,
			Target: &typesv1.ResourceRef{Cluster: "prod", Namespace: "shop", Kind: "Deployment", Name: "api"},
		},
		Confidence:   0.92,
		Risk:         low,
		Supported:    true,
		AutoLastHour: 1,
		Now:          now,
		PodsAffected: 2,
		HealthyAfter: 2,
	}
}

// withReserved reserves own and extra as the service's options would.
func withReserved(own string, extra []string) func(*guard.Settings, *guard.Facts) {
	return func(s *guard.Settings, _ *guard.Facts) {
		r, err := reserved.New(own, extra)
		if err != nil {
			panic(err)
		}
		s.Reserved = r
	}
}

func withAction(a typesv1.RepairAction) func(*guard.Settings, *guard.Facts) {
	return func(_ *guard.Settings, f *guard.Facts) { f.Proposal.Action = a }
}

func withScale(n int32) func(*guard.Settings, *guard.Facts) {
	return func(_ *guard.Settings, f *guard.Facts) {
		f.Proposal.Action = scale
		f.Proposal.Params = &typesv1.RepairProposal_Scale{Scale: &typesv1.ScaleParams{Replicas: n}}
	}
}

func withMemory(b int64) func(*guard.Settings, *guard.Facts) {
	return func(_ *guard.Settings, f *guard.Facts) {
		f.Proposal.Action = memory
		f.Proposal.Params = &typesv1.RepairProposal_MemoryLimit{MemoryLimit: &typesv1.MemoryLimitParams{Container: "app", LimitBytes: b}}
	}
}

func withNamespace(ns string) func(*guard.Settings, *guard.Facts) {
	return func(_ *guard.Settings, f *guard.Facts) { f.Proposal.Target.Namespace = ns }
}

const okReason = "within the guardrails: confidence 0.92 (at least 0.85), risk LOW (at most LOW), " +
	"1 of 5 automatic repairs in the last hour, 0 of 3 on Deployment/shop/api, 2 pods affected (at most 3)"

func TestDecide(t *testing.T) {
	t.Parallel()
	type change = func(*guard.Settings, *guard.Facts)
	for _, tc := range []struct {
		name    string
		changes []change
		want    repairv1.Decision
		reasons []string // nil: only check that an AUTO decision gives one reason
	}{
		{"every guardrail passes", nil, auto, []string{okReason}},

		// Blocked, each rule alone.
		{
			"no action",
			[]change{withAction(typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED)},
			blocked,
			[]string{"the proposal names no action"},
		},
		{
			"action NONE",
			[]change{withAction(typesv1.RepairAction_REPAIR_ACTION_NONE)},
			blocked,
			[]string{"the analysis proposes no repair (NONE)"},
		},
		{
			"no proposal",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.Proposal = nil }},
			blocked,
			[]string{"the proposal names no action", "the proposal names no target"},
		},
		{"unknown action", []change{withAction(99)}, blocked, []string{"unknown action 99"}},
		{
			"built-in deny list",
			[]change{withAction(typesv1.RepairAction_REPAIR_ACTION_DELETE_PVC)},
			blocked,
			[]string{"DELETE_PVC is on the built-in deny list"},
		},
		{"built-in deny list with settings that lost it", []change{
			withAction(typesv1.RepairAction_REPAIR_ACTION_DROP_DATABASE),
			func(s *guard.Settings, _ *guard.Facts) { s.Deny = nil },
		}, blocked, []string{"DROP_DATABASE is on the built-in deny list"}},
		{"configured deny list", []change{
			withAction(rollback),
			func(s *guard.Settings, _ *guard.Facts) { s.Deny = append(s.Deny, rollback) },
		}, blocked, []string{"ROLLBACK_DEPLOYMENT is on the deny list"}},
		{"not supported", []change{
			withAction(typesv1.RepairAction_REPAIR_ACTION_CLEAR_CACHE),
			func(_ *guard.Settings, f *guard.Facts) { f.Supported = false },
		}, blocked, []string{"CLEAR_CACHE is not supported on this target"}},
		{
			"no target",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.Proposal.Target = nil }},
			blocked,
			[]string{"the proposal names no target"},
		},
		{
			"target without namespace",
			[]change{withNamespace("")},
			blocked,
			[]string{"the target Deployment/api names no namespace"},
		},
		{
			"namespace not allowed",
			[]change{func(s *guard.Settings, _ *guard.Facts) { s.AllowedNamespaces = []string{"payments", "web"} }},
			blocked,
			[]string{"namespace shop is not among the allowed namespaces (payments, web)"},
		},
		{"namespace allowed", []change{func(s *guard.Settings, _ *guard.Facts) { s.AllowedNamespaces = []string{"payments", "shop"} }}, auto, nil},
		{
			"kube-system without an allow list",
			[]change{withNamespace("kube-system")},
			blocked,
			[]string{"namespace kube-system is the cluster's own (kube-*): reserved, Vigil never repairs there"},
		},
		{
			"kube-system listed in allowed_namespaces is still reserved",
			[]change{
				withNamespace("kube-system"),
				func(s *guard.Settings, _ *guard.Facts) { s.AllowedNamespaces = []string{"kube-system"} },
			},
			blocked,
			[]string{"namespace kube-system is the cluster's own (kube-*): reserved, Vigil never repairs there"},
		},
		{
			"vigil-system, Vigil's own",
			[]change{withNamespace("vigil-system")},
			blocked,
			[]string{"namespace vigil-system is Vigil's own: reserved, Vigil never repairs there"},
		},
		{
			"ingress-nginx, trusted by every app",
			[]change{withNamespace("ingress-nginx")},
			blocked,
			[]string{"namespace ingress-nginx is trusted by every app's NetworkPolicy (the ingress controller's or Prometheus's): reserved, Vigil never repairs there"},
		},
		{
			"monitoring, trusted by every app",
			[]change{withNamespace("monitoring")},
			blocked,
			[]string{"namespace monitoring is trusted by every app's NetworkPolicy (the ingress controller's or Prometheus's): reserved, Vigil never repairs there"},
		},
		{
			"the namespace Vigil runs in",
			[]change{withNamespace("ops"), withReserved("ops", nil)},
			blocked,
			[]string{"namespace ops is the namespace Vigil runs in (VIGIL_NAMESPACE): reserved, Vigil never repairs there"},
		},
		{
			"reserved by the operator",
			[]change{withNamespace("team-x"), withReserved("", []string{"team-*"})},
			blocked,
			[]string{"namespace team-x is reserved by this Vigil's operator (VIGIL_RESERVED_NAMESPACES): reserved, Vigil never repairs there"},
		},
		{"default is not reserved", []change{withNamespace("default")}, auto, nil},
		{"a namespace the operator did not reserve", []change{withNamespace("shop"), withReserved("ops", []string{"team-*"})}, auto, nil},
		{"long allow list is shortened", []change{func(s *guard.Settings, _ *guard.Facts) {
			s.AllowedNamespaces = []string{"a", "b", "c", "d", "e", "f", "g"}
		}}, blocked, []string{"namespace shop is not among the allowed namespaces (a, b, c, d, e and 2 more)"}},
		{
			"scale above max_replicas",
			[]change{withScale(20)},
			blocked,
			[]string{"scaling to 20 replicas is above the limit of 10"},
		},
		{"scale to max_replicas", []change{withScale(10)}, auto, nil},
		{
			"scale to zero",
			[]change{withScale(0)},
			blocked,
			[]string{"scaling to 0 replicas would leave fewer than the 1 healthy replica required"},
		},
		{
			"scale without parameters",
			[]change{withAction(scale)},
			blocked,
			[]string{"scaling to 0 replicas would leave fewer than the 1 healthy replica required"},
		},
		{
			"scale negative",
			[]change{withScale(-1), func(s *guard.Settings, _ *guard.Facts) { s.MinHealthyReplicas = 0 }},
			blocked,
			[]string{"scaling to -1 replicas: a count cannot be negative"},
		},
		{"scale with unknown healthy replicas", []change{withScale(4), func(_ *guard.Settings, f *guard.Facts) { f.HealthyAfter = -1 }}, auto, nil},
		{
			"memory above max_memory_bytes",
			[]change{withMemory(8 << 30)},
			blocked,
			[]string{"memory limit 8Gi is above the limit of 4Gi"},
		},
		{"memory at max_memory_bytes", []change{withMemory(4 << 30)}, auto, nil},
		{
			"memory without parameters",
			[]change{withAction(memory)},
			blocked,
			[]string{"memory limit 0 is not a positive number of bytes"},
		},
		{
			"too few healthy replicas left",
			[]change{withAction(delPod), func(_ *guard.Settings, f *guard.Facts) { f.HealthyAfter = 0 }},
			blocked,
			[]string{"would leave 0 healthy replicas (at least 1 required)"},
		},
		{"one healthy replica left of two required", []change{
			func(s *guard.Settings, f *guard.Facts) { s.MinHealthyReplicas = 2; f.HealthyAfter = 1 },
		}, blocked, []string{"would leave 1 healthy replica (at least 2 required)"}},
		{"min_healthy_replicas 0 turns the check off", []change{
			func(s *guard.Settings, f *guard.Facts) { s.MinHealthyReplicas = 0; f.HealthyAfter = 0 },
		}, auto, nil},
		{
			"cooling down",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.CooldownUntil = now.Add(7*time.Minute + 30*time.Second) }},
			blocked,
			[]string{"Deployment/shop/api is cooling down after a failed repair (7m30s left)"},
		},
		{
			"cooling down for less than a second",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.CooldownUntil = now.Add(time.Millisecond) }},
			blocked,
			[]string{"Deployment/shop/api is cooling down after a failed repair (1s left)"},
		},
		{"cooldown over", []change{func(_ *guard.Settings, f *guard.Facts) { f.CooldownUntil = now }}, auto, nil},

		// Needs approval, each rule alone.
		{
			"auto off",
			[]change{func(s *guard.Settings, _ *guard.Facts) { s.Auto = false }},
			approval,
			[]string{"automatic repairs are off here (auto-repair not enabled)"},
		},
		{
			"kill switch",
			[]change{func(s *guard.Settings, _ *guard.Facts) { s.Paused = true }},
			approval,
			[]string{"kill switch on: automatic repairs paused"},
		},
		{
			"risk above max_auto_risk",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.Risk = medium }},
			approval,
			[]string{"risk MEDIUM is above LOW"},
		},
		{"risk at max_auto_risk", []change{func(s *guard.Settings, f *guard.Facts) { f.Risk = high; s.MaxAutoRisk = high }}, auto, nil},
		{
			"risk CRITICAL is never automatic",
			[]change{func(s *guard.Settings, f *guard.Facts) { f.Risk = critical; s.MaxAutoRisk = critical }},
			approval,
			[]string{"risk CRITICAL is never automatic"},
		},
		{
			"risk unknown",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.Risk = typesv1.Risk_RISK_UNSPECIFIED }},
			approval,
			[]string{"risk unknown"},
		},
		{
			"risk out of the enum",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.Risk = 7 }},
			approval,
			[]string{"unknown risk 7"},
		},
		{
			"confidence below",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.Confidence = 0.62 }},
			approval,
			[]string{"confidence 0.62 is below 0.85"},
		},
		{
			"confidence just below",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.Confidence = 0.849 }},
			approval,
			[]string{"confidence 0.849 is below 0.85"},
		},
		{"confidence at the minimum", []change{func(_ *guard.Settings, f *guard.Facts) { f.Confidence = 0.85 }}, auto, nil},
		{
			"confidence NaN",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.Confidence = math.NaN() }},
			approval,
			[]string{"confidence NaN is below 0.85"},
		},
		{
			"min_confidence NaN",
			[]change{func(s *guard.Settings, _ *guard.Facts) { s.MinConfidence = math.NaN() }},
			approval,
			[]string{"confidence 0.92 is below NaN"},
		},
		{
			"hourly limit reached",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.AutoLastHour = 5 }},
			approval,
			[]string{"5 automatic repairs in the last hour (limit 5)"},
		},
		{
			"hourly limit 0",
			[]change{func(s *guard.Settings, f *guard.Facts) { s.MaxAutoPerHour = 0; f.AutoLastHour = 0 }},
			approval,
			[]string{"0 automatic repairs in the last hour (limit 0)"},
		},
		{"hourly limit not reached", []change{func(_ *guard.Settings, f *guard.Facts) { f.AutoLastHour = 4 }}, auto, nil},
		{
			"per-resource limit reached",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.AutoOnResourceLastHour = 3 }},
			approval,
			[]string{"3 automatic repairs of Deployment/shop/api in the last hour (limit 3)"},
		},
		{
			"per-resource limit 1 reached",
			[]change{func(s *guard.Settings, f *guard.Facts) { s.MaxAutoPerResource = 1; f.AutoOnResourceLastHour = 1 }},
			approval,
			[]string{"1 automatic repair of Deployment/shop/api in the last hour (limit 1)"},
		},
		{
			"too many pods",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.PodsAffected = 5 }},
			approval,
			[]string{"5 pods affected (limit 3)"},
		},
		{"pods at the limit", []change{func(_ *guard.Settings, f *guard.Facts) { f.PodsAffected = 3 }}, auto, nil},
		{
			"healthy replicas unknown",
			[]change{func(_ *guard.Settings, f *guard.Facts) { f.HealthyAfter = -1 }},
			approval,
			[]string{"healthy replicas left unknown (at least 1 required)"},
		},
		{"healthy replicas unknown and not required", []change{func(s *guard.Settings, f *guard.Facts) { s.MinHealthyReplicas = 0; f.HealthyAfter = -1 }}, auto, nil},

		// Combinations: every reason is listed, blocking ones first.
		{"every reason to ask", []change{func(s *guard.Settings, f *guard.Facts) {
			s.Auto = false
			s.Paused = true
			f.Risk = high
			f.Confidence = 0.5
			f.AutoLastHour = 7
			f.AutoOnResourceLastHour = 3
			f.PodsAffected = 4
			f.HealthyAfter = -1
		}}, approval, []string{
			"automatic repairs are off here (auto-repair not enabled)",
			"kill switch on: automatic repairs paused",
			"risk HIGH is above LOW",
			"confidence 0.5 is below 0.85",
			"7 automatic repairs in the last hour (limit 5)",
			"3 automatic repairs of Deployment/shop/api in the last hour (limit 3)",
			"4 pods affected (limit 3)",
			"healthy replicas left unknown (at least 1 required)",
		}},
		{"blocked, with the reasons to ask too", []change{
			withAction(typesv1.RepairAction_REPAIR_ACTION_DELETE_NAMESPACE),
			withNamespace("kube-public"),
			func(s *guard.Settings, f *guard.Facts) {
				f.Supported = false
				f.HealthyAfter = 0
				f.CooldownUntil = now.Add(10 * time.Minute)
				f.Confidence = 0.3
				s.Paused = true
			},
		}, blocked, []string{
			"DELETE_NAMESPACE is on the built-in deny list",
			"DELETE_NAMESPACE is not supported on this target",
			"namespace kube-public is the cluster's own (kube-*): reserved, Vigil never repairs there",
			"would leave 0 healthy replicas (at least 1 required)",
			"Deployment/kube-public/api is cooling down after a failed repair (10m left)",
			"kill switch on: automatic repairs paused",
			"confidence 0.3 is below 0.85",
		}},
		{"scale beyond bounds while cooling down, risky", []change{
			withScale(50),
			func(_ *guard.Settings, f *guard.Facts) {
				f.CooldownUntil = now.Add(time.Hour)
				f.Risk = medium
				f.PodsAffected = 50
			},
		}, blocked, []string{
			"scaling to 50 replicas is above the limit of 10",
			"Deployment/shop/api is cooling down after a failed repair (1h left)",
			"risk MEDIUM is above LOW",
			"50 pods affected (limit 3)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, f := autoSettings(), okFacts()
			for _, c := range tc.changes {
				c(&s, &f)
			}
			got, reasons := guard.Decide(s, f)
			require.Equal(t, tc.want, got, "reasons: %q", reasons)
			if tc.reasons == nil {
				require.Len(t, reasons, 1)
				require.Contains(t, reasons[0], "within the guardrails: ")
				return
			}
			require.Equal(t, tc.reasons, reasons)
		})
	}
}

func TestDecideZeroFacts(t *testing.T) {
	t.Parallel()
	got, reasons := guard.Decide(guard.Defaults(), guard.Facts{})
	require.Equal(t, blocked, got)
	require.Equal(t, []string{
		"the proposal names no action",
		"the proposal names no target",
		"would leave 0 healthy replicas (at least 1 required)",
		"automatic repairs are off here (auto-repair not enabled)",
		"risk unknown",
		"confidence 0 is below 0.85",
	}, reasons)
}

func TestDecideDefaultsAskAPerson(t *testing.T) {
	t.Parallel()
	// Automatic repairs are opt-in: the defaults alone ask.
	got, reasons := guard.Decide(guard.Defaults(), okFacts())
	require.Equal(t, approval, got)
	require.Equal(t, []string{"automatic repairs are off here (auto-repair not enabled)"}, reasons)
}

func TestApprovable(t *testing.T) {
	t.Parallel()
	type change = func(*guard.Settings, *guard.Facts)
	for _, tc := range []struct {
		name    string
		changes []change
		reasons []string // nil: approvable
	}{
		{"fine", nil, nil},
		// What only stops automatic repairs does not stop a person.
		{"inside the cooldown", []change{func(_ *guard.Settings, f *guard.Facts) { f.CooldownUntil = now.Add(time.Minute) }}, nil},
		{"kill switch, limits, risk and confidence", []change{func(s *guard.Settings, f *guard.Facts) {
			s.Auto = false
			s.Paused = true
			f.Risk = critical
			f.Confidence = 0.1
			f.AutoLastHour = 100
			f.AutoOnResourceLastHour = 100
			f.PodsAffected = 100
			f.HealthyAfter = -1
		}}, nil},
		// What nobody may override.
		{"denied", []change{withAction(typesv1.RepairAction_REPAIR_ACTION_DELETE_SECRET)}, []string{"DELETE_SECRET is on the built-in deny list"}},
		{"denied by a scope", []change{
			withAction(rollback),
			func(s *guard.Settings, _ *guard.Facts) { s.Deny = []typesv1.RepairAction{rollback} },
		}, []string{"ROLLBACK_DEPLOYMENT is on the deny list"}},
		{"unsupported", []change{
			withAction(typesv1.RepairAction_REPAIR_ACTION_VACUUM_DATABASE),
			func(_ *guard.Settings, f *guard.Facts) { f.Supported = false },
		}, []string{"VACUUM_DATABASE is not supported on this target"}},
		{"no action", []change{withAction(typesv1.RepairAction_REPAIR_ACTION_NONE)}, []string{"the analysis proposes no repair (NONE)"}},
		{"namespace", []change{withNamespace("kube-system")}, []string{
			"namespace kube-system is the cluster's own (kube-*): reserved, Vigil never repairs there",
		}},
		{"bounds", []change{withMemory(5 << 30)}, []string{"memory limit 5Gi is above the limit of 4Gi"}},
		{"healthy replicas", []change{func(_ *guard.Settings, f *guard.Facts) { f.HealthyAfter = 0 }}, []string{
			"would leave 0 healthy replicas (at least 1 required)",
		}},
		{"several", []change{
			withAction(typesv1.RepairAction_REPAIR_ACTION_DELETE_PVC),
			withNamespace("kube-system"),
			func(_ *guard.Settings, f *guard.Facts) { f.Supported = false; f.CooldownUntil = now.Add(time.Minute) },
		}, []string{
			"DELETE_PVC is on the built-in deny list",
			"DELETE_PVC is not supported on this target",
			"namespace kube-system is the cluster's own (kube-*): reserved, Vigil never repairs there",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, f := autoSettings(), okFacts()
			for _, c := range tc.changes {
				c(&s, &f)
			}
			err := guard.Approvable(s, f)
			if tc.reasons == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, guard.ErrBlocked)
			var be *guard.BlockedError
			require.ErrorAs(t, err, &be)
			require.Equal(t, tc.reasons, be.Reasons)
			require.EqualError(t, err, "blocked by the guardrails: "+strings.Join(tc.reasons, "; "))
		})
	}
}

// Whatever Approvable refuses, Decide blocks: a repair a person could not
// approve is never put in front of one.
func TestApprovableImpliesBlocked(t *testing.T) {
	t.Parallel()
	actions := typesv1.RepairAction(0).Descriptor().Values()
	for i := range actions.Len() {
		for _, ns := range []string{"shop", "kube-system", "vigil-system", ""} {
			for _, healthy := range []int{-1, 0, 1, 3} {
				for _, supported := range []bool{true, false} {
					s, f := autoSettings(), okFacts()
					f.Proposal.Action = typesv1.RepairAction(actions.Get(i).Number())
					f.Proposal.Target.Namespace = ns
					f.HealthyAfter = healthy
					f.Supported = supported
					d, reasons := guard.Decide(s, f)
					if err := guard.Approvable(s, f); err != nil {
						require.Equal(t, blocked, d, "%v: %v", err, reasons)
						var be *guard.BlockedError
						require.ErrorAs(t, err, &be)
						require.Subset(t, reasons, be.Reasons)
					} else {
						require.NotEqual(t, blocked, d, reasons)
					}
				}
			}
		}
	}
}
