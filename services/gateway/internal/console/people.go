package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// The settings of who hears what and who is asked: notification
// channels, the routing tree, escalation policies and on-call schedules
// (channels.go, routes.go, escalation.go, oncall.go).
func (c *Console) routePeople() {
	c.routeChannels()
	c.routeRoutes()
	c.routeEscalation()
	c.routeOnCall()
}

// Documents are edited as the CLI's files are (`vigil escalation
// policies apply -f`, `vigil oncall schedules apply -f`, `vigil routes
// apply -f`): YAML or JSON with the API's field names, durations as Go
// writes them (10m) and priorities as P0 to P3.

// readDoc reads a document into m; friendly: durations and priorities
// as people write them (escalation and on-call, not routes, whose
// priorities are plain strings already).
func readDoc(text string, m proto.Message, friendly bool) error {
	js, err := yaml.YAMLToJSON([]byte(text))
	if err != nil {
		return badDoc(err)
	}
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		return badDoc(err)
	}
	if friendly {
		doc = docFriendly(doc, "")
	}
	if js, err = json.Marshal(doc); err != nil {
		return badDoc(err)
	}
	if err := protojson.Unmarshal(js, m); err != nil {
		return badDoc(err)
	}
	return nil
}

// writeDoc writes m as YAML in the shape readDoc reads, without the
// output-only fields named in drop.
func writeDoc(m proto.Message, friendly bool, drop ...string) string {
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return ""
	}
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		return ""
	}
	if obj, ok := doc.(map[string]any); ok {
		for _, k := range drop {
			delete(obj, k)
		}
	}
	if friendly {
		doc = docReadable(doc, "")
	}
	js, err = json.Marshal(doc)
	if err != nil {
		return ""
	}
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		return ""
	}
	return string(y)
}

// docFriendly turns what people write into what protojson reads: "10m" for
// a delay into "600s", "P1" into "PRIORITY_P1".
func docFriendly(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = docFriendly(e, k)
		}
	case []any:
		for i, e := range x {
			x[i] = docFriendly(e, key)
		}
	case string:
		switch key {
		case "delay":
			if d, err := time.ParseDuration(x); err == nil {
				return fmt.Sprintf("%gs", d.Seconds())
			}
		case "priorities":
			if p, ok := priorityParam[strings.ToUpper(x)]; ok {
				return p.String()
			}
		}
	}
	return v
}

// docReadable is docFriendly backwards: "600s" as "10m0s", "PRIORITY_P1" as "P1".
func docReadable(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = docReadable(e, k)
		}
	case []any:
		for i, e := range x {
			x[i] = docReadable(e, key)
		}
	case string:
		switch key {
		case "delay":
			if d, err := time.ParseDuration(x); err == nil {
				return d.String()
			}
		case "priorities":
			return policyPriority(typesv1.Priority(typesv1.Priority_value[x]))
		}
	}
	return v
}

// badDoc is a document that does not parse: the user's mistake, an
// InvalidArgument of the console's own, shown as the API's refusals are.
func badDoc(err error) error {
	return status.Error(codes.InvalidArgument, "not a valid document: "+err.Error())
}

// policyPriority is P0 to P3 ("—" for none).
func policyPriority(p typesv1.Priority) string {
	for name, v := range priorityParam {
		if v == p {
			return name
		}
	}
	return "—"
}

// docEdit is a document the user sent and the API refused: the page
// shows it again, with what the API said (its problem), so nothing
// typed is lost.
type docEdit struct {
	Text string
	problem
}

// or is the text of the document to edit: the one refused, else def.
func (e *docEdit) or(def string) string {
	if e != nil {
		return e.Text
	}
	return def
}

// docPage serves a page with a document's editor: show, for the
// signed-in user, with nothing refused.
func (c *Console) docPage(show func(http.ResponseWriter, *http.Request, *session, *docEdit, int)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s, ok := c.signedIn(w, r); ok {
			show(w, r, s, nil, http.StatusOK)
		}
	}
}

// applyDoc runs a form that posts a document (field "document") read
// into m: apply calls the API with it as the user; on success the
// browser goes to the page apply names (303) with its done word; a
// refusal the user can fix shows the page again (show) with the text
// as typed and what the API said.
func (c *Console) applyDoc(w http.ResponseWriter, r *http.Request, m proto.Message, friendly bool,
	apply func(ctx context.Context) (to, done string, err error),
	show func(s *session, e *docEdit, code int),
) {
	s, ok := c.posted(w, r)
	if !ok {
		return
	}
	text := r.PostFormValue("document")
	var to, key string
	err := readDoc(text, m, friendly)
	if err == nil {
		to, key, err = apply(withToken(r.Context(), s.access))
	}
	if err != nil {
		if code, p, ok := refusal(err); ok {
			show(s, &docEdit{Text: text, problem: *p}, code)
			return
		}
		c.failCall(w, r, s, err)
		return
	}
	http.Redirect(w, r, withDone(localPath(to), key), http.StatusSeeOther)
}
