package store

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadMigrationsInVersionOrder(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"m/0002_more.sql": {Data: []byte("B")},
		"m/0001_init.sql": {Data: []byte("A")},
	}
	ms, err := LoadMigrations(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != 1 || ms[0].SQL != "A" || ms[1].Name != "0002_more.sql" || ms[1].SQL != "B" {
		t.Errorf("LoadMigrations = %+v", ms)
	}
}

// TestLoadMigrationsRefusesGapsRepeatsAndBadNames: two branches that number a migration alike,
// or a skipped number, fail before any database is migrated.
func TestLoadMigrationsRefusesGapsRepeatsAndBadNames(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		files []string
		want  string
	}{
		"gap":      {[]string{"0001_a.sql", "0003_c.sql"}, "version 3, want 2"},
		"repeat":   {[]string{"0001_a.sql", "0002_b.sql", "0002_c.sql"}, "version 2, want 3"},
		"no _":     {[]string{"0001.sql"}, "name must be <version>_<name>.sql"},
		"no digit": {[]string{"x_a.sql"}, "x_a.sql"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fsys := fstest.MapFS{}
			for _, f := range tt.files {
				fsys["m/"+f] = &fstest.MapFile{Data: []byte("SELECT 1")}
			}
			if _, err := LoadMigrations(fsys, "m"); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadMigrations(%v) error %v, want one saying %q", tt.files, err, tt.want)
			}
		})
	}
}
