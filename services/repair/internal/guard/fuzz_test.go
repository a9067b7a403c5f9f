package guard

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
)

// FuzzParseFile feeds the file parser arbitrary input: it never panics,
// what it accepts is valid, and written back as JSON it reads the same.
func FuzzParseFile(f *testing.F) {
	for _, glob := range []string{"testdata/*", "testdata/bad/*"} {
		files, err := filepath.Glob(glob)
		require.NoError(f, err)
		for _, name := range files {
			if data, err := os.ReadFile(name); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("cooldown: 1ns\nmax_memory_bytes: 1Ki\nmax_auto_risk: critical"))
	f.Add([]byte(`{"scopes": [{"scope": "namespace/a/b", "deny": [3, "DELETE_POD"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parseFile(data)
		if err != nil {
			return
		}
		require.NoError(t, Validate(file.Global))
		require.Equal(t, Global, file.Global.GetScope())
		scopes := make([]*repairv1.Guardrails, 0, len(file.Scopes))
		docs := make([]json.RawMessage, 0, len(file.Scopes))
		opts := protojson.MarshalOptions{UseProtoNames: true}
		for name, g := range file.Scopes {
			require.Equal(t, name, g.GetScope())
			require.NoError(t, Validate(g))
			scopes = append(scopes, g)
			doc, err := opts.Marshal(g)
			require.NoError(t, err)
			docs = append(docs, doc)
		}
		s := Effective(file.Base(), scopes...)
		require.NoError(t, Validate(ToProto(s, Global)))

		top, err := opts.Marshal(file.Global)
		require.NoError(t, err)
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(top, &m))
		if len(docs) > 0 {
			m["scopes"], err = json.Marshal(docs)
			require.NoError(t, err)
		}
		again, err := json.Marshal(m)
		require.NoError(t, err)
		back, err := parseFile(again)
		require.NoError(t, err, "%s", again)
		require.True(t, proto.Equal(file.Global, back.Global), "%v != %v", file.Global, back.Global)
		require.Len(t, back.Scopes, len(file.Scopes))
		for name, g := range file.Scopes {
			require.True(t, proto.Equal(g, back.Scopes[name]), "%v != %v", g, back.Scopes[name])
		}
	})
}
