package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
)

// maxFileSize bounds the configuration file: a few hundred scopes fit.
const maxFileSize = 1 << 20

// File is the guardrails configuration file, an operator's settings under
// those set through the API. It is YAML (or JSON) with the field names of
// the Guardrails message in the repair API, snake_case:
//
//	# The top level is the global scope.
//	max_auto_per_hour: 5
//	cooldown: 10m              # durations as Go writes them: 90s, 10m, 1h30m
//	max_auto_risk: LOW         # RISK_LOW works too
//	deny: [ROLLBACK_DEPLOYMENT]
//	max_memory_bytes: 4Gi      # bytes, or a Kubernetes quantity
//	allowed_namespaces: [shop, payments]
//	scopes:                    # optional: namespaces and apps
//	  - scope: namespace/prod/payments
//	    min_confidence: 0.95
//	  - scope: app/shop
//	    auto: true
//
// The top level may say scope: global, nothing else. Unknown fields are
// refused, so that a typo does not silently leave a guardrail at its
// default.
type File struct {
	// Global holds the top level; never nil, its scope is "global".
	Global *repairv1.Guardrails
	// Scopes holds the entries of scopes:, by scope name. An entry is
	// layered under the scope of the same name set through the API: pass
	// it to Effective just before that one.
	Scopes map[string]*repairv1.Guardrails
}

// Base returns the settings every scope starts from: Defaults overlaid with
// the file's global guardrails.
func (f *File) Base() Settings { return Effective(Defaults(), f.Global) }

// LoadFile reads and checks a guardrails file. Every problem found is
// reported at once, in a *server.BadRequestError (fields named as in the file:
// "cooldown", "scopes[1].min_confidence") wrapped in an error that names
// the file.
func LoadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("guardrails file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("guardrails file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("guardrails file %s: larger than %d bytes", path, maxFileSize)
	}
	f, err := parseFile(data)
	if err != nil {
		return nil, fmt.Errorf("guardrails file %s: %w", path, err)
	}
	return f, nil
}

// parseFile reads a file's contents.
func parseFile(data []byte) (*File, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	f := &File{Global: &repairv1.Guardrails{Scope: Global}, Scopes: map[string]*repairv1.Guardrails{}}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, errors.New("the file must be a mapping of guardrail fields")
	}
	var v violations
	rawScopes, hasScopes := top["scopes"]
	delete(top, "scopes")
	v.document("", top, f.Global, true)
	if sc, err := ParseScope(f.Global.GetScope()); err == nil && !sc.IsGlobal() {
		v.add("scope", "the top level is the global scope: put the guardrails of %s under scopes:", sc)
		f.Global.Scope = Global
	}
	v.guardrails("", f.Global)
	f.Global.Scope = Global

	var list []json.RawMessage
	if hasScopes && json.Unmarshal(rawScopes, &list) != nil {
		v.add("scopes", "must be a list of guardrails, each with its scope")
	}
	where := map[string]int{}
	for i, raw := range list {
		at := fmt.Sprintf("scopes[%d]", i)
		var doc map[string]json.RawMessage
		if json.Unmarshal(raw, &doc) != nil || doc == nil {
			v.add(at, "must be a mapping of guardrail fields")
			continue
		}
		g := &repairv1.Guardrails{}
		v.document(at+".", doc, g, false)
		name := g.GetScope()
		switch j, dup := where[name]; {
		case name == "":
			v.add(at+".scope", "is required: app/<app> or namespace/<cluster>/<namespace>")
			continue
		case name == Global:
			v.add(at+".scope", "the global guardrails are the top level of the file")
			continue
		case dup:
			v.add(at+".scope", "%s is already set by scopes[%d]", name, j)
			continue
		}
		where[name] = i
		v.guardrails(at+".", g)
		f.Scopes[name] = g
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// document decodes the fields of one scope of the file into g.
func (v *violations) document(prefix string, doc map[string]json.RawMessage, g *repairv1.Guardrails, top bool) {
	fields := g.ProtoReflect().Descriptor().Fields()
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fd := fields.ByName(protoreflect.Name(k))
		if fd == nil {
			switch alt := fields.ByJSONName(k); {
			case alt != nil:
				v.add(prefix+k, "unknown field: did you mean %s?", alt.Name())
			case k == "scopes":
				v.add(prefix+k, "unknown field: scopes are listed at the top level only")
			default:
				v.add(prefix+k, "unknown field; known fields: %s", known(top))
			}
			continue
		}
		raw, err := fileValue(fd, doc[k])
		if err != nil {
			v.add(prefix+k, "%v", err)
			continue
		}
		one, err := json.Marshal(map[string]json.RawMessage{k: raw})
		if err != nil {
			v.add(prefix+k, "%v", err)
			continue
		}
		tmp := &repairv1.Guardrails{}
		if protojson.Unmarshal(one, tmp) != nil {
			// protojson's own message is unstable on purpose, points
			// into the document built here and uses JSON names.
			v.add(prefix+k, "invalid value %s: want %s", shorten(doc[k]), want(fd))
			continue
		}
		proto.Merge(g, tmp)
	}
}

