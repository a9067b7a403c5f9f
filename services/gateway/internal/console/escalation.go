package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
)

func (c *Console) routeEscalation() {
	c.mux.HandleFunc("GET /settings/escalation", c.docPage(c.showPolicies))
	c.mux.HandleFunc("POST /settings/escalation", c.createPolicy)
	c.mux.HandleFunc("GET /settings/escalation/{name}", c.docPage(c.showPolicy))
	c.mux.HandleFunc("POST /settings/escalation/{name}", c.updatePolicy)
	c.mux.HandleFunc("POST /settings/escalation/{name}/delete", c.deletePolicy)
}

func (c *Console) policyClient() monitorv1.EscalationServiceClient {
	return monitorv1.NewEscalationServiceClient(c.opts.Conn)
}

// policySample is the new-policy editor's first text: the shape of the
// CLI's policy file (docs/escalation.md).
const policySample = `name: payments
team: payments
priorities: [P0, P1]
repeat: 1
steps:
  - schedules: [payments]
  - delay: 10m
    users: [mei]
`

// policyOutput are a policy's output-only fields, left out of its
// editor's text.
var policyOutput = []string{"from_file", "updated_at", "updated_by"}

// policyView is a policy as the pages show it.
type policyView struct {
	*monitorv1.EscalationPolicy
	Priorities []string
	Steps      []policyStep
}

// policyStep is a step with its delay written as people write it.
type policyStep struct {
	*monitorv1.EscalationStep
	N     int
	Delay string
}

func newPolicyView(p *monitorv1.EscalationPolicy) policyView {
	v := policyView{EscalationPolicy: p}
	for _, pr := range p.GetPriorities() {
		v.Priorities = append(v.Priorities, policyPriority(pr))
	}
	for i, st := range p.GetSteps() {
		sv := policyStep{EscalationStep: st, N: i + 1}
		if d := st.GetDelay().AsDuration(); d > 0 {
			sv.Delay = d.String()
		}
		v.Steps = append(v.Steps, sv)
	}
	return v
}

// policiesData is the list page's data.
type policiesData struct {
	Team      string
	Policies  []policyView
	CanCreate bool
	Document  string
	Edit      *docEdit
}

func (c *Console) showPolicies(w http.ResponseWriter, r *http.Request, s *session, edit *docEdit, code int) {
	team := strings.TrimSpace(r.URL.Query().Get("team"))
	res, err := c.policyClient().ListPolicies(withToken(r.Context(), s.access), &monitorv1.ListPoliciesRequest{Team: team})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	d := policiesData{
		Team: team, CanCreate: s.canForSomeTeam("/vigil.monitor.v1.EscalationService/CreatePolicy"), Document: edit.or(policySample), Edit: edit,
	}
	for _, p := range res.GetPolicies() {
		d.Policies = append(d.Policies, newPolicyView(p))
	}
	c.render(w, r, s, "policies", code, d)
}

// policyData is one policy's page.
type policyData struct {
	policyView
	Document string
	Edit     *docEdit
}

func (c *Console) showPolicy(w http.ResponseWriter, r *http.Request, s *session, edit *docEdit, code int) {
	res, err := c.policyClient().GetPolicy(withToken(r.Context(), s.access), &monitorv1.GetPolicyRequest{Name: r.PathValue("name")})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	d := policyData{policyView: newPolicyView(res.GetPolicy()), Document: edit.or(writeDoc(res.GetPolicy(), true, policyOutput...)), Edit: edit}
	c.render(w, r, s, "policy", code, d)
}

func (c *Console) createPolicy(w http.ResponseWriter, r *http.Request) {
	p := &monitorv1.EscalationPolicy{}
	c.applyDoc(w, r, p, true, func(ctx context.Context) (string, string, error) {
		res, err := c.policyClient().CreatePolicy(ctx, &monitorv1.CreatePolicyRequest{Policy: p})
		return "/settings/escalation/" + url.PathEscape(res.GetPolicy().GetName()), "done.policy_created", err
	}, func(s *session, e *docEdit, code int) { c.showPolicies(w, r, s, e, code) })
}

// updatePolicy replaces the policy of the page: the name is the page's,
// whatever the text says, so an edit cannot replace another policy.
func (c *Console) updatePolicy(w http.ResponseWriter, r *http.Request) {
	p := &monitorv1.EscalationPolicy{}
	c.applyDoc(w, r, p, true, func(ctx context.Context) (string, string, error) {
		p.Name = r.PathValue("name")
		_, err := c.policyClient().UpdatePolicy(ctx, &monitorv1.UpdatePolicyRequest{Policy: p})
		return "/settings/escalation/" + url.PathEscape(p.GetName()), "done.policy_updated", err
	}, func(s *session, e *docEdit, code int) { c.showPolicy(w, r, s, e, code) })
}

func (c *Console) deletePolicy(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		_, err := c.policyClient().DeletePolicy(ctx, &monitorv1.DeletePolicyRequest{Name: r.PathValue("name")})
		return "/settings/escalation", "done.policy_deleted", err
	})
}
