package guard

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
)

// Apply returns the guardrails of a scope after SetGuardrails: current (as
// stored; nil when the scope has none yet) with every field present in
// update replacing its value, and every field named in clearFields (the
// request's clear: proto field names, as in "min_confidence") unset, so
// that it inherits again. A repeated field is present when it is not empty:
// update's deny replaces the scope's own deny list (the deny lists of the
// scopes above and the built-in one still apply; see Effective).
//
// The result's scope is update's, "" read as "global"; current must be of
// the same scope. Deny and allowed_namespaces come out sorted, each entry
// once.
//
// A bad request returns a *server.BadRequestError whose fields are named as in
// SetGuardrailsRequest: "guardrails.cooldown", "clear[1]". Unknown names in
// clearFields are refused, and so is a field both set and cleared. Neither
// current nor update is modified.
func Apply(current, update *repairv1.Guardrails, clearFields []string) (*repairv1.Guardrails, error) {
	var v violations
	scope := canonical(update.GetScope())
	if current != nil && canonical(current.GetScope()) != scope {
		v.add("guardrails.scope", "is %q, but the guardrails being changed are those of %q", scope, canonical(current.GetScope()))
	}
	v.guardrails("guardrails.", update)

	set := map[protoreflect.Name]bool{}
	if update != nil {
		update.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			set[fd.Name()] = true
			return true
		})
	}
	fields := (&repairv1.Guardrails{}).ProtoReflect().Descriptor().Fields()
	var cleared []protoreflect.FieldDescriptor
	for i, name := range clearFields {
		field := fmt.Sprintf("clear[%d]", i)
		fd := fields.ByName(protoreflect.Name(name))
		switch {
		case name == "scope":
			v.add(field, "scope cannot be cleared")
		case fd == nil:
			v.add(field, "unknown field %q; want one of %s", name, clearable())
		case set[fd.Name()]:
			v.add(field, "%s is also set in guardrails: set it or clear it, not both", name)
		default:
			cleared = append(cleared, fd)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}

	out := &repairv1.Guardrails{}
	if current != nil {
		out = proto.CloneOf(current)
	}
	m := out.ProtoReflect()
	for _, fd := range cleared {
		m.Clear(fd)
	}
	if update != nil {
		up := proto.CloneOf(update)
		up.Scope = ""
		// proto.Merge appends lists and merges messages field by field:
		// clear first so that update's values replace.
		up.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			m.Clear(fd)
			return true
		})
		proto.Merge(out, up)
	}
	out.Scope = scope
	normalize(out)
	return out, nil
}

// normalize sorts g's lists and keeps each entry once.
func normalize(g *repairv1.Guardrails) {
	if len(g.Deny) > 0 {
		slices.Sort(g.Deny)
		g.Deny = slices.Compact(g.Deny)
	}
	if len(g.AllowedNamespaces) > 0 {
		slices.Sort(g.AllowedNamespaces)
		g.AllowedNamespaces = slices.Compact(g.AllowedNamespaces)
	}
}

// clearable lists the names Apply accepts in clear.
func clearable() string {
	fields := (&repairv1.Guardrails{}).ProtoReflect().Descriptor().Fields()
	names := make([]string, 0, fields.Len()-1)
	for i := range fields.Len() {
		if n := string(fields.Get(i).Name()); n != "scope" {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}
