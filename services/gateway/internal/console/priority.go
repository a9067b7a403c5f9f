package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/human"
	"github.com/vigil-ops/vigil/pkg/server"
)

// blankRules are the empty rows the form offers for new rules.
const blankRules = 3

// ruleRow is one priority rule as the form writes it.
type ruleRow struct {
	// N is the rule's place (the first matching rule wins); 0 for a row
	// to add one.
	N                                        int
	Matchers, App, Team, Namespace, Priority string
}

// targetRow is the response target of one priority ("" for none).
type targetRow struct {
	Priority, Target, Default string
}

// priorityData is the priority rules page's data.
type priorityData struct {
	Rules      []ruleRow
	Targets    []targetRow
	Defaults   bool
	FromFile   bool
	Priorities []string
}

// defaultTargets are the API's response targets when none are set.
var defaultTargets = map[string]string{"P0": "5m", "P1": "15m", "P2": "1h", "P3": ""}

func (c *Console) priorityPage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	res, err := monitorv1.NewEscalationServiceClient(c.opts.Conn).GetPriorityRules(withToken(r.Context(), s.access), &monitorv1.GetPriorityRulesRequest{})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	rules := res.GetRules()
	d := priorityData{FromFile: rules.GetFromFile(), Defaults: len(rules.GetTargets()) == 0, Priorities: []string{"P0", "P1", "P2", "P3"}}
	for i, pr := range rules.GetRules() {
		d.Rules = append(d.Rules, ruleRow{
			N: i + 1, Matchers: strings.Join(pr.GetMatchers(), ", "), App: pr.GetApp(), Team: pr.GetTeam(),
			Namespace: pr.GetNamespace(), Priority: priorityName(pr.GetPriority()),
		})
	}
	for range blankRules {
		d.Rules = append(d.Rules, ruleRow{})
	}
	set := map[string]string{}
	for _, t := range rules.GetTargets() {
		set[priorityName(t.GetPriority())] = human.Duration(t.GetTarget().AsDuration())
	}
	for _, p := range d.Priorities {
		d.Targets = append(d.Targets, targetRow{Priority: p, Target: set[p], Default: defaultTargets[p]})
	}
	c.render(w, r, s, "priority", http.StatusOK, d)
}

// setPriority replaces the rules and targets with the form's: rows left
// empty are dropped, targets left empty are none (all empty: the
// defaults). The API checks the rest (matchers, a priority per rule).
func (c *Console) setPriority(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		rules, err := readPriorityForm(r)
		if err != nil {
			return "", "", err
		}
		_, err = monitorv1.NewEscalationServiceClient(c.opts.Conn).SetPriorityRules(ctx, &monitorv1.SetPriorityRulesRequest{Rules: rules})
		return "/settings/priority", "done.priority.saved", err
	})
}

// readPriorityForm reads the rows of the form: each input is repeated
// once per row, in the rows' order (the first matching rule wins).
func readPriorityForm(r *http.Request) (*monitorv1.PriorityRules, error) {
	f := r.PostForm
	out := &monitorv1.PriorityRules{}
	var bad server.BadRequestError
	for i, p := range f["priority"] {
		at := func(name string) string {
			if v := f[name]; i < len(v) {
				return strings.TrimSpace(v[i])
			}
			return ""
		}
		row := ruleRow{Matchers: at("matchers"), App: at("app"), Team: at("team"), Namespace: at("namespace"), Priority: p}
		if row.Matchers == "" && row.App == "" && row.Team == "" && row.Namespace == "" {
			continue
		}
		out.Rules = append(out.Rules, &monitorv1.PriorityRule{
			Matchers: splitMatchers(row.Matchers), App: row.App, Team: row.Team, Namespace: row.Namespace,
			Priority: typesv1.Priority(typesv1.Priority_value["PRIORITY_"+row.Priority]),
		})
	}
	for _, p := range []string{"P0", "P1", "P2", "P3"} {
		v := strings.TrimSpace(f.Get("target_" + p))
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			bad.Add("rules.targets."+p, fmt.Sprintf("%q is not a duration such as 5m or 1h", v))
			continue
		}
		out.Targets = append(out.Targets, &monitorv1.ResponseTarget{
			Priority: typesv1.Priority(typesv1.Priority_value["PRIORITY_"+p]), Target: durationpb.New(d),
		})
	}
	return out, bad.Err("invalid priority rules")
}

// splitMatchers reads matchers written one after the other, separated by
// commas outside their quoted values: `alertname="A, B", severity="critical"`.
func splitMatchers(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, escaped := false, false
	flush := func() {
		if m := strings.TrimSpace(cur.String()); m != "" {
			out = append(out, m)
		}
		cur.Reset()
	}
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
		case r == '\\' && quoted:
			escaped = true
		case r == '"':
			quoted = !quoted
		case r == ',' && !quoted:
			flush()
			continue
		}
		cur.WriteRune(r)
	}
	flush()
	return out
}

// priorityName is "P1" for PRIORITY_P1, "" for none.
func priorityName(p typesv1.Priority) string {
	if p == typesv1.Priority_PRIORITY_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(p.String(), "PRIORITY_")
}
