package grpcapi

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/deploy/internal/render"
)

// Limits on what an app may ask for.
const (
	maxNameLen     = 53 // leaves room for suffixes such as "-config" in 63-character object names
	maxReplicas    = 100
	maxEnvEntries  = 200
	maxValueLen    = 32 << 10
	maxImageLen    = 512
	maxDisplayName = 200
	// MaxMemoryLimit bounds an app's memory limit, a person's or a
	// repair's.
	MaxMemoryLimit = 256 << 30
	// MaxReplicas bounds an app's replica count, a person's or a
	// repair's.
	MaxReplicas = maxReplicas
)

// violations collects what is wrong with a request's fields.
type violations struct{ server.BadRequestError }

func (v *violations) add(field, format string, args ...any) { v.Addf(field, format, args...) }

func (v *violations) err(msg string) error { return v.Err(msg) }

func validName(v *violations, field, name string) {
	switch {
	case name == "":
		v.add(field, "is required")
	case len(name) > maxNameLen:
		v.add(field, "must be at most %d characters, got %d", maxNameLen, len(name))
	case len(validation.IsDNS1035Label(name)) > 0:
		// DNS-1035, not just DNS-1123: the name is also a Service's.
		v.add(field, "%q must be lowercase letters, digits and '-', starting with a letter and ending with a letter or digit", name)
	}
}

// validApp checks the fields of app that paths name (all when paths is
// nil), with field paths prefixed by prefix.
func validApp(v *violations, prefix string, app *deployv1.App, secrets map[string]string, paths map[string]bool) {
	want := func(p string) bool { return paths == nil || paths[p] }
	f := func(name string) string { return prefix + name }
	if want("display_name") && len(app.GetDisplayName()) > maxDisplayName {
		v.add(f("display_name"), "must be at most %d characters", maxDisplayName)
	}
	if want("framework") && !slices.Contains(render.Frameworks(), app.GetFramework()) {
		v.add(f("framework"), "unknown framework %q, want one of %s", app.GetFramework(), strings.Join(render.Frameworks(), ", "))
	}
	if want("plan") && !slices.Contains(render.Plans(), app.GetPlan()) {
		v.add(f("plan"), "unknown plan %q, want one of %s", app.GetPlan(), strings.Join(render.Plans(), ", "))
	}
	if want("image") {
		validImage(v, f("image"), app.GetImage())
	}
	if want("domain") && app.GetDomain() != "" {
		d := app.GetDomain()
		if errs := validation.IsDNS1123Subdomain(d); len(errs) > 0 || !strings.Contains(d, ".") {
			v.add(f("domain"), "%q must be a fully qualified host name such as shop.example.com (lowercase, no wildcard, no port)", d)
		}
	}
	if want("replicas") && (app.GetReplicas() < 0 || app.GetReplicas() > maxReplicas) {
		v.add(f("replicas"), "must be between 0 (the plan's default) and %d, got %d", maxReplicas, app.GetReplicas())
	}
	if want("memory_limit_bytes") && (app.GetMemoryLimitBytes() < 0 || app.GetMemoryLimitBytes() > MaxMemoryLimit) {
		v.add(f("memory_limit_bytes"), "must be between 0 (the plan's limit) and %d (256 GiB), got %d", int64(MaxMemoryLimit), app.GetMemoryLimitBytes())
	}
	if want("port") && app.GetPort() != 0 && (app.GetPort() < 1024 || app.GetPort() > 65535) {
		v.add(f("port"), "must be between 1024 and 65535 (the app runs as a non-root user), or 0 for the framework's default; got %d", app.GetPort())
	}
	if want("env") {
		validEnv(v, f("env"), app.GetEnv())
	}
	if want("owner") && len(app.GetOwner()) > 253 {
		v.add(f("owner"), "must be at most 253 characters")
	}
	validEnv(v, "secrets", secrets)
	for k := range secrets {
		if _, ok := app.GetEnv()[k]; ok && want("env") {
			v.add("secrets["+k+"]", "is also set in env: a name is either configuration or a secret")
		}
	}
}

func validEnv(v *violations, field string, env map[string]string) {
	if len(env) > maxEnvEntries {
		v.add(field, "must have at most %d entries, got %d", maxEnvEntries, len(env))
		return
	}
	for k, val := range env {
		if errs := validation.IsEnvVarName(k); len(errs) > 0 {
			v.add(field+"["+k+"]", "%q is not a valid environment variable name", k)
		}
		if len(val) > maxValueLen {
			v.add(field+"["+k+"]", "value must be at most %d bytes", maxValueLen)
		}
	}
}

// validImage checks an image reference's shape: what the registry makes of
// it is the rollout's business (ImagePullBackOff).
func validImage(v *violations, field, image string) {
	repo := image
	if i := strings.IndexByte(repo, '@'); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	switch {
	case image == "":
		v.add(field, "is required, e.g. registry.example.com/shop:1.4.2")
	case len(image) > maxImageLen:
		v.add(field, "must be at most %d characters", maxImageLen)
	case strings.ContainsAny(image, " \t\r\n") || strings.HasPrefix(image, "-") || repo == "" || repo != strings.ToLower(repo):
		v.add(field, "%q is not an image reference such as registry.example.com/shop:1.4.2 (lowercase repository)", image)
	}
}
