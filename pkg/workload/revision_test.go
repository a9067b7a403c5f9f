package workload

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func rs(rev int64, replicas int32, annotations ...string) *appsv1.ReplicaSet {
	r := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-" + string(rune('a'+rev)), UID: types.UID("rs-" + string(rune('a'+rev))),
			Annotations: map[string]string{RevisionAnnotation: string(rune('0' + rev))},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas)},
	}
	for i := 0; i+1 < len(annotations); i += 2 {
		r.Annotations[annotations[i]] = annotations[i+1]
	}
	return r
}

// pod is a pod of r, ready since readyFor before now (not ready when
// negative).
func pod(r *appsv1.ReplicaSet, name string, readyFor time.Duration) corev1.Pod {
	status := corev1.ConditionTrue
	if readyFor < 0 {
		status, readyFor = corev1.ConditionFalse, -readyFor
	}
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "ReplicaSet", Name: r.Name, UID: r.UID, Controller: ptr.To(true),
		}}},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{
			Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.NewTime(now.Add(-readyFor)),
		}}},
	}
}

// A revision is good when every replica it should have has been ready for
// the settle time, or when that was recorded; a number says nothing.
func TestAssess(t *testing.T) {
	t.Parallel()
	long, short := Settle+time.Second, Settle-time.Second
	three := rs(1, 3)
	deleting := pod(three, "c", long)
	deleting.DeletionTimestamp = ptr.To(metav1.NewTime(now))
	for _, tc := range []struct {
		name           string
		rs             *appsv1.ReplicaSet
		pods           []corev1.Pod
		good           bool
		settled, ready int32
		failing        []string
		why            string
	}{
		{"all ready for the settle time", three, []corev1.Pod{pod(three, "a", long), pod(three, "b", long), pod(three, "c", Settle)}, true, 3, 3, nil, "all 3 replicas ready"},
		{"one ready too briefly", three, []corev1.Pod{pod(three, "a", long), pod(three, "b", long), pod(three, "c", short)}, false, 2, 3, nil, "2 of 3 replicas ready"},
		{"one failing", three, []corev1.Pod{pod(three, "a", long), pod(three, "b", long), pod(three, "c", -long)}, false, 2, 2, []string{"c"}, "2 of 3"},
		{"one being deleted is not counted", three, []corev1.Pod{pod(three, "a", long), pod(three, "b", long), deleting}, false, 2, 2, nil, "2 of 3"},
		{"scaled to zero, no record", rs(2, 0), nil, false, 0, 0, nil, "no pods"},
		{"scaled to zero, recorded", rs(2, 0, SettledAnnotation, "2026-12-06T10:00:00Z"), nil, true, 0, 0, nil, "seen 2026-12-06T10:00:00Z"},
		{"an unreadable record is no record", rs(2, 0, SettledAnnotation, "yesterday"), nil, false, 0, 0, nil, "no pods"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := assess(tc.rs, tc.pods, now)
			assert.Equal(t, tc.good, r.Good)
			assert.Equal(t, tc.settled, r.Settled)
			assert.Equal(t, tc.ready, r.Ready)
			assert.Equal(t, tc.failing, r.Failing)
			assert.Contains(t, r.Why, tc.why)
		})
	}
}

