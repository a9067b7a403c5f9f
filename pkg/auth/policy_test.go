package auth_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/vigil-ops/vigil/pkg/auth"
	// Every package of Vigil's contracts, so that their services are in
	// protoregistry.GlobalFiles. TestProtoServicesAreRegistered fails when
	// a new one is missing here.
	_ "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	_ "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	_ "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	_ "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	_ "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	_ "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	_ "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	_ "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// vigilMethods returns the full method name ("/pkg.Service/Method") of
// every RPC of every vigil.* service in the registry.
func vigilMethods() []string {
	var out []string
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "vigil.") {
			return true
		}
		svcs := fd.Services()
		for i := range svcs.Len() {
			sd := svcs.Get(i)
			ms := sd.Methods()
			for j := range ms.Len() {
				out = append(out, "/"+string(sd.FullName())+"/"+string(ms.Get(j).Name()))
			}
		}
		return true
	})
	slices.Sort(out)
	return out
}

// policyGaps returns the methods without a rule, and the rules (other
// than gRPC's own health and reflection services) of no method.
func policyGaps(policy map[string]auth.Rule, methods []string) (unguarded, stale []string) {
	for _, m := range methods {
		if _, ok := policy[m]; !ok {
			unguarded = append(unguarded, m)
		}
	}
	for _, m := range slices.Sorted(maps.Keys(policy)) {
		if strings.HasPrefix(m, "/grpc.health.") || strings.HasPrefix(m, "/grpc.reflection.") {
			continue
		}
		if !slices.Contains(methods, m) {
			stale = append(stale, m)
		}
	}
	return unguarded, stale
}

// TestEveryRPCHasAPolicy: the Guard refuses a method without a rule, so an
// RPC added to the contracts without one would be unusable; and a rule
// for a method that no longer exists is a leftover that hides typos.
func TestEveryRPCHasAPolicy(t *testing.T) {
	t.Parallel()
	methods := vigilMethods()
	require.Contains(t, methods, "/vigil.gateway.v1.AuthService/Login", "the contracts are not registered: is a blank import missing?")
	unguarded, stale := policyGaps(auth.Policy, methods)
	require.Empty(t, unguarded, "RPCs without an entry in auth.Policy (pkg/auth/policy.go): add one")
	require.Empty(t, stale, "auth.Policy entries that name no RPC of the contracts: remove or fix them")
}

// TestPolicyGapsAreFound checks the check: a policy missing a method, or
// naming one that does not exist, is reported.
func TestPolicyGapsAreFound(t *testing.T) {
	t.Parallel()
	methods := vigilMethods()
	tests := []struct {
		name             string
		edit             func(map[string]auth.Rule)
		unguarded, stale []string
	}{
		{name: "complete", edit: func(map[string]auth.Rule) {}},
		{
			name:      "new RPC without a rule",
			edit:      func(p map[string]auth.Rule) { delete(p, "/vigil.deploy.v1.AppService/DeployApp") },
			unguarded: []string{"/vigil.deploy.v1.AppService/DeployApp"},
		},
		{
			name: "rule for a method that does not exist",
			edit: func(p map[string]auth.Rule) {
				p["/vigil.deploy.v1.AppService/DeployAp"] = auth.Rule{Permission: auth.Operate}
			},
			stale: []string{"/vigil.deploy.v1.AppService/DeployAp"},
		},
		{
			name: "gRPC's own services are not contracts of ours",
			edit: func(p map[string]auth.Rule) { p["/grpc.health.v1.Health/Other"] = auth.Rule{Permission: auth.Public} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := maps.Clone(auth.Policy)
			tt.edit(p)
			unguarded, stale := policyGaps(p, methods)
			require.Equal(t, tt.unguarded, unguarded)
			require.Equal(t, tt.stale, stale)
		})
	}
}

// TestProtoServicesAreRegistered: every service declared in
// proto/vigil/*/v1 is in the registry, so TestEveryRPCHasAPolicy sees
// it (a new contract package needs its blank import above).
func TestProtoServicesAreRegistered(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "..", "proto", "vigil", "*", "v1", "*.proto"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no proto files found from pkg/auth")
	pkgRE := regexp.MustCompile(`(?m)^package\s+([\w.]+)\s*;`)
	svcRE := regexp.MustCompile(`(?m)^service\s+(\w+)\s*\{`)
	var declared []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		pkg := pkgRE.FindSubmatch(b)
		require.NotNil(t, pkg, "%s: no package", f)
		for _, m := range svcRE.FindAllSubmatch(b, -1) {
			declared = append(declared, string(pkg[1])+"."+string(m[1]))
		}
	}
	require.NotEmpty(t, declared)
	for _, name := range declared {
		_, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		require.NoError(t, err, "service %s is not registered: blank-import its pkg/gen package in pkg/auth/policy_test.go", name)
	}
}

// TestPolicyRules: audited rules name their target, and only health
// checks and getting (or ending) a session need no credential.
func TestPolicyRules(t *testing.T) {
	t.Parallel()
	for method, rule := range auth.Policy {
		if rule.Audit {
			require.NotEmpty(t, rule.Target, "%s is audited: it needs a target", method)
		}
	}
	for method, rule := range auth.Policy {
		if rule.Permission != auth.Public {
			continue
		}
		require.True(t, strings.HasPrefix(method, "/grpc.health.v1.Health/") || strings.HasPrefix(method, "/vigil.gateway.v1.AuthService/"),
			"%s is public: only health checks and the session's own RPCs may be", method)
		require.NotEqual(t, "/vigil.gateway.v1.AuthService/WhoAmI", method)
	}
}
