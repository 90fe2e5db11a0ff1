// Package web holds the dashboard's browser assets, embedded into the binary so that the
// dashboard works offline and needs no Node build. The templ components live in web/templates.
//
// Vendored files under static/ (copied from the npm registry packages, minified dist builds):
//   - htmx.min.js: htmx.org 2.0.11
//   - sse.min.js:  htmx-ext-sse 2.2.4 (the SSE extension for htmx 2.x)
//
// app.css and app.js are prunner's own.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"path"
	"sort"
	"sync"
)

//go:embed static
var files embed.FS

// Asset is one embedded static file.
type Asset struct {
	Name        string
	Data        []byte
	ContentType string
	// Version is a short content hash; URLs carry it so that assets can be cached forever.
	Version string
}

// assets maps a file name below static/ to the file. It is built on first use, not at start-up:
// hashing the files costs milliseconds that a server which nobody browses should not pay.
var assets = sync.OnceValue(loadAssets)

// contentTypes are the types of the embedded files. A fixed table, because mime.TypeByExtension
// reads the system's MIME database on first use (several milliseconds at start-up).
var contentTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".html": "text/html; charset=utf-8",
	".txt":  "text/plain; charset=utf-8",
}

func loadAssets() map[string]*Asset {
	m := map[string]*Asset{}
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		name := p[len("static/"):]
		ct := contentTypes[path.Ext(name)]
		if ct == "" {
			ct = "application/octet-stream"
		}
		m[name] = &Asset{Name: name, Data: data, ContentType: ct, Version: hex.EncodeToString(sum[:6])}
		return nil
	})
	if err != nil {
		panic("web: embedded assets: " + err.Error())
	}
	return m
}

// Lookup returns the embedded asset called name (a path below static/), or nil.
func Lookup(name string) *Asset {
	return assets()[name]
}

// Names lists the embedded assets in sorted order.
func Names() []string {
	names := make([]string, 0, len(assets()))
	for n := range assets() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
