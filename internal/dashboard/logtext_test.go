package dashboard

import (
	"io"
	"strings"
	"testing"
)

func TestCleanLog(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"plain\n", "plain\n"},
		{"\x1b[1;31mred\x1b[0m\n", "red\n"},
		{"\x1b]0;title\x07text", "text"},
		{"a\r\nb\rc", "a\nb\nc"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{"tab\tand <b>", "tab\tand <b>"},
	}
	for _, tt := range tests {
		if got := cleanLog([]byte(tt.in)); got != tt.want {
			t.Errorf("cleanLog(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSplitComplete(t *testing.T) {
	t.Parallel()
	euro := "€" // 3 bytes
	tests := []struct {
		in             string
		complete, rest string
	}{
		{"abc", "abc", ""},
		{"a" + euro, "a" + euro, ""},
		{"a" + euro[:1], "a", euro[:1]},
		{"a" + euro[:2], "a", euro[:2]},
		{"", "", ""},
	}
	for _, tt := range tests {
		c, r := splitComplete([]byte(tt.in))
		if string(c) != tt.complete || string(r) != tt.rest {
			t.Errorf("splitComplete(%q) = %q, %q; want %q, %q", tt.in, c, r, tt.complete, tt.rest)
		}
	}
}

// onlyReader hides Seek, like a log that is not a file.
type onlyReader struct{ io.Reader }

func TestTail(t *testing.T) {
	t.Parallel()
	data := strings.Repeat("0123456789", 10000)
	for name, r := range map[string]func() io.Reader{
		"seeker": func() io.Reader { return strings.NewReader(data) },
		"stream": func() io.Reader { return onlyReader{strings.NewReader(data)} },
	} {
		got, start, err := tail(r(), 25)
		if err != nil || string(got) != data[len(data)-25:] || start != int64(len(data)-25) {
			t.Errorf("%s: tail = %q at %d, %v", name, got, start, err)
		}
		got, start, _ = tail(r(), 1<<20)
		if string(got) != data || start != 0 {
			t.Errorf("%s: short log tail = %d bytes at %d", name, len(got), start)
		}
	}
}

func TestLastLines(t *testing.T) {
	t.Parallel()
	if got := lastLines("a\nb\nc\nd\n", 2); got != "c\nd\n" {
		t.Errorf("lastLines = %q", got)
	}
	if got := lastLines("a\nb", 5); got != "a\nb" {
		t.Errorf("lastLines = %q", got)
	}
}

func TestNormalizeToken(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"abc":                          "abc",
		"Bearer abc":                   "abc",
		"bearer   abc \n":              "abc",
		"Authorization: Bearer abc":    "abc",
		"authorization:bearer abc":     "abc",
		"\"abc\"":                      "abc",
		"Authorization: Bearer  a.b.c": "a.b.c",
	} {
		if got := normalizeToken(in); got != want {
			t.Errorf("normalizeToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLogFragmentEscapes(t *testing.T) {
	t.Parallel()
	got := logFragment("<b>\"x\"\n")
	if got != `<span data-lines="1">&lt;b&gt;&#34;x&#34;`+"\n</span>" {
		t.Errorf("logFragment = %q", got)
	}
}
