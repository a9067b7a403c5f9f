package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/human"
	"github.com/vigil-ops/vigil/pkg/server"
)

// guardField is one guardrail the page shows and edits: its proto field
// name (the API's, and the form's), how it is written, and whether only
// the global scope sets it. The kill switch (paused) has its own button.
type guardField struct {
	Name, Kind string
	Global     bool
}

var guardFields = []guardField{
	{Name: "auto", Kind: "bool"},
	{Name: "max_auto_per_hour", Kind: "count", Global: true},
	{Name: "max_auto_per_resource", Kind: "count"},
	{Name: "cooldown", Kind: "duration"},
	{Name: "min_confidence", Kind: "confidence"},
	{Name: "max_auto_risk", Kind: "risk"},
	{Name: "max_pods_affected", Kind: "count"},
	{Name: "min_healthy_replicas", Kind: "count"},
	{Name: "deny", Kind: "actions"},
	{Name: "allowed_namespaces", Kind: "namespaces", Global: true},
	{Name: "dry_run", Kind: "bool"},
	{Name: "approval_ttl", Kind: "duration"},
	{Name: "undo_on_failure", Kind: "bool"},
	{Name: "verify_window", Kind: "duration"},
	{Name: "max_replicas", Kind: "count"},
	{Name: "max_memory_bytes", Kind: "memory"},
}

// guardRow is one guardrail as the scope sets it (Set, "" when it
// inherits; Checked for the deny list) and as it applies.
type guardRow struct {
	guardField
	Set       string
	Checked   map[string]bool
	Effective string
}

// guardData is the guardrails page's data.
type guardData struct {
	Scope   string
	Global  bool
	Paused  bool
	Rows    []guardRow
	Actions []string
	Risks   []string
}

func (c *Console) guardrailsPage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	scope := strings.TrimSpace(r.URL.Query().Get("scope"))
	if scope == "" {
		scope = "global"
	}
	res, err := repairv1.NewRepairServiceClient(c.opts.Conn).GetGuardrails(withToken(r.Context(), s.access), &repairv1.GetGuardrailsRequest{Scope: scope})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	// Every scope's effective guardrails carry the global kill switch.
	d := guardData{
		Scope: scope, Global: scope == "global", Paused: res.GetEffective().GetPaused(),
		Actions: deniableActions(), Risks: []string{"LOW", "MEDIUM", "HIGH"},
	}
	c.guard.note(d.Paused)
	for _, f := range guardFields {
		if f.Global && !d.Global {
			continue
		}
		row := guardRow{guardField: f}
		row.Set, _ = guardValue(res.GetSet(), f)
		row.Effective, _ = guardValue(res.GetEffective(), f)
		if f.Kind == "actions" {
			row.Checked = map[string]bool{}
			for _, a := range res.GetSet().GetDeny() {
				row.Checked[actionName(a)] = true
			}
		}
		d.Rows = append(d.Rows, row)
	}
	c.render(w, r, s, "guardrails", http.StatusOK, d)
}

// setGuardrails changes what the form changed of a scope's guardrails:
// a field given a new value is set, a field emptied is cleared (it
// inherits again), and the others are not sent, so the request (and its
// audit record) says exactly what the person changed.
func (c *Console) setGuardrails(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		scope := strings.TrimSpace(r.PostFormValue("scope"))
		if scope == "" {
			scope = "global"
		}
		to := "/guardrails?scope=" + url.QueryEscape(scope)
		rs := repairv1.NewRepairServiceClient(c.opts.Conn)
		cur, err := rs.GetGuardrails(ctx, &repairv1.GetGuardrailsRequest{Scope: scope})
		if err != nil {
			return "", "", err
		}
		req, err := guardChange(scope, cur.GetSet(), r)
		if err != nil {
			return "", "", err
		}
		if len(req.GetClear()) == 0 && !hasGuardFields(req.GetGuardrails()) {
			return to, "done.guard.unchanged", nil
		}
		if _, err := rs.SetGuardrails(ctx, req); err != nil {
			return "", "", err
		}
		return to, "done.guard.saved", nil
	})
}

