package llm_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm/llmtest"
)

// with returns the answer about shop with fields replaced (a nil value
// deletes the field).
func with(t testing.TB, changes map[string]any) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(answer("payments", "shop", "app")), &m))
	for k, v := range changes {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return string(b)
}

func params(replicas, container, limit, revision any) map[string]any {
	return map[string]any{"replicas": replicas, "container": container, "limit_bytes": limit, "revision": revision}
}

func TestParseAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		check   func(t *testing.T, r engine.Result)
		wantErr string
	}{
		{name: "memory limit", in: answer("payments", "shop", "app"), check: func(t *testing.T, r engine.Result) {
			require.Equal(t, "app", r.Proposal.GetMemoryLimit().GetContainer())
		}},
		{name: "scale", in: with(t, map[string]any{"action": "SCALE_DEPLOYMENT", "params": params(4, nil, nil, nil)}), check: func(t *testing.T, r engine.Result) {
			require.Equal(t, int32(4), r.Proposal.GetScale().GetReplicas())
		}},
		{name: "rollback to previous", in: with(t, map[string]any{"action": "ROLLBACK_DEPLOYMENT", "params": params(nil, nil, nil, nil)}), check: func(t *testing.T, r engine.Result) {
			require.Equal(t, int64(0), r.Proposal.GetRollback().GetRevision())
		}},
		{name: "none without target", in: with(t, map[string]any{"action": "NONE", "target": map[string]any{"kind": "", "namespace": "", "name": ""}, "params": params(nil, nil, nil, nil)}), check: func(t *testing.T, r engine.Result) {
			require.Equal(t, typesv1.RepairAction_REPAIR_ACTION_NONE, r.Proposal.GetAction())
			require.Nil(t, r.Proposal.GetTarget())
		}},
		{name: "zeros count as unset", in: with(t, map[string]any{"action": "RESTART_DEPLOYMENT", "params": params(0, "", 0, 0)}), check: func(t *testing.T, r engine.Result) {
			require.Nil(t, r.Proposal.GetParams())
		}},
		{name: "surrounding whitespace", in: "\n " + answer("payments", "shop", "app") + "\n"},

		{name: "empty", in: "", wantErr: "empty answer"},
		{name: "not JSON", in: "Sure! Here is the analysis: restart it.", wantErr: "not a JSON object"},
		{name: "fenced", in: "```json\n" + answer("payments", "shop", "app") + "\n```", wantErr: "not a JSON object"},
		{name: "array", in: "[]", wantErr: "not a JSON object"},
		{name: "trailing data", in: answer("payments", "shop", "app") + `{"x":1}`, wantErr: "not a JSON object"},
		{name: "unknown field", in: with(t, map[string]any{"risk": "LOW"}), wantErr: `unknown field "risk"`},
		{name: "missing field", in: with(t, map[string]any{"reasoning": nil}), wantErr: "reasoning is missing"},
		{name: "null field", in: strings.Replace(answer("payments", "shop", "app"), `"ruled_out":["a bad deploy: no recent change"]`, `"ruled_out":null`, 1), wantErr: "ruled_out is missing"},
		{name: "wrong type", in: with(t, map[string]any{"confidence": "high"}), wantErr: "does not match the schema"},
		{name: "confidence above one", in: with(t, map[string]any{"confidence": 1.5}), wantErr: "not between 0 and 1"},
		{name: "unknown action", in: with(t, map[string]any{"action": "DELETE_NAMESPACE"}), wantErr: `action "DELETE_NAMESPACE" is not one of the repair actions`},
		{name: "enum number", in: with(t, map[string]any{"action": 6}), wantErr: "does not match the schema"},
		{name: "empty summary", in: with(t, map[string]any{"summary": " "}), wantErr: "summary is empty"},
		{name: "target missing name", in: with(t, map[string]any{"target": map[string]any{"kind": "Deployment", "namespace": "payments"}}), wantErr: "target.name is missing"},
		{name: "target extra field", in: with(t, map[string]any{"target": map[string]any{"kind": "Namespace", "namespace": "", "name": "kube-system", "cluster": "x"}}), wantErr: `unknown field "cluster"`},
		{name: "action without target", in: with(t, map[string]any{"target": map[string]any{"kind": "", "namespace": "", "name": ""}}), wantErr: "needs a target"},
		{name: "params missing key", in: with(t, map[string]any{"params": map[string]any{"container": "app", "limit_bytes": 1}}), wantErr: "params.replicas is missing"},
		{name: "scale without replicas", in: with(t, map[string]any{"action": "SCALE_DEPLOYMENT", "params": params(nil, nil, nil, nil)}), wantErr: "needs params.replicas"},
		{name: "negative replicas", in: with(t, map[string]any{"action": "SCALE_DEPLOYMENT", "params": params(-1, nil, nil, nil)}), wantErr: "not between 0 and"},
		{name: "fractional replicas", in: with(t, map[string]any{"action": "SCALE_DEPLOYMENT", "params": params(2.5, nil, nil, nil)}), wantErr: "does not match the schema"},
		{name: "memory without container", in: with(t, map[string]any{"params": params(nil, nil, 1024, nil)}), wantErr: "needs params.container"},
		{name: "memory limit zero", in: with(t, map[string]any{"params": params(nil, "app", 0, nil)}), wantErr: "not between 1 and"},
		{name: "params of another action", in: with(t, map[string]any{"params": params(3, "app", 1024, nil)}), wantErr: "params.replicas is set but INCREASE_MEMORY_LIMIT"},
		{name: "too long", in: with(t, map[string]any{"reasoning": strings.Repeat("x", 5000)}), wantErr: "longer than"},
		{name: "too many items", in: with(t, map[string]any{"evidence": make([]string, 51)}), wantErr: "more than 50 items"},
		{name: "invalid UTF-8", in: "{\"summary\":\"\xff\"}", wantErr: "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := llm.ParseAnswer(tt.in)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, engine.ErrUnusable)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// FuzzParseAnswer: whatever a model says, the parser returns a result or
// ErrUnusable with a message fit to log, never panics, and a result it
// accepts is in shape.
func FuzzParseAnswer(f *testing.F) {
	f.Add(answer("payments", "shop", "app"))
	f.Add(`{"summary":"s","root_cause":"","evidence":[],"ruled_out":[],"action":"NONE","target":{"kind":"","namespace":"","name":""},"params":{"replicas":null,"container":null,"limit_bytes":null,"revision":null},"confidence":0,"reasoning":""}`)
	f.Add(`{"summary":"s","root_cause":"","evidence":[],"ruled_out":[],"action":"SCALE_DEPLOYMENT","target":{"kind":"Deployment","namespace":"a","name":"b"},"params":{"replicas":3,"container":null,"limit_bytes":null,"revision":null},"confidence":1,"reasoning":""}`)
	f.Add(`{"action": "DELETE_NAMESPACE"}`)
	f.Add(`null`)
	f.Add(with(f, map[string]any{"action": "DELETE_NAMESPACE " + strings.Repeat("x", 10000)}))
	f.Add(strings.Replace(answer("payments", "shop", "app"), "402653184", strings.Repeat("9", 10000), 1))
	f.Add(strings.Replace(answer("payments", "shop", "app"), "0.8", "1e999", 1))
	f.Add(with(f, map[string]any{"action": "ROLLBACK_DEPLOYMENT", "params": params(nil, nil, nil, -3)}))
	f.Add(with(f, map[string]any{"action": "SCALE_DEPLOYMENT", "params": params(2147483648, nil, nil, nil)}))
	f.Add("{\"summary\":\"\u00e9\xc3\"}")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := llm.ParseAnswer(in)
		if err != nil {
			llmtest.CheckError(t, err, engine.ErrUnusable)
			return
		}
		llmtest.CheckResult(t, r)
	})
}