// fileValue turns what people write in the file into the JSON protojson
// reads: "10m" into "600s", "4Gi" into 4294967296, "LOW" into "RISK_LOW".
func fileValue(fd protoreflect.FieldDescriptor, raw json.RawMessage) (json.RawMessage, error) {
	if fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Duration" {
		s, ok := jsonString(raw)
		if !ok {
			return raw, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("invalid duration %q: write it as 90s, 10m or 1h30m", s)
		}
		return protojson.Marshal(durationpb.New(d))
	}
	if fd.Kind() == protoreflect.Int64Kind && strings.HasSuffix(string(fd.Name()), "_bytes") {
		s, ok := jsonString(raw)
		if !ok {
			return raw, nil
		}
		q, err := resource.ParseQuantity(s)
		// ParseQuantity saturates what int64 cannot hold.
		if n := q.Value(); err != nil || n == math.MaxInt64 || n == math.MinInt64 {
			return nil, fmt.Errorf("invalid quantity %q: write a number of bytes or a quantity such as 512Mi or 4Gi", s)
		}
		return json.RawMessage(strconv.FormatInt(q.Value(), 10)), nil
	}
	if e := fd.Enum(); e != nil {
		if s, ok := jsonString(raw); ok {
			return json.Marshal(enumName(e, s))
		}
		var list []json.RawMessage
		if fd.IsList() && json.Unmarshal(raw, &list) == nil {
			for i, el := range list {
				if s, ok := jsonString(el); ok {
					b, err := json.Marshal(enumName(e, s))
					if err != nil {
						return nil, err
					}
					list[i] = b
				}
			}
			return json.Marshal(list)
		}
	}
	return raw, nil
}

// enumName returns the full name of an enum value written short or in
// lower case ("low", "DELETE_POD"); anything else unchanged, for protojson
// to refuse.
func enumName(e protoreflect.EnumDescriptor, s string) string {
	values := e.Values()
	if values.ByName(protoreflect.Name(s)) != nil {
		return s
	}
	prefix := strings.TrimSuffix(string(values.ByNumber(0).Name()), "UNSPECIFIED")
	for _, name := range []string{strings.ToUpper(s), prefix + strings.ToUpper(s)} {
		if values.ByName(protoreflect.Name(name)) != nil {
			return name
		}
	}
	return s
}

func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// want describes the values a field takes, for people.
func want(fd protoreflect.FieldDescriptor) string {
	var w string
	switch {
	case fd.Enum() != nil:
		values := fd.Enum().Values()
		prefix := strings.TrimSuffix(string(values.ByNumber(0).Name()), "UNSPECIFIED")
		names := make([]string, 0, values.Len()-1)
		for i := 1; i < values.Len(); i++ {
			names = append(names, strings.TrimPrefix(string(values.Get(i).Name()), prefix))
		}
		w = "one of " + strings.Join(names, ", ")
	case fd.Message() != nil:
		w = "a duration such as 90s, 10m or 1h30m"
	case fd.Kind() == protoreflect.BoolKind:
		w = "true or false"
	case fd.Kind() == protoreflect.DoubleKind:
		w = "a number"
	case fd.Kind() == protoreflect.StringKind:
		w = "a string"
	case strings.HasSuffix(string(fd.Name()), "_bytes"):
		w = "a number of bytes or a quantity such as 4Gi"
	default:
		w = "a whole number"
	}
	if fd.IsList() {
		return "a list, each entry " + w
	}
	return w
}

// shorten quotes at most the start of a value.
func shorten(raw json.RawMessage) string {
	const maxLen = 40
	if len(raw) > maxLen {
		return strings.ToValidUTF8(string(raw[:maxLen]), "") + "..."
	}
	return string(raw)
}

// known lists the field names a scope of the file may hold.
func known(top bool) string {
	fields := (&repairv1.Guardrails{}).ProtoReflect().Descriptor().Fields()
	names := make([]string, 0, fields.Len()+1)
	for i := range fields.Len() {
		names = append(names, string(fields.Get(i).Name()))
	}
	if top {
		names = append(names, "scopes")
	}
	return strings.Join(names, ", ")
}
