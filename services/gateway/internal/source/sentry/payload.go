package sentry

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// webhook is the envelope of every integration-platform webhook:
// Sentry-Hook-Resource says what data holds.
type webhook struct {
	Action string          `json:"action"`
	Data   json.RawMessage `json:"data"`
}

// issue is a Sentry issue (a group of events) as the issue resource
// sends it: Sentry's group serializer plus the links. It names no event:
// no tags, environment or release.
type issue struct {
	ID        text   `json:"id"`
	ShortID   string `json:"shortId"`
	Title     string `json:"title"`
	Culprit   string `json:"culprit"`
	Level     string `json:"level"`
	Status    string `json:"status"`
	Substatus string `json:"substatus"`
	Platform  string `json:"platform"`
	WebURL    string `json:"web_url"`
	Project   struct {
		ID   text   `json:"id"`
		Name string `json:"name"`
		Slug string `json:"slug"`
	} `json:"project"`
	Metadata   metadata   `json:"metadata"`
	Count      text       `json:"count"`
	UserCount  text       `json:"userCount"`
	FirstSeen  *time.Time `json:"firstSeen"`
	LastSeen   *time.Time `json:"lastSeen"`
	AssignedTo *struct {
		Type  string `json:"type"`
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"assignedTo"`
}

type metadata struct {
	Type     string `json:"type"`
	Value    string `json:"value"`
	Filename string `json:"filename"`
	Function string `json:"function"`
}

// event is one event of an issue, as the error and event_alert
// resources send it.
type event struct {
	EventID     string     `json:"event_id"`
	IssueID     text       `json:"issue_id"`
	IssueURL    string     `json:"issue_url"`
	WebURL      string     `json:"web_url"`
	URL         string     `json:"url"`
	Project     text       `json:"project"`
	Title       string     `json:"title"`
	Culprit     string     `json:"culprit"`
	Level       string     `json:"level"`
	Environment string     `json:"environment"`
	Release     text       `json:"release"`
	Platform    string     `json:"platform"`
	Datetime    *time.Time `json:"datetime"`
	Timestamp   float64    `json:"timestamp"`
	Metadata    metadata   `json:"metadata"`
	Tags        tags       `json:"tags"`
}

// metricAlert is the metric_alert resource's data.
type metricAlert struct {
	DescriptionText  string `json:"description_text"`
	DescriptionTitle string `json:"description_title"`
	WebURL           string `json:"web_url"`
	MetricAlert      *struct {
		ID           text       `json:"id"`
		Title        string     `json:"title"`
		Projects     []string   `json:"projects"`
		DateStarted  *time.Time `json:"date_started"`
		DateDetected *time.Time `json:"date_detected"`
		DateClosed   *time.Time `json:"date_closed"`
		AlertRule    struct {
			ID          text     `json:"id"`
			Name        string   `json:"name"`
			Aggregate   string   `json:"aggregate"`
			Query       string   `json:"query"`
			Environment text     `json:"environment"`
			Projects    []string `json:"projects"`
		} `json:"alert_rule"`
	} `json:"metric_alert"`
}

// text is a JSON string, number or null as a string: Sentry sends ids
// and counts both ways depending on the resource.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*t = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("must be a string or a number")
	}
	*t = text(n.String())
	return nil
}

// tags are an event's tags: Sentry sends pairs ([["k","v"], ...]) or,
// in some serializations, objects ([{"key":"k","value":"v"}]). Entries
// of neither shape are skipped: tags are context, not identity.
type tags []tag

type tag struct{ Key, Value string }

func (ts *tags) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
			return nil
		}
		return err
	}
	for _, r := range raw {
		var pair []text
		if json.Unmarshal(r, &pair) == nil && len(pair) == 2 {
			*ts = append(*ts, tag{string(pair[0]), string(pair[1])})
			continue
		}
		var obj struct {
			Key   text `json:"key"`
			Value text `json:"value"`
		}
		if json.Unmarshal(r, &obj) == nil && obj.Key != "" {
			*ts = append(*ts, tag{string(obj.Key), string(obj.Value)})
		}
	}
	return nil
}

// at is when the event happened: its datetime, else its timestamp.
func (e *event) at() (time.Time, bool) {
	if e.Datetime != nil && !e.Datetime.IsZero() {
		return *e.Datetime, true
	}
	if e.Timestamp > 0 && e.Timestamp < 1<<40 {
		sec := int64(e.Timestamp)
		return time.Unix(sec, int64((e.Timestamp-float64(sec))*1e9)).UTC(), true
	}
	return time.Time{}, false
}

func (t text) int() bool {
	_, err := strconv.ParseUint(string(t), 10, 64)
	return err == nil
}
