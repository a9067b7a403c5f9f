package kubedev_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func deployment(name, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas:                ptr.To[int32](2),
			ProgressDeadlineSeconds: ptr.To[int32](600),
			Selector:                &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: image,
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
						HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)},
					}},
				}}},
			},
		},
	}
}

func pods(t *testing.T, cs kubernetes.Interface, ns, app string) []corev1.Pod {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=" + app})
	require.NoError(t, err)
	return list.Items
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// The control plane is a real one: the Deployment controller makes a
// ReplicaSet, the scheduler places its pods on kwok's nodes, kwok makes them
// Running and Ready, and the Deployment becomes Available.
func TestDeploymentRollsOut(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	cs := k.Clientset
	_, err := cs.AppsV1().Deployments(ns).Create(t.Context(), deployment("web", "registry.example/web:1"), metav1.CreateOptions{})
	require.NoError(t, err)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
		require.NoError(c, err)
		assert.Equal(c, int32(2), d.Status.AvailableReplicas)
		assert.Equal(c, int32(2), d.Status.UpdatedReplicas)
	}, time.Minute, 100*time.Millisecond)

	ps := pods(t, cs, ns, "web")
	require.Len(t, ps, 2)
	for _, p := range ps {
		assert.NotEmpty(t, p.Spec.NodeName, "scheduled")
		assert.Equal(t, corev1.PodRunning, p.Status.Phase)
		assert.True(t, ready(p))
		assert.NotEmpty(t, p.Status.PodIP)
	}
	// kwok serves container logs through the API server's pods/log.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, []string{"starting", "listening on :8080"}, podLogs(c, cs, ns, ps[0].Name, false))
	}, time.Minute, 100*time.Millisecond)
}

// podLogs reads the lines container app of pod name logged.
func podLogs(c require.TestingT, cs kubernetes.Interface, ns, name string, previous bool) []string {
	b, err := cs.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{Container: "app", Previous: previous}).DoRaw(context.Background())
	require.NoError(c, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.NotEmpty(c, lines)
	return lines
}

// An image on UnreadyImageHost runs and never becomes Ready, so the
// rollout never completes, as with a failing readiness probe.
func TestUnreadyImageNeverBecomesReady(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	cs := k.Clientset
	_, err := cs.AppsV1().Deployments(ns).Create(t.Context(), deployment("stuck", kubedev.UnreadyImageHost+"/web:1"), metav1.CreateOptions{})
	require.NoError(t, err)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		ps := pods(t, cs, ns, "stuck")
		require.Len(c, ps, 2)
		for _, p := range ps {
			assert.Equal(c, corev1.PodRunning, p.Status.Phase)
		}
	}, time.Minute, 100*time.Millisecond)
	for _, p := range pods(t, cs, ns, "stuck") {
		assert.False(t, ready(p), "pod %s", p.Name)
	}
	d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "stuck", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Zero(t, d.Status.AvailableReplicas)
}

// An image on PullFailImageHost stays Pending in ImagePullBackOff.
func TestPullFailImageBacksOff(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	cs := k.Clientset
	_, err := cs.AppsV1().Deployments(ns).Create(t.Context(), deployment("nopull", kubedev.PullFailImageHost+"/web:1"), metav1.CreateOptions{})
	require.NoError(t, err)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		ps := pods(t, cs, ns, "nopull")
		require.Len(c, ps, 2)
		for _, p := range ps {
			assert.Equal(c, corev1.PodPending, p.Status.Phase)
			require.Len(c, p.Status.ContainerStatuses, 1)
			w := p.Status.ContainerStatuses[0].State.Waiting
			require.NotNil(c, w)
			assert.Equal(c, "ImagePullBackOff", w.Reason)
		}
	}, time.Minute, 100*time.Millisecond)
}

// containerStep is what a watcher sees of a container in one pod update.
type containerStep struct {
	State    string // running, terminated or waiting
	Reason   string
	ExitCode int32
	Restarts int32
}

func stepOf(s corev1.ContainerStatus) containerStep {
	switch {
	case s.State.Terminated != nil:
		return containerStep{"terminated", s.State.Terminated.Reason, s.State.Terminated.ExitCode, s.RestartCount}
	case s.State.Waiting != nil:
		return containerStep{"waiting", s.State.Waiting.Reason, 0, s.RestartCount}
	case s.State.Running != nil:
		return containerStep{"running", "", 0, s.RestartCount}
	}
	return containerStep{State: "unknown", Restarts: s.RestartCount}
}

