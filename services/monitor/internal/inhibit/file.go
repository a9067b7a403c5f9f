package inhibit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"sigs.k8s.io/yaml"
)

// maxFileSize bounds the inhibition file.
const maxFileSize = 1 << 20

// LoadFile reads the inhibition file (VIGIL_INHIBIT_FILE) and compiles its
// rules; errors name the file.
func LoadFile(path string) ([]Rule, *Set, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("inhibition file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("inhibition file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("inhibition file %s: larger than %d bytes", path, maxFileSize)
	}
	rules, set, err := ParseFile(data)
	if err != nil {
		return nil, nil, fmt.Errorf("inhibition file %s: %w", path, err)
	}
	return rules, set, nil
}

// ParseFile reads YAML with an inhibit_rules list, as in Alertmanager's
// configuration. Other top-level keys are ignored, so the file may be the
// alertmanager.yml itself; inside the rules an unknown field is refused
// (a misspelt equal would silently inhibit far more).
func ParseFile(data []byte) ([]Rule, *Set, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, nil, fmt.Errorf("not YAML: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil && !bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil, nil, fmt.Errorf("not a mapping with inhibit_rules: %w", err)
	}
	var rules []Rule
	if raw, ok := top["inhibit_rules"]; ok {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rules); err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("inhibit_rules: %w", err)
		}
	}
	set, err := Compile(rules)
	if err != nil {
		return nil, nil, err
	}
	return rules, set, nil
}
