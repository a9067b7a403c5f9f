package analysis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
	"github.com/vigil-ops/vigil/services/analysis/internal/gather"
	"github.com/vigil-ops/vigil/services/analysis/internal/rules"
)

// The scenario suite (issue 11): each file of testdata/scenarios is an
// incident — the cluster state to create on the real control plane, the
// alert, and the answer a careful SRE would give. The suite measures the
// rules engine on it; docs/benchmarks.md reports the figures and why the
// thresholds are what they are.
const (
	// minAccuracy is the share of scenarios the engine must answer
	// exactly (action, target, parameters, risk and rule).
	minAccuracy = 0.9
	// scenarioParallelism bounds the scenarios in flight: their time is
	// spent waiting for controllers and kwok, not on the 2 cores.
	scenarioParallelism = 8
	// scenarioWait bounds each wait for a state (generous: a loaded CI
	// machine, a crash loop's back-off).
	scenarioWait = 90 * time.Second
)

// scenario is one testdata/scenarios/*.yaml.
type scenario struct {
	name        string
	Description string `json:"description"`
	// Steps are applied in order, each waited for before the next.
	Steps []step `json:"steps"`
	// Elapsed: the alert fires this long after the state was reached (the
	// analysis runs with its clock moved on), for states defined by their
	// age: stuck, wedged, no recent change.
	Elapsed metav1.Duration `json:"elapsed"`
	// Alert are the alert's labels; $NAMESPACE and $POD are replaced by
	// the scenario's namespace and the pod in question.
	Alert  map[string]string `json:"alert"`
	Expect expectation       `json:"expect"`
}

type step struct {
	// Manifests are namespaced objects (YAML documents), applied
	// server-side into the scenario's namespace.
	Manifests string `json:"manifests"`
	// Deploy records each Deployment or StatefulSet of the step as a
	// deployment Vigil made (deploy's events), at the step's end.
	Deploy bool `json:"deploy"`
	// DeletePod deletes the first pod (by name), as `kubectl delete pod`.
	DeletePod bool `json:"deletePod"`
	// MarkUnready turns the first pod's readiness to False, as the kubelet
	// does when its readiness probe fails (kwok runs no probes).
	MarkUnready bool `json:"markUnready"`
	// Until is the state to wait for.
	Until until `json:"until"`
}

// until is a state of the namespace; every field set must hold.
type until struct {
	// Available: every Deployment, StatefulSet and DaemonSet rolled out
	// and available.
	Available bool `json:"available"`
	// Observed: every workload's controller acted on its latest spec.
	Observed bool `json:"observed"`
	// Restarts: some container restarted at least this often.
	Restarts int32 `json:"restarts"`
	// Waiting: some container waits with this reason.
	Waiting string `json:"waiting"`
	// Unready: at least this many pods run without being ready.
	Unready int `json:"unready"`
	// Pending: at least this many pods are pending unscheduled.
	Pending int `json:"pending"`
	// Event: an event with this reason was recorded in the namespace.
	Event string `json:"event"`
	// Deleting: some pod is terminating.
	Deleting bool `json:"deleting"`
}

type expectation struct {
	// Action is a RepairAction without its prefix (NONE, ROLLBACK_DEPLOYMENT...).
	Action string `json:"action"`
	// Target is Kind/name ($POD for the pod in question); empty when the
	// incident has none.
	Target string `json:"target"`
	// Parameters: the revision to roll back to, the memory limit to set,
	// the replicas to scale to.
	Rollback int64  `json:"rollback"`
	Memory   string `json:"memory"`
	Replicas int32  `json:"replicas"`
	Risk     string `json:"risk"`
	// Rule is the rule that should answer.
	Rule string `json:"rule"`
}

func (e expectation) String() string {
	s := e.Action + " " + e.Target
	switch {
	case e.Rollback != 0:
		s += fmt.Sprintf(" rollback=%d", e.Rollback)
	case e.Memory != "":
		s += " memory=" + e.Memory
	case e.Replicas != 0:
		s += fmt.Sprintf(" replicas=%d", e.Replicas)
	}
	return s + " risk=" + e.Risk + " rule=" + e.Rule
}

