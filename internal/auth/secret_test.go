package auth

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestResolveSecretFlagWins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, ".prunner.yml")

	got, err := ResolveSecret("0123456789abcdef", path)
	if err != nil {
		t.Fatalf("ResolveSecret: %v", err)
	}
	if string(got) != "0123456789abcdef" {
		t.Errorf("secret = %q, want the flag value", got)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("config file was created or touched (stat err %v); want it left alone", err)
	}
}

func TestResolveSecretFlagIgnoresConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, ".prunner.yml")
	// A broken file proves it is not read.
	if err := os.WriteFile(path, []byte("jwt_secret: [unclosed"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ResolveSecret("flag-secret-of-enough-length", path)
	if err != nil {
		t.Fatalf("ResolveSecret: %v", err)
	}
	if string(got) != "flag-secret-of-enough-length" {
		t.Errorf("secret = %q, want the flag value", got)
	}
}

func TestResolveSecretFlagTooShort(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, ".prunner.yml")

	_, err := ResolveSecret("short-secret", path)
	if err == nil {
		t.Fatal("ResolveSecret succeeded with a 12-character secret")
	}
	if err.Error() != "jwt secret must be at least 16 characters" {
		t.Errorf("error = %q", err)
	}
	if !errors.Is(err, ErrSecretTooShort) {
		t.Errorf("error %v does not match ErrSecretTooShort", err)
	}
	if strings.Contains(err.Error(), "short-secret") {
		t.Errorf("error %q contains the secret", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("config file was created (stat err %v)", err)
	}
}

func TestResolveSecretFromConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "prunner.yml")
	content := "# written by hand\nother_key: 1\njwt_secret: \"a-secret-from-the-file\"\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ResolveSecret("", path)
	if err != nil {
		t.Fatalf("ResolveSecret: %v", err)
	}
	if string(got) != "a-secret-from-the-file" {
		t.Errorf("secret = %q, want %q", got, "a-secret-from-the-file")
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != content {
		t.Errorf("config file changed to %q", after)
	}
}

func TestResolveSecretConfigFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		short   bool
	}{
		{name: "short secret", content: "jwt_secret: tooshort123\n", short: true},
		{name: "missing key", content: "something_else: x\n", short: true},
		{name: "empty file", content: "", short: true},
		{name: "invalid yaml", content: "jwt_secret: [unclosed\n"},
		{name: "not a mapping", content: "- a\n- b\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "prunner.yml")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := ResolveSecret("", path)
			if err == nil {
				t.Fatal("ResolveSecret succeeded, want an error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file %s", err, path)
			}
			if got := errors.Is(err, ErrSecretTooShort); got != tt.short {
				t.Errorf("errors.Is(err, ErrSecretTooShort) = %v, want %v (err %v)", got, tt.short, err)
			}
			if strings.Contains(err.Error(), "tooshort123") {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

func TestResolveSecretCreatesConfigFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ".prunner.yml")

	got, err := ResolveSecret("", path)
	if err != nil {
		t.Fatalf("ResolveSecret: %v", err)
	}
	if !regexp.MustCompile(`^[0-9A-Za-z]{32}$`).Match(got) {
		t.Errorf("generated secret %q is not 32 characters of [0-9A-Za-z]", got)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("config file not created: %v", err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("config file mode = %#o, want 0600", mode)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "jwt_secret: " + string(got) + "\n"; string(content) != want {
		t.Errorf("config file content = %q, want %q", content, want)
	}

	// The next start reads the same secret back.
	again, err := ResolveSecret("", path)
	if err != nil {
		t.Fatalf("second ResolveSecret: %v", err)
	}
	if string(again) != string(got) {
		t.Errorf("second ResolveSecret = %q, want %q", again, got)
	}
}

func TestResolveSecretGeneratesDifferentSecrets(t *testing.T) {
	t.Parallel()
	a, err := ResolveSecret("", filepath.Join(t.TempDir(), "a.yml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ResolveSecret("", filepath.Join(t.TempDir(), "b.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(a) == string(b) {
		t.Errorf("two generated secrets are equal: %q", a)
	}
}

func TestResolveSecretUnreadableOrUncreatable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	// The path is a directory: reading fails with something other than "not exist".
	_, err := ResolveSecret("", dir)
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("ResolveSecret(dir) error = %v, want one naming %s", err, dir)
	}

	// The parent directory does not exist: creating fails.
	missing := filepath.Join(dir, "no", "such", "dir", ".prunner.yml")
	_, err = ResolveSecret("", missing)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("ResolveSecret(missing dir) error = %v, want one naming %s", err, missing)
	}
}

func TestRandomSecretAlphabet(t *testing.T) {
	t.Parallel()
	seen := map[byte]bool{}
	for range 200 {
		s, err := randomSecret(32)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 32 {
			t.Fatalf("len = %d, want 32", len(s))
		}
		for _, b := range s {
			if !strings.ContainsRune(secretAlphabet, rune(b)) {
				t.Fatalf("byte %q outside the alphabet", b)
			}
			seen[b] = true
		}
	}
	// 6400 draws from 62 symbols: missing one is practically impossible unless the mapping is
	// broken.
	if len(seen) != len(secretAlphabet) {
		t.Errorf("saw %d distinct characters, want %d", len(seen), len(secretAlphabet))
	}
}
