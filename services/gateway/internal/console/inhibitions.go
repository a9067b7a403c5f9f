package console

import (
	"net/http"
	"strconv"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/inhibitrules"
	"github.com/vigil-ops/vigil/pkg/server"
)

// inhibitionsData is the inhibition rules' page.
type inhibitionsData struct {
	*monitorv1.InhibitionRules
	// YAML is the editor's text: the rules in force, or what the user
	// typed when the API refused it (Problem), from the version they
	// started from (EditVersion).
	YAML        string
	EditVersion int64
	Problem     *problem
}

// inhibitionsPage shows the inhibition rules in force and, to those the
// policy lets apply them (admins), the same rules as YAML to edit.
func (c *Console) inhibitionsPage(w http.ResponseWriter, r *http.Request) {
	if s, ok := c.signedIn(w, r); ok {
		c.showInhibitions(w, r, s, nil, http.StatusOK)
	}
}

// showInhibitions answers the rules' page; edit, if not nil, is the
// editor's refused text, shown again with what the API said.
func (c *Console) showInhibitions(w http.ResponseWriter, r *http.Request, s *session, edit *inhibitionsData, code int) {
	res, err := monitorv1.NewInhibitionServiceClient(c.opts.Conn).GetInhibitionRules(withToken(r.Context(), s.access), &monitorv1.GetInhibitionRulesRequest{})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	d := inhibitionsData{InhibitionRules: res.GetRules(), EditVersion: res.GetRules().GetVersion()}
	if edit != nil {
		d.YAML, d.EditVersion, d.Problem = edit.YAML, edit.EditVersion, edit.Problem
	} else {
		y, err := inhibitrules.Format(res.GetRules().GetRules())
		if err != nil {
			c.failCall(w, r, s, err)
			return
		}
		d.YAML = string(y)
	}
	c.render(w, r, s, "inhibitions", code, d)
}

// applyInhibitions replaces the rules with the posted YAML, if the
// version the editor started from is still the one in force (the API
// answers a conflict otherwise). The API checks every matcher and names
// the bad one; a refusal shows the editor again with the text as typed.
func (c *Console) applyInhibitions(w http.ResponseWriter, r *http.Request) {
	s, ok := c.posted(w, r)
	if !ok {
		return
	}
	text := r.PostFormValue("rules")
	version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil {
		err = server.InvalidArgument("invalid rules", server.FieldViolation{Field: "version", Description: "must be a number"})
	} else {
		var rules []*monitorv1.InhibitRule
		if rules, err = inhibitrules.Parse([]byte(text)); err != nil {
			err = server.InvalidArgument("invalid rules", server.FieldViolation{Field: "rules", Description: err.Error()})
		} else if _, err = monitorv1.NewInhibitionServiceClient(c.opts.Conn).ApplyInhibitionRules(withToken(r.Context(), s.access), &monitorv1.ApplyInhibitionRulesRequest{Rules: rules, Version: version}); err == nil {
			http.Redirect(w, r, withDone("/settings/inhibitions", "done.inhibitions_applied"), http.StatusSeeOther)
			return
		}
	}
	code, p, ok := refusal(err)
	if !ok {
		c.failCall(w, r, s, err)
		return
	}
	c.showInhibitions(w, r, s, &inhibitionsData{YAML: text, EditVersion: version, Problem: p}, code)
}