// Images on CrashImageHost and OOMKillImageHost crash-loop the way the
// kubelet reports it: the container runs, terminates with the reason and
// exit code, restarts at once the first time and after a CrashLoopBackOff
// from then on, with the termination in lastState and a growing restart
// count. The pods never become Ready and get Warning BackOff events.
func TestFailingImagesCrashLoop(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		host     string
		reason   string
		exitCode int32
		lastLog  string
	}{
		{name: "crash", host: kubedev.CrashImageHost, reason: "Error", exitCode: 1, lastLog: "error: load config: required variable DATABASE_URL is not set"},
		{name: "oomkill", host: kubedev.OOMKillImageHost, reason: "OOMKilled", exitCode: 137, lastLog: "fatal error: runtime: out of memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := testkit.SharedKube(t)
			ns := k.Namespace(t)
			cs := k.Clientset
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "app=" + tc.name})
			require.NoError(t, err)
			defer w.Stop()
			_, err = cs.AppsV1().Deployments(ns).Create(t.Context(), deployment(tc.name, tc.host+"/web:1"), metav1.CreateOptions{})
			require.NoError(t, err)

			terminated := containerStep{"terminated", tc.reason, tc.exitCode, 0}
			want := []containerStep{{State: "running"}, terminated}
			for restarts := int32(1); restarts <= 3; restarts++ {
				terminated.Restarts = restarts
				want = append(want, containerStep{State: "running", Restarts: restarts})
				if restarts < 3 {
					want = append(want, terminated, containerStep{"waiting", "CrashLoopBackOff", 0, restarts})
				}
			}
			// Every update of the pods, in order, until one of them has
			// restarted three times.
			seen := map[string][]containerStep{}
			var name string
			for name == "" {
				ev, ok := <-w.ResultChan()
				require.True(t, ok, "watch ended before a pod restarted 3 times: %v", seen)
				p, ok := ev.Object.(*corev1.Pod)
				require.True(t, ok, "watch event %s: %v", ev.Type, ev.Object)
				if len(p.Status.ContainerStatuses) == 0 {
					continue
				}
				require.Len(t, p.Status.ContainerStatuses, 1)
				step := stepOf(p.Status.ContainerStatuses[0])
				if steps := seen[p.Name]; len(steps) == 0 || steps[len(steps)-1] != step {
					seen[p.Name] = append(steps, step)
				}
				if len(seen[p.Name]) == len(want) {
					name = p.Name
				}
			}
			require.Equal(t, want, seen[name], "container states of pod %s", name)

			p, err := cs.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, corev1.PodRunning, p.Status.Phase)
			assert.False(t, ready(*p))
			s := p.Status.ContainerStatuses[0]
			assert.False(t, s.Ready)
			assert.GreaterOrEqual(t, s.RestartCount, int32(3))
			last := s.LastTerminationState.Terminated
			require.NotNil(t, last, "lastState of %+v", s)
			assert.Equal(t, tc.reason, last.Reason)
			assert.Equal(t, tc.exitCode, last.ExitCode)
			assert.False(t, last.StartedAt.After(last.FinishedAt.Time), "started %s, finished %s", last.StartedAt, last.FinishedAt)

			// The back-off announced in the state, as the kubelet words it.
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				p, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
				require.NoError(c, err)
				w := p.Status.ContainerStatuses[0].State.Waiting
				require.NotNil(c, w)
				assert.Equal(c, "CrashLoopBackOff", w.Reason)
				assert.Regexp(c, `^back-off \S+ restarting failed container=app pod=`+name+"_"+ns+`\(`+string(p.UID)+`\)$`, w.Message)
			}, time.Minute, 50*time.Millisecond)

			events, err := cs.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
			require.NoError(t, err)
			var backOff []string
			for _, e := range events.Items {
				if e.Type == corev1.EventTypeWarning && e.Reason == "BackOff" {
					backOff = append(backOff, e.Message)
				}
			}
			require.NotEmpty(t, backOff, "Warning BackOff events on %s: %v", name, events.Items)
			assert.Contains(t, backOff[0], "Back-off restarting failed container")

			// What the container printed before it died, through the API
			// server's pods/log (kwok serves it), now and for the previous
			// container, as `kubectl logs [--previous]` reads it.
			for _, previous := range []bool{false, true} {
				require.EventuallyWithT(t, func(c *assert.CollectT) {
					logs := podLogs(c, cs, ns, name, previous)
					assert.Equal(c, tc.lastLog, logs[len(logs)-1], "previous=%t: %q", previous, logs)
				}, time.Minute, 100*time.Millisecond)
			}

			d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), tc.name, metav1.GetOptions{})
			require.NoError(t, err)
			assert.Zero(t, d.Status.AvailableReplicas)
		})
	}
}

