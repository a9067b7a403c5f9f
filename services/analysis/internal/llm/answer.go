package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
)

// SchemaName names the answer's schema (and Anthropic's tool).
const SchemaName = "incident_analysis"

// Schema is the JSON schema of the answer. It is written for OpenAI's
// strict mode (every property required, no additional properties,
// optional values as a ["type","null"] union), which the other providers
// accept or translate.
var Schema = json.RawMessage(`{
  "type": "object",
  "additionalProperties": false,
  "required": ["summary", "root_cause", "evidence", "ruled_out", "action", "target", "params", "confidence", "reasoning"],
  "properties": {
    "summary": {"type": "string", "description": "One or two sentences a person on call reads first."},
    "root_cause": {"type": "string", "description": "What is wrong and why, or empty when unknown."},
    "evidence": {"type": "array", "items": {"type": "string"}, "description": "Ids of the evidence items (E1, E2, ...) the conclusion rests on."},
    "ruled_out": {"type": "array", "items": {"type": "string"}, "description": "Hypotheses considered and rejected, each with why."},
    "action": {"type": "string", "enum": ["NONE", "RESTART_DEPLOYMENT", "DELETE_POD", "SCALE_DEPLOYMENT", "ROLLBACK_DEPLOYMENT", "INCREASE_MEMORY_LIMIT"]},
    "target": {
      "type": "object",
      "additionalProperties": false,
      "required": ["kind", "namespace", "name"],
      "properties": {
        "kind": {"type": "string"},
        "namespace": {"type": "string"},
        "name": {"type": "string"}
      }
    },
    "params": {
      "type": "object",
      "additionalProperties": false,
      "required": ["replicas", "container", "limit_bytes", "revision"],
      "properties": {
        "replicas": {"type": ["integer", "null"], "description": "SCALE_DEPLOYMENT: the replicas wanted."},
        "container": {"type": ["string", "null"], "description": "INCREASE_MEMORY_LIMIT: the container."},
        "limit_bytes": {"type": ["integer", "null"], "description": "INCREASE_MEMORY_LIMIT: the new limit in bytes."},
        "revision": {"type": ["integer", "null"], "description": "ROLLBACK_DEPLOYMENT: the revision to return to, 0 or null for the last good one (workload.last_good_revision)."}
      }
    },
    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    "reasoning": {"type": "string", "description": "How the evidence leads to the action."}
  }
}`)

// actions maps the schema's action names to the enum.
var actions = map[string]typesv1.RepairAction{
	"NONE":                  typesv1.RepairAction_REPAIR_ACTION_NONE,
	"RESTART_DEPLOYMENT":    typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT,
	"DELETE_POD":            typesv1.RepairAction_REPAIR_ACTION_DELETE_POD,
	"SCALE_DEPLOYMENT":      typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT,
	"ROLLBACK_DEPLOYMENT":   typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT,
	"INCREASE_MEMORY_LIMIT": typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT,
}

// Bounds of an answer's shape; engine.Check judges the values.
const (
	maxText       = 4000
	maxListItems  = 50
	maxReplicas   = 10000
	maxLimitBytes = 1 << 40 // 1 TiB
)

// answer is the schema as Go; pointers tell a missing field from a zero.
type answer struct {
	Summary   *string  `json:"summary"`
	RootCause *string  `json:"root_cause"`
	Evidence  []string `json:"evidence"`
	RuledOut  []string `json:"ruled_out"`
	Action    *string  `json:"action"`
	Target    *struct {
		Kind      *string `json:"kind"`
		Namespace *string `json:"namespace"`
		Name      *string `json:"name"`
	} `json:"target"`
	Params *struct {
		Replicas   *int64  `json:"replicas"`
		Container  *string `json:"container"`
		LimitBytes *int64  `json:"limit_bytes"`
		Revision   *int64  `json:"revision"`
	} `json:"params"`
	Confidence *float64 `json:"confidence"`
	Reasoning  *string  `json:"reasoning"`

	// present records which keys the document had (evidence and
	// ruled_out decode to nil both when absent and when null).
	present map[string]bool
}

// ParseAnswer reads a model's answer strictly: one JSON object with
// exactly the schema's fields, of the schema's types, with an action from
// the enum and the parameters that action needs in a plausible shape.
// Any failure wraps engine.ErrUnusable with the reason. The evidence ids
// and names are returned as the model wrote them (the engine maps them
// back); whether the target is the incident's own and the parameters are
// within policy is engine.Check's to say.
func ParseAnswer(text string) (engine.Result, error) {
	a, err := decodeAnswer(text)
	if err != nil {
		return engine.Result{}, fmt.Errorf("%w: %w", engine.ErrUnusable, err)
	}
	res, err := a.result()
	if err != nil {
		return engine.Result{}, fmt.Errorf("%w: %w", engine.ErrUnusable, err)
	}
	return res, nil
}

func decodeAnswer(text string) (*answer, error) {
	if !utf8.ValidString(text) {
		return nil, errors.New("answer is not valid UTF-8")
	}
	raw := []byte(strings.TrimSpace(text))
	if len(raw) == 0 {
		return nil, errors.New("empty answer")
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, fmt.Errorf("answer is not a JSON object: %s", Excerpt(err.Error()))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var a answer
	if err := dec.Decode(&a); err != nil {
		// Not %w: encoding/json quotes a number it cannot store whole.
		return nil, fmt.Errorf("answer does not match the schema: %s", Excerpt(err.Error()))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("answer has data after the JSON object")
	}
	a.present = map[string]bool{}
	for k, v := range keys {
		a.present[k] = string(v) != "null"
	}
	// Nested objects must not carry unknown or missing keys either.
	if err := checkKeys(keys["target"], "target", "kind", "namespace", "name"); err != nil {
		return nil, err
	}
	if err := checkKeys(keys["params"], "params", "replicas", "container", "limit_bytes", "revision"); err != nil {
		return nil, err
	}
	return &a, nil
}

// checkKeys requires an object to have each key (null allowed).
func checkKeys(raw json.RawMessage, name string, want ...string) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil // missing objects are reported by result
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return fmt.Errorf("%s is not an object: %s", name, Excerpt(err.Error()))
	}
	for _, k := range want {
		if _, ok := keys[k]; !ok {
			return fmt.Errorf("%s.%s is missing", name, k)
		}
	}
	return nil
}

