package subject_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/subject"
)

// Two teams in one cluster: shop is team-a's app, payments team-b's;
// logging is a namespace an admin mapped to team-c.
func index() *subject.Index {
	return subject.NewIndex(
		[]subject.App{
			{Name: "shop", Team: "team-a", Cluster: "kind", Namespace: "shop"},
			{Name: "payments", Team: "team-b", Cluster: "kind", Namespace: "payments"},
		},
		[]subject.Mapping{
			{Cluster: "", Namespace: "logging", Team: "team-c"},
			{Cluster: "prod", Namespace: "logging", Team: "team-d"},
		},
	)
}

func TestResolve(t *testing.T) {
	t.Parallel()
	const (
		appNS   = typesv1.Ownership_OWNERSHIP_APP_NAMESPACE
		appLbl  = typesv1.Ownership_OWNERSHIP_APP_LABEL
		mapping = typesv1.Ownership_OWNERSHIP_NAMESPACE_MAPPING
		none    = typesv1.Ownership_OWNERSHIP_NONE
	)
	tests := []struct {
		name     string
		labels   map[string]string
		want     *typesv1.Subject
		mismatch string
	}{
		{
			name:   "kube-state-metrics alert without an app label belongs to the namespace's app",
			labels: map[string]string{"alertname": "KubePodCrashLooping", "namespace": "payments", "deployment": "payments"},
			want:   &typesv1.Subject{Cluster: "kind", Namespace: "payments", Kind: "Deployment", Name: "payments", App: "payments", Team: "team-b", Ownership: appNS},
		},
		{
			name:     "a spoofed app label does not move the incident to another team",
			labels:   map[string]string{"namespace": "payments", "deployment": "payments", "app": "shop"},
			want:     &typesv1.Subject{Cluster: "kind", Namespace: "payments", Kind: "Deployment", Name: "payments", App: "payments", Team: "team-b", Ownership: appNS},
			mismatch: "label app=shop names app shop (team team-a) in namespace shop",
		},
		{
			name:     "a spoofed app label is not believed as the workload either",
			labels:   map[string]string{"namespace": "payments", "app": "shop"},
			want:     &typesv1.Subject{Cluster: "kind", Namespace: "payments", Name: "payments", App: "payments", Team: "team-b", Ownership: appNS},
			mismatch: "label app=shop",
		},
		{
			name:   "a pod names the workload through its controller",
			labels: map[string]string{"namespace": "payments", "pod": "payments-7d4b9c-x2x9z", "container": "app"},
			want:   &typesv1.Subject{Cluster: "kind", Namespace: "payments", Pod: "payments-7d4b9c-x2x9z", App: "payments", Team: "team-b", Ownership: appNS},
		},
		{
			name:   "an app label inside the namespace names a workload there",
			labels: map[string]string{"namespace": "payments", "app": "payments-worker"},
			want:   &typesv1.Subject{Cluster: "kind", Namespace: "payments", Name: "payments-worker", App: "payments", Team: "team-b", Ownership: appNS},
		},
		{
			name:   "the app's namespace in another cluster is not the app's",
			labels: map[string]string{"namespace": "payments", "cluster": "prod", "deployment": "payments"},
			want:   &typesv1.Subject{Cluster: "prod", Namespace: "payments", Kind: "Deployment", Name: "payments", Ownership: none},
		},
		{
			name:   "a mapped namespace belongs to its team",
			labels: map[string]string{"namespace": "logging", "statefulset": "loki"},
			want:   &typesv1.Subject{Namespace: "logging", Kind: "StatefulSet", Name: "loki", Team: "team-c", Ownership: mapping},
		},
		{
			name:   "a cluster's own mapping comes before one for any cluster",
			labels: map[string]string{"namespace": "logging", "cluster": "prod", "daemonset": "fluent-bit"},
			want:   &typesv1.Subject{Cluster: "prod", Namespace: "logging", Kind: "DaemonSet", Name: "fluent-bit", Team: "team-d", Ownership: mapping},
		},
		{
			name:   "no namespace: an app label naming Vigil's app is about that app",
			labels: map[string]string{"alertname": "HighLatency", "app": "shop"},
			want:   &typesv1.Subject{Cluster: "kind", Namespace: "shop", Name: "shop", App: "shop", Team: "team-a", Ownership: appLbl},
		},
		{
			name:   "no namespace, an app Vigil does not know: nothing to place",
			labels: map[string]string{"alertname": "HighLatency", "service": "checkout", "pod": "x"},
			want:   &typesv1.Subject{Ownership: none},
		},
		{
			name:   "an unknown namespace belongs to no team",
			labels: map[string]string{"namespace": "ingress-nginx", "deployment": "controller", "app": "shop"},
			want:   &typesv1.Subject{Namespace: "ingress-nginx", Kind: "Deployment", Name: "controller", Ownership: none},
			// shop lives elsewhere: the label is not believed.
			mismatch: "label app=shop",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := index().Resolve(tt.labels)
			if tt.mismatch == "" {
				assert.Empty(t, got.GetMismatch())
			} else {
				assert.Contains(t, got.GetMismatch(), tt.mismatch)
			}
			got.Mismatch = ""
			assert.Equal(t, tt.want.String(), got.String())
		})
	}
}

