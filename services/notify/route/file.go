package route

import (
	"encoding/json"
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"

	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/pkg/server"
)

// MaxFileSize bounds a routing document: hundreds of routes fit.
const MaxFileSize = 1 << 20

// Parse reads a routing document, YAML or JSON, in the API's shape (the
// fields of RoutingConfig, snake_case):
//
//	route:
//	  receivers: [telegram]
//	  repeat_interval: 4h
//	  routes:
//	    - teams: [payments]
//	      receivers: [payments-slack]
//
// An unknown field is refused with its path, so that a typo does not
// quietly widen a route. Parse checks the shape only; Compile checks the
// values.
func Parse(data []byte) (*notifyv1.RoutingConfig, error) {
	if len(data) > MaxFileSize {
		return nil, server.InvalidArgument("invalid routes", server.FieldViolation{
			Field: "route", Description: fmt.Sprintf("the document is larger than %d bytes", MaxFileSize),
		})
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, server.InvalidArgument("invalid routes", server.FieldViolation{Field: "route", Description: err.Error()})
	}
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, server.InvalidArgument("invalid routes", server.FieldViolation{Field: "route", Description: err.Error()})
	}
	cfg := &notifyv1.RoutingConfig{}
	if doc == nil {
		return cfg, nil
	}
	var bad server.BadRequestError
	unknown(&bad, doc, cfg.ProtoReflect().Descriptor(), "")
	if err := bad.Err("invalid routes"); err != nil {
		return nil, err
	}
	if err := protojson.Unmarshal(js, cfg); err != nil {
		return nil, server.InvalidArgument("invalid routes", server.FieldViolation{Field: "route", Description: err.Error()})
	}
	return cfg, nil
}

// unknown reports the fields of v, a decoded JSON value of message md at
// path, that md does not have.
func unknown(bad *server.BadRequestError, v any, md protoreflect.MessageDescriptor, path string) {
	obj, ok := v.(map[string]any)
	if !ok {
		return // protojson reports the wrong type
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field := k
		if path != "" {
			field = path + "." + k
		}
		fd := md.Fields().ByName(protoreflect.Name(k))
		if fd == nil {
			fd = md.Fields().ByJSONName(k)
		}
		if fd == nil {
			bad.Add(field, "unknown field")
			continue
		}
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			continue
		}
		if !fd.IsList() {
			unknown(bad, obj[k], fd.Message(), field)
			continue
		}
		items, _ := obj[k].([]any)
		for i, item := range items {
			unknown(bad, item, fd.Message(), fmt.Sprintf("%s[%d]", field, i))
		}
	}
}
