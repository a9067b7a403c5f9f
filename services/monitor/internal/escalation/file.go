package escalation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"sigs.k8s.io/yaml"

	"github.com/vigil-ops/vigil/pkg/db"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/monitor/internal/priority"
)

// maxFileSize bounds the escalation file.
const maxFileSize = 1 << 20

// File is the escalation file (VIGIL_ESCALATION_FILE): YAML with the API's
// field names, durations as Go writes them (90s, 10m, 1h30m), priorities
// as P0 to P3. docs/escalation.md has an example.
type File struct {
	PriorityRules   []FileRule        `json:"priority_rules"`
	ResponseTargets map[string]string `json:"response_targets"`
	Schedules       []FileSchedule    `json:"schedules"`
	Policies        []FilePolicy      `json:"policies"`
}

// FileRule is a priority rule of the file.
type FileRule struct {
	Matchers  []string `json:"matchers"`
	App       string   `json:"app"`
	Team      string   `json:"team"`
	Namespace string   `json:"namespace"`
	Priority  string   `json:"priority"`
}

// FileSchedule is an on-call schedule of the file.
type FileSchedule struct {
	Name   string `json:"name"`
	Team   string `json:"team"`
	Zone   string `json:"zone"`
	Layers []struct {
		Participants []string `json:"participants"`
		RotationDays int32    `json:"rotation_days"`
		Handoff      string   `json:"handoff"`
		Start        string   `json:"start"`
		Restrictions []struct {
			Weekdays []int32 `json:"weekdays"`
			From     string  `json:"from"`
			To       string  `json:"to"`
		} `json:"restrictions"`
	} `json:"layers"`
	Overrides []struct {
		Who   string    `json:"who"`
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
	} `json:"overrides"`
}

// FilePolicy is an escalation policy of the file.
type FilePolicy struct {
	Name       string   `json:"name"`
	Team       string   `json:"team"`
	Priorities []string `json:"priorities"`
	Repeat     int32    `json:"repeat"`
	Steps      []struct {
		Delay     string   `json:"delay"`
		Schedules []string `json:"schedules"`
		Users     []string `json:"users"`
		Teams     []string `json:"teams"`
		Channels  []string `json:"channels"`
	} `json:"steps"`
}

// Config is a file read and checked: the API's messages.
type Config struct {
	// Rules is nil when the file sets neither rules nor targets.
	Rules     *monitorv1.PriorityRules
	Schedules []*monitorv1.OnCallSchedule
	Policies  []*monitorv1.EscalationPolicy
}

// LoadFile reads and checks the escalation file: every problem at once, in
// a *server.BadRequestError with fields named as in the file
// ("policies[0].steps[1].delay"), wrapped in an error naming the file.
func LoadFile(path string) (*Config, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("escalation file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("escalation file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("escalation file %s: larger than %d bytes", path, maxFileSize)
	}
	c, err := ParseFile(data)
	if err != nil {
		return nil, fmt.Errorf("escalation file %s: %w", path, err)
	}
	return c, nil
}

var priorityNames = []string{"P0", "P1", "P2", "P3"}

