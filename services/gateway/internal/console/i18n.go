package console

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The languages of the console, the first the default.
var languages = []string{"en", "zh-TW"}

// catalogue holds the console's words by language; a key missing from a
// language falls back to English, and a key missing from English shows
// as itself, so a forgotten string is visible rather than blank.
var catalogue = map[string]map[string]string{
	"en": {
		"title":             "Vigil",
		"login":             "Log in",
		"logout":            "Log out",
		"username":          "Username",
		"password":          "Password",
		"login.failed":      "Wrong username or password.",
		"login.throttled":   "Too many failed logins: try again later.",
		"login.unavailable": "Vigil cannot check logins right now: try again.",
		"incidents":         "Incidents",
		"incident":          "Incident",
		"filter":            "Filter",
		"filter.any":        "any",
		"team":              "Team",
		"app":               "App",
		"status":            "Status",
		"priority":          "Priority",
		"text":              "Text",
		"opened":            "Opened",
		"updated":           "Updated",
		"acknowledged":      "Acknowledged",
		"resolved":          "Resolved",
		"subject":           "Subject",
		"owner":             "Owner",
		"alerts":            "Alerts",
		"labels":            "Labels",
		"first_seen":        "First seen",
		"last_seen":         "Last seen",
		"count":             "Count",
		"next":              "Next page",
		"first":             "First page",
		"none":              "No incidents.",
		"status.open":       "open",
		"status.ack":        "acknowledged",
		"status.resolved":   "resolved",
		"status.unknown":    "unknown",
		"alert.firing":      "firing",
		"alert.resolved":    "resolved",
		"all_teams":         "all teams",
		"no_team":           "no team",
		"language":          "Language",
		"time_zone":         "Times in",
		"error.notfound":    "Not found.",
		"error.forbidden":   "You may not see this.",
		"error.csrf":        "This form expired or did not come from this page: reload and try again.",
		"error.unavailable": "Vigil could not answer: try again.",
		"back":              "Back to incidents",
	},
	"zh-TW": {
		"title":             "Vigil",
		"login":             "登入",
		"logout":            "登出",
		"username":          "使用者名稱",
		"password":          "密碼",
		"login.failed":      "使用者名稱或密碼錯誤。",
		"login.throttled":   "登入失敗次數過多，請稍後再試。",
		"login.unavailable": "Vigil 目前無法驗證登入，請再試一次。",
		"incidents":         "事件",
		"incident":          "事件",
		"filter":            "篩選",
		"filter.any":        "全部",
		"team":              "團隊",
		"app":               "應用程式",
		"status":            "狀態",
		"priority":          "優先等級",
		"text":              "文字",
		"opened":            "開啟時間",
		"updated":           "更新時間",
		"acknowledged":      "確認時間",
		"resolved":          "解決時間",
		"subject":           "對象",
		"owner":             "負責人",
		"alerts":            "告警",
		"labels":            "標籤",
		"first_seen":        "首次出現",
		"last_seen":         "最後出現",
		"count":             "次數",
		"next":              "下一頁",
		"first":             "第一頁",
		"none":              "沒有事件。",
		"status.open":       "未處理",
		"status.ack":        "已確認",
		"status.resolved":   "已解決",
		"status.unknown":    "未知",
		"alert.firing":      "觸發中",
		"alert.resolved":    "已解決",
		"all_teams":         "所有團隊",
		"no_team":           "無團隊",
		"language":          "語言",
		"time_zone":         "時區",
		"error.notfound":    "找不到。",
		"error.forbidden":   "您沒有權限查看。",
		"error.csrf":        "此表單已過期或並非來自本頁，請重新整理後再試。",
		"error.unavailable": "Vigil 無法回應，請再試一次。",
		"back":              "返回事件列表",
	},
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
