package message

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/template"
)

// defaults are Vigil's own templates: <kind>.<lang>.tmpl for each kind of
// message, and common.<lang>.tmpl for the words several share (labels,
// actions, durations, buttons), as named templates.
//
//go:embed templates/*.tmpl
var defaults embed.FS

// English is the language a message falls back to.
const English = "en"

// common is the file of a language's shared words.
const common = "common"

// Templates are the templates messages are drawn with, per language:
// Vigil's own, and a directory's overrides over them. Notify holds one
// set and gives it to every message it sends (Message.Templates), and a
// named set (LoadSets) for a route or a channel that asks for one.
type Templates struct {
	sets map[string]*template.Template
	log  *slog.Logger
	// warned are the unknown languages already logged.
	warned sync.Map
	// bound are the sets with their functions bound to a markup, by
	// boundKey: made once, as cloning a set for every message costs.
	bound sync.Map
}

type boundKey struct {
	lang string
	m    Markup
}

// in is the templates of lang with their functions in markup m.
func (t *Templates) in(lang string, m Markup) (string, *template.Template) {
	lang, set := t.set(lang)
	key := boundKey{lang, m}
	if b, ok := t.bound.Load(key); ok {
		return lang, b.(*template.Template)
	}
	clone, err := set.Clone()
	if err != nil {
		panic(err) // only a template already executed by html/template fails to clone
	}
	b, _ := t.bound.LoadOrStore(key, clone.Funcs(markupFuncs(m, clone)))
	return lang, b.(*template.Template)
}

var (
	defaultOnce sync.Once
	defaultSet  *Templates
)

// DefaultTemplates are Vigil's own templates, without overrides.
func DefaultTemplates() *Templates {
	defaultOnce.Do(func() {
		t, err := NewTemplates("", slog.New(slog.DiscardHandler))
		if err != nil {
			panic(err) // the embedded templates are tested
		}
		defaultSet = t
	})
	return defaultSet
}

type source struct{ path, text string }

// NewTemplates parses Vigil's templates with the files of dir over them
// ("": none). A file is named <kind>.<lang>.tmpl (incident.opened.zh-TW.tmpl,
// or common.<lang>.tmpl for the shared words); a language's kinds without
// a file of their own are drawn with English's. Every template is run
// against a sample of its kind: one that does not parse or run is an
// error naming its file and line, so that a broken override stops notify
// from starting rather than a message from going out.
func NewTemplates(dir string, log *slog.Logger) (*Templates, error) {
	return newTemplates(log, dir)
}

// Sets are notify's templates: its default set and the named ones.
type Sets struct {
	// Default is Vigil's templates with the directory's files over them.
	Default *Templates
	// Named are the subdirectories' sets, by the subdirectory's name.
	Named map[string]*Templates
}

