// Package render turns an app into the Kubernetes objects Vigil applies,
// grouped by onboarding step. The same renderer serves applying (the
// deploy service, with server-side apply) and printing (`vigil apps
// render`, for review and GitOps repositories), so what is printed is
// what is applied.
//
// The frameworks and plans are data (frameworks.yaml, embedded); the
// objects are built as typed Kubernetes API structs, so the compiler
// checks field names, and converted to unstructured objects for applying
// and printing.
package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// App is what the renderer needs to know about an app; the deploy service
// maps its stored app to it.
type App struct {
	// Name names the app's objects. It must be a DNS-1035 label (a
	// DNS-1123 label starting with a letter), because it names a Service.
	Name string
	// Namespace is where the app lives; the create_namespace step creates
	// it. Kubernetes' own namespaces (default, kube-*) are refused.
	Namespace string
	// DisplayName is recorded on the Namespace for people.
	DisplayName string
	// Domain is served through an Ingress with a cert-manager certificate;
	// none when empty.
	Domain string
	// Framework is one of Frameworks.
	Framework string
	// Plan is one of Plans.
	Plan string
	// Image is the container image (required).
	Image string
	// Replicas is the replica count, or with autoscaling the minimum; 0
	// is the plan's default.
	Replicas int32
	// Port is the container's port; 0 is the framework's default. The
	// container gets it as PORT.
	Port int32
	// Env is non-secret configuration, passed through a ConfigMap; it
	// overrides the framework's defaults.
	Env map[string]string
	// Secrets are passed through a Secret; a key in both Env and Secrets
	// gets the secret's value (envFrom's later source wins).
	Secrets map[string]string
	// Owner is recorded on the objects (vigil.dev/owner).
	Owner string
	// Revision is recorded on the Deployment, not on its pod template: a
	// revision that changes nothing the pods see rolls nothing.
	Revision int64
	// MemoryLimitBytes raises the container's memory limit above the
	// plan's (a repair of an app killed for running out of memory); 0 or
	// a value at or below the plan's limit leaves the plan's, so a later
	// move to a bigger plan is never held back by an old repair.
	MemoryLimitBytes int64
}

// Options tune what is rendered for every app of a cluster.
type Options struct {
	// IngressClass is the Ingresses' spec.ingressClassName; the cluster's
	// default class when empty.
	IngressClass string
	// ClusterIssuer is the cert-manager ClusterIssuer that signs the apps'
	// certificates (default "letsencrypt").
	ClusterIssuer string
	// IngressNamespace is where the ingress controller runs (default
	// "ingress-nginx"): the NetworkPolicy lets it reach the app.
	IngressNamespace string
	// MonitoringNamespace is where Prometheus runs (default "monitoring"):
	// the NetworkPolicy lets it scrape the app.
	MonitoringNamespace string
	// RedactSecrets leaves secret values out (empty, and the Secret
	// annotated vigil.dev/secret-values), for output meant for people and
	// repositories. The config hash is still that of the real values, so
	// the output is what would be applied but for those values.
	RedactSecrets bool
}

func (o *Options) defaults() {
	if o.ClusterIssuer == "" {
		o.ClusterIssuer = "letsencrypt"
	}
	if o.IngressNamespace == "" {
		o.IngressNamespace = "ingress-nginx"
	}
	if o.MonitoringNamespace == "" {
		o.MonitoringNamespace = "monitoring"
	}
}

// TrustedNamespaces are the namespaces every app's NetworkPolicy admits
// traffic from: the ingress controller's and Prometheus's.
func (o Options) TrustedNamespaces() []string {
	o.defaults()
	return []string{o.IngressNamespace, o.MonitoringNamespace}
}

