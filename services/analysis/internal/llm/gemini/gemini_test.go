package gemini_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/analysis/internal/llm"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm/gemini"
)

func TestSchema(t *testing.T) {
	t.Parallel()
	got, err := gemini.Schema(llm.Schema)
	require.NoError(t, err)
	b, err := json.Marshal(got)
	require.NoError(t, err)
	require.NotContains(t, string(b), "additionalProperties")
	require.Equal(t, "OBJECT", got["type"])
	params := got["properties"].(map[string]any)["params"].(map[string]any)["properties"].(map[string]any)
	require.Equal(t, map[string]any{"type": "INTEGER", "nullable": true, "description": "SCALE_DEPLOYMENT: the replicas wanted."}, params["replicas"])

	_, err = gemini.Schema(json.RawMessage(`{"type":["string","integer"]}`))
	require.ErrorContains(t, err, "no Gemini equivalent")
}
