package api

import (
	"io"
	"unicode/utf8"
)

// logChunkSize is how much of a log is read at once when streaming it.
const logChunkSize = 32 << 10

const hexDigits = "0123456789abcdef"

// writeJSONString writes the contents of r to w as one JSON string, reading it in chunks of
// len(buf) bytes, so any amount of text is encoded in constant memory. The output is what
// encoding/json writes for the same string: invalid UTF-8 becomes \ufffd (one per bad byte),
// control characters are escaped, and so are <, >, &, U+2028 and U+2029 so the result is safe
// to embed in HTML.
func writeJSONString(w io.Writer, r io.Reader, buf []byte) error {
	out := make([]byte, 0, len(buf)+len(buf)/4)
	out = append(out, '"')
	carry := 0 // bytes of an incomplete UTF-8 sequence kept at the start of buf
	for {
		n, rerr := r.Read(buf[carry:])
		if rerr != nil && rerr != io.EOF {
			return rerr
		}
		eof := rerr == io.EOF
		data := buf[:carry+n]
		i := 0
		for i < len(data) {
			b := data[i]
			if b < utf8.RuneSelf {
				out = appendEscapedASCII(out, b)
				i++
				continue
			}
			if !eof && !utf8.FullRune(data[i:]) {
				// A sequence split across reads: finish it with the next read.
				break
			}
			c, size := utf8.DecodeRune(data[i:])
			switch {
			case c == utf8.RuneError && size == 1:
				out = append(out, `\ufffd`...)
			case c == '\u2028' || c == '\u2029':
				out = append(out, '\\', 'u', '2', '0', '2', hexDigits[c&0xf])
			default:
				out = append(out, data[i:i+size]...)
			}
			i += size
		}
		carry = copy(buf, data[i:])
		if eof {
			out = append(out, '"')
		}
		if len(out) > 0 {
			if _, err := w.Write(out); err != nil {
				return err
			}
			out = out[:0]
		}
		if eof {
			return nil
		}
	}
}

// appendEscapedASCII appends one ASCII byte as encoding/json (with HTML escaping) writes it.
func appendEscapedASCII(out []byte, b byte) []byte {
	switch b {
	case '"', '\\':
		return append(out, '\\', b)
	case '\b':
		return append(out, '\\', 'b')
	case '\f':
		return append(out, '\\', 'f')
	case '\n':
		return append(out, '\\', 'n')
	case '\r':
		return append(out, '\\', 'r')
	case '\t':
		return append(out, '\\', 't')
	case '<', '>', '&':
		return append(out, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
	}
	if b < 0x20 {
		return append(out, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
	}
	return append(out, b)
}