// The last good revision skips bad ones, whatever their numbers; the
// current one is never it. A current revision with settled replicas and a
// failing one is partly healthy.
func TestLastGoodAndPartlyHealthy(t *testing.T) {
	t.Parallel()
	long := Settle + time.Minute
	d := func(current int, rss ...*appsv1.ReplicaSet) (*appsv1.Deployment, []appsv1.ReplicaSet) {
		var out []appsv1.ReplicaSet
		for i, r := range rss {
			r.Spec.Template.Spec.Containers = []corev1.Container{{Name: "app", Image: "web:" + string(rune('0'+i))}}
			out = append(out, *r)
		}
		return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: rss[current].Spec.Template}}, out
	}
	for _, tc := range []struct {
		name     string
		current  int
		rss      []*appsv1.ReplicaSet
		pods     func(rss []appsv1.ReplicaSet) []corev1.Pod
		lastGood int64
		partly   bool
	}{
		{
			"a bad revision between two good ones", 3,
			[]*appsv1.ReplicaSet{rs(1, 0, SettledAnnotation, "2026-12-06T09:00:00Z"), rs(2, 0), rs(3, 2), rs(4, 1)},
			func(r []appsv1.ReplicaSet) []corev1.Pod {
				return []corev1.Pod{pod(&r[2], "c1", long), pod(&r[2], "c2", long), pod(&r[3], "d1", -time.Minute)}
			},
			3, false,
		},
		{
			"two bad releases in a row", 2,
			[]*appsv1.ReplicaSet{rs(1, 2), rs(2, 0), rs(3, 1)},
			func(r []appsv1.ReplicaSet) []corev1.Pod {
				return []corev1.Pod{pod(&r[0], "a1", long), pod(&r[0], "a2", long), pod(&r[2], "c1", -time.Minute)}
			},
			1, false,
		},
		{
			"two bad releases and nothing known good", 2,
			[]*appsv1.ReplicaSet{rs(1, 0), rs(2, 0), rs(3, 2)},
			func(r []appsv1.ReplicaSet) []corev1.Pod {
				return []corev1.Pod{pod(&r[2], "c1", -time.Minute), pod(&r[2], "c2", -time.Minute)}
			},
			0, false,
		},
		{
			"one bad replica of three", 1,
			[]*appsv1.ReplicaSet{rs(1, 0, SettledAnnotation, "2026-12-06T09:00:00Z"), rs(2, 3)},
			func(r []appsv1.ReplicaSet) []corev1.Pod {
				return []corev1.Pod{pod(&r[1], "b1", long), pod(&r[1], "b2", long), pod(&r[1], "b3", -time.Minute)}
			},
			1, true,
		},
		{
			"a fresh release failing is not partly healthy", 1,
			[]*appsv1.ReplicaSet{rs(1, 2), rs(2, 1)},
			func(r []appsv1.ReplicaSet) []corev1.Pod {
				return []corev1.Pod{pod(&r[0], "a1", long), pod(&r[0], "a2", long), pod(&r[1], "b1", -time.Minute)}
			},
			1, false,
		},
		{
			"the current good revision is not the last good", 0,
			[]*appsv1.ReplicaSet{rs(1, 1)},
			func(r []appsv1.ReplicaSet) []corev1.Pod { return []corev1.Pod{pod(&r[0], "a1", long)} },
			0, false,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dep, rss := d(tc.current, tc.rss...)
			w := assemble(dep, rss, tc.pods(rss), now)
			if tc.lastGood == 0 {
				assert.Nil(t, w.LastGood())
			} else if assert.NotNil(t, w.LastGood()) {
				assert.Equal(t, tc.lastGood, w.LastGood().Number)
			}
			assert.Equal(t, tc.partly, w.PartlyHealthy())
			assert.Equal(t, RevisionOf(&rss[tc.current]), w.Current.Number)
		})
	}
}

// An autoscaler that targets the Deployment owns its count: within its
// bounds a count is allowed, at its maximum there is nothing to add.
func TestAutoscaler(t *testing.T) {
	t.Parallel()
	hpa := func(kind, name string, lo *int32, hi int32) autoscalingv2.HorizontalPodAutoscaler {
		return autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: "hpa-" + name},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: kind, Name: name},
				MinReplicas:    lo, MaxReplicas: hi,
			},
		}
	}
	list := []autoscalingv2.HorizontalPodAutoscaler{hpa("StatefulSet", "web", nil, 9), hpa("Deployment", "api", nil, 9), hpa("Deployment", "web", ptr.To(int32(2)), 5)}
	a := autoscalerOf(list, "web")
	assert.Equal(t, &Autoscaler{Name: "hpa-web", Min: 2, Max: 5}, a)
	assert.Equal(t, &Autoscaler{Name: "hpa-api", Min: 1, Max: 9}, autoscalerOf(list, "api"), "min defaults to 1")
	assert.Nil(t, autoscalerOf(list, "db"))

	assert.Empty(t, a.Allows(2))
	assert.Empty(t, a.Allows(5))
	assert.Contains(t, a.Allows(6), "between 2 and 5")
	assert.Contains(t, a.Allows(1), "between 2 and 5")
	assert.False(t, a.AtMax(4))
	assert.True(t, a.AtMax(5))
	var none *Autoscaler
	assert.Empty(t, none.Allows(100))
	assert.False(t, none.AtMax(100))
}

// Two templates are the same apart from the hash label the Deployment
// controller adds to its ReplicaSets' copies.
func TestSameTemplate(t *testing.T) {
	t.Parallel()
	a := corev1.PodTemplateSpec{}
	a.Labels = map[string]string{"app": "web"}
	a.Spec.Containers = []corev1.Container{{Name: "app", Image: "web:1"}}
	b := *a.DeepCopy()
	b.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = "abc123"
	assert.True(t, SameTemplate(&a, &b), "the hash label aside")
	_, hasHash := b.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	assert.True(t, hasHash, "the arguments are left alone")
	b.Spec.Containers[0].Image = "web:2"
	assert.False(t, SameTemplate(&a, &b))
}