// Kinds are the namespaced kinds Render produces (the Namespace aside):
// where to look for what Vigil rendered for an app.
var Kinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "ServiceAccount"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"},
	{Version: "v1", Kind: "ConfigMap"},
	{Version: "v1", Kind: "Secret"},
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Version: "v1", Kind: "Service"},
	{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"},
	{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"},
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"},
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"},
}

// The onboarding steps' names.
const (
	// StepCreateNamespace applies the Namespace (Pod Security
	// "restricted"), the app's ServiceAccount and its NetworkPolicy.
	StepCreateNamespace = "create_namespace"
	// StepApplyConfig applies the ConfigMap and, with secrets, the Secret.
	StepApplyConfig = "apply_config"
	// StepDeployApp applies the Deployment, Service, PodDisruptionBudget
	// and, for plans that autoscale, the HorizontalPodAutoscaler.
	StepDeployApp = "deploy_app"
	// StepConfigureIngress applies the Ingress without TLS (with a
	// domain). Re-applying it to an app that already has TLS removes the
	// TLS until StepSetupTLS puts it back, because server-side apply drops
	// the fields a manager stops setting: a redeploy should apply only the
	// final version (Manifests.Objects) of the Ingress.
	StepConfigureIngress = "configure_ingress"
	// StepSetupTLS applies the Ingress again, with TLS from cert-manager.
	StepSetupTLS = "setup_tls"
	// StepConfigureMonitoring applies the ServiceMonitor and the
	// PrometheusRule (Prometheus Operator kinds).
	StepConfigureMonitoring = "configure_monitoring"
	// StepEnableAutoRepair applies nothing: it is Vigil's own setting.
	StepEnableAutoRepair = "enable_auto_repair"
)

// Steps are the onboarding steps' names, in the order they run.
var Steps = []string{
	StepCreateNamespace, StepApplyConfig, StepDeployApp, StepConfigureIngress,
	StepSetupTLS, StepConfigureMonitoring, StepEnableAutoRepair,
}

// Step is one onboarding step and the objects it applies, in order. A step
// without objects has nothing to do for this app and is skipped, except
// enable_auto_repair, which never has any: it is Vigil's own setting.
type Step struct {
	Name    string
	Objects []*unstructured.Unstructured
}

// Manifests are an app's objects, by step.
type Manifests struct {
	// Steps are all of Steps, in order.
	Steps []Step
	// ConfigHash is the hex SHA-256 of the app's ConfigMap and Secret data
	// (the real values, even when redacted). The pod template carries it,
	// so a configuration change rolls the pods.
	ConfigHash string
}

// FieldError is an App field the renderer cannot work with. Field is the
// field's name as the deploy API spells it ("framework", "name"), so the
// caller can report it as a field violation.
type FieldError struct {
	Field       string
	Description string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Description }

func fieldError(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Description: fmt.Sprintf(format, args...)}
}

// Render renders app with opts. Invalid input is reported as a
// *FieldError (the first problem found).
func Render(app App, opts Options) (*Manifests, error) {
	opts.defaults()
	r, err := newRenderer(app, opts)
	if err != nil {
		return nil, err
	}
	return r.manifests()
}