func loadScenarios(t *testing.T) []*scenario {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.yaml"))
	require.NoError(t, err)
	var out []*scenario
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		sc := &scenario{name: strings.TrimSuffix(filepath.Base(f), ".yaml")}
		require.NoError(t, yaml.UnmarshalStrict(data, sc), f)
		require.NotEmpty(t, sc.Steps, f)
		require.NotEmpty(t, sc.Expect.Action, f)
		require.NotEmpty(t, sc.Expect.Risk, f)
		require.NotEmpty(t, sc.Expect.Rule, f)
		_, ok := typesv1.RepairAction_value["REPAIR_ACTION_"+sc.Expect.Action]
		require.True(t, ok, "%s: action %s", f, sc.Expect.Action)
		_, ok = typesv1.Risk_value["RISK_"+sc.Expect.Risk]
		require.True(t, ok, "%s: risk %s", f, sc.Expect.Risk)
		if sc.Expect.Memory != "" {
			_, err := resource.ParseQuantity(sc.Expect.Memory)
			require.NoError(t, err, f)
		}
		out = append(out, sc)
	}
	return out
}

// scenarioOutcome is what the engine answered on a scenario.
type scenarioOutcome struct {
	got     expectation
	summary string
	err     error
}

// TestScenarios runs the rules engine on every scenario of the suite and
// fails when it answers fewer than minAccuracy of them right, or any
// where the right answer is NONE wrong: acting where a person must
// decide is the expensive mistake.
func TestScenarios(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	scenarios := loadScenarios(t)
	require.GreaterOrEqual(t, len(scenarios), 30)

	// Dozens of scenarios poll at once: client-go's default rate limit (5
	// requests/s) would be what the suite waits on.
	cfg := rest.CopyConfig(k.Config)
	cfg.QPS, cfg.Burst = 200, 400
	kc, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kc.Discovery()))
	r := &runner{kc: kc, dyn: dyn, mapper: mapper}

	outcomes := make([]scenarioOutcome, len(scenarios))
	var g errgroup.Group
	g.SetLimit(scenarioParallelism)
	var mu sync.Mutex
	for i, sc := range scenarios {
		g.Go(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			ns, cleanup, err := r.namespace(ctx, sc.name)
			if err == nil {
				mu.Lock()
				t.Cleanup(cleanup)
				mu.Unlock()
				outcomes[i] = r.run(ctx, ns, sc)
			} else {
				outcomes[i].err = err
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())

	var right, nones, rightNones int
	var mismatches []string
	for i, sc := range scenarios {
		o := outcomes[i]
		t.Run(sc.name, func(t *testing.T) {
			// A scenario that could not be set up is a broken test, not a
			// wrong answer.
			require.NoError(t, o.err, "setting up the scenario")
			ok := o.got == sc.Expect
			if sc.Expect.Action == "NONE" {
				nones++
			}
			if ok {
				right++
				if sc.Expect.Action == "NONE" {
					rightNones++
				}
				t.Logf("ok: %s", o.got)
				return
			}
			mismatches = append(mismatches, fmt.Sprintf("%s: want %s, got %s (%s)", sc.name, sc.Expect, o.got, o.summary))
			t.Logf("MISMATCH: want %s\n\tgot %s\n\t%s", sc.Expect, o.got, o.summary)
		})
	}
	accuracy := float64(right) / float64(len(scenarios))
	t.Logf("rules engine on %d scenarios: %d right (%.1f %%); NONE cases %d/%d", len(scenarios), right, 100*accuracy, rightNones, nones)
	require.GreaterOrEqual(t, nones, 8, "at least 8 scenarios where the right answer is NONE")
	require.Equal(t, nones, rightNones, "every NONE case right; mismatches:\n%s", strings.Join(mismatches, "\n"))
	require.GreaterOrEqual(t, accuracy, minAccuracy, "accuracy; mismatches:\n%s", strings.Join(mismatches, "\n"))
}

type runner struct {
	kc     kubernetes.Interface
	dyn    dynamic.Interface
	mapper meta.RESTMapper
	// mapperMu: the deferred mapper resets itself on a miss.
	mapperMu sync.Mutex
}

// namespace creates the scenario's namespace; cleanup releases the pods
// a scenario left terminating and deletes it.
func (r *runner) namespace(ctx context.Context, name string) (string, func(), error) {
	ns, err := r.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "sc-" + name[:min(len(name), 40)] + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", nil, fmt.Errorf("create namespace: %w", err)
	}
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if pods, err := r.kc.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{}); err == nil {
			for _, p := range pods.Items {
				if len(p.Finalizers) > 0 {
					_, _ = r.kc.CoreV1().Pods(ns.Name).Patch(ctx, p.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
				}
			}
		}
		_ = r.kc.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
	}
	if err := kubedev.WaitForServiceAccount(ctx, r.kc, ns.Name); err != nil {
		cleanup()
		return "", nil, err
	}
	return ns.Name, cleanup, nil
}