func (a *answer) result() (engine.Result, error) {
	for _, k := range []string{"summary", "root_cause", "evidence", "ruled_out", "action", "target", "params", "confidence", "reasoning"} {
		if !a.present[k] {
			return engine.Result{}, fmt.Errorf("%s is missing", k)
		}
	}
	if strings.TrimSpace(*a.Summary) == "" {
		return engine.Result{}, errors.New("summary is empty")
	}
	for name, s := range map[string]string{"summary": *a.Summary, "root_cause": *a.RootCause, "reasoning": *a.Reasoning} {
		if len(s) > maxText {
			return engine.Result{}, fmt.Errorf("%s is longer than %d bytes", name, maxText)
		}
	}
	for name, list := range map[string][]string{"evidence": a.Evidence, "ruled_out": a.RuledOut} {
		if len(list) > maxListItems {
			return engine.Result{}, fmt.Errorf("%s has more than %d items", name, maxListItems)
		}
		for _, s := range list {
			if len(s) > maxText {
				return engine.Result{}, fmt.Errorf("an item of %s is longer than %d bytes", name, maxText)
			}
		}
	}
	c := *a.Confidence
	if c < 0 || c > 1 {
		return engine.Result{}, fmt.Errorf("confidence %v is not between 0 and 1", c)
	}
	action, ok := actions[*a.Action]
	if !ok {
		return engine.Result{}, fmt.Errorf("action %q is not one of the repair actions", Excerpt(*a.Action))
	}
	t := a.Target
	if t.Kind == nil || t.Namespace == nil || t.Name == nil {
		return engine.Result{}, errors.New("target needs kind, namespace and name as strings")
	}
	proposal := &typesv1.RepairProposal{Action: action}
	if *t.Kind != "" || *t.Name != "" || *t.Namespace != "" {
		proposal.Target = &typesv1.ResourceRef{Kind: *t.Kind, Namespace: *t.Namespace, Name: *t.Name}
	}
	if action != typesv1.RepairAction_REPAIR_ACTION_NONE && (*t.Kind == "" || *t.Name == "" || *t.Namespace == "") {
		return engine.Result{}, fmt.Errorf("action %s needs a target with kind, namespace and name", *a.Action)
	}
	if err := setParams(proposal, a); err != nil {
		return engine.Result{}, err
	}
	return engine.Result{
		Summary:    *a.Summary,
		RootCause:  *a.RootCause,
		Evidence:   a.Evidence,
		RuledOut:   a.RuledOut,
		Proposal:   proposal,
		Confidence: c,
		Reasoning:  *a.Reasoning,
	}, nil
}

// setParams checks that the action's parameters are there and that no
// other action's are (a zero counts as unset: weaker models fill every
// field).
func setParams(p *typesv1.RepairProposal, a *answer) error {
	pa := a.Params
	replicas, limit, revision := deref(pa.Replicas), deref(pa.LimitBytes), deref(pa.Revision)
	container := ""
	if pa.Container != nil {
		container = *pa.Container
	}
	unwanted := func(names ...string) error {
		set := map[string]bool{"replicas": replicas != 0, "container": container != "", "limit_bytes": limit != 0, "revision": revision != 0}
		for _, n := range names {
			if set[n] {
				return fmt.Errorf("params.%s is set but %s does not take it", n, strings.TrimPrefix(p.GetAction().String(), "REPAIR_ACTION_"))
			}
		}
		return nil
	}
	switch p.GetAction() {
	case typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT:
		if pa.Replicas == nil {
			return errors.New("SCALE_DEPLOYMENT needs params.replicas")
		}
		if replicas < 0 || replicas > maxReplicas {
			return fmt.Errorf("params.replicas %d is not between 0 and %d", replicas, maxReplicas)
		}
		p.Params = &typesv1.RepairProposal_Scale{Scale: &typesv1.ScaleParams{Replicas: int32(replicas)}}
		return unwanted("container", "limit_bytes", "revision")
	case typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT:
		if container == "" || pa.LimitBytes == nil {
			return errors.New("INCREASE_MEMORY_LIMIT needs params.container and params.limit_bytes")
		}
		if limit <= 0 || limit > maxLimitBytes {
			return fmt.Errorf("params.limit_bytes %d is not between 1 and %d", limit, int64(maxLimitBytes))
		}
		p.Params = &typesv1.RepairProposal_MemoryLimit{MemoryLimit: &typesv1.MemoryLimitParams{Container: container, LimitBytes: limit}}
		return unwanted("replicas", "revision")
	case typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT:
		if revision < 0 {
			return fmt.Errorf("params.revision %d is negative", revision)
		}
		p.Params = &typesv1.RepairProposal_Rollback{Rollback: &typesv1.RollbackParams{Revision: revision}}
		return unwanted("replicas", "container", "limit_bytes")
	default:
		return unwanted("replicas", "container", "limit_bytes", "revision")
	}
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