// LoadSets loads the templates of dir ("": Vigil's own only): its files
// over Vigil's own are the default set, and each subdirectory is a set
// named after it whose files go over the default set's
// (<dir>/<set>/<kind>.<lang>.tmpl), for the routes and channels that
// name it. Every set is checked as NewTemplates checks one: a broken
// file in any stops notify from starting.
func LoadSets(dir string, log *slog.Logger) (Sets, error) {
	def, err := newTemplates(log, dir)
	if err != nil {
		return Sets{}, err
	}
	sets := Sets{Default: def, Named: map[string]*Templates{}}
	if dir == "" {
		return sets, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Sets{}, fmt.Errorf("VIGIL_NOTIFY_TEMPLATES_DIR: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		t, err := newTemplates(log, dir, filepath.Join(dir, e.Name()))
		if err != nil {
			return Sets{}, fmt.Errorf("template set %s: %w", e.Name(), err)
		}
		sets.Named[e.Name()] = t
	}
	return sets, nil
}

// Names are the named sets, sorted.
func (s Sets) Names() []string {
	return slices.Sorted(maps.Keys(s.Named))
}

// newTemplates parses Vigil's templates with the files of dirs over
// them, each over the ones before.
func newTemplates(log *slog.Logger, dirs ...string) (*Templates, error) {
	files := map[string]map[string]source{} // lang -> kind -> source
	add := func(fsys fs.FS, root, name string) error {
		base, ok := strings.CutSuffix(name, ".tmpl")
		i := strings.LastIndex(base, ".")
		if !ok || i <= 0 {
			return fmt.Errorf("%s: want a name <kind>.<language>.tmpl", filepath.Join(root, name))
		}
		kind, lang := base[:i], canonical(base[i+1:])
		if kind != common && !slices.Contains(Kinds, Kind(kind)) {
			return fmt.Errorf("%s: %q is no kind of message: want one of %s or %s", filepath.Join(root, name), kind, kindNames(), common)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("read template: %w", err)
		}
		if files[lang] == nil {
			files[lang] = map[string]source{}
		}
		files[lang][kind] = source{path: filepath.Join(root, name), text: string(b)}
		return nil
	}
	embedded, err := fs.Sub(defaults, "templates")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if err := addAll(embedded, "(built in)", add); err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		if err := addAll(os.DirFS(dir), dir, add); err != nil {
			return nil, fmt.Errorf("VIGIL_NOTIFY_TEMPLATES_DIR: %w", err)
		}
	}
	t := &Templates{sets: map[string]*template.Template{}, log: log}
	for lang, own := range files {
		set := template.New(lang).Funcs(markupFuncs(Plain, nil)).Option("missingkey=error")
		for _, kind := range append([]string{common}, kindNames()...) {
			src, ok := own[kind]
			if !ok {
				src = files[English][kind]
			}
			if _, err := set.New(kind).Parse(src.text); err != nil {
				return nil, fmt.Errorf("%s: %w", src.path, err)
			}
		}
		t.sets[lang] = set
	}
	for lang, own := range files {
		for _, k := range Kinds {
			msg := Sample(k)
			msg.Templates, msg.Locale = t, Locale{Language: lang}
			if _, err := msg.draw(Plain); err != nil {
				src, ok := own[string(k)]
				if !ok {
					src = own[common]
				}
				return nil, fmt.Errorf("%s: %w", src.path, err)
			}
		}
	}
	return t, nil
}

func addAll(fsys fs.FS, root string, add func(fs.FS, string, string) error) error {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return fmt.Errorf("read templates: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".tmpl") {
			continue
		}
		if err := add(fsys, root, e.Name()); err != nil {
			return err
		}
	}
	return nil
}

// Languages are the languages t draws messages in.
func (t *Templates) Languages() []string {
	langs := make([]string, 0, len(t.sets))
	for l := range t.sets {
		langs = append(langs, l)
	}
	slices.Sort(langs)
	return langs
}

// set is the templates of lang, or English's for a language t has none
// of (logged once per language).
func (t *Templates) set(lang string) (string, *template.Template) {
	c := canonical(lang)
	if s, ok := t.sets[c]; ok {
		return c, s
	}
	if _, warned := t.warned.LoadOrStore(c, true); !warned {
		t.log.Warn("no templates for this language: messages are drawn in English", "language", lang, "languages", t.Languages())
	}
	return English, t.sets[English]
}

// canonical is a language tag as templates are named: "zh-TW" for
// Traditional Chinese however it is written (zh_tw, zh-Hant, zh-Hant-TW),
// "en" for English and its regions, "" as English.
func canonical(tag string) string {
	l := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(tag), "_", "-"))
	switch {
	case l == "" || l == "en" || strings.HasPrefix(l, "en-"):
		return English
	case l == "zh-tw" || l == "zh-hant" || strings.HasPrefix(l, "zh-hant-"):
		return "zh-TW"
	}
	return tag
}

// markupFuncs are the functions templates format with, in m; word runs
// a named template of set (the shared words) for a value to format.
func markupFuncs(m Markup, set *template.Template) template.FuncMap {
	return template.FuncMap{
		"bold": m.Bold, "italic": m.Italic, "code": m.Code, "link": m.Link,
		// esc is for the card's plain Title; everything else comes escaped.
		"esc": m.Escape,
		"word": func(name string, data any) (string, error) {
			if set == nil {
				return "", fmt.Errorf("%w: word %s outside a message", errExec, name)
			}
			return exec(set, name, data)
		},
		// join is for a template's own pieces, around data already escaped.
		"join": join,
	}
}

// errExec marks a template that failed to run.
var errExec = errors.New("message template")

// exec runs the named template of set on data.
func exec(set *template.Template, name string, data any) (string, error) {
	var b bytes.Buffer
	if err := set.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("%w: %w", errExec, err)
	}
	return strings.TrimSpace(b.String()), nil
}
