package rules

import (
	"bufio"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// The rules' sentences in other languages than English: messages/<lang>.po,
// each English format as the code writes it (msgid) and its translation
// (msgstr), with the same verbs in the same order. What comes from the
// evidence (names, images, event messages) stays as it is.
//
//go:embed messages/*.po
var messageFiles embed.FS

// catalogs are the translations by language.
var catalogs = func() map[string]map[string]string {
	out := map[string]map[string]string{}
	names, err := fs.Glob(messageFiles, "messages/*.po")
	if err != nil {
		panic(err)
	}
	for _, name := range names {
		b, err := messageFiles.ReadFile(name)
		if err != nil {
			panic(err)
		}
		c, err := parseCatalog(string(b))
		if err != nil {
			panic(fmt.Sprintf("rules: %s: %v", name, err)) // the catalogues are tested
		}
		out[strings.TrimSuffix(strings.TrimPrefix(name, "messages/"), ".po")] = c
	}
	return out
}()

// parseCatalog reads msgid/msgstr pairs of quoted Go strings; lines
// starting with # are comments.
func parseCatalog(text string) (map[string]string, error) {
	c := map[string]string{}
	var id *string
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, quoted, _ := strings.Cut(line, " ")
		s, err := strconv.Unquote(quoted)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: want a quoted string", n, key)
		}
		switch {
		case key == "msgid" && id == nil:
			id = &s
		case key == "msgstr" && id != nil:
			if _, dup := c[*id]; dup {
				return nil, fmt.Errorf("line %d: %q translated twice", n, *id)
			}
			c[*id], id = s, nil
		default:
			return nil, fmt.Errorf("line %d: want msgid then msgstr", n)
		}
	}
	if id != nil {
		return nil, fmt.Errorf("%q has no msgstr", *id)
	}
	return c, nil
}

// language is the catalogue of tag ("zh-TW" however it is written), ""
// for English and for a language without one.
func language(tag string) string {
	switch strings.ToLower(strings.ReplaceAll(strings.TrimSpace(tag), "_", "-")) {
	case "zh-tw", "zh-hant", "zh-hant-tw":
		return "zh-TW"
	}
	return ""
}

// tr is format in the engine's language, filled with args.
func (f *facts) tr(format string, args ...any) string {
	if t, ok := catalogs[f.lang][format]; ok {
		format = t
	}
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}
