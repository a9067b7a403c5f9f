package route

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/common/model"

	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/pkg/matcher"
	"github.com/vigil-ops/vigil/pkg/server"
)

// Languages are the languages a route may ask its messages in.
var Languages = []string{"en", "zh-TW"}

// Priorities and Severities are the values routes match on.
var (
	Priorities = []string{"P0", "P1", "P2", "P3"}
	Severities = []string{"critical", "warning", "info"}
)

// maxDepth bounds the tree: a document nested deeper is a mistake, and
// the bound keeps a hostile one from exhausting the stack.
const maxDepth = 16

// Compile checks cfg and builds its tree. channel says whether a channel
// of that name exists now: a route to one that does not is refused (one
// deleted later is skipped when sending); templates, whether a template
// set of that name is loaded (nil: any). Every mistake is reported at
// once, as a *server.BadRequestError with the field's path
// (route.routes[1].matchers[0]).
func Compile(cfg *notifyv1.RoutingConfig, channel, templates func(name string) bool) (*Tree, error) {
	var bad server.BadRequestError
	if cfg.GetRoute() == nil {
		bad.Add("route", "is required: the root route, whose receivers hear what no other route takes")
		return nil, bad.Err("invalid routes")
	}
	r := cfg.GetRoute()
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"teams", len(r.GetTeams()) > 0},
		{"apps", len(r.GetApps()) > 0},
		{"namespaces", len(r.GetNamespaces()) > 0},
		{"priorities", len(r.GetPriorities()) > 0},
		{"severities", len(r.GetSeverities()) > 0},
		{"kinds", len(r.GetKinds()) > 0},
		{"matchers", len(r.GetMatchers()) > 0},
		{"continue", r.GetContinue()},
	} {
		if f.set {
			bad.Add("route."+f.name, "the root route matches everything: put conditions on its routes")
		}
	}
	if templates == nil {
		templates = func(string) bool { return true }
	}
	root := compile(&bad, r, "route", &node{}, known{channel, templates}, 0)
	if err := bad.Err("invalid routes"); err != nil {
		return nil, err
	}
	return &Tree{root: root}, nil
}

// known says which channels and template sets exist.
type known struct{ channel, templates func(string) bool }

// compile builds the node of r at path, under parent (whose receivers,
// repeat interval, locale and templates it inherits). A tree cannot hold
// a cycle: it is built from a document, each node from its own children.
func compile(bad *server.BadRequestError, r *notifyv1.Route, path string, parent *node, k known, depth int) *node {
	n := &node{
		path: path, name: r.GetName(), receivers: parent.receivers, cont: r.GetContinue(),
		teams: r.GetTeams(), apps: r.GetApps(), namespaces: r.GetNamespaces(),
		repeat: parent.repeat, language: parent.language, timeZone: parent.timeZone, templates: parent.templates,
	}
	if len(r.GetReceivers()) > 0 {
		n.receivers = nil
		for i, name := range r.GetReceivers() {
			field := fmt.Sprintf("%s.receivers[%d]", path, i)
			switch {
			case name == "":
				bad.Add(field, "is empty")
			case slices.Contains(n.receivers, name):
				bad.Addf(field, "%s is listed twice", name)
			case !k.channel(name):
				bad.Addf(field, "no channel named %s", name)
			default:
				n.receivers = append(n.receivers, name)
			}
		}
	}
	nonEmpty(bad, path+".teams", n.teams)
	nonEmpty(bad, path+".apps", n.apps)
	nonEmpty(bad, path+".namespaces", n.namespaces)
	n.priorities = oneOf(bad, path+".priorities", r.GetPriorities(), Priorities)
	n.severities = oneOf(bad, path+".severities", r.GetSeverities(), Severities)
	for i, k := range r.GetKinds() {
		kind := Kind(k)
		if !slices.Contains(Kinds, kind) && !slices.ContainsFunc(Kinds, func(o Kind) bool { return k == o.family()+".*" }) {
			bad.Addf(fmt.Sprintf("%s.kinds[%d]", path, i), "unknown kind %q: want one of %v, or a family as incident.*", k, Kinds)
			continue
		}
		n.kinds = append(n.kinds, kind)
	}
	for i, f := range r.GetMatchers() {
		ms, err := matcher.Parse([]string{f})
		if err != nil {
			var me *matcher.Error
			if errors.As(err, &me) {
				err = me.Err
			}
			bad.Addf(fmt.Sprintf("%s.matchers[%d]", path, i), "%q: %v", f, err)
			continue
		}
		n.matchers = append(n.matchers, ms...)
	}
	if s := r.GetRepeatInterval(); s != "" {
		d, err := model.ParseDuration(s)
		if err != nil {
			bad.Addf(path+".repeat_interval", "%q: want a duration as 30m, 4h or 1d (0: never)", s)
		}
		n.repeat = time.Duration(d)
	}
	if l := r.GetLanguage(); l != "" {
		if !slices.Contains(Languages, l) {
			bad.Addf(path+".language", "%q: want one of %v", l, Languages)
		}
		n.language = l
	}
	if z := r.GetTimeZone(); z != "" {
		if _, err := time.LoadLocation(z); err != nil {
			bad.Addf(path+".time_zone", "%q: not an IANA time zone (as Asia/Taipei)", z)
		}
		n.timeZone = z
	}
	if t := r.GetTemplates(); t != "" {
		if !k.templates(t) {
			bad.Addf(path+".templates", "%q: no such template set (a subdirectory of VIGIL_NOTIFY_TEMPLATES_DIR)", t)
		}
		n.templates = t
	}
	if len(r.GetRoutes()) > 0 && depth+1 >= maxDepth {
		bad.Addf(path+".routes", "routes nest at most %d deep", maxDepth)
		return n
	}
	for i, c := range r.GetRoutes() {
		n.children = append(n.children, compile(bad, c, fmt.Sprintf("%s.routes[%d]", path, i), n, k, depth+1))
	}
	return n
}

func nonEmpty(bad *server.BadRequestError, field string, vs []string) {
	for i, v := range vs {
		if v == "" {
			bad.Add(fmt.Sprintf("%s[%d]", field, i), "is empty")
		}
	}
}

func oneOf(bad *server.BadRequestError, field string, vs, allowed []string) []string {
	for i, v := range vs {
		if !slices.Contains(allowed, v) {
			bad.Addf(fmt.Sprintf("%s[%d]", field, i), "%q: want one of %v", v, allowed)
		}
	}
	return vs
}
