package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vigil-ops/vigil/pkg/workload"
)

// RolloutError is a rollout that did not become available; Reason is the
// Kubernetes reason in one word (ImagePullBackOff, CrashLoopBackOff,
// ProgressDeadlineExceeded, Timeout...).
type RolloutError struct {
	Reason  string
	Message string
}

func (e *RolloutError) Error() string { return e.Reason + ": " + e.Message }

// waitingFailures are container states that will not fix themselves
// without a new image or configuration: the rollout fails at once instead
// of waiting out its deadline.
var waitingFailures = map[string]bool{
	"ImagePullBackOff":           true,
	"ErrImagePull":               true,
	"InvalidImageName":           true,
	"CrashLoopBackOff":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
}

// WaitRollout waits until Deployment namespace/name is fully rolled out:
// observed, every replica updated and available, no old replica left, and
// the Available condition true. It fails with a *RolloutError as soon as a
// new pod is stuck in a state that needs a person (see waitingFailures) or
// the Deployment exceeds its progress deadline, and after timeout
// otherwise.
func (c *Client) WaitRollout(ctx context.Context, namespace, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var (
		last     string
		failures int
	)
	for {
		// Each poll has its own bound: near the deadline, the client's
		// rate limiter would refuse calls that the deadline cannot fit.
		pctx, cancel := context.WithTimeout(ctx, requestTimeout)
		done, status, err := c.rolloutStatus(pctx, namespace, name)
		cancel()
		var re *RolloutError
		switch {
		case errors.As(err, &re):
			return err
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			// A blip is tolerated; an API server gone for several polls
			// in a row is the failure.
			if failures++; failures >= maxPollFailures {
				return err
			}
		case done:
			return nil
		default:
			failures, last = 0, status
		}
		if time.Now().After(deadline) {
			return &RolloutError{Reason: "Timeout", Message: fmt.Sprintf("not rolled out after %s: %s", timeout, last)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// maxPollFailures is how many polls in a row may fail before the wait
// gives up on the API server.
const maxPollFailures = 10

// rolloutStatus reports whether the rollout is complete and, when not,
// what it is waiting for.
func (c *Client) rolloutStatus(ctx context.Context, namespace, name string) (bool, string, error) {
	d, err := c.Typed.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, "", fmt.Errorf("get deployment %s/%s: %w", namespace, name, err)
	}
	want := workload.Replicas(d)
	st := d.Status
	if d.Generation > st.ObservedGeneration {
		return false, "the Deployment controller has not seen the change yet", nil
	}
	for _, cond := range st.Conditions {
		if cond.Type == appsv1.DeploymentProgressing && cond.Reason == "ProgressDeadlineExceeded" {
			return false, "", &RolloutError{Reason: "ProgressDeadlineExceeded", Message: cond.Message}
		}
	}
	if st.UpdatedReplicas == want && st.Replicas == want && st.AvailableReplicas == want && available(d) {
		return true, "", nil
	}
	status := fmt.Sprintf("%d of %d replicas updated, %d available", st.UpdatedReplicas, want, st.AvailableReplicas)
	stuck, err := c.newPodProblems(ctx, d)
	if err != nil {
		return false, "", err
	}
	for _, p := range stuck {
		if waitingFailures[p.reason] {
			return false, "", &RolloutError{Reason: p.reason, Message: fmt.Sprintf("pod %s: %s", p.pod, p.message)}
		}
	}
	if len(stuck) > 0 {
		status += fmt.Sprintf("; pod %s: %s", stuck[0].pod, stuck[0].message)
	}
	return false, status, nil
}

func available(d *appsv1.Deployment) bool {
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentAvailable {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

type podProblem struct {
	pod, reason, message string
}

// newPodProblems lists what keeps the pods of the Deployment's current
// ReplicaSet from being ready.
func (c *Client) newPodProblems(ctx context.Context, d *appsv1.Deployment) ([]podProblem, error) {
	w, err := workload.Of(ctx, c.Typed, d, time.Now())
	if err != nil || w.Current == nil {
		return nil, err
	}
	var out []podProblem
	for _, p := range w.Current.Pods {
		if pr, ok := podProblemOf(&p); ok {
			out = append(out, pr)
		}
	}
	return out, nil
}

func podProblemOf(p *corev1.Pod) (podProblem, bool) {
	for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return podProblem{pod: p.Name, reason: w.Reason, message: strings.TrimSpace(w.Reason + " " + w.Message)}, true
		}
		if t := cs.LastTerminationState.Terminated; t != nil && t.Reason == "OOMKilled" && !cs.Ready {
			return podProblem{pod: p.Name, reason: "OOMKilled", message: "container " + cs.Name + " was OOMKilled"}, true
		}
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
			return podProblem{pod: p.Name, reason: cond.Reason, message: "not scheduled: " + cond.Message}, true
		}
	}
	if p.Status.Phase == corev1.PodRunning {
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status != corev1.ConditionTrue {
				return podProblem{pod: p.Name, reason: "NotReady", message: "running but not ready (readiness probe failing)"}, true
			}
		}
	}
	return podProblem{}, false
}
