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
)

// LabelManagedBy (value "vigil") and LabelApp (the app's name) are on
// everything Vigil renders: what a deploy prunes is found by them.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelApp       = "vigil.dev/app"
)

// AnnotationRevision on an app's Deployment is the app's revision; the
// Deployment controller copies it onto the ReplicaSet that runs it, so a
// ReplicaSet says which revision of the app it was (what a rollback to
// the last good one restores).
const AnnotationRevision = "vigil.dev/revision"

// Labels and annotations Vigil puts on what it renders.
const (
	labelName             = "app.kubernetes.io/name"
	labelInstance         = "app.kubernetes.io/instance"
	labelManagedBy        = LabelManagedBy
	labelApp              = LabelApp
	annotationDisplayName = "vigil.dev/display-name"
	annotationOwner       = "vigil.dev/owner"
	annotationConfigHash  = "vigil.dev/config-hash"
	annotationRedacted    = "vigil.dev/secret-values"
)

// runAs is the user and group the app runs as. Any non-root id passes the
// restricted Pod Security profile; a fixed one makes file ownership on
// volumes predictable, and 10001 is clear of the ids images' base
// layers use.
const runAs = 10001

// renderer holds an app's validated input and what is derived from it.
type renderer struct {
	app      App
	opts     Options
	fw       framework
	plan     plan
	port     int32
	replicas int32
	env      map[string]string // the ConfigMap's data
	hash     string
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
		m.Steps = append(m.Steps, step)
	}
	m.Steps = append(m.Steps,
		Step{Name: StepConfigureMonitoring, Objects: []*unstructured.Unstructured{r.serviceMonitor(), r.prometheusRule()}},
		Step{Name: StepEnableAutoRepair},
	)
	return m, nil
}

// toUnstructured converts a typed object, setting its apiVersion and kind
// and dropping what only the API server sets (creationTimestamp: null,
// empty status), which would be noise in the YAML and fields Vigil
// claims to own when it applies.
func toUnstructured(o runtime.Object) (*unstructured.Unstructured, error) {
	gvks, _, err := scheme.Scheme.ObjectKinds(o)
	if err != nil {
		return nil, fmt.Errorf("kind of %T: %w", o, err)
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, fmt.Errorf("convert %T: %w", o, err)
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetGroupVersionKind(gvks[0])
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	if spec, ok := u.Object["spec"].(map[string]any); ok && len(spec) == 0 {
		delete(u.Object, "spec") // a Namespace's
	}
	return u, nil
}

// labels go on every object: the recommended app.kubernetes.io labels,
// and vigil.dev/app, by which Vigil finds an app's objects.
func (r *renderer) labels() map[string]string {
	return map[string]string{
		labelName:      r.app.Name,
		labelInstance:  r.app.Name,
		labelManagedBy: "vigil",
		labelApp:       r.app.Name,
	}
}

// selector selects the app's pods. It leaves out managed-by and
// vigil.dev/app on purpose: a Deployment's selector is immutable, so it
// holds only what will never change.
func (r *renderer) selector() map[string]string {
	return map[string]string{labelName: r.app.Name, labelInstance: r.app.Name}
}

func (r *renderer) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: r.app.Namespace, Labels: r.labels()}
}

func (r *renderer) namespace() *corev1.Namespace {
	m := r.meta(r.app.Namespace)
	m.Namespace = ""
	// Pods that break the restricted profile are refused at admission,
	// whoever creates them: the app's own pod template is written to
	// pass it, and nothing else should run here.
	m.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	m.Labels["pod-security.kubernetes.io/enforce-version"] = "latest"
	if r.app.DisplayName != "" {
		m.Annotations = map[string]string{annotationDisplayName: r.app.DisplayName}
	}
	return &corev1.Namespace{ObjectMeta: m}
}

// serviceAccount is the app's own identity, with no token mounted: apps
// have no business with the Kubernetes API.
func (r *renderer) serviceAccount() *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: r.meta(r.app.Name), AutomountServiceAccountToken: new(false)}
}

