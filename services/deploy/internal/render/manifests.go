// Package render turns an app into the Kubernetes objects Vigil applies,
// grouped by onboarding step. The same renderer serves applying (the
// deploy service) and printing (`vigil apps render`, for GitOps
// repositories), so what is printed is what is applied.
package render

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// App is what the renderer needs to know about an app.
type App struct {
	// Name is a DNS-1123 label; objects are named after it.
	Name string
	// Namespace the app lives in (created by the create_namespace step).
	Namespace   string
	DisplayName string
	// Domain is served through an Ingress with TLS; none when empty.
	Domain    string
	Framework string
	Plan      string
	Image     string
	// Replicas: 0 is the plan's default.
	Replicas int32
	// Port the container listens on: 0 is the framework's default.
	Port int32
	// Env is configuration, passed through a ConfigMap; it overrides the
	// framework's defaults.
	Env map[string]string
	// Secrets are passed through a Secret.
	Secrets map[string]string
	Owner   string
	// Revision is recorded on the Deployment (not its pod template: a
	// revision that changes nothing rolls nothing).
	Revision int64
}

// Options tune what is rendered for every app.
type Options struct {
	// IngressClass is the Ingresses' ingressClassName; the cluster's
	// default class when empty.
	IngressClass string
	// ClusterIssuer is the cert-manager ClusterIssuer that signs the apps'
	// certificates (default "letsencrypt").
	ClusterIssuer string
	// IngressNamespace is where the ingress controller runs (default
	// "ingress-nginx"): the NetworkPolicy lets it in.
	IngressNamespace string
	// MonitoringNamespace is where Prometheus runs (default "monitoring"):
	// the NetworkPolicy lets it scrape.
	MonitoringNamespace string
	// RedactSecrets leaves secret values out (empty), for output meant for
	// people and repositories. The config hash is still that of the real
	// values, so the output matches what is applied but for the values.
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

// The onboarding steps, in order.
const (
	StepCreateNamespace     = "create_namespace"
	StepApplyConfig         = "apply_config"
	StepDeployApp           = "deploy_app"
	StepConfigureIngress    = "configure_ingress"
	StepSetupTLS            = "setup_tls"
	StepConfigureMonitoring = "configure_monitoring"
	StepEnableAutoRepair    = "enable_auto_repair"
)

// Steps are the onboarding steps' names, in order.
var Steps = []string{
	StepCreateNamespace, StepApplyConfig, StepDeployApp, StepConfigureIngress,
	StepSetupTLS, StepConfigureMonitoring, StepEnableAutoRepair,
}

// Step is one onboarding step and the objects it applies, in order. A step
// without objects has nothing to do for this app (enable_auto_repair never
// has any: it is Vigil's own setting).
type Step struct {
	Name    string
	Objects []*unstructured.Unstructured
}

// Manifests are an app's objects by step.
type Manifests struct {
	// Steps are all of Steps, in order.
	Steps []Step
	// ConfigHash is the hex SHA-256 of the app's configuration and
	// secrets; the pod template carries it, so a change rolls the pods.
	ConfigHash string
}

// FieldError is input the renderer cannot work with; Field names it as
// the API does (e.g. "app.framework").
type FieldError struct {
	Field       string
	Description string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Description }

// templates are the embedded frameworks and plans.
//
//go:embed templates.yaml
var templatesYAML []byte

type framework struct {
	Port       int32             `json:"port"`
	HealthPath string            `json:"healthPath"`
	Env        map[string]string `json:"env"`
}

type autoscale struct {
	MaxFactor  int32 `json:"maxFactor"`
	CPUPercent int32 `json:"cpuPercent"`
}

type plan struct {
	Requests  map[string]string `json:"requests"`
	Limits    map[string]string `json:"limits"`
	Replicas  int32             `json:"replicas"`
	Autoscale *autoscale        `json:"autoscale"`
}

var templates struct {
	Frameworks map[string]framework `json:"frameworks"`
	Plans      map[string]plan      `json:"plans"`
}

func init() {
	if err := yaml.UnmarshalStrict(templatesYAML, &templates); err != nil {
		panic("render: templates.yaml: " + err.Error()) // a build-time mistake
	}
	for name, p := range templates.Plans {
		for _, q := range []map[string]string{p.Requests, p.Limits} {
			for _, v := range q {
				resource.MustParse(v) // panics on a build-time mistake, with the value
			}
		}
		if p.Replicas < 1 {
			panic("render: templates.yaml: plan " + name + " has no replicas")
		}
	}
}

// Frameworks are the known frameworks, sorted.
func Frameworks() []string { return slices.Sorted(maps.Keys(templates.Frameworks)) }

// Plans are the known plans, cheapest first.
func Plans() []string {
	return slices.SortedFunc(maps.Keys(templates.Plans), func(a, b string) int {
		ra, rb := resource.MustParse(templates.Plans[a].Requests["cpu"]), resource.MustParse(templates.Plans[b].Requests["cpu"])
		return ra.Cmp(rb)
	})
}

// PlanResources returns a plan's requests and limits (cpu, memory).
func PlanResources(name string) (requests, limits map[string]string, ok bool) {
	p, ok := templates.Plans[name]
	if !ok {
		return nil, nil, false
	}
	return maps.Clone(p.Requests), maps.Clone(p.Limits), true
}

// Render renders app. It checks what it relies on and reports the first
// problem as a *FieldError.
func Render(app App, opts Options) (*Manifests, error) {
	opts.defaults()
	fw, ok := templates.Frameworks[app.Framework]
	if !ok {
		return nil, &FieldError{"app.framework", fmt.Sprintf("unknown framework %q, want one of %v", app.Framework, Frameworks())}
	}
	pl, ok := templates.Plans[app.Plan]
	if !ok {
		return nil, &FieldError{"app.plan", fmt.Sprintf("unknown plan %q, want one of %v", app.Plan, Plans())}
	}
	switch {
	case len(validation.IsDNS1123Label(app.Name)) > 0:
		return nil, &FieldError{"app.name", fmt.Sprintf("%q is not a DNS-1123 label", app.Name)}
	case len(validation.IsDNS1123Label(app.Namespace)) > 0:
		return nil, &FieldError{"app.namespace", fmt.Sprintf("%q is not a DNS-1123 label", app.Namespace)}
	case app.Image == "":
		return nil, &FieldError{"app.image", "is required"}
	}
	r := &renderer{app: app, opts: opts, fw: fw, plan: pl}
	r.port = fw.Port
	if app.Port != 0 {
		r.port = app.Port
	}
	r.replicas = pl.Replicas
	if app.Replicas != 0 {
		r.replicas = app.Replicas
	}
	r.env = map[string]string{"PORT": strconv.Itoa(int(r.port))}
	maps.Copy(r.env, fw.Env)
	maps.Copy(r.env, app.Env)
	r.hash = configHash(r.env, app.Secrets)
	return r.manifests()
}

// configHash hashes configuration and secrets unambiguously: each entry
// length-prefixed, keys sorted, the two maps apart.
func configHash(env, secrets map[string]string) string {
	h := sha256.New()
	for _, m := range []map[string]string{env, secrets} {
		_ = binary.Write(h, binary.BigEndian, uint32(len(m)))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			for _, s := range []string{k, m[k]} {
				_ = binary.Write(h, binary.BigEndian, uint32(len(s)))
				h.Write([]byte(s))
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Objects returns every object once, as finally applied (an object that
// two steps apply, such as the Ingress, in its last version), in step
// order.
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

// YAML returns Objects as one multi-document YAML stream, byte for byte
// the same for the same input.
func (m *Manifests) YAML() ([]byte, error) {
	var b bytes.Buffer
	for i, o := range m.Objects() {
		if i > 0 {
			b.WriteString("---\n")
		}
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("render %s/%s: %w", o.GetKind(), o.GetName(), err)
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}
