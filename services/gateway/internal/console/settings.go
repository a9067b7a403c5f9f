package console

import "net/http"

// routeGuard routes the guard part of the console: the guardrails with
// the kill switch, and the settings pages of the webhook sources and the
// priority rules, under the settings index that links every settings
// page (the alerts and people parts serve the others).
func (c *Console) routeGuard() {
	c.mux.HandleFunc("GET /settings", c.settingsPage)
	c.mux.HandleFunc("GET /guardrails", c.guardrailsPage)
	c.mux.HandleFunc("POST /guardrails", c.setGuardrails)
	c.mux.HandleFunc("POST /guardrails/kill-switch", c.killSwitch)
	c.mux.HandleFunc("GET /settings/sources", c.sourceList)
	c.mux.HandleFunc("GET /settings/sources/new", c.newSourcePage)
	c.mux.HandleFunc("POST /settings/sources", c.createSource)
	c.mux.HandleFunc("POST /settings/sources/test", c.testSource)
	c.mux.HandleFunc("GET /settings/sources/{name}", c.sourcePage)
	c.mux.HandleFunc("POST /settings/sources/{name}", c.updateSource)
	c.mux.HandleFunc("POST /settings/sources/{name}/secret", c.rotateSecret)
	c.mux.HandleFunc("POST /settings/sources/{name}/delete", c.deleteSource)
	c.mux.HandleFunc("GET /settings/priority", c.priorityPage)
	c.mux.HandleFunc("POST /settings/priority", c.setPriority)
}

// settingsLink is one settings page of the index. Method, when set, is
// the API call the page lists with: the link shows only to those the
// API's policy lets call it (the page would answer 403 to the others).
type settingsLink struct {
	Path, Key, Method string
}

// settingsLinks are the settings pages, in the order the index lists them.
var settingsLinks = []settingsLink{
	{Path: "/settings/sources", Key: "settings.sources", Method: "/vigil.gateway.v1.SourceService/ListSources"},
	{Path: "/settings/priority", Key: "settings.priority"},
	{Path: "/settings/inhibitions", Key: "settings.inhibitions"},
	{Path: "/settings/channels", Key: "settings.channels"},
	{Path: "/settings/routes", Key: "settings.routes"},
	{Path: "/settings/escalation", Key: "settings.escalation"},
	{Path: "/settings/oncall", Key: "settings.oncall"},
}

func (c *Console) settingsPage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	c.render(w, r, s, "settings", http.StatusOK, settingsLinks)
}
