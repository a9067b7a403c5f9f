package render

import (
	"fmt"
	"maps"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
)

// Labels and annotations Vigil puts on what it renders.
const (
	LabelManagedBy        = "app.kubernetes.io/managed-by"
	LabelApp              = "vigil.dev/app"
	AnnotationRevision    = "vigil.dev/revision"
	AnnotationOwner       = "vigil.dev/owner"
	AnnotationConfigHash  = "vigil.dev/config-hash"
	AnnotationDisplayName = "vigil.dev/display-name"
	annotationRedacted    = "vigil.dev/secret-values"
)

// runAs is the user and group apps run as: any non-root id works for the
// restricted Pod Security profile; a fixed one makes volume ownership
// predictable.
const runAs = 10001

type renderer struct {
	app      App
	opts     Options
	fw       framework
	plan     plan
	port     int32
	replicas int32
	env      map[string]string
	hash     string
}

func (r *renderer) labels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     r.app.Name,
		"app.kubernetes.io/instance": r.app.Name,
		LabelManagedBy:               "vigil",
		LabelApp:                     r.app.Name,
	}
}

func (r *renderer) selector() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     r.app.Name,
		"app.kubernetes.io/instance": r.app.Name,
	}
}

func (r *renderer) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: r.app.Namespace, Labels: r.labels()}
}

func (r *renderer) manifests() (*Manifests, error) {
	m := &Manifests{ConfigHash: r.hash}
	steps := []struct {
		name    string
		objects []runtime.Object
	}{
		{StepCreateNamespace, []runtime.Object{r.namespace(), r.serviceAccount(), r.networkPolicy()}},
		{StepApplyConfig, r.config()},
		{StepDeployApp, r.workload()},
		{StepConfigureIngress, r.ingress(false)},
		{StepSetupTLS, r.ingress(true)},
		{StepConfigureMonitoring, nil},
		{StepEnableAutoRepair, nil},
	}
	for _, st := range steps {
		step := Step{Name: st.name}
		for _, o := range st.objects {
			u, err := toUnstructured(o)
			if err != nil {
				return nil, err
			}
			step.Objects = append(step.Objects, u)
		}
		if st.name == StepConfigureMonitoring {
			step.Objects = r.monitoring()
		}
		m.Steps = append(m.Steps, step)
	}
	return m, nil
}

// toUnstructured converts a typed object, with its apiVersion and kind,
// dropping what the API server sets (creationTimestamp, status).
func toUnstructured(o runtime.Object) (*unstructured.Unstructured, error) {
	gvks, _, err := scheme.Scheme.ObjectKinds(o)
	if err != nil || len(gvks) == 0 {
		return nil, fmt.Errorf("render: no kind for %T: %w", o, err)
	}
	gvk := gvks[0]
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	if spec, ok := u.Object["spec"].(map[string]any); ok && len(spec) == 0 {
		delete(u.Object, "spec")
	}
	return u, nil
}

func (r *renderer) namespace() *corev1.Namespace {
	labels := r.labels()
	// Pods that break the restricted profile are refused at admission,
	// whoever creates them.
	labels["pod-security.kubernetes.io/enforce"] = "restricted"
	labels["pod-security.kubernetes.io/enforce-version"] = "latest"
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.app.Namespace, Labels: labels}}
	if r.app.DisplayName != "" {
		ns.Annotations = map[string]string{AnnotationDisplayName: r.app.DisplayName}
	}
	return ns
}

func (r *renderer) serviceAccount() *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: r.meta(r.app.Name), AutomountServiceAccountToken: ptr.To(false)}
}

// networkPolicy isolates the namespace: in, only the app's own namespace,
// the ingress controller and Prometheus (to the app's port); out, DNS
// anywhere and any address but the cloud metadata service, whose
// credentials an app must not reach. Egress stays open otherwise because
// apps call databases and APIs Vigil cannot know.
func (r *renderer) networkPolicy() *networkingv1.NetworkPolicy {
	port := intstr.FromInt32(r.port)
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	dns := intstr.FromInt32(53)
	fromNamespace := func(ns string) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns},
		}}
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: r.meta(r.app.Name + "-isolation"),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
				{
					From:  []networkingv1.NetworkPolicyPeer{fromNamespace(r.opts.IngressNamespace), fromNamespace(r.opts.MonitoringNamespace)},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
				},
			},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}}},
				{To: []networkingv1.NetworkPolicyPeer{
					{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"169.254.169.254/32"}}},
					{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: []string{"fd00:ec2::254/128"}}},
				}},
			},
		},
	}
}