func newRenderer(app App, opts Options) (*renderer, error) {
	if err := checkNames(app); err != nil {
		return nil, err
	}
	fw, ok := templates.Frameworks[app.Framework]
	if !ok {
		return nil, fieldError("framework", "unknown %q, want one of %s", app.Framework, strings.Join(Frameworks(), ", "))
	}
	pl, ok := templates.Plans[app.Plan]
	if !ok {
		return nil, fieldError("plan", "unknown %q, want one of %s", app.Plan, strings.Join(Plans(), ", "))
	}
	switch {
	case app.Image == "":
		return nil, fieldError("image", "is required")
	case strings.ContainsAny(app.Image, " \t\r\n"):
		return nil, fieldError("image", "%q contains white space", app.Image)
	case app.Replicas < 0:
		return nil, fieldError("replicas", "must not be negative (0 is the plan's default), got %d", app.Replicas)
	case app.MemoryLimitBytes < 0:
		return nil, fieldError("memory_limit_bytes", "must not be negative (0 is the plan's limit), got %d", app.MemoryLimitBytes)
	case app.Port < 0 || app.Port > 65535:
		return nil, fieldError("port", "must be between 1 and 65535 (0 is the framework's default), got %d", app.Port)
	}
	r := &renderer{app: app, opts: opts, fw: fw, plan: pl, port: fw.Port, replicas: pl.Replicas}
	if app.Port != 0 {
		r.port = app.Port
	}
	if app.Replicas != 0 {
		r.replicas = app.Replicas
	}
	if err := checkKeys("env", app.Env); err != nil {
		return nil, err
	}
	if err := checkKeys("secrets", app.Secrets); err != nil {
		return nil, err
	}
	// The probes and the Service target the container port; a PORT that
	// disagreed would make the app listen elsewhere.
	port := strconv.Itoa(int(r.port))
	if v, ok := app.Env["PORT"]; ok && v != port {
		return nil, fieldError("env", "PORT is the container port (%s): set the port instead", port)
	}
	if _, ok := app.Secrets["PORT"]; ok {
		return nil, fieldError("secrets", "PORT is the container port (%s): set the port instead", port)
	}
	r.env = maps.Clone(fw.Env)
	if r.env == nil {
		r.env = map[string]string{}
	}
	maps.Copy(r.env, app.Env)
	r.env["PORT"] = port
	r.hash = configHash(r.env, app.Secrets)
	return r, nil
}

func checkNames(app App) error {
	if len(validation.IsDNS1035Label(app.Name)) > 0 {
		return fieldError("name", "%q is not a DNS-1035 label: at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit (it names the app's Service)", app.Name)
	}
	if len(validation.IsDNS1123Label(app.Namespace)) > 0 {
		return fieldError("namespace", "%q is not a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit", app.Namespace)
	}
	// The create_namespace step labels the namespace for the restricted
	// Pod Security profile: never Kubernetes' own.
	if app.Namespace == "default" || strings.HasPrefix(app.Namespace, "kube-") {
		return fieldError("namespace", "%q is reserved for Kubernetes", app.Namespace)
	}
	return nil
}

// checkKeys checks that m's keys can be ConfigMap and Secret keys (the
// first bad one in sorted order, so the error is stable).
func checkKeys(field string, m map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
			return fieldError(field, "key %q: %s", k, strings.Join(errs, "; "))
		}
	}
	return nil
}

// configHash hashes the configuration and the secrets unambiguously: the
// two maps apart, keys sorted, every string length-prefixed (so that
// {"a": "bc"} and {"ab": "c"} differ).
func configHash(env, secrets map[string]string) string {
	h := sha256.New()
	for _, m := range []map[string]string{env, secrets} {
		_ = binary.Write(h, binary.BigEndian, uint64(len(m)))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			for _, s := range []string{k, m[k]} {
				_ = binary.Write(h, binary.BigEndian, uint64(len(s)))
				h.Write([]byte(s))
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Objects returns every object once, as finally applied (an object that
// two steps apply, such as the Ingress, in its last version, at its first
// place), in step order.
func (m *Manifests) Objects() []*unstructured.Unstructured {
	type key struct{ apiVersion, kind, namespace, name string }
	index := map[key]int{}
	var out []*unstructured.Unstructured
	for _, st := range m.Steps {
		for _, o := range st.Objects {
			k := key{o.GetAPIVersion(), o.GetKind(), o.GetNamespace(), o.GetName()}
			if i, ok := index[k]; ok {
				out[i] = o
				continue
			}
			index[k] = len(out)
			out = append(out, o)
		}
	}
	return out
}

// YAML returns Objects as one multi-document YAML stream, "---" between
// documents, byte for byte the same for the same input (map keys sorted).
func (m *Manifests) YAML() ([]byte, error) {
	var b bytes.Buffer
	for i, o := range m.Objects() {
		if i > 0 {
			b.WriteString("---\n")
		}
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("marshal %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}
