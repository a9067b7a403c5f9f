// Package workloadtest gives tests on the development control plane
// (pkg/kubedev) Deployments with a history: releases, pods that have
// been ready for the settle time, and one pod of a release that fails.
// The control plane has no kubelet; kwok makes pods ready at once, so
// what a kubelet would have written over minutes is written here.
package workloadtest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/vigil-ops/vigil/pkg/workload"
)

// Deployment is a Deployment of one container "app" running image, its
// pods labelled app.kubernetes.io/name=name.
func Deployment(ns, name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// History creates Deployment ns/name with replicas of images[0] and
// releases the others in turn, one revision each. An image on one of
// kubedev's failing hosts (*.kwok.invalid) is a bad release: it is waited
// for until its first pod fails. Any other is a good one: its pods are
// waited for and settled, and, with record, recorded (Record) as the
// deploy service does before the next release.
func History(t testing.TB, c kubernetes.Interface, ns, name string, replicas int32, record bool, images ...string) {
	t.Helper()
	_, err := c.AppsV1().Deployments(ns).Create(t.Context(), Deployment(ns, name, images[0], replicas), metav1.CreateOptions{})
	require.NoError(t, err)
	for i, image := range images {
		rev := int64(i + 1)
		if i == 0 {
			WaitRevision(t, c, ns, name, rev)
		} else {
			Release(t, c, ns, name, image, rev)
		}
		if strings.Contains(image, ".kwok.invalid/") {
			Failing(t, c, ns, name, rev, 1)
			continue
		}
		Settled(t, c, ns, name, rev, int(replicas))
		if record {
			Record(t, c, ns, name)
		}
	}
}

// Autoscaler creates HorizontalPodAutoscaler ns/name targeting Deployment
// ns/name, between lo and hi replicas. The control plane has no metrics:
// it never scales, it only owns the count.
func Autoscaler(t testing.TB, c kubernetes.Interface, ns, name string, lo, hi int32) {
	t.Helper()
	_, err := c.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(t.Context(), &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    &lo, MaxReplicas: hi,
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// Release sets the image of Deployment ns/name as a deploy would and
// waits until the controller has numbered revision and made its
// ReplicaSet.
func Release(t testing.TB, c kubernetes.Interface, ns, name, image string, revision int64) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":%q}]}}}}`, image)
	_, err := c.AppsV1().Deployments(ns).Patch(t.Context(), name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err)
	WaitRevision(t, c, ns, name, revision)
}

// WaitRevision waits until Deployment ns/name is at revision, observed.
func WaitRevision(t testing.TB, c kubernetes.Interface, ns, name string, revision int64) {
	t.Helper()
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		d, err := c.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		require.NoError(ct, err)
		require.Equal(ct, d.Generation, d.Status.ObservedGeneration)
		require.Equal(ct, strconv.FormatInt(revision, 10), d.Annotations[workload.RevisionAnnotation])
	}, 30*time.Second, 100*time.Millisecond)
}

// Settled waits until revision of Deployment ns/name (0: its current
// one) has ready pods, as many as want, and then dates their readiness
// back past the settle time, as if they had been serving for a while.
func Settled(t testing.TB, c kubernetes.Interface, ns, name string, revision int64, want int) {
	t.Helper()
	var pods []corev1.Pod
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		w, err := workload.Read(context.Background(), c, ns, name, time.Now())
		require.NoError(ct, err)
		r := w.Current
		if revision != 0 {
			r = w.Revision(revision)
		}
		require.NotNil(ct, r)
		pods = nil
		for _, p := range r.Pods {
			if workload.Ready(&p) {
				pods = append(pods, p)
			}
		}
		require.Len(ct, pods, want)
	}, 30*time.Second, 100*time.Millisecond)
	past := metav1.NewTime(time.Now().Add(-workload.Settle - time.Minute))
	for _, p := range pods {
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == corev1.PodReady {
				p.Status.Conditions[i].LastTransitionTime = past
			}
		}
		_, err := c.CoreV1().Pods(ns).UpdateStatus(t.Context(), &p, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
}

// Record records the revisions of Deployment ns/name good now on their
// ReplicaSets (workload.Record), as the deploy service does before it
// rolls out a new revision.
func Record(t testing.TB, c kubernetes.Interface, ns, name string) {
	t.Helper()
	w, err := workload.Read(t.Context(), c, ns, name, time.Now())
	require.NoError(t, err)
	require.NoError(t, workload.Record(t.Context(), c, w, time.Now()))
}

// Crash makes pod ns/name crash-loop as a kubelet reports it: not ready,
// its container waiting in CrashLoopBackOff after restarts.
func Crash(t testing.TB, c kubernetes.Interface, ns, name string) {
	t.Helper()
	p, err := c.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	now := metav1.Now()
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady || p.Status.Conditions[i].Type == corev1.ContainersReady {
			p.Status.Conditions[i].Status, p.Status.Conditions[i].LastTransitionTime = corev1.ConditionFalse, now
		}
	}
	for i := range p.Status.ContainerStatuses {
		cs := &p.Status.ContainerStatuses[i]
		cs.Ready, cs.RestartCount = false, 5
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off restarting failed container"}}
		cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1, FinishedAt: now}}
	}
	_, err = c.CoreV1().Pods(ns).UpdateStatus(t.Context(), p, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// Failing waits until revision of Deployment ns/name has want pods that
// are not ready (a release that crashes or cannot pull its image) and
// that the kubelet (kwok) has reported on. A pod it has not started yet
// is not ready either, but nothing about it says that it fails: an
// analysis reading it then, on a loaded machine, finds nothing to explain.
func Failing(t testing.TB, c kubernetes.Interface, ns, name string, revision int64, want int) {
	t.Helper()
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		w, err := workload.Read(context.Background(), c, ns, name, time.Now())
		require.NoError(ct, err)
		r := w.Revision(revision)
		require.NotNil(ct, r)
		require.Len(ct, r.Failing, want)
		for _, p := range r.Pods {
			if slices.Contains(r.Failing, p.Name) {
				require.NotEmpty(ct, p.Status.ContainerStatuses, "pod %s: not reported on yet", p.Name)
			}
		}
	}, 30*time.Second, 100*time.Millisecond)
}