func (r *renderer) configMapName() string { return r.app.Name + "-config" }
func (r *renderer) secretName() string    { return r.app.Name + "-secrets" }

func (r *renderer) config() []runtime.Object {
	objs := []runtime.Object{&corev1.ConfigMap{ObjectMeta: r.meta(r.configMapName()), Data: maps.Clone(r.env)}}
	if len(r.app.Secrets) == 0 {
		return objs
	}
	s := &corev1.Secret{ObjectMeta: r.meta(r.secretName()), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{}}
	for k, v := range r.app.Secrets {
		if r.opts.RedactSecrets {
			v = ""
		}
		s.Data[k] = []byte(v)
	}
	if r.opts.RedactSecrets {
		s.Annotations = map[string]string{annotationRedacted: "set by Vigil when it applies this Secret"}
	}
	return append(objs, s)
}

func (r *renderer) resources() corev1.ResourceRequirements {
	list := func(m map[string]string) corev1.ResourceList {
		out := corev1.ResourceList{}
		for k, v := range m {
			out[corev1.ResourceName(k)] = resource.MustParse(v)
		}
		return out
	}
	return corev1.ResourceRequirements{Requests: list(r.plan.Requests), Limits: list(r.plan.Limits)}
}

func (r *renderer) workload() []runtime.Object {
	probe := func(period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: r.fw.HealthPath, Port: intstr.FromString("http"),
			}},
			PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 2,
		}
	}
	envFrom := []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: r.configMapName()},
	}}}
	if len(r.app.Secrets) > 0 {
		envFrom = append(envFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: r.secretName()},
		}})
	}
	annotations := map[string]string{AnnotationRevision: strconv.FormatInt(r.app.Revision, 10)}
	if r.app.Owner != "" {
		annotations[AnnotationOwner] = r.app.Owner
	}
	maxSurge, maxUnavailable := intstr.FromInt32(1), intstr.FromInt32(0)
	dm := r.meta(r.app.Name)
	dm.Annotations = annotations
	dep := &appsv1.Deployment{
		ObjectMeta: dm,
		Spec: appsv1.DeploymentSpec{
			Replicas:                &r.replicas,
			RevisionHistoryLimit:    ptr.To[int32](10),
			ProgressDeadlineSeconds: ptr.To[int32](600),
			Selector:                &metav1.LabelSelector{MatchLabels: r.selector()},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				// Never below the desired count: new pods must be ready
				// before old ones go.
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &maxSurge, MaxUnavailable: &maxUnavailable},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels: r.labels(),
					Annotations: map[string]string{
						"prometheus.io/scrape": "true",
						"prometheus.io/port":   strconv.Itoa(int(r.port)),
						"prometheus.io/path":   "/metrics",
						AnnotationConfigHash:   r.hash,
					},
				},
				Spec: corev1.PodSpec{
					ServiceAccountName:            r.app.Name,
					AutomountServiceAccountToken:  ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To[int64](30),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](runAs),
						RunAsGroup:     ptr.To[int64](runAs),
						FSGroup:        ptr.To[int64](runAs),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						// Spread replicas across nodes when there are enough.
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
							Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{
								TopologyKey:   "kubernetes.io/hostname",
								LabelSelector: &metav1.LabelSelector{MatchLabels: r.selector()},
							},
						}},
					}},
					Containers: []corev1.Container{{
						Name:      "app",
						Image:     r.app.Image,
						Ports:     []corev1.ContainerPort{{Name: "http", ContainerPort: r.port, Protocol: corev1.ProtocolTCP}},
						EnvFrom:   envFrom,
						Resources: r.resources(),
						// A slow first start gets two minutes before liveness
						// counts; after that, three failed checks restart it.
						StartupProbe:   probe(2, 60),
						ReadinessProbe: probe(5, 3),
						LivenessProbe:  probe(10, 3),
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
					}},
					// The root filesystem is read-only; frameworks still
					// want somewhere to write temporary files.
					Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: r.meta(r.app.Name),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: r.selector(),
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}
	one := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: r.meta(r.app.Name),
		Spec: policyv1.PodDisruptionBudgetSpec{
			// At most one pod down for a drain; with one replica, drains
			// still proceed (minAvailable would block them forever).
			MaxUnavailable: &one,
			Selector:       &metav1.LabelSelector{MatchLabels: r.selector()},
		},
	}
	objs := []runtime.Object{dep, svc, pdb}
	if as := r.plan.Autoscale; as != nil {
		// The HPA owns the replica count (from the plan's baseline up);
		// a Deployment that set it too would reset it on every deploy.
		// A new Deployment starts at one replica and the HPA raises it to
		// its minimum at once, metrics or not.
		dep.Spec.Replicas = nil
		objs = append(objs, &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: r.meta(r.app.Name),
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: r.app.Name},
				MinReplicas:    ptr.To(r.replicas),
				MaxReplicas:    r.replicas * as.MaxFactor,
				Metrics: []autoscalingv2.MetricSpec{{
					Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricSource{
						Name:   corev1.ResourceCPU,
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(as.CPUPercent)},
					},
				}},
			},
		})
	}
	return objs
}