// killSwitch stops every automatic repair (people are asked instead), or
// lets them run again: the global scope's paused.
func (c *Console) killSwitch(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		on := r.PostFormValue("paused") == "true"
		res, err := repairv1.NewRepairServiceClient(c.opts.Conn).SetGuardrails(ctx, &repairv1.SetGuardrailsRequest{
			Guardrails: &repairv1.Guardrails{Scope: "global", Paused: proto.Bool(on)},
		})
		if err != nil {
			return "", "", err
		}
		c.guard.note(res.GetEffective().GetPaused())
		if on {
			return "/guardrails", "done.guard.paused", nil
		}
		return "/guardrails", "done.guard.resumed", nil
	})
}

// guardChange is the SetGuardrailsRequest of the posted form against the
// scope's guardrails as set now (current): only what differs. A value
// the form cannot read is refused as the API refuses one, naming its
// field, and nothing is sent.
func guardChange(scope string, current *repairv1.Guardrails, r *http.Request) (*repairv1.SetGuardrailsRequest, error) {
	if current == nil {
		current = &repairv1.Guardrails{}
	}
	want := &repairv1.Guardrails{Scope: scope}
	req := &repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{Scope: scope}}
	var bad server.BadRequestError
	for _, f := range guardFields {
		if f.Global && scope != "global" {
			continue
		}
		fd := want.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(f.Name))
		if err := parseGuard(want, f, r.PostForm[f.Name]); err != nil {
			bad.Add("guardrails."+f.Name, err.Error())
			continue
		}
		has, had := want.ProtoReflect().Has(fd), current.ProtoReflect().Has(fd)
		switch {
		case !has && had:
			req.Clear = append(req.Clear, f.Name)
		case has && !proto.Equal(only(want, fd), only(current, fd)):
			req.GetGuardrails().ProtoReflect().Set(fd, want.ProtoReflect().Get(fd))
		}
	}
	if err := bad.Err("invalid guardrails"); err != nil {
		return nil, err
	}
	return req, nil
}

// only is a copy of g with nothing but its field fd.
func only(g *repairv1.Guardrails, fd protoreflect.FieldDescriptor) *repairv1.Guardrails {
	o := &repairv1.Guardrails{}
	if g.ProtoReflect().Has(fd) {
		o.ProtoReflect().Set(fd, g.ProtoReflect().Get(fd))
	}
	return o
}

// hasGuardFields reports whether g sets a field besides its scope.
func hasGuardFields(g *repairv1.Guardrails) bool {
	found := false
	g.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		found = fd.Name() != "scope"
		return !found
	})
	return found
}

var memoryRE = regexp.MustCompile(`^([0-9]+)\s*(Ki|Mi|Gi|Ti|K|M|G|T)?$`)

var memoryUnits = map[string]int64{"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}

// parseGuard sets field f of g from the form's values; an empty value
// leaves it unset (it inherits). Ranges are the API's to check.
func parseGuard(g *repairv1.Guardrails, f guardField, values []string) error {
	v := ""
	if len(values) > 0 {
		v = strings.TrimSpace(values[0])
	}
	if v == "" && f.Kind != "actions" {
		return nil
	}
	m := g.ProtoReflect()
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(f.Name))
	switch f.Kind {
	case "count":
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		m.Set(fd, protoreflect.ValueOfInt32(int32(n)))
	case "duration":
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 90s, 10m or 1h30m", v)
		}
		m.Set(fd, protoreflect.ValueOfMessage(durationpb.New(d).ProtoReflect()))
	case "confidence":
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number such as 0.85", v)
		}
		g.MinConfidence = proto.Float64(x)
	case "risk":
		n, ok := typesv1.Risk_value["RISK_"+strings.ToUpper(v)]
		if !ok {
			return fmt.Errorf("%q is not a risk: LOW, MEDIUM or HIGH", v)
		}
		g.MaxAutoRisk = typesv1.Risk(n)
	case "bool":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		m.Set(fd, protoreflect.ValueOfBool(b))
	case "actions":
		for _, name := range values {
			n, ok := typesv1.RepairAction_value["REPAIR_ACTION_"+name]
			if !ok {
				return fmt.Errorf("%q is not an action", name)
			}
			g.Deny = append(g.Deny, typesv1.RepairAction(n))
		}
		slices.Sort(g.Deny)
		g.Deny = slices.Compact(g.Deny)
	case "namespaces":
		for ns := range strings.SplitSeq(v, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				g.AllowedNamespaces = append(g.AllowedNamespaces, ns)
			}
		}
		slices.Sort(g.AllowedNamespaces)
		g.AllowedNamespaces = slices.Compact(g.AllowedNamespaces)
	case "memory":
		mm := memoryRE.FindStringSubmatch(v)
		if mm == nil {
			return fmt.Errorf("%q is not a size such as 4Gi, 512Mi or 4G", v)
		}
		n, err := strconv.ParseInt(mm[1], 10, 64)
		if err != nil || n > (1<<62)/memoryUnits[mm[2]] {
			return fmt.Errorf("%q is too large", v)
		}
		g.MaxMemoryBytes = proto.Int64(n * memoryUnits[mm[2]])
	}
	return nil
}

