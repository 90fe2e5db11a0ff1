package pipeline

// This file is the generic layer under the definition parser: reading a YAML document into
// yaml.Node values safely (a parser panic becomes an error, aliases are bounded), and the node
// helpers that prunner's schema in parse.go is written with (alias resolution, null and kind
// descriptions, mappings with merge keys). Nothing here knows prunner's keys.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxAliasNodes bounds how many nodes YAML aliases may add to a document when they are expanded.
// Decoding into yaml.Node does not expand aliases, so yaml.v3's own alias-bomb guard does not
// apply; without this bound, a few lines of nested aliases ("billion laughs") would make the
// parser's readers visit billions of nodes. Real files that reuse settings through anchors stay
// far below it.
const maxAliasNodes = 1_000_000

// lineOf is the line of n for a problem's position; 0 (no line) when there is no node.
func lineOf(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

// decode runs the YAML parser, turning a panic inside it into an error: a broken file must not
// take the server down (for example on a reload).
func decode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: parser failed: %v", r)
		}
	}()
	return dec.Decode(n)
}

var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// splitYAMLError takes the line out of a yaml.v3 error ("yaml: line 3: …").
func splitYAMLError(err error) (int, string) {
	msg := err.Error()
	if m := yamlLineError.FindStringSubmatch(msg); m != nil {
		if line, err := strconv.Atoi(m[1]); err == nil {
			return line, m[2]
		}
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// checkAliases refuses documents whose aliases refer to a node that contains them (which yaml.v3
// accepts into a yaml.Node, and which would make any reader loop) or expand to more than
// maxAliasNodes extra nodes. It is linear in the size of the document: an alias can only refer to
// an anchor written before it, so in document order the size of every anchored node is known
// before any alias to it is reached.
//
// It returns the line to report with the error (0 when there is none).
func checkAliases(doc *yaml.Node) (int, error) {
	c := &aliasCounter{size: make(map[*yaml.Node]int), active: make(map[*yaml.Node]bool)}
	expanded, err := c.count(doc)
	if err != nil {
		return c.cycleLine, err
	}
	if expanded-c.plain > maxAliasNodes {
		return 0, fmt.Errorf("YAML aliases expand to more than %d nodes; is this an alias bomb (\"billion laughs\")?", maxAliasNodes)
	}
	return 0, nil
}

type aliasCounter struct {
	// size is the expanded size of the anchored nodes seen so far.
	size map[*yaml.Node]int
	// active holds the anchored nodes being counted (the ancestors of the current node).
	active map[*yaml.Node]bool
	// plain counts the nodes as written, aliases as one node each.
	plain int
	// cycleLine is the line of the alias that refers to a node containing it.
	cycleLine int
}

// count returns the number of nodes below and including n with every alias expanded, saturating
// a little above the limit so that it cannot overflow.
func (c *aliasCounter) count(n *yaml.Node) (int, error) {
	if n == nil {
		return 0, nil
	}
	c.plain++
	if n.Kind == yaml.AliasNode {
		target := n.Alias
		if target == nil {
			return 1, nil
		}
		if c.active[target] {
			c.cycleLine = n.Line
			return 0, fmt.Errorf("YAML alias *%s refers to a node that contains it", n.Value)
		}
		size, ok := c.size[target]
		if !ok {
			// Not reachable for yaml.v3 output (see checkAliases); counted for safety.
			plain := c.plain
			var err error
			if size, err = c.count(target); err != nil {
				return 0, err
			}
			c.plain = plain
		}
		return saturate(1 + size), nil
	}
	if n.Anchor != "" {
		c.active[n] = true
		defer delete(c.active, n)
	}
	total := 1
	for _, child := range n.Content {
		size, err := c.count(child)
		if err != nil {
			return 0, err
		}
		total = saturate(total + size)
	}
	if n.Anchor != "" {
		c.size[n] = total
	}
	return total, nil
}

func saturate(n int) int {
	const limit = 4 * maxAliasNodes
	if n > limit || n < 0 {
		return limit
	}
	return n
}

// resolve follows an alias to the node it refers to.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what a node is, for "expected …, got …" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing (null)"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return strconv.Quote(v)
	}
	return "an empty node"
}

// entry is one key of a mapping with its (alias-resolved) value.
type entry struct {
	name  string
	key   *yaml.Node
	value *yaml.Node
}

// entries returns the keys of mapping n in the order written, with YAML merge keys ("<<: *base")
// expanded: keys written in n win over merged ones, and among merged mappings the first wins.
// Duplicate keys are errors. what names the mapping in messages ("task \"b\" of pipeline \"x\"").
func (p *fileParser) entries(n *yaml.Node, what string) []entry {
	type item struct {
		entry
		merge bool
	}
	items := make([]item, 0, len(n.Content)/2)
	explicit := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			items = append(items, item{entry: entry{key: k, value: v}, merge: true})
			continue
		}
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "keys must be strings in %s, got %s", what, describe(k))
			continue
		}
		name := k.Value
		if isNull(k) {
			name = ""
		}
		if first, dup := explicit[name]; dup {
			p.errorf(k, "duplicate key %q in %s (first at line %d)", name, what, first.Line)
			continue
		}
		explicit[name] = k
		items = append(items, item{entry: entry{name: name, key: k, value: v}})
	}
	out := make([]entry, 0, len(items))
	merged := make(map[string]bool)
	for _, it := range items {
		if !it.merge {
			out = append(out, it.entry)
			continue
		}
		for _, m := range p.mergeSources(it.value, what) {
			for _, e := range p.entries(m, what) {
				if _, ok := explicit[e.name]; ok || merged[e.name] {
					continue
				}
				merged[e.name] = true
				out = append(out, e)
			}
		}
	}
	return out
}

func (p *fileParser) mergeSources(v *yaml.Node, what string) []*yaml.Node {
	switch {
	case isNull(v):
		return nil
	case v.Kind == yaml.MappingNode:
		return []*yaml.Node{v}
	case v.Kind == yaml.SequenceNode:
		var out []*yaml.Node
		for _, item := range v.Content {
			item = resolve(item)
			if item.Kind != yaml.MappingNode {
				p.errorf(item, "the value of \"<<\" in %s must be a mapping or a list of mappings, got a list holding %s", what, describe(item))
				continue
			}
			out = append(out, item)
		}
		return out
	}
	p.errorf(v, "the value of \"<<\" in %s must be a mapping or a list of mappings, got %s", what, describe(v))
	return nil
}

// scalarString is the text of a scalar as written, "" for null.
func scalarString(n *yaml.Node) string {
	if isNull(n) {
		return ""
	}
	return n.Value
}