// run creates the scenario's state in ns, raises its alert and analyses
// it as the service does: resolve the target, gather, the rules engine
// through the chain that checks it and sets the risk.
func (r *runner) run(ctx context.Context, ns string, sc *scenario) scenarioOutcome {
	var deploys []evidence.Deploy
	var pod string
	for i, s := range sc.Steps {
		objs, err := r.apply(ctx, ns, s.Manifests)
		if err != nil {
			return scenarioOutcome{err: fmt.Errorf("step %d: %w", i+1, err)}
		}
		if s.DeletePod || s.MarkUnready {
			if pod, err = r.firstPod(ctx, ns); err != nil {
				return scenarioOutcome{err: fmt.Errorf("step %d: %w", i+1, err)}
			}
		}
		if s.DeletePod {
			if err := r.kc.CoreV1().Pods(ns).Delete(ctx, pod, metav1.DeleteOptions{}); err != nil {
				return scenarioOutcome{err: fmt.Errorf("step %d: delete pod %s: %w", i+1, pod, err)}
			}
		}
		if s.MarkUnready {
			if err := r.markUnready(ctx, ns, pod); err != nil {
				return scenarioOutcome{err: fmt.Errorf("step %d: %w", i+1, err)}
			}
		}
		if err := r.wait(ctx, ns, s.Until); err != nil {
			return scenarioOutcome{err: fmt.Errorf("step %d: %w", i+1, err)}
		}
		if s.Until.Available {
			if err := r.settle(ctx, ns); err != nil {
				return scenarioOutcome{err: fmt.Errorf("step %d: %w", i+1, err)}
			}
		}
		if s.Deploy {
			ds, err := r.deploys(ctx, ns, objs, i)
			if err != nil {
				return scenarioOutcome{err: fmt.Errorf("step %d: %w", i+1, err)}
			}
			deploys = append(ds, deploys...) // newest first
		}
	}
	if pod == "" {
		var err error
		if pod, err = r.podInQuestion(ctx, ns); err != nil {
			return scenarioOutcome{err: err}
		}
	}

	opened := time.Now().Add(sc.Elapsed.Duration)
	labels := map[string]string{}
	for k, v := range sc.Alert {
		labels[k] = strings.NewReplacer("$NAMESPACE", ns, "$POD", pod).Replace(v)
	}
	b := &evidence.Bundle{Incident: evidence.Incident{
		ID: sc.name, Title: labels["alertname"] + " in " + ns, Severity: "critical", OpenedAt: opened,
		Labels: labels, Annotations: map[string]string{"description": sc.Description},
	}}
	b.Items = append(b.Items, evidence.Item{ID: "alert/labels", Source: "alerts", Summary: fmt.Sprint(labels), At: opened})
	ref, why, err := gather.Resolve(ctx, r.kc, "main", subject.NewIndex(nil, nil).Resolve(labels))
	switch {
	case err != nil:
		b.Gaps = append(b.Gaps, "target: "+err.Error())
	case ref == nil:
		b.Gaps = append(b.Gaps, "target: "+why)
	default:
		b.Target = ref
		gather.Gather(ctx, r.kc, ref, gather.Limits{}, b, opened)
		for _, d := range deploys {
			b.Deploys = append(b.Deploys, d)
			b.Items = append(b.Items, evidence.Item{ID: "deploy/" + d.ID, Source: "deploy:events", Summary: d.Image, At: d.At})
		}
	}
	lim := engine.DefaultLimits()
	chain := engine.NewChain(rules.New(rules.Options{Limits: lim, Now: func() time.Time { return time.Now().Add(sc.Elapsed.Duration) }}), nil, 0, lim)
	res, _, err := chain.Analyze(ctx, b)
	if err != nil {
		return scenarioOutcome{err: err}
	}
	p := res.Proposal
	got := expectation{
		Action: strings.TrimPrefix(p.GetAction().String(), "REPAIR_ACTION_"),
		Risk:   strings.TrimPrefix(res.Risk.String(), "RISK_"),
		Rule:   res.Rule,
	}
	if p.GetTarget().GetKind() != "" {
		got.Target = p.GetTarget().GetKind() + "/" + p.GetTarget().GetName()
		if got.Target == strings.ReplaceAll(sc.Expect.Target, "$POD", pod) {
			got.Target = sc.Expect.Target // the pod in question, by whatever name it got
		}
	}
	got.Rollback = p.GetRollback().GetRevision()
	if m := p.GetMemoryLimit().GetLimitBytes(); m != 0 {
		got.Memory = resource.NewQuantity(m, resource.BinarySI).String()
	}
	got.Replicas = p.GetScale().GetReplicas()
	if sc.Expect.Memory != "" && got.Memory != "" {
		// Compare quantities, not spellings.
		want, have := resource.MustParse(sc.Expect.Memory), resource.MustParse(got.Memory)
		if have.Cmp(want) == 0 {
			got.Memory = sc.Expect.Memory
		}
	}
	return scenarioOutcome{got: got, summary: res.Summary + " [" + strings.Join(b.Gaps, "; ") + "]"}
}