// networkPolicy isolates the whole namespace.
//
// In: the namespace's own pods, and the ingress controller and Prometheus
// to the app's port; nothing else in the cluster.
//
// Out: DNS on port 53 to any destination (not only to namespaces: node-
// local DNS caches listen on a link-local address of the host network,
// which no namespace selector matches), and everything else except the
// cloud metadata service (169.254.169.254, and fd00:ec2::254 for IPv6 on
// AWS), which hands out the node's credentials. Egress stays otherwise
// open because apps call databases and APIs that Vigil cannot know;
// tightening it is the cluster operator's choice.
func (r *renderer) networkPolicy() *networkingv1.NetworkPolicy {
	appPort := intstr.FromInt32(r.port)
	dns := intstr.FromInt32(53)
	tcp, udp := new(corev1.ProtocolTCP), new(corev1.ProtocolUDP)
	fromNamespace := func(ns string) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{
			// Set by the API server on every namespace: cannot be forged
			// by whoever may label namespaces.
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
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: tcp, Port: &appPort}},
				},
			},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{Ports: []networkingv1.NetworkPolicyPort{{Protocol: udp, Port: &dns}, {Protocol: tcp, Port: &dns}}},
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

// config is the ConfigMap and, when the app has secrets, the Secret. The
// Secret uses data, not stringData: stringData is write-only, so a
// server-side apply of it would never match what the server holds.
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
		s.Annotations = map[string]string{annotationRedacted: "managed by Vigil"}
	}
	return append(objs, s)
}

func (r *renderer) workload() []runtime.Object {
	objs := []runtime.Object{r.deployment(), r.service(), r.podDisruptionBudget()}
	if hpa := r.autoscaler(); hpa != nil {
		objs = append(objs, hpa)
	}
	return objs
}

func (r *renderer) deployment() *appsv1.Deployment {
	m := r.meta(r.app.Name)
	m.Annotations = map[string]string{AnnotationRevision: strconv.FormatInt(r.app.Revision, 10)}
	if r.app.Owner != "" {
		m.Annotations[annotationOwner] = r.app.Owner
	}
	d := &appsv1.Deployment{
		ObjectMeta: m,
		Spec: appsv1.DeploymentSpec{
			Replicas:                new(r.replicas),
			RevisionHistoryLimit:    new(int32(10)),
			ProgressDeadlineSeconds: new(int32(600)),
			Selector:                &metav1.LabelSelector{MatchLabels: r.selector()},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				// Never below the desired count: a new pod must be ready
				// before an old one goes, so a bad release keeps the old
				// pods serving.
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: new(intstr.FromInt32(0)),
					MaxSurge:       new(intstr.FromInt32(1)),
				},
			},
			Template: r.podTemplate(),
		},
	}
	if r.plan.Autoscaling != nil {
		// The HPA owns the replica count. A Deployment that set it too
		// would reset it to the minimum on every deploy, under load.
		// A new Deployment starts at one replica and the HPA raises it
		// to its minimum at once, without waiting for metrics.
		d.Spec.Replicas = nil
	}
	return d
}

func (r *renderer) podTemplate() corev1.PodTemplateSpec {
	probe := func(period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: r.fw.HealthPath, Port: intstr.FromString("http"),
			}},
			PeriodSeconds:    period,
			FailureThreshold: failures,
			// The default (1s) fails busy apps on a slow answer.
			TimeoutSeconds: 2,
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
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels: r.labels(),
			Annotations: map[string]string{
				"prometheus.io/scrape": "true",
				"prometheus.io/port":   strconv.Itoa(int(r.port)),
				"prometheus.io/path":   "/metrics",
				// envFrom is read at container start only: a changed hash
				// changes the template, which rolls the pods.
				annotationConfigHash: r.hash,
			},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName:            r.app.Name,
			AutomountServiceAccountToken:  new(false),
			TerminationGracePeriodSeconds: new(int64(30)),
			// What the restricted Pod Security profile requires, and a
			// fixed non-root identity.
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   new(true),
				RunAsUser:      new(int64(runAs)),
				RunAsGroup:     new(int64(runAs)),
				FSGroup:        new(int64(runAs)),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				// Spread replicas over nodes when there are enough, so a
				// node going down takes one replica, not all; preferred,
				// so a small cluster still runs them all.
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
					Weight: 100,
					PodAffinityTerm: corev1.PodAffinityTerm{
						TopologyKey:   corev1.LabelHostname,
						LabelSelector: &metav1.LabelSelector{MatchLabels: r.selector()},
					},
				}},
			}},
			Containers: []corev1.Container{{
				Name:      ContainerName,
				Image:     r.app.Image,
				Ports:     []corev1.ContainerPort{{Name: "http", ContainerPort: r.port, Protocol: corev1.ProtocolTCP}},
				EnvFrom:   envFrom,
				Resources: r.resources(),
				// A slow first start (migrations, cold caches) gets two
				// minutes before liveness counts; after that, 30 seconds
				// of failed checks restart the container and 15 take it
				// out of the Service.
				StartupProbe:   probe(2, 60),
				ReadinessProbe: probe(5, 3),
				LivenessProbe:  probe(10, 3),
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: new(false),
					ReadOnlyRootFilesystem:   new(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
			}},
			// The root filesystem is read-only; frameworks still want
			// somewhere to write temporary files and uploads.
			Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
}

