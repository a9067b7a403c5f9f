// Command promql-metrics prints the metric names PromQL expressions select.
// The test that checks Vigil's dashboard and alert rules against a running
// Vigil's /metrics uses it: Prometheus's own parser, kept in a module of its
// own because its requirements would move the workspace's (k8s.io among
// them). It reads a JSON array of expressions on stdin and writes a JSON
// array with, for each, the names its selectors select; an expression that
// does not parse, or a selector without a metric name, is an error naming
// the expression.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "promql-metrics:", err)
		os.Exit(1)
	}
}

func run() error {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		return fmt.Errorf("read expressions: %w", err)
	}
	out := make([][]string, len(exprs))
	for i, e := range exprs {
		names, err := metrics(e)
		if err != nil {
			return fmt.Errorf("%q: %w", e, err)
		}
		out[i] = names
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func metrics(expr string) ([]string, error) {
	parsed, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	names := []string{}
	var errs []error
	parser.Inspect(parsed, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				names = append(names, m.Value)
				return nil
			}
		}
		errs = append(errs, fmt.Errorf("selector %s names no metric", vs))
		return nil
	})
	return names, errors.Join(errs...)
}
