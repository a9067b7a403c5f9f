package render

import (
	_ "embed"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// frameworksYAML holds the frameworks and plans, so that adding one is
// data, not code.
//
//go:embed frameworks.yaml
var frameworksYAML []byte

type framework struct {
	Port       int32             `json:"port"`
	HealthPath string            `json:"healthPath"`
	Env        map[string]string `json:"env"`
}

type autoscaling struct {
	// MaxFactor times the replica count is the most the HPA scales to.
	MaxFactor      int32 `json:"maxFactor"`
	CPUUtilization int32 `json:"cpuUtilization"`
}

type plan struct {
	Requests    corev1.ResourceList `json:"requests"`
	Limits      corev1.ResourceList `json:"limits"`
	Replicas    int32               `json:"replicas"`
	Autoscaling *autoscaling        `json:"autoscaling"`
}

var templates struct {
	Frameworks map[string]framework `json:"frameworks"`
	Plans      map[string]plan      `json:"plans"`
}

func init() {
	// Strict, and checked here: a mistake in frameworks.yaml is a build
	// bug and must fail every test, not render a broken app later.
	if err := yaml.UnmarshalStrict(frameworksYAML, &templates); err != nil {
		panic("render: frameworks.yaml: " + err.Error())
	}
	if err := checkTemplates(); err != nil {
		panic("render: frameworks.yaml: " + err.Error())
	}
}

func checkTemplates() error {
	if len(templates.Frameworks) == 0 || len(templates.Plans) == 0 {
		return fmt.Errorf("no frameworks or no plans")
	}
	for name, fw := range templates.Frameworks {
		if fw.Port < 1 || fw.Port > 65535 || !strings.HasPrefix(fw.HealthPath, "/") {
			return fmt.Errorf("framework %s: port %d or health path %q is invalid", name, fw.Port, fw.HealthPath)
		}
		for k := range fw.Env {
			if len(validation.IsEnvVarName(k)) > 0 || k == "PORT" {
				return fmt.Errorf("framework %s: env %q", name, k)
			}
		}
	}
	for name, p := range templates.Plans {
		if p.Replicas < 1 {
			return fmt.Errorf("plan %s: replicas %d", name, p.Replicas)
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, okReq := p.Requests[res]
			limit, okLimit := p.Limits[res]
			if !okReq || !okLimit || req.Sign() <= 0 || limit.Cmp(req) < 0 {
				return fmt.Errorf("plan %s: %s request %s and limit %s", name, res, req.String(), limit.String())
			}
		}
		if a := p.Autoscaling; a != nil && (a.MaxFactor < 2 || a.CPUUtilization < 1 || a.CPUUtilization > 100) {
			return fmt.Errorf("plan %s: autoscaling %+v", name, *a)
		}
	}
	return nil
}

// Frameworks returns the names of the known frameworks, sorted.
func Frameworks() []string { return slices.Sorted(maps.Keys(templates.Frameworks)) }

// Plans returns the names of the known plans, cheapest first.
func Plans() []string {
	return slices.SortedFunc(maps.Keys(templates.Plans), func(a, b string) int {
		ra, rb := templates.Plans[a].Requests, templates.Plans[b].Requests
		return ra.Cpu().Cmp(*rb.Cpu())
	})
}

// PlanResources returns the requests and limits (cpu and memory) a plan
// gives each container, and false for an unknown plan.
func PlanResources(plan string) (corev1.ResourceRequirements, bool) {
	p, ok := templates.Plans[plan]
	if !ok {
		return corev1.ResourceRequirements{}, false
	}
	// Copies: callers must not be able to change the plan for everyone.
	return corev1.ResourceRequirements{Requests: p.Requests.DeepCopy(), Limits: p.Limits.DeepCopy()}, true
}