// guardValue is field f of g as the form writes it, false when unset.
func guardValue(g *repairv1.Guardrails, f guardField) (string, bool) {
	if g == nil {
		return "", false
	}
	m := g.ProtoReflect()
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(f.Name))
	if !m.Has(fd) {
		return "", false
	}
	switch f.Kind {
	case "duration":
		return human.Duration(m.Get(fd).Message().Interface().(*durationpb.Duration).AsDuration()), true
	case "risk":
		return strings.TrimPrefix(g.GetMaxAutoRisk().String(), "RISK_"), true
	case "actions":
		names := make([]string, len(g.GetDeny()))
		for i, a := range g.GetDeny() {
			names[i] = actionName(a)
		}
		return strings.Join(names, ", "), true
	case "namespaces":
		return strings.Join(g.GetAllowedNamespaces(), ", "), true
	case "memory":
		return memory(g.GetMaxMemoryBytes()), true
	}
	return fmt.Sprint(m.Get(fd).Interface()), true
}

// memory writes a size in the largest binary unit that divides it.
func memory(b int64) string {
	for _, u := range []string{"Ti", "Gi", "Mi", "Ki"} {
		if b != 0 && b%memoryUnits[u] == 0 {
			return strconv.FormatInt(b/memoryUnits[u], 10) + u
		}
	}
	return strconv.FormatInt(b, 10)
}

// actionName is an action as the form names it: "DELETE_POD".
func actionName(a typesv1.RepairAction) string {
	return strings.TrimPrefix(a.String(), "REPAIR_ACTION_")
}

// deniableActions are the actions a scope may deny: every one but none.
func deniableActions() []string {
	var out []string
	values := typesv1.RepairAction(0).Descriptor().Values()
	for i := range values.Len() {
		if a := typesv1.RepairAction(values.Get(i).Number()); a > typesv1.RepairAction_REPAIR_ACTION_NONE {
			out = append(out, actionName(a))
		}
	}
	return out
}

// killState is what the console last heard of the kill switch, for the
// banner every page shows while it is on. Asking the API on every page
// would add a call to each; this asks at most once per killTTL per
// gateway (the switch changed through this console shows at once, one
// changed elsewhere within killTTL).
type killState struct {
	mu sync.Mutex
	at time.Time
	on bool
}

const killTTL = 10 * time.Second

// note records the switch as an answer of the API just said.
func (k *killState) note(on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.at, k.on = time.Now(), on
}

// paused reports whether the kill switch is on, asking the API with the
// session's token when the last answer is older than killTTL. Any user
// may read the global guardrails, so one user's answer may serve all.
// One request asks; the others meanwhile keep the last answer rather
// than wait on the call. An API that does not answer shows no banner
// change; the page is not failed for it.
func (c *Console) paused(ctx context.Context, s *session) bool {
	if s == nil {
		return false
	}
	k := &c.guard
	k.mu.Lock()
	on, asked := k.on, k.at
	if time.Since(asked) < killTTL {
		k.mu.Unlock()
		return on
	}
	asked = time.Now()
	k.at = asked
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := repairv1.NewRepairServiceClient(c.opts.Conn).GetGuardrails(withToken(ctx, s.access), &repairv1.GetGuardrailsRequest{Scope: "global"})
	if err != nil {
		c.opts.Log.WarnContext(ctx, "console could not read the kill switch", "error", err)
		return on
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	// A note since the call began (the switch changed through this
	// console) is newer than this answer.
	if k.at.Equal(asked) {
		k.on = res.GetEffective().GetPaused()
	}
	return k.on
}