func TestResolveAmbiguousNamespace(t *testing.T) {
	t.Parallel()
	ix := subject.NewIndex([]subject.App{
		{Name: "api", Team: "team-a", Cluster: "east", Namespace: "api"},
		{Name: "api-west", Team: "team-b", Cluster: "west", Namespace: "api"},
	}, nil)
	got := ix.Resolve(map[string]string{"namespace": "api", "deployment": "api"})
	assert.Empty(t, got.GetTeam(), "two teams' apps share the namespace name and the alert names no cluster")
	assert.Contains(t, got.GetMismatch(), "names no cluster")
	got = ix.Resolve(map[string]string{"namespace": "api", "cluster": "west", "deployment": "api"})
	assert.Equal(t, "team-b", got.GetTeam())
}

func TestResolveDoesNotChangeLabels(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"namespace": "payments", "app": "shop"}
	index().Resolve(labels)
	require.Equal(t, "shop", labels["app"])
}

func TestCheck(t *testing.T) {
	t.Parallel()
	deploy := &typesv1.Subject{Cluster: "kind", Namespace: "payments", Kind: "Deployment", Name: "payments", App: "payments", Team: "team-b"}
	named := &typesv1.Subject{Namespace: "payments", Name: "payments"}
	pod := &typesv1.Subject{Namespace: "payments", Pod: "payments-7d4b9c-x2x9z"}
	ns := &typesv1.Subject{Namespace: "payments"}
	ref := func(ns, kind, name string) *typesv1.ResourceRef {
		return &typesv1.ResourceRef{Cluster: "kind", Namespace: ns, Kind: kind, Name: name}
	}
	const (
		rollback = typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT
		del      = typesv1.RepairAction_REPAIR_ACTION_DELETE_POD
	)
	tests := []struct {
		name     string
		s        *typesv1.Subject
		target   *typesv1.ResourceRef
		action   typesv1.RepairAction
		ok       bool
		reason   string
		podOwner string
	}{
		{"the subject's own workload", deploy, ref("payments", "Deployment", "payments"), rollback, true, "", ""},
		{"another namespace", deploy, ref("shop", "Deployment", "shop"), rollback, false, `namespace "shop" is not the incident's subject's`, ""},
		{"another cluster", deploy, &typesv1.ResourceRef{Cluster: "prod", Namespace: "payments", Kind: "Deployment", Name: "payments"}, rollback, false, "cluster", ""},
		{"the default cluster named or not", &typesv1.Subject{Namespace: "payments", Name: "payments"}, ref("payments", "Deployment", "payments"), rollback, true, "", ""},
		{"another workload of the namespace", deploy, ref("payments", "Deployment", "ledger"), rollback, false, "is not the incident's subject", ""},
		{"same name, another kind", deploy, ref("payments", "StatefulSet", "payments"), rollback, false, "is not the incident's subject", ""},
		{"a name of any kind", named, ref("payments", "StatefulSet", "payments"), rollback, true, "", ""},
		{"a pod subject: its controller, checked in the cluster", pod, ref("payments", "Deployment", "payments"), rollback, true, "", "payments-7d4b9c-x2x9z"},
		{"deleting the subject's pod", pod, ref("payments", "Pod", "payments-7d4b9c-x2x9z"), del, true, "", ""},
		{"deleting another pod", pod, ref("payments", "Pod", "ledger-1"), del, false, "is not the incident's subject's", ""},
		{"deleting a pod of the subject's workload", deploy, ref("payments", "Pod", "payments-7d4b9c-aaaaa"), del, true, "", ""},
		{"a namespace-wide subject names nothing to repair", ns, ref("payments", "Deployment", "payments"), rollback, false, "names no workload", ""},
		{"no subject at all", nil, ref("payments", "Deployment", "payments"), rollback, false, "names no namespace", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := subject.Check(tt.s, tt.target, tt.action, "kind")
			assert.Equal(t, tt.ok, v.OK, v.Reason)
			assert.Equal(t, tt.podOwner, v.PodOwner)
			if tt.reason != "" {
				assert.Contains(t, v.Reason, tt.reason)
			}
		})
	}
}