// ContainerName is the app's one container.
const ContainerName = "app"

// resources are the plan's requests and limits, with the app's memory
// limit when it is above the plan's; the request stays the plan's (below
// either limit).
func (r *renderer) resources() corev1.ResourceRequirements {
	res := corev1.ResourceRequirements{Requests: r.plan.Requests.DeepCopy(), Limits: r.plan.Limits.DeepCopy()}
	if lim := res.Limits[corev1.ResourceMemory]; r.app.MemoryLimitBytes > lim.Value() {
		res.Limits[corev1.ResourceMemory] = *resource.NewQuantity(r.app.MemoryLimitBytes, resource.BinarySI)
	}
	return res
}

func (r *renderer) service() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: r.meta(r.app.Name),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: r.selector(),
			// By name, so a changed container port needs no Service change.
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}
}

func (r *renderer) podDisruptionBudget() *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: r.meta(r.app.Name),
		Spec: policyv1.PodDisruptionBudgetSpec{
			// One pod at a time during a drain. maxUnavailable, not
			// minAvailable: with one replica, minAvailable 1 would block
			// drains forever.
			MaxUnavailable: new(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: r.selector()},
			// Pods that are not ready serve nothing, so evicting them
			// costs nothing; without this a crash-looping app would
			// block node drains.
			UnhealthyPodEvictionPolicy: new(policyv1.AlwaysAllow),
		},
	}
}

// autoscaler is the HPA for plans that scale, from the replica count up to
// the plan's factor times it; nil for the others.
func (r *renderer) autoscaler() *autoscalingv2.HorizontalPodAutoscaler {
	a := r.plan.Autoscaling
	if a == nil {
		return nil
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: r.meta(r.app.Name),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: r.app.Name},
			MinReplicas:    new(r.replicas),
			MaxReplicas:    r.replicas * a.MaxFactor,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{
						Type:               autoscalingv2.UtilizationMetricType,
						AverageUtilization: new(a.CPUUtilization),
					},
				},
			}},
		},
	}
}

// ingress is the app's Ingress, with TLS through cert-manager when tls is
// set; none without a domain. The configure_ingress and setup_tls steps
// apply the two versions in turn, so routing and certificates succeed or
// fail as separate steps.
func (r *renderer) ingress(tls bool) []runtime.Object {
	if r.app.Domain == "" {
		return nil
	}
	ing := &networkingv1.Ingress{
		ObjectMeta: r.meta(r.app.Name),
		Spec: networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{{
				Host: r.app.Domain,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path:     "/",
						PathType: new(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: r.app.Name, Port: networkingv1.ServiceBackendPort{Name: "http"},
						}},
					}},
				}},
			}},
		},
	}
	if r.opts.IngressClass != "" {
		ing.Spec.IngressClassName = new(r.opts.IngressClass)
	}
	if tls {
		// cert-manager's ingress-shim sees the annotation and gets the
		// certificate into <name>-tls.
		ing.Annotations = map[string]string{"cert-manager.io/cluster-issuer": r.opts.ClusterIssuer}
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{r.app.Domain}, SecretName: r.app.Name + "-tls"}}
	}
	return []runtime.Object{ing}
}