// settle dates the readiness of the ready pods of ns back past the settle
// time (pkg/workload): a state a step waited for as available is one that
// held, as a release serves for a while before the next. kwok makes pods
// ready at once and writes nothing later, as a kubelet would not either.
func (r *runner) settle(ctx context.Context, ns string) error {
	pods, err := r.kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	past := metav1.NewTime(time.Now().Add(-workload.Settle - time.Minute))
	for _, p := range pods.Items {
		if !podReady(p) {
			continue
		}
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == corev1.PodReady {
				p.Status.Conditions[i].LastTransitionTime = past
			}
		}
		if _, err := r.kc.CoreV1().Pods(ns).UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("settle pod %s: %w", p.Name, err)
		}
	}
	return nil
}

// apply server-side applies the documents of manifests into ns.
func (r *runner) apply(ctx context.Context, ns, manifests string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var out []*unstructured.Unstructured
	for {
		obj := map[string]any{}
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("manifests: %w", err)
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		gvk := u.GroupVersionKind()
		r.mapperMu.Lock()
		m, err := r.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		r.mapperMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", gvk, err)
		}
		if m.Scope.Name() != meta.RESTScopeNameNamespace {
			return nil, fmt.Errorf("%s %s: only namespaced objects keep scenarios apart", gvk.Kind, u.GetName())
		}
		u.SetNamespace(ns)
		data, err := u.MarshalJSON()
		if err != nil {
			return nil, err
		}
		res, err := r.dyn.Resource(m.Resource).Namespace(ns).Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "scenario", Force: ptr.To(true)})
		if err != nil {
			return nil, fmt.Errorf("apply %s %s: %w", gvk.Kind, u.GetName(), err)
		}
		if gvk.Kind == "ResourceQuota" {
			// Admission counts against a quota only once its controller
			// has computed it.
			if err := poll(ctx, "quota "+u.GetName()+" computed", func(ctx context.Context) (bool, error) {
				q, err := r.kc.CoreV1().ResourceQuotas(ns).Get(ctx, u.GetName(), metav1.GetOptions{})
				return err == nil && len(q.Status.Hard) > 0, err
			}); err != nil {
				return nil, err
			}
		}
		out = append(out, res)
	}
}

func poll(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, scenarioWait, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			last = err.Error()
		}
		return ok, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w %s", what, err, last)
	}
	return nil
}

// wait waits until u holds in ns.
func (r *runner) wait(ctx context.Context, ns string, u until) error {
	return poll(ctx, fmt.Sprintf("%+v", u), func(ctx context.Context) (bool, error) {
		pods, err := r.kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		if u.Available || u.Observed {
			if ok, err := r.rolledOut(ctx, ns, u.Available); !ok || err != nil {
				return false, err
			}
		}
		var restarts int32
		var waiting, deleting bool
		unready, pending := 0, 0
		for _, p := range pods.Items {
			deleting = deleting || p.DeletionTimestamp != nil
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && !podReady(p) {
				unready++
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
					pending++
				}
			}
			for _, cs := range p.Status.ContainerStatuses {
				restarts = max(restarts, cs.RestartCount)
				waiting = waiting || (cs.State.Waiting != nil && cs.State.Waiting.Reason == u.Waiting)
			}
		}
		if restarts < u.Restarts || unready < u.Unready || pending < u.Pending || (u.Waiting != "" && !waiting) || (u.Deleting && !deleting) {
			return false, nil
		}
		if u.Event != "" {
			evs, err := r.kc.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			return slices.ContainsFunc(evs.Items, func(e corev1.Event) bool { return e.Reason == u.Event }), nil
		}
		return true, nil
	})
}

