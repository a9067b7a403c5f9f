package incident

import (
	"slices"
	"strings"

	"github.com/prometheus/common/model"
)

// GroupAll is the group_by value that groups by every label, as in
// Alertmanager: each distinct label set is its own incident.
const GroupAll = "..."

// GroupKey returns the key alerts with these labels are grouped under, and
// the labels that make it up. Labels missing from the alert are left out, as
// Alertmanager does, so alerts without a namespace group together.
func GroupKey(labels map[string]string, groupBy []string) (string, map[string]string) {
	group := model.LabelSet{}
	if slices.Contains(groupBy, GroupAll) {
		for k, v := range labels {
			group[model.LabelName(k)] = model.LabelValue(v)
		}
	} else {
		for _, name := range groupBy {
			if v, ok := labels[name]; ok && v != "" {
				group[model.LabelName(name)] = model.LabelValue(v)
			}
		}
	}
	out := make(map[string]string, len(group))
	for k, v := range group {
		out[string(k)] = string(v)
	}
	// LabelSet.String sorts: {alertname="X", namespace="Y"}.
	return group.String(), out
}

// ParseGroupBy parses a comma-separated group_by list.
func ParseGroupBy(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
