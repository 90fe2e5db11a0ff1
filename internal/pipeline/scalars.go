package pipeline

// This file reads typed scalar settings (integers, booleans, strings, durations, numbers) from
// yaml.Node values, reporting a value of the wrong type as a problem of the file instead of
// stopping.

import (
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

func (p *fileParser) intValue(n *yaml.Node, where, key string) (int, bool) {
	var v int
	if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
		p.errorf(n, "%s: %s must be an integer, got %s", where, key, describe(n))
		return 0, false
	}
	return v, true
}

func (p *fileParser) boolValue(n *yaml.Node, where, key string) (bool, bool) {
	var v bool
	if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
		p.errorf(n, "%s: %s must be true or false, got %s", where, key, describe(n))
		return false, false
	}
	return v, true
}

func (p *fileParser) stringValue(n *yaml.Node, where, key string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s: %s must be a string, got %s", where, key, describe(n))
		return "", false
	}
	return n.Value, true
}

// durationValue reads a Go duration ("10s", "1h30m"). A bare 0 is accepted; other bare numbers
// are refused, since it is unclear which unit was meant.
func (p *fileParser) durationValue(n *yaml.Node, where, key string) (time.Duration, bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str":
			d, err := time.ParseDuration(strings.TrimSpace(n.Value))
			if err == nil {
				return d, true
			}
		case "!!int", "!!float":
			var f float64
			if n.Decode(&f) == nil && f == 0 {
				return 0, true
			}
			p.errorf(n, "%s: %s must be a duration with a unit, such as \"%ss\", got %s", where, key, n.Value, describe(n))
			return 0, false
		}
	}
	p.errorf(n, "%s: %s must be a duration such as \"10s\", \"5m\" or \"48h\", got %s", where, key, describe(n))
	return 0, false
}

func (p *fileParser) floatValue(n *yaml.Node, where, key string) (float64, bool) {
	var v float64
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&v) != nil {
		p.errorf(n, "%s: %s must be a number, got %s", where, key, describe(n))
		return 0, false
	}
	return v, true
}