// rolledOut: every workload's controller saw its latest spec, and with
// available, every one has all its replicas updated and available.
func (r *runner) rolledOut(ctx context.Context, ns string, available bool) (bool, error) {
	deps, err := r.kc.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, d := range deps.Items {
		want := ptr.Deref(d.Spec.Replicas, 1)
		if d.Status.ObservedGeneration < d.Generation || d.Status.Replicas != want && !available {
			return false, nil
		}
		if available && (d.Status.UpdatedReplicas != want || d.Status.AvailableReplicas != want || d.Status.Replicas != want) {
			return false, nil
		}
	}
	sts, err := r.kc.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, s := range sts.Items {
		want := ptr.Deref(s.Spec.Replicas, 1)
		if s.Status.ObservedGeneration < s.Generation || s.Status.Replicas != want && !available {
			return false, nil
		}
		if available && (s.Status.ReadyReplicas != want || s.Status.UpdatedReplicas != want) {
			return false, nil
		}
	}
	dss, err := r.kc.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, d := range dss.Items {
		if d.Status.ObservedGeneration < d.Generation {
			return false, nil
		}
		if available && (d.Status.DesiredNumberScheduled == 0 || d.Status.NumberAvailable != d.Status.DesiredNumberScheduled ||
			d.Status.UpdatedNumberScheduled != d.Status.DesiredNumberScheduled) {
			return false, nil
		}
	}
	return true, nil
}

func podReady(p corev1.Pod) bool {
	return slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
	})
}

func (r *runner) sortedPods(ctx context.Context, ns string) ([]corev1.Pod, error) {
	pods, err := r.kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	return pods.Items, nil
}

func (r *runner) firstPod(ctx context.Context, ns string) (string, error) {
	pods, err := r.sortedPods(ctx, ns)
	if err != nil {
		return "", err
	}
	if len(pods) == 0 {
		return "", errors.New("no pod")
	}
	return pods[0].Name, nil
}

// podInQuestion is the pod an alert about a pod would name: the first
// terminating or unready one, else the first.
func (r *runner) podInQuestion(ctx context.Context, ns string) (string, error) {
	pods, err := r.sortedPods(ctx, ns)
	if err != nil || len(pods) == 0 {
		return "", err
	}
	if i := slices.IndexFunc(pods, func(p corev1.Pod) bool { return p.DeletionTimestamp != nil || !podReady(p) }); i >= 0 {
		return pods[i].Name, nil
	}
	return pods[0].Name, nil
}

// markUnready reports pod's containers running but unready, as the
// kubelet does once a readiness probe fails.
func (r *runner) markUnready(ctx context.Context, ns, pod string) error {
	return poll(ctx, "pod "+pod+" unready", func(ctx context.Context) (bool, error) {
		p, err := r.kc.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if !podReady(*p) {
			return false, nil // kwok has not made it Running and Ready yet
		}
		now := metav1.Now()
		for i, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
				p.Status.Conditions[i].Status, p.Status.Conditions[i].Reason = corev1.ConditionFalse, "ContainersNotReady"
				p.Status.Conditions[i].LastTransitionTime = now
			}
		}
		for i := range p.Status.ContainerStatuses {
			p.Status.ContainerStatuses[i].Ready = false
		}
		_, err = r.kc.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err == nil, err
	})
}

// deploys are the step's workloads as deploy's events would have recorded
// them: one requested deployment each, at the current revision.
func (r *runner) deploys(ctx context.Context, ns string, objs []*unstructured.Unstructured, stepIndex int) ([]evidence.Deploy, error) {
	var out []evidence.Deploy
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment":
			d, err := r.kc.AppsV1().Deployments(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			var rev int64
			_, _ = fmt.Sscan(d.Annotations["deployment.kubernetes.io/revision"], &rev)
			out = append(out, evidence.Deploy{
				ID: fmt.Sprintf("%s-%d", o.GetName(), stepIndex+1), Revision: rev, Image: d.Spec.Template.Spec.Containers[0].Image,
				Status: "requested", At: time.Now(),
			})
		case "StatefulSet":
			s, err := r.kc.AppsV1().StatefulSets(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			out = append(out, evidence.Deploy{
				ID: fmt.Sprintf("%s-%d", o.GetName(), stepIndex+1), Image: s.Spec.Template.Spec.Containers[0].Image,
				Status: "requested", At: time.Now(),
			})
		}
	}
	return out, nil
}