// ParseFile reads and checks a file's contents.
func ParseFile(data []byte) (*Config, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not an escalation file: %w", err)
	}
	var bad server.BadRequestError
	c := &Config{}
	if len(f.PriorityRules) > 0 || len(f.ResponseTargets) > 0 {
		c.Rules = &monitorv1.PriorityRules{}
		for i, r := range f.PriorityRules {
			p, err := priority.Parse(r.Priority)
			if err != nil {
				bad.Add(fmt.Sprintf("priority_rules[%d].priority", i), err.Error())
				p = typesv1.Priority_PRIORITY_P3
			}
			c.Rules.Rules = append(c.Rules.Rules, &monitorv1.PriorityRule{
				Matchers: r.Matchers, App: r.App, Team: r.Team, Namespace: r.Namespace, Priority: p,
			})
		}
		for _, name := range priorityNames {
			s, ok := f.ResponseTargets[name]
			if !ok {
				continue
			}
			d, err := time.ParseDuration(s)
			if err != nil {
				bad.Addf("response_targets."+name, "invalid duration %q: write it as 90s, 10m or 1h30m", s)
				continue
			}
			p, _ := priority.Parse(name)
			c.Rules.Targets = append(c.Rules.Targets, &monitorv1.ResponseTarget{Priority: p, Target: durationpb.New(d)})
		}
		for _, name := range slices.Sorted(maps.Keys(f.ResponseTargets)) {
			if !slices.Contains(priorityNames, name) {
				bad.Addf("response_targets."+name, "unknown priority: P0, P1, P2 or P3")
			}
		}
		if _, err := CompileRules(c.Rules, ""); err != nil {
			targets := c.Rules.GetTargets()
			addAll(&bad, err, func(field string) string {
				var i int
				if _, err := fmt.Sscanf(field, "targets[%d]", &i); err == nil && i < len(targets) {
					return "response_targets." + priority.Name(targets[i].GetPriority())
				}
				return "priority_" + field
			})
		}
	}
	names := map[string]int{}
	for i, s := range f.Schedules {
		at := fmt.Sprintf("schedules[%d].", i)
		sch := &monitorv1.OnCallSchedule{Name: s.Name, Team: s.Team, Zone: s.Zone}
		for _, l := range s.Layers {
			pl := &monitorv1.ScheduleLayer{Participants: l.Participants, RotationDays: l.RotationDays, Handoff: l.Handoff, Start: l.Start}
			for _, w := range l.Restrictions {
				pl.Restrictions = append(pl.Restrictions, &monitorv1.ScheduleWindow{Weekdays: w.Weekdays, From: w.From, To: w.To})
			}
			sch.Layers = append(sch.Layers, pl)
		}
		for _, o := range s.Overrides {
			po := &monitorv1.ScheduleOverride{Who: o.Who}
			if !o.Start.IsZero() {
				po.Start = timestamppb.New(o.Start)
			}
			if !o.End.IsZero() {
				po.End = timestamppb.New(o.End)
			}
			sch.Overrides = append(sch.Overrides, po)
		}
		if j, dup := names[s.Name]; dup {
			bad.Addf(at+"name", "%q is also schedules[%d]", s.Name, j)
		}
		names[s.Name] = i
		addAll(&bad, ValidateSchedule(sch, at), nil)
		c.Schedules = append(c.Schedules, sch)
	}
	names = map[string]int{}
	for i, p := range f.Policies {
		at := fmt.Sprintf("policies[%d].", i)
		pol := &monitorv1.EscalationPolicy{Name: p.Name, Team: p.Team, Repeat: p.Repeat}
		for j, s := range p.Priorities {
			pr, err := priority.Parse(s)
			if err != nil {
				bad.Add(fmt.Sprintf("%spriorities[%d]", at, j), err.Error())
				continue
			}
			pol.Priorities = append(pol.Priorities, pr)
		}
		for j, s := range p.Steps {
			st := &monitorv1.EscalationStep{Schedules: s.Schedules, Users: s.Users, Teams: s.Teams, Channels: s.Channels}
			if s.Delay != "" {
				d, err := time.ParseDuration(s.Delay)
				if err != nil {
					bad.Addf(fmt.Sprintf("%ssteps[%d].delay", at, j), "invalid duration %q: write it as 90s, 10m or 1h30m", s.Delay)
				}
				st.Delay = durationpb.New(d)
			}
			pol.Steps = append(pol.Steps, st)
		}
		if j, dup := names[p.Name]; dup {
			bad.Addf(at+"name", "%q is also policies[%d]", p.Name, j)
		}
		names[p.Name] = i
		addAll(&bad, ValidatePolicy(pol, at), nil)
		c.Policies = append(c.Policies, pol)
	}
	if err := bad.Err("invalid escalation file"); err != nil {
		return nil, err
	}
	return c, nil
}

// addAll adds err's violations to bad, each field renamed by rename.
func addAll(bad *server.BadRequestError, err error, rename func(string) string) {
	var perr *server.BadRequestError
	if !errors.As(err, &perr) {
		if err != nil {
			bad.Add("", err.Error())
		}
		return
	}
	for _, v := range perr.Violations {
		if rename != nil {
			v.Field = rename(v.Field)
		}
		bad.Add(v.Field, v.Description)
	}
}

// ApplyFile reads the file at path and makes what it defines the stored
// truth, in one transaction: its schedules and policies are created or
// replaced, the ones an earlier file defined and this one does not are
// deleted, and its rules replace the stored ones.
func ApplyFile(ctx context.Context, pool *pgxpool.Pool, path string, now time.Time) error {
	c, err := LoadFile(path)
	if err != nil {
		return err
	}
	return db.InTx(ctx, pool, func(tx pgx.Tx) error { return c.apply(ctx, tx, now) })
}

const fileActor = "escalation-file"

func (c *Config) apply(ctx context.Context, tx pgx.Tx, now time.Time) error {
	keep := func(table string, names []string) error {
		_, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE from_file AND NOT name = ANY($1)`, names)
		return err
	}
	names := []string{}
	for _, s := range c.Schedules {
		names = append(names, s.GetName())
		if err := putFromFile(ctx, tx, Schedules, s, now); err != nil {
			return err
		}
	}
	if err := keep("oncall_schedules", names); err != nil {
		return fmt.Errorf("delete schedules the file no longer defines: %w", err)
	}
	names = []string{}
	for _, p := range c.Policies {
		names = append(names, p.GetName())
		if err := putFromFile(ctx, tx, Policies, p, now); err != nil {
			return err
		}
	}
	if err := keep("escalation_policies", names); err != nil {
		return fmt.Errorf("delete policies the file no longer defines: %w", err)
	}
	if c.Rules != nil {
		return SetRules(ctx, tx, c.Rules, true, fileActor, now)
	}
	_, err := tx.Exec(ctx, `DELETE FROM priority_rules WHERE from_file`)
	return err
}

// putFromFile creates or replaces a document as the file's, whoever
// defined it before; its team may change.
func putFromFile[T Document](ctx context.Context, tx pgx.Tx, s Stored[T], v T, now time.Time) error {
	if _, err := tx.Exec(ctx, `DELETE FROM `+s.table+` WHERE name = $1`, v.GetName()); err != nil {
		return fmt.Errorf("replace %s %q: %w", s.kind, v.GetName(), err)
	}
	_, err := s.Put(ctx, tx, v, true, true, fileActor, now)
	return err
}