// Only the containers on a failing host crash: a sidecar keeps running,
// Ready, and logs like any container.
func TestCrashImageSparesOtherContainers(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	cs := k.Clientset
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pair"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "proxy", Image: "registry.example/proxy:1"},
			{Name: "app", Image: kubedev.OOMKillImageHost + "/web:1"},
		}},
	}
	_, err := cs.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	require.NoError(t, err)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		p, err := cs.CoreV1().Pods(ns).Get(context.Background(), "pair", metav1.GetOptions{})
		require.NoError(c, err)
		require.Len(c, p.Status.ContainerStatuses, 2)
		statuses := map[string]corev1.ContainerStatus{}
		for _, s := range p.Status.ContainerStatuses {
			statuses[s.Name] = s
		}
		app := statuses["app"]
		assert.GreaterOrEqual(c, app.RestartCount, int32(2))
		require.NotNil(c, app.LastTerminationState.Terminated)
		assert.Equal(c, "OOMKilled", app.LastTerminationState.Terminated.Reason)
		proxy := statuses["proxy"]
		assert.True(c, proxy.Ready)
		assert.Zero(c, proxy.RestartCount)
		assert.NotNil(c, proxy.State.Running)
		assert.False(c, ready(*p))
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady {
				assert.Equal(c, "containers with unready status: [app]", cond.Message)
			}
		}
	}, time.Minute, 100*time.Millisecond)

	b, err := cs.CoreV1().Pods(ns).GetLogs("pair", &corev1.PodLogOptions{Container: "proxy"}).DoRaw(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "starting\nlistening on :8080\n", string(b))
}

// With restartPolicy Never a crashing container is not restarted: the pod
// fails, as a Job's pod does.
func TestCrashImageWithoutRestartFails(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	cs := k.Clientset
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "once"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "app", Image: kubedev.CrashImageHost + "/job:1"}},
		},
	}
	_, err := cs.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	require.NoError(t, err)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		p, err := cs.CoreV1().Pods(ns).Get(context.Background(), "once", metav1.GetOptions{})
		require.NoError(c, err)
		assert.Equal(c, corev1.PodFailed, p.Status.Phase)
		require.Len(c, p.Status.ContainerStatuses, 1)
		s := p.Status.ContainerStatuses[0]
		assert.Zero(c, s.RestartCount)
		require.NotNil(c, s.State.Terminated)
		assert.Equal(c, "Error", s.State.Terminated.Reason)
		assert.Equal(c, int32(1), s.State.Terminated.ExitCode)
	}, time.Minute, 100*time.Millisecond)
}

// Missing binaries are an error that says how to get them.
func TestCheckBinariesSaysHowToBuild(t *testing.T) {
	t.Parallel()
	err := kubedev.CheckBinaries(t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "make k8s-bins")
	assert.Contains(t, err.Error(), "kube-apiserver")
	require.NoError(t, kubedev.CheckBinaries(testkit.KubeBinDir()))
}

// An image on ConfigErrorImageHost stays Pending with its container in
// CreateContainerConfigError, naming the Secret or ConfigMap it references
// as the kubelet does when that is missing; other containers of the pod
// wait to be created.
func TestConfigErrorImageNamesTheMissingReference(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	cs := k.Clientset
	for _, tc := range []struct {
		name string
		ref  func(*corev1.Container)
		want string
	}{
		{"secret-env", func(c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "PLAIN", Value: "x"}, {Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db-credentials"}, Key: "password"},
			}}}
		}, `secret "db-credentials" not found`},
		{"configmap-envfrom", func(c *corev1.Container) {
			c.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
		}, `configmap "settings" not found`},
	} {
		d := deployment(tc.name, kubedev.ConfigErrorImageHost+"/web:1")
		d.Spec.Replicas = ptr.To[int32](1)
		c := &d.Spec.Template.Spec.Containers[0]
		tc.ref(c)
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: "sidecar", Image: "registry.example/proxy:1"})
		_, err := cs.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{})
		require.NoError(t, err)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			ps := pods(t, cs, ns, tc.name)
			require.Len(c, ps, 1)
			assert.Equal(c, corev1.PodPending, ps[0].Status.Phase)
			require.Len(c, ps[0].Status.ContainerStatuses, 2)
			for _, s := range ps[0].Status.ContainerStatuses {
				require.NotNil(c, s.State.Waiting, s.Name)
				if s.Name == "app" {
					assert.Equal(c, "CreateContainerConfigError", s.State.Waiting.Reason)
					assert.Equal(c, tc.want, s.State.Waiting.Message)
				} else {
					assert.Equal(c, "ContainerCreating", s.State.Waiting.Reason)
				}
			}
		}, time.Minute, 100*time.Millisecond, tc.name)
	}
}