// ingress is the app's Ingress, with TLS through cert-manager when tls is
// set; nothing without a domain.
func (r *renderer) ingress(tls bool) []runtime.Object {
	if r.app.Domain == "" {
		return nil
	}
	prefix := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{
		ObjectMeta: r.meta(r.app.Name),
		Spec: networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{{
				Host: r.app.Domain,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path: "/", PathType: &prefix,
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: r.app.Name, Port: networkingv1.ServiceBackendPort{Name: "http"},
						}},
					}},
				}},
			}},
		},
	}
	if r.opts.IngressClass != "" {
		ing.Spec.IngressClassName = ptr.To(r.opts.IngressClass)
	}
	if tls {
		ing.Annotations = map[string]string{"cert-manager.io/cluster-issuer": r.opts.ClusterIssuer}
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{r.app.Domain}, SecretName: r.app.Name + "-tls"}}
	}
	return []runtime.Object{ing}
}

// monitoring is the Prometheus Operator's ServiceMonitor and
// PrometheusRule for the app. The rules use kube-state-metrics and cAdvisor
// series and label their alerts with namespace and app, which Vigil's
// monitor groups incidents by.
func (r *renderer) monitoring() []*unstructured.Unstructured {
	ns, app := r.app.Namespace, r.app.Name
	labels := map[string]any{}
	for k, v := range r.labels() {
		labels[k] = v
	}
	selector := map[string]any{}
	for k, v := range r.selector() {
		selector[k] = v
	}
	sm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "ServiceMonitor",
		"metadata":   map[string]any{"name": app, "namespace": ns, "labels": labels},
		"spec": map[string]any{
			"selector":  map[string]any{"matchLabels": selector},
			"endpoints": []any{map[string]any{"port": "http", "path": "/metrics", "interval": "30s"}},
		},
	}}
	rule := func(alert, expr, forDur, severity, summary string) map[string]any {
		return map[string]any{
			"alert": alert,
			"expr":  expr,
			"for":   forDur,
			"labels": map[string]any{
				"severity": severity, "namespace": ns, "app": app,
			},
			"annotations": map[string]any{"summary": summary},
		}
	}
	sel := fmt.Sprintf(`namespace=%q`, ns)
	pr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "PrometheusRule",
		"metadata":   map[string]any{"name": app, "namespace": ns, "labels": labels},
		"spec": map[string]any{"groups": []any{map[string]any{
			"name": "vigil." + app,
			"rules": []any{
				rule("AppPodRestarting",
					fmt.Sprintf(`increase(kube_pod_container_status_restarts_total{%s}[15m]) > 3`, sel), "0m", "warning",
					"A pod of "+app+" restarted more than 3 times in 15 minutes"),
				rule("AppReplicasUnavailable",
					fmt.Sprintf(`kube_deployment_status_replicas_available{%s,deployment=%q} < kube_deployment_spec_replicas{%s,deployment=%q}`, sel, app, sel, app),
					"10m", "critical", "Replicas of "+app+" have been unavailable for 10 minutes"),
				rule("AppMemoryNearLimit",
					fmt.Sprintf(`max by (pod) (container_memory_working_set_bytes{%s,container="app"} / on (namespace, pod, container) kube_pod_container_resource_limits{%s,container="app",resource="memory"}) > 0.9`, sel, sel),
					"10m", "warning", "A pod of "+app+" uses more than 90% of its memory limit"),
				rule("AppOOMKilled",
					fmt.Sprintf(`kube_pod_container_status_last_terminated_reason{%s,reason="OOMKilled"} == 1`, sel),
					"0m", "critical", "A container of "+app+" was killed for running out of memory"),
			},
		}}},
	}}
	return []*unstructured.Unstructured{sm, pr}
}
