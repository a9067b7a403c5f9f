package console

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The languages of the console, the first the default.
var languages = []string{"en", "zh-TW"}

// catalogue holds the console's words by language, from the JSON files
// of assets/i18n (one per part of the console, each {"en": {...},
// "zh-TW": {...}}). A key missing from a language falls back to English,
// and a key missing from English shows as itself, so a forgotten string
// is visible rather than blank; TestCatalogue wants every key in every
// language.
var catalogue = mustCatalogue()

func mustCatalogue() map[string]map[string]string {
	c, err := loadCatalogue(assets, "assets/i18n")
	if err != nil {
		panic(err)
	}
	return c
}

// loadCatalogue merges the files of dir; a key defined twice, or a
// language the console does not speak, is an error.
func loadCatalogue(fsys fs.FS, dir string) (map[string]map[string]string, error) {
	files, err := fs.Glob(fsys, dir+"/*.json")
	if err != nil {
		return nil, err
	}
	c := map[string]map[string]string{}
	from := map[string]string{}
	for _, f := range files {
		raw, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		var part map[string]map[string]string
		if err := json.Unmarshal(raw, &part); err != nil {
			return nil, fmt.Errorf("console words %s: %w", f, err)
		}
		for lang, words := range part {
			if !slices.Contains(languages, lang) {
				return nil, fmt.Errorf("console words %s: language %q is not one of %v", f, lang, languages)
			}
			if c[lang] == nil {
				c[lang] = map[string]string{}
			}
			for k, v := range words {
				if prev, ok := from[lang+"\x00"+k]; ok {
					return nil, fmt.Errorf("console words: %s %q in both %s and %s", lang, k, prev, f)
				}
				from[lang+"\x00"+k] = f
				c[lang][k] = v
			}
		}
	}
	return c, nil
}

// translate is the word for key in lang.
func translate(lang, key string) string {
	if s, ok := catalogue[lang][key]; ok {
		return s
	}
	if s, ok := catalogue["en"][key]; ok {
		return s
	}
	return key
}

// language is the request's language: the cookie the language switch
// sets, else the best of Accept-Language the console speaks, else
// English. Any Chinese asks for the one Chinese the console has.
func language(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && slices.Contains(languages, c.Value) {
		return c.Value
	}
	best, bestQ := languages[0], 0.0
	for part := range strings.SplitSeq(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		var lang string
		switch base, _, _ := strings.Cut(strings.ToLower(tag), "-"); base {
		case "en":
			lang = "en"
		case "zh":
			lang = "zh-TW"
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = lang, q
		}
	}
	return best
}
