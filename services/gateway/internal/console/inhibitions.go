package console

import (
	"context"
	"net/http"
	"strconv"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/inhibitrules"
	"github.com/vigil-ops/vigil/pkg/server"
)

// inhibitionsData is the inhibition rules' page.
type inhibitionsData struct {
	*monitorv1.InhibitionRules
	// YAML is the rules in force as the editor shows them.
	YAML string
}

// inhibitionsPage shows the inhibition rules in force and, to those the
// policy lets apply them (admins), the same rules as YAML to edit.
func (c *Console) inhibitionsPage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	res, err := monitorv1.NewInhibitionServiceClient(c.opts.Conn).GetInhibitionRules(withToken(r.Context(), s.access), &monitorv1.GetInhibitionRulesRequest{})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	y, err := inhibitrules.Format(res.GetRules().GetRules())
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	c.render(w, r, s, "inhibitions", http.StatusOK, inhibitionsData{InhibitionRules: res.GetRules(), YAML: string(y)})
}

// applyInhibitions replaces the rules with the posted YAML, if the
// version the editor started from is still the one in force (the API
// answers a conflict otherwise). The API checks every matcher and names
// the bad one.
func (c *Console) applyInhibitions(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
		if err != nil {
			return "", "", server.InvalidArgument("invalid rules", server.FieldViolation{Field: "version", Description: "must be a number"})
		}
		rules, err := inhibitrules.Parse([]byte(r.PostFormValue("rules")))
		if err != nil {
			return "", "", server.InvalidArgument("invalid rules", server.FieldViolation{Field: "rules", Description: err.Error()})
		}
		_, err = monitorv1.NewInhibitionServiceClient(c.opts.Conn).ApplyInhibitionRules(ctx, &monitorv1.ApplyInhibitionRulesRequest{Rules: rules, Version: version})
		return "/settings/inhibitions", "done.inhibitions_applied", err
	})
}
