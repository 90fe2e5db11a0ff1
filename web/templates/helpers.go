// Package templates holds the dashboard's templ components. They render the view models of
// internal/dashboard/view and do no I/O and read no clock. Regenerate the *_templ.go files
// with `go tool templ generate` (make generate).
package templates

import (
	"strconv"
	"strings"
)

// htmxConfig is read by htmx from a meta tag: its indicator styles would need an inline
// <style> (the CSP forbids it), and nothing here needs eval or scripts in swapped content.
const htmxConfig = `{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0,"selfRequestsOnly":true}`

// cls joins the non-empty class names.
func cls(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		if n == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(n)
	}
	return b.String()
}

// when returns name if cond holds.
func when(cond bool, name string) string {
	if cond {
		return name
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }

// versionVals is the hx-vals of a self-refreshing fragment: the digest of what it shows.
func versionVals(v string) string { return `{"v":"` + v + `"}` }

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// cronHint explains the schedule form's expression field (in Go: templ reads @ as a call).
const cronHint = `Five fields (minute hour day month weekday), @hourly, @daily, @weekly, @monthly, @yearly, or "@every 15m".`
